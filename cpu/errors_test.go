package cpu_test

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/gantrain/gantrain/backend"
	"github.com/gantrain/gantrain/backend/backendtest"
	"github.com/gantrain/gantrain/cpu"
	"github.com/gantrain/gantrain/rng"
)

// foreign is a tensor that no CPU backend made.
type foreign struct{ rows, cols int }

func (f foreign) Rows() int            { return f.rows }
func (f foreign) Cols() int            { return f.cols }
func (f foreign) DType() backend.DType { return backend.F32 }

// callNoPanic runs f, turning a panic into a test failure.
func callNoPanic(t *testing.T, what string, f func()) (panicked bool) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Errorf("%s panicked: %v", what, r)
			panicked = true
		}
	}()
	f()
	return false
}

// TestShapeErrors gives every operation mismatched operands: each must record an
// error wrapping ErrShape that names the operation, without panicking.
func TestShapeErrors(t *testing.T) {
	s := rng.Stream{Seed: 1}
	f := func(b *cpu.Backend, r, c int) backend.Tensor { x, _ := b.Alloc(backend.F32, r, c); return x }
	i := func(b *cpu.Backend, r, c int) backend.Tensor { x, _ := b.Alloc(backend.I32, r, c); return x }
	idAct := backend.Act{}
	for _, tc := range []struct {
		op, name string
		call     func(b *cpu.Backend)
	}{
		{"Fill", "nil", func(b *cpu.Backend) { b.Fill(nil, 1) }},
		{"Fill", "i32", func(b *cpu.Backend) { b.Fill(i(b, 2, 2), 1) }},
		{"Fill", "foreign", func(b *cpu.Backend) { b.Fill(foreign{2, 2}, 1) }},
		{"Copy", "transposed", func(b *cpu.Backend) { b.Copy(f(b, 2, 3), f(b, 3, 2)) }},
		{"Copy", "i32 src", func(b *cpu.Backend) { b.Copy(f(b, 2, 2), i(b, 2, 2)) }},
		{"Copy", "nil dst", func(b *cpu.Backend) { b.Copy(nil, f(b, 2, 2)) }},
		{"Mul", "b", func(b *cpu.Backend) { b.Mul(f(b, 2, 3), f(b, 2, 3), f(b, 3, 2)) }},
		{"Mul", "a", func(b *cpu.Backend) { b.Mul(f(b, 2, 3), f(b, 2, 4), f(b, 2, 3)) }},
		{"Mul", "y", func(b *cpu.Backend) { b.Mul(f(b, 1, 6), f(b, 2, 3), f(b, 2, 3)) }},
		{"Mul", "foreign", func(b *cpu.Backend) { b.Mul(f(b, 2, 3), foreign{2, 3}, f(b, 2, 3)) }},
		{"DenseForward", "w rows", func(b *cpu.Backend) { b.DenseForward(f(b, 4, 5), f(b, 4, 3), f(b, 2, 5), f(b, 1, 5), idAct) }},
		{"DenseForward", "bias", func(b *cpu.Backend) { b.DenseForward(f(b, 4, 5), f(b, 4, 3), f(b, 3, 5), f(b, 1, 4), idAct) }},
		{"DenseForward", "y rows", func(b *cpu.Backend) { b.DenseForward(f(b, 3, 5), f(b, 4, 3), f(b, 3, 5), f(b, 1, 5), idAct) }},
		{"DenseForward", "y cols", func(b *cpu.Backend) { b.DenseForward(f(b, 4, 6), f(b, 4, 3), f(b, 3, 5), f(b, 1, 5), idAct) }},
		{"DenseForward", "y is x·wᵀ", func(b *cpu.Backend) { b.DenseForward(f(b, 4, 3), f(b, 4, 5), f(b, 3, 5), f(b, 1, 3), idAct) }},
		{"DenseForward", "no rows", func(b *cpu.Backend) { b.DenseForward(f(b, 0, 5), f(b, 0, 3), f(b, 3, 5), f(b, 1, 5), idAct) }},
		{"DenseForward", "no inputs", func(b *cpu.Backend) { b.DenseForward(f(b, 4, 5), f(b, 4, 0), f(b, 0, 5), f(b, 1, 5), idAct) }},
		{"DenseForward", "nil bias", func(b *cpu.Backend) { b.DenseForward(f(b, 4, 5), f(b, 4, 3), f(b, 3, 5), nil, idAct) }},
		{"DenseForward", "i32 w", func(b *cpu.Backend) { b.DenseForward(f(b, 4, 5), f(b, 4, 3), i(b, 3, 5), f(b, 1, 5), idAct) }},
		{"DenseBackward", "w rows", func(b *cpu.Backend) {
			b.DenseBackward(f(b, 4, 3), f(b, 2, 5), f(b, 1, 5), f(b, 4, 5), f(b, 4, 3), f(b, 4, 5), f(b, 2, 5), idAct)
		}},
		{"DenseBackward", "y", func(b *cpu.Backend) {
			b.DenseBackward(f(b, 4, 3), f(b, 3, 5), f(b, 1, 5), f(b, 4, 4), f(b, 4, 3), f(b, 4, 4), f(b, 3, 5), idAct)
		}},
		{"DenseBackward", "dy", func(b *cpu.Backend) {
			b.DenseBackward(f(b, 4, 3), f(b, 3, 5), f(b, 1, 5), f(b, 5, 4), f(b, 4, 3), f(b, 4, 5), f(b, 3, 5), idAct)
		}},
		{"DenseBackward", "dx", func(b *cpu.Backend) {
			b.DenseBackward(f(b, 3, 4), f(b, 3, 5), f(b, 1, 5), f(b, 4, 5), f(b, 4, 3), f(b, 4, 5), f(b, 3, 5), idAct)
		}},
		{"DenseBackward", "dw", func(b *cpu.Backend) {
			b.DenseBackward(f(b, 4, 3), f(b, 5, 3), f(b, 1, 5), f(b, 4, 5), f(b, 4, 3), f(b, 4, 5), f(b, 3, 5), idAct)
		}},
		{"DenseBackward", "db", func(b *cpu.Backend) {
			b.DenseBackward(f(b, 4, 3), f(b, 3, 5), f(b, 1, 4), f(b, 4, 5), f(b, 4, 3), f(b, 4, 5), f(b, 3, 5), idAct)
		}},
		{"DenseBackward", "i32 dw", func(b *cpu.Backend) {
			b.DenseBackward(nil, i(b, 3, 5), nil, f(b, 4, 5), f(b, 4, 3), f(b, 4, 5), f(b, 3, 5), idAct)
		}},
		{"DenseBackward", "nil x", func(b *cpu.Backend) {
			b.DenseBackward(nil, f(b, 3, 5), nil, f(b, 4, 5), nil, f(b, 4, 5), f(b, 3, 5), idAct)
		}},
		{"DenseBackward", "no rows", func(b *cpu.Backend) {
			b.DenseBackward(f(b, 0, 3), f(b, 3, 5), f(b, 1, 5), f(b, 0, 5), f(b, 0, 3), f(b, 0, 5), f(b, 3, 5), idAct)
		}},
		{"MaxoutForward", "zero pieces", func(b *cpu.Backend) { b.MaxoutForward(f(b, 2, 3), i(b, 2, 3), f(b, 2, 6), 0) }},
		{"MaxoutForward", "negative pieces", func(b *cpu.Backend) { b.MaxoutForward(f(b, 2, 3), i(b, 2, 3), f(b, 2, 6), -2) }},
		{"MaxoutForward", "z cols", func(b *cpu.Backend) { b.MaxoutForward(f(b, 2, 3), i(b, 2, 3), f(b, 2, 7), 2) }},
		{"MaxoutForward", "z rows", func(b *cpu.Backend) { b.MaxoutForward(f(b, 2, 3), i(b, 2, 3), f(b, 3, 6), 2) }},
		{"MaxoutForward", "arg shape", func(b *cpu.Backend) { b.MaxoutForward(f(b, 2, 3), i(b, 3, 2), f(b, 2, 6), 2) }},
		{"MaxoutForward", "f32 arg", func(b *cpu.Backend) { b.MaxoutForward(f(b, 2, 3), f(b, 2, 3), f(b, 2, 6), 2) }},
		{"MaxoutForward", "nil arg", func(b *cpu.Backend) { b.MaxoutForward(f(b, 2, 3), nil, f(b, 2, 6), 2) }},
		{"MaxoutBackward", "zero pieces", func(b *cpu.Backend) { b.MaxoutBackward(f(b, 2, 6), f(b, 2, 3), i(b, 2, 3), 0) }},
		{"MaxoutBackward", "dz cols", func(b *cpu.Backend) { b.MaxoutBackward(f(b, 2, 5), f(b, 2, 3), i(b, 2, 3), 2) }},
		{"MaxoutBackward", "dz rows", func(b *cpu.Backend) { b.MaxoutBackward(f(b, 1, 6), f(b, 2, 3), i(b, 2, 3), 2) }},
		{"MaxoutBackward", "arg shape", func(b *cpu.Backend) { b.MaxoutBackward(f(b, 2, 6), f(b, 2, 3), i(b, 1, 3), 2) }},
		{"MaxoutBackward", "f32 arg", func(b *cpu.Backend) { b.MaxoutBackward(f(b, 2, 6), f(b, 2, 3), f(b, 2, 3), 2) }},
		{"MaxoutDropout", "mask shape", func(b *cpu.Backend) { b.MaxoutDropout(f(b, 2, 3), i(b, 2, 3), f(b, 3, 2), f(b, 2, 6), 2, 0.5, s) }},
		{"MaxoutDropout", "keep 0", func(b *cpu.Backend) { b.MaxoutDropout(f(b, 2, 3), i(b, 2, 3), f(b, 2, 3), f(b, 2, 6), 2, 0, s) }},
		{"MaxoutDropout", "z cols", func(b *cpu.Backend) { b.MaxoutDropout(f(b, 2, 3), i(b, 2, 3), f(b, 2, 3), f(b, 2, 7), 2, 0.5, s) }},
		{"MaxoutDropout", "f32 arg", func(b *cpu.Backend) { b.MaxoutDropout(f(b, 2, 3), f(b, 2, 3), f(b, 2, 3), f(b, 2, 6), 2, 0.5, s) }},
		{"MaxoutDropoutBackward", "mask shape", func(b *cpu.Backend) { b.MaxoutDropoutBackward(f(b, 2, 6), f(b, 2, 3), f(b, 2, 2), i(b, 2, 3), 2) }},
		{"MaxoutDropoutBackward", "dz cols", func(b *cpu.Backend) { b.MaxoutDropoutBackward(f(b, 2, 5), f(b, 2, 3), f(b, 2, 3), i(b, 2, 3), 2) }},
		{"MaxoutDropoutBackward", "i32 mask", func(b *cpu.Backend) { b.MaxoutDropoutBackward(f(b, 2, 6), f(b, 2, 3), i(b, 2, 3), i(b, 2, 3), 2) }},
		{"DenseMaxout", "z cols", func(b *cpu.Backend) {
			b.DenseMaxout(f(b, 2, 3), i(b, 2, 3), f(b, 2, 3), f(b, 2, 7), f(b, 2, 4), f(b, 4, 6), f(b, 1, 6), 2, 0.5, s)
		}},
		{"DenseMaxout", "w rows", func(b *cpu.Backend) {
			b.DenseMaxout(f(b, 2, 3), i(b, 2, 3), f(b, 2, 3), f(b, 2, 6), f(b, 2, 4), f(b, 5, 6), f(b, 1, 6), 2, 0.5, s)
		}},
		{"DenseMaxout", "mask shape", func(b *cpu.Backend) {
			b.DenseMaxout(f(b, 2, 3), i(b, 2, 3), f(b, 3, 2), f(b, 2, 6), f(b, 2, 4), f(b, 4, 6), f(b, 1, 6), 2, 0.5, s)
		}},
		{"DenseMaxout", "keep 0", func(b *cpu.Backend) {
			b.DenseMaxout(f(b, 2, 3), i(b, 2, 3), f(b, 2, 3), f(b, 2, 6), f(b, 2, 4), f(b, 4, 6), f(b, 1, 6), 2, 0, s)
		}},
		{"DenseMaxout", "f32 arg", func(b *cpu.Backend) {
			b.DenseMaxout(f(b, 2, 3), f(b, 2, 3), nil, f(b, 2, 6), f(b, 2, 4), f(b, 4, 6), f(b, 1, 6), 2, 1, s)
		}},
		{"DenseMaxout", "nil bias", func(b *cpu.Backend) {
			b.DenseMaxout(f(b, 2, 3), i(b, 2, 3), nil, f(b, 2, 6), f(b, 2, 4), f(b, 4, 6), nil, 2, 1, s)
		}},
		{"Dropout", "y", func(b *cpu.Backend) { b.Dropout(f(b, 3, 2), f(b, 2, 3), f(b, 2, 3), 0.5, s) }},
		{"Dropout", "mask", func(b *cpu.Backend) { b.Dropout(f(b, 2, 3), f(b, 2, 4), f(b, 2, 3), 0.5, s) }},
		{"Dropout", "i32 mask", func(b *cpu.Backend) { b.Dropout(f(b, 2, 3), i(b, 2, 3), f(b, 2, 3), 0.5, s) }},
		{"Dropout", "keep 0", func(b *cpu.Backend) { b.Dropout(f(b, 2, 3), f(b, 2, 3), f(b, 2, 3), 0, s) }},
		{"Dropout", "keep < 0", func(b *cpu.Backend) { b.Dropout(f(b, 2, 3), f(b, 2, 3), f(b, 2, 3), -0.5, s) }},
		{"Dropout", "keep > 1", func(b *cpu.Backend) { b.Dropout(f(b, 2, 3), f(b, 2, 3), f(b, 2, 3), 1.5, s) }},
		{"Dropout", "keep NaN", func(b *cpu.Backend) { b.Dropout(f(b, 2, 3), f(b, 2, 3), f(b, 2, 3), float32(math.NaN()), s) }},
		{"SigmoidCrossEntropy", "targets", func(b *cpu.Backend) { b.SigmoidCrossEntropy(nil, f(b, 4, 1), f(b, 3, 1), 1, f(b, 1, 1), 0) }},
		{"SigmoidCrossEntropy", "dlogits", func(b *cpu.Backend) { b.SigmoidCrossEntropy(f(b, 1, 4), f(b, 4, 1), f(b, 4, 1), 1, f(b, 1, 1), 0) }},
		{"SigmoidCrossEntropy", "i32 dlogits", func(b *cpu.Backend) { b.SigmoidCrossEntropy(i(b, 4, 1), f(b, 4, 1), f(b, 4, 1), 1, f(b, 1, 1), 0) }},
		{"SigmoidCrossEntropy", "slot -1", func(b *cpu.Backend) { b.SigmoidCrossEntropy(nil, f(b, 4, 1), f(b, 4, 1), 1, f(b, 1, 2), -1) }},
		{"SigmoidCrossEntropy", "slot = len", func(b *cpu.Backend) { b.SigmoidCrossEntropy(nil, f(b, 4, 1), f(b, 4, 1), 1, f(b, 1, 2), 2) }},
		{"SigmoidCrossEntropy", "i32 targets", func(b *cpu.Backend) { b.SigmoidCrossEntropy(nil, f(b, 4, 1), i(b, 4, 1), 1, f(b, 1, 1), 0) }},
		{"SigmoidCrossEntropy", "nil out", func(b *cpu.Backend) { b.SigmoidCrossEntropy(nil, f(b, 4, 1), f(b, 4, 1), 1, nil, 0) }},
		{"MeanSigmoid", "slot", func(b *cpu.Backend) { b.MeanSigmoid(f(b, 4, 1), f(b, 1, 3), 3) }},
		{"MeanSigmoid", "slot -1", func(b *cpu.Backend) { b.MeanSigmoid(f(b, 4, 1), f(b, 1, 3), -1) }},
		{"MeanSigmoid", "no logits", func(b *cpu.Backend) { b.MeanSigmoid(f(b, 0, 1), f(b, 1, 3), 0) }},
		{"MeanSigmoid", "i32 out", func(b *cpu.Backend) { b.MeanSigmoid(f(b, 4, 1), i(b, 1, 3), 0) }},
		{"SGDMomentum", "g", func(b *cpu.Backend) { b.SGDMomentum(f(b, 3, 4), f(b, 4, 3), f(b, 3, 4), 0.1, 0.9) }},
		{"SGDMomentum", "v", func(b *cpu.Backend) { b.SGDMomentum(f(b, 3, 4), f(b, 3, 4), f(b, 3, 5), 0.1, 0.9) }},
		{"SGDMomentum", "nil v", func(b *cpu.Backend) { b.SGDMomentum(f(b, 3, 4), f(b, 3, 4), nil, 0.1, 0.9) }},
		{"MovingAverage", "x", func(b *cpu.Backend) { b.MovingAverage(f(b, 3, 4), f(b, 4, 3), 0.9) }},
		{"MovingAverage", "decay 1.5", func(b *cpu.Backend) { b.MovingAverage(f(b, 3, 4), f(b, 3, 4), 1.5) }},
		{"Adam", "g", func(b *cpu.Backend) {
			b.Adam(f(b, 3, 4), f(b, 3, 3), f(b, 3, 4), f(b, 3, 4), 1e-3, 0.5, 0.999, 1e-8, 1)
		}},
		{"Adam", "m", func(b *cpu.Backend) {
			b.Adam(f(b, 3, 4), f(b, 3, 4), f(b, 4, 3), f(b, 3, 4), 1e-3, 0.5, 0.999, 1e-8, 1)
		}},
		{"Adam", "v", func(b *cpu.Backend) {
			b.Adam(f(b, 3, 4), f(b, 3, 4), f(b, 3, 4), f(b, 12, 1), 1e-3, 0.5, 0.999, 1e-8, 1)
		}},
		{"Adam", "step 0", func(b *cpu.Backend) {
			b.Adam(f(b, 3, 4), f(b, 3, 4), f(b, 3, 4), f(b, 3, 4), 1e-3, 0.5, 0.999, 1e-8, 0)
		}},
		{"Uniform", "empty range", func(b *cpu.Backend) { b.Uniform(f(b, 2, 2), 1, 1, s) }},
		{"Uniform", "reversed range", func(b *cpu.Backend) { b.Uniform(f(b, 2, 2), 1, -1, s) }},
		{"Uniform", "i32", func(b *cpu.Backend) { b.Uniform(i(b, 2, 2), -1, 1, s) }},
		{"Normal", "i32", func(b *cpu.Backend) { b.Normal(i(b, 2, 2), 0, 1, s) }},
		{"Normal", "nil", func(b *cpu.Backend) { b.Normal(nil, 0, 1, s) }},
		{"GatherRows", "cols", func(b *cpu.Backend) { b.GatherRows(f(b, 2, 3), f(b, 5, 4), i(b, 1, 4), 0) }},
		{"GatherRows", "negative offset", func(b *cpu.Backend) { b.GatherRows(f(b, 2, 3), f(b, 5, 3), i(b, 1, 4), -1) }},
		{"GatherRows", "past the indices", func(b *cpu.Backend) { b.GatherRows(f(b, 2, 3), f(b, 5, 3), i(b, 1, 4), 3) }},
		{"GatherRows", "f32 idx", func(b *cpu.Backend) { b.GatherRows(f(b, 2, 3), f(b, 5, 3), f(b, 1, 4), 0) }},
		{"GatherRows", "i32 src", func(b *cpu.Backend) { b.GatherRows(f(b, 2, 3), i(b, 5, 3), i(b, 1, 4), 0) }},
	} {
		t.Run(tc.op+"/"+tc.name, func(t *testing.T) {
			b := newBackend(t, "go")
			if callNoPanic(t, tc.op, func() { tc.call(b) }) {
				return
			}
			err := b.Err()
			if !errors.Is(err, backend.ErrShape) {
				t.Fatalf("Err() = %v, want an error wrapping ErrShape", err)
			}
			if !strings.Contains(err.Error(), tc.op) {
				t.Errorf("error %q does not name %s", err, tc.op)
			}
			if got := b.Sync(); got != err {
				t.Errorf("Sync() = %v, want %v", got, err)
			}
			out := make([]float32, 1)
			if got := b.Download(out, f(b, 1, 1)); got != err {
				t.Errorf("Download() = %v, want %v", got, err)
			}
		})
	}
}

// TestDenseBackwardDegenerateShapes runs DenseBackward on layers with no inputs or
// no outputs, which DenseForward rejects: it must either record an ErrShape error or
// succeed (db is then Σ dZ, the other gradients empty); it must not panic.
func TestDenseBackwardDegenerateShapes(t *testing.T) {
	eachBLAS(t, func(t *testing.T, blas string) {
		for _, sh := range []denseShape{{3, 0, 2}, {3, 2, 0}, {1, 0, 1}} {
			t.Run(sh.String(), func(t *testing.T) {
				b := newBackend(t, blas)
				dy := filled(t, b, sh.n, sh.out, 1)
				y := filled(t, b, sh.n, sh.out, 1)
				x := alloc(t, b, backend.F32, sh.n, sh.in)
				w := alloc(t, b, backend.F32, sh.in, sh.out)
				dx := alloc(t, b, backend.F32, sh.n, sh.in)
				dw := alloc(t, b, backend.F32, sh.in, sh.out)
				db := alloc(t, b, backend.F32, 1, sh.out)
				if callNoPanic(t, "DenseBackward", func() { b.DenseBackward(dx, dw, db, dy, x, y, w, backend.Act{}) }) {
					return
				}
				if err := b.Err(); err != nil {
					if !errors.Is(err, backend.ErrShape) || !strings.Contains(err.Error(), "DenseBackward") {
						t.Errorf("Err() = %v, want a DenseBackward ErrShape error or nil", err)
					}
					return
				}
				for j, v := range backendtest.Download(t, b, db) {
					if v != float32(sh.n) {
						t.Errorf("db[%d] = %g, want %d", j, v, sh.n)
					}
				}
			})
		}
	})
}

func TestViewErrors(t *testing.T) {
	b := newBackend(t, "go")
	x := alloc(t, b, backend.F32, 3, 4) // 12 elements
	sub, err := b.View(x, 2, 2, 3)      // elements [2, 8)
	if err != nil {
		t.Fatalf("View(x, 2, 2, 3): %v", err)
	}
	for _, tc := range []struct {
		name               string
		t                  backend.Tensor
		offset, rows, cols int
	}{
		{"negative offset", x, -1, 1, 1},
		{"negative rows", x, 0, -1, 2},
		{"negative cols", x, 0, 2, -1},
		{"past the end", x, 1, 3, 4},
		{"offset past the end", x, 13, 0, 0},
		{"too many elements", x, 0, 13, 1},
		{"outside the parent view", sub, 0, 2, 4},
		{"offset outside the parent view", sub, 5, 1, 2},
		{"size overflows", x, 0, 1 << 62, 4},
		{"end overflows", x, 4, math.MaxInt / 2, 2},
		{"foreign", foreign{3, 4}, 0, 1, 1},
		{"nil", nil, 0, 0, 0},
	} {
		var v backend.Tensor
		var err error
		if callNoPanic(t, tc.name, func() { v, err = b.View(tc.t, tc.offset, tc.rows, tc.cols) }) {
			continue
		}
		if err == nil {
			t.Errorf("%s: View(%d, %d, %d) = %v, nil; want an error", tc.name, tc.offset, tc.rows, tc.cols, v)
		}
	}
	checkNoErr(t, b)
}

func TestView(t *testing.T) {
	b := newBackend(t, "go")
	vals := make([]float32, 12)
	for i := range vals {
		vals[i] = float32(i)
	}
	x := tensorOf(t, b, 3, 4, vals)
	v, err := b.View(x, 5, 2, 3)
	if err != nil {
		t.Fatal(err)
	}
	if v.Rows() != 2 || v.Cols() != 3 || v.DType() != backend.F32 {
		t.Fatalf("view shape %s, want 2×3 f32", backend.ShapeString(v))
	}
	checkBits(t, "view", backendtest.Download(t, b, v), vals[5:11])
	vv, err := b.View(v, 1, 1, 4) // view of a view: x elements [6, 10)
	if err != nil {
		t.Fatal(err)
	}
	checkBits(t, "view of view", backendtest.Download(t, b, vv), vals[6:10])

	// Writes through a view land in the parent, and only in the viewed range.
	b.Fill(vv, -1)
	checkNoErr(t, b)
	want := append([]float32(nil), vals...)
	for i := 6; i < 10; i++ {
		want[i] = -1
	}
	checkBits(t, "parent after Fill(view)", backendtest.Download(t, b, x), want)

	// The full and the empty view are valid.
	if _, err := b.View(x, 0, 4, 3); err != nil {
		t.Errorf("View(x, 0, 4, 3): %v", err)
	}
	if _, err := b.View(x, 12, 0, 5); err != nil {
		t.Errorf("View(x, 12, 0, 5): %v", err)
	}

	// Index tensors have views too.
	ix := indexTensorOf(t, b, 1, 5, []int32{1, 2, 3, 4, 5})
	iv, err := b.View(ix, 3, 2, 1)
	if err != nil {
		t.Fatal(err)
	}
	if iv.DType() != backend.I32 {
		t.Errorf("view of i32 is %s, want i32", iv.DType())
	}
	if got := backendtest.DownloadI32(t, b, iv); got[0] != 4 || got[1] != 5 {
		t.Errorf("i32 view = %v, want [4 5]", got)
	}
}

func TestUploadDownloadErrors(t *testing.T) {
	b := newBackend(t, "go")
	x := tensorOf(t, b, 2, 3, []float32{1, 2, 3, 4, 5, 6})
	ix := indexTensorOf(t, b, 2, 2, []int32{1, 2, 3, 4})
	for _, tc := range []struct {
		name string
		dst  backend.Tensor
		src  any
	}{
		{"short", x, make([]float32, 5)},
		{"long", x, make([]float32, 7)},
		{"int32 into f32", x, make([]int32, 6)},
		{"float32 into i32", ix, make([]float32, 4)},
		{"short int32", ix, make([]int32, 3)},
		{"float64", x, make([]float64, 6)},
		{"nil slice", x, nil},
		{"foreign", foreign{2, 3}, make([]float32, 6)},
	} {
		var err error
		if callNoPanic(t, "Upload "+tc.name, func() { err = b.Upload(tc.dst, tc.src) }) {
			continue
		}
		if err == nil {
			t.Errorf("Upload %s: got nil error, want an error", tc.name)
		}
	}
	checkBits(t, "x after failed uploads", backendtest.Download(t, b, x), []float32{1, 2, 3, 4, 5, 6})
	if got := backendtest.DownloadI32(t, b, ix); got[0] != 1 || got[3] != 4 {
		t.Errorf("ix after failed uploads = %v, want [1 2 3 4]", got)
	}

	for _, tc := range []struct {
		name string
		dst  any
		src  backend.Tensor
	}{
		{"short", make([]float32, 5), x},
		{"long", make([]float32, 7), x},
		{"int32 from f32", make([]int32, 6), x},
		{"float32 from i32", make([]float32, 4), ix},
		{"float64", make([]float64, 6), x},
		{"foreign", make([]float32, 6), foreign{2, 3}},
	} {
		var err error
		if callNoPanic(t, "Download "+tc.name, func() { err = b.Download(tc.dst, tc.src) }) {
			continue
		}
		if err == nil {
			t.Errorf("Download %s: got nil error, want an error", tc.name)
		}
		if d, ok := tc.dst.([]float32); ok {
			for i, v := range d {
				if v != 0 {
					t.Errorf("Download %s wrote dst[%d] = %g, want nothing written", tc.name, i, v)
					break
				}
			}
		}
	}
}

func TestAllocErrors(t *testing.T) {
	b := newBackend(t, "go")
	for _, tc := range []struct {
		dt         backend.DType
		rows, cols int
	}{
		{backend.F32, -1, 2},
		{backend.F32, 2, -1},
		{backend.F32, 1 << 40, 1 << 40},
		{backend.DType(9), 2, 2},
	} {
		if x, err := b.Alloc(tc.dt, tc.rows, tc.cols); err == nil {
			t.Errorf("Alloc(%s, %d, %d) = %v, nil; want an error", tc.dt, tc.rows, tc.cols, x)
		}
	}
}
