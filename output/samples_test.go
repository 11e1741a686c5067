package output

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"testing"

	"github.com/gantrain/gantrain/data"
	"github.com/gantrain/gantrain/imageio"
)

// Sample grids of RGB data are drawn in colour, each sample's pixels in place;
// gray data gives a gray PNG.
func TestSampleGridChannels(t *testing.T) {
	tests := []struct {
		name  string
		shape data.Shape
		x     []float32 // two samples of shape
		want  [2][2]color.RGBA
	}{
		{
			name:  "rgb",
			shape: data.Shape{H: 1, W: 2, C: 3},
			x:     []float32{1, 0, 0, 0, 1, 0 /* sample 2 */, 0, 0, 1, 1, 1, 0},
			want: [2][2]color.RGBA{
				{{255, 0, 0, 255}, {0, 255, 0, 255}},
				{{0, 0, 255, 255}, {255, 255, 0, 255}},
			},
		},
		{
			name:  "gray",
			shape: data.Shape{H: 1, W: 2, C: 1},
			x:     []float32{0, 1 /* sample 2 */, 1, 0},
			want: [2][2]color.RGBA{
				{{0, 0, 0, 255}, {255, 255, 255, 255}},
				{{255, 255, 255, 255}, {0, 0, 0, 255}},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			raw, err := SampleGrid(tc.x, 2, tc.shape, tc.shape.Size(), nil)
			if err != nil {
				t.Fatal(err)
			}
			img, err := png.Decode(bytes.NewReader(raw))
			if err != nil {
				t.Fatal(err)
			}
			if gray := img.ColorModel() == color.GrayModel; gray != (tc.shape.C == 1) {
				t.Errorf("colour model %T for C=%d", img.ColorModel(), tc.shape.C)
			}
			if b := img.Bounds(); b.Dx() != 2*tc.shape.W+imageio.GridGutter || b.Dy() != tc.shape.H {
				t.Fatalf("grid is %v", b)
			}
			for k := range 2 {
				for x := range 2 {
					at := image.Pt(k*(tc.shape.W+imageio.GridGutter)+x, 0)
					if got := color.RGBAModel.Convert(img.At(at.X, at.Y)).(color.RGBA); got != tc.want[k][x] {
						t.Errorf("sample %d pixel %d: %v, want %v", k, x, got, tc.want[k][x])
					}
				}
			}
		})
	}
}
