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

// withPad is g with padding p on every side.
func withPad(g backend.ConvGeom, p int) backend.ConvGeom {
	g.PadH, g.PadW = p, p
	return g
}

func TestRules(t *testing.T) {
	conv := backend.ConvGeom{InH: 4, InW: 5, InC: 2, KH: 3, KW: 3, StrideH: 1, StrideW: 1, PadH: 1, PadW: 1}
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
		// 2 images of 4×5×2, a 3×3 kernel, stride 1, padding 1: 20 positions, patch 18.
		{"im2col ok", backend.CheckIm2Col(f(40, 18), f(2, 40), conv), ""},
		{"im2col cols", backend.CheckIm2Col(f(40, 17), f(2, 40), conv), "Im2Col: shape mismatch: cols 40×17 f32, x 2×40 f32"},
		{"im2col x", backend.CheckIm2Col(f(40, 18), f(2, 41), conv), "want x n×40, cols n·20×18"},
		{"im2col no images", backend.CheckIm2Col(f(0, 18), f(0, 40), conv), "Im2Col"},
		{"im2col padding", backend.CheckIm2Col(f(40, 18), f(2, 40), withPad(conv, 3)), "padding must be in 0..kernel−1"},
		{"conv forward ok", backend.CheckConvForward(f(40, 7), f(40, 18), f(2, 40), f(18, 7), f(1, 7), conv), ""},
		{"conv forward w", backend.CheckConvForward(f(40, 7), f(40, 18), f(2, 40), f(17, 7), f(1, 7), conv), "ConvForward: shape mismatch: y 40×7 f32, cols 40×18 f32, x 2×40 f32, w 17×7 f32"},
		{"conv forward y", backend.CheckConvForward(f(20, 7), f(40, 18), f(2, 40), f(18, 7), f(1, 7), conv), "want x n×40, cols n·20×18, w 18×F, b 1×F, y n·20×F"},
		{"conv forward b", backend.CheckConvForward(f(40, 7), f(40, 18), f(2, 40), f(18, 7), f(1, 6), conv), "b 1×6 f32"},
		{"conv forward padding", backend.CheckConvForward(f(40, 7), f(40, 18), f(2, 40), f(18, 7), f(1, 7), withPad(conv, 3)), "ConvForward: shape mismatch: convolution"},
		{"conv transpose backward ok", backend.CheckConvTransposeBackward(f(40, 7), nil, f(40, 18), f(2, 40), f(40, 7), f(7, 18), conv), ""},
		{"conv transpose backward dw", backend.CheckConvTransposeBackward(nil, f(18, 7), f(40, 18), f(2, 40), f(40, 7), f(7, 18), conv), "ConvTransposeBackward: shape mismatch: dx nil, dw 18×7 f32"},
		{"conv transpose backward x", backend.CheckConvTransposeBackward(nil, nil, f(40, 18), f(2, 40), f(20, 7), f(7, 18), conv), "want dy n×40, cols n·20×18, x n·20×C, w C×18, dx as x, dw as w"},
		{"conv backward ok", backend.CheckConvBackward(f(2, 40), f(18, 7), f(1, 7), f(40, 18), f(40, 7), f(40, 18), f(40, 7), f(18, 7), conv), ""},
		{"conv backward no dx", backend.CheckConvBackward(nil, f(18, 7), nil, nil, f(40, 7), f(40, 18), f(40, 7), f(18, 7), conv), ""},
		{"conv backward dx without dcols", backend.CheckConvBackward(f(2, 40), nil, nil, nil, f(40, 7), f(40, 18), f(40, 7), f(18, 7), conv), "ConvBackward: shape mismatch: dx 2×40 f32, dcols nil, cols 40×18 f32 (want dx n×40, dcols as cols)"},
		{"conv backward dx", backend.CheckConvBackward(f(1, 40), nil, nil, f(40, 18), f(40, 7), f(40, 18), f(40, 7), f(18, 7), conv), "dx 1×40 f32"},
		{"conv backward db", backend.CheckConvBackward(nil, nil, f(1, 6), nil, f(40, 7), f(40, 18), f(40, 7), f(18, 7), conv), "ConvBackward: shape mismatch: db 1×6 f32, 7 filters"},
		{"conv backward y", backend.CheckConvBackward(nil, nil, nil, nil, f(40, 7), f(40, 18), f(40, 6), f(18, 7), conv), "want cols n·20×18, w 18×F, y and dy n·20×F"},
		{"conv backward rows", backend.CheckConvBackward(nil, nil, nil, nil, f(30, 7), f(30, 18), f(30, 7), f(18, 7), conv), "ConvBackward: shape mismatch: dy 30×7 f32"},
		{"conv transpose forward ok", backend.CheckConvTransposeForward(f(2, 40), f(40, 18), f(40, 7), f(7, 18), f(1, 2), conv), ""},
		{"conv transpose forward b", backend.CheckConvTransposeForward(f(2, 40), f(40, 18), f(40, 7), f(7, 18), f(1, 7), conv), "ConvTransposeForward: shape mismatch: y 2×40 f32, cols 40×18 f32, x 40×7 f32, w 7×18 f32, b 1×7 f32"},
		{"conv transpose forward x", backend.CheckConvTransposeForward(f(2, 40), f(40, 18), f(20, 7), f(7, 18), f(1, 2), conv), "want y n×40, cols n·20×18, x n·20×C, w C×18, b 1×2"},
		{"conv transpose forward stride", backend.CheckConvTransposeForward(f(2, 40), f(40, 18), f(40, 7), f(7, 18), f(1, 2), backend.ConvGeom{InH: 4, InW: 5, InC: 2, KH: 3, KW: 3}), "ConvTransposeForward: shape mismatch: convolution"},
		{"col2im ok", backend.CheckCol2Im(f(2, 40), f(40, 18), conv), ""},
		{"col2im stride", backend.CheckCol2Im(f(2, 40), f(40, 18), backend.ConvGeom{InH: 4, InW: 5, InC: 2, KH: 3, KW: 3}), "Col2Im: shape mismatch: convolution"},
		{"col2im cols", backend.CheckCol2Im(f(2, 40), f(20, 18), conv), "x 2×40 f32, cols 20×18 f32"},
		{"bias act ok", backend.CheckBiasActivation(f(6, 3), f(1, 3)), ""},
		{"bias act b as a column", backend.CheckBiasActivation(f(6, 3), f(3, 1)), ""},
		{"bias act b len", backend.CheckBiasActivation(f(6, 3), f(1, 4)), "BiasActivation: shape mismatch: y 6×3 f32, b 1×4 f32"},
		{"bias act backward ok, nil db", backend.CheckBiasActivationBackward(nil, f(6, 3), f(6, 3)), ""},
		{"bias act backward dy", backend.CheckBiasActivationBackward(f(1, 3), f(3, 6), f(6, 3)), "BiasActivationBackward"},
		{"bias act backward db", backend.CheckBiasActivationBackward(f(1, 2), f(6, 3), f(6, 3)), "db 1×2 f32"},
		{"bn ok", backend.CheckBatchNorm(f(4, 3), f(1, 3), f(1, 3), f(4, 3), f(1, 3), f(1, 3), f(1, 3), f(1, 3), 1, 1e-5, 0.1), ""},
		{"bn ok, no running", backend.CheckBatchNorm(f(4, 3), f(1, 3), f(1, 3), f(4, 3), f(1, 3), f(1, 3), nil, nil, 1, 1e-5, 0.1), ""},
		{"bn one running", backend.CheckBatchNorm(f(4, 3), f(1, 3), f(1, 3), f(4, 3), f(1, 3), f(1, 3), f(1, 3), nil, 1, 1e-5, 0.1), "running 1×3 f32 and nil"},
		{"bn gamma", backend.CheckBatchNorm(f(4, 3), f(1, 3), f(1, 3), f(4, 3), f(1, 2), f(1, 3), nil, nil, 1, 1e-5, 0.1), "gamma 1×2 f32"},
		{"bn eps", backend.CheckBatchNorm(f(4, 3), f(1, 3), f(1, 3), f(4, 3), f(1, 3), f(1, 3), nil, nil, 1, 0, 0.1), "eps 0"},
		{"bn groups", backend.CheckBatchNorm(f(4, 3), f(2, 3), f(2, 3), f(4, 3), f(1, 3), f(1, 3), nil, nil, 2, 1e-5, 0.1), ""},
		{"bn groups divide rows", backend.CheckBatchNorm(f(4, 3), f(3, 3), f(3, 3), f(4, 3), f(1, 3), f(1, 3), nil, nil, 3, 1e-5, 0.1), "3 groups"},
		{"bn statistics per group", backend.CheckBatchNorm(f(4, 3), f(1, 3), f(1, 3), f(4, 3), f(1, 3), f(1, 3), nil, nil, 2, 1e-5, 0.1), "mean 1×3 f32"},
		{"bn backward groups", backend.CheckBatchNormBackward(nil, nil, nil, f(4, 3), f(4, 3), f(4, 3), f(1, 3), f(2, 3), f(2, 3), 2, 1e-5), ""},
		{"bn backward zero groups", backend.CheckBatchNormBackward(nil, nil, nil, f(4, 3), f(4, 3), f(4, 3), f(1, 3), f(1, 3), f(1, 3), 0, 1e-5), "0 groups"},
		{"bn momentum", backend.CheckBatchNorm(f(4, 3), f(1, 3), f(1, 3), f(4, 3), f(1, 3), f(1, 3), nil, nil, 1, 1e-5, -0.1), "momentum -0.1"},
		{"bn infer ok", backend.CheckBatchNormInfer(f(4, 3), f(4, 3), f(1, 3), f(1, 3), f(1, 3), f(1, 3), 1e-5), ""},
		{"bn infer y", backend.CheckBatchNormInfer(f(3, 4), f(4, 3), f(1, 3), f(1, 3), f(1, 3), f(1, 3), 1e-5), "BatchNormInfer: shape mismatch: y 3×4 f32, x 4×3 f32"},
		{"bn backward ok, all nil", backend.CheckBatchNormBackward(nil, nil, nil, f(4, 3), f(4, 3), f(4, 3), f(1, 3), f(1, 3), f(1, 3), 1, 1e-5), ""},
		{"bn backward dx", backend.CheckBatchNormBackward(f(4, 2), nil, nil, f(4, 3), f(4, 3), f(4, 3), f(1, 3), f(1, 3), f(1, 3), 1, 1e-5), "dx 4×2 f32"},
		{"bn backward dbeta", backend.CheckBatchNormBackward(nil, nil, f(1, 4), f(4, 3), f(4, 3), f(4, 3), f(1, 3), f(1, 3), f(1, 3), 1, 1e-5), "dbeta 1×4 f32"},
		{"bn backward mean", backend.CheckBatchNormBackward(nil, nil, nil, f(4, 3), f(4, 3), f(4, 3), f(1, 3), f(1, 2), f(1, 3), 1, 1e-5), "mean 1×2 f32"},
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
	cols, img := f(40, 18), f(2, 40)
	conv := backend.ConvGeom{InH: 4, InW: 5, InC: 2, KH: 3, KW: 3, StrideH: 1, StrideW: 1, PadH: 1, PadW: 1}
	n := testing.AllocsPerRun(50, func() {
		_ = backend.CheckDenseForward(y, x, w, b)
		_ = backend.CheckDenseBackward(x, w, b, y, x, y, w)
		_ = backend.CheckAdam(w, w, w, w, 3)
		_ = backend.CheckIm2Col(cols, img, conv)
		_ = backend.CheckBatchNorm(y, b, b, y, b, b, nil, nil, 1, 1e-5, 0.1)
	})
	if n != 0 {
		t.Errorf("%v allocations per round, want 0", n)
	}
}
