package model

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/gantrain/gantrain/backend"
	"github.com/gantrain/gantrain/backend/backendtest"
	"github.com/gantrain/gantrain/cpu"
	"github.com/gantrain/gantrain/rng"
)

// buildDCGAN builds the MNIST DCGAN nets with dense hidden layers of the given width.
func buildDCGAN(t *testing.T, hidden int) (g, d *Net) {
	t.Helper()
	b := newBackend(t)
	g, err := Build(b, "generator", DCGANGenerator(28, 28, 128, 2, hidden), Flat(100), Shape{28, 28, 1}, OutputHead)
	if err != nil {
		t.Fatal(err)
	}
	d, err = Build(b, "discriminator", DCGANDiscriminator(64, 2, hidden), Shape{28, 28, 1}, Shape{}, LogitHead)
	if err != nil {
		t.Fatal(err)
	}
	return g, d
}

func TestDCGANShapes(t *testing.T) {
	g, d := buildDCGAN(t, 0)
	// The parameter counts of the same nets in PyTorch (Linear, BatchNorm1d,
	// ConvTranspose2d, BatchNorm2d; Conv2d, BatchNorm2d, Linear).
	gWant := (100*6272 + 6272) + 2*6272 + (128*64*16 + 64) + 2*64 + (64*1*16 + 1)
	dWant := (1*64*16 + 64) + (64*128*16 + 128) + 2*128 + (6272 + 1)
	if g.Size() != gWant || d.Size() != dWant {
		t.Errorf("sizes G %d D %d, want %d and %d", g.Size(), d.Size(), gWant, dWant)
	}
	if g.OutShape != (Shape{28, 28, 1}) || g.Out != 784 || d.Out != 1 {
		t.Errorf("G out %v (%d), D out %d", g.OutShape, g.Out, d.Out)
	}
	if g.State == nil || g.State.Cols() != 2*(6272+64) || d.State.Cols() != 2*128 {
		t.Errorf("batchnorm state G %v D %v", backend.ShapeString(g.State), backend.ShapeString(d.State))
	}
	var names []string
	for _, p := range d.ParamList() {
		names = append(names, p.Name+fmt.Sprint(p.TorchShape()))
	}
	want := []string{"layers.0.weight[64 1 4 4]", "layers.0.bias[64]", "layers.1.weight[128 64 4 4]", "layers.1.bias[128]",
		"layers.2.weight[128]", "layers.2.bias[128]", "layers.4.weight[1 6272]", "layers.4.bias[1]"}
	if !slices.Equal(names, want) {
		t.Errorf("D parameters %v, want %v", names, want)
	}
	var gNames []string
	for _, p := range g.ParamList() {
		gNames = append(gNames, p.Name+fmt.Sprint(p.TorchShape()))
	}
	if gNames[4] != "layers.3.weight[128 64 4 4]" || gNames[8] != "layers.5.weight[64 1 4 4]" {
		t.Errorf("G parameters %v", gNames)
	}
	st := g.StateList()
	if len(st) != 4 || st[0].Name != "layers.1.running_mean" || st[3].Name != "layers.4.running_var" {
		t.Errorf("G state %v", st)
	}
	init := g.InitialState()
	if init[0] != 0 || init[6272] != 1 || init[len(init)-1] != 1 {
		t.Errorf("initial state: mean %g var %g last %g", init[0], init[6272], init[len(init)-1])
	}
}

// With dense hidden layers the nets are InfoGAN's MNIST nets (Chen et al. 2016):
// PyTorch's parameter counts of the same layers.
func TestDCGANHiddenShapes(t *testing.T) {
	g, d := buildDCGAN(t, 1024)
	gWant := (100*1024 + 1024) + 2*1024 + (1024*6272 + 6272) + 2*6272 + (128*64*16 + 64) + 2*64 + (64*1*16 + 1)
	dWant := (1*64*16 + 64) + (64*128*16 + 128) + 2*128 + (6272*1024 + 1024) + 2*1024 + (1024 + 1)
	if g.Size() != gWant || d.Size() != dWant {
		t.Errorf("sizes G %d D %d, want %d and %d", g.Size(), d.Size(), gWant, dWant)
	}
	if g.State.Cols() != 2*(1024+6272+64) || d.State.Cols() != 2*(128+1024) {
		t.Errorf("batchnorm state G %v D %v", backend.ShapeString(g.State), backend.ShapeString(d.State))
	}
	var types []string
	for _, l := range DCGANDiscriminator(64, 2, 1024)[3:] {
		types = append(types, fmt.Sprint(l.Type, l.Units, l.Activation))
	}
	if want := []string{"flatten0", "dense1024identity", "batchnorm0leaky_relu", "dense1identity"}; !slices.Equal(types, want) {
		t.Errorf("D's layers after the convolutions %v, want %v", types, want)
	}
}

// TestTorchLayouts pins each layout's index map with an element worked by hand, and
// checks that FromTorch inverts ToTorch.
func TestTorchLayouts(t *testing.T) {
	tests := []struct {
		name string
		p    Param
		i, j int // an element of the matrix
		at   int // its index in PyTorch's tensor
	}{
		// in×out 3×2: element (2, 1) is torch [1, 2] of [2, 3].
		{"linear", Param{Rows: 3, Cols: 2, Layout: LayoutLinear}, 2, 1, 1*3 + 2},
		{"vector", Param{Rows: 1, Cols: 5, Layout: LayoutVector}, 0, 3, 3},
		// A dense layer reading a flattened 2×2×3 image: row (h 1, w 0, c 2) = 8 is
		// feature c·4 + h·2 + w = 10 of PyTorch's C×H×W flattening → torch [1, 10].
		{"linear from an image", Param{Rows: 12, Cols: 2, Layout: LayoutLinear, InImage: Shape{2, 2, 3}}, 8, 1, 1*12 + 10},
		// Units 0..5 of a 1×2×3 image to be (h 0, w 1, c 0) = 3 → c·2 + w = 1; each
		// unit's two maxout pieces stay together.
		{"vector to an image", Param{Rows: 1, Cols: 6, Layout: LayoutVector, OutImage: Shape{1, 2, 3}}, 0, 3, 1},
		{"maxout bias to an image", Param{Rows: 1, Cols: 12, Layout: LayoutVector, OutImage: Shape{1, 2, 3}, Pieces: 2}, 0, 7, 1*2 + 1},
		// (kh·kw·cin)×cout with kh 2, kw 3, cin 4, cout 5: row (ky 1, kx 2, c 3) =
		// ((1·3)+2)·4+3 = 23, column o 4 → torch [4, 3, 1, 2] of [5, 4, 2, 3].
		{"conv", Param{Rows: 24, Cols: 5, Layout: LayoutConv, KH: 2, KW: 3}, 23, 4, ((4*4+3)*2+1)*3 + 2},
		// cin×(kh·kw·cout) with cin 4, kh 2, kw 3, cout 5: row c 3, column (ky 1,
		// kx 0, o 2) = ((1·3)+0)·5+2 = 17 → torch [3, 2, 1, 0] of [4, 5, 2, 3].
		{"conv_transpose", Param{Rows: 4, Cols: 30, Layout: LayoutConvTranspose, KH: 2, KW: 3}, 3, 17, ((3*5+2)*2+1)*3 + 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := tt.p.Rows * tt.p.Cols
			arena := make([]float32, n)
			for e := range arena {
				arena[e] = float32(e)
			}
			torch := tt.p.ToTorch(arena)
			if got := torch[tt.at]; got != float32(tt.i*tt.p.Cols+tt.j) {
				t.Errorf("torch[%d] = %g, want element (%d, %d) = %d", tt.at, got, tt.i, tt.j, tt.i*tt.p.Cols+tt.j)
			}
			size := 1
			for _, d := range tt.p.TorchShape() {
				size *= d
			}
			if size != n {
				t.Errorf("torch shape %v holds %d, want %d", tt.p.TorchShape(), size, n)
			}
			back := make([]float32, n)
			tt.p.FromTorch(torch, back)
			if !slices.Equal(back, arena) {
				t.Error("FromTorch does not invert ToTorch")
			}
			seen := make([]bool, n)
			for _, v := range torch {
				seen[int(v)] = true
			}
			if slices.Contains(seen, false) {
				t.Error("ToTorch is not a permutation")
			}
		})
	}
}

func TestConvSpecErrors(t *testing.T) {
	b := newBackend(t)
	tests := []struct {
		name  string
		specs []LayerSpec
		in    Shape
		data  Shape
		head  Head
		want  string
	}{
		{"padding", []LayerSpec{{Type: Conv2D, Filters: 2, Kernel: 3, Padding: 3}, {Type: Dense, Units: 1}}, Shape{8, 8, 1}, Shape{}, LogitHead, "padding must be in 0..kernel−1"},
		{"kernel larger than input", []LayerSpec{{Type: Conv2D, Filters: 2, Kernel: 9}, {Type: Dense, Units: 1}}, Shape{8, 8, 1}, Shape{}, LogitHead, "larger than the padded"},
		{"output padding", []LayerSpec{{Type: ConvTranspose2D, Filters: 1, Kernel: 4, Stride: 2, Padding: 1, OutputPadding: 2}}, Shape{7, 7, 4}, Shape{14, 14, 1}, OutputHead, "output_padding must be in 0..stride−1"},
		{"reshape size", []LayerSpec{{Type: Dense, Units: 10}, {Type: Reshape, Shape: []int{3, 3, 1}}, {Type: Dense, Units: 1}}, Flat(4), Shape{}, LogitHead, "holds 9 values, the input 10"},
		{"reshape rank", []LayerSpec{{Type: Reshape, Shape: []int{3, 3}}, {Type: Dense, Units: 1}}, Flat(9), Shape{}, LogitHead, "shape must be [H, W, C]"},
		{"output shape", []LayerSpec{{Type: ConvTranspose2D, Kernel: 4, Stride: 2, Padding: 1}}, Shape{7, 7, 4}, Shape{28, 28, 1}, OutputHead, "output is 14×14×1 but the data is 28×28×1"},
		{"maxout conv activation", []LayerSpec{{Type: Conv2D, Filters: 2, Kernel: 3, Pieces: 2, Activation: "relu"}, {Type: Dense, Units: 1}}, Shape{8, 8, 1}, Shape{}, LogitHead, "takes no activation"},
		{"batchnorm fields", []LayerSpec{{Type: BatchNorm, Units: 3}, {Type: Dense, Units: 1}}, Flat(4), Shape{}, LogitHead, "batchnorm takes only"},
		{"flatten last", []LayerSpec{{Type: Dense, Units: 4}, {Type: Flatten}}, Flat(4), Flat(4), OutputHead, "must compute something"},
		{"conv transpose max norm", []LayerSpec{{Type: ConvTranspose2D, Filters: 1, Kernel: 2, Stride: 2, MaxColNorm: 1}}, Shape{2, 2, 1}, Shape{4, 4, 1}, OutputHead, "max_col_norm is not defined"},
		{"unknown type", []LayerSpec{{Type: "pool"}, {Type: Dense, Units: 1}}, Flat(4), Shape{}, LogitHead, "want dense, maxout, dropout, conv2d, conv_transpose2d, batchnorm, reshape or flatten"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Build(b, "net", tt.specs, tt.in, tt.data, tt.head)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func newBackend(t *testing.T) backend.Backend {
	t.Helper()
	b, err := cpu.New(cpu.Options{BLAS: "go"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// TestConvNetGradients checks Backward through convolutional nets against central
// finite differences of a scalar loss L = Σ c ⊙ Out (c random): the wiring of the
// column matrices, their views and the batchnorm groups, on the CPU backend. Smooth
// activations keep the differences clear of kinks, except maxout's, whose pieces are
// drawn far apart.
func TestConvNetGradients(t *testing.T) {
	tests := []struct {
		name   string
		specs  []LayerSpec
		in     Shape
		out    Shape
		rows   int
		groups int
		mode   Mode
	}{
		{"conv", []LayerSpec{
			{Type: Conv2D, Filters: 3, Kernel: 3, Stride: 2, Padding: 1, Activation: "tanh"},
			{Type: Conv2D, Filters: 2, Kernel: 2, Activation: "sigmoid"},
		}, Shape{7, 6, 2}, Shape{3, 2, 2}, 3, 1, Train},
		{"conv transpose", []LayerSpec{
			{Type: Dense, Units: 12, Activation: "tanh"},
			{Type: Reshape, Shape: []int{2, 3, 2}},
			{Type: ConvTranspose2D, Filters: 3, Kernel: 3, Stride: 2, Padding: 1, OutputPadding: 1, Activation: "tanh"},
			{Type: ConvTranspose2D, Filters: 2, Kernel: 2, Stride: 1, Activation: "sigmoid"},
		}, Flat(5), Shape{5, 7, 2}, 2, 1, Train},
		{"batchnorm", []LayerSpec{
			{Type: Conv2D, Filters: 4, Kernel: 3, Padding: 1, Activation: "identity"},
			{Type: BatchNorm, Activation: "leaky_relu", Alpha: 0.2},
			{Type: Flatten},
			{Type: Dense, Units: 3, Activation: "identity"},
			{Type: BatchNorm, Activation: "tanh"},
		}, Shape{4, 5, 2}, Flat(3), 4, 2, Train},
		{"batchnorm with batch statistics", []LayerSpec{
			{Type: Dense, Units: 6, Activation: "identity"},
			{Type: BatchNorm, Activation: "sigmoid"},
		}, Flat(3), Flat(6), 5, 1, InferBatchStats},
		{"maxout conv and dropout", []LayerSpec{
			{Type: Dropout, Keep: 0.8},
			{Type: Conv2D, Filters: 2, Pieces: 3, Kernel: 3, Stride: 1},
			{Type: Dropout, Keep: 0.5},
			{Type: Conv2D, Filters: 2, Kernel: 3, Stride: 2, Activation: "tanh"},
		}, Shape{5, 5, 2}, Flat(2), 2, 1, Train},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBackend(t)
			src := rand.New(rand.NewPCG(3, uint64(len(tt.name))))
			n, err := Build(b, "net", tt.specs, tt.in, tt.out, OutputHead)
			if err != nil {
				t.Fatal(err)
			}
			params := randomParams(n, 0.8, src)
			if tt.specs[1].Pieces > 1 { // pieces far apart: no maxout switches under h
				for e := range params {
					params[e] *= 3
				}
			}
			x := backendtest.RandSlice(src, tt.rows*n.In, -1, 1)
			c := backendtest.RandSlice(src, tt.rows*n.Out, -1, 1)
			in := alloc(t, b, tt.rows, n.In, x)
			pass, err := n.NewPass(b, in, PassBuffers{InputGrad: true, Groups: tt.groups})
			if err != nil {
				t.Fatal(err)
			}
			upload(t, b, n.Params, params)
			if n.State != nil {
				upload(t, b, n.State, n.InitialState())
			}
			s := rng.Stream{Seed: 5, Offset: 9}
			loss := func() float64 {
				pass.Forward(b, tt.mode, s)
				out := make([]float32, tt.rows*n.Out)
				if err := b.Download(out, pass.Out); err != nil {
					t.Fatal(err)
				}
				var l float64
				for i, v := range out {
					l += float64(c[i]) * float64(v)
				}
				return l
			}
			loss()
			upload(t, b, pass.DOut, c)
			pass.Backward(b, Grads{Params: true, Input: true})
			grads, dIn := make([]float32, n.Size()), make([]float32, len(x))
			if err := b.Download(grads, n.Grads); err != nil {
				t.Fatal(err)
			}
			if err := b.Download(dIn, pass.DIn); err != nil {
				t.Fatal(err)
			}
			// Central differences: the running statistics move with every Train
			// forward, but the loss reads only the batch's.
			check := func(what string, v []float32, k int, analytic float32, set func([]float32)) {
				const h = 1e-2
				old := v[k]
				v[k] = old + h
				set(v)
				lp := loss()
				v[k] = old - h
				set(v)
				lm := loss()
				v[k] = old
				set(v)
				fd := (lp - lm) / (2 * h)
				if d := math.Abs(fd - float64(analytic)); d > 2e-3+2e-2*math.Abs(fd) {
					t.Errorf("%s[%d]: backward %.6g, finite difference %.6g", what, k, analytic, fd)
				}
			}
			for _, k := range sample(src, len(params), 40) {
				check("params", params, k, grads[k], func(v []float32) { upload(t, b, n.Params, v) })
			}
			for _, k := range sample(src, len(x), 30) {
				check("input", x, k, dIn[k], func(v []float32) { upload(t, b, in, v) })
			}
		})
	}
}

// sample returns up to k distinct indices below n.
func sample(src *rand.Rand, n, k int) []int {
	p := src.Perm(n)
	return p[:min(k, n)]
}

func alloc(t *testing.T, b backend.Backend, rows, cols int, v []float32) backend.Tensor {
	t.Helper()
	x, err := b.Alloc(backend.F32, rows, cols)
	if err != nil {
		t.Fatal(err)
	}
	upload(t, b, x, v)
	return x
}

func upload(t *testing.T, b backend.Backend, x backend.Tensor, v []float32) {
	t.Helper()
	if err := b.Upload(x, v); err != nil {
		t.Fatal(err)
	}
}
