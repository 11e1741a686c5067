// Package ops is the device-independent half of the CUDA backend: the tensor handles
// and the operations, which check their operands exactly as the CPU backend does (same
// conditions, same op names in the errors) and hand the launches package kernels plans
// for them to a launcher. It has no driver dependency: package gpu launches on a CUDA
// stream, and this package's tests launch on the kernels' CPU shim (kernels/shimtest),
// which checks the wiring of every operation where no GPU is available.
package ops

import (
	"fmt"
	"math"

	"github.com/gantrain/gantrain/backend"
	"github.com/gantrain/gantrain/kernels"
	"github.com/gantrain/gantrain/rng"
)

// Core holds what the operations need: the launch plan's device, the workspace, the
// launcher and the first error. A backend embeds it.
type Core struct {
	// Kind names the backend in errors about foreign tensors ("CUDA").
	Kind string
	// Target is the device the kernels plan launches for.
	Target kernels.Target
	// Workspace is the address of the kernels' workspace (kernels.WorkspaceBytes).
	Workspace uint64
	// Launch queues the launches of op in order; it records its own failures with Fail.
	Launch func(op string, ls []kernels.Launch)

	ops backend.Operands[*Tensor] // operand unwrapping and the first error; see args
}

// Fail records err unless an error is recorded already.
func (b *Core) Fail(err error) { b.ops.Fail(err) }

// Failed returns the first recorded error.
func (b *Core) Failed() error { return b.ops.First() }

// args is the operand unwrapper. It is bound to b on first use rather than when a
// Core is made, because a Core is made by value and then embedded: its tensors must
// name the embedded copy as their owner.
func (b *Core) args() *backend.Operands[*Tensor] {
	if b.ops.Own == nil {
		b.ops.Own = b.own
	}
	return &b.ops
}

// own unwraps a tensor made by this Core.
func (b *Core) own(x backend.Tensor) (*Tensor, error) {
	t, ok := x.(*Tensor)
	if !ok || t == nil {
		return nil, fmt.Errorf("tensor %T was not made by the %s backend", x, b.Kind)
	}
	if t.owner != b {
		return nil, fmt.Errorf("tensor %s was made by another %s backend", t, b.Kind)
	}
	return t, nil
}

// Tensor is the device tensor: an address and a shape. Both dtypes are 4 bytes.
type Tensor struct {
	rows, cols int
	dt         backend.DType
	ptr        uint64 // device address of element 0
	owner      *Core
	base       *Block // the allocation this tensor is (a view of)
	off        int    // element offset in base
}

// Block is one allocation's record. For an I32 allocation it keeps a host copy of what
// was uploaded (Shadow), valid (ShadowOK) until a kernel writes the tensor: GatherRows
// and SoftmaxCrossEntropy check their indices there, as the CPU backend does.
type Block struct {
	N        int
	Shadow   []int32
	ShadowOK bool
}

// NewTensor makes the handle of a fresh rows×cols allocation at address ptr, whose
// contents are zero.
func (b *Core) NewTensor(dt backend.DType, rows, cols int, ptr uint64) *Tensor {
	t := &Tensor{rows: rows, cols: cols, dt: dt, ptr: ptr, owner: b, base: &Block{N: rows * cols}}
	if dt == backend.I32 {
		t.base.Shadow, t.base.ShadowOK = make([]int32, t.Len()), true
	}
	return t
}

func (t *Tensor) Rows() int            { return t.rows }
func (t *Tensor) Cols() int            { return t.cols }
func (t *Tensor) DType() backend.DType { return t.dt }
func (t *Tensor) String() string       { return backend.ShapeString(t) }

// Len is the number of elements.
func (t *Tensor) Len() int { return t.rows * t.cols }

// Bytes is the size in bytes.
func (t *Tensor) Bytes() int64 { return int64(t.Len()) * 4 }

// Ptr is the device address of element 0.
func (t *Tensor) Ptr() uint64 { return t.ptr }

func (t *Tensor) sameShape(u *Tensor) bool { return t.rows == u.rows && t.cols == u.cols }

// DeviceWrote marks t's values as no longer known on the host.
func (t *Tensor) DeviceWrote() {
	if t.base.Shadow != nil {
		t.base.ShadowOK = false
	}
}

// Uploaded records the int32 values the host uploaded to t (len(v) = t.Len()).
func (t *Tensor) Uploaded(v []int32) {
	copy(t.base.Shadow[t.off:], v)
	if len(v) == t.base.N {
		t.base.ShadowOK = true
	}
}

// Own unwraps a tensor of this backend for the memory methods (what names the method
// in the error: "upload").
func (b *Core) Own(x backend.Tensor, what string) (*Tensor, error) {
	t, ok := x.(*Tensor)
	if !ok || t == nil {
		return nil, fmt.Errorf("%s %s: tensor %T was not made by the %s backend", lower(b.Kind), what, x, b.Kind)
	}
	if t.owner != b {
		return nil, fmt.Errorf("%s %s: %s tensor was made by another %s backend", lower(b.Kind), what, t, b.Kind)
	}
	return t, nil
}

func lower(s string) string {
	out := []byte(s)
	for i, c := range out {
		if 'A' <= c && c <= 'Z' {
			out[i] = c + 'a' - 'A'
		}
	}
	return string(out)
}

// View implements backend.Backend.
func (b *Core) View(x backend.Tensor, offset, rows, cols int) (backend.Tensor, error) {
	t, err := b.Own(x, "view")
	if err != nil {
		return nil, err
	}
	if offset < 0 || rows < 0 || cols < 0 || offset > t.Len() || (cols > 0 && rows > (t.Len()-offset)/cols) {
		return nil, fmt.Errorf("%s view: %d×%d at offset %d does not fit in %s", lower(b.Kind), rows, cols, offset, t)
	}
	return &Tensor{rows: rows, cols: cols, dt: t.dt, ptr: t.ptr + 4*uint64(offset), owner: b, base: t.base, off: t.off + offset}, nil
}

// CheckShape reports whether rows×cols is a valid allocation shape.
func CheckShape(rows, cols int) bool {
	return rows >= 0 && cols >= 0 && !(cols > 0 && rows > math.MaxInt32/cols)
}

// addr is t's device address, 0 for nil.
func addr(t *Tensor) uint64 {
	if t == nil {
		return 0
	}
	return t.ptr
}

// Fill implements backend.Backend.
func (b *Core) Fill(x backend.Tensor, v float32) {
	ts, ok := b.args().F32("Fill", x)
	if !ok {
		return
	}
	b.Launch("Fill", kernels.Fill(b.Target, ts[0].ptr, ts[0].Len(), v))
}

// Copy implements backend.Backend.
func (b *Core) Copy(dst, src backend.Tensor) {
	ts, ok := b.args().F32("Copy", dst, src)
	if !ok || !b.ops.Check(backend.CheckCopy(dst, src)) {
		return
	}
	b.Launch("Copy", kernels.Copy(b.Target, ts[0].ptr, ts[1].ptr, ts[0].Len()))
}

// Mul implements backend.Backend.
func (b *Core) Mul(y, a, c backend.Tensor) {
	ts, ok := b.args().F32("Mul", y, a, c)
	if !ok || !b.ops.Check(backend.CheckMul(y, a, c)) {
		return
	}
	b.Launch("Mul", kernels.Mul(b.Target, ts[0].ptr, ts[1].ptr, ts[2].ptr, ts[0].Len()))
}

// DenseForward implements backend.Backend.
func (b *Core) DenseForward(y, x, w, bias backend.Tensor, act backend.Act) {
	ts, ok := b.args().F32("DenseForward", y, x, w, bias)
	if !ok {
		return
	}
	Y, X, W, B := ts[0], ts[1], ts[2], ts[3]
	n, in, out := X.rows, X.cols, W.cols
	if !b.ops.Check(backend.CheckDenseForward(y, x, w, bias)) {
		return
	}
	b.Launch("DenseForward", kernels.DenseForward(b.Target, Y.ptr, X.ptr, W.ptr, B.ptr, n, in, out, act, b.Workspace))
}

// DenseBackward implements backend.Backend.
func (b *Core) DenseBackward(dx, dw, db, dy, x, y, w backend.Tensor, act backend.Act) {
	ts, ok := b.args().F32("DenseBackward", dy, x, y, w)
	if !ok {
		return
	}
	DY, X, Y, W := ts[0], ts[1], ts[2], ts[3]
	n, in, out := X.rows, X.cols, W.cols
	DX, okx := b.args().OptionalF32("DenseBackward dx", dx)
	DW, okw := b.args().OptionalF32("DenseBackward dw", dw)
	DB, okb := b.args().OptionalF32("DenseBackward db", db)
	if !okx || !okw || !okb || !b.ops.Check(backend.CheckDenseBackward(dx, dw, db, dy, x, y, w)) {
		return
	}
	b.Launch("DenseBackward", kernels.DenseBackward(b.Target, addr(DX), addr(DW), addr(DB), DY.ptr, X.ptr, Y.ptr, W.ptr,
		n, in, out, act, b.Workspace))
}

// MaxoutForward implements backend.Backend.
func (b *Core) MaxoutForward(y, arg, z backend.Tensor, pieces int) {
	ts, ok := b.args().F32("MaxoutForward", y, z)
	A, oki := b.args().I32("MaxoutForward", arg)
	if !ok || !oki {
		return
	}
	Y, Z := ts[0], ts[1]
	if !b.ops.Check(backend.CheckMaxoutForward(y, arg, z, pieces)) {
		return
	}
	A.DeviceWrote()
	b.Launch("MaxoutForward", kernels.MaxoutForward(b.Target, Y.ptr, A.ptr, Z.ptr, Y.Len(), pieces))
}

// MaxoutBackward implements backend.Backend.
func (b *Core) MaxoutBackward(dz, dy, arg backend.Tensor, pieces int) {
	ts, ok := b.args().F32("MaxoutBackward", dz, dy)
	A, oki := b.args().I32("MaxoutBackward", arg)
	if !ok || !oki {
		return
	}
	DZ, DY := ts[0], ts[1]
	if !b.ops.Check(backend.CheckMaxoutBackward(dz, dy, arg, pieces)) {
		return
	}
	b.Launch("MaxoutBackward", kernels.MaxoutBackward(b.Target, DZ.ptr, DY.ptr, A.ptr, DY.Len(), pieces))
}

// MaxoutDropout implements backend.Backend.
func (b *Core) MaxoutDropout(y, arg, mask, z backend.Tensor, pieces int, keep float32, s rng.Stream) {
	ts, ok := b.args().F32("MaxoutDropout", y, mask, z)
	A, oki := b.args().I32("MaxoutDropout", arg)
	if !ok || !oki {
		return
	}
	Y, M, Z := ts[0], ts[1], ts[2]
	if !b.ops.Check(backend.CheckMaxoutDropout(y, arg, mask, z, pieces, keep)) {
		return
	}
	A.DeviceWrote()
	b.Launch("MaxoutDropout", kernels.MaxoutDropout(b.Target, Y.ptr, A.ptr, M.ptr, Z.ptr, Y.Len(), pieces, keep, s))
}

// DenseMaxout implements backend.Backend: the product with the maxout (and dropout)
// in its epilogue where the chooser picks a fused configuration, else the product
// into z and the maxout kernel (kernels.DenseMaxout).
func (b *Core) DenseMaxout(y, arg, mask, z, x, w, bias backend.Tensor, pieces int, keep float32, s rng.Stream) {
	const op = "DenseMaxout"
	ts, ok := b.args().F32(op, y, z, x, w)
	B, okb := b.args().F32(op, bias)
	A, oki := b.args().I32(op, arg)
	M, okm := b.args().OptionalF32(op+" mask", mask)
	if !ok || !okb || !oki || !okm || !b.ops.Check(backend.CheckDenseMaxout(y, arg, mask, z, x, w, bias, pieces, keep)) {
		return
	}
	Y, Z, X, W := ts[0], ts[1], ts[2], ts[3]
	A.DeviceWrote()
	b.Launch(op, kernels.DenseMaxout(b.Target, Y.ptr, A.ptr, addr(M), Z.ptr, X.ptr, W.ptr, B[0].ptr,
		X.rows, X.cols, Y.cols, pieces, keep, s, b.Workspace))
}

// MaxoutDropoutBackward implements backend.Backend.
func (b *Core) MaxoutDropoutBackward(dz, dy, mask, arg backend.Tensor, pieces int) {
	ts, ok := b.args().F32("MaxoutDropoutBackward", dz, dy, mask)
	A, oki := b.args().I32("MaxoutDropoutBackward", arg)
	if !ok || !oki {
		return
	}
	DZ, DY, M := ts[0], ts[1], ts[2]
	if !b.ops.Check(backend.CheckMaxoutDropoutBackward(dz, dy, mask, arg, pieces)) {
		return
	}
	b.Launch("MaxoutDropoutBackward", kernels.MaxoutDropoutBackward(b.Target, DZ.ptr, DY.ptr, M.ptr, A.ptr, DY.Len(), pieces))
}

// Dropout implements backend.Backend.
func (b *Core) Dropout(y, mask, x backend.Tensor, keep float32, s rng.Stream) {
	ts, ok := b.args().F32("Dropout", y, mask, x)
	if !ok {
		return
	}
	Y, M, X := ts[0], ts[1], ts[2]
	if !b.ops.Check(backend.CheckDropout(y, mask, x, keep)) {
		return
	}
	b.Launch("Dropout", kernels.Dropout(b.Target, Y.ptr, M.ptr, X.ptr, X.Len(), keep, s))
}

// SigmoidCrossEntropy implements backend.Backend.
func (b *Core) SigmoidCrossEntropy(dlogits, logits, targets backend.Tensor, scale float32, out backend.Tensor, slot int) {
	ts, ok := b.args().F32("SigmoidCrossEntropy", logits, targets, out)
	if !ok {
		return
	}
	L, T, O := ts[0], ts[1], ts[2]
	D, ok := b.args().OptionalF32("SigmoidCrossEntropy", dlogits)
	if !ok || !b.ops.Check(backend.CheckSigmoidCrossEntropy(dlogits, logits, targets, out, slot)) {
		return
	}
	b.Launch("SigmoidCrossEntropy", kernels.SigmoidCrossEntropy(b.Target, addr(D), L.ptr, T.ptr, L.Len(), scale, O.ptr, slot, b.Workspace))
}

// MeanSigmoid implements backend.Backend.
func (b *Core) MeanSigmoid(logits, out backend.Tensor, slot int) {
	ts, ok := b.args().F32("MeanSigmoid", logits, out)
	if !ok {
		return
	}
	L, O := ts[0], ts[1]
	if !b.ops.Check(backend.CheckMeanSigmoid(logits, out, slot)) {
		return
	}
	b.Launch("MeanSigmoid", kernels.MeanSigmoid(b.Target, L.ptr, L.Len(), O.ptr, slot, b.Workspace))
}

// SoftmaxCrossEntropy implements backend.Backend. Labels the host uploaded are checked
// here, as the CPU backend checks them; labels a kernel wrote cannot be, and an
// out-of-range one then gives NaN (the backend contract's device behaviour).
func (b *Core) SoftmaxCrossEntropy(dlogits, logits, labels backend.Tensor, scale float32, out backend.Tensor, slot int) {
	ts, ok := b.args().F32("SoftmaxCrossEntropy", logits, out)
	Y, oki := b.args().I32("SoftmaxCrossEntropy", labels)
	if !ok || !oki {
		return
	}
	L, O := ts[0], ts[1]
	D, ok := b.args().OptionalF32("SoftmaxCrossEntropy", dlogits)
	if !ok || !b.ops.Check(backend.CheckSoftmaxCrossEntropy(dlogits, logits, labels, out, slot)) {
		return
	}
	if Y.base.ShadowOK {
		for i, k := range Y.base.Shadow[Y.off : Y.off+L.rows] {
			if k < 0 || int(k) >= L.cols {
				b.ops.OK(false, "SoftmaxCrossEntropy", "label %d of row %d out of range for %d classes", k, i, L.cols)
				return
			}
		}
	}
	b.Launch("SoftmaxCrossEntropy", kernels.SoftmaxCrossEntropy(b.Target, addr(D), L.ptr, Y.ptr, L.rows, L.cols, scale, O.ptr, slot, b.Workspace))
}

// LogSumExpRows implements backend.Backend.
func (b *Core) LogSumExpRows(out, x backend.Tensor) {
	ts, ok := b.args().F32("LogSumExpRows", out, x)
	if !ok {
		return
	}
	O, X := ts[0], ts[1]
	if !b.ops.Check(backend.CheckLogSumExpRows(out, x)) {
		return
	}
	b.Launch("LogSumExpRows", kernels.LogSumExpRows(b.Target, O.ptr, X.ptr, X.rows, X.cols))
}

// SGDMomentum implements backend.Backend.
func (b *Core) SGDMomentum(p, g, v backend.Tensor, lr, mu float32) {
	ts, ok := b.args().F32("SGDMomentum", p, g, v)
	if !ok {
		return
	}
	P, G, V := ts[0], ts[1], ts[2]
	if !b.ops.Check(backend.CheckSGDMomentum(p, g, v)) {
		return
	}
	b.Launch("SGDMomentum", kernels.SGDMomentum(b.Target, P.ptr, G.ptr, V.ptr, P.Len(), lr, mu))
}

// Adam implements backend.Backend.
func (b *Core) Adam(p, g, m, v backend.Tensor, lr, beta1, beta2, eps float32, t int) {
	ts, ok := b.args().F32("Adam", p, g, m, v)
	if !ok {
		return
	}
	P, G, M, V := ts[0], ts[1], ts[2], ts[3]
	if !b.ops.Check(backend.CheckAdam(p, g, m, v, t)) {
		return
	}
	b.Launch("Adam", kernels.Adam(b.Target, P.ptr, G.ptr, M.ptr, V.ptr, P.Len(), lr, beta1, beta2, eps, t))
}

// MovingAverage implements backend.Backend.
func (b *Core) MovingAverage(avg, x backend.Tensor, decay float32) {
	ts, ok := b.args().F32("MovingAverage", avg, x)
	if !ok {
		return
	}
	A, X := ts[0], ts[1]
	if !b.ops.Check(backend.CheckMovingAverage(avg, x, decay)) {
		return
	}
	b.Launch("MovingAverage", kernels.MovingAverage(b.Target, A.ptr, X.ptr, A.Len(), decay))
}

// ClipColumnNorms implements backend.Backend.
func (b *Core) ClipColumnNorms(w backend.Tensor, maxNorm float32) {
	ts, ok := b.args().F32("ClipColumnNorms", w)
	if !ok || !b.ops.Check(backend.CheckClipColumnNorms(maxNorm)) {
		return
	}
	W := ts[0]
	b.Launch("ClipColumnNorms", kernels.ClipColumnNorms(b.Target, W.ptr, W.rows, W.cols, maxNorm, b.Workspace))
}

// Uniform implements backend.Backend.
func (b *Core) Uniform(x backend.Tensor, lo, hi float32, s rng.Stream) {
	ts, ok := b.args().F32("Uniform", x)
	if !ok || !b.ops.Check(backend.CheckUniform(lo, hi)) {
		return
	}
	b.Launch("Uniform", kernels.Uniform(b.Target, ts[0].ptr, ts[0].Len(), lo, hi, s))
}

// Normal implements backend.Backend.
func (b *Core) Normal(x backend.Tensor, mean, std float32, s rng.Stream) {
	ts, ok := b.args().F32("Normal", x)
	if !ok {
		return
	}
	b.Launch("Normal", kernels.Normal(b.Target, ts[0].ptr, ts[0].Len(), mean, std, s))
}

// GatherRows implements backend.Backend. Indices the host uploaded are checked here,
// exactly as the CPU backend checks them; the kernel also refuses to read through an
// index out of range (it writes NaN to that row instead).
func (b *Core) GatherRows(dst, src, idx backend.Tensor, offset int) {
	ts, ok := b.args().F32("GatherRows", dst, src)
	I, oki := b.args().I32("GatherRows", idx)
	if !ok || !oki {
		return
	}
	D, S := ts[0], ts[1]
	if !b.ops.Check(backend.CheckGatherRows(dst, src, idx, offset)) {
		return
	}
	if I.base.ShadowOK {
		at := I.off + offset
		for r, k := range I.base.Shadow[at : at+D.rows] {
			if k < 0 || int(k) >= S.rows {
				b.ops.OK(false, "GatherRows", "index %d at %d out of range for %d rows", k, offset+r, S.rows)
				return
			}
		}
	}
	b.Launch("GatherRows", kernels.GatherRows(b.Target, D.ptr, S.ptr, I.ptr, D.rows, D.cols, S.rows, offset))
}
