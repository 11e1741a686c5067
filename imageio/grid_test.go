package imageio

import (
	"image"
	"math"
	"strings"
	"testing"
)

func TestGridGray(t *testing.T) {
	nan := float32(math.NaN())
	inf := float32(math.Inf(1))
	// Three 1×2 gray images; n=3 is not a perfect square, so cols
	// defaults to 2 and the grid has 2 rows with one empty cell.
	x := []float32{
		0, 1, // image 0
		0.5, -3, // image 1: mid gray and clamped low
		nan, inf, // image 2: NaN -> 0, +Inf clamped high
	}
	img, err := Grid(x, 3, 1, 2, 1, 0)
	if err != nil {
		t.Fatalf("Grid: %v", err)
	}
	g, ok := img.(*image.Gray)
	if !ok {
		t.Fatalf("Grid returned %T, want *image.Gray", img)
	}
	// Width: 2 cells of 2 pixels plus one gutter = 6; height: 2 rows of
	// 1 pixel plus one gutter = 4.
	if got, want := g.Bounds(), image.Rect(0, 0, 6, 4); got != want {
		t.Fatalf("bounds = %v, want %v", got, want)
	}
	const G = GridGutterGray
	want := [][]uint8{
		{0, 255, G, G, 128, 0},
		{G, G, G, G, G, G},
		{G, G, G, G, G, G},
		{0, 255, G, G, G, G},
	}
	for y, row := range want {
		for xx, v := range row {
			if got := g.GrayAt(xx, y).Y; got != v {
				t.Errorf("pixel (%d,%d) = %d, want %d", xx, y, got, v)
			}
		}
	}
}

func TestGridRGB(t *testing.T) {
	// Two 2×1 RGB images in one column.
	x := []float32{
		1, 0, 0, // image 0, row 0: red
		0, 1, 0, // image 0, row 1: green
		0, 0, 1, // image 1, row 0: blue
		2, -1, 0.2, // image 1, row 1: clamped, and 0.2*255 = 51
	}
	img, err := Grid(x, 2, 2, 1, 3, 1)
	if err != nil {
		t.Fatalf("Grid: %v", err)
	}
	m, ok := img.(*image.RGBA)
	if !ok {
		t.Fatalf("Grid returned %T, want *image.RGBA", img)
	}
	if got, want := m.Bounds(), image.Rect(0, 0, 1, 6); got != want {
		t.Fatalf("bounds = %v, want %v", got, want)
	}
	const G = GridGutterGray
	want := [][4]uint8{
		{255, 0, 0, 255},
		{0, 255, 0, 255},
		{G, G, G, 255},
		{G, G, G, 255},
		{0, 0, 255, 255},
		{255, 0, 51, 255},
	}
	for y, w := range want {
		c := m.RGBAAt(0, y)
		if got := [4]uint8{c.R, c.G, c.B, c.A}; got != w {
			t.Errorf("pixel (0,%d) = %v, want %v", y, got, w)
		}
	}
}

func TestGridLayout(t *testing.T) {
	tests := []struct {
		n, h, w, cols int
		wantW, wantH  int
	}{
		{n: 1, h: 3, w: 4, cols: 0, wantW: 4, wantH: 3},
		{n: 4, h: 2, w: 2, cols: 0, wantW: 2*2 + 2, wantH: 2*2 + 2},
		{n: 5, h: 2, w: 2, cols: 0, wantW: 3*2 + 2*2, wantH: 2*2 + 2},
		{n: 10, h: 1, w: 1, cols: 0, wantW: 4 + 3*2, wantH: 3 + 2*2},
		{n: 3, h: 1, w: 1, cols: 3, wantW: 3 + 2*2, wantH: 1},
		{n: 3, h: 1, w: 1, cols: 10, wantW: 3 + 2*2, wantH: 1},
		{n: 64, h: 28, w: 28, cols: 8, wantW: 8*28 + 7*2, wantH: 8*28 + 7*2},
	}
	for _, tt := range tests {
		x := make([]float32, tt.n*tt.h*tt.w)
		img, err := Grid(x, tt.n, tt.h, tt.w, 1, tt.cols)
		if err != nil {
			t.Errorf("Grid(n=%d, h=%d, w=%d, cols=%d): %v", tt.n, tt.h, tt.w, tt.cols, err)
			continue
		}
		if got, want := img.Bounds(), image.Rect(0, 0, tt.wantW, tt.wantH); got != want {
			t.Errorf("Grid(n=%d, h=%d, w=%d, cols=%d) bounds = %v, want %v", tt.n, tt.h, tt.w, tt.cols, got, want)
		}
	}
}

func TestGridErrors(t *testing.T) {
	tests := []struct {
		name             string
		x                []float32
		n, h, w, c, cols int
		wantErr          string
	}{
		{"len too short", make([]float32, 3), 1, 2, 2, 1, 0, "len(x)"},
		{"len too long", make([]float32, 5), 1, 2, 2, 1, 0, "len(x)"},
		{"c=2", make([]float32, 8), 1, 2, 2, 2, 0, "channel"},
		{"c=4", make([]float32, 16), 1, 2, 2, 4, 0, "channel"},
		{"c=0", nil, 1, 2, 2, 0, 0, "channel"},
		{"n=0", nil, 0, 2, 2, 1, 0, "positive"},
		{"h=0", nil, 1, 0, 2, 1, 0, "positive"},
		{"w=0", nil, 1, 2, 0, 1, 0, "positive"},
		{"negative n", nil, -1, 2, 2, 1, 0, "positive"},
		{"negative cols", make([]float32, 4), 1, 2, 2, 1, -1, "column"},
		{"overflow", nil, math.MaxInt / 2, math.MaxInt / 2, 4, 3, 0, "overflow"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img, err := Grid(tt.x, tt.n, tt.h, tt.w, tt.c, tt.cols)
			if err == nil {
				t.Fatalf("Grid succeeded with bounds %v, want error", img.Bounds())
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q does not mention %q", err, tt.wantErr)
			}
		})
	}
}

func TestToByte(t *testing.T) {
	tests := []struct {
		in   float32
		want uint8
	}{
		{0, 0},
		{1, 255},
		{0.5, 128},
		{-0.1, 0},
		{1.5, 255},
		{float32(math.NaN()), 0},
		{float32(math.Inf(-1)), 0},
		{float32(math.Inf(1)), 255},
		{1.0 / 255, 1},
	}
	for _, tt := range tests {
		if got := toByte(tt.in); got != tt.want {
			t.Errorf("toByte(%v) = %d, want %d", tt.in, got, tt.want)
		}
	}
}

func TestCeilSqrt(t *testing.T) {
	for n, want := range map[int]int{1: 1, 2: 2, 4: 2, 5: 3, 9: 3, 10: 4, 64: 8, 65: 9} {
		if got := ceilSqrt(n); got != want {
			t.Errorf("ceilSqrt(%d) = %d, want %d", n, got, want)
		}
	}
}
