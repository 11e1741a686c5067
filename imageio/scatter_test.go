package imageio

import (
	"image"
	"image/color"
	"math"
	"testing"
)

// isDark reports whether c is a dark (point) pixel.
func isDark(c color.RGBA) bool {
	return int(c.R)+int(c.G)+int(c.B) < 3*128 && c.A == 0xff
}

func isWhite(c color.RGBA) bool { return c == color.RGBA{0xff, 0xff, 0xff, 0xff} }

func isRed(c color.RGBA) bool { return c.R > 0x80 && c.G < 0x40 && c.B < 0x40 }

func TestScatterPoints(t *testing.T) {
	const size = 101 // (size-1)/2 = 50 pixels per unit at extent 1
	nan := float32(math.NaN())
	x := []float32{
		0, 0, // center -> (50, 50)
		1, 1, // top-right corner -> (100, 0)
		-0.5, 0, // -> (25, 50)
		5, -5, // outside: clipped to bottom-right corner (100, 100)
		float32(math.Inf(-1)), 0, // clipped to left edge (0, 50)
		nan, 0.5, // skipped
	}
	img, err := Scatter(x, nil, 1, size)
	if err != nil {
		t.Fatalf("Scatter: %v", err)
	}
	m, ok := img.(*image.RGBA)
	if !ok {
		t.Fatalf("Scatter returned %T, want *image.RGBA", img)
	}
	if got, want := m.Bounds(), image.Rect(0, 0, size, size); got != want {
		t.Fatalf("bounds = %v, want %v", got, want)
	}
	dark := map[image.Point]bool{
		{50, 50}: true, {100, 0}: true, {25, 50}: true, {100, 100}: true, {0, 50}: true,
	}
	for p := range dark {
		if c := m.RGBAAt(p.X, p.Y); !isDark(c) {
			t.Errorf("pixel %v = %v, want dark", p, c)
		}
	}
	// Every other pixel is white background; in particular the NaN point
	// was skipped and nothing was drawn at its would-be row.
	n := 0
	for y := range size {
		for xx := range size {
			c := m.RGBAAt(xx, y)
			switch {
			case dark[image.Pt(xx, y)]:
				n++
			case !isWhite(c):
				t.Errorf("pixel (%d,%d) = %v, want white", xx, y, c)
			}
		}
	}
	if n != len(dark) {
		t.Errorf("found %d dark pixels, want %d", n, len(dark))
	}
}

func TestScatterMarksAndDotSize(t *testing.T) {
	const size = 513 // dots have radius 2, crosses arm length 8
	x := []float32{0.5, 0.5}
	marks := []float32{-0.5, -0.5, 2, 0} // second mark clipped to right edge
	img, err := Scatter(x, marks, 1, size)
	if err != nil {
		t.Fatalf("Scatter: %v", err)
	}
	m := img.(*image.RGBA)
	if got, want := m.Bounds(), image.Rect(0, 0, size, size); got != want {
		t.Fatalf("bounds = %v, want %v", got, want)
	}
	// Point (0.5, 0.5) -> (384, 128); its 5×5 dot is dark.
	for dy := -2; dy <= 2; dy++ {
		for dx := -2; dx <= 2; dx++ {
			if c := m.RGBAAt(384+dx, 128+dy); !isDark(c) {
				t.Errorf("dot pixel (%d,%d) = %v, want dark", 384+dx, 128+dy, c)
			}
		}
	}
	if c := m.RGBAAt(384+3, 128); !isWhite(c) {
		t.Errorf("pixel just outside dot = %v, want white", c)
	}
	// Mark (-0.5, -0.5) -> (128, 384): a red cross, white on the diagonal.
	for _, p := range []image.Point{{128, 384}, {120, 384}, {136, 384}, {128, 376}, {128, 392}} {
		if c := m.RGBAAt(p.X, p.Y); !isRed(c) {
			t.Errorf("cross pixel %v = %v, want red", p, c)
		}
	}
	for _, p := range []image.Point{{119, 384}, {131, 387}, {128, 393}} {
		if c := m.RGBAAt(p.X, p.Y); !isWhite(c) {
			t.Errorf("pixel %v = %v, want white", p, c)
		}
	}
	// Mark (2, 0) is clipped to (512, 256).
	if c := m.RGBAAt(512, 256); !isRed(c) {
		t.Errorf("clipped mark pixel = %v, want red", c)
	}
}

func TestScatterEmpty(t *testing.T) {
	for _, size := range []int{1, 2, 64} {
		img, err := Scatter(nil, nil, 4, size)
		if err != nil {
			t.Fatalf("Scatter(size %d): %v", size, err)
		}
		if got, want := img.Bounds(), image.Rect(0, 0, size, size); got != want {
			t.Errorf("bounds = %v, want %v", got, want)
		}
	}
	img, err := Scatter([]float32{3, -3}, nil, 4, 1)
	if err != nil {
		t.Fatalf("Scatter: %v", err)
	}
	if c := img.(*image.RGBA).RGBAAt(0, 0); !isDark(c) {
		t.Errorf("1×1 canvas pixel = %v, want dark", c)
	}
}

func TestScatterErrors(t *testing.T) {
	tests := []struct {
		name   string
		x      []float32
		marks  []float32
		extent float64
		size   int
	}{
		{"odd x", []float32{1, 2, 3}, nil, 1, 10},
		{"odd marks", nil, []float32{1}, 1, 10},
		{"zero extent", nil, nil, 0, 10},
		{"negative extent", nil, nil, -1, 10},
		{"NaN extent", nil, nil, math.NaN(), 10},
		{"infinite extent", nil, nil, math.Inf(1), 10},
		{"zero size", nil, nil, 1, 0},
		{"negative size", nil, nil, 1, -5},
		{"huge size", nil, nil, 1, MaxScatterSize + 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Scatter(tt.x, tt.marks, tt.extent, tt.size); err == nil {
				t.Error("Scatter succeeded, want error")
			}
		})
	}
}
