package data

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// cifarPixel is the byte the fake CIFAR-10 files hold for channel c of pixel
// (y, x) of record rec of batch file file: distinct across channels, rows and
// columns, so that a misplaced value is caught.
func cifarPixel(file, rec, c, y, x int) byte {
	return byte(file*31 + rec*17 + c*85 + y*8 + x)
}

// cifarBatch builds a batch file of len(labels) records in the CIFAR-10
// binary layout: a label byte, then the red, green and blue planes.
func cifarBatch(file int, labels []byte) []byte {
	var b []byte
	for rec, l := range labels {
		b = append(b, l)
		for c := range 3 {
			for y := range 32 {
				for x := range 32 {
					b = append(b, cifarPixel(file, rec, c, y, x))
				}
			}
		}
	}
	return b
}

// fakeCIFAR10 returns the six files of a small CIFAR-10: batch file i
// (1 to 5) holds i records and the test file 3; labels cycle through 0-9.
func fakeCIFAR10() map[string][]byte {
	files := map[string][]byte{}
	next := 0
	labels := func(n int) []byte {
		l := make([]byte, n)
		for i := range l {
			l[i] = byte(next % 10)
			next++
		}
		return l
	}
	for i, name := range CIFAR10TrainFiles {
		files[name] = cifarBatch(i+1, labels(i+1))
	}
	files[CIFAR10TestFile] = cifarBatch(0, labels(3))
	return files
}

func writeCIFAR10(t *testing.T, dir string, files map[string][]byte) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// checkCIFARRecord checks that example i of s is record rec of batch file
// file, in HWC order, with the given label.
func checkCIFARRecord(t *testing.T, s *Set, i, file, rec int, label byte) {
	t.Helper()
	if s.Labels[i] != label {
		t.Errorf("%s: label %d = %d, want %d", s.Name, i, s.Labels[i], label)
	}
	row := s.Row(i)
	for y := range 32 {
		for x := range 32 {
			for c := range 3 {
				want := float32(cifarPixel(file, rec, c, y, x)) / 255
				if got := row[(y*32+x)*3+c]; got != want {
					t.Fatalf("%s: example %d pixel (y %d, x %d, c %d) = %v, want %v", s.Name, i, y, x, c, got, want)
				}
			}
		}
	}
}

func TestLoadCIFAR10(t *testing.T) {
	tests := []struct {
		name string
		sub  string // folder inside the given one that holds the files
	}{
		{"files in the folder", ""},
		{"files in cifar-10-batches-bin", CIFAR10Folder},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeCIFAR10(t, filepath.Join(dir, tc.sub), fakeCIFAR10())
			sp, err := LoadCIFAR10(dir)
			if err != nil {
				t.Fatal(err)
			}
			if sp.Valid != nil {
				t.Errorf("Valid = %+v, want nil", sp.Valid)
			}
			for _, s := range []*Set{sp.Train, sp.Test} {
				checkSet(t, s)
				if s.Shape != (Shape{32, 32, 3}) || s.Dim != 3072 {
					t.Errorf("%s: Shape %+v Dim %d", s.Name, s.Shape, s.Dim)
				}
			}
			if sp.Train.N != 15 || sp.Test.N != 3 || sp.Train.Name != "cifar10-train" || sp.Test.Name != "cifar10-test" {
				t.Fatalf("train %s N %d, test %s N %d; want 15 and 3", sp.Train.Name, sp.Train.N, sp.Test.Name, sp.Test.N)
			}
			i := 0
			for file := 1; file <= 5; file++ {
				for rec := range file {
					checkCIFARRecord(t, sp.Train, i, file, rec, byte(i%10))
					i++
				}
			}
			for rec := range 3 {
				checkCIFARRecord(t, sp.Test, rec, 0, rec, byte((15+rec)%10))
			}
		})
	}
}

func TestLoadCIFAR10Errors(t *testing.T) {
	tests := []struct {
		name   string
		change func(files map[string][]byte)
		want   []string
	}{
		{"missing batch", func(f map[string][]byte) { delete(f, "data_batch_3.bin") },
			[]string{"data_batch_3.bin missing", "test_batch.bin"}},
		{"missing test and batch", func(f map[string][]byte) { delete(f, "data_batch_5.bin"); delete(f, CIFAR10TestFile) },
			[]string{"data_batch_5.bin, test_batch.bin missing"}},
		{"truncated record", func(f map[string][]byte) { f["data_batch_2.bin"] = f["data_batch_2.bin"][:CIFAR10RecordSize+100] },
			[]string{"data_batch_2.bin", "3173 bytes", "record 1 is truncated (100 bytes)"}},
		{"bad label", func(f map[string][]byte) { f["data_batch_4.bin"][2*CIFAR10RecordSize] = 10 },
			[]string{"data_batch_4.bin", "record 2", "label 10"}},
		{"bad test label", func(f map[string][]byte) { f[CIFAR10TestFile][0] = 255 },
			[]string{"test_batch.bin", "record 0", "label 255"}},
		{"no training records", func(f map[string][]byte) {
			for _, name := range CIFAR10TrainFiles {
				f[name] = nil
			}
		}, []string{"hold no records"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			files := fakeCIFAR10()
			tc.change(files)
			dir := t.TempDir()
			writeCIFAR10(t, dir, files)
			sp, err := LoadCIFAR10(dir)
			if err == nil {
				t.Fatalf("no error; got %+v", sp)
			}
			if sp != nil {
				t.Errorf("got splits and an error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
	t.Run("no folder", func(t *testing.T) {
		_, err := LoadCIFAR10(filepath.Join(t.TempDir(), "absent"))
		if err == nil || !strings.Contains(err.Error(), "data_batch_1.bin") {
			t.Errorf("error %v does not name the missing files", err)
		}
	})
}

func TestReadCIFAR10(t *testing.T) {
	tests := []struct {
		name  string
		input []byte
		n     int
		err   string
	}{
		{"empty", nil, 0, ""},
		{"two records", cifarBatch(2, []byte{9, 0}), 2, ""},
		{"truncated", cifarBatch(2, []byte{1, 2})[:2*CIFAR10RecordSize-1], 0, "record 1 is truncated"},
		{"label only", []byte{3}, 0, "record 0 is truncated (1 bytes)"},
		{"bad label", cifarBatch(1, []byte{4, 11}), 0, "record 1 (byte offset 3073) has label 11"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := ReadCIFAR10(bytes.NewReader(tc.input), "batch")
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), "batch") {
					t.Fatalf("error %v, want one naming the input and containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			checkSet(t, s)
			if s.N != tc.n {
				t.Fatalf("N = %d, want %d", s.N, tc.n)
			}
			for i := range s.N {
				checkCIFARRecord(t, s, i, 2, i, tc.input[i*CIFAR10RecordSize])
			}
		})
	}
}
