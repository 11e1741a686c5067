package data

import (
	"bytes"
	"image"
	"image/color"
	"os"
	"path/filepath"
	"testing"
)

// checkSet verifies the invariants every loaded Set must satisfy.
func checkSet(t *testing.T, s *Set) {
	t.Helper()
	if s.N < 0 || s.Dim < 0 || len(s.X) != s.N*s.Dim {
		t.Fatalf("N %d Dim %d len(X) %d", s.N, s.Dim, len(s.X))
	}
	if s.Shape.IsImage() && s.Shape.Size() != s.Dim {
		t.Fatalf("Shape %+v does not match Dim %d", s.Shape, s.Dim)
	}
	if s.Labels != nil && len(s.Labels) != s.N {
		t.Fatalf("len(Labels) %d, N %d", len(s.Labels), s.N)
	}
	for i, v := range s.X {
		if !(v >= 0 && v <= 1) {
			t.Fatalf("X[%d] = %v outside [0,1]", i, v)
		}
	}
}

func FuzzReadIDXImages(f *testing.F) {
	f.Add(idxImages(0x803, 2, 2, 3, seq(12)))
	f.Add(idxImages(0x803, 1, 28, 28, seq(784)))
	f.Add(idxImages(0x803, 3, 2, 2, seq(5)))
	f.Add(idxImages(0x803, 0, 0, 0, nil))
	f.Add(idxImages(0x803, 0xffffffff, 0xffffffff, 0xffffffff, nil))
	f.Add(idxImages(0x803, 1<<20, 1<<12, 1<<12, seq(64)))
	f.Add(idxLabels(0x801, 2, []byte{1, 2}))
	f.Add([]byte{0, 0, 8})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ReadIDXImages(bytes.NewReader(b), "fuzz")
		if err != nil {
			if s != nil {
				t.Fatalf("got a Set and an error: %v", err)
			}
			return
		}
		checkSet(t, s)
		if !s.Shape.IsImage() || s.Shape.C != 1 || 16+len(s.X) > len(b) {
			t.Fatalf("Shape %+v, %d values from %d bytes", s.Shape, len(s.X), len(b))
		}
		for i, v := range s.X {
			if v != float32(b[16+i])/255 {
				t.Fatalf("X[%d] = %v, byte %d", i, v, b[16+i])
			}
		}
	})
}

func FuzzReadIDXLabels(f *testing.F) {
	f.Add(idxLabels(0x801, 4, []byte{5, 0, 4, 1}))
	f.Add(idxLabels(0x801, 10, []byte{1, 2, 3}))
	f.Add(idxLabels(0x801, 0, nil))
	f.Add(idxLabels(0x801, 0xffffffff, nil))
	f.Add(idxImages(0x803, 1, 1, 1, []byte{1}))
	f.Add([]byte{0, 0, 8, 1, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		labels, err := ReadIDXLabels(bytes.NewReader(b), "fuzz")
		if err != nil {
			if labels != nil {
				t.Fatalf("got labels and an error: %v", err)
			}
			return
		}
		if 8+len(labels) > len(b) || !bytes.Equal(labels, b[8:8+len(labels)]) {
			t.Fatalf("%d labels from %d bytes do not match the input", len(labels), len(b))
		}
	})
}

func FuzzDecodeImageFolder(f *testing.F) {
	f.Add(encodePNG(f, grayImage(3, 2, 10)))
	f.Add(encodePNG(f, rgbImage(4, 4, 1)))
	paletted := image.NewPaletted(image.Rect(0, 0, 2, 2), color.Palette{color.Gray{0}, color.RGBA{255, 0, 0, 255}})
	f.Add(encodePNG(f, paletted))
	f.Add(encodePNG(f, image.NewNRGBA64(image.Rect(0, 0, 2, 3))))
	f.Add(encodePNG(f, image.NewGray16(image.Rect(0, 0, 3, 1))))
	f.Add(encodeJPEG(f, uniform(color.Gray{200}, 8, 8)))
	f.Add(encodeJPEG(f, uniform(color.RGBA{200, 100, 50, 255}, 16, 8)))
	f.Add(encodePNG(f, grayImage(3, 3, 0))[:40])
	f.Add([]byte("\x89PNG\r\n\x1a\n"))
	f.Add([]byte{})
	// One folder per fuzz process, rewritten for each input: inputs run one at a time.
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		if err := os.WriteFile(filepath.Join(dir, "fuzz.png"), b, 0o644); err != nil {
			t.Fatal(err)
		}
		s, err := LoadImageFolder(dir)
		if err != nil {
			if s != nil {
				t.Fatalf("got a Set and an error: %v", err)
			}
			return
		}
		checkSet(t, s)
		if s.N != 1 || !s.Shape.IsImage() || (s.Shape.C != 1 && s.Shape.C != 3) {
			t.Fatalf("N %d Shape %+v", s.N, s.Shape)
		}
		r, err := LoadImageFolderSized(dir, 5)
		if err != nil {
			t.Fatalf("loads at its own size but not resized: %v", err)
		}
		checkSet(t, r)
		if r.N != 1 || r.Shape != (Shape{5, 5, s.Shape.C}) {
			t.Fatalf("resized: N %d Shape %+v, unresized C %d", r.N, r.Shape, s.Shape.C)
		}
	})
}

func FuzzReadCIFAR10(f *testing.F) {
	f.Add(cifarBatch(1, []byte{3}))
	f.Add(cifarBatch(2, []byte{9, 0}))
	f.Add(cifarBatch(1, []byte{10}))
	f.Add(cifarBatch(2, []byte{1, 2})[:CIFAR10RecordSize+1])
	f.Add([]byte{7})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ReadCIFAR10(bytes.NewReader(b), "fuzz")
		whole := len(b)%CIFAR10RecordSize == 0
		labelsOK := true
		for r := 0; whole && r < len(b)/CIFAR10RecordSize; r++ {
			labelsOK = labelsOK && b[r*CIFAR10RecordSize] < 10
		}
		if err != nil {
			if s != nil {
				t.Fatalf("got a Set and an error: %v", err)
			}
			if whole && labelsOK {
				t.Fatalf("%d bytes of whole records with labels 0-9 refused: %v", len(b), err)
			}
			return
		}
		if !whole || !labelsOK {
			t.Fatalf("no error for %d bytes (whole records: %v, labels 0-9: %v)", len(b), whole, labelsOK)
		}
		checkSet(t, s)
		if s.N != len(b)/CIFAR10RecordSize || s.Shape != (Shape{H: 32, W: 32, C: 3}) {
			t.Fatalf("N %d, Shape %+v from %d bytes", s.N, s.Shape, len(b))
		}
		plane := CIFAR10RecordSize / 3
		for r := range s.N {
			rec := b[r*CIFAR10RecordSize:]
			if s.Labels[r] != rec[0] {
				t.Fatalf("record %d: label %d, byte %d", r, s.Labels[r], rec[0])
			}
			for i, v := range s.Row(r) {
				p, c := i/3, i%3
				if want := float32(rec[1+c*plane+p]) / 255; v != want {
					t.Fatalf("record %d value %d = %v, want %v", r, i, v, want)
				}
			}
		}
	})
}
