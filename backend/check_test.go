package backend_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/gantrain/gantrain/backend"
)

// shape is a Tensor that is only a shape.
type shape struct {
	r, c int
	dt   backend.DType
}

func (s shape) Rows() int            { return s.r }
func (s shape) Cols() int            { return s.c }
func (s shape) DType() backend.DType { return s.dt }

func f(r, c int) backend.Tensor { return shape{r, c, backend.F32} }
func i(r, c int) backend.Tensor { return shape{r, c, backend.I32} }

func TestRules(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want string // "" when the call is valid
	}{
		{"dense ok", backend.CheckDenseForward(f(4, 5), f(4, 3), f(3, 5), f(1, 5)), ""},
		{"dense w", backend.CheckDenseForward(f(4, 5), f(4, 3), f(2, 5), f(1, 5)), "DenseForward: shape mismatch: y 4×5 f32 = x 4×3 f32 · w 2×5 f32 + b 1×5 f32"},
		{"dense empty", backend.CheckDenseForward(f(0, 5), f(0, 3), f(3, 5), f(1, 5)), "DenseForward"},
		{"backward ok, all nil", backend.CheckDenseBackward(nil, nil, nil, f(4, 5), f(4, 3), f(4, 5), f(3, 5)), ""},
		{"backward dx", backend.CheckDenseBackward(f(4, 4), nil, nil, f(4, 5), f(4, 3), f(4, 5), f(3, 5)), "dx 4×4 f32, x 4×3 f32"},
		{"backward dw", backend.CheckDenseBackward(nil, f(5, 3), nil, f(4, 5), f(4, 3), f(4, 5), f(3, 5)), "dw 5×3 f32, w 3×5 f32"},
		{"backward db", backend.CheckDenseBackward(nil, nil, f(1, 4), f(4, 5), f(4, 3), f(4, 5), f(3, 5)), "db 1×4 f32, 5 outputs"},
		{"maxout ok", backend.CheckMaxoutForward(f(2, 3), i(2, 3), f(2, 6), 2), ""},
		{"maxout pieces", backend.CheckMaxoutForward(f(2, 3), i(2, 3), f(2, 6), 3), "3 pieces"},
		{"dropout keep", backend.CheckDropout(f(2, 3), f(2, 3), f(2, 3), 0), "keep 0"},
		{"bce dlogits", backend.CheckSigmoidCrossEntropy(f(3, 1), f(4, 1), f(4, 1), f(1, 4), 0), "dlogits 3×1 f32"},
		{"bce slot", backend.CheckSigmoidCrossEntropy(nil, f(4, 1), f(4, 1), f(1, 4), 4), "slot 4"},
		{"softmax labels", backend.CheckSoftmaxCrossEntropy(nil, f(4, 10), i(4, 2), f(1, 1), 0), "labels 4×2 i32"},
		{"lse", backend.CheckLogSumExpRows(f(4, 2), f(4, 7)), "out 4×2 f32"},
		{"adam t", backend.CheckAdam(f(1, 9), f(1, 9), f(1, 9), f(1, 9), 0), "t 0"},
		{"gather offset", backend.CheckGatherRows(f(3, 2), f(9, 2), i(1, 4), 2), "at offset 2"},
		{"uniform", backend.CheckUniform(1, 1), "empty range [1, 1)"},
		{"clip", backend.CheckClipColumnNorms(0), "max norm 0"},
		{"mul", backend.CheckMul(f(2, 2), f(2, 2), f(1, 4)), "Mul"},
		{"copy", backend.CheckCopy(f(2, 2), f(4, 1)), "dst 2×2 f32, src 4×1 f32"},
	} {
		switch {
		case tc.want == "" && tc.err != nil:
			t.Errorf("%s: %v, want nil", tc.name, tc.err)
		case tc.want != "" && (!errors.Is(tc.err, backend.ErrShape) || !strings.Contains(tc.err.Error(), tc.want)):
			t.Errorf("%s: %v, want ErrShape with %q", tc.name, tc.err, tc.want)
		}
	}
}

// A valid call costs no allocation: the rules format messages only on failure.
func TestRulesDoNotAllocate(t *testing.T) {
	y, x, w, b := f(4, 5), f(4, 3), f(3, 5), f(1, 5)
	n := testing.AllocsPerRun(50, func() {
		_ = backend.CheckDenseForward(y, x, w, b)
		_ = backend.CheckDenseBackward(x, w, b, y, x, y, w)
		_ = backend.CheckAdam(w, w, w, w, 3)
	})
	if n != 0 {
		t.Errorf("%v allocations per round, want 0", n)
	}
}
