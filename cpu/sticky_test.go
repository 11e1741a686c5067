package cpu

import (
	"errors"
	"math"
	"testing"

	"github.com/gantrain/gantrain/backend"
	"github.com/gantrain/gantrain/rng"
)

// stickyOp is one operation of TestOpsAfterErrorAreNoOps.
type stickyOp struct {
	name string
	call func()
}

// stickySetup allocates valid operands for every operation on b and returns the
// operations, every tensor they may write, and a call that records a shape error.
func stickySetup(t *testing.T, b *Backend) (ops []stickyOp, all []*tensor, fail func()) {
	t.Helper()
	f := func(rows, cols int, v float32) backend.Tensor {
		x, err := b.Alloc(backend.F32, rows, cols)
		if err != nil {
			t.Fatal(err)
		}
		ct := x.(*tensor)
		for i := range ct.f {
			ct.f[i] = v + float32(i)/16
		}
		all = append(all, ct)
		return x
	}
	ix := func(rows, cols int, vals ...int32) backend.Tensor {
		x, err := b.Alloc(backend.I32, rows, cols)
		if err != nil {
			t.Fatal(err)
		}
		copy(x.(*tensor).i, vals)
		all = append(all, x.(*tensor))
		return x
	}
	const n, in, out, pcs = 2, 3, 4, 2
	x, w, bias, y := f(n, in, 0.5), f(in, out, -0.25), f(1, out, 0.125), f(n, out, 3)
	dx, dw, db, dy := f(n, in, 4), f(in, out, 5), f(1, out, 6), f(n, out, 7)
	z, my, arg := f(n, out*pcs, 1), f(n, out, 2), ix(n, out, 1, 0, 1, 0, 0, 1, 0, 1)
	zw, zb := f(in, out*pcs, -0.5), f(1, out*pcs, 0.25)
	mask, logits, targets, loss := f(n, out, 8), f(n, 1, -1), f(n, 1, 0.5), f(1, 2, 10)
	dl := f(n, 1, 15)
	p, g, m, v := f(n, out, 11), f(n, out, 12), f(n, out, 13), f(n, out, 14)
	idx := ix(1, 3, 1, 0, 1)
	geom := backend.ConvGeom{InH: 2, InW: 2, InC: 1, KH: 2, KW: 2, StrideH: 1, StrideW: 1, PadH: 1, PadW: 1} // 9 positions
	img, cols := f(n, geom.InSize(), 16), f(n*geom.Positions(), geom.Patch(), 17)
	mean, variance, runMean, runVar := f(1, out, 18), f(1, out, 19), f(1, out, 20), f(1, out, 21)
	convY, convW, convB := f(n*geom.Positions(), 3, 22), f(geom.Patch(), 3, 23), f(1, 3, 24)
	convX, convDX, convTW, convTW2 := f(n*geom.Positions(), 3, 25), f(n*geom.Positions(), 3, 26), f(3, geom.Patch(), 27), f(3, geom.Patch(), 28)
	convTB, convDW, convDCols := f(1, geom.InC, 29), f(geom.Patch(), 3, 30), f(n*geom.Positions(), geom.Patch(), 31)

	s := rng.Stream{Seed: 1, Offset: 2}
	act := backend.Act{Kind: backend.Tanh}
	ops = []stickyOp{
		{"Fill", func() { b.Fill(y, 1) }},
		{"Copy", func() { b.Copy(dy, y) }},
		{"Mul", func() { b.Mul(y, dy, mask) }},
		{"DenseForward", func() { b.DenseForward(y, x, w, bias, act) }},
		{"DenseBackward", func() { b.DenseBackward(dx, dw, db, dy, x, y, w, act) }},
		{"MaxoutForward", func() { b.MaxoutForward(my, arg, z, pcs) }},
		{"MaxoutBackward", func() { b.MaxoutBackward(z, my, arg, pcs) }},
		{"Dropout", func() { b.Dropout(my, mask, y, 0.5, s) }},
		{"MaxoutDropout", func() { b.MaxoutDropout(my, arg, mask, z, pcs, 0.5, s) }},
		{"MaxoutDropoutBackward", func() { b.MaxoutDropoutBackward(z, my, mask, arg, pcs) }},
		{"DenseMaxout", func() { b.DenseMaxout(my, arg, mask, z, x, zw, zb, pcs, 0.5, s) }},
		{"SigmoidCrossEntropy", func() { b.SigmoidCrossEntropy(dl, logits, targets, 1, loss, 0) }},
		{"MeanSigmoid", func() { b.MeanSigmoid(logits, loss, 1) }},
		{"SGDMomentum", func() { b.SGDMomentum(p, g, v, 0.1, 0.9) }},
		{"Adam", func() { b.Adam(p, g, m, v, 0.1, 0.5, 0.9, 1e-8, 1) }},
		{"MovingAverage", func() { b.MovingAverage(p, g, 0.999) }},
		{"Uniform", func() { b.Uniform(p, -1, 1, s) }},
		{"Normal", func() { b.Normal(p, 0, 1, s) }},
		{"GatherRows", func() { b.GatherRows(dx, x, idx, 0) }},
		{"Im2Col", func() { b.Im2Col(cols, img, geom) }},
		{"Col2Im", func() { b.Col2Im(img, cols, geom) }},
		{"ConvForward", func() { b.ConvForward(convY, cols, img, convW, convB, geom, act) }},
		{"ConvTransposeBackward", func() { b.ConvTransposeBackward(convDX, convTW, cols, img, convX, convTW2, geom) }},
		{"ConvBackward", func() { b.ConvBackward(img, convDW, convB, convDCols, convX, cols, convY, convW, geom, act) }},
		{"ConvTransposeForward", func() { b.ConvTransposeForward(img, cols, convX, convTW, convTB, geom, act) }},
		{"BiasActivation", func() { b.BiasActivation(y, bias, act) }},
		{"BiasActivationBackward", func() { b.BiasActivationBackward(db, dy, y, act) }},
		{"BatchNorm", func() { b.BatchNorm(y, mean, variance, p, bias, db, runMean, runVar, 1, 1e-5, 0.1, act) }},
		{"BatchNormInfer", func() { b.BatchNormInfer(y, p, bias, db, runMean, runVar, 1e-5, act) }},
		{"BatchNormBackward", func() { b.BatchNormBackward(g, bias, db, dy, p, y, bias, mean, variance, 1, 1e-5, act) }},
	}
	return ops, all, func() { b.Copy(x, w) }
}

// TestOpsAfterErrorAreNoOps records an error, then runs every operation with valid
// operands: none may touch any tensor (a backend that has recorded a failure
// refuses further work) and the first error is kept. The test reads the tensors'
// storage directly, since Download reports the error instead of data.
func TestOpsAfterErrorAreNoOps(t *testing.T) {
	// Control: on a clean backend every operation succeeds and writes something.
	clean, err := New(Options{BLAS: "go"})
	if err != nil {
		t.Fatal(err)
	}
	ops, all, _ := stickySetup(t, clean)
	for _, op := range ops {
		before := snapshot(all)
		op.call()
		if err := clean.Err(); err != nil {
			t.Fatalf("control: %s: %v", op.name, err)
		}
		if changed(all, before) < 0 {
			t.Fatalf("control: %s wrote nothing; the test would not see it run", op.name)
		}
	}

	b, err := New(Options{BLAS: "go"})
	if err != nil {
		t.Fatal(err)
	}
	ops, all, fail := stickySetup(t, b)
	fail()
	first := b.Err()
	if !errors.Is(first, backend.ErrShape) {
		t.Fatalf("Err() = %v, want an ErrShape error", first)
	}
	for _, op := range ops {
		before := snapshot(all)
		op.call()
		if got := b.Err(); got != first {
			t.Errorf("%s after an error: Err() = %v, want the first error %v", op.name, got, first)
		}
		if k := changed(all, before); k >= 0 {
			t.Errorf("%s after an error changed tensor %d (%s), want no effect", op.name, k, all[k])
			for k, ct := range all {
				copy(ct.f, before[k].f)
				copy(ct.i, before[k].i)
			}
		}
	}
}

// snapshot copies the storage of every tensor.
func snapshot(ts []*tensor) []*tensor {
	out := make([]*tensor, len(ts))
	for k, ct := range ts {
		out[k] = &tensor{rows: ct.rows, cols: ct.cols, dt: ct.dt,
			f: append([]float32(nil), ct.f...), i: append([]int32(nil), ct.i...)}
	}
	return out
}

// changed returns the index of the first tensor whose bits differ from its
// snapshot, or -1.
func changed(ts, snap []*tensor) int {
	for k, a := range ts {
		for i := range a.f {
			if math.Float32bits(a.f[i]) != math.Float32bits(snap[k].f[i]) {
				return k
			}
		}
		for i := range a.i {
			if a.i[i] != snap[k].i[i] {
				return k
			}
		}
	}
	return -1
}
