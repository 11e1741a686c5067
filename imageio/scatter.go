package imageio

import (
	"fmt"
	"image"
	"image/color"
	"math"
)

// MaxScatterSize is the largest canvas side length Scatter accepts.
const MaxScatterSize = 8192

// Colors used by Scatter.
var (
	scatterBackground = color.RGBA{0xff, 0xff, 0xff, 0xff}
	scatterPoint      = color.RGBA{0x14, 0x28, 0x8c, 0xff} // dark blue
	scatterMark       = color.RGBA{0xe0, 0x00, 0x00, 0xff} // red
)

// Scatter draws 2-D points as small dark dots on a white size×size canvas
// that covers [-extent, extent]², with x increasing to the right and y
// increasing upwards. It is meant for inspecting low-dimensional toy
// data, such as the ring of eight Gaussians, and spotting mode collapse.
//
// x holds the points as consecutive pairs x0, y0, x1, y1, ...; points
// outside the canvas (including infinite coordinates) are clipped to its
// border and points with a NaN coordinate are skipped. marks, which may
// be nil, holds reference points in the same layout; they are drawn on
// top of the points as red crosses. Both slices must have even length,
// extent must be positive and finite, and size must be in
// [1, MaxScatterSize].
//
// Dots are single pixels on canvases smaller than 256 pixels and grow
// with the canvas after that.
func Scatter(x []float32, marks []float32, extent float64, size int) (image.Image, error) {
	if len(x)%2 != 0 {
		return nil, fmt.Errorf("imageio: scatter: len(x) = %d is not even (want x,y pairs)", len(x))
	}
	if len(marks)%2 != 0 {
		return nil, fmt.Errorf("imageio: scatter: len(marks) = %d is not even (want x,y pairs)", len(marks))
	}
	if !(extent > 0) || math.IsInf(extent, 0) {
		return nil, fmt.Errorf("imageio: scatter: extent must be positive and finite, got %v", extent)
	}
	if size < 1 || size > MaxScatterSize {
		return nil, fmt.Errorf("imageio: scatter: size must be in [1, %d], got %d", MaxScatterSize, size)
	}

	img := image.NewRGBA(image.Rect(0, 0, size, size))
	fill(img, 0, 0, size-1, size-1, scatterBackground)

	// toPixel maps a point to canvas coordinates, clipping to the border.
	toPixel := func(px, py float32) (col, row int, ok bool) {
		fx, fy := float64(px), float64(py)
		if math.IsNaN(fx) || math.IsNaN(fy) {
			return 0, 0, false
		}
		scale := float64(size-1) / (2 * extent)
		col = clampInt(math.Round((fx+extent)*scale), size-1)
		row = clampInt(math.Round((extent-fy)*scale), size-1)
		return col, row, true
	}

	r := size / 256 // dot radius
	for i := 0; i < len(x); i += 2 {
		col, row, ok := toPixel(x[i], x[i+1])
		if !ok {
			continue
		}
		fill(img, col-r, row-r, col+r, row+r, scatterPoint)
	}

	arm := max(2, size/64) // cross arm length
	for i := 0; i < len(marks); i += 2 {
		col, row, ok := toPixel(marks[i], marks[i+1])
		if !ok {
			continue
		}
		fill(img, col-arm, row, col+arm, row, scatterMark)
		fill(img, col, row-arm, col, row+arm, scatterMark)
	}
	return img, nil
}

// clampInt rounds v to an int in [0, hi]; v must not be NaN.
func clampInt(v float64, hi int) int {
	switch {
	case v <= 0:
		return 0
	case v >= float64(hi):
		return hi
	}
	return int(v)
}

// fill sets the pixels of the inclusive rectangle [x0, x1]×[y0, y1],
// clipped to img's bounds, to c.
func fill(img *image.RGBA, x0, y0, x1, y1 int, c color.RGBA) {
	b := img.Bounds()
	x0, y0 = max(x0, b.Min.X), max(y0, b.Min.Y)
	x1, y1 = min(x1, b.Max.X-1), min(y1, b.Max.Y-1)
	for y := y0; y <= y1; y++ {
		for x := x0; x <= x1; x++ {
			img.SetRGBA(x, y, c)
		}
	}
}
