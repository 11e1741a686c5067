package checkpoint

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"testing"
)

// sameFile reports how got differs from want, ignoring got's ChecksumKey entry, nil
// versus empty shapes and metadata, and comparing floats bit for bit.
func sameFile(got, want *File) error {
	if len(got.Tensors) != len(want.Tensors) {
		return fmt.Errorf("got %d tensors, want %d", len(got.Tensors), len(want.Tensors))
	}
	for i := range want.Tensors {
		g, w := &got.Tensors[i], &want.Tensors[i]
		if g.Name != w.Name {
			return fmt.Errorf("tensor %d: name %q, want %q", i, g.Name, w.Name)
		}
		if !slices.Equal(g.Shape, w.Shape) {
			return fmt.Errorf("tensor %q: shape %v, want %v", w.Name, g.Shape, w.Shape)
		}
		if g.DType() != w.DType() {
			return fmt.Errorf("tensor %q: dtype %q, want %q", w.Name, g.DType(), w.DType())
		}
		if !slices.EqualFunc(g.F32, w.F32, func(a, b float32) bool { return math.Float32bits(a) == math.Float32bits(b) }) {
			return fmt.Errorf("tensor %q: F32 %v, want %v", w.Name, g.F32, w.F32)
		}
		if !slices.Equal(g.I32, w.I32) {
			return fmt.Errorf("tensor %q: I32 %v, want %v", w.Name, g.I32, w.I32)
		}
	}
	gm := maps.Clone(got.Metadata)
	delete(gm, ChecksumKey)
	wm := maps.Clone(want.Metadata)
	delete(wm, ChecksumKey)
	if !maps.Equal(gm, wm) {
		return fmt.Errorf("metadata %v, want %v", gm, wm)
	}
	return nil
}

// encode encodes f or fails the test.
func encode(t testing.TB, f *File) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := Encode(&buf, f); err != nil {
		t.Fatalf("Encode: %v", err)
	}
	return buf.Bytes()
}

// sampleFile is a small checkpoint with both dtypes, a scalar and metadata.
func sampleFile() *File {
	return &File{
		Tensors: []Tensor{
			{Name: "gen.fc1.weight", Shape: []int{2, 3}, F32: []float32{0.5, -1, 2.25, 3, 1e-30, -0}},
			{Name: "gen.fc1.bias", Shape: []int{3}, F32: []float32{0.1, 0.2, 0.3}},
			{Name: "rng.state", Shape: []int{4}, I32: []int32{1, -2, math.MaxInt32, math.MinInt32}},
			{Name: "step", Shape: []int{}, I32: []int32{1234}},
		},
		Metadata: map[string]string{"format": "pt", "gantrain.config": `{"lr":0.0002}`},
	}
}

func TestRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		file *File
	}{
		{"empty file", &File{}},
		{"sample", sampleFile()},
		{"f32 scalar", &File{Tensors: []Tensor{{Name: "s", Shape: []int{}, F32: []float32{3.5}}}}},
		{"i32 scalar", &File{Tensors: []Tensor{{Name: "s", Shape: []int{}, I32: []int32{-7}}}}},
		{"empty f32", &File{Tensors: []Tensor{{Name: "e", Shape: []int{0}, F32: []float32{}}}}},
		{"empty i32 with zero middle dim", &File{Tensors: []Tensor{{Name: "e", Shape: []int{3, 0, 2}, I32: []int32{}}}}},
		{"empty tensors between others", &File{Tensors: []Tensor{
			{Name: "z1", Shape: []int{0}, F32: []float32{}},
			{Name: "a", Shape: []int{1}, F32: []float32{1}},
			{Name: "z3", Shape: []int{0, 5}, I32: []int32{}},
			{Name: "z2", Shape: []int{0}, F32: []float32{}},
			{Name: "b", Shape: []int{2}, I32: []int32{2, 3}},
			{Name: "z4", Shape: []int{0}, I32: []int32{}},
		}}},
		{"special floats", &File{Tensors: []Tensor{{Name: "x", Shape: []int{2, 3}, F32: []float32{
			float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN()),
			math.Float32frombits(0x7fc00001), math.SmallestNonzeroFloat32, math.MaxFloat32,
		}}}}},
		{"odd names and metadata", &File{
			Tensors: []Tensor{
				{Name: `quote"back\slash`, Shape: []int{1}, F32: []float32{1}},
				{Name: "ünïcødé 模型 <&>", Shape: []int{1, 1, 1}, I32: []int32{2}},
				{Name: "\x00ctrl\n", Shape: []int{1}, I32: []int32{3}},
			},
			Metadata: map[string]string{"": "empty key", "k": "", "émoji": "🙂", "ctl": "\t\x01\u2028"},
		}},
		{"large tensor", &File{Tensors: []Tensor{{Name: "big", Shape: []int{300, 200}, F32: seq(300 * 200)}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := encode(t, tt.file)
			n := binary.LittleEndian.Uint64(b)
			if (8+n)%8 != 0 {
				t.Errorf("data buffer starts at %d, not 8-byte aligned", 8+n)
			}
			if !json.Valid(b[8 : 8+n]) {
				t.Errorf("header is not valid JSON: %q", b[8:8+n])
			}
			got, err := DecodeBytes(b, DecodeOptions{})
			if err != nil {
				t.Fatalf("DecodeBytes: %v", err)
			}
			if err := sameFile(got, tt.file); err != nil {
				t.Error(err)
			}
			if _, ok := got.Metadata[ChecksumKey]; !ok {
				t.Errorf("decoded metadata lacks %q", ChecksumKey)
			}
			for _, tn := range got.Tensors {
				if tn.Shape == nil || (tn.F32 == nil) == (tn.I32 == nil) {
					t.Errorf("tensor %q: nil shape or not exactly one data slice: %+v", tn.Name, tn)
				}
			}
			// Re-encoding the decoded file reproduces the same bytes.
			if b2 := encode(t, got); !bytes.Equal(b, b2) {
				t.Errorf("re-encoding the decoded file changed the bytes")
			}
		})
	}
}

func seq(n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(i) * 0.25
	}
	return s
}

func TestNilShapeIsScalar(t *testing.T) {
	f := &File{Tensors: []Tensor{{Name: "s", I32: []int32{9}}}}
	got, err := DecodeBytes(encode(t, f), DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if tn := got.Tensors[0]; len(tn.Shape) != 0 || tn.Shape == nil || !slices.Equal(tn.I32, []int32{9}) {
		t.Errorf("got %+v, want scalar 9 with shape []", tn)
	}
}

// TestEncodeLayout checks the exact bytes of a tiny file against an expectation
// computed by hand from the format description.
func TestEncodeLayout(t *testing.T) {
	f := &File{
		Tensors: []Tensor{
			{Name: "a", Shape: []int{2}, F32: []float32{1, -2}},
			{Name: "n", Shape: []int{}, I32: []int32{-1}},
		},
		Metadata: map[string]string{"k": "v"},
	}
	data := []byte{
		0x00, 0x00, 0x80, 0x3f, // 1.0f
		0x00, 0x00, 0x00, 0xc0, // -2.0f
		0xff, 0xff, 0xff, 0xff, // int32 -1
	}
	u64 := func(v uint64) []byte { return binary.LittleEndian.AppendUint64(nil, v) }
	str := func(s string) []byte { return append(u64(uint64(len(s))), s...) }
	var in []byte
	in = append(in, u64(12)...)
	in = append(in, data...)
	in = append(in, u64(2)...)                        // tensors
	in = append(in, str("a")...)                      // name
	in = append(in, str("F32")...)                    // dtype
	in = append(in, u64(1)...)                        // rank
	in = append(in, u64(2)...)                        // dim
	in = append(in, str("n")...)                      // name
	in = append(in, str("I32")...)                    // dtype
	in = append(in, u64(0)...)                        // rank
	in = append(in, u64(1)...)                        // metadata entries
	in = append(in, append(str("k"), str("v")...)...) // entry
	sum := sha256.Sum256(in)
	header := `{"__metadata__":{"gantrain.sha256":"` + hex.EncodeToString(sum[:]) + `","k":"v"},` +
		`"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},` +
		`"n":{"dtype":"I32","shape":[],"data_offsets":[8,12]}}`
	// 217 bytes of JSON (64 of them the hex digest) plus 7 spaces of padding.
	const wantN = 224
	if len(header) > wantN || wantN-len(header) >= 8 {
		t.Fatalf("hand-computed header is %d bytes; wantN %d is not its 8-byte padded length", len(header), wantN)
	}
	for len(header) < wantN {
		header += " "
	}
	want := append(u64(wantN), header...)
	want = append(want, data...)

	got := encode(t, f)
	if !bytes.Equal(got, want) {
		t.Errorf("Encode:\n got %q\nwant %q", got, want)
	}
	if len(got) != 8+wantN+12 {
		t.Errorf("file is %d bytes, want %d", len(got), 8+wantN+12)
	}
	var parsed map[string]any
	if err := json.Unmarshal(got[8:8+wantN], &parsed); err != nil {
		t.Errorf("header does not parse: %v", err)
	}
	if (8+wantN)%8 != 0 {
		t.Errorf("data offset %d is not 8-byte aligned", 8+wantN)
	}
}

func TestEncodeDoesNotModifyInputAndReplacesChecksum(t *testing.T) {
	f := sampleFile()
	f.Metadata[ChecksumKey] = "bogus"
	b := encode(t, f)
	if f.Metadata[ChecksumKey] != "bogus" || len(f.Metadata) != 3 {
		t.Errorf("Encode modified f.Metadata: %v", f.Metadata)
	}
	got, err := DecodeBytes(b, DecodeOptions{})
	if err != nil {
		t.Fatalf("DecodeBytes: %v", err)
	}
	if got.Metadata[ChecksumKey] == "bogus" {
		t.Errorf("caller's checksum entry was written unchanged")
	}
}

func TestEncodeInvalid(t *testing.T) {
	f32 := []float32{1}
	tests := []struct {
		name string
		file *File
	}{
		{"nil file", nil},
		{"empty name", &File{Tensors: []Tensor{{Name: "", F32: f32}}}},
		{"reserved name", &File{Tensors: []Tensor{{Name: "__metadata__", F32: f32}}}},
		{"duplicate name", &File{Tensors: []Tensor{{Name: "a", F32: f32}, {Name: "a", I32: []int32{1}}}}},
		{"no data", &File{Tensors: []Tensor{{Name: "a", Shape: []int{0}}}}},
		{"both dtypes", &File{Tensors: []Tensor{{Name: "a", F32: f32, I32: []int32{1}}}}},
		{"shape too large", &File{Tensors: []Tensor{{Name: "a", Shape: []int{2}, F32: f32}}}},
		{"shape too small", &File{Tensors: []Tensor{{Name: "a", Shape: []int{0}, F32: f32}}}},
		{"negative dim", &File{Tensors: []Tensor{{Name: "a", Shape: []int{-1, -1}, F32: f32}}}},
		{"overflowing shape", &File{Tensors: []Tensor{{Name: "a", Shape: []int{math.MaxInt/2 + 1, 3}, F32: f32}}}},
		{"invalid UTF-8 name", &File{Tensors: []Tensor{{Name: "a\xff", F32: f32}}}},
		{"invalid UTF-8 metadata key", &File{Metadata: map[string]string{"\xc3": "v"}}},
		{"invalid UTF-8 metadata value", &File{Metadata: map[string]string{"k": "\xc3("}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			err := Encode(&buf, tt.file)
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("Encode error = %v, want ErrInvalid", err)
			}
			if buf.Len() != 0 {
				t.Errorf("Encode wrote %d bytes despite the error", buf.Len())
			}
		})
	}
}

// failWriter fails once more than n bytes have been written.
type failWriter struct{ n int }

var errWrite = errors.New("disk full")

func (w *failWriter) Write(p []byte) (int, error) {
	if len(p) > w.n {
		return 0, errWrite
	}
	w.n -= len(p)
	return len(p), nil
}

func TestEncodeWriteError(t *testing.T) {
	f := &File{Tensors: []Tensor{{Name: "big", Shape: []int{100000}, F32: make([]float32, 100000)}}}
	for _, n := range []int{0, 10, 300, 100000} {
		if err := Encode(&failWriter{n: n}, f); !errors.Is(err, errWrite) {
			t.Errorf("failing after %d bytes: Encode error = %v, want %v", n, err, errWrite)
		}
	}
}

func TestTensorLookup(t *testing.T) {
	f := sampleFile()
	tests := []struct {
		name string
		ok   bool
	}{
		{"step", true},
		{"gen.fc1.bias", true},
		{"missing", false},
		{"", false},
	}
	for _, tt := range tests {
		tn, ok := f.Tensor(tt.name)
		if ok != tt.ok || (ok && tn.Name != tt.name) || (!ok && tn != nil) {
			t.Errorf("Tensor(%q) = %v, %v; want ok %v", tt.name, tn, ok, tt.ok)
		}
	}
	// The pointer refers to the File's own tensor.
	tn, _ := f.Tensor("step")
	tn.I32[0] = 99
	if f.Tensors[3].I32[0] != 99 {
		t.Errorf("Tensor does not return a pointer into f.Tensors")
	}
	var nilFile *File
	if tn, ok := nilFile.Tensor("step"); ok || tn != nil {
		t.Errorf("nil File: Tensor = %v, %v", tn, ok)
	}
}
