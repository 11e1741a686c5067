package data

import (
	"image"
	"image/color"
	"math"
	"strings"
	"testing"
)

// grayRows is a gray image whose row y is rows[y].
func grayRows(rows ...[]uint8) *image.Gray {
	img := image.NewGray(image.Rect(0, 0, len(rows[0]), len(rows)))
	for y, r := range rows {
		copy(img.Pix[y*img.Stride:], r)
	}
	return img
}

func TestLoadImageFolderSized(t *testing.T) {
	u := func(v float64) float32 { return float32(v / 255) }
	// rgbNonSquare is 6 wide and 4 high: cropped to columns 1-4, its pixels are
	// rgbImage's pixels shifted by one column.
	rgbNonSquare := rgbImage(6, 4, 10)
	var rgbCrop []float32
	for y := range 4 {
		for x := 1; x < 5; x++ {
			c := rgbNonSquare.RGBAAt(x, y)
			rgbCrop = append(rgbCrop, u(float64(c.R)), u(float64(c.G)), u(float64(c.B)))
		}
	}
	tests := []struct {
		name  string
		img   image.Image
		size  int
		shape Shape
		want  []float32
	}{
		{
			name: "downscale by 2 averages blocks",
			img: grayRows(
				[]uint8{0, 40, 100, 100},
				[]uint8{80, 120, 100, 100},
				[]uint8{0, 0, 255, 255},
				[]uint8{0, 4, 255, 255}),
			size: 2, shape: Shape{2, 2, 1},
			want: []float32{u(60), u(100), u(1), u(255)},
		},
		{
			name: "downscale by 1.5 weights partly covered pixels",
			img:  grayRows([]uint8{0, 51, 255}, []uint8{0, 51, 255}, []uint8{0, 51, 255}),
			size: 2, shape: Shape{2, 2, 1},
			want: []float32{u(17), u(187), u(17), u(187)},
		},
		{
			name: "tall image cropped to its middle",
			img:  grayRows([]uint8{9, 9}, []uint8{1, 2}, []uint8{3, 4}, []uint8{9, 9}),
			size: 2, shape: Shape{2, 2, 1},
			want: []float32{u(1), u(2), u(3), u(4)},
		},
		{
			name: "wide RGB image cropped to its middle",
			img:  rgbNonSquare,
			size: 4, shape: Shape{4, 4, 3},
			want: rgbCrop,
		},
		{
			name: "upscale interpolates bilinearly",
			img:  grayRows([]uint8{0, 200}, []uint8{0, 200}),
			size: 4, shape: Shape{4, 4, 1},
			want: []float32{
				u(0), u(50), u(150), u(200),
				u(0), u(50), u(150), u(200),
				u(0), u(50), u(150), u(200),
				u(0), u(50), u(150), u(200)},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeFiles(t, map[string][]byte{"a.png": encodePNG(t, tc.img)})
			s, err := LoadImageFolderSized(dir, tc.size)
			if err != nil {
				t.Fatal(err)
			}
			checkSet(t, s)
			if s.N != 1 || s.Shape != tc.shape {
				t.Fatalf("N %d Shape %+v, want 1 of %+v", s.N, s.Shape, tc.shape)
			}
			for i, w := range tc.want {
				if math.Abs(float64(s.X[i]-w)) > 1e-6 {
					t.Fatalf("X = %v,\nwant %v", s.X, tc.want)
				}
			}
		})
	}
}

// Images of different sizes and kinds load into one Set of the size asked for;
// a uniform image stays uniform.
func TestLoadImageFolderSizedMixed(t *testing.T) {
	tests := []struct {
		name  string
		files map[string][]byte
		c     int
	}{
		{"gray", map[string][]byte{
			"a.png": encodePNG(t, uniform(color.Gray{100}, 8, 6)),
			"b.png": encodePNG(t, uniform(color.Gray{100}, 3, 5)),
			"c.jpg": encodeJPEG(t, uniform(color.Gray{100}, 17, 16)),
		}, 1},
		{"gray and RGB", map[string][]byte{
			"a.png": encodePNG(t, uniform(color.Gray{100}, 8, 6)),
			"b.png": encodePNG(t, uniform(color.RGBA{100, 100, 100, 255}, 3, 5)),
			"c.png": encodePNG(t, uniform(color.Gray{100}, 40, 16)),
		}, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := LoadImageFolderSized(writeFiles(t, tc.files), 4)
			if err != nil {
				t.Fatal(err)
			}
			checkSet(t, s)
			if s.N != 3 || s.Shape != (Shape{4, 4, tc.c}) {
				t.Fatalf("N %d Shape %+v, want 3 of 4×4×%d", s.N, s.Shape, tc.c)
			}
			for i, v := range s.X {
				if math.Abs(float64(v)-100.0/255) > 1e-6 {
					t.Fatalf("X[%d] = %v, want %v", i, v, 100.0/255)
				}
			}
		})
	}
}

func TestLoadImageFolderSizedErrors(t *testing.T) {
	dir := writeFiles(t, map[string][]byte{"a.png": encodePNG(t, grayImage(2, 2, 0))})
	tests := []struct {
		name string
		dir  string
		size int
		want string
	}{
		{"negative size", dir, -1, "image size must be in 1..1024"},
		{"size too large", dir, MaxImageSide + 1, "got 1025"},
		{"no images", t.TempDir(), 4, "no images found"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := LoadImageFolderSized(tc.dir, tc.size)
			if err == nil || s != nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, %v; want an error containing %q", s, err, tc.want)
			}
		})
	}
}

// Without a size, images of different sizes are an error that says what to do.
func TestLoadImageFolderUnsizedMixed(t *testing.T) {
	dir := writeFiles(t, map[string][]byte{
		"a.png": encodePNG(t, grayImage(2, 2, 0)),
		"b.png": encodePNG(t, grayImage(3, 2, 0)),
	})
	_, err := LoadImageFolder(dir)
	if err == nil || !strings.Contains(err.Error(), "one size") || !strings.Contains(err.Error(), "image size") {
		t.Fatalf("got %v", err)
	}
}

func TestResampleTapsSumToOne(t *testing.T) {
	for _, in := range []int{1, 2, 3, 7, 32, 178, 218} {
		for _, out := range []int{1, 2, 5, 32, 64, 100} {
			for o, ts := range resampleTaps(in, out) {
				var sum float64
				for _, tp := range ts {
					if tp.i < 0 || tp.i >= in || tp.w < 0 {
						t.Fatalf("in %d out %d: output %d has tap %+v", in, out, o, tp)
					}
					sum += float64(tp.w)
				}
				if math.Abs(sum-1) > 1e-6 {
					t.Fatalf("in %d out %d: output %d's weights sum to %v", in, out, o, sum)
				}
			}
		}
	}
}
