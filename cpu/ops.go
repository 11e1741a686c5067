package cpu

import (
	"math"

	"github.com/gantrain/gantrain/backend"
	"github.com/gantrain/gantrain/cpu/internal/vec"
	"github.com/gantrain/gantrain/rng"
)

// biasActivate sets z ← act(z + bias) for one row, in one pass.
func biasActivate(z, bias []float32, act backend.Act) {
	bias = bias[:len(z)]
	switch act.Kind {
	case backend.Identity:
		vec.Add(z, bias)
	case backend.ReLU:
		vec.BiasReLU(z, bias)
	case backend.LeakyReLU:
		vec.BiasLeakyReLU(z, bias, act.Alpha)
	case backend.Sigmoid:
		for i, v := range z {
			z[i] = sigmoid(v + bias[i])
		}
	case backend.Tanh:
		for i, v := range z {
			z[i] = float32(math.Tanh(float64(v + bias[i])))
		}
	}
}

// sigmoid is σ(x) = 1/(1+e^{−x}), computed without overflow for any x. (A
// branch-free form measured slower: the exponential, not the branch, is its cost.)
func sigmoid(x float32) float32 {
	if x >= 0 {
		return float32(1 / (1 + math.Exp(-float64(x))))
	}
	e := math.Exp(float64(x))
	return float32(e / (1 + e))
}

// activationGrad sets dy ← dy ⊙ act'(z), with act' written in terms of the output y.
// For LeakyReLU the sign of y is the sign of z because Alpha > 0.
func activationGrad(dy, y []float32, act backend.Act) {
	switch act.Kind {
	case backend.ReLU:
		vec.GradReLU(dy, y)
	case backend.LeakyReLU:
		vec.GradLeakyReLU(dy, y, act.Alpha)
	case backend.Sigmoid:
		vec.GradSigmoid(dy, y)
	case backend.Tanh:
		vec.GradTanh(dy, y)
	}
}

// DenseForward implements backend.Backend.
func (b *Backend) DenseForward(y, x, w, bias backend.Tensor, act backend.Act) {
	ts, ok := b.ops.F32("DenseForward", y, x, w, bias)
	if !ok {
		return
	}
	Y, X, W, B := ts[0], ts[1], ts[2], ts[3]
	n, in, out := X.rows, X.cols, W.cols
	if !b.ops.Check(backend.CheckDenseForward(y, x, w, bias)) {
		return
	}
	b.multiply(&product{m: n, n: out, k: in, a: X.f, lda: in, b: W.f, ldb: out, c: Y.f, ldc: out},
		func(r0, r1, c0, c1 int) {
			for r := r0; r < r1; r++ {
				biasActivate(Y.f[r*out+c0:r*out+c1], B.f[c0:c1], act)
			}
		})
}

// DenseBackward implements backend.Backend.
func (b *Backend) DenseBackward(dx, dw, db, dy, x, y, w backend.Tensor, act backend.Act) {
	ts, ok := b.ops.F32("DenseBackward", dy, x, y, w)
	if !ok {
		return
	}
	// The optional outputs are type-checked and every shape is checked before dy is
	// overwritten: a refused call changes nothing.
	DX, okx := b.ops.OptionalF32("DenseBackward dx", dx)
	DW, okw := b.ops.OptionalF32("DenseBackward dw", dw)
	DB, okb := b.ops.OptionalF32("DenseBackward db", db)
	if !okx || !okw || !okb {
		return
	}
	if !b.ops.Check(backend.CheckDenseBackward(dx, dw, db, dy, x, y, w)) {
		return
	}
	DY, X, Y, W := ts[0], ts[1], ts[2], ts[3]
	n, in, out := X.rows, X.cols, W.cols
	// dZ in place by rows, then dw and db, which need all of dZ's rows, then dx.
	b.activationGradRows(DY.f, Y.f, n, out, act)
	if DW != nil {
		b.multiply(&product{transA: true, m: in, n: out, k: n, a: X.f, lda: in, b: DY.f, ldb: out, c: DW.f, ldc: out}, nil)
	}
	if DB != nil {
		b.columnSums(DB.f, DY.f, n, out)
	}
	if DX != nil {
		b.multiply(&product{transB: true, m: n, n: in, k: out, a: DY.f, lda: out, b: W.f, ldb: out, c: DX.f, ldc: in}, nil)
	}
}

// columnParts is how many workers share a job on the columns of a rows×cols matrix
// that each worker must see whole (a column sum, summed over rows in order so that
// the split does not change a bit), when the job costs work memory passes over an
// element. Each worker's block is at least columnBlock wide: a worker that reads a
// narrower block of every row strides through memory, which ran several times slower
// than one worker reading whole rows (docs/PERFORMANCE.md).
func (b *Backend) columnParts(work, cols int) int {
	if work < minParallel {
		return 1
	}
	return max(1, min(b.pool.n, cols/columnBlock))
}

// columnBlock is the narrowest block of columns a worker takes in a column split.
const columnBlock = 1024

// activationGradRows is activationGrad on the rows×cols matrices dy and y, split by
// rows: dy ← dy ⊙ act'(z).
func (b *Backend) activationGradRows(dy, y []float32, rows, cols int, act backend.Act) {
	if act.Kind == backend.Identity {
		return
	}
	b.parallelRows(rows, cols, func(r0, r1 int) {
		activationGrad(dy[r0*cols:r1*cols], y[r0*cols:r1*cols], act)
	})
}

// columnSums sets sum to the column sums of the rows×cols matrix x: each a float64
// sum over the rows in order, rounded to float32, so that the split between the
// workers (by columns) changes no bit.
func (b *Backend) columnSums(sum, x []float32, rows, cols int) {
	acc := b.scratch64(cols)
	parts := b.columnParts(rows*cols, cols)
	b.pool.run(parts, func(part int) {
		if c0, c1 := chunk(cols, splitAlign, parts, part); c0 < c1 {
			columnSumsOf(sum[c0:c1], acc[c0:c1], x, rows, cols, c0)
		}
	})
}

// scratch64 is the backend's float64 scratch, grown to n values (its contents are
// left from earlier use).
func (b *Backend) scratch64(n int) []float64 {
	if cap(b.acc) < n {
		b.acc = make([]float64, n)
	}
	return b.acc[:n]
}

// scratch32 is the backend's float32 scratch, grown to n values (its contents are
// left from earlier use).
func (b *Backend) scratch32(n int) []float32 {
	if cap(b.acc32) < n {
		b.acc32 = make([]float32, n)
	}
	return b.acc32[:n]
}

// columnSumsOf sets sum[j] to the float64 sum, rows in order, of column c0+j of the
// n×cols matrix x, using acc (len(sum)) as scratch.
func columnSumsOf(sum []float32, acc []float64, x []float32, n, cols, c0 int) {
	clear(acc)
	for r := 0; r < n; r++ {
		vec.AccF64(acc, x[r*cols+c0:r*cols+c0+len(sum)])
	}
	for j, v := range acc {
		sum[j] = float32(v)
	}
}

// MaxoutForward implements backend.Backend.
func (b *Backend) MaxoutForward(y, arg, z backend.Tensor, pieces int) {
	ts, ok := b.ops.F32("MaxoutForward", y, z)
	A, oki := b.ops.I32("MaxoutForward", arg)
	if !ok || !oki {
		return
	}
	Y, Z := ts[0], ts[1]
	if !b.ops.Check(backend.CheckMaxoutForward(y, arg, z, pieces)) {
		return
	}
	b.parallelRows(len(Y.f), pieces, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			best, at := firstMax(Z.f[i*pieces : (i+1)*pieces])
			Y.f[i], A.i[i] = best, int32(at)
		}
	})
}

// firstMax returns the largest of g and the index of its first occurrence (ties go
// to the first, as on the GPU; a NaN is never chosen after the first piece).
func firstMax(g []float32) (float32, int) {
	best, at := g[0], 0
	for p := 1; p < len(g); p++ {
		gt := g[p] > best
		best = vec.Pick(gt, g[p], best)
		at = int(vec.PickBits(gt, uint32(p), uint32(at)))
	}
	return best, at
}

// scatterMaxout sets each group i of dz to zero but for piece arg[i], which gets
// dy[i] (times mask[i] unless mask is nil).
func scatterMaxout(dz, dy, mask []float32, arg []int32, pieces, lo, hi int) {
	for i := lo; i < hi; i++ {
		d := dz[i*pieces : (i+1)*pieces]
		clear(d)
		a := int(arg[i])
		if a < 0 || a >= pieces {
			continue
		}
		if mask != nil {
			d[a] = dy[i] * mask[i]
		} else {
			d[a] = dy[i]
		}
	}
}

// MaxoutBackward implements backend.Backend.
func (b *Backend) MaxoutBackward(dz, dy, arg backend.Tensor, pieces int) {
	ts, ok := b.ops.F32("MaxoutBackward", dz, dy)
	A, oki := b.ops.I32("MaxoutBackward", arg)
	if !ok || !oki {
		return
	}
	DZ, DY := ts[0], ts[1]
	if !b.ops.Check(backend.CheckMaxoutBackward(dz, dy, arg, pieces)) {
		return
	}
	b.parallelRows(len(DY.f), pieces, func(lo, hi int) {
		scatterMaxout(DZ.f, DY.f, nil, A.i, pieces, lo, hi)
	})
}

// MaxoutDropout implements backend.Backend.
func (b *Backend) MaxoutDropout(y, arg, mask, z backend.Tensor, pieces int, keep float32, s rng.Stream) {
	ts, ok := b.ops.F32("MaxoutDropout", y, mask, z)
	A, oki := b.ops.I32("MaxoutDropout", arg)
	if !ok || !oki {
		return
	}
	Y, M, Z := ts[0], ts[1], ts[2]
	if !b.ops.Check(backend.CheckMaxoutDropout(y, arg, mask, z, pieces, keep)) {
		return
	}
	b.parallelWork(len(Y.f), len(Z.f)+philoxWork*len(Y.f), 4, func(lo, hi int) {
		fillDropoutMask(M.f, lo, hi, keep, s)
		for e := lo; e < hi; e++ {
			best, at := firstMax(Z.f[e*pieces : (e+1)*pieces])
			A.i[e], Y.f[e] = int32(at), best*M.f[e]
		}
	})
}

// DenseMaxout implements backend.Backend: the product into z, then MaxoutForward or
// MaxoutDropout on it.
func (b *Backend) DenseMaxout(y, arg, mask, z, x, w, bias backend.Tensor, pieces int, keep float32, s rng.Stream) {
	const op = "DenseMaxout"
	_, ok := b.ops.F32(op, y, z, x, w)
	_, okb := b.ops.F32(op, bias)
	_, oki := b.ops.I32(op, arg)
	_, okm := b.ops.OptionalF32(op+" mask", mask)
	if !ok || !okb || !oki || !okm || !b.ops.Check(backend.CheckDenseMaxout(y, arg, mask, z, x, w, bias, pieces, keep)) {
		return
	}
	b.DenseForward(z, x, w, bias, backend.Act{})
	if mask == nil {
		b.MaxoutForward(y, arg, z, pieces)
		return
	}
	b.MaxoutDropout(y, arg, mask, z, pieces, keep, s)
}

// MaxoutDropoutBackward implements backend.Backend.
func (b *Backend) MaxoutDropoutBackward(dz, dy, mask, arg backend.Tensor, pieces int) {
	ts, ok := b.ops.F32("MaxoutDropoutBackward", dz, dy, mask)
	A, oki := b.ops.I32("MaxoutDropoutBackward", arg)
	if !ok || !oki {
		return
	}
	DZ, DY, M := ts[0], ts[1], ts[2]
	if !b.ops.Check(backend.CheckMaxoutDropoutBackward(dz, dy, mask, arg, pieces)) {
		return
	}
	b.parallelRows(len(DY.f), pieces, func(lo, hi int) {
		scatterMaxout(DZ.f, DY.f, M.f, A.i, pieces, lo, hi)
	})
}

// Dropout implements backend.Backend.
func (b *Backend) Dropout(y, mask, x backend.Tensor, keep float32, s rng.Stream) {
	ts, ok := b.ops.F32("Dropout", y, mask, x)
	if !ok {
		return
	}
	Y, M, X := ts[0], ts[1], ts[2]
	if !b.ops.Check(backend.CheckDropout(y, mask, x, keep)) {
		return
	}
	b.parallelWork(len(X.f), (1+philoxWork)*len(X.f), 4, func(lo, hi int) {
		fillDropoutMask(M.f, lo, hi, keep, s)
		for e := lo; e < hi; e++ {
			Y.f[e] = X.f[e] * M.f[e]
		}
	})
}

// fillDropoutMask sets mask[lo:hi] to 1/keep where element e is kept and 0 where it
// is dropped: word e%4 of Philox block e/4 of s decides (rng.Keep). lo is a multiple
// of 4 (the blocks are not shared between workers); the GPU's dropout kernels draw
// the same.
func fillDropoutMask(mask []float32, lo, hi int, keep float32, s rng.Stream) {
	th, scale := rng.KeepThreshold(keep), math.Float32bits(1/keep)
	m := func(w uint32) float32 { return math.Float32frombits(vec.PickBits(w>>8 < th, scale, 0)) }
	e := lo
	for ; e+8 <= hi; e += 8 {
		x, y := s.Block2(uint64(e / 4))
		d := mask[e : e+8 : e+8]
		d[0], d[1], d[2], d[3] = m(x[0]), m(x[1]), m(x[2]), m(x[3])
		d[4], d[5], d[6], d[7] = m(y[0]), m(y[1]), m(y[2]), m(y[3])
	}
	for ; e < hi; e += 4 {
		w := s.Block(uint64(e / 4))
		for j := 0; j < 4 && e+j < hi; j++ {
			mask[e+j] = m(w[j])
		}
	}
}

// SigmoidCrossEntropy implements backend.Backend. bce(σ(l), t) is computed as
// max(l,0) − l·t + log(1+e^{−|l|}), finite for every finite l.
func (b *Backend) SigmoidCrossEntropy(dlogits, logits, targets backend.Tensor, scale float32, out backend.Tensor, slot int) {
	ts, ok := b.ops.F32("SigmoidCrossEntropy", logits, targets, out)
	if !ok {
		return
	}
	L, T, O := ts[0], ts[1], ts[2]
	D, ok := b.ops.OptionalF32("SigmoidCrossEntropy", dlogits)
	if !ok || !b.ops.Check(backend.CheckSigmoidCrossEntropy(dlogits, logits, targets, out, slot)) {
		return
	}
	var sum float64
	for i, l := range L.f {
		lf, tf := float64(l), float64(T.f[i])
		sum += math.Max(lf, 0) - lf*tf + math.Log1p(math.Exp(-math.Abs(lf)))
		if D != nil {
			D.f[i] = scale * (sigmoid(l) - T.f[i])
		}
	}
	O.f[slot] = float32(float64(scale) * sum)
}

// MeanSigmoid implements backend.Backend.
func (b *Backend) MeanSigmoid(logits, out backend.Tensor, slot int) {
	ts, ok := b.ops.F32("MeanSigmoid", logits, out)
	if !ok {
		return
	}
	L, O := ts[0], ts[1]
	if !b.ops.Check(backend.CheckMeanSigmoid(logits, out, slot)) {
		return
	}
	var sum float64
	for _, l := range L.f {
		sum += float64(sigmoid(l))
	}
	O.f[slot] = float32(sum / float64(len(L.f)))
}

// SGDMomentum implements backend.Backend.
func (b *Backend) SGDMomentum(p, g, v backend.Tensor, lr, mu float32) {
	ts, ok := b.ops.F32("SGDMomentum", p, g, v)
	if !ok {
		return
	}
	P, G, V := ts[0], ts[1], ts[2]
	if !b.ops.Check(backend.CheckSGDMomentum(p, g, v)) {
		return
	}
	b.parallel(len(P.f), 1, func(lo, hi int) {
		pf, gf, vf := P.f[lo:hi], G.f[lo:hi], V.f[lo:hi]
		for i := range pf {
			vi := mu*vf[i] - lr*gf[i]
			vf[i] = vi
			pf[i] += vi
		}
	})
}

// Adam implements backend.Backend:
//
//	m ← β1·m + (1−β1)·g,  v ← β2·v + (1−β2)·g²,
//	p ← p − lr · (m / (1−β1^t)) / (√(v / (1−β2^t)) + ε).
func (b *Backend) Adam(p, g, m, v backend.Tensor, lr, beta1, beta2, eps float32, t int) {
	ts, ok := b.ops.F32("Adam", p, g, m, v)
	if !ok {
		return
	}
	P, G, M, V := ts[0], ts[1], ts[2], ts[3]
	if !b.ops.Check(backend.CheckAdam(p, g, m, v, t)) {
		return
	}
	c1 := float32(1 / (1 - math.Pow(float64(beta1), float64(t))))
	c2 := float32(1 / (1 - math.Pow(float64(beta2), float64(t))))
	b.parallel(len(P.f), 1, func(lo, hi int) {
		pf, gf, mf, vf := P.f[lo:hi], G.f[lo:hi], M.f[lo:hi], V.f[lo:hi]
		for i := range pf {
			gi := gf[i]
			mi := beta1*mf[i] + (1-beta1)*gi
			vi := beta2*vf[i] + (1-beta2)*gi*gi
			mf[i], vf[i] = mi, vi
			pf[i] -= lr * (mi * c1) / (float32(math.Sqrt(float64(vi*c2))) + eps)
		}
	})
}

// MovingAverage implements backend.Backend.
func (b *Backend) MovingAverage(avg, x backend.Tensor, decay float32) {
	ts, ok := b.ops.F32("MovingAverage", avg, x)
	if !ok {
		return
	}
	A, X := ts[0], ts[1]
	if !b.ops.Check(backend.CheckMovingAverage(avg, x, decay)) {
		return
	}
	rest := 1 - decay
	b.parallel(len(A.f), 1, func(lo, hi int) {
		af, xf := A.f[lo:hi], X.f[lo:hi]
		for i := range af {
			af[i] = float32(decay*af[i]) + float32(rest*xf[i]) // no fused multiply-add: the GPU rounds each product
		}
	})
}

// ClipColumnNorms implements backend.Backend. Norms are accumulated in float64; a
// column is scaled by maxNorm/norm only when its norm exceeds maxNorm.
func (b *Backend) ClipColumnNorms(w backend.Tensor, maxNorm float32) {
	ts, ok := b.ops.F32("ClipColumnNorms", w)
	if !ok || !b.ops.Check(backend.CheckClipColumnNorms(maxNorm)) {
		return
	}
	W := ts[0]
	sq := b.scratch64(W.cols)
	clear(sq)
	for r := 0; r < W.rows; r++ {
		for j, v := range W.row(r) {
			sq[j] += float64(v) * float64(v)
		}
	}
	limit := float64(maxNorm)
	for j, s := range sq {
		if norm := math.Sqrt(s); norm > limit {
			sq[j] = limit / norm
		} else {
			sq[j] = 1
		}
	}
	for r := 0; r < W.rows; r++ {
		row := W.row(r)
		for j, scale := range sq {
			if scale != 1 {
				row[j] = float32(float64(row[j]) * scale)
			}
		}
	}
}

// Uniform implements backend.Backend.
func (b *Backend) Uniform(x backend.Tensor, lo, hi float32, s rng.Stream) {
	ts, ok := b.ops.F32("Uniform", x)
	if !ok || !b.ops.Check(backend.CheckUniform(lo, hi)) {
		return
	}
	f := ts[0].f
	b.parallelWork(len(f), (1+philoxWork)*len(f), 4, func(e0, e1 int) {
		for e := e0; e < e1; e += 4 {
			words := s.Block(uint64(e / 4))
			for j := 0; j < 4 && e+j < e1; j++ {
				f[e+j] = rng.ToUniform(words[j], lo, hi)
			}
		}
	})
}

// philoxWork is a Philox draw's cost, per word, in memory passes over an element (a
// block of four words takes about as long as 40 passes).
const philoxWork = 10

// Normal implements backend.Backend.
func (b *Backend) Normal(x backend.Tensor, mean, std float32, s rng.Stream) {
	ts, ok := b.ops.F32("Normal", x)
	if !ok {
		return
	}
	f := ts[0].f
	// Element e is rng's NormalAt(e): words 2(e%2) and 2(e%2)+1 of block e/2, so each
	// block serves a pair of elements.
	b.parallelWork(len(f), (2*philoxWork+normalWork)*len(f), 2, func(e0, e1 int) {
		for e := e0; e < e1; e += 2 {
			w := s.Block(uint64(e / 2))
			f[e] = mean + std*rng.ToNormal(w[0], w[1])
			if e+1 < e1 {
				f[e+1] = mean + std*rng.ToNormal(w[2], w[3])
			}
		}
	})
}

// normalWork is rng.ToNormal's cost (a logarithm, a square root and a cosine) in
// memory passes over an element: about 26 ns, as long as 50 passes.
const normalWork = 50

// GatherRows implements backend.Backend.
func (b *Backend) GatherRows(dst, src, idx backend.Tensor, offset int) {
	ts, ok := b.ops.F32("GatherRows", dst, src)
	I, oki := b.ops.I32("GatherRows", idx)
	if !ok || !oki {
		return
	}
	D, S := ts[0], ts[1]
	if !b.ops.Check(backend.CheckGatherRows(dst, src, idx, offset)) {
		return
	}
	for r := 0; r < D.rows; r++ {
		k := int(I.i[offset+r])
		if k < 0 || k >= S.rows { // checked before formatting anything: this runs per row
			b.ops.OK(false, "GatherRows", "index %d at %d out of range for %d rows", k, offset+r, S.rows)
			return
		}
		copy(D.row(r), S.row(k))
	}
}

// SoftmaxCrossEntropy implements backend.Backend.
func (b *Backend) SoftmaxCrossEntropy(dlogits, logits, labels backend.Tensor, scale float32, out backend.Tensor, slot int) {
	ts, ok := b.ops.F32("SoftmaxCrossEntropy", logits, out)
	Y, oki := b.ops.I32("SoftmaxCrossEntropy", labels)
	if !ok || !oki {
		return
	}
	L, O := ts[0], ts[1]
	D, ok := b.ops.OptionalF32("SoftmaxCrossEntropy", dlogits)
	if !ok || !b.ops.Check(backend.CheckSoftmaxCrossEntropy(dlogits, logits, labels, out, slot)) {
		return
	}
	var sum float64
	for i := 0; i < L.rows; i++ {
		k := int(Y.i[i])
		if k < 0 || k >= L.cols {
			b.ops.OK(false, "SoftmaxCrossEntropy", "label %d of row %d out of range for %d classes", k, i, L.cols)
			return
		}
		row := L.row(i)
		mx := row[0]
		for _, v := range row[1:] {
			mx = max(mx, v)
		}
		var z float64
		for _, v := range row {
			z += math.Exp(float64(v - mx))
		}
		logZ := float64(mx) + math.Log(z)
		sum += logZ - float64(row[k])
		if D != nil {
			drow := D.row(i)
			for j, v := range row {
				p := float32(math.Exp(float64(v) - logZ))
				if j == k {
					p--
				}
				drow[j] = scale * p
			}
		}
	}
	O.f[slot] = float32(float64(scale) * sum)
}

// LogSumExpRows implements backend.Backend.
func (b *Backend) LogSumExpRows(out, x backend.Tensor) {
	ts, ok := b.ops.F32("LogSumExpRows", out, x)
	if !ok {
		return
	}
	O, X := ts[0], ts[1]
	if !b.ops.Check(backend.CheckLogSumExpRows(out, x)) {
		return
	}
	b.parallelRows(X.rows, X.cols, func(r0, r1 int) {
		for i := r0; i < r1; i++ {
			row := X.row(i)
			mx := row[0]
			for _, v := range row[1:] {
				mx = max(mx, v)
			}
			if math.IsInf(float64(mx), -1) {
				O.f[i] = mx
				continue
			}
			var z float64
			for _, v := range row {
				z += math.Exp(float64(v - mx))
			}
			O.f[i] = float32(float64(mx) + math.Log(z))
		}
	})
}
