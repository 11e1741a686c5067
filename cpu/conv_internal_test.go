package cpu

import (
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/gantrain/gantrain/backend"
)

// convOperands allocates float32 tensors on b, filled with distinct values from v0,
// and keeps every one in *all.
func convOperands(t *testing.T, b *Backend, all *[]*tensor) func(rows, cols int, v0 float32) backend.Tensor {
	return func(rows, cols int, v0 float32) backend.Tensor {
		t.Helper()
		x, err := b.Alloc(backend.F32, rows, cols)
		if err != nil {
			t.Fatal(err)
		}
		ct := x.(*tensor)
		for i := range ct.f {
			ct.f[i] = v0 + float32(i%97)/64
		}
		*all = append(*all, ct)
		return x
	}
}

// convRun runs every convolution operation on sizes that split between workers and
// returns every tensor it wrote.
func convRun(t *testing.T, b *Backend) []*tensor {
	t.Helper()
	const eps, momentum = 1e-3, 0.1
	g := backend.ConvGeom{InH: 15, InW: 13, InC: 8, KH: 3, KW: 4, StrideH: 1, StrideW: 2, PadH: 1, PadW: 2}
	const n, m, c = 8, 40, 5 * columnBlock
	var all []*tensor
	f := convOperands(t, b, &all)
	r := rand.New(rand.NewPCG(5, 6))
	rnd := func(rows, cols int, lo, hi float32) backend.Tensor {
		x := f(rows, cols, 0)
		for i := range x.(*tensor).f {
			x.(*tensor).f[i] = lo + (hi-lo)*r.Float32()
		}
		return x
	}
	rows := n * g.Positions()
	if rows*g.Patch() < minParallel || b.columnParts(m*c, c) < min(b.pool.n, 2) {
		t.Fatalf("the sizes do not split between %d workers", b.pool.n)
	}
	b.Im2Col(f(rows, g.Patch(), 0), rnd(n, g.InSize(), -1, 1), g)
	b.Col2Im(f(n, g.InSize(), 0), rnd(rows, g.Patch(), -1, 1), g)

	act := backend.Act{Kind: backend.LeakyReLU, Alpha: 0.2}
	x, gamma, beta := rnd(m, c, -1, 2), rnd(1, c, 0.5, 1.5), rnd(1, c, -0.5, 0.5)
	y, mean, variance, runMean, runVar := f(m, c, 0), f(1, c, 0), f(1, c, 0), f(1, c, 0), f(1, c, 1)
	b.BatchNorm(y, mean, variance, x, gamma, beta, runMean, runVar, 1, eps, momentum, act)
	b.BatchNormBackward(f(m, c, 0), f(1, c, 0), f(1, c, 0), rnd(m, c, -1, 1), x, y, gamma, mean, variance, 1, eps, act)
	b.BatchNormInfer(f(m, c, 0), x, gamma, beta, runMean, runVar, eps, act)
	z := rnd(m, c, -1, 1)
	b.BiasActivation(z, beta, act)
	b.BiasActivationBackward(f(1, c, 0), rnd(m, c, -1, 1), z, act)
	if err := b.Err(); err != nil {
		t.Fatal(err)
	}
	return all
}

// TestConvThreadInvariance requires the same bits from 1 to 5 threads: every
// reduction sums each column over the rows in order, whatever the split.
func TestConvThreadInvariance(t *testing.T) {
	run := func(threads int) []*tensor {
		b, err := New(Options{BLAS: "go", Threads: threads})
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		return convRun(t, b)
	}
	want := run(1)
	for _, threads := range []int{2, 3, 5} {
		if k := changed(run(threads), want); k >= 0 {
			t.Errorf("%d threads: tensor %d (%s) differs from one thread's", threads, k, want[k])
		}
	}
}

// TestConvAllocations: after a first call has grown the scratch, an operation
// allocates only what handing its jobs to the workers costs (closures, about three a
// job; BatchNormBackward hands out three jobs), the same for every size.
func TestConvAllocations(t *testing.T) {
	b, err := New(Options{BLAS: "go", Threads: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var all []*tensor
	f := convOperands(t, b, &all)
	const m, c = 2000, 100
	act := backend.Act{Kind: backend.Tanh}
	g := backend.ConvGeom{InH: 15, InW: 13, InC: 8, KH: 3, KW: 3, StrideH: 1, StrideW: 1, PadH: 1, PadW: 1}
	x, y, dy, bias, mean, variance := f(m, c, -1), f(m, c, 0), f(m, c, 1), f(1, c, 0), f(1, c, 0), f(1, c, 1)
	img, cols := f(8, g.InSize(), 0), f(8*g.Positions(), g.Patch(), 0)
	for _, op := range []struct {
		name string
		call func()
	}{
		{"Im2Col", func() { b.Im2Col(cols, img, g) }},
		{"Col2Im", func() { b.Col2Im(img, cols, g) }},
		{"BiasActivation", func() { b.BiasActivation(y, bias, act) }},
		{"BiasActivationBackward", func() { b.BiasActivationBackward(bias, dy, y, act) }},
		{"BatchNorm", func() { b.BatchNorm(y, mean, variance, x, bias, bias, nil, nil, 1, 1e-3, 0, act) }},
		{"BatchNormInfer", func() { b.BatchNormInfer(y, x, bias, bias, mean, variance, 1e-3, act) }},
		{"BatchNormBackward", func() { b.BatchNormBackward(x, bias, bias, dy, x, y, bias, mean, variance, 1, 1e-3, act) }},
	} {
		op.call()
		if n := testing.AllocsPerRun(3, op.call); n > 9 {
			t.Errorf("%s: %v allocations a call, want at most 9", op.name, n)
		}
	}
	if err := b.Err(); err != nil {
		t.Fatal(err)
	}
}

// TestConvShapeErrors gives each convolution operation mismatched operands: it must
// record an ErrShape error naming the operation and write nothing.
func TestConvShapeErrors(t *testing.T) {
	g := backend.ConvGeom{InH: 4, InW: 5, InC: 2, KH: 3, KW: 3, StrideH: 1, StrideW: 1, PadH: 1, PadW: 1} // 20 positions, patch 18
	tanh := backend.Act{Kind: backend.Tanh}
	type mk = func(rows, cols int) backend.Tensor
	for _, tc := range []struct {
		op, name string
		call     func(b *Backend, f mk)
	}{
		{"Im2Col", "cols rows", func(b *Backend, f mk) { b.Im2Col(f(39, 18), f(2, 40), g) }},
		{"Im2Col", "cols cols", func(b *Backend, f mk) { b.Im2Col(f(40, 17), f(2, 40), g) }},
		{"Im2Col", "x cols", func(b *Backend, f mk) { b.Im2Col(f(40, 18), f(2, 41), g) }},
		{"Im2Col", "nil x", func(b *Backend, f mk) { b.Im2Col(f(40, 18), nil, g) }},
		{"Im2Col", "padding ≥ kernel", func(b *Backend, f mk) {
			b.Im2Col(f(40, 18), f(2, 40), backend.ConvGeom{InH: 4, InW: 5, InC: 2, KH: 3, KW: 3, StrideH: 1, StrideW: 1, PadH: 3, PadW: 1})
		}},
		{"Im2Col", "zero stride", func(b *Backend, f mk) {
			b.Im2Col(f(40, 18), f(2, 40), backend.ConvGeom{InH: 4, InW: 5, InC: 2, KH: 3, KW: 3, StrideW: 1})
		}},
		{"Im2Col", "kernel larger than the input", func(b *Backend, f mk) {
			b.Im2Col(f(2, 18), f(2, 40), backend.ConvGeom{InH: 4, InW: 5, InC: 2, KH: 7, KW: 3, StrideH: 1, StrideW: 1, PadH: 1})
		}},
		{"Col2Im", "x rows", func(b *Backend, f mk) { b.Col2Im(f(3, 40), f(40, 18), g) }},
		{"Col2Im", "cols cols", func(b *Backend, f mk) { b.Col2Im(f(2, 40), f(40, 19), g) }},
		{"BiasActivation", "bias", func(b *Backend, f mk) { b.BiasActivation(f(4, 5), f(1, 4), tanh) }},
		{"BiasActivation", "no rows", func(b *Backend, f mk) { b.BiasActivation(f(0, 5), f(1, 5), tanh) }},
		{"BiasActivationBackward", "db", func(b *Backend, f mk) { b.BiasActivationBackward(f(1, 4), f(4, 5), f(4, 5), tanh) }},
		{"BiasActivationBackward", "dy", func(b *Backend, f mk) { b.BiasActivationBackward(f(1, 5), f(5, 4), f(4, 5), tanh) }},
		{"BatchNorm", "y", func(b *Backend, f mk) {
			b.BatchNorm(f(4, 4), f(1, 5), f(1, 5), f(4, 5), f(1, 5), f(1, 5), f(1, 5), f(1, 5), 1, 1e-5, 0.1, tanh)
		}},
		{"BatchNorm", "gamma", func(b *Backend, f mk) {
			b.BatchNorm(f(4, 5), f(1, 5), f(1, 5), f(4, 5), f(1, 4), f(1, 5), f(1, 5), f(1, 5), 1, 1e-5, 0.1, tanh)
		}},
		{"BatchNorm", "one running statistic", func(b *Backend, f mk) {
			b.BatchNorm(f(4, 5), f(1, 5), f(1, 5), f(4, 5), f(1, 5), f(1, 5), f(1, 5), nil, 1, 1e-5, 0.1, tanh)
		}},
		{"BatchNorm", "eps 0", func(b *Backend, f mk) {
			b.BatchNorm(f(4, 5), f(1, 5), f(1, 5), f(4, 5), f(1, 5), f(1, 5), nil, nil, 1, 0, 0.1, tanh)
		}},
		{"BatchNorm", "momentum 2", func(b *Backend, f mk) {
			b.BatchNorm(f(4, 5), f(1, 5), f(1, 5), f(4, 5), f(1, 5), f(1, 5), f(1, 5), f(1, 5), 1, 1e-5, 2, tanh)
		}},
		{"BatchNorm", "nil mean", func(b *Backend, f mk) {
			b.BatchNorm(f(4, 5), nil, f(1, 5), f(4, 5), f(1, 5), f(1, 5), nil, nil, 1, 1e-5, 0.1, tanh)
		}},
		{"BatchNormInfer", "running variance", func(b *Backend, f mk) {
			b.BatchNormInfer(f(4, 5), f(4, 5), f(1, 5), f(1, 5), f(1, 5), f(1, 6), 1e-5, tanh)
		}},
		{"BatchNormInfer", "nil running mean", func(b *Backend, f mk) {
			b.BatchNormInfer(f(4, 5), f(4, 5), f(1, 5), f(1, 5), nil, f(1, 5), 1e-5, tanh)
		}},
		{"BatchNormBackward", "dx", func(b *Backend, f mk) {
			b.BatchNormBackward(f(5, 4), f(1, 5), f(1, 5), f(4, 5), f(4, 5), f(4, 5), f(1, 5), f(1, 5), f(1, 5), 1, 1e-5, tanh)
		}},
		{"BatchNormBackward", "dgamma", func(b *Backend, f mk) {
			b.BatchNormBackward(nil, f(1, 4), nil, f(4, 5), f(4, 5), f(4, 5), f(1, 5), f(1, 5), f(1, 5), 1, 1e-5, tanh)
		}},
		{"BatchNormBackward", "variance", func(b *Backend, f mk) {
			b.BatchNormBackward(nil, nil, f(1, 5), f(4, 5), f(4, 5), f(4, 5), f(1, 5), f(1, 5), f(1, 6), 1, 1e-5, tanh)
		}},
		{"BatchNormBackward", "eps NaN", func(b *Backend, f mk) {
			b.BatchNormBackward(nil, nil, f(1, 5), f(4, 5), f(4, 5), f(4, 5), f(1, 5), f(1, 5), f(1, 5), 1, float32(math.NaN()), tanh)
		}},
	} {
		t.Run(tc.op+"/"+tc.name, func(t *testing.T) {
			b, err := New(Options{BLAS: "go"})
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			var all []*tensor
			f := convOperands(t, b, &all)
			panicked := func() (p bool) {
				defer func() {
					if r := recover(); r != nil {
						t.Errorf("%s panicked: %v", tc.op, r)
						p = true
					}
				}()
				tc.call(b, func(rows, cols int) backend.Tensor { return f(rows, cols, 0.5) })
				return false
			}()
			if panicked {
				return
			}
			err = b.Err()
			if !errors.Is(err, backend.ErrShape) || !strings.Contains(err.Error(), tc.op) {
				t.Fatalf("Err() = %v, want an ErrShape error naming %s", err, tc.op)
			}
			// Every operand still holds what convOperands wrote.
			var want []*tensor
			f2 := convOperands(t, b, &want)
			for _, ct := range all {
				f2(ct.rows, ct.cols, 0.5)
			}
			if k := changed(all, want); k >= 0 {
				t.Errorf("the refused call wrote operand %d (%s)", k, all[k])
			}
		})
	}
}
