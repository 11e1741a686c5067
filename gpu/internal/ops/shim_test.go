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
	"github.com/gantrain/gantrain/backend/backendtest"
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

type twin = backendtest.Twin

// newPair pairs the CPU backend with the shim under launch plan d.
func newPair(t *testing.T, d kernels.Target) *backendtest.Pair {
	c, err := cpu.New(cpu.Options{BLAS: "go"})
	if err != nil {
		t.Fatal(err)
	}
	return &backendtest.Pair{T: t, C: c, G: newShim(t, d), R: rand.New(rand.NewPCG(7, 8))}
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
					x, w, bias := p.Uniform(n, in, -1, 1), p.Uniform(in, out, -0.2, 0.2), p.Uniform(1, out, -0.5, 0.5)
					parent := p.Poisoned(n+1, out)
					y := p.View(parent, out, n, out)
					p.C.DenseForward(y.C, x.C, w.C, bias.C, act)
					p.G.DenseForward(y.G, x.G, w.G, bias.G, act)
					p.Close(name+" forward", y, plan.tol)
					yv := make([]float32, n*out)
					p.C.Download(yv, y.C)
					p.Set(y, yv)
					dy := p.Uniform(n, out, -1, 1)
					dx, dw, db := p.Poisoned(n, in), p.Poisoned(in, out), p.Poisoned(1, out)
					p.C.DenseBackward(dx.C, dw.C, db.C, dy.C, x.C, y.C, w.C, act)
					p.G.DenseBackward(dx.G, dw.G, db.G, dy.G, x.G, y.G, w.G, act)
					p.Close(name+" dZ", dy, 1e-6)
					p.Close(name+" dx", dx, plan.tol)
					p.Close(name+" dw", dw, plan.tol)
					p.Close(name+" db", db, 1e-5)
				}
			}
			// Maxout, dropout, elementwise, noise: bit for bit.
			z := p.Uniform(37, 65, -2, 2)
			y, arg := p.Poisoned(37, 13), p.Alloc(backend.I32, 37, 13)
			p.C.MaxoutForward(y.C, arg.C, z.C, 5)
			p.G.MaxoutForward(y.G, arg.G, z.G, 5)
			p.Same("maxout y", y)
			p.Same("maxout arg", arg)
			dy, dz := p.Uniform(37, 13, -1, 1), p.Poisoned(37, 65)
			p.C.MaxoutBackward(dz.C, dy.C, arg.C, 5)
			p.G.MaxoutBackward(dz.G, dy.G, arg.G, 5)
			p.Same("maxout dz", dz)
			s := rng.Stream{Seed: 5, Offset: 77}
			x, mask, out := p.Uniform(37, 53, -1, 1), p.Poisoned(37, 53), p.Poisoned(37, 53)
			p.C.Dropout(out.C, mask.C, x.C, 0.8, s)
			p.G.Dropout(out.G, mask.G, x.G, 0.8, s)
			p.Same("dropout mask", mask)
			p.Same("dropout y", out)
			p.C.Mul(out.C, x.C, mask.C)
			p.G.Mul(out.G, x.G, mask.G)
			p.Same("mul", out)
			p.C.Copy(out.C, x.C)
			p.G.Copy(out.G, x.G)
			p.Same("copy", out)
			p.C.Fill(out.C, 0.25)
			p.G.Fill(out.G, 0.25)
			p.Same("fill", out)
			p.C.Uniform(out.C, -1.5, 2, s)
			p.G.Uniform(out.G, -1.5, 2, s)
			p.Same("uniform", out)
			p.C.Normal(out.C, 0.5, 2, s)
			p.G.Normal(out.G, 0.5, 2, s)
			p.Same("normal", out)
			// Losses and reductions, into slots of a scalars tensor.
			logits, targets := p.Uniform(201, 1, -6, 6), p.Uniform(201, 1, 0, 1)
			scal, dl := p.Poisoned(1, 4), p.Poisoned(201, 1)
			p.C.SigmoidCrossEntropy(dl.C, logits.C, targets.C, -1.0/201, scal.C, 2)
			p.G.SigmoidCrossEntropy(dl.G, logits.G, targets.G, -1.0/201, scal.G, 2)
			p.C.MeanSigmoid(logits.C, scal.C, 0)
			p.G.MeanSigmoid(logits.G, scal.G, 0)
			l10, labels, dsm := p.Uniform(37, 10, -3, 3), p.Alloc(backend.I32, 37, 1), p.Poisoned(37, 10)
			lv := make([]int32, 37)
			for i := range lv {
				lv[i] = int32(p.R.IntN(10))
			}
			p.Set(labels, lv)
			p.C.SoftmaxCrossEntropy(dsm.C, l10.C, labels.C, 1.0/37, scal.C, 3)
			p.G.SoftmaxCrossEntropy(dsm.G, l10.G, labels.G, 1.0/37, scal.G, 3)
			p.C.SoftmaxCrossEntropy(nil, l10.C, labels.C, 1, scal.C, 1)
			p.G.SoftmaxCrossEntropy(nil, l10.G, labels.G, 1, scal.G, 1)
			p.Close("sigmoid bce dlogits", dl, 1e-5)
			p.Close("softmax xent dlogits", dsm, 1e-5)
			p.Close("scalars", scal, 1e-5)
			lse := p.Poisoned(37, 1)
			p.C.LogSumExpRows(lse.C, l10.C)
			p.G.LogSumExpRows(lse.G, l10.G)
			p.Close("logsumexp", lse, 1e-5)
			// Updates and the constraint.
			pp, g, v := p.Uniform(1, 1001, -1, 1), p.Uniform(1, 1001, -1, 1), p.Uniform(1, 1001, -0.1, 0.1)
			p.C.SGDMomentum(pp.C, g.C, v.C, 0.1, 0.5)
			p.G.SGDMomentum(pp.G, g.G, v.G, 0.1, 0.5)
			p.Close("sgd p", pp, 1e-6)
			p.Close("sgd v", v, 1e-6)
			m, v2 := p.Uniform(1, 1001, -0.1, 0.1), p.Uniform(1, 1001, 0, 0.01)
			p.C.Adam(pp.C, g.C, m.C, v2.C, 2e-4, 0.5, 0.999, 1e-8, 3)
			p.G.Adam(pp.G, g.G, m.G, v2.G, 2e-4, 0.5, 0.999, 1e-8, 3)
			p.Close("adam p", pp, 1e-6)
			p.Close("adam m", m, 1e-6)
			p.Close("adam v", v2, 1e-6)
			avg := p.Uniform(1, 1001, -1, 1)
			p.C.MovingAverage(avg.C, pp.C, 0.999)
			p.G.MovingAverage(avg.G, pp.G, 0.999)
			p.Same("moving average", avg)
			wc := p.Uniform(240, 37, -1, 1)
			p.C.ClipColumnNorms(wc.C, 8)
			p.G.ClipColumnNorms(wc.G, 8)
			p.Close("clip", wc, 1e-6)
			// Gather through a view of the indices, into a view.
			src, idx := p.Uniform(50, 7, 0, 1), p.Alloc(backend.I32, 1, 60)
			iv := make([]int32, 60)
			for i := range iv {
				iv[i] = int32(p.R.IntN(50))
			}
			p.Set(idx, iv)
			idxView := p.View(idx, 10, 1, 50)
			dstParent := p.Poisoned(21, 7)
			dst := p.View(dstParent, 7, 20, 7)
			p.C.GatherRows(dst.C, src.C, idxView.C, 25)
			p.G.GatherRows(dst.G, src.G, idxView.G, 25)
			p.Same("gather", dst)
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
		{"dense maxout z", func(b backend.Backend, f, i mk) {
			b.DenseMaxout(f(2, 3), i(2, 3), f(2, 3), f(2, 7), f(2, 4), f(4, 6), f(1, 6), 2, 0.5, s)
		}},
		{"dense maxout mask", func(b backend.Backend, f, i mk) {
			b.DenseMaxout(f(2, 3), i(2, 3), f(3, 2), f(2, 6), f(2, 4), f(4, 6), f(1, 6), 2, 0.5, s)
		}},
		{"dense maxout arg", func(b backend.Backend, f, i mk) {
			b.DenseMaxout(f(2, 3), f(2, 3), nil, f(2, 6), f(2, 4), f(4, 6), f(1, 6), 2, 1, s)
		}},
		{"dropout keep", func(b backend.Backend, f, i mk) { b.Dropout(f(2, 3), f(2, 3), f(2, 3), 0, s) }},
		{"foreign", func(b backend.Backend, f, i mk) { b.Fill(foreign{}, 1) }},
		{"im2col cols", func(b backend.Backend, f, i mk) {
			b.Im2Col(f(6, 6), f(2, 12), backend.ConvGeom{InH: 2, InW: 2, InC: 3, KH: 2, KW: 1, StrideH: 1, StrideW: 1})
		}},
		{"col2im geometry", func(b backend.Backend, f, i mk) {
			b.Col2Im(f(2, 12), f(4, 6), backend.ConvGeom{InH: 2, InW: 2, InC: 3, KH: 2, KW: 1, StrideH: 1, StrideW: 1, PadH: 2})
		}},
		{"conv forward w", func(b backend.Backend, f, i mk) {
			b.ConvForward(f(4, 5), f(4, 6), f(2, 12), f(5, 5), f(1, 5), backend.ConvGeom{InH: 2, InW: 2, InC: 3, KH: 2, KW: 1, StrideH: 1, StrideW: 1}, backend.Act{})
		}},
		{"conv forward nil b", func(b backend.Backend, f, i mk) {
			b.ConvForward(f(4, 5), f(4, 6), f(2, 12), f(6, 5), nil, backend.ConvGeom{InH: 2, InW: 2, InC: 3, KH: 2, KW: 1, StrideH: 1, StrideW: 1}, backend.Act{})
		}},
		{"conv transpose backward dx", func(b backend.Backend, f, i mk) {
			b.ConvTransposeBackward(f(4, 4), nil, f(4, 6), f(2, 12), f(4, 5), f(5, 6), backend.ConvGeom{InH: 2, InW: 2, InC: 3, KH: 2, KW: 1, StrideH: 1, StrideW: 1})
		}},
		{"conv transpose backward dw i32", func(b backend.Backend, f, i mk) {
			b.ConvTransposeBackward(nil, i(5, 6), f(4, 6), f(2, 12), f(4, 5), f(5, 6), backend.ConvGeom{InH: 2, InW: 2, InC: 3, KH: 2, KW: 1, StrideH: 1, StrideW: 1})
		}},
		{"conv backward dx", func(b backend.Backend, f, i mk) {
			b.ConvBackward(f(4, 12), nil, nil, f(4, 6), f(4, 5), f(4, 6), f(4, 5), f(6, 5), backend.ConvGeom{InH: 2, InW: 2, InC: 3, KH: 2, KW: 1, StrideH: 1, StrideW: 1}, backend.Act{})
		}},
		{"conv backward i32 dcols", func(b backend.Backend, f, i mk) {
			b.ConvBackward(f(2, 12), nil, nil, i(4, 6), f(4, 5), f(4, 6), f(4, 5), f(6, 5), backend.ConvGeom{InH: 2, InW: 2, InC: 3, KH: 2, KW: 1, StrideH: 1, StrideW: 1}, backend.Act{})
		}},
		{"conv transpose forward b", func(b backend.Backend, f, i mk) {
			b.ConvTransposeForward(f(2, 12), f(4, 6), f(4, 5), f(5, 6), f(1, 5), backend.ConvGeom{InH: 2, InW: 2, InC: 3, KH: 2, KW: 1, StrideH: 1, StrideW: 1}, backend.Act{})
		}},
		{"conv transpose forward i32 x", func(b backend.Backend, f, i mk) {
			b.ConvTransposeForward(f(2, 12), f(4, 6), i(4, 5), f(5, 6), f(1, 3), backend.ConvGeom{InH: 2, InW: 2, InC: 3, KH: 2, KW: 1, StrideH: 1, StrideW: 1}, backend.Act{})
		}},
		{"conv forward i32", func(b backend.Backend, f, i mk) {
			b.ConvForward(f(4, 5), f(4, 6), i(2, 12), f(6, 5), f(1, 5), backend.ConvGeom{InH: 2, InW: 2, InC: 3, KH: 2, KW: 1, StrideH: 1, StrideW: 1}, backend.Act{})
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
	cfg.Generator = model.DCGANGenerator(8, 8, 8, 2, 0)
	cfg.Discriminator = model.DCGANDiscriminator(4, 2, 0)
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

// fusedFirst is a GemmChooser that takes the first fused candidate of a product that
// has one (the maxout in the product's epilogue), else the fixed table's choice.
type fusedFirst struct{ d kernels.Target }

func (f fusedFirst) ChooseGemm(p kernels.GemmProblem, _ func(kernels.GemmChoice) []kernels.Launch) kernels.GemmChoice {
	for _, c := range kernels.GemmCandidates(f.d, p) {
		if c.Fused {
			return c
		}
	}
	return kernels.DefaultGemm(f.d, p)
}

// TestDenseMaxoutOnShim runs DenseMaxout through the backend wiring on the shim, with
// the maxout after the product (the fixed table) and in its epilogue, against the CPU
// backend: y to the product's rounding, the dropout mask bit for bit, and (fp32) the
// winning pieces.
func TestDenseMaxoutOnShim(t *testing.T) {
	for _, plan := range plans {
		for _, fused := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/fused=%v", plan.name, fused), func(t *testing.T) {
				d := plan.d
				if fused {
					d.Gemm = fusedFirst{plan.d}
				}
				p := newPair(t, d)
				for _, sh := range [][4]int{{37, 52, 24, 5}, {100, 240, 240, 5}, {3, 7, 5, 3}} {
					n, in, units, pieces := sh[0], sh[1], sh[2], sh[3]
					for _, dropout := range []bool{true, false} {
						name := fmt.Sprintf("%v dropout=%v", sh, dropout)
						x, w, bias := p.Uniform(n, in, -1, 1), p.Uniform(in, units*pieces, -0.2, 0.2), p.Uniform(1, units*pieces, -0.5, 0.5)
						z, y, arg := p.Poisoned(n, units*pieces), p.Poisoned(n, units), p.Alloc(backend.I32, n, units)
						s := rng.Stream{Seed: 9, Offset: uint64(n)}
						var mask twin
						var mc, mg backend.Tensor
						if dropout {
							mask = p.Poisoned(n, units)
							mc, mg = mask.C, mask.G
						}
						p.C.DenseMaxout(y.C, arg.C, mc, z.C, x.C, w.C, bias.C, pieces, 0.8, s)
						p.G.DenseMaxout(y.G, arg.G, mg, z.G, x.G, w.G, bias.G, pieces, 0.8, s)
						p.NoErr()
						p.Close(name+" y", y, plan.tol)
						if dropout {
							p.Same(name+" mask", mask)
						}
						if !plan.d.TF32 {
							p.Same(name+" arg", arg)
						}
						if fused && in%4 == 0 && units*pieces%4 == 0 { // the product is gemm.cu's: z is never stored
							p.Untouched(name+" z", z, 0, n*units*pieces)
						}
					}
				}
			})
		}
	}
}
