package backend

import "fmt"

// The shape rules of every operation, shared by all backends so that the CPU and the
// GPU accept and refuse exactly the same calls, with the same messages. Each returns
// nil or an error wrapping ErrShape that names the operation. A backend first checks
// that the operands are its own tensors of the right element type (optional operands
// may be nil), then calls the rule, and only then touches data: a refused call
// changes nothing. Data-dependent checks (gather indices, class labels) stay with the
// backends. The rules format their messages only on failure, so that a valid call
// allocates nothing.

func shapeErr(op, format string, args ...any) error {
	for i, a := range args {
		if a == nil {
			args[i] = "nil"
		} else if t, ok := a.(Tensor); ok {
			args[i] = ShapeString(t)
		}
	}
	return fmt.Errorf("%s: %w: %s", op, ErrShape, fmt.Sprintf(format, args...))
}

func same(a, b Tensor) bool { return a.Rows() == b.Rows() && a.Cols() == b.Cols() }

// CheckDenseForward is the rule of Backend.DenseForward.
func CheckDenseForward(y, x, w, b Tensor) error {
	n, in, out := x.Rows(), x.Cols(), w.Cols()
	if w.Rows() == in && Len(b) == out && y.Rows() == n && y.Cols() == out && n > 0 && in > 0 && out > 0 {
		return nil
	}
	return shapeErr("DenseForward", "y %s = x %s · w %s + b %s", y, x, w, b)
}

// CheckDenseBackward is the rule of Backend.DenseBackward; dx, dw and db may be nil.
func CheckDenseBackward(dx, dw, db, dy, x, y, w Tensor) error {
	n, in, out := x.Rows(), x.Cols(), w.Cols()
	if !(w.Rows() == in && y.Rows() == n && y.Cols() == out && same(dy, y) && n > 0 && in > 0 && out > 0) {
		return shapeErr("DenseBackward", "dy %s, x %s, y %s, w %s", dy, x, y, w)
	}
	if dw != nil && !same(dw, w) {
		return shapeErr("DenseBackward", "dw %s, w %s", dw, w)
	}
	if db != nil && Len(db) != out {
		return shapeErr("DenseBackward", "db %s, %d outputs", db, out)
	}
	if dx != nil && !same(dx, x) {
		return shapeErr("DenseBackward", "dx %s, x %s", dx, x)
	}
	return nil
}

// CheckMaxoutForward is the rule of Backend.MaxoutForward.
func CheckMaxoutForward(y, arg, z Tensor, pieces int) error {
	if pieces > 0 && z.Rows() == y.Rows() && z.Cols() == y.Cols()*pieces && same(arg, y) {
		return nil
	}
	return shapeErr("MaxoutForward", "y %s, arg %s, z %s, %d pieces", y, arg, z, pieces)
}

// CheckMaxoutBackward is the rule of Backend.MaxoutBackward.
func CheckMaxoutBackward(dz, dy, arg Tensor, pieces int) error {
	if pieces > 0 && dz.Rows() == dy.Rows() && dz.Cols() == dy.Cols()*pieces && same(arg, dy) {
		return nil
	}
	return shapeErr("MaxoutBackward", "dz %s, dy %s, arg %s, %d pieces", dz, dy, arg, pieces)
}

// CheckMaxoutDropout is the rule of Backend.MaxoutDropout.
func CheckMaxoutDropout(y, arg, mask, z Tensor, pieces int, keep float32) error {
	if CheckMaxoutForward(y, arg, z, pieces) == nil && same(mask, y) && keep > 0 && keep <= 1 {
		return nil
	}
	return shapeErr("MaxoutDropout", "y %s, arg %s, mask %s, z %s, %d pieces, keep %g", y, arg, mask, z, pieces, keep)
}

// CheckMaxoutDropoutBackward is the rule of Backend.MaxoutDropoutBackward.
func CheckMaxoutDropoutBackward(dz, dy, mask, arg Tensor, pieces int) error {
	if CheckMaxoutBackward(dz, dy, arg, pieces) == nil && same(mask, dy) {
		return nil
	}
	return shapeErr("MaxoutDropoutBackward", "dz %s, dy %s, mask %s, arg %s, %d pieces", dz, dy, mask, arg, pieces)
}

// CheckDenseMaxout is the rule of Backend.DenseMaxout; mask may be nil (no dropout).
func CheckDenseMaxout(y, arg, mask, z, x, w, b Tensor, pieces int, keep float32) error {
	if CheckDenseForward(z, x, w, b) != nil || CheckMaxoutForward(y, arg, z, pieces) != nil ||
		(mask != nil && (!same(mask, y) || !(keep > 0 && keep <= 1))) {
		return shapeErr("DenseMaxout", "y %s, arg %s, mask %s, z %s = x %s · w %s + b %s, %d pieces, keep %g",
			y, arg, mask, z, x, w, b, pieces, keep)
	}
	return nil
}

// CheckDropout is the rule of Backend.Dropout.
func CheckDropout(y, mask, x Tensor, keep float32) error {
	if same(y, x) && same(mask, x) && keep > 0 && keep <= 1 {
		return nil
	}
	return shapeErr("Dropout", "y %s, mask %s, x %s, keep %g", y, mask, x, keep)
}

// CheckSigmoidCrossEntropy is the rule of Backend.SigmoidCrossEntropy; dlogits may be nil.
func CheckSigmoidCrossEntropy(dlogits, logits, targets, out Tensor, slot int) error {
	if !(same(logits, targets) && slot >= 0 && slot < Len(out)) {
		return shapeErr("SigmoidCrossEntropy", "logits %s, targets %s, out %s slot %d", logits, targets, out, slot)
	}
	if dlogits != nil && !same(dlogits, logits) {
		return shapeErr("SigmoidCrossEntropy", "dlogits %s, logits %s", dlogits, logits)
	}
	return nil
}

// CheckMeanSigmoid is the rule of Backend.MeanSigmoid.
func CheckMeanSigmoid(logits, out Tensor, slot int) error {
	if Len(logits) > 0 && slot >= 0 && slot < Len(out) {
		return nil
	}
	return shapeErr("MeanSigmoid", "logits %s, out %s slot %d", logits, out, slot)
}

// CheckSoftmaxCrossEntropy is the rule of Backend.SoftmaxCrossEntropy (labels' range
// is data, checked by the backends); dlogits may be nil.
func CheckSoftmaxCrossEntropy(dlogits, logits, labels, out Tensor, slot int) error {
	if !(logits.Cols() > 0 && labels.Rows() == logits.Rows() && labels.Cols() == 1 && slot >= 0 && slot < Len(out)) {
		return shapeErr("SoftmaxCrossEntropy", "logits %s, labels %s, out %s slot %d", logits, labels, out, slot)
	}
	if dlogits != nil && !same(dlogits, logits) {
		return shapeErr("SoftmaxCrossEntropy", "dlogits %s, logits %s", dlogits, logits)
	}
	return nil
}

// CheckLogSumExpRows is the rule of Backend.LogSumExpRows.
func CheckLogSumExpRows(out, x Tensor) error {
	if x.Cols() > 0 && out.Rows() == x.Rows() && out.Cols() == 1 {
		return nil
	}
	return shapeErr("LogSumExpRows", "out %s, x %s", out, x)
}

// CheckSGDMomentum is the rule of Backend.SGDMomentum.
func CheckSGDMomentum(p, g, v Tensor) error {
	if same(p, g) && same(p, v) {
		return nil
	}
	return shapeErr("SGDMomentum", "p %s, g %s, v %s", p, g, v)
}

// CheckAdam is the rule of Backend.Adam.
func CheckAdam(p, g, m, v Tensor, t int) error {
	if same(p, g) && same(p, m) && same(p, v) && t >= 1 {
		return nil
	}
	return shapeErr("Adam", "p %s, g %s, m %s, v %s, t %d", p, g, m, v, t)
}

// CheckMovingAverage is the rule of Backend.MovingAverage.
func CheckMovingAverage(avg, x Tensor, decay float32) error {
	if same(avg, x) && decay >= 0 && decay <= 1 {
		return nil
	}
	return shapeErr("MovingAverage", "avg %s, x %s, decay %g", avg, x, decay)
}

// CheckClipColumnNorms is the rule of Backend.ClipColumnNorms.
func CheckClipColumnNorms(maxNorm float32) error {
	if maxNorm > 0 {
		return nil
	}
	return shapeErr("ClipColumnNorms", "max norm %g, want > 0", maxNorm)
}

// CheckUniform is the rule of Backend.Uniform.
func CheckUniform(lo, hi float32) error {
	if lo < hi {
		return nil
	}
	return shapeErr("Uniform", "empty range [%g, %g)", lo, hi)
}

// CheckGatherRows is the rule of Backend.GatherRows (the indices' range is data,
// checked by the backends).
func CheckGatherRows(dst, src, idx Tensor, offset int) error {
	if dst.Cols() == src.Cols() && offset >= 0 && offset+dst.Rows() <= Len(idx) {
		return nil
	}
	return shapeErr("GatherRows", "dst %s, src %s, idx %s at offset %d", dst, src, idx, offset)
}

// CheckCopy is the rule of Backend.Copy.
func CheckCopy(dst, src Tensor) error {
	if same(dst, src) {
		return nil
	}
	return shapeErr("Copy", "dst %s, src %s", dst, src)
}

// CheckMul is the rule of Backend.Mul.
func CheckMul(y, a, b Tensor) error {
	if same(y, a) && same(y, b) {
		return nil
	}
	return shapeErr("Mul", "y %s, a %s, b %s", y, a, b)
}
