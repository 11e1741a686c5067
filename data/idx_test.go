package data

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"
)

// idxImages builds an idx3 image stream: the header fields, then pix.
func idxImages(magic, count, rows, cols uint32, pix []byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, magic)
	b = binary.BigEndian.AppendUint32(b, count)
	b = binary.BigEndian.AppendUint32(b, rows)
	b = binary.BigEndian.AppendUint32(b, cols)
	return append(b, pix...)
}

// idxLabels builds an idx1 label stream: the header fields, then labels.
func idxLabels(magic, count uint32, labels []byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, magic)
	b = binary.BigEndian.AppendUint32(b, count)
	return append(b, labels...)
}

// seq returns the bytes 0, 1, ..., n-1 (mod 256).
func seq(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}

// failingReader returns its data, then err.
type failingReader struct {
	data []byte
	err  error
}

func (r *failingReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, r.err
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

var errDisk = errors.New("disk on fire")

func TestReadIDXImages(t *testing.T) {
	tests := []struct {
		name    string
		r       io.Reader
		wantN   int
		wantH   int
		wantW   int
		wantErr []string // substrings of the error; nil means success
		isEOF   bool     // the error wraps io.ErrUnexpectedEOF
	}{
		{name: "good", r: bytes.NewReader(idxImages(0x803, 2, 2, 3, []byte{0, 255, 51, 102, 153, 204, 1, 2, 3, 4, 5, 6})),
			wantN: 2, wantH: 2, wantW: 3},
		{name: "trailing bytes ignored", r: bytes.NewReader(idxImages(0x803, 1, 1, 2, []byte{7, 8, 9, 9, 9})),
			wantN: 1, wantH: 1, wantW: 2},
		{name: "zero images", r: bytes.NewReader(idxImages(0x803, 0, 28, 28, nil)), wantN: 0, wantH: 28, wantW: 28},
		{name: "empty", r: bytes.NewReader(nil), wantErr: []string{"t.idx: empty file"}, isEOF: true},
		{name: "short header", r: bytes.NewReader([]byte{0, 0, 8, 3, 0}),
			wantErr: []string{"t.idx: truncated: idx header is 5 bytes, want 16"}, isEOF: true},
		{name: "truncated pixels", r: bytes.NewReader(idxImages(0x803, 2, 2, 3, seq(7))),
			wantErr: []string{"t.idx: truncated: header says 2 images of 2×3, found only 7 of 12 bytes"}, isEOF: true},
		{name: "huge count, no data", r: bytes.NewReader(idxImages(0x803, 1_000_000, 28, 28, seq(100))),
			wantErr: []string{"truncated: header says 1000000 images of 28×28, found only 100 of 784000000 bytes"}, isEOF: true},
		{name: "bad magic", r: bytes.NewReader(idxImages(0x804, 1, 1, 1, []byte{0})),
			wantErr: []string{"t.idx: bad magic number 0x00000804, want 0x00000803"}},
		{name: "label file", r: bytes.NewReader(idxLabels(0x801, 3, []byte{1, 2, 3, 4, 5, 6, 7, 8})),
			wantErr: []string{"0x00000801, want 0x00000803", "label file"}},
		{name: "still gzip'ed", r: bytes.NewReader([]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}),
			wantErr: []string{"bad magic number 0x1f8b0800", "gzip"}},
		{name: "zero rows", r: bytes.NewReader(idxImages(0x803, 1, 0, 28, nil)),
			wantErr: []string{"t.idx: implausible image size 0×28"}},
		{name: "zero cols", r: bytes.NewReader(idxImages(0x803, 1, 28, 0, nil)),
			wantErr: []string{"implausible image size 28×0"}},
		{name: "huge image", r: bytes.NewReader(idxImages(0x803, 1, 1<<13, 1<<12, nil)),
			wantErr: []string{"implausible image size 8192×4096"}},
		{name: "huge total", r: bytes.NewReader(idxImages(0x803, 0xffffffff, 0xffff, 0xff, nil)),
			wantErr: []string{"implausible size: header says 4294967295 images of 65535×255"}},
		{name: "read error", r: &failingReader{data: idxImages(0x803, 2, 2, 2, seq(3)), err: errDisk},
			wantErr: []string{"t.idx: reading pixel data after 3 bytes: disk on fire"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := ReadIDXImages(tt.r, "t.idx")
			if tt.wantErr != nil {
				if err == nil {
					t.Fatalf("got no error, want one containing %q", tt.wantErr)
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not contain %q", err, w)
					}
				}
				if got := errors.Is(err, io.ErrUnexpectedEOF); got != tt.isEOF {
					t.Errorf("errors.Is(err, io.ErrUnexpectedEOF) = %v, want %v", got, tt.isEOF)
				}
				if tt.name == "read error" && !errors.Is(err, errDisk) {
					t.Errorf("error %q does not wrap the reader's error", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if s.N != tt.wantN || s.Dim != tt.wantH*tt.wantW || len(s.X) != s.N*s.Dim {
				t.Errorf("N=%d Dim=%d len(X)=%d, want N=%d Dim=%d", s.N, s.Dim, len(s.X), tt.wantN, tt.wantH*tt.wantW)
			}
			if want := (Shape{tt.wantH, tt.wantW, 1}); s.Shape != want {
				t.Errorf("Shape = %+v, want %+v", s.Shape, want)
			}
			if s.Name != "t.idx" || s.Labels != nil {
				t.Errorf("Name = %q, Labels = %v; want \"t.idx\", nil", s.Name, s.Labels)
			}
		})
	}
}

func TestReadIDXImagesScaling(t *testing.T) {
	pix := []byte{0, 255, 51, 102, 153, 204}
	s, err := ReadIDXImages(bytes.NewReader(idxImages(0x803, 1, 2, 3, pix)), "scale")
	if err != nil {
		t.Fatal(err)
	}
	for i, b := range pix {
		if want := float32(b) / 255; s.X[i] != want {
			t.Errorf("X[%d] = %v, want %v", i, s.X[i], want)
		}
	}
	if s.X[0] != 0 || s.X[1] != 1 {
		t.Errorf("0 and 255 map to %v and %v, want 0 and 1", s.X[0], s.X[1])
	}
}

func TestReadIDXLabels(t *testing.T) {
	tests := []struct {
		name    string
		r       io.Reader
		want    []uint8
		wantErr []string
		isEOF   bool
	}{
		{name: "good", r: bytes.NewReader(idxLabels(0x801, 4, []byte{5, 0, 4, 1})), want: []uint8{5, 0, 4, 1}},
		{name: "trailing bytes ignored", r: bytes.NewReader(idxLabels(0x801, 2, []byte{9, 8, 7})), want: []uint8{9, 8}},
		{name: "zero labels", r: bytes.NewReader(idxLabels(0x801, 0, nil)), want: []uint8{}},
		{name: "empty", r: bytes.NewReader(nil), wantErr: []string{"l.idx: empty file"}, isEOF: true},
		{name: "short header", r: bytes.NewReader([]byte{0, 0, 8, 1, 0, 0}),
			wantErr: []string{"l.idx: truncated: idx header is 6 bytes, want 8"}, isEOF: true},
		{name: "truncated", r: bytes.NewReader(idxLabels(0x801, 60000, seq(1234))),
			wantErr: []string{"l.idx: truncated: header says 60000 labels, found only 1234"}, isEOF: true},
		{name: "bad magic", r: bytes.NewReader(idxLabels(0x802, 1, []byte{1})),
			wantErr: []string{"l.idx: bad magic number 0x00000802, want 0x00000801"}},
		{name: "image file", r: bytes.NewReader(idxImages(0x803, 1, 1, 1, []byte{1})),
			wantErr: []string{"0x00000803, want 0x00000801", "image file"}},
		{name: "huge count", r: bytes.NewReader(idxLabels(0x801, 0xffffffff, nil)),
			wantErr: []string{"implausible size: header says 4294967295 labels"}},
		{name: "read error", r: &failingReader{data: idxLabels(0x801, 5, seq(2)), err: errDisk},
			wantErr: []string{"l.idx: reading labels after 2 bytes: disk on fire"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ReadIDXLabels(tt.r, "l.idx")
			if tt.wantErr != nil {
				if err == nil {
					t.Fatalf("got %v and no error, want an error containing %q", got, tt.wantErr)
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not contain %q", err, w)
					}
				}
				if is := errors.Is(err, io.ErrUnexpectedEOF); is != tt.isEOF {
					t.Errorf("errors.Is(err, io.ErrUnexpectedEOF) = %v, want %v", is, tt.isEOF)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if !bytes.Equal(got, tt.want) {
				t.Errorf("labels = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestReadBytesGrows(t *testing.T) {
	// More than initialReadCap, to exercise the doubling.
	n := 3*initialReadCap + 17
	src := seq(n)
	got, err := readBytes(bytes.NewReader(src), n)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, src) {
		t.Fatal("readBytes returned different bytes")
	}
}
