package data

import (
	"bytes"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// grayImage is a w×h gray image whose pixel (x, y) is v+x+w*y.
func grayImage(w, h int, v uint8) *image.Gray {
	img := image.NewGray(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = v + uint8(i)
	}
	return img
}

// rgbImage is a w×h opaque image whose pixel (x, y) is (v, 2v, 3v)+index.
func rgbImage(w, h int, v uint8) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			i := uint8(x + w*y)
			img.SetRGBA(x, y, color.RGBA{v + i, 2*v + i, 3*v + i, 255})
		}
	}
	return img
}

func encodePNG(t testing.TB, img image.Image) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func encodeJPEG(t testing.TB, img image.Image) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 100}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// writeFiles writes name -> content into a new temporary folder.
func writeFiles(t *testing.T, files map[string][]byte) string {
	t.Helper()
	dir := t.TempDir()
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestLoadImageFolder(t *testing.T) {
	grayPalette := color.Palette{color.Gray{0}, color.Gray{128}, color.Gray{255}}
	paletted := image.NewPaletted(image.Rect(0, 0, 3, 2), grayPalette)
	for i := range paletted.Pix {
		paletted.Pix[i] = uint8(i % 3)
	}
	half := image.NewNRGBA(image.Rect(0, 0, 3, 2))
	for i := 0; i < len(half.Pix); i += 4 {
		copy(half.Pix[i:], []uint8{255, 255, 255, 128}) // half-transparent white
	}
	tests := []struct {
		name  string
		files map[string][]byte
		shape Shape
		n     int
		// checks maps (example, value index) to the wanted value, within tol.
		checks map[[2]int]float32
		tol    float32
	}{
		{
			name: "gray PNGs sorted by name, others ignored",
			files: map[string][]byte{
				"b.png":      encodePNG(t, grayImage(3, 2, 100)),
				"a.PNG":      encodePNG(t, grayImage(3, 2, 0)),
				"c.png":      encodePNG(t, grayImage(3, 2, 200)),
				"notes.txt":  []byte("not an image"),
				"image.gif":  []byte("GIF89a"),
				"noext":      encodePNG(t, grayImage(9, 9, 1)),
				"zz.png.bak": []byte("x"),
			},
			shape:  Shape{2, 3, 1},
			n:      3,
			checks: map[[2]int]float32{{0, 0}: 0, {0, 5}: 5.0 / 255, {1, 0}: 100.0 / 255, {2, 1}: 201.0 / 255},
		},
		{
			name:   "RGB PNGs",
			files:  map[string][]byte{"x.png": encodePNG(t, rgbImage(2, 2, 10)), "y.png": encodePNG(t, rgbImage(2, 2, 20))},
			shape:  Shape{2, 2, 3},
			n:      2,
			checks: map[[2]int]float32{{0, 0}: 10.0 / 255, {0, 1}: 20.0 / 255, {0, 2}: 30.0 / 255, {0, 3}: 11.0 / 255, {1, 11}: 63.0 / 255},
		},
		{
			name:   "mixed gray and RGB become RGB",
			files:  map[string][]byte{"1.png": encodePNG(t, grayImage(2, 2, 50)), "2.png": encodePNG(t, rgbImage(2, 2, 1))},
			shape:  Shape{2, 2, 3},
			n:      2,
			checks: map[[2]int]float32{{0, 0}: 50.0 / 255, {0, 1}: 50.0 / 255, {0, 2}: 50.0 / 255, {0, 3}: 51.0 / 255, {1, 2}: 3.0 / 255},
		},
		{
			name: "JPEG gray and colour, upper-case extensions",
			files: map[string][]byte{
				"g.JPG":  encodeJPEG(t, uniform(color.Gray{200}, 8, 8)),
				"c.jpeg": encodeJPEG(t, uniform(color.RGBA{200, 100, 50, 255}, 8, 8)),
			},
			shape: Shape{8, 8, 3},
			n:     2,
			// c.jpeg sorts first; g.JPG is gray, replicated into R, G and B.
			checks: map[[2]int]float32{{0, 0}: 200.0 / 255, {0, 1}: 100.0 / 255, {0, 2}: 50.0 / 255,
				{1, 0}: 200.0 / 255, {1, 1}: 200.0 / 255, {1, 191}: 200.0 / 255},
			tol: 3.0 / 255,
		},
		{
			name:   "gray JPEG",
			files:  map[string][]byte{"g.jpg": encodeJPEG(t, uniform(color.Gray{90}, 8, 8))},
			shape:  Shape{8, 8, 1},
			n:      1,
			checks: map[[2]int]float32{{0, 0}: 90.0 / 255, {0, 63}: 90.0 / 255},
			tol:    2.0 / 255,
		},
		{
			name:   "gray-palette PNG is gray",
			files:  map[string][]byte{"p.png": encodePNG(t, paletted)},
			shape:  Shape{2, 3, 1},
			n:      1,
			checks: map[[2]int]float32{{0, 0}: 0, {0, 1}: 128.0 / 255, {0, 2}: 1},
		},
		{
			name:   "alpha is composited onto black",
			files:  map[string][]byte{"h.png": encodePNG(t, half)},
			shape:  Shape{2, 3, 3},
			n:      1,
			checks: map[[2]int]float32{{0, 0}: 128.0 / 255, {0, 17}: 128.0 / 255},
		},
		{
			name: "PNG content under a .jpg name",
			files: map[string][]byte{
				"a.png": encodePNG(t, grayImage(2, 2, 0)),
				"b.jpg": encodePNG(t, grayImage(2, 2, 7)),
			},
			shape:  Shape{2, 2, 1},
			n:      2,
			checks: map[[2]int]float32{{1, 0}: 7.0 / 255},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeFiles(t, tt.files)
			if err := os.Mkdir(filepath.Join(dir, "sub.png"), 0o755); err != nil { // folders are skipped
				t.Fatal(err)
			}
			s, err := LoadImageFolder(dir)
			if err != nil {
				t.Fatal(err)
			}
			if s.Shape != tt.shape || s.N != tt.n || s.Dim != tt.shape.Size() || len(s.X) != s.N*s.Dim || s.Labels != nil {
				t.Fatalf("got Shape %+v N %d Dim %d len(X) %d Labels %v; want Shape %+v N %d",
					s.Shape, s.N, s.Dim, len(s.X), s.Labels, tt.shape, tt.n)
			}
			if s.Name != filepath.Base(dir) {
				t.Errorf("Name = %q, want %q", s.Name, filepath.Base(dir))
			}
			for _, v := range s.X {
				if v < 0 || v > 1 || math.IsNaN(float64(v)) {
					t.Fatalf("value %v outside [0,1]", v)
				}
			}
			for at, want := range tt.checks {
				if got := s.Row(at[0])[at[1]]; math.Abs(float64(got-want)) > float64(tt.tol)+1e-6 {
					t.Errorf("example %d value %d = %v, want %v", at[0], at[1], got, want)
				}
			}
		})
	}
}

// uniform is a w×h image of colour c, in c's own model (Gray stays gray).
func uniform(c color.Color, w, h int) image.Image {
	r := image.Rect(0, 0, w, h)
	if g, ok := c.(color.Gray); ok {
		img := image.NewGray(r)
		for i := range img.Pix {
			img.Pix[i] = g.Y
		}
		return img
	}
	img := image.NewRGBA(r)
	for y := range h {
		for x := range w {
			img.Set(x, y, c)
		}
	}
	return img
}

func TestLoadImageFolderErrors(t *testing.T) {
	tests := []struct {
		name    string
		files   map[string][]byte
		wantErr []string
	}{
		{
			name:    "empty folder",
			wantErr: []string{"no images found", ".png, .jpg, .jpeg"},
		},
		{
			name:    "only other files",
			files:   map[string][]byte{"readme.txt": []byte("hi")},
			wantErr: []string{"no images found"},
		},
		{
			name:    "corrupt file",
			files:   map[string][]byte{"a.png": encodePNG(t, grayImage(2, 2, 0)), "bad.png": []byte("\x89PNG\r\n\x1a\n garbage")},
			wantErr: []string{"bad.png", "cannot decode"},
		},
		{
			name:    "not an image",
			files:   map[string][]byte{"text.jpg": []byte("hello, world")},
			wantErr: []string{"text.jpg", "cannot decode", "unknown format"},
		},
		{
			name: "mixed sizes",
			files: map[string][]byte{
				"a.png": encodePNG(t, grayImage(4, 4, 0)),
				"b.png": encodePNG(t, grayImage(4, 4, 0)),
				"c.png": encodePNG(t, grayImage(8, 6, 0)),
			},
			wantErr: []string{"c.png is 8×6 but a.png (the first image) is 4×4"},
		},
		{
			name:    "truncated PNG",
			files:   map[string][]byte{"t.png": encodePNG(t, rgbImage(16, 16, 0))[:60]},
			wantErr: []string{"t.png", "cannot decode"},
		},
		{
			name:    "huge PNG header",
			files:   map[string][]byte{"big.png": hugePNGHeader(t, 1<<15, 1<<15)},
			wantErr: []string{"big.png", "implausible png image size 32768×32768"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeFiles(t, tt.files)
			s, err := LoadImageFolder(dir)
			if err == nil {
				t.Fatalf("got a set of %d images and no error, want an error containing %q", s.N, tt.wantErr)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if tt.name == "empty folder" && !strings.Contains(err.Error(), dir) {
				t.Errorf("error %q does not name the folder %s", err, dir)
			}
		})
	}
	if _, err := LoadImageFolder(filepath.Join(t.TempDir(), "missing")); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("missing folder: error %v, want one naming the folder", err)
	}
}

// hugePNGHeader returns the start of a PNG whose header claims w×h pixels.
func hugePNGHeader(t *testing.T, w, h int) []byte {
	t.Helper()
	// Encode a 1×1 image and patch its IHDR (and the IHDR's CRC).
	b := encodePNG(t, image.NewGray(image.Rect(0, 0, 1, 1)))
	ihdr := b[8+8 : 8+8+13]
	ihdr[0], ihdr[1], ihdr[2], ihdr[3] = byte(w>>24), byte(w>>16), byte(w>>8), byte(w)
	ihdr[4], ihdr[5], ihdr[6], ihdr[7] = byte(h>>24), byte(h>>16), byte(h>>8), byte(h)
	crc := crc32.ChecksumIEEE(b[8+4 : 8+8+13])
	b[8+8+13], b[8+8+14], b[8+8+15], b[8+8+16] = byte(crc>>24), byte(crc>>16), byte(crc>>8), byte(crc)
	return b
}
