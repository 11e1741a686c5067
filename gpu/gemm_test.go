//go:build !nocuda

package gpu_test

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/gantrain/gantrain/backend"
	"github.com/gantrain/gantrain/backend/backendtest"
	"github.com/gantrain/gantrain/gpu"
	"github.com/gantrain/gantrain/kernels"
	"github.com/gantrain/gantrain/rng"
)

// switchChooser answers whichever choice it holds (each candidate in turn), and
// remembers the product it was asked about last (seen) and every one (asked).
type switchChooser struct {
	c     kernels.GemmChoice
	seen  kernels.GemmProblem
	asked []kernels.GemmProblem
}

func (s *switchChooser) ChooseGemm(p kernels.GemmProblem, _ func(kernels.GemmChoice) []kernels.Launch) kernels.GemmChoice {
	s.seen = p
	s.asked = append(s.asked, p)
	return s.c
}

// switchedPair pairs the CPU with a GPU backend whose matrix products take sw's
// choice, and returns the plan device the candidates are listed for.
func switchedPair(t *testing.T, tf32 bool) (*switchChooser, *pair, kernels.Target) {
	t.Helper()
	sw := &switchChooser{}
	p := newPairWith(t, newGPUWith(t, gpu.Options{Device: deviceOrdinal(t), TF32: tf32, Gemm: sw}))
	info := p.dev.DeviceInfo()
	return sw, p, kernels.Target{SMs: info.SMs, TF32: tf32, MaxSharedBytes: info.MaxShared}
}

// gemmCases are dense layers n×in→out: the paper's at batch 100 (D sees 200 rows), a
// larger batch, and a ragged one. GANTRAIN_GEMM_SMALL=1 keeps only small ones (for
// the sanitizers, which run every launch a hundred times slower).
func gemmCases() [][3]int {
	if os.Getenv("GANTRAIN_GEMM_SMALL") != "" {
		return [][3]int{{36, 100, 72}, {8, 240, 4}}
	}
	return [][3]int{
		{100, 100, 1200}, {100, 1200, 1200}, {100, 1200, 784}, {200, 784, 1200}, {200, 240, 1200},
		{1024, 1200, 1200}, {2048, 784, 1200}, {44, 196, 72},
	}
}

// writtenNear fails unless every element of got was written (none is the poison's
// NaN) and got is within relative error tol of want.
func writtenNear(t *testing.T, name string, got, want []float32, tol float64) {
	t.Helper()
	if i := backendtest.FirstNaN(got); i >= 0 {
		t.Fatalf("%s: element %d not written (NaN)", name, i)
	}
	if e := backendtest.RelErr(got, want); !(e <= tol) {
		t.Errorf("%s: relative error %.3g > %g", name, e, tol)
	}
}

// TestGemmCandidates runs every candidate configuration of every matrix product of a
// dense layer (forward nn, dW tn, dX nt) on the device against the CPU backend: what
// the autotuner may choose must be right, whichever it chooses.
func TestGemmCandidates(t *testing.T) {
	for _, prec := range precisions() {
		t.Run(prec.name, func(t *testing.T) {
			sw, p, plan := switchedPair(t, prec.tf32)
			total := 0
			for _, s := range gemmCases() {
				n, in, out := s[0], s[1], s[2]
				x := p.Uniform(n, in, -1, 1)
				w := p.Uniform(in, out, -0.1, 0.1)
				bias := p.Uniform(1, out, -0.5, 0.5)
				dy := p.Uniform(n, out, -1, 1)
				y, dx, dw := p.Alloc(backend.F32, n, out), p.Alloc(backend.F32, n, in), p.Alloc(backend.F32, in, out)
				act := backend.Act{Kind: backend.ReLU}
				p.C.DenseForward(y.C, x.C, w.C, bias.C, act)
				p.C.DenseBackward(dx.C, dw.C, nil, dy.C, x.C, y.C, w.C, backend.Act{})
				wantY, wantDX, wantDW := backendtest.Download(t, p.C, y.C), backendtest.Download(t, p.C, dx.C), backendtest.Download(t, p.C, dw.C)
				problems := []kernels.GemmProblem{
					{Kind: "nn", M: n, N: out, K: in, LDA: in, LDB: out, TF32: prec.tf32},
					{Kind: "tn", M: in, N: out, K: n, LDA: in, LDB: out, TF32: prec.tf32},
					{Kind: "nt", M: n, N: in, K: out, LDA: out, LDB: out, TF32: prec.tf32},
				}
				for _, pr := range problems {
					pr.Vec4 = pr.K%4 == 0 && (pr.Kind == "nt" || pr.N%4 == 0) && (pr.Kind != "tn" || pr.M%4 == 0) && pr.LDA%4 == 0 && pr.LDB%4 == 0
					for _, c := range kernels.GemmCandidates(plan, pr) {
						sw.c = c
						name := fmt.Sprintf("%v %v", pr, c)
						var got twin
						var want []float32
						switch pr.Kind {
						case "nn":
							p.Poison(y)
							p.G.DenseForward(y.G, x.G, w.G, bias.G, act)
							got, want = y, wantY
						case "tn":
							p.Poison(dw)
							p.G.DenseBackward(nil, dw.G, nil, dy.G, x.G, y.G, w.G, backend.Act{})
							got, want = dw, wantDW
						case "nt":
							p.Poison(dx)
							p.G.DenseBackward(dx.G, nil, nil, dy.G, x.G, y.G, w.G, backend.Act{})
							got, want = dx, wantDX
						}
						p.NoErr()
						if sw.seen != pr {
							t.Fatalf("%s: the backend planned %v", name, sw.seen)
						}
						writtenNear(t, name, backendtest.Download(t, p.G, got.G), want, prec.tol)
						total++
					}
				}
			}
			t.Logf("%d candidate runs checked", total)
		})
	}
}

// TestAutotune times the paper's forward products, checks the choices against the CPU,
// and that a second backend with the same cache file chooses the same kernels without
// timing and gives the same bits; a preset choice wins over the cache.
func TestAutotune(t *testing.T) {
	cache := filepath.Join(t.TempDir(), "autotune.json")
	for _, prec := range precisions() {
		t.Run(prec.name, func(t *testing.T) {
			opt := gpu.Options{Device: deviceOrdinal(t), TF32: prec.tf32, Autotune: true, TuneCache: cache}
			p := newPairWith(t, newGPUWith(t, opt))
			run := func(b *gpu.Backend, x, w, bias twin) []float32 {
				y, err := b.Alloc(backend.F32, x.Rows, w.Cols)
				if err != nil {
					t.Fatal(err)
				}
				b.DenseForward(y, upload(t, b, x, p), upload(t, b, w, p), upload(t, b, bias, p), backend.Act{Kind: backend.Sigmoid})
				return backendtest.Download(t, b, y)
			}
			type product struct{ x, w, bias, y twin }
			var products []product
			for _, s := range [][3]int{{100, 1200, 1200}, {200, 784, 1200}, {4096, 100, 1200}} {
				n, in, out := s[0], s[1], s[2]
				x, w, bias := p.Uniform(n, in, -1, 1), p.Uniform(in, out, -0.1, 0.1), p.Uniform(1, out, -0.5, 0.5)
				y := p.Alloc(backend.F32, n, out)
				p.C.DenseForward(y.C, x.C, w.C, bias.C, backend.Act{Kind: backend.Sigmoid})
				p.G.DenseForward(y.G, x.G, w.G, bias.G, backend.Act{Kind: backend.Sigmoid})
				p.NoErr()
				p.Close(shape(n, in, out), y, prec.tol)
				products = append(products, product{x, w, bias, y})
			}
			// A backend opened now reads the file the first one wrote.
			second := newGPUWith(t, opt)
			for _, pr := range products {
				if got, want := run(second, pr.x, pr.w, pr.bias), backendtest.Download(t, p.G, pr.y.G); !slices.Equal(bits(got), bits(want)) {
					t.Errorf("%s: the second backend's product differs from the first's", shape(pr.x.Rows, pr.x.Cols, pr.w.Cols))
				}
			}
			first, again := p.dev.KernelChoices(), second.KernelChoices()
			if len(first) != 3 || len(again) != 3 {
				t.Fatalf("%d and %d choices, want 3", len(first), len(again))
			}
			for i := range first {
				t.Logf("%v: %v (%s, %.1f µs, %d candidates, %.1f TFLOP/s)", first[i].Problem, first[i].Choice, first[i].Source,
					first[i].Micros, first[i].Tried, first[i].Problem.FLOPs()/first[i].Micros/1e6)
				if first[i].Source != gpu.FromTimed || first[i].Micros <= 0 || math.IsInf(first[i].Micros, 0) {
					t.Errorf("first backend: %+v, want a timed choice", first[i])
				}
				if again[i].Source != gpu.FromCache || again[i].Choice != first[i].Choice {
					t.Errorf("second backend: %+v, want %v from the cache", again[i], first[i].Choice)
				}
			}
			// A preset (a checkpoint's choices) wins over the cache.
			third := newGPUWith(t, opt)
			pr := first[0].Problem
			var other kernels.GemmChoice
			for _, c := range kernels.GemmCandidates(kernels.Target{SMs: p.dev.DeviceInfo().SMs, TF32: prec.tf32}, pr) {
				if c != first[0].Choice {
					other = c
					break
				}
			}
			if err := third.PresetKernelChoices(map[string]string{pr.String(): other.String()}); err != nil {
				t.Fatal(err)
			}
			run(third, products[0].x, products[0].w, products[0].bias)
			if c := third.KernelChoices(); len(c) != 1 || c[0].Choice != other || c[0].Source != gpu.FromPreset {
				t.Errorf("preset %v: got %+v", other, c)
			}
		})
	}
	if _, err := os.Stat(cache); err != nil {
		t.Errorf("no cache file: %v", err)
	}
}

// upload copies x's CPU values into a fresh tensor of b.
func upload(t *testing.T, b *gpu.Backend, x twin, p *pair) backend.Tensor {
	t.Helper()
	g, err := b.Alloc(x.DT, x.Rows, x.Cols)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Upload(g, backendtest.Download(t, p.C, x.C)); err != nil {
		t.Fatal(err)
	}
	return g
}

func bits(v []float32) []uint32 {
	out := make([]uint32, len(v))
	for i, f := range v {
		out[i] = math.Float32bits(f)
	}
	return out
}

// TestDenseMaxoutCandidates runs DenseMaxout on the device under every candidate of
// the paper's maxout layers (D's two, at batch 100 with D's 200 rows, and a ragged
// one), fused or not, against the CPU backend: y to the product's rounding, the mask
// bit for bit; and each fused candidate against the same configuration unfused, bit
// for bit (the same sums, then the same maxout and dropout expressions).
func TestDenseMaxoutCandidates(t *testing.T) {
	for _, prec := range precisions() {
		t.Run(prec.name, func(t *testing.T) {
			sw, p, plan := switchedPair(t, prec.tf32)
			shapes := [][4]int{{200, 784, 240, 5}, {200, 240, 240, 5}, {36, 52, 24, 5}}
			if os.Getenv("GANTRAIN_GEMM_SMALL") != "" {
				shapes = shapes[2:]
			}
			for _, s := range shapes {
				n, in, units, pieces := s[0], s[1], s[2], s[3]
				x, w, bias := p.Uniform(n, in, -1, 1), p.Uniform(in, units*pieces, -0.1, 0.1), p.Uniform(1, units*pieces, -0.5, 0.5)
				z, y, arg, mask := p.Alloc(backend.F32, n, units*pieces), p.Alloc(backend.F32, n, units), p.Alloc(backend.I32, n, units), p.Alloc(backend.F32, n, units)
				st := rng.Stream{Seed: p.R.Uint64(), Offset: p.R.Uint64()}
				p.C.DenseMaxout(y.C, arg.C, mask.C, z.C, x.C, w.C, bias.C, pieces, 0.5, st)
				pr := kernels.GemmProblem{Kind: "nn", M: n, N: units * pieces, K: in, LDA: in, LDB: units * pieces, TF32: prec.tf32,
					Vec4: true, Pieces: pieces, Dropout: true}
				run := func(c kernels.GemmChoice) (yv, mv []float32, av []int32) {
					sw.c = c
					p.Poison(z, y, arg, mask)
					p.G.DenseMaxout(y.G, arg.G, mask.G, z.G, x.G, w.G, bias.G, pieces, 0.5, st)
					p.NoErr()
					if sw.seen != pr {
						t.Fatalf("the builder planned %v, want %v", sw.seen, pr)
					}
					return backendtest.Download(t, p.G, y.G), backendtest.Download(t, p.G, mask.G), backendtest.DownloadI32(t, p.G, arg.G)
				}
				fused := 0
				for _, c := range kernels.GemmCandidates(plan, pr) {
					name := fmt.Sprintf("%v/%v", pr, c)
					gy, gm, ga := run(c)
					backendtest.Near(t, name+" y", gy, backendtest.Download(t, p.C, y.C), prec.tol*10)
					backendtest.Bitwise(t, name+" mask", gm, backendtest.Download(t, p.C, mask.C))
					if !c.Fused {
						continue
					}
					fused++
					c.Fused = false
					uy, um, ua := run(c)
					backendtest.Bitwise(t, name+" y against unfused", gy, uy)
					backendtest.Bitwise(t, name+" arg against unfused", ga, ua)
					backendtest.Bitwise(t, name+" mask against unfused", gm, um)
				}
				if fused == 0 {
					t.Errorf("%v: no fused candidate", pr)
				}
			}
		})
	}
}
