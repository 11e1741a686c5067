package imageio

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// seq returns n float32 values with a mix of signs and fractions.
func seq(n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(i)*0.5 - 3
	}
	return x
}

func TestNPYRoundTrip(t *testing.T) {
	tests := []struct {
		name  string
		data  []float32
		shape []int
	}{
		{"0-d", []float32{42}, nil},
		{"1-d", seq(7), []int{7}},
		{"1-d empty", []float32{}, []int{0}},
		{"2-d", seq(12), []int{3, 4}},
		{"2-d zero dim", []float32{}, []int{5, 0}},
		{"3-d", seq(64 * 28 * 28), []int{64, 28, 28}},
		{"4-d", seq(2 * 3 * 4 * 5), []int{2, 3, 4, 5}},
		{"large 1-d", seq(3*npyChunk + 17), []int{3*npyChunk + 17}},
		{"special values", []float32{float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.Copysign(0, -1)), math.MaxFloat32, math.SmallestNonzeroFloat32}, []int{5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := WriteNPY(&buf, tt.data, tt.shape...); err != nil {
				t.Fatalf("WriteNPY: %v", err)
			}
			hlen := int(binary.LittleEndian.Uint16(buf.Bytes()[8:10]))
			if total := 10 + hlen; total%64 != 0 {
				t.Errorf("header length %d is not a multiple of 64", total)
			}
			if got, want := buf.Len(), 10+hlen+4*len(tt.data); got != want {
				t.Errorf("file length = %d, want %d", got, want)
			}
			data, shape, err := ReadNPY(&buf)
			if err != nil {
				t.Fatalf("ReadNPY: %v", err)
			}
			wantShape := tt.shape
			if wantShape == nil {
				wantShape = []int{}
			}
			if !slices.Equal(shape, wantShape) {
				t.Errorf("shape = %v, want %v", shape, wantShape)
			}
			if len(data) != len(tt.data) {
				t.Fatalf("len(data) = %d, want %d", len(data), len(tt.data))
			}
			for i := range data {
				if math.Float32bits(data[i]) != math.Float32bits(tt.data[i]) {
					t.Fatalf("data[%d] = %v, want %v", i, data[i], tt.data[i])
				}
			}
		})
	}
}

func TestNPYNaNRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteNPY(&buf, []float32{float32(math.NaN())}, 1); err != nil {
		t.Fatalf("WriteNPY: %v", err)
	}
	data, _, err := ReadNPY(&buf)
	if err != nil {
		t.Fatalf("ReadNPY: %v", err)
	}
	if !math.IsNaN(float64(data[0])) {
		t.Errorf("data[0] = %v, want NaN", data[0])
	}
}

func TestNPYHeaderExact(t *testing.T) {
	tests := []struct {
		shape []int
		want  string
	}{
		{
			[]int{64, 28, 28},
			"\x93NUMPY\x01\x00v\x00{'descr': '<f4', 'fortran_order': False, 'shape': (64, 28, 28), }" +
				strings.Repeat(" ", 52) + "\n",
		},
		{
			[]int{3},
			"\x93NUMPY\x01\x00v\x00{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }" +
				strings.Repeat(" ", 60) + "\n",
		},
		{
			nil,
			"\x93NUMPY\x01\x00v\x00{'descr': '<f4', 'fortran_order': False, 'shape': (), }" +
				strings.Repeat(" ", 62) + "\n",
		},
	}
	for _, tt := range tests {
		n, _ := product(tt.shape...)
		var buf bytes.Buffer
		if err := WriteNPY(&buf, make([]float32, n), tt.shape...); err != nil {
			t.Fatalf("WriteNPY(shape %v): %v", tt.shape, err)
		}
		got := buf.String()[:len(tt.want)]
		if got != tt.want {
			t.Errorf("header for shape %v:\n got %q\nwant %q", tt.shape, got, tt.want)
		}
		if len(tt.want)%64 != 0 {
			t.Errorf("expected header for shape %v is %d bytes, not a multiple of 64", tt.shape, len(tt.want))
		}
	}
}

func TestWriteNPYErrors(t *testing.T) {
	tests := []struct {
		name  string
		data  []float32
		shape []int
	}{
		{"too few", seq(5), []int{2, 3}},
		{"too many", seq(7), []int{2, 3}},
		{"0-d with no data", nil, nil},
		{"negative dim", seq(0), []int{-1, 0}},
		{"overflow", seq(1), []int{math.MaxInt, math.MaxInt}},
		{"shape too long", nil, slices.Repeat([]int{0}, 40000)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := WriteNPY(io.Discard, tt.data, tt.shape...); err == nil {
				t.Error("WriteNPY succeeded, want error")
			}
		})
	}
}

type failWriter struct{ after int }

func (w *failWriter) Write(p []byte) (int, error) {
	if len(p) > w.after {
		return 0, errors.New("disk full")
	}
	w.after -= len(p)
	return len(p), nil
}

func TestWriteNPYWriterError(t *testing.T) {
	for _, after := range []int{0, 64, 100} {
		err := WriteNPY(&failWriter{after: after}, seq(100), 100)
		if err == nil || !strings.Contains(err.Error(), "disk full") {
			t.Errorf("after %d bytes: err = %v, want wrapped disk full", after, err)
		}
	}
}

// npyFile builds an .npy file with the given version and header dict,
// followed by data.
func npyFile(major byte, dict string, data []byte) []byte {
	var b bytes.Buffer
	b.WriteString(npyMagic)
	b.WriteByte(major)
	b.WriteByte(0)
	if major == 1 {
		binary.Write(&b, binary.LittleEndian, uint16(len(dict)))
	} else {
		binary.Write(&b, binary.LittleEndian, uint32(len(dict)))
	}
	b.WriteString(dict)
	b.Write(data)
	return b.Bytes()
}

func TestReadNPYVariants(t *testing.T) {
	two := make([]byte, 8)
	binary.LittleEndian.PutUint32(two[0:], math.Float32bits(1.5))
	binary.LittleEndian.PutUint32(two[4:], math.Float32bits(-2))
	tests := []struct {
		name      string
		file      []byte
		wantShape []int
	}{
		{"version 2", npyFile(2, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }\n", two), []int{2}},
		{"version 3", npyFile(3, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }\n", two), []int{2}},
		{"key order and quotes", npyFile(1, `{"shape": (1, 2), "fortran_order": False, "descr": "<f4"}`, two), []int{1, 2}},
		{"no padding or spaces", npyFile(1, "{'descr':'<f4','fortran_order':False,'shape':(2,)}", two), []int{2}},
		{"python 2 long", npyFile(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2L,), }", two), []int{2}},
		{"trailing data", append(npyFile(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", two), 9, 9, 9), []int{2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, shape, err := ReadNPY(bytes.NewReader(tt.file))
			if err != nil {
				t.Fatalf("ReadNPY: %v", err)
			}
			if !slices.Equal(shape, tt.wantShape) {
				t.Errorf("shape = %v, want %v", shape, tt.wantShape)
			}
			if !slices.Equal(data, []float32{1.5, -2}) {
				t.Errorf("data = %v, want [1.5 -2]", data)
			}
		})
	}
}

func TestReadNPYErrors(t *testing.T) {
	valid := func(dict string, nbytes int) []byte { return npyFile(1, dict, make([]byte, nbytes)) }
	good := "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }\n"
	hugeV2 := []byte(npyMagic + "\x02\x00\xff\xff\xff\xff")
	tests := []struct {
		name    string
		file    []byte
		wantErr string
	}{
		{"empty", nil, "magic"},
		{"short magic", []byte("\x93NUM"), "magic"},
		{"wrong magic", append([]byte("\x93NUMPZ"), valid(good, 24)[6:]...), "bad magic"},
		{"png", []byte("\x89PNG\r\n\x1a\n\x00\x00"), "bad magic"},
		{"version 4", append([]byte(npyMagic), 4, 0, 0, 0), "version"},
		{"version 1.1", append([]byte(npyMagic), 1, 1, 0, 0), "version"},
		{"missing header length", []byte(npyMagic + "\x01\x00"), "header length"},
		{"truncated header", valid(good, 0)[:30], "header"},
		{"huge v2 header", hugeV2, "exceeds limit"},
		{"float64", valid("{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }", 48), "dtype"},
		{"big-endian", valid("{'descr': '>f4', 'fortran_order': False, 'shape': (2, 3), }", 24), "dtype"},
		{"int32", valid("{'descr': '<i4', 'fortran_order': False, 'shape': (2, 3), }", 24), "dtype"},
		{"fortran order", valid("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", 24), "Fortran"},
		{"truncated data", valid(good, 23), "truncated data"},
		{"no data", valid(good, 0), "truncated data"},
		{"huge shape", valid("{'descr': '<f4', 'fortran_order': False, 'shape': (1000000000, 1000000000), }", 16), "truncated data"},
		{"overflowing shape", valid("{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296, 4294967296), }", 16), "too large"},
		{"dimension out of range", valid("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999999,), }", 16), "out of range"},
		{"negative dimension", valid("{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }", 16), "integer"},
		{"one-tuple without comma", valid("{'descr': '<f4', 'fortran_order': False, 'shape': (6), }", 24), "trailing comma"},
		{"missing key", valid("{'descr': '<f4', 'shape': (2, 3), }", 24), "missing key"},
		{"unknown key", valid("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), 'x': 1}", 24), "unexpected key"},
		{"duplicate key", valid("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)}", 24), "duplicate"},
		{"not a dict", valid("[1, 2, 3]", 24), "expected '{'"},
		{"unterminated dict", valid("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)", 24), "expected"},
		{"unterminated string", valid("{'descr: '<f4}", 24), "expected"},
		{"trailing garbage", valid("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)} x", 24), "trailing"},
		{"bad bool", valid("{'descr': '<f4', 'fortran_order': 0, 'shape': (2, 3)}", 24), "True or False"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, shape, err := ReadNPY(bytes.NewReader(tt.file))
			if err == nil {
				t.Fatalf("ReadNPY succeeded with shape %v and %d values, want error", shape, len(data))
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q does not mention %q", err, tt.wantErr)
			}
		})
	}
}

type errReader struct{ r io.Reader }

func (r errReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if err == io.EOF {
		return n, errors.New("network down")
	}
	return n, err
}

func TestReadNPYReaderError(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteNPY(&buf, seq(6), 2, 3); err != nil {
		t.Fatal(err)
	}
	file := buf.Bytes()[:buf.Len()-1]
	_, _, err := ReadNPY(errReader{bytes.NewReader(file)})
	if err == nil || !strings.Contains(err.Error(), "network down") {
		t.Errorf("err = %v, want wrapped network down", err)
	}
}

// TestNPYNumpy checks that numpy itself loads what WriteNPY writes, and
// that ReadNPY reads what numpy writes. It is skipped when numpy is not
// installed.
func TestNPYNumpy(t *testing.T) {
	const python = "/usr/bin/python3"
	if err := exec.Command(python, "-c", "import numpy").Run(); err != nil {
		t.Skipf("numpy not available: %v", err)
	}
	dir := t.TempDir()
	tests := []struct {
		shape []int
		want  string
	}{
		{nil, "()"},
		{[]int{5}, "(5,)"},
		{[]int{3, 4}, "(3, 4)"},
		{[]int{4, 3, 2}, "(4, 3, 2)"},
		{[]int{2, 0}, "(2, 0)"},
	}
	for i, tt := range tests {
		n, _ := product(tt.shape...)
		data := seq(n)
		path := filepath.Join(dir, fmt.Sprintf("a%d.npy", i))
		var buf bytes.Buffer
		if err := WriteNPY(&buf, data, tt.shape...); err != nil {
			t.Fatalf("WriteNPY: %v", err)
		}
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		// numpy loads the file; print shape, dtype and values, and check
		// the values against the same formula seq uses.
		script := `
import sys, numpy as np
a = np.load(sys.argv[1])
want = (np.arange(a.size, dtype=np.float32) * np.float32(0.5) - np.float32(3)).reshape(a.shape)
assert a.dtype == np.float32, a.dtype
assert a.flags.c_contiguous
assert np.array_equal(a, want), (a, want)
print(a.shape)
np.save(sys.argv[1] + '.back.npy', a * np.float32(2))
`
		out, err := exec.Command(python, "-c", script, path).CombinedOutput()
		if err != nil {
			t.Fatalf("shape %v: numpy failed: %v\n%s", tt.shape, err, out)
		}
		if got := strings.TrimSpace(string(out)); got != tt.want {
			t.Errorf("numpy shape = %s, want %s", got, tt.want)
		}

		// And back: read the array numpy saved.
		back, err := os.ReadFile(path + ".back.npy")
		if err != nil {
			t.Fatal(err)
		}
		got, shape, err := ReadNPY(bytes.NewReader(back))
		if err != nil {
			t.Fatalf("ReadNPY of numpy output: %v", err)
		}
		wantShape := tt.shape
		if wantShape == nil {
			wantShape = []int{}
		}
		if !slices.Equal(shape, wantShape) {
			t.Errorf("shape read back = %v, want %v", shape, wantShape)
		}
		for j := range got {
			if got[j] != 2*data[j] {
				t.Fatalf("value %d read back = %v, want %v", j, got[j], 2*data[j])
			}
		}
	}
}

func FuzzReadNPY(f *testing.F) {
	for _, shape := range [][]int{nil, {0}, {3}, {2, 3}, {2, 1, 2}} {
		n, _ := product(shape...)
		var buf bytes.Buffer
		if err := WriteNPY(&buf, seq(n), shape...); err != nil {
			f.Fatal(err)
		}
		f.Add(buf.Bytes())
	}
	f.Add(npyFile(2, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", make([]byte, 4)))
	f.Add(npyFile(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999, 99999999999), }", nil))
	f.Add(npyFile(1, "{'descr': '<f8', 'fortran_order': True, 'shape': (1,), }", make([]byte, 8)))
	f.Add([]byte(npyMagic + "\x03\x00\xff\xff\x0f\x00"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		data, shape, err := ReadNPY(bytes.NewReader(b))
		if err != nil {
			return
		}
		n, ok := product(shape...)
		if !ok || n != len(data) {
			t.Fatalf("shape %v inconsistent with %d values", shape, len(data))
		}
		if 4*len(data) > len(b) {
			t.Fatalf("%d values from %d bytes of input", len(data), len(b))
		}
		// Whatever ReadNPY accepts, WriteNPY must be able to write back
		// and ReadNPY read again identically.
		var buf bytes.Buffer
		if err := WriteNPY(&buf, data, shape...); err != nil {
			// Very long shapes may not fit a version 1.0 header.
			return
		}
		data2, shape2, err := ReadNPY(&buf)
		if err != nil {
			t.Fatalf("re-reading written array: %v", err)
		}
		if !slices.Equal(shape, shape2) {
			t.Fatalf("shape %v became %v", shape, shape2)
		}
		for i := range data {
			if math.Float32bits(data[i]) != math.Float32bits(data2[i]) {
				t.Fatalf("value %d changed from %v to %v", i, data[i], data2[i])
			}
		}
	})
}
