package data

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func gzipBytes(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// fakeMNIST holds the contents of the four files of a small MNIST-like set:
// trainN 2×2 images whose first pixel is the image index (mod 256), and
// testN test images.
type fakeMNIST struct {
	files map[string][]byte // base name (no .gz) -> uncompressed content
}

func newFakeMNIST(trainN, testN int) fakeMNIST {
	mk := func(n int) ([]byte, []byte) {
		pix := make([]byte, 4*n)
		labels := make([]byte, n)
		for i := range n {
			pix[4*i] = byte(i)
			pix[4*i+3] = 255
			labels[i] = byte(i % 10)
		}
		return idxImages(0x803, uint32(n), 2, 2, pix), idxLabels(0x801, uint32(n), labels)
	}
	f := fakeMNIST{files: map[string][]byte{}}
	f.files[MNISTTrainImages], f.files[MNISTTrainLabels] = mk(trainN)
	f.files[MNISTTestImages], f.files[MNISTTestLabels] = mk(testN)
	return f
}

// write writes the files into a new temporary folder, gzip'ed (with .gz
// names) or not, and returns the folder.
func (f fakeMNIST) write(t *testing.T, gz bool) string {
	t.Helper()
	dir := t.TempDir()
	for base, b := range f.files {
		name := base
		if gz {
			name += ".gz"
			b = gzipBytes(t, b)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestLoadMNISTSynthetic(t *testing.T) {
	const trainN, testN = MNISTValidSize + 7, 5
	for _, gz := range []bool{true, false} {
		dir := newFakeMNIST(trainN, testN).write(t, gz)
		sp, err := LoadMNIST(dir)
		if err != nil {
			t.Fatalf("gz=%v: %v", gz, err)
		}
		tests := []struct {
			set        *Set
			name       string
			n          int
			firstIndex int // index in its file of the set's first image
		}{
			{sp.Train, "mnist-train", 7, 0},
			{sp.Valid, "mnist-valid", MNISTValidSize, 7},
			{sp.Test, "mnist-test", testN, 0},
		}
		for _, tt := range tests {
			s := tt.set
			if s.Name != tt.name || s.N != tt.n || s.Dim != 4 || len(s.X) != 4*s.N || len(s.Labels) != s.N || s.Shape != (Shape{2, 2, 1}) {
				t.Errorf("gz=%v %s: got Name %q N %d Dim %d len(X) %d len(Labels) %d Shape %+v",
					gz, tt.name, s.Name, s.N, s.Dim, len(s.X), len(s.Labels), s.Shape)
				continue
			}
			if want := float32(tt.firstIndex) / 255; s.X[0] != want || s.X[3] != 1 {
				t.Errorf("gz=%v %s: first image starts %v, ends %v; want %v, 1", gz, tt.name, s.X[0], s.X[3], want)
			}
			if want := uint8(tt.firstIndex % 10); s.Labels[0] != want {
				t.Errorf("gz=%v %s: first label %d, want %d", gz, tt.name, s.Labels[0], want)
			}
		}
	}
}

// TestLoadMNISTSniffsCompression checks that content, not the name, decides
// whether a file is decompressed.
func TestLoadMNISTSniffsCompression(t *testing.T) {
	f := newFakeMNIST(MNISTValidSize+1, 1)
	dir := t.TempDir()
	for base, b := range f.files {
		name := base
		switch base {
		case MNISTTrainImages:
			name += ".gz" // uncompressed content under a .gz name
		case MNISTTestImages:
			b = gzipBytes(t, b) // compressed content without .gz
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := LoadMNIST(dir); err != nil {
		t.Fatal(err)
	}
}

func TestLoadMNISTErrors(t *testing.T) {
	good := func() fakeMNIST { return newFakeMNIST(MNISTValidSize+3, 4) }
	tests := []struct {
		name    string
		gz      bool
		edit    func(t *testing.T, dir string, f fakeMNIST) // changes files after writing
		wantErr []string
		isEOF   bool
	}{
		{
			name: "missing file",
			edit: func(t *testing.T, dir string, f fakeMNIST) {
				os.Remove(filepath.Join(dir, MNISTTestLabels))
			},
			wantErr: []string{"neither t10k-labels-idx1-ubyte.gz nor t10k-labels-idx1-ubyte found in"},
		},
		{
			name: "count mismatch",
			edit: func(t *testing.T, dir string, f fakeMNIST) {
				write(t, dir, MNISTTestLabels, idxLabels(0x801, 3, []byte{1, 2, 3}))
			},
			wantErr: []string{"t10k-images-idx3-ubyte has 4 images but", "t10k-labels-idx1-ubyte has 3 labels"},
		},
		{
			name: "bad magic",
			gz:   true,
			edit: func(t *testing.T, dir string, f fakeMNIST) {
				b := append([]byte(nil), f.files[MNISTTrainLabels]...)
				b[3] = 3
				write(t, dir, MNISTTrainLabels+".gz", gzipBytes(t, b))
			},
			wantErr: []string{"train-labels-idx1-ubyte.gz: bad magic number 0x00000803, want 0x00000801"},
		},
		{
			name: "truncated gzip",
			gz:   true,
			edit: func(t *testing.T, dir string, f fakeMNIST) {
				b := gzipBytes(t, f.files[MNISTTrainImages])
				write(t, dir, MNISTTrainImages+".gz", b[:len(b)/2])
			},
			wantErr: []string{"train-images-idx3-ubyte.gz: truncated: header says 10003 images of 2×2, found only"},
			isEOF:   true,
		},
		{
			name: "bad gzip checksum",
			gz:   true,
			edit: func(t *testing.T, dir string, f fakeMNIST) {
				b := gzipBytes(t, f.files[MNISTTestImages])
				b[len(b)-8] ^= 0xff // CRC-32 in the trailer
				write(t, dir, MNISTTestImages+".gz", b)
			},
			wantErr: []string{"t10k-images-idx3-ubyte.gz: decompressing: gzip: invalid checksum"},
		},
		{
			name: "bad gzip header",
			gz:   true,
			edit: func(t *testing.T, dir string, f fakeMNIST) {
				write(t, dir, MNISTTestImages+".gz", []byte{0x1f, 0x8b, 99, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3})
			},
			wantErr: []string{"t10k-images-idx3-ubyte.gz: decompressing: gzip: invalid header"},
		},
		{
			name: "truncated plain file",
			edit: func(t *testing.T, dir string, f fakeMNIST) {
				write(t, dir, MNISTTrainImages, f.files[MNISTTrainImages][:1234])
			},
			wantErr: []string{"train-images-idx3-ubyte: truncated: header says 10003 images of 2×2, found only 1218 of 40012 bytes"},
			isEOF:   true,
		},
		{
			name: "label out of range",
			edit: func(t *testing.T, dir string, f fakeMNIST) {
				write(t, dir, MNISTTestLabels, idxLabels(0x801, 4, []byte{1, 2, 12, 3}))
			},
			wantErr: []string{"t10k-labels-idx1-ubyte: label 12 at index 2 is not a digit"},
		},
		{
			name: "too few training images",
			edit: func(t *testing.T, dir string, f fakeMNIST) {
				write(t, dir, MNISTTrainImages, idxImages(0x803, 2, 2, 2, seq(8)))
				write(t, dir, MNISTTrainLabels, idxLabels(0x801, 2, []byte{1, 2}))
			},
			wantErr: []string{"train-images-idx3-ubyte has 2 images, need more than 10000"},
		},
		{
			name: "test size differs",
			edit: func(t *testing.T, dir string, f fakeMNIST) {
				write(t, dir, MNISTTestImages, idxImages(0x803, 4, 1, 2, seq(8)))
			},
			wantErr: []string{"training images are 2×2 but test images are 1×2"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := good()
			dir := f.write(t, tt.gz)
			tt.edit(t, dir, f)
			_, err := LoadMNIST(dir)
			if err == nil {
				t.Fatalf("got no error, want one containing %q", tt.wantErr)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if is := errors.Is(err, io.ErrUnexpectedEOF); is != tt.isEOF {
				t.Errorf("errors.Is(err, io.ErrUnexpectedEOF) = %v, want %v (%v)", is, tt.isEOF, err)
			}
		})
	}
}

func write(t *testing.T, dir, name string, b []byte) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestLoadRealMNIST loads the real MNIST from the Go module cache.
func TestLoadRealMNIST(t *testing.T) {
	if testing.Short() {
		t.Skip("loading real MNIST takes a second; skipped in -short mode")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	dir, err := FindMNIST(ctx)
	if err != nil {
		t.Skipf("real MNIST not available: %v", err)
	}
	sp, err := LoadMNIST(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		s    *Set
		name string
		n    int
	}{{sp.Train, "mnist-train", 50000}, {sp.Valid, "mnist-valid", 10000}, {sp.Test, "mnist-test", 10000}} {
		s := tt.s
		if s.Name != tt.name || s.N != tt.n || s.Dim != 784 || s.Shape != (Shape{28, 28, 1}) || len(s.X) != s.N*784 || len(s.Labels) != s.N {
			t.Errorf("%s: Name %q N %d Dim %d Shape %+v len(X) %d len(Labels) %d; want N %d Dim 784 Shape {28 28 1}",
				tt.name, s.Name, s.N, s.Dim, s.Shape, len(s.X), len(s.Labels), tt.n)
		}
		lo, hi := s.X[0], s.X[0]
		for _, v := range s.X {
			lo, hi = min(lo, v), max(hi, v)
		}
		if lo != 0 || hi != 1 {
			t.Errorf("%s: pixels span [%v, %v], want [0, 1]", tt.name, lo, hi)
		}
	}
	if sp.Train.Labels[0] != 5 {
		t.Errorf("first training label = %d, want 5", sp.Train.Labels[0])
	}
	var sum float64
	for _, m := range sp.Train.Mean() {
		sum += float64(m)
	}
	if mean := sum / 784; mean < 0.12 || mean > 0.14 {
		t.Errorf("mean training pixel = %.4f, want about 0.13", mean)
	} else {
		t.Logf("mean training pixel = %.4f (from %s)", mean, dir)
	}
}
