package model

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/gantrain/gantrain/backend/backendtest"
	"github.com/gantrain/gantrain/rng"
)

// nchw is an activation as PyTorch holds it: images [N, C, H, W], or vectors [N, F]
// (C = F, H = W = 1, flat).
type nchw struct {
	n, c, h, w int
	flat       bool
	v          []float64
}

func (x nchw) at(n, c, h, w int) float64 { return x.v[((n*x.c+c)*x.h+h)*x.w+w] }

// torchForward is an inference forward of n written as PyTorch computes it: NCHW
// images, nn.Flatten and view(-1, C, H, W) between images and vectors, every
// parameter and running statistic taken from the checkpoint's tensors (Param.ToTorch)
// by their PyTorch shapes alone. Maxout's columns are gantrain's own (unit·pieces +
// piece), PyTorch having no such layer.
func torchForward(t *testing.T, n *Net, tensors map[string][]float32, x nchw) nchw {
	t.Helper()
	get := func(name string) []float64 {
		v, ok := tensors[name]
		if !ok {
			t.Fatalf("no tensor %s", name)
		}
		out := make([]float64, len(v))
		for i, e := range v {
			out[i] = float64(e)
		}
		return out
	}
	for i, l := range n.layers {
		p := fmt.Sprintf("layers.%d.", i)
		switch l.spec.Type {
		case Dense, Maxout:
			x.flat, x.c, x.h, x.w = true, x.c*x.h*x.w, 1, 1 // nn.Flatten of NCHW: C×H×W order
			w, b := get(p+"weight"), get(p+"bias")
			units, pieces := len(b)/l.pieces, l.pieces
			y := nchw{n: x.n, c: units, h: 1, w: 1, flat: true, v: make([]float64, x.n*units)}
			for r := 0; r < x.n; r++ {
				for u := 0; u < units; u++ {
					best := math.Inf(-1)
					for q := 0; q < pieces; q++ {
						o := u*pieces + q
						z := b[o]
						for k := 0; k < x.c; k++ {
							z += x.v[r*x.c+k] * w[o*x.c+k]
						}
						best = max(best, z)
					}
					y.v[r*units+u] = backendtest.Act64(best, l.act)
				}
			}
			x = y
		case Conv2D:
			w, b := get(p+"weight"), get(p+"bias")
			g := l.geom
			y := nchw{n: x.n, c: l.out.C, h: l.out.H, w: l.out.W}
			y.v = make([]float64, y.n*y.c*y.h*y.w)
			for r := 0; r < x.n; r++ {
				for o := 0; o < y.c; o++ {
					for oh := 0; oh < y.h; oh++ {
						for ow := 0; ow < y.w; ow++ {
							z := b[o]
							for c := 0; c < x.c; c++ {
								for kh := 0; kh < g.KH; kh++ {
									for kw := 0; kw < g.KW; kw++ {
										ih, iw := oh*g.StrideH-g.PadH+kh, ow*g.StrideW-g.PadW+kw
										if ih >= 0 && ih < x.h && iw >= 0 && iw < x.w {
											z += x.at(r, c, ih, iw) * w[((o*x.c+c)*g.KH+kh)*g.KW+kw]
										}
									}
								}
							}
							y.v[((r*y.c+o)*y.h+oh)*y.w+ow] = backendtest.Act64(z, l.act)
						}
					}
				}
			}
			x = y
		case ConvTranspose2D:
			w, b := get(p+"weight"), get(p+"bias")
			g := l.geom
			y := nchw{n: x.n, c: l.out.C, h: l.out.H, w: l.out.W}
			y.v = make([]float64, y.n*y.c*y.h*y.w)
			for r := 0; r < x.n; r++ {
				for c := 0; c < x.c; c++ {
					for ih := 0; ih < x.h; ih++ {
						for iw := 0; iw < x.w; iw++ {
							for o := 0; o < y.c; o++ {
								for kh := 0; kh < g.KH; kh++ {
									for kw := 0; kw < g.KW; kw++ {
										oh, ow := ih*g.StrideH-g.PadH+kh, iw*g.StrideW-g.PadW+kw
										if oh >= 0 && oh < y.h && ow >= 0 && ow < y.w {
											y.v[((r*y.c+o)*y.h+oh)*y.w+ow] += x.at(r, c, ih, iw) * w[((c*y.c+o)*g.KH+kh)*g.KW+kw]
										}
									}
								}
							}
						}
					}
				}
			}
			for e := range y.v {
				y.v[e] = backendtest.Act64(y.v[e]+b[e/(y.h*y.w)%y.c], l.act)
			}
			x = y
		case BatchNorm: // nn.BatchNorm2d over images, BatchNorm1d over vectors, in eval mode
			gamma, beta := get(p+"weight"), get(p+"bias")
			mean, variance := get(p+"running_mean"), get(p+"running_var")
			eps := float64(l.spec.bnEps())
			for e := range x.v {
				c := e / (x.h * x.w) % x.c
				x.v[e] = backendtest.Act64(gamma[c]*(x.v[e]-mean[c])/math.Sqrt(variance[c]+eps)+beta[c], l.act)
			}
		case Reshape: // view(-1, C, H, W)
			x.flat, x.c, x.h, x.w = false, l.out.C, l.out.H, l.out.W
		case Flatten:
			x.flat, x.c, x.h, x.w = true, x.c*x.h*x.w, 1, 1
		case Dropout: // eval mode
		default:
			t.Fatalf("layer %d: no PyTorch reference for %s", i, l.spec.Type)
		}
	}
	return x
}

// toNCHW reads rows of H×W×C images (gantrain's layout) as [N, C, H, W].
func toNCHW(rows []float32, n int, s Shape) nchw {
	x := nchw{n: n, c: s.C, h: s.H, w: s.W, flat: s.positions() == 1, v: make([]float64, len(rows))}
	for r := 0; r < n; r++ {
		for h := 0; h < s.H; h++ {
			for w := 0; w < s.W; w++ {
				for c := 0; c < s.C; c++ {
					x.v[((r*s.C+c)*s.H+h)*s.W+w] = float64(rows[((r*s.H+h)*s.W+w)*s.C+c])
				}
			}
		}
	}
	return x
}

// TestTorchOrder checks that a checkpoint's tensors are PyTorch's nets: a forward
// written as PyTorch computes it (NCHW images, nn.Flatten, view, nn.Linear's [out,
// in], BatchNorm1d over the features of a reshaped image) from the exported tensors
// alone gives our inference forward's output, for nets that flatten images into dense
// layers, reshape dense outputs into images, and read or write RGB images through
// dense layers only.
func TestTorchOrder(t *testing.T) {
	rgb := Shape{8, 8, 3}
	tests := []struct {
		name    string
		specs   []LayerSpec
		in      Shape
		data    Shape
		head    Head
		wantOut Shape // the output as an image (H×W×C rows)
	}{
		{"dcgan generator with hidden layer", DCGANGenerator(8, 8, 6, 2, 10), Flat(5), rgb, OutputHead, rgb},
		{"dcgan discriminator with hidden layer", DCGANDiscriminator(4, 2, 7), rgb, Shape{}, LogitHead, Flat(1)},
		{"dense generator of RGB images", []LayerSpec{
			{Type: Dense, Units: 9, Activation: "relu"},
			{Type: Dropout, Keep: 0.5},
			{Type: Dense, Activation: "sigmoid"},
		}, Flat(4), Shape{4, 4, 3}, OutputHead, Shape{4, 4, 3}},
		{"dense discriminator of RGB images", []LayerSpec{
			{Type: Dense, Units: 6, Activation: "tanh"},
			{Type: Dense, Units: 1},
		}, Shape{4, 4, 3}, Shape{}, LogitHead, Flat(1)},
		{"maxout, dropout and batchnorm into a reshape", []LayerSpec{
			{Type: Maxout, Units: 3 * 3 * 4, Pieces: 3},
			{Type: Dropout, Keep: 0.8},
			{Type: BatchNorm, Activation: "leaky_relu", Alpha: 0.2},
			{Type: Reshape, Shape: []int{3, 3, 4}},
			{Type: Conv2D, Filters: 2, Kernel: 2, Activation: "tanh"},
			{Type: Flatten},
			{Type: Dropout, Keep: 0.8},
			{Type: Dense, Units: 1},
		}, Flat(5), Shape{}, LogitHead, Flat(1)},
	}
	b := newBackend(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := rand.New(rand.NewPCG(3, uint64(len(tt.name))))
			n, err := Build(b, "net", tt.specs, tt.in, tt.data, tt.head)
			if err != nil {
				t.Fatal(err)
			}
			const rows = 3
			params := randomParams(n, 0.8, src)
			upload(t, b, n.Params, params)
			var state []float32
			if n.State != nil {
				state = n.InitialState()
				for _, p := range n.StateList() {
					lo, hi := float32(-0.5), float32(0.5) // running means
					if p.Offset >= n.layers[p.Layer].sOff+n.layers[p.Layer].out.C {
						lo, hi = 0.5, 1.5 // running variances
					}
					copy(state[p.Offset:], backendtest.RandSlice(src, p.Cols, lo, hi))
				}
				upload(t, b, n.State, state)
			}
			x := backendtest.RandSlice(src, rows*n.In, -1, 1)
			pass, err := n.NewPass(b, alloc(t, b, rows, n.In, x), PassBuffers{})
			if err != nil {
				t.Fatal(err)
			}
			pass.Forward(b, Infer, rng.Stream{})
			ours := download(t, b, pass.Out)

			tensors := map[string][]float32{}
			for _, p := range n.ParamList() {
				tensors[p.Name] = p.ToTorch(params)
			}
			for _, p := range n.StateList() {
				tensors[p.Name] = p.ToTorch(state)
			}
			got := torchForward(t, n, tensors, toNCHW(x, rows, tt.in))
			want := toNCHW(ours, rows, tt.wantOut)
			if len(got.v) != len(want.v) {
				t.Fatalf("PyTorch's forward gives %d values, ours %d", len(got.v), len(want.v))
			}
			for e := range got.v {
				if d := math.Abs(got.v[e] - want.v[e]); d > 1e-4*(1+math.Abs(got.v[e])) {
					t.Fatalf("output %d (of %d): PyTorch's order gives %.6g, our forward %.6g", e, len(got.v), got.v[e], want.v[e])
				}
			}
		})
	}
}
