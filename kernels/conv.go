package kernels

import "github.com/gantrain/gantrain/backend"

// The builders of the convolution and batch-normalisation operations (conv.cu,
// batchnorm.cu). A convolution's matrix products are DenseForward and DenseBackward on
// the columns Im2Col lays out; the per-channel operations act on the (n·H·W)×C view of
// NHWC images.

// convArgs are a convolution's kernel arguments after the two pointers: n, then the
// geometry (backend.ConvGeom, which Valid bounds so that every index within an image
// fits an int32) and its output size.
func convArgs(n int, g backend.ConvGeom) []Arg {
	return []Arg{i32(n), i32(g.InH), i32(g.InW), i32(g.InC), i32(g.KH), i32(g.KW), i32(g.StrideH), i32(g.StrideW),
		i32(g.PadH), i32(g.PadW), i32(g.OutH()), i32(g.OutW())}
}

// Im2Col lays out the receptive fields of the n NHWC images x (n×g.InSize()) as the
// rows of cols ((n·g.Positions())×g.Patch()), zeros in the padding. Kernel
// im2col_nhwc, one thread per element of cols.
func Im2Col(d Target, cols, x uint64, n int, g backend.ConvGeom) []Launch {
	return []Launch{ew("im2col_nhwc", d, n*g.Positions()*g.Patch(), append([]Arg{Ptr(cols), Ptr(x)}, convArgs(n, g)...)...)}
}

// ConvForward computes a convolution's output y = act(cols·w + b) with cols = Im2Col of
// the n NHWC images x, which it leaves in cols ((n·g.Positions())×g.Patch()); w is
// g.Patch()×out, b 1×out, y (n·g.Positions())×out. The chooser picks im2col_nhwc and
// then any product configuration of DenseForward, or, where the images allow 16-byte
// copies (channels a multiple of 4), a gemm.cu configuration's _im kernel, which reads
// the product's A tiles from x and stores them into cols as they land: one launch, and
// the columns written but never read back.
func ConvForward(d Target, y, cols, x, w, b uint64, n int, g backend.ConvGeom, out int, act backend.Act, ws uint64) []Launch {
	m, k := n*g.Positions(), g.Patch()
	p := GemmProblem{Kind: string(nn), M: m, N: out, K: k, LDA: k, LDB: out, TF32: d.TF32,
		Vec4: vec4(nn, cols, w, m, out, k, k, out), Conv: g, ConvVec4: x%16 == 0 && g.InC%4 == 0}
	return chooseGemm(d, p, func(ch GemmChoice) []Launch { return gemmLaunches(d, p, ch, y, x, w, b, act, ws, nil, cols) })
}

// ConvTransposeBackward computes the products of a transposed convolution's backward
// pass: the columns' gradient cols = Im2Col of the n output gradients dy (each
// g.InSize(), after the bias and activation), then dx = cols·wᵀ and dw = xᵀ·cols, each
// unless 0; x is the layer's input ((n·g.Positions())×in), w in×g.Patch(). For dx the
// chooser picks im2col_nhwc and then any product configuration, or a gemm.cu
// configuration's nt _im kernel reading dy (16-byte aligned, channels a multiple of
// 4) and storing cols as the tiles land; dw is then DenseBackward's product on cols.
func ConvTransposeBackward(d Target, dx, dw, cols, dy, x, w uint64, n int, g backend.ConvGeom, in int, ws uint64) []Launch {
	m, k := n*g.Positions(), g.Patch()
	var ls []Launch
	if dx != 0 {
		p := GemmProblem{Kind: string(nt), M: m, N: in, K: k, LDA: k, LDB: k, TF32: d.TF32,
			Vec4: vec4(nt, cols, w, m, in, k, k, k), Conv: g, ConvVec4: dy%16 == 0 && g.InC%4 == 0}
		ls = chooseGemm(d, p, func(ch GemmChoice) []Launch {
			return gemmLaunches(d, p, ch, dx, dy, w, 0, backend.Act{}, ws, nil, cols)
		})
	} else {
		ls = Im2Col(d, cols, dy, n, g)
	}
	if dw != 0 {
		ls = append(ls, matmul(d, tn, dw, x, cols, 0, in, k, m, in, k, backend.Act{}, ws)...)
	}
	return ls
}

// ConvTransposeForward computes a transposed convolution's output y = act(Col2Im(x·w)
// + b) of the n inputs x ((n·g.Positions())×in), w in×g.Patch(), b 1×g.InC, y n
// images of g.InSize(); cols ((n·g.Positions())×g.Patch()) is scratch. The chooser
// picks any product configuration into cols, then col2im_nhwc and bias_activation,
// or, where the operands allow 16-byte copies (x, w and y 16-byte aligned, in and
// g.InC multiples of 4), a gemm.cu configuration's _ct kernel, which computes y
// directly, one product per output phase, with no columns.
func ConvTransposeForward(d Target, y, cols, x, w, b uint64, n int, g backend.ConvGeom, in int, act backend.Act, ws uint64) []Launch {
	m, k := n*g.Positions(), g.Patch()
	p := GemmProblem{Kind: string(nn), M: m, N: k, K: in, LDA: in, LDB: k, TF32: d.TF32,
		Vec4: vec4(nn, x, w, m, k, in, in, k), ConvT: g,
		ConvTVec4: x%16 == 0 && w%16 == 0 && y%16 == 0 && in%4 == 0 && g.InC%4 == 0}
	return chooseGemm(d, p, func(ch GemmChoice) []Launch { return gemmLaunches(d, p, ch, y, x, w, b, act, ws, nil, cols) })
}

// ConvBackward back-propagates through a convolution y = act(cols·w + b), cols the
// Im2Col of the n images whose gradient is dx: dy ((n·g.Positions())×out) is
// overwritten with dZ = dy ⊙ act'(y) and db = Σ_rows dZ, as DenseBackward does; then
// dw = colsᵀ·dZ, and dx = Col2Im(dZ·wᵀ) (w g.Patch()×out), dcols
// ((n·g.Positions())×g.Patch()) scratch; dx, dw and db may be 0 to skip them. For dx
// the chooser picks any product configuration into dcols and then col2im_nhwc, or,
// where the operands allow 16-byte copies (dy, w and dx 16-byte aligned, out and
// g.InC multiples of 4), a gemm.cu configuration's nt _ct kernel, which computes dx
// directly, one product per phase of the input pixels, with no columns.
func ConvBackward(d Target, dx, dw, db, dcols, dy, cols, y, w uint64, n int, g backend.ConvGeom, out int, act backend.Act, ws uint64) []Launch {
	m, k := n*g.Positions(), g.Patch()
	ls := BiasActivationBackward(d, db, dy, y, m, out, act, ws)
	if dw != 0 {
		ls = append(ls, matmul(d, tn, dw, cols, dy, 0, k, out, m, k, out, backend.Act{}, ws)...)
	}
	if dx != 0 {
		p := GemmProblem{Kind: string(nt), M: m, N: k, K: out, LDA: out, LDB: out, TF32: d.TF32,
			Vec4: vec4(nt, dy, w, m, k, out, out, out), ConvT: g,
			ConvTVec4: dy%16 == 0 && w%16 == 0 && dx%16 == 0 && out%4 == 0 && g.InC%4 == 0}
		ls = append(ls, chooseGemm(d, p, func(ch GemmChoice) []Launch {
			return gemmLaunches(d, p, ch, dx, dy, w, 0, backend.Act{}, ws, nil, dcols)
		})...)
	}
	return ls
}

// Col2Im overwrites the n NHWC images x with the adjoint of Im2Col applied to cols:
// each element the float32 sum of the elements of cols copied from it, in the order of
// their (ky, kx) taps. Kernel col2im_nhwc, one thread per element of x (a gather: no
// atomics, the same bits on every run).
func Col2Im(d Target, x, cols uint64, n int, g backend.ConvGeom) []Launch {
	return []Launch{ew("col2im_nhwc", d, n*g.InSize(), append([]Arg{Ptr(x), Ptr(cols)}, convArgs(n, g)...)...)}
}

// BiasActivation sets y = act(y + b) in place, b (1×c) added to every row of y (m×c),
// with the float32 operations of DenseForward's epilogue. Kernel bias_activation.
func BiasActivation(d Target, y, b uint64, m, c int, act backend.Act) []Launch {
	return []Launch{ew("bias_activation", d, m*c, append([]Arg{Ptr(y), Ptr(b), i32(m), i32(c)}, actArgs(act)...)...)}
}

// BiasActivationBackward overwrites dy (m×c) with dZ = dy ⊙ act'(y) and sets db = Σ_rows
// dZ (float64 sums) unless db is 0: dense_backward_act_bias, plus bias_grad_reduce when
// the rows are split over several blocks. The identity without db is no launch.
func BiasActivationBackward(d Target, db, dy, y uint64, m, c int, act backend.Act, ws uint64) []Launch {
	if act.Kind == backend.Identity && db == 0 {
		return nil
	}
	chunks, rowsPer := columnChunks(d, m, c, 1)
	direct := db
	if chunks > 1 {
		direct = 0
	}
	args := append([]Arg{Ptr(dy), Ptr(y), Ptr(direct), Ptr(ws), i32(m), i32(c), i32(rowsPer), Int(b2i(db != 0))}, actArgs(act)...)
	ls := []Launch{{Kernel: "dense_backward_act_bias", Grid: dim(cdiv(c, colTileW), chunks, 1),
		Block: dim(colTileW, colTileH, 1), Args: args}}
	if db != 0 && chunks > 1 {
		ls = append(ls, ew("bias_grad_reduce", d, c, Ptr(db), Ptr(ws), i32(chunks), i32(c)))
	}
	return ls
}

// bnMaxCols is the most columns one batch-normalisation launch covers: its partial
// sums, two float64 per column, pair and chunk, must fit in the workspace with room
// for at least a few pairs.
const bnMaxCols = 1 << 16

// bnPlan is how the batch-normalisation kernels cover m×C in `groups` groups of r rows:
// ranges of at most cols columns, each in launches of at most batch groups, each group
// in chunks row chunks of rowsPer rows. A launch's 2·batch·chunks·cols float64 partials
// and the backward pass's 2·cols carried sums (at carry bytes past the workspace's
// start) fit in the workspace. Chunks are as many as give about two blocks per
// multiprocessor, each of at least minSplitRows rows.
type bnPlan struct {
	cols, batch, chunks, rowsPer int
	carry                        uint64
}

func planBatchNorm(d Target, groups, r, c int) bnPlan {
	cw := min(c, bnMaxCols)
	budget := partialBytes - 16*cw // the carry
	blocks := cdiv(cw, colTileW) * groups
	chunks := 1
	if d.SMs > 0 && blocks < 2*d.SMs {
		chunks = cdiv(2*d.SMs, blocks)
	}
	chunks = max(1, min(chunks, cdiv(r, minSplitRows), budget/(16*cw)))
	rowsPer := cdiv(r, chunks)
	chunks = cdiv(r, rowsPer)
	batch := max(1, min(groups, budget/(16*cw*chunks)))
	return bnPlan{cols: cw, batch: batch, chunks: chunks, rowsPer: rowsPer, carry: uint64(budget)}
}

// each calls f for every launch of p over m×c in `groups` groups of r rows: the first
// column c0 and width w of its range, its first group g0 and number of groups gb.
func (p bnPlan) each(groups, c int, f func(c0, w, g0, gb int)) {
	for c0 := 0; c0 < c; c0 += p.cols {
		for g0 := 0; g0 < groups; g0 += p.batch {
			f(c0, min(p.cols, c-c0), g0, min(p.batch, groups-g0))
		}
	}
}

// grid is the grid of a launch over w columns and gb groups.
func (p bnPlan) grid(w, gb int) [3]uint32 {
	return dim(cdiv(w, colTileW), min(gb*p.chunks, 65535), 1)
}

// BatchNorm normalises each column of x (m×c) in `groups` groups of m/groups rows by
// the group's mean and biased variance (written to mean and variance, groups×c) and
// sets y = act(gamma·x̂ + beta); unless runMean is 0 it updates runMean and runVar as
// running averages, once per group in order (unbiased variance), with cpu.BatchNorm's
// arithmetic: batchnorm_stats_partial twice (float64 sums of x, then of the squared
// deviations from the mean, per group and chunk of rows, in the workspace) and
// batchnorm_forward_apply (the statistics finished, y), per column range and batch of
// groups (one of each unless the matrix is very wide or the groups very many), then
// batchnorm_running_update.
func BatchNorm(d Target, y, mean, variance, x, gamma, beta, runMean, runVar uint64, m, c, groups int, eps, momentum float32,
	act backend.Act, ws uint64) []Launch {
	r := m / groups
	p := planBatchNorm(d, groups, r, c)
	block := dim(colTileW, colTileH, 1)
	var ls []Launch
	p.each(groups, c, func(c0, w, g0, gb int) {
		at := 4 * uint64(g0*r*c+c0) // element (g0·r, c0) of x and y
		stat := 4 * uint64(g0*c+c0) // element (g0, c0) of mean and variance
		geom := []Arg{i32(gb), i32(r), i32(w), i32(c), i32(p.rowsPer), i32(p.chunks)}
		for pass := range 2 {
			ls = append(ls, Launch{Kernel: "batchnorm_stats_partial", Grid: p.grid(w, gb), Block: block,
				Args: append(append([]Arg{Ptr(ws), Ptr(x + at)}, geom...), i32(pass))})
		}
		ls = append(ls,
			Launch{Kernel: "batchnorm_forward_apply", Grid: p.grid(w, gb), Block: block,
				Args: append(append([]Arg{Ptr(y + at), Ptr(mean + stat), Ptr(variance + stat), Ptr(x + at),
					Ptr(gamma + 4*uint64(c0)), Ptr(beta + 4*uint64(c0)), Ptr(ws)}, geom...),
					append([]Arg{Float(eps)}, actArgs(act)...)...)})
	})
	if runMean != 0 {
		ls = append(ls, ew("batchnorm_running_update", d, c, Ptr(runMean), Ptr(runVar), Ptr(mean), Ptr(variance),
			i32(groups), i32(r), i32(c), Float(momentum)))
	}
	return ls
}

// BatchNormInfer sets y = act(gamma·(x − runMean)/√(runVar + eps) + beta) over x (m×c);
// y may alias x. Kernel batchnorm_infer.
func BatchNormInfer(d Target, y, x, gamma, beta, runMean, runVar uint64, m, c int, eps float32, act backend.Act) []Launch {
	chunks, rowsPer := columnChunks(d, m, c, 0)
	return []Launch{{Kernel: "batchnorm_infer", Grid: dim(cdiv(c, colTileW), chunks, 1), Block: dim(colTileW, colTileH, 1),
		Args: append([]Arg{Ptr(y), Ptr(x), Ptr(gamma), Ptr(beta), Ptr(runMean), Ptr(runVar), i32(m), i32(c), i32(rowsPer),
			Float(eps)}, actArgs(act)...)}}
}

// BatchNormBackward back-propagates through BatchNorm in `groups` groups: dy (m×c) is
// overwritten with dZ = dy ⊙ act'(y), and dbeta, dgamma (summed over the groups) and dx
// are computed, each unless its address is 0: batchnorm_backward_partial (dZ and the
// float64 sums per group and chunk of rows) then batchnorm_backward_apply (the sums
// finished, dgamma, dbeta, dx), per column range and batch of groups. Without dx,
// dgamma and dbeta it is BiasActivationBackward without db.
func BatchNormBackward(d Target, dx, dgamma, dbeta, dy, x, y, gamma, mean, variance uint64, m, c, groups int, eps float32,
	act backend.Act, ws uint64) []Launch {
	if dx == 0 && dgamma == 0 && dbeta == 0 {
		return BiasActivationBackward(d, 0, dy, y, m, c, act, ws)
	}
	r := m / groups
	p := planBatchNorm(d, groups, r, c)
	block := dim(colTileW, colTileH, 1)
	var ls []Launch
	opt := func(a, off uint64) uint64 { // an optional address, offset
		if a == 0 {
			return 0
		}
		return a + off
	}
	p.each(groups, c, func(c0, w, g0, gb int) {
		at, stat, col := 4*uint64(g0*r*c+c0), 4*uint64(g0*c+c0), 4*uint64(c0)
		geom := []Arg{i32(gb), i32(r), i32(w), i32(c), i32(p.rowsPer), i32(p.chunks)}
		grid := p.grid(w, gb)
		ls = append(ls, Launch{Kernel: "batchnorm_backward_partial", Grid: grid, Block: block,
			Args: append(append([]Arg{Ptr(ws), Ptr(dy + at), Ptr(y + at), Ptr(x + at), Ptr(mean + stat), Ptr(variance + stat)}, geom...),
				append([]Arg{Float(eps)}, actArgs(act)...)...)})
		if dx == 0 {
			grid[1] = 1 // only the first row of blocks has anything to do
		}
		ls = append(ls, Launch{Kernel: "batchnorm_backward_apply", Grid: grid, Block: block,
			Args: append(append([]Arg{Ptr(opt(dx, at)), Ptr(opt(dgamma, col)), Ptr(opt(dbeta, col)), Ptr(ws + p.carry),
				Ptr(dy + at), Ptr(x + at), Ptr(gamma + col), Ptr(mean + stat), Ptr(variance + stat), Ptr(ws)}, geom...),
				Float(eps), Int(b2i(g0 == 0)), Int(b2i(g0+gb == groups)))})
	})
	return ls
}
