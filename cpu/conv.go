package cpu

import (
	"math"

	"github.com/gantrain/gantrain/backend"
	"github.com/gantrain/gantrain/cpu/internal/vec"
)

// The convolution operations rearrange NHWC images (Im2Col, Col2Im) and act on the
// (rows×channels) view of them (BiasActivation, batch normalisation); the products
// between them are DenseForward's and DenseBackward's.
//
// Batch normalisation's arithmetic, which the GPU kernels repeat operation for
// operation (no fused multiply-adds: every product is rounded before it is added,
// which the explicit float32 and float64 conversions keep Go from fusing):
//
//	in each group of m rows (the groups in order), per channel c
//	statistics, over the group's rows in order, in float64:
//	  s = Σ x;  μ = s/m;  q = Σ (x − μ)²;  mean_c = float32(μ), variance_c = float32(q/m)
//	everything after, in float32 from those float32 values:
//	  inv = 1 / sqrt(variance + eps)     (sqrt and division each correctly rounded)
//	  x̂ = (x − mean)·inv;  z = gamma·x̂;  y = act(z + beta)   (biasActivate's act)
//	  run ← ((1 − momentum)·run) + (momentum·batch), 1 − momentum rounded first,
//	  with batch = variance·m/(m−1) for runVar, (v·m)/(m−1) in float64 rounded once
//	  (variance itself when m = 1)
//	backward, dZ = dy ⊙ act'(y), then per channel over the rows in order, in float64:
//	  sb = Σ dZ;  sg = Σ dZ·x̂ (x̂ as above; the product of two float32 is exact)
//	  dbeta = float32(Σ_groups sb), dgamma = float32(Σ_groups sg) (float64 sums in order),
//	  mb = float32(sb/m), mg = float32(sg/m), k = gamma·inv (float32)
//	  dx = k·((dZ − mb) − x̂·mg)  (float32, x̂·mg rounded before the subtraction)

// Im2Col implements backend.Backend.
func (b *Backend) Im2Col(cols, x backend.Tensor, g backend.ConvGeom) {
	ts, ok := b.ops.F32("Im2Col", cols, x)
	if !ok || !b.ops.Check(backend.CheckIm2Col(cols, x, g)) {
		return
	}
	C, X := ts[0], ts[1]
	b.parallelRows(C.rows, C.cols, func(r0, r1 int) {
		for r := r0; r < r1; r++ {
			im2colRow(C.row(r), X.f, g, r)
		}
	})
}

// im2colRow writes row r of the column matrix: the receptive field of output
// position r (image r/Positions, position r%Positions). Each kernel row's in-range
// taps are adjacent pixels of one image row, so they are one copy.
func im2colRow(dst, x []float32, g backend.ConvGeom, r int) {
	pos, outW, c := g.Positions(), g.OutW(), g.InC
	i, p := r/pos, r%pos
	oy, ox := p/outW, p%outW
	img := x[i*g.InSize() : (i+1)*g.InSize()]
	x0 := ox*g.StrideW - g.PadW
	kx0, kx1 := max(0, -x0), min(g.KW, g.InW-x0) // the taps inside the image
	kx1 = max(kx0, kx1)
	width := g.KW * c
	for ky := 0; ky < g.KH; ky++ {
		seg := dst[ky*width : (ky+1)*width]
		iy := oy*g.StrideH - g.PadH + ky
		if iy < 0 || iy >= g.InH {
			clear(seg)
			continue
		}
		at := (iy*g.InW + x0) * c
		clear(seg[:kx0*c])
		copy(seg[kx0*c:kx1*c], img[at+kx0*c:at+kx1*c])
		clear(seg[kx1*c:])
	}
}

// ConvForward implements backend.Backend: Im2Col, then DenseForward on the columns.
func (b *Backend) ConvForward(y, cols, x, w, bias backend.Tensor, g backend.ConvGeom, act backend.Act) {
	_, ok := b.ops.F32("ConvForward", y, cols, x, w)
	_, okb := b.ops.F32("ConvForward b", bias)
	if !ok || !okb || !b.ops.Check(backend.CheckConvForward(y, cols, x, w, bias, g)) {
		return
	}
	b.Im2Col(cols, x, g)
	b.DenseForward(y, cols, w, bias, act)
}

// ConvBackward implements backend.Backend: DenseBackward on the columns, then Col2Im
// of the columns' gradient.
func (b *Backend) ConvBackward(dx, dw, db, dcols, dy, cols, y, w backend.Tensor, g backend.ConvGeom, act backend.Act) {
	const op = "ConvBackward"
	_, ok := b.ops.F32(op, dy, cols, y, w)
	_, okx := b.ops.OptionalF32(op+" dx", dx)
	_, okc := b.ops.OptionalF32(op+" dcols", dcols)
	_, okw := b.ops.OptionalF32(op+" dw", dw)
	_, okb := b.ops.OptionalF32(op+" db", db)
	if !ok || !okx || !okc || !okw || !okb || !b.ops.Check(backend.CheckConvBackward(dx, dw, db, dcols, dy, cols, y, w, g)) {
		return
	}
	var din backend.Tensor
	if dx != nil {
		din = dcols
	}
	b.DenseBackward(din, dw, db, dy, cols, y, w, act)
	if dx != nil {
		b.Col2Im(dx, dcols, g)
	}
}

// ConvTransposeBackward implements backend.Backend: Im2Col of dy, then DenseBackward's
// products on the columns.
func (b *Backend) ConvTransposeBackward(dx, dw, cols, dy, x, w backend.Tensor, g backend.ConvGeom) {
	_, ok := b.ops.F32("ConvTransposeBackward", cols, dy, x, w)
	_, okx := b.ops.OptionalF32("ConvTransposeBackward dx", dx)
	_, okw := b.ops.OptionalF32("ConvTransposeBackward dw", dw)
	if !ok || !okx || !okw || !b.ops.Check(backend.CheckConvTransposeBackward(dx, dw, cols, dy, x, w, g)) {
		return
	}
	b.Im2Col(cols, dy, g)
	b.DenseBackward(dx, dw, nil, cols, x, cols, w, backend.Act{})
}

// ConvTransposeForward implements backend.Backend: the product x·w into the columns,
// then, an image row at a time, Col2Im's sums and BiasActivation's epilogue (the same
// bits as the three operations).
func (b *Backend) ConvTransposeForward(y, cols, x, w, bias backend.Tensor, g backend.ConvGeom, act backend.Act) {
	ts, ok := b.ops.F32("ConvTransposeForward", y, cols, x, w)
	bs, okb := b.ops.F32("ConvTransposeForward b", bias)
	if !ok || !okb || !b.ops.Check(backend.CheckConvTransposeForward(y, cols, x, w, bias, g)) {
		return
	}
	Y, C, X, W, B := ts[0], ts[1], ts[2], ts[3], bs[0]
	b.multiply(&product{m: X.rows, n: W.cols, k: X.cols, a: X.f, lda: X.cols, b: W.f, ldb: W.cols, c: C.f, ldc: W.cols}, nil)
	c := g.InC
	b.parallelWork(Y.rows*g.InH, len(Y.f)+len(C.f), 1, func(lo, hi int) {
		for u := lo; u < hi; u++ {
			i, iy := u/g.InH, u%g.InH
			col2imRow(Y.f, C.f, g, i, iy)
			row := Y.f[(i*g.InH+iy)*g.InW*c : (i*g.InH+iy+1)*g.InW*c]
			for ix := 0; ix < g.InW; ix++ {
				biasActivate(row[ix*c:(ix+1)*c], B.f, act)
			}
		}
	})
}

// Col2Im implements backend.Backend. It gathers: each element of x is a float32 sum,
// from 0, of its taps' elements of cols in (ky, kx) order, so no two workers write
// one element and the split changes nothing.
func (b *Backend) Col2Im(x, cols backend.Tensor, g backend.ConvGeom) {
	ts, ok := b.ops.F32("Col2Im", x, cols)
	if !ok || !b.ops.Check(backend.CheckCol2Im(x, cols, g)) {
		return
	}
	X, C := ts[0], ts[1]
	// One part is an image row; every element of cols is read once.
	b.parallelWork(X.rows*g.InH, len(X.f)+len(C.f), 1, func(lo, hi int) {
		for u := lo; u < hi; u++ {
			col2imRow(X.f, C.f, g, u/g.InH, u%g.InH)
		}
	})
}

// col2imRow computes row iy of image i of x from the column matrix cols.
func col2imRow(x, cols []float32, g backend.ConvGeom, i, iy int) {
	c, patch, outH, outW := g.InC, g.Patch(), g.OutH(), g.OutW()
	row := x[(i*g.InH+iy)*g.InW*c : (i*g.InH+iy+1)*g.InW*c]
	clear(row)
	ky0, ky1 := taps(iy, g.PadH, g.StrideH, g.KH, outH)
	for ix := 0; ix < g.InW; ix++ {
		out := row[ix*c : (ix+1)*c]
		kx0, kx1 := taps(ix, g.PadW, g.StrideW, g.KW, outW)
		for ky := ky0; ky < ky1; ky += g.StrideH {
			oy := (iy + g.PadH - ky) / g.StrideH
			for kx := kx0; kx < kx1; kx += g.StrideW {
				ox := (ix + g.PadW - kx) / g.StrideW
				at := ((i*outH+oy)*outW+ox)*patch + (ky*g.KW+kx)*c
				src := cols[at : at+c]
				if c < 8 { // a grey or RGB image: shorter than a vector, and called per pixel
					for k := range out {
						out[k] += src[k]
					}
					continue
				}
				vec.Add(out, src)
			}
		}
	}
}

// taps returns the taps of one kernel dimension that reach input index i: k = k0,
// k0+stride, … below k1, tap k from output index o = (i + pad − k)/stride. Those are
// the k ≡ i + pad (mod stride) with 0 ≤ o < outs (i + pad − stride·(outs−1) is one
// of them when it is the larger start).
func taps(i, pad, stride, kernel, outs int) (k0, k1 int) {
	t := i + pad
	return max(t%stride, t-stride*(outs-1)), min(kernel, t+1) // o < outs, o ≥ 0
}

// BiasActivation implements backend.Backend, with DenseForward's epilogue: the same
// z and bias give the same bits.
func (b *Backend) BiasActivation(y, bias backend.Tensor, act backend.Act) {
	ts, ok := b.ops.F32("BiasActivation", y, bias)
	if !ok || !b.ops.Check(backend.CheckBiasActivation(y, bias)) {
		return
	}
	Y, B := ts[0], ts[1]
	b.parallelRows(Y.rows, Y.cols, func(r0, r1 int) {
		for r := r0; r < r1; r++ {
			biasActivate(Y.row(r), B.f, act)
		}
	})
}

// BiasActivationBackward implements backend.Backend, with DenseBackward's dZ and db:
// the same dy and y give the same bits.
func (b *Backend) BiasActivationBackward(db, dy, y backend.Tensor, act backend.Act) {
	ts, ok := b.ops.F32("BiasActivationBackward", dy, y)
	DB, okb := b.ops.OptionalF32("BiasActivationBackward db", db)
	if !ok || !okb || !b.ops.Check(backend.CheckBiasActivationBackward(db, dy, y)) {
		return
	}
	DY, Y := ts[0], ts[1]
	b.activationGradRows(DY.f, Y.f, Y.rows, Y.cols, act)
	if DB != nil {
		b.columnSums(DB.f, DY.f, Y.rows, Y.cols)
	}
}

// invStd is 1/√(v + eps) in float32, the square root and the division each
// correctly rounded (the square root of a float32 through float64 is).
func invStd(v, eps float32) float32 {
	return 1 / float32(math.Sqrt(float64(v+eps)))
}

// normalizeRows sets the rows [r0, r1) of y (·×c) to act(gamma·x̂ + beta) with
// x̂ = (x − mean)·inv, the batch-normalisation output; y may alias x.
// mean and inv hold one row of c values per group of per rows (per = 0: one group).
func normalizeRows(y, x, mean, inv, gamma, beta []float32, c, per, r0, r1 int, act backend.Act) {
	gamma = gamma[:c]
	for r := r0; r < r1; r++ {
		g := 0
		if per > 0 {
			g = r / per
		}
		mean, inv := mean[g*c:(g+1)*c], inv[g*c:(g+1)*c]
		yr := y[r*c : (r+1)*c]
		vec.Normalize(yr, x[r*c:(r+1)*c], mean, inv, gamma)
		biasActivate(yr, beta, act)
	}
}

// BatchNorm implements backend.Backend (the arithmetic is set out at the top of this
// file), in each group of rows. The statistics are split between the workers by
// columns, each column summed over a group's rows in order, the groups in order; the
// output by rows.
func (b *Backend) BatchNorm(y, mean, variance, x, gamma, beta, runMean, runVar backend.Tensor, groups int, eps, momentum float32, act backend.Act) {
	const op = "BatchNorm"
	ts, ok := b.ops.F32(op, y, mean, variance, x)
	ps, okp := b.ops.F32(op, gamma, beta)
	RM, okm := b.ops.OptionalF32(op+" runMean", runMean)
	RV, okv := b.ops.OptionalF32(op+" runVar", runVar)
	if !ok || !okp || !okm || !okv || !b.ops.Check(backend.CheckBatchNorm(y, mean, variance, x, gamma, beta, runMean, runVar, groups, eps, momentum)) {
		return
	}
	Y, M, V, X := ts[0], ts[1], ts[2], ts[3]
	G, B := ps[0], ps[1]
	rows, n := X.rows, X.cols
	m := rows / groups // rows a group
	acc, inv := b.scratch64(2*n), b.scratch32(groups*n)
	fm, rest := float64(m), 1-momentum
	parts := b.columnParts(2*rows*n, n)
	b.pool.run(parts, func(part int) {
		c0, c1 := chunk(n, splitAlign, parts, part)
		if c0 >= c1 {
			return
		}
		mu, sq := acc[c0:c1], acc[n+c0:n+c1]
		for g := range groups {
			clear(mu)
			clear(sq)
			for r := g * m; r < (g+1)*m; r++ {
				vec.AccF64(mu, X.f[r*n+c0:r*n+c1])
			}
			for j := range mu {
				mu[j] /= fm
			}
			for r := g * m; r < (g+1)*m; r++ {
				vec.AccSqDev(sq, X.f[r*n+c0:r*n+c1], mu)
			}
			for j := range mu {
				c, s := c0+j, g*n+c0+j
				M.f[s], V.f[s] = float32(mu[j]), float32(sq[j]/fm)
				inv[s] = invStd(V.f[s], eps)
				if RM == nil {
					continue
				}
				unbiased := V.f[s]
				if m > 1 {
					unbiased = float32(float64(V.f[s]) * fm / float64(m-1))
				}
				RM.f[c] = float32(rest*RM.f[c]) + float32(momentum*M.f[s])
				RV.f[c] = float32(rest*RV.f[c]) + float32(momentum*unbiased)
			}
		}
	})
	b.parallelRows(rows, n, func(r0, r1 int) {
		normalizeRows(Y.f, X.f, M.f, inv, G.f, B.f, n, m, r0, r1, act)
	})
}

// BatchNormInfer implements backend.Backend, with BatchNorm's arithmetic on the
// running statistics.
func (b *Backend) BatchNormInfer(y, x, gamma, beta, runMean, runVar backend.Tensor, eps float32, act backend.Act) {
	const op = "BatchNormInfer"
	ts, ok := b.ops.F32(op, y, x, gamma, beta)
	rs, okr := b.ops.F32(op, runMean, runVar)
	if !ok || !okr || !b.ops.Check(backend.CheckBatchNormInfer(y, x, gamma, beta, runMean, runVar, eps)) {
		return
	}
	Y, X, G, B := ts[0], ts[1], ts[2], ts[3]
	RM, RV := rs[0], rs[1]
	n := X.cols
	inv := b.scratch32(n)
	for c, v := range RV.f[:n] {
		inv[c] = invStd(v, eps)
	}
	b.parallelRows(X.rows, n, func(r0, r1 int) {
		normalizeRows(Y.f, X.f, RM.f, inv, G.f, B.f, n, 0, r0, r1, act)
	})
}

// BatchNormBackward implements backend.Backend (the arithmetic is set out at the top
// of this file), in each group of rows; dgamma and dbeta are the float32 of the
// groups' float64 sums added in order. dZ and dx are split between the workers by
// rows; the sums by columns (columnParts), each column summed over a group's rows in
// order.
func (b *Backend) BatchNormBackward(dx, dgamma, dbeta, dy, x, y, gamma, mean, variance backend.Tensor, groups int, eps float32, act backend.Act) {
	const op = "BatchNormBackward"
	ts, ok := b.ops.F32(op, dy, x, y, gamma)
	ss, oks := b.ops.F32(op, mean, variance)
	DX, okx := b.ops.OptionalF32(op+" dx", dx)
	DG, okg := b.ops.OptionalF32(op+" dgamma", dgamma)
	DBe, okb := b.ops.OptionalF32(op+" dbeta", dbeta)
	if !ok || !oks || !okx || !okg || !okb ||
		!b.ops.Check(backend.CheckBatchNormBackward(dx, dgamma, dbeta, dy, x, y, gamma, mean, variance, groups, eps)) {
		return
	}
	DY, X, Y, G := ts[0], ts[1], ts[2], ts[3]
	M, V := ss[0], ss[1]
	rows, n := X.rows, X.cols
	m := rows / groups // rows a group
	acc := b.scratch64(4 * n)
	// Per group and channel: inv, k = gamma·inv, mb = dbeta/m, mg = dgamma/m.
	gn := groups * n
	k32 := b.scratch32(4 * gn)
	inv, k, mb, mg := k32[:gn], k32[gn:2*gn], k32[2*gn:3*gn], k32[3*gn:]
	fm := float64(m)
	b.activationGradRows(DY.f, Y.f, rows, n, act)
	parts := b.columnParts(2*rows*n, n)
	b.pool.run(parts, func(part int) {
		c0, c1 := chunk(n, splitAlign, parts, part)
		if c0 >= c1 {
			return
		}
		sb, sg := acc[c0:c1], acc[n+c0:n+c1]
		tb, tg := acc[2*n+c0:2*n+c1], acc[3*n+c0:3*n+c1] // the sums over the groups
		clear(tb)
		clear(tg)
		for g := range groups {
			o := g * n
			for c := c0; c < c1; c++ {
				inv[o+c] = invStd(V.f[o+c], eps)
			}
			clear(sb)
			clear(sg)
			mean, is := M.f[o+c0:o+c1], inv[o+c0:o+c1]
			for r := g * m; r < (g+1)*m; r++ {
				vec.BNGradSums(sb, sg, DY.f[r*n+c0:r*n+c1], X.f[r*n+c0:r*n+c1], mean, is)
			}
			for j := range sb {
				c := o + c0 + j
				tb[j] += sb[j]
				tg[j] += sg[j]
				mb[c], mg[c] = float32(sb[j]/fm), float32(sg[j]/fm)
				k[c] = G.f[c0+j] * inv[c]
			}
		}
		for j := range tb {
			if DBe != nil {
				DBe.f[c0+j] = float32(tb[j])
			}
			if DG != nil {
				DG.f[c0+j] = float32(tg[j])
			}
		}
	})
	if DX == nil {
		return
	}
	b.parallelRows(rows, n, func(r0, r1 int) {
		for r := r0; r < r1; r++ {
			o := (r / m) * n
			M, inv, k, mb, mg := M.f[o:o+n], inv[o:o+n], k[o:o+n], mb[o:o+n], mg[o:o+n]
			vec.BNGradInput(DX.f[r*n:(r+1)*n], DY.f[r*n:(r+1)*n], X.f[r*n:(r+1)*n], M, inv, k, mb, mg)
		}
	})
}
