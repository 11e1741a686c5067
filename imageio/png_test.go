package imageio

import (
	"bytes"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"testing"
)

func TestWritePNG(t *testing.T) {
	img, err := Grid([]float32{0, 0.5, 1, 0.25, 0.75, 1}, 2, 1, 3, 1, 0)
	if err != nil {
		t.Fatalf("Grid: %v", err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "samples.png")
	if err := os.WriteFile(path, []byte("old contents"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WritePNG(path, img); err != nil {
		t.Fatalf("WritePNG: %v", err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, err := png.Decode(f)
	if err != nil {
		t.Fatalf("decoding written file: %v", err)
	}
	assertSameImage(t, got, img)

	// No temporary files are left behind.
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("directory holds %v, want only samples.png", names)
	}
}

func TestWritePNGErrors(t *testing.T) {
	dir := t.TempDir()
	img := image.NewGray(image.Rect(0, 0, 2, 2))
	tests := []struct {
		name string
		path string
		img  image.Image
	}{
		{"nil image", filepath.Join(dir, "a.png"), nil},
		{"missing directory", filepath.Join(dir, "no", "such", "a.png"), img},
		{"path is directory", dir + string(filepath.Separator), img},
		{"rename over directory", dir, img},
		{"empty image", filepath.Join(dir, "empty.png"), image.NewGray(image.Rectangle{})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := WritePNG(tt.path, tt.img); err == nil {
				t.Errorf("WritePNG(%q) succeeded, want error", tt.path)
			}
		})
	}
	// Failed writes leave no temporary files behind.
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		t.Errorf("leftover file %s", e.Name())
	}
}

func TestEncodePNG(t *testing.T) {
	img, err := Grid([]float32{1, 0, 0, 0, 1, 0}, 2, 1, 1, 3, 0)
	if err != nil {
		t.Fatalf("Grid: %v", err)
	}
	var buf bytes.Buffer
	if err := EncodePNG(&buf, img); err != nil {
		t.Fatalf("EncodePNG: %v", err)
	}
	got, err := png.Decode(&buf)
	if err != nil {
		t.Fatalf("png.Decode: %v", err)
	}
	assertSameImage(t, got, img)

	if err := EncodePNG(&buf, nil); err == nil {
		t.Error("EncodePNG(nil) succeeded, want error")
	}
}

func assertSameImage(t *testing.T, got, want image.Image) {
	t.Helper()
	if got.Bounds() != want.Bounds() {
		t.Fatalf("bounds = %v, want %v", got.Bounds(), want.Bounds())
	}
	b := want.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r1, g1, b1, a1 := got.At(x, y).RGBA()
			r2, g2, b2, a2 := want.At(x, y).RGBA()
			if r1 != r2 || g1 != g2 || b1 != b2 || a1 != a2 {
				t.Fatalf("pixel (%d,%d) = %v, want %v", x, y, got.At(x, y), want.At(x, y))
			}
		}
	}
}
