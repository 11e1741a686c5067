//go:build cgo

package ops_test

// The GPU backend's operations, wired exactly as package gpu wires them, launched on
// the kernels' CPU shim (kernels/shimtest) instead of a CUDA stream: a check, on any
// machine, of what the GPU tests check on a device — operand checks and messages,
// addresses of views, sizes handed to the builders, the host-side index checks — and
// of a trainer running on it.

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/gantrain/gantrain/backend"
	"github.com/gantrain/gantrain/config"
	"github.com/gantrain/gantrain/cpu"
	"github.com/gantrain/gantrain/data"
	"github.com/gantrain/gantrain/gpu/internal/ops"
	"github.com/gantrain/gantrain/kernels"
	"github.com/gantrain/gantrain/kernels/shimtest"
	"github.com/gantrain/gantrain/model"
	"github.com/gantrain/gantrain/rng"
	"github.com/gantrain/gantrain/trainer"
)

// shim is a backend.Backend whose memory is host memory and whose launches run on the
// shim, synchronously.
type shim struct {
	ops.Core
	mems []*shimtest.Mem // sorted by address
}

func newShim(t testing.TB, d kernels.Target) *shim {
	b := &shim{}
	ws := shimtest.Alloc(kernels.WorkspaceBytes(d) / 4)
	b.mems = append(b.mems, ws)
	b.Core = ops.Core{Kind: "CUDA", Target: d, Workspace: ws.Addr(), Launch: func(op string, ls []kernels.Launch) {
		if b.Failed() != nil {
			return
		}
		if err := shimtest.Run(ls); err != nil {
			b.Fail(fmt.Errorf("%s: %w", op, err))
		}
	}}
	t.Cleanup(func() { b.Close() })
	return b
}

func (b *shim) Name() string     { return "cuda" }
func (b *shim) Describe() string { return "the kernels' CPU shim" }
func (b *shim) Sync() error      { return b.Failed() }
func (b *shim) Err() error       { return b.Failed() }
func (b *shim) Close() error {
	for _, m := range b.mems {
		m.Free()
	}
	b.mems = nil
	return nil
}

func (b *shim) Alloc(dt backend.DType, rows, cols int) (backend.Tensor, error) {
	if !ops.CheckShape(rows, cols) {
		return nil, fmt.Errorf("cuda alloc: bad shape %d×%d", rows, cols)
	}
	m := shimtest.Alloc(rows * cols)
	b.mems = append(b.mems, m)
	sort.Slice(b.mems, func(i, j int) bool { return b.mems[i].Addr() < b.mems[j].Addr() })
	return b.NewTensor(dt, rows, cols, m.Addr()), nil
}

// words returns t's elements as a slice of its allocation.
func (b *shim) words(t *ops.Tensor) []int32 {
	i := sort.Search(len(b.mems), func(i int) bool { return b.mems[i].Addr() > t.Ptr() }) - 1
	m := b.mems[i]
	off := int(t.Ptr()-m.Addr()) / 4
	return m.I32()[off : off+t.Len()]
}

func (b *shim) Upload(dst backend.Tensor, src any) error {
	t, err := b.Own(dst, "upload")
	if err != nil {
		return err
	}
	w := b.words(t)
	switch s := src.(type) {
	case []float32:
		if t.DType() != backend.F32 || len(s) != t.Len() {
			return fmt.Errorf("cuda upload: %d float32 values into %s", len(s), t)
		}
		for i, v := range s {
			w[i] = int32(math.Float32bits(v))
		}
	case []int32:
		if t.DType() != backend.I32 || len(s) != t.Len() {
			return fmt.Errorf("cuda upload: %d int32 values into %s", len(s), t)
		}
		copy(w, s)
		t.Uploaded(s)
	default:
		return fmt.Errorf("cuda upload: unsupported source %T", src)
	}
	return nil
}

func (b *shim) Download(dst any, src backend.Tensor) error {
	if err := b.Failed(); err != nil {
		return err
	}
	t, err := b.Own(src, "download")
	if err != nil {
		return err
	}
	w := b.words(t)
	switch d := dst.(type) {
	case []float32:
		if t.DType() != backend.F32 || len(d) != t.Len() {
			return fmt.Errorf("cuda download: %s into %d float32 values", t, len(d))
		}
		for i, v := range w {
			d[i] = math.Float32frombits(uint32(v))
		}
	case []int32:
		if t.DType() != backend.I32 || len(d) != t.Len() {
			return fmt.Errorf("cuda download: %s into %d int32 values", t, len(d))
		}
		copy(d, w)
	default:
		return fmt.Errorf("cuda download: unsupported destination %T", dst)
	}
	return nil
}

var _ backend.Backend = (*shim)(nil)

// plans are the launch plans tested: an H100's (split-K and row splits for small
// shapes), and its TF32 path.
var plans = []struct {
	name string
	d    kernels.Target
	tol  float64
}{{"fp32", kernels.Target{SMs: 132}, 1e-5}, {"tf32", kernels.Target{SMs: 132, TF32: true}, 3e-3}}

type pair struct {
	t    *testing.T
	c, g backend.Backend
	r    *rand.Rand
}

type twin struct{ c, g backend.Tensor }

func newPair(t *testing.T, d kernels.Target) *pair {
	c, err := cpu.New(cpu.Options{BLAS: "go"})
	if err != nil {
		t.Fatal(err)
	}
	return &pair{t: t, c: c, g: newShim(t, d), r: rand.New(rand.NewPCG(7, 8))}
}

func (p *pair) alloc(dt backend.DType, rows, cols int) twin {
	p.t.Helper()
	c, err := p.c.Alloc(dt, rows, cols)
	if err != nil {
		p.t.Fatal(err)
	}
	g, err := p.g.Alloc(dt, rows, cols)
	if err != nil {
		p.t.Fatal(err)
	}
	return twin{c, g}
}

func (p *pair) set(x twin, v any) {
	p.t.Helper()
	if err := p.c.Upload(x.c, v); err != nil {
		p.t.Fatal(err)
	}
	if err := p.g.Upload(x.g, v); err != nil {
		p.t.Fatal(err)
	}
}

func (p *pair) uniform(rows, cols int, lo, hi float32) twin {
	x := p.alloc(backend.F32, rows, cols)
	v := make([]float32, rows*cols)
	for i := range v {
		v[i] = lo + (hi-lo)*p.r.Float32()
	}
	p.set(x, v)
	return x
}

// poisoned is a rows×cols tensor of NaN on both sides.
func (p *pair) poisoned(rows, cols int) twin {
	x := p.alloc(backend.F32, rows, cols)
	v := make([]float32, rows*cols)
	for i := range v {
		v[i] = float32(math.NaN())
	}
	p.set(x, v)
	return x
}

func (p *pair) view(x twin, off, rows, cols int) twin {
	p.t.Helper()
	c, err := p.c.View(x.c, off, rows, cols)
	if err != nil {
		p.t.Fatal(err)
	}
	g, err := p.g.View(x.g, off, rows, cols)
	if err != nil {
		p.t.Fatal(err)
	}
	return twin{c, g}
}

// check compares x within tol (0: bit for bit), failing on errors and NaN.
func (p *pair) check(name string, x twin, tol float64) {
	p.t.Helper()
	if err := errors.Join(p.c.Err(), p.g.Err()); err != nil {
		p.t.Fatalf("%s: %v", name, err)
	}
	if x.c.DType() == backend.I32 {
		c, g := make([]int32, backend.Len(x.c)), make([]int32, backend.Len(x.g))
		p.c.Download(c, x.c)
		p.g.Download(g, x.g)
		if !reflect.DeepEqual(c, g) {
			p.t.Errorf("%s: int32 values differ", name)
		}
		return
	}
	c, g := make([]float32, backend.Len(x.c)), make([]float32, backend.Len(x.g))
	p.c.Download(c, x.c)
	p.g.Download(g, x.g)
	var d, w float64
	for i := range c {
		if g[i] != g[i] && c[i] == c[i] {
			p.t.Errorf("%s: element %d is NaN (unwritten?), cpu %g", name, i, c[i])
			return
		}
		if tol == 0 && math.Float32bits(g[i]) != math.Float32bits(c[i]) {
			p.t.Errorf("%s: element %d: shim %g, cpu %g", name, i, g[i], c[i])
			return
		}
		if math.IsInf(float64(c[i]), 0) && g[i] == c[i] {
			continue
		}
		d += (float64(g[i]) - float64(c[i])) * (float64(g[i]) - float64(c[i]))
		w += float64(c[i]) * float64(c[i])
	}
	if w > 0 {
		d /= w
	}
	if e := math.Sqrt(d); !(e <= tol) && tol > 0 {
		p.t.Errorf("%s: relative error %.3g > %g", name, e, tol)
	}
}

// TestOpsOnShim runs every operation through the backend wiring on the shim and
// compares with the CPU backend.
func TestOpsOnShim(t *testing.T) {
	for _, plan := range plans {
		t.Run(plan.name, func(t *testing.T) {
			p := newPair(t, plan.d)
			for _, sh := range [][3]int{{1, 1, 1}, {37, 53, 29}, {64, 100, 120}, {200, 24, 1}} {
				n, in, out := sh[0], sh[1], sh[2]
				for _, act := range []backend.Act{{Kind: backend.ReLU}, {Kind: backend.LeakyReLU, Alpha: 0.2}, {Kind: backend.Sigmoid}, {Kind: backend.Tanh}, {}} {
					name := fmt.Sprintf("%dx%dx%d %s", n, in, out, act.Kind)
					x, w, bias := p.uniform(n, in, -1, 1), p.uniform(in, out, -0.2, 0.2), p.uniform(1, out, -0.5, 0.5)
					parent := p.poisoned(n+1, out)
					y := p.view(parent, out, n, out)
					p.c.DenseForward(y.c, x.c, w.c, bias.c, act)
					p.g.DenseForward(y.g, x.g, w.g, bias.g, act)
					p.check(name+" forward", y, plan.tol)
					yv := make([]float32, n*out)
					p.c.Download(yv, y.c)
					p.set(y, yv)
					dy := p.uniform(n, out, -1, 1)
					dx, dw, db := p.poisoned(n, in), p.poisoned(in, out), p.poisoned(1, out)
					p.c.DenseBackward(dx.c, dw.c, db.c, dy.c, x.c, y.c, w.c, act)
					p.g.DenseBackward(dx.g, dw.g, db.g, dy.g, x.g, y.g, w.g, act)
					p.check(name+" dZ", dy, 1e-6)
					p.check(name+" dx", dx, plan.tol)
					p.check(name+" dw", dw, plan.tol)
					p.check(name+" db", db, 1e-5)
				}
			}
			// Maxout, dropout, elementwise, noise: bit for bit.
			z := p.uniform(37, 65, -2, 2)
			y, arg := p.poisoned(37, 13), p.alloc(backend.I32, 37, 13)
			p.c.MaxoutForward(y.c, arg.c, z.c, 5)
			p.g.MaxoutForward(y.g, arg.g, z.g, 5)
			p.check("maxout y", y, 0)
			p.check("maxout arg", arg, 0)
			dy, dz := p.uniform(37, 13, -1, 1), p.poisoned(37, 65)
			p.c.MaxoutBackward(dz.c, dy.c, arg.c, 5)
			p.g.MaxoutBackward(dz.g, dy.g, arg.g, 5)
			p.check("maxout dz", dz, 0)
			s := rng.Stream{Seed: 5, Offset: 77}
			x, mask, out := p.uniform(37, 53, -1, 1), p.poisoned(37, 53), p.poisoned(37, 53)
			p.c.Dropout(out.c, mask.c, x.c, 0.8, s)
			p.g.Dropout(out.g, mask.g, x.g, 0.8, s)
			p.check("dropout mask", mask, 0)
			p.check("dropout y", out, 0)
			p.c.Mul(out.c, x.c, mask.c)
			p.g.Mul(out.g, x.g, mask.g)
			p.check("mul", out, 0)
			p.c.Copy(out.c, x.c)
			p.g.Copy(out.g, x.g)
			p.check("copy", out, 0)
			p.c.Fill(out.c, 0.25)
			p.g.Fill(out.g, 0.25)
			p.check("fill", out, 0)
			p.c.Uniform(out.c, -1.5, 2, s)
			p.g.Uniform(out.g, -1.5, 2, s)
			p.check("uniform", out, 0)
			p.c.Normal(out.c, 0.5, 2, s)
			p.g.Normal(out.g, 0.5, 2, s)
			p.check("normal", out, 0)
			// Losses and reductions, into slots of a scalars tensor.
			logits, targets := p.uniform(201, 1, -6, 6), p.uniform(201, 1, 0, 1)
			scal, dl := p.poisoned(1, 4), p.poisoned(201, 1)
			p.c.SigmoidCrossEntropy(dl.c, logits.c, targets.c, -1.0/201, scal.c, 2)
			p.g.SigmoidCrossEntropy(dl.g, logits.g, targets.g, -1.0/201, scal.g, 2)
			p.c.MeanSigmoid(logits.c, scal.c, 0)
			p.g.MeanSigmoid(logits.g, scal.g, 0)
			l10, labels, dsm := p.uniform(37, 10, -3, 3), p.alloc(backend.I32, 37, 1), p.poisoned(37, 10)
			lv := make([]int32, 37)
			for i := range lv {
				lv[i] = int32(p.r.IntN(10))
			}
			p.set(labels, lv)
			p.c.SoftmaxCrossEntropy(dsm.c, l10.c, labels.c, 1.0/37, scal.c, 3)
			p.g.SoftmaxCrossEntropy(dsm.g, l10.g, labels.g, 1.0/37, scal.g, 3)
			p.c.SoftmaxCrossEntropy(nil, l10.c, labels.c, 1, scal.c, 1)
			p.g.SoftmaxCrossEntropy(nil, l10.g, labels.g, 1, scal.g, 1)
			p.check("sigmoid bce dlogits", dl, 1e-5)
			p.check("softmax xent dlogits", dsm, 1e-5)
			p.check("scalars", scal, 1e-5)
			lse := p.poisoned(37, 1)
			p.c.LogSumExpRows(lse.c, l10.c)
			p.g.LogSumExpRows(lse.g, l10.g)
			p.check("logsumexp", lse, 1e-5)
			// Updates and the constraint.
			pp, g, v := p.uniform(1, 1001, -1, 1), p.uniform(1, 1001, -1, 1), p.uniform(1, 1001, -0.1, 0.1)
			p.c.SGDMomentum(pp.c, g.c, v.c, 0.1, 0.5)
			p.g.SGDMomentum(pp.g, g.g, v.g, 0.1, 0.5)
			p.check("sgd p", pp, 1e-6)
			p.check("sgd v", v, 1e-6)
			m, v2 := p.uniform(1, 1001, -0.1, 0.1), p.uniform(1, 1001, 0, 0.01)
			p.c.Adam(pp.c, g.c, m.c, v2.c, 2e-4, 0.5, 0.999, 1e-8, 3)
			p.g.Adam(pp.g, g.g, m.g, v2.g, 2e-4, 0.5, 0.999, 1e-8, 3)
			p.check("adam p", pp, 1e-6)
			p.check("adam m", m, 1e-6)
			p.check("adam v", v2, 1e-6)
			avg := p.uniform(1, 1001, -1, 1)
			p.c.MovingAverage(avg.c, pp.c, 0.999)
			p.g.MovingAverage(avg.g, pp.g, 0.999)
			p.check("moving average", avg, 0)
			wc := p.uniform(240, 37, -1, 1)
			p.c.ClipColumnNorms(wc.c, 8)
			p.g.ClipColumnNorms(wc.g, 8)
			p.check("clip", wc, 1e-6)
			// Gather through a view of the indices, into a view.
			src, idx := p.uniform(50, 7, 0, 1), p.alloc(backend.I32, 1, 60)
			iv := make([]int32, 60)
			for i := range iv {
				iv[i] = int32(p.r.IntN(50))
			}
			p.set(idx, iv)
			idxView := p.view(idx, 10, 1, 50)
			dstParent := p.poisoned(21, 7)
			dst := p.view(dstParent, 7, 20, 7)
			p.c.GatherRows(dst.c, src.c, idxView.c, 25)
			p.g.GatherRows(dst.g, src.g, idxView.g, 25)
			p.check("gather", dst, 0)
		})
	}
}

// TestErrorsOnShim: calls the CPU backend refuses are refused with the same messages.
func TestErrorsOnShim(t *testing.T) {
	type mk func(r, c int) backend.Tensor
	s := rng.Stream{}
	for _, tc := range []struct {
		name string
		call func(b backend.Backend, f, i mk)
	}{
		{"dense w rows", func(b backend.Backend, f, i mk) { b.DenseForward(f(4, 5), f(4, 3), f(2, 5), f(1, 5), backend.Act{}) }},
		{"dense dx", func(b backend.Backend, f, i mk) {
			b.DenseBackward(f(3, 4), f(3, 5), f(1, 5), f(4, 5), f(4, 3), f(4, 5), f(3, 5), backend.Act{})
		}},
		{"maxout arg", func(b backend.Backend, f, i mk) { b.MaxoutForward(f(2, 3), f(2, 3), f(2, 6), 2) }},
		{"dropout keep", func(b backend.Backend, f, i mk) { b.Dropout(f(2, 3), f(2, 3), f(2, 3), 0, s) }},
		{"foreign", func(b backend.Backend, f, i mk) { b.Fill(foreign{}, 1) }},
		{"im2col cols", func(b backend.Backend, f, i mk) {
			b.Im2Col(f(6, 6), f(2, 12), backend.ConvGeom{InH: 2, InW: 2, InC: 3, KH: 2, KW: 1, StrideH: 1, StrideW: 1})
		}},
		{"col2im geometry", func(b backend.Backend, f, i mk) {
			b.Col2Im(f(2, 12), f(4, 6), backend.ConvGeom{InH: 2, InW: 2, InC: 3, KH: 2, KW: 1, StrideH: 1, StrideW: 1, PadH: 2})
		}},
		{"im2col i32", func(b backend.Backend, f, i mk) {
			b.Im2Col(f(4, 6), i(2, 12), backend.ConvGeom{InH: 2, InW: 2, InC: 3, KH: 2, KW: 1, StrideH: 1, StrideW: 1})
		}},
		{"bias activation b", func(b backend.Backend, f, i mk) { b.BiasActivation(f(4, 3), f(1, 4), backend.Act{}) }},
		{"bias activation db", func(b backend.Backend, f, i mk) { b.BiasActivationBackward(f(1, 2), f(4, 3), f(4, 3), backend.Act{}) }},
		{"batchnorm groups", func(b backend.Backend, f, i mk) {
			b.BatchNorm(f(5, 3), f(2, 3), f(2, 3), f(5, 3), f(1, 3), f(1, 3), nil, nil, 2, 1e-5, 0.1, backend.Act{})
		}},
		{"batchnorm running", func(b backend.Backend, f, i mk) {
			b.BatchNorm(f(4, 3), f(1, 3), f(1, 3), f(4, 3), f(1, 3), f(1, 3), f(1, 3), nil, 1, 1e-5, 0.1, backend.Act{})
		}},
		{"batchnorm runVar i32", func(b backend.Backend, f, i mk) {
			b.BatchNorm(f(4, 3), f(1, 3), f(1, 3), f(4, 3), f(1, 3), f(1, 3), f(1, 3), i(1, 3), 1, 1e-5, 0.1, backend.Act{})
		}},
		{"batchnorm infer eps", func(b backend.Backend, f, i mk) {
			b.BatchNormInfer(f(4, 3), f(4, 3), f(1, 3), f(1, 3), f(1, 3), f(1, 3), 0, backend.Act{})
		}},
		{"batchnorm backward mean", func(b backend.Backend, f, i mk) {
			b.BatchNormBackward(nil, f(1, 3), nil, f(4, 3), f(4, 3), f(4, 3), f(1, 3), f(1, 3), f(2, 3), 2, 1e-5, backend.Act{})
		}},
		{"batchnorm backward dgamma i32", func(b backend.Backend, f, i mk) {
			b.BatchNormBackward(nil, i(1, 3), nil, f(4, 3), f(4, 3), f(4, 3), f(1, 3), f(1, 3), f(1, 3), 1, 1e-5, backend.Act{})
		}},
		{"gather index", func(b backend.Backend, f, i mk) {
			idx := i(1, 3)
			b.Upload(idx, []int32{0, 1, 9})
			b.GatherRows(f(3, 2), f(5, 2), idx, 0)
		}},
		{"softmax label", func(b backend.Backend, f, i mk) {
			l := i(2, 1)
			b.Upload(l, []int32{-1, 0})
			b.SoftmaxCrossEntropy(nil, f(2, 3), l, 1, f(1, 1), 0)
		}},
	} {
		c, err := cpu.New(cpu.Options{BLAS: "go"})
		if err != nil {
			t.Fatal(err)
		}
		var msgs []string
		for _, b := range []backend.Backend{c, newShim(t, kernels.Target{SMs: 132})} {
			f := func(r, c int) backend.Tensor { x, _ := b.Alloc(backend.F32, r, c); return x }
			i := func(r, c int) backend.Tensor { x, _ := b.Alloc(backend.I32, r, c); return x }
			tc.call(b, f, i)
			err := b.Err()
			if !errors.Is(err, backend.ErrShape) {
				t.Errorf("%s: %s: %v, want ErrShape", tc.name, b.Name(), err)
				continue
			}
			msgs = append(msgs, strings.ReplaceAll(err.Error(), "CUDA", "CPU"))
		}
		if len(msgs) == 2 && msgs[0] != msgs[1] {
			t.Errorf("%s: messages differ:\n cpu  %s\n shim %s", tc.name, msgs[0], msgs[1])
		}
	}
}

type foreign struct{}

func (foreign) Rows() int            { return 1 }
func (foreign) Cols() int            { return 1 }
func (foreign) DType() backend.DType { return backend.F32 }

// TestTrainerOnShim trains small nets on the shim and on the CPU from the same start:
// the checkpoints agree across the two (the format, bit for bit) and the losses track.
func TestTrainerOnShim(t *testing.T) {
	cfg := config.Default()
	cfg.Generator[0].Units, cfg.Generator[1].Units = 32, 32
	cfg.Discriminator[1].Units, cfg.Discriminator[3].Units = 16, 16
	cfg.Train.Batch, cfg.Noise.Dim, cfg.Output.Samples = 20, 10, 4
	trainOnShim(t, cfg, randomSet(110, data.Shape{H: 28, W: 28, C: 1}), 7) // crosses an epoch of 110/20: an upload of the next order
}

// TestConvTrainerOnShim is TestTrainerOnShim for small convolutional nets with
// batchnorm: DCGAN-style G and D on 8×8 images, Adam.
func TestConvTrainerOnShim(t *testing.T) {
	cfg := config.Default()
	config.DCGANMNISTDefaults(&cfg)
	cfg.Generator = model.DCGANGenerator(8, 8, 8, 2)
	cfg.Discriminator = model.DCGANDiscriminator(4, 2)
	cfg.Train.Batch, cfg.Noise.Dim, cfg.Output.Samples = 6, 5, 4
	trainOnShim(t, cfg, randomSet(40, data.Shape{H: 8, W: 8, C: 1}), 4)
}

func randomSet(n int, shape data.Shape) *data.Set {
	r := rand.New(rand.NewPCG(3, 3))
	dim := shape.Size()
	set := &data.Set{Name: "random", N: n, Dim: dim, Shape: shape, X: make([]float32, n*dim)}
	for i := range set.X {
		set.X[i] = r.Float32()
	}
	return set
}

// trainOnShim runs steps iterations of cfg on the shim and on the CPU, compares their
// losses, and restores the shim's checkpoint into a CPU trainer, whose checkpoint must
// hold the same tensors.
func trainOnShim(t *testing.T, cfg config.Config, set *data.Set, steps int) {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	c, err := cpu.New(cpu.Options{BLAS: "go"})
	if err != nil {
		t.Fatal(err)
	}
	tc, err := trainer.New(cfg, c, set, log)
	if err != nil {
		t.Fatal(err)
	}
	ts, err := trainer.New(cfg, newShim(t, kernels.Target{SMs: 132}), set, log)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < steps; i++ {
		sc, err := tc.Step(true)
		if err != nil {
			t.Fatal(err)
		}
		sg, err := ts.Step(true)
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(sc.DLoss-sg.DLoss) > 1e-3 || math.Abs(sc.GLoss-sg.GLoss) > 1e-3 {
			t.Errorf("iteration %d: shim D %.6f G %.6f, cpu D %.6f G %.6f", i+1, sg.DLoss, sg.GLoss, sc.DLoss, sc.GLoss)
		}
	}
	f, err := ts.Checkpoint()
	if err != nil {
		t.Fatal(err)
	}
	c2, _ := cpu.New(cpu.Options{BLAS: "go"})
	back, err := trainer.New(cfg, c2, set, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := back.Restore(f); err != nil {
		t.Fatal(err)
	}
	f2, err := back.Checkpoint()
	if err != nil {
		t.Fatal(err)
	}
	for i := range f.Tensors {
		if !reflect.DeepEqual(f.Tensors[i], f2.Tensors[i]) {
			t.Errorf("tensor %s changed through the CPU", f.Tensors[i].Name)
		}
	}
}
