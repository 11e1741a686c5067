package output

import (
	"bytes"
	"fmt"
	"image"
	"io"
	"math"
	"path/filepath"

	"github.com/gantrain/gantrain/data"
	"github.com/gantrain/gantrain/imageio"
	"github.com/gantrain/gantrain/internal/atomicfile"
)

// SampleGrid draws n samples x (n rows of the data's width) as a PNG: a grid of
// images for image data (shape), a scatter plot for 2-D point data (width 2) with
// marks (pairs) as reference points. Other point data has no picture: nil, nil.
func SampleGrid(x []float32, n int, shape data.Shape, width int, marks []float32) ([]byte, error) {
	var img image.Image
	var err error
	switch {
	case shape.IsImage():
		img, err = imageio.Grid(x, n, shape.H, shape.W, shape.C, 0)
	case width == 2:
		img, err = imageio.Scatter(x, marks, scatterExtent(marks), 512)
	default:
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("sample grid: %w", err)
	}
	var png bytes.Buffer
	if err := imageio.EncodePNG(&png, img); err != nil {
		return nil, fmt.Errorf("sample grid: %w", err)
	}
	return png.Bytes(), nil
}

// scatterExtent is the half-width of a scatter plot that shows every mark with room
// around it.
func scatterExtent(marks []float32) float64 {
	r := 1.0
	for _, m := range marks {
		r = math.Max(r, math.Abs(float64(m)))
	}
	return 1.5 * r
}

// WriteSamples writes png as the sample grid of step in run directory runDir:
// samples/step-NNNNNNNNN.png and samples/latest.png.
func WriteSamples(runDir string, step int64, png []byte) error {
	dir := filepath.Join(runDir, SamplesDir)
	for _, name := range []string{fmt.Sprintf("step-%09d.png", step), LatestSamples} {
		if err := atomicfile.Write(filepath.Join(dir, name), func(w io.Writer) error {
			_, err := w.Write(png)
			return err
		}); err != nil {
			return fmt.Errorf("sample grid: %w", err)
		}
	}
	return nil
}
