package ops

import (
	"github.com/gantrain/gantrain/backend"
	"github.com/gantrain/gantrain/kernels"
)

// The convolution and batch-normalisation operations. Their operands are unwrapped in
// the CPU backend's order, so that a refused call names the same operand.

// Im2Col implements backend.Backend.
func (b *Core) Im2Col(cols, x backend.Tensor, g backend.ConvGeom) {
	ts, ok := b.args().F32("Im2Col", cols, x)
	if !ok || !b.ops.Check(backend.CheckIm2Col(cols, x, g)) {
		return
	}
	C, X := ts[0], ts[1]
	b.Launch("Im2Col", kernels.Im2Col(b.Target, C.ptr, X.ptr, X.rows, g))
}

// Col2Im implements backend.Backend.
func (b *Core) Col2Im(x, cols backend.Tensor, g backend.ConvGeom) {
	ts, ok := b.args().F32("Col2Im", x, cols)
	if !ok || !b.ops.Check(backend.CheckCol2Im(x, cols, g)) {
		return
	}
	X, C := ts[0], ts[1]
	b.Launch("Col2Im", kernels.Col2Im(b.Target, X.ptr, C.ptr, X.rows, g))
}

// ConvForward implements backend.Backend.
func (b *Core) ConvForward(y, cols, x, w, bias backend.Tensor, g backend.ConvGeom, act backend.Act) {
	ts, ok := b.args().F32("ConvForward", y, cols, x, w)
	bs, okb := b.args().F32("ConvForward b", bias)
	if !ok || !okb || !b.ops.Check(backend.CheckConvForward(y, cols, x, w, bias, g)) {
		return
	}
	Y, C, X, W, B := ts[0], ts[1], ts[2], ts[3], bs[0]
	b.Launch("ConvForward", kernels.ConvForward(b.Target, Y.ptr, C.ptr, X.ptr, W.ptr, B.ptr, X.rows, g, W.cols, act, b.Workspace))
}

// ConvBackward implements backend.Backend.
func (b *Core) ConvBackward(dx, dw, db, dcols, dy, cols, y, w backend.Tensor, g backend.ConvGeom, act backend.Act) {
	const op = "ConvBackward"
	ts, ok := b.args().F32(op, dy, cols, y, w)
	DX, okx := b.args().OptionalF32(op+" dx", dx)
	DC, okc := b.args().OptionalF32(op+" dcols", dcols)
	DW, okw := b.args().OptionalF32(op+" dw", dw)
	DB, okb := b.args().OptionalF32(op+" db", db)
	if !ok || !okx || !okc || !okw || !okb || !b.ops.Check(backend.CheckConvBackward(dx, dw, db, dcols, dy, cols, y, w, g)) {
		return
	}
	DY, C, Y, W := ts[0], ts[1], ts[2], ts[3]
	b.Launch(op, kernels.ConvBackward(b.Target, addr(DX), addr(DW), addr(DB), addr(DC), DY.ptr, C.ptr, Y.ptr, W.ptr,
		C.rows/g.Positions(), g, W.cols, act, b.Workspace))
}

// ConvTransposeBackward implements backend.Backend.
func (b *Core) ConvTransposeBackward(dx, dw, cols, dy, x, w backend.Tensor, g backend.ConvGeom) {
	const op = "ConvTransposeBackward"
	ts, ok := b.args().F32(op, cols, dy, x, w)
	DX, okx := b.args().OptionalF32(op+" dx", dx)
	DW, okw := b.args().OptionalF32(op+" dw", dw)
	if !ok || !okx || !okw || !b.ops.Check(backend.CheckConvTransposeBackward(dx, dw, cols, dy, x, w, g)) {
		return
	}
	C, DY, X, W := ts[0], ts[1], ts[2], ts[3]
	b.Launch(op, kernels.ConvTransposeBackward(b.Target, addr(DX), addr(DW), C.ptr, DY.ptr, X.ptr, W.ptr, DY.rows, g, W.rows, b.Workspace))
}

// ConvTransposeForward implements backend.Backend.
func (b *Core) ConvTransposeForward(y, cols, x, w, bias backend.Tensor, g backend.ConvGeom, act backend.Act) {
	ts, ok := b.args().F32("ConvTransposeForward", y, cols, x, w)
	bs, okb := b.args().F32("ConvTransposeForward b", bias)
	if !ok || !okb || !b.ops.Check(backend.CheckConvTransposeForward(y, cols, x, w, bias, g)) {
		return
	}
	Y, C, X, W, B := ts[0], ts[1], ts[2], ts[3], bs[0]
	b.Launch("ConvTransposeForward", kernels.ConvTransposeForward(b.Target, Y.ptr, C.ptr, X.ptr, W.ptr, B.ptr, Y.rows, g, W.rows, act, b.Workspace))
}

// BiasActivation implements backend.Backend.
func (b *Core) BiasActivation(y, bias backend.Tensor, act backend.Act) {
	ts, ok := b.args().F32("BiasActivation", y, bias)
	if !ok || !b.ops.Check(backend.CheckBiasActivation(y, bias)) {
		return
	}
	Y, B := ts[0], ts[1]
	b.Launch("BiasActivation", kernels.BiasActivation(b.Target, Y.ptr, B.ptr, Y.rows, Y.cols, act))
}

// BiasActivationBackward implements backend.Backend.
func (b *Core) BiasActivationBackward(db, dy, y backend.Tensor, act backend.Act) {
	ts, ok := b.args().F32("BiasActivationBackward", dy, y)
	DB, okb := b.args().OptionalF32("BiasActivationBackward db", db)
	if !ok || !okb || !b.ops.Check(backend.CheckBiasActivationBackward(db, dy, y)) {
		return
	}
	DY, Y := ts[0], ts[1]
	b.Launch("BiasActivationBackward", kernels.BiasActivationBackward(b.Target, addr(DB), DY.ptr, Y.ptr, Y.rows, Y.cols, act, b.Workspace))
}

// BatchNorm implements backend.Backend.
func (b *Core) BatchNorm(y, mean, variance, x, gamma, beta, runMean, runVar backend.Tensor, groups int, eps, momentum float32, act backend.Act) {
	const op = "BatchNorm"
	ts, ok := b.args().F32(op, y, mean, variance, x)
	ps, okp := b.args().F32(op, gamma, beta)
	RM, okm := b.args().OptionalF32(op+" runMean", runMean)
	RV, okv := b.args().OptionalF32(op+" runVar", runVar)
	if !ok || !okp || !okm || !okv || !b.ops.Check(backend.CheckBatchNorm(y, mean, variance, x, gamma, beta, runMean, runVar, groups, eps, momentum)) {
		return
	}
	Y, M, V, X := ts[0], ts[1], ts[2], ts[3]
	G, B := ps[0], ps[1]
	b.Launch(op, kernels.BatchNorm(b.Target, Y.ptr, M.ptr, V.ptr, X.ptr, G.ptr, B.ptr, addr(RM), addr(RV),
		X.rows, X.cols, groups, eps, momentum, act, b.Workspace))
}

// BatchNormInfer implements backend.Backend.
func (b *Core) BatchNormInfer(y, x, gamma, beta, runMean, runVar backend.Tensor, eps float32, act backend.Act) {
	const op = "BatchNormInfer"
	ts, ok := b.args().F32(op, y, x, gamma, beta)
	rs, okr := b.args().F32(op, runMean, runVar)
	if !ok || !okr || !b.ops.Check(backend.CheckBatchNormInfer(y, x, gamma, beta, runMean, runVar, eps)) {
		return
	}
	Y, X, G, B := ts[0], ts[1], ts[2], ts[3]
	b.Launch(op, kernels.BatchNormInfer(b.Target, Y.ptr, X.ptr, G.ptr, B.ptr, rs[0].ptr, rs[1].ptr, X.rows, X.cols, eps, act))
}

// BatchNormBackward implements backend.Backend.
func (b *Core) BatchNormBackward(dx, dgamma, dbeta, dy, x, y, gamma, mean, variance backend.Tensor, groups int, eps float32, act backend.Act) {
	const op = "BatchNormBackward"
	ts, ok := b.args().F32(op, dy, x, y, gamma)
	ss, oks := b.args().F32(op, mean, variance)
	DX, okx := b.args().OptionalF32(op+" dx", dx)
	DG, okg := b.args().OptionalF32(op+" dgamma", dgamma)
	DB, okb := b.args().OptionalF32(op+" dbeta", dbeta)
	if !ok || !oks || !okx || !okg || !okb ||
		!b.ops.Check(backend.CheckBatchNormBackward(dx, dgamma, dbeta, dy, x, y, gamma, mean, variance, groups, eps)) {
		return
	}
	DY, X, Y, G := ts[0], ts[1], ts[2], ts[3]
	b.Launch(op, kernels.BatchNormBackward(b.Target, addr(DX), addr(DG), addr(DB), DY.ptr, X.ptr, Y.ptr, G.ptr, ss[0].ptr, ss[1].ptr,
		X.rows, X.cols, groups, eps, act, b.Workspace))
}
