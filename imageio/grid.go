package imageio

import (
	"errors"
	"fmt"
	"image"
	"math"
)

// GridGutter is the width in pixels of the gutter drawn between the cells
// of a Grid.
const GridGutter = 2

// GridGutterGray is the gray level of the gutter between the cells of a
// Grid and of the empty cells that pad its last row.
const GridGutterGray = 64

// Grid lays out n images stored consecutively in x into a single image
// with cols columns, separated by a GridGutter-pixel dark gray gutter.
//
// Each image is h×w×c in row-major HWC order, so x must hold exactly
// n*h*w*c values. The channel count c must be 1 (grayscale) or 3 (RGB).
// Values are nominally in [0, 1]; values outside that range are clamped
// and NaN is mapped to 0. If cols is 0 it defaults to ceil(sqrt(n)); a
// cols larger than n is reduced to n. Cells in the last row that hold
// no image are filled with the gutter color.
//
// The result is an *image.Gray when c is 1 and an opaque *image.RGBA
// when c is 3.
func Grid(x []float32, n, h, w, c, cols int) (image.Image, error) {
	cols, rect, err := gridLayout(len(x), n, h, w, c, cols)
	if err != nil {
		return nil, err
	}
	if c == 1 {
		return grayGrid(x, n, h, w, cols, rect), nil
	}
	return rgbGrid(x, n, h, w, cols, rect), nil
}

// gridLayout checks Grid's arguments against size, the length of x, and returns the
// number of columns and the bounds of the grid.
func gridLayout(size, n, h, w, c, cols int) (int, image.Rectangle, error) {
	if n <= 0 || h <= 0 || w <= 0 {
		return 0, image.Rectangle{}, fmt.Errorf("imageio: grid: n, h and w must be positive, got n=%d h=%d w=%d", n, h, w)
	}
	if c != 1 && c != 3 {
		return 0, image.Rectangle{}, fmt.Errorf("imageio: grid: channel count must be 1 or 3, got %d", c)
	}
	if cols < 0 {
		return 0, image.Rectangle{}, fmt.Errorf("imageio: grid: negative column count %d", cols)
	}
	want, ok := product(n, h, w, c)
	if !ok {
		return 0, image.Rectangle{}, fmt.Errorf("imageio: grid: size %d×%d×%d×%d overflows int", n, h, w, c)
	}
	if size != want {
		return 0, image.Rectangle{}, fmt.Errorf("imageio: grid: len(x) = %d, want n*h*w*c = %d*%d*%d*%d = %d", size, n, h, w, c, want)
	}
	if cols == 0 {
		cols = ceilSqrt(n)
	}
	cols = min(cols, n)
	rows := (n + cols - 1) / cols

	// The image is at most about as large as x plus gutters, but check the
	// arithmetic anyway so that absurd dimensions fail cleanly.
	width, ok1 := span(cols, w)
	height, ok2 := span(rows, h)
	if !ok1 || !ok2 {
		return 0, image.Rectangle{}, errors.New("imageio: grid: output image dimensions overflow int")
	}
	if _, ok := product(width, height, 4); !ok {
		return 0, image.Rectangle{}, errors.New("imageio: grid: output image too large")
	}
	return cols, image.Rect(0, 0, width, height), nil
}

// grayGrid draws the n grayscale h×w images of x in cols columns.
func grayGrid(x []float32, n, h, w, cols int, rect image.Rectangle) *image.Gray {
	img := image.NewGray(rect)
	for i := range img.Pix {
		img.Pix[i] = GridGutterGray
	}
	for k := range n {
		x0, y0 := cellOrigin(k, cols, h, w)
		src := x[k*h*w:]
		for y := range h {
			row := img.Pix[(y0+y)*img.Stride+x0:]
			for xx := range w {
				row[xx] = toByte(src[y*w+xx])
			}
		}
	}
	return img
}

// rgbGrid draws the n RGB h×w images of x in cols columns, opaque.
func rgbGrid(x []float32, n, h, w, cols int, rect image.Rectangle) *image.RGBA {
	img := image.NewRGBA(rect)
	for i := 0; i < len(img.Pix); i += 4 {
		img.Pix[i+0] = GridGutterGray
		img.Pix[i+1] = GridGutterGray
		img.Pix[i+2] = GridGutterGray
		img.Pix[i+3] = 0xff
	}
	for k := range n {
		x0, y0 := cellOrigin(k, cols, h, w)
		src := x[k*h*w*3:]
		for y := range h {
			row := img.Pix[(y0+y)*img.Stride+4*x0:]
			for xx := range w {
				s := src[(y*w+xx)*3:]
				d := row[4*xx:]
				d[0] = toByte(s[0])
				d[1] = toByte(s[1])
				d[2] = toByte(s[2])
				// d[3] is already opaque.
			}
		}
	}
	return img
}

// cellOrigin returns the top-left pixel of cell k in a grid of cols
// columns of h×w cells.
func cellOrigin(k, cols, h, w int) (x0, y0 int) {
	return (k % cols) * (w + GridGutter), (k / cols) * (h + GridGutter)
}

// span returns the length of k cells of size s separated by gutters.
func span(k, s int) (int, bool) {
	cells, ok := product(k, s)
	if !ok {
		return 0, false
	}
	gutters, ok := product(k-1, GridGutter)
	if !ok || cells > math.MaxInt-gutters {
		return 0, false
	}
	return cells + gutters, true
}

// ceilSqrt returns the smallest c ≥ 1 with c*c ≥ n.
func ceilSqrt(n int) int {
	c := max(1, int(math.Ceil(math.Sqrt(float64(n)))))
	for c > 1 && (c-1)*(c-1) >= n {
		c--
	}
	for c*c < n {
		c++
	}
	return c
}

// toByte maps v in [0, 1] to [0, 255], clamping out-of-range values and
// mapping NaN to 0.
func toByte(v float32) uint8 {
	switch {
	case !(v > 0): // also catches NaN
		return 0
	case v >= 1:
		return 0xff
	}
	return uint8(v*255 + 0.5)
}

// product returns the product of dims and whether it was computed without
// overflow. All dims must be non-negative.
func product(dims ...int) (int, bool) {
	p := 1
	for _, d := range dims {
		if d < 0 {
			return 0, false
		}
		if d != 0 && p > math.MaxInt/d {
			return 0, false
		}
		p *= d
	}
	return p, true
}
