package kernels

import (
	"math"

	"github.com/gantrain/gantrain/backend"
	"github.com/gantrain/gantrain/rng"
)

// Geometry constants; they must agree with the .cu sources (common.cuh).
const (
	ewThreads    = 256 // threads per block of the elementwise and row kernels
	tileM        = 64  // rows of C per matmul block
	tileN        = 64  // columns of C per matmul block
	tileK        = 16  // depth of one shared-memory stage
	f32Threads   = 256 // threads of a matmul_f32_* block (16×16, 4×4 outputs each)
	tf32Threads  = 128 // threads of a matmul_tf32_* block (4 warps, 32×32 outputs each)
	colTileW     = 32  // columns per block of the column kernels (block 32×8)
	colTileH     = 8
	warpsPerBlk  = ewThreads / 32
	maxPartials  = 1024 // blocks of a two-pass reduction
	minSplitRows = 256  // rows per chunk of the column kernels, at least (fewer: one pass, no second launch)
)

// ewGrid is the grid of a grid-stride kernel over n items: enough blocks for every
// item, at most 32 per multiprocessor.
func ewGrid(d Target, n int) int {
	g := cdiv(max(n, 1), ewThreads)
	return min(g, 32*max(d.SMs, 1))
}

func ew(kernel string, d Target, n int, args ...Arg) Launch {
	return Launch{Kernel: kernel, Grid: dim(ewGrid(d, n), 1, 1), Block: dim(ewThreads, 1, 1), Args: args}
}

// Fill sets the n float32 elements at t to v. Kernel fill_f32.
func Fill(d Target, t uint64, n int, v float32) []Launch {
	return []Launch{ew("fill_f32", d, n, Ptr(t), i32(n), Float(v))}
}

// Copy copies n 4-byte elements (float32 or int32, bit for bit) from src to dst.
// Kernel copy_words.
func Copy(d Target, dst, src uint64, n int) []Launch {
	return []Launch{ew("copy_words", d, n, Ptr(dst), Ptr(src), i32(n))}
}

// Mul sets y = a ⊙ b over n elements; y may alias a or b. Kernel mul_f32.
func Mul(d Target, y, a, b uint64, n int) []Launch {
	return []Launch{ew("mul_f32", d, n, Ptr(y), Ptr(a), Ptr(b), i32(n))}
}

// Wait occupies the stream for ns nanoseconds of device time (one thread spinning on
// the device's clock), so that the launches queued behind it run back to back: the
// autotuner's timing harness. Kernel wait_ns.
func Wait(ns uint64) []Launch {
	return []Launch{{Kernel: "wait_ns", Grid: dim(1, 1, 1), Block: dim(32, 1, 1), Args: []Arg{U64(ns)}}}
}

// actArgs are the activation's kernel arguments: its kind (backend.Activation) and alpha.
func actArgs(act backend.Act) []Arg {
	return []Arg{Int(int32(act.Kind)), Float(act.Alpha)}
}

// matmulKind says which operands of C = op(A)·op(B) are transposed.
type matmulKind string

const (
	nn matmulKind = "nn" // C = A·B
	tn matmulKind = "tn" // C = Aᵀ·B
	nt matmulKind = "nt" // C = A·Bᵀ
)

// splitK chooses how many slices of the K dimension compute partial products of an
// M×N×K matmul: enough blocks for about two per multiprocessor, at least two tileK
// stages per slice, and the partials within the workspace. kchunk is the depth of
// one slice (a multiple of tileK); split·kchunk ≥ K and no slice is empty.
func splitK(d Target, m, n, k int) (split, kchunk int) {
	tiles := cdiv(m, tileM) * cdiv(n, tileN)
	split = 1
	if d.SMs > 0 && tiles < d.SMs {
		split = cdiv(2*d.SMs, tiles)
	}
	split = min(split, k/(2*tileK), 32)
	for split > 1 && split*m*n*4 > partialBytes {
		split--
	}
	kchunk, split = kchunkFor(k, max(split, 1), tileK)
	return split, kchunk
}

// matmul is C (M×N, row-major, ldc = N) = op(A)·op(B), then + bias (1×N, 0 for none)
// and act. lda and ldb are the row lengths of A and B as stored. The configuration
// comes from d's GemmChooser, or DefaultGemm.
func matmul(d Target, kind matmulKind, c, a, b, bias uint64, m, n, k, lda, ldb int, act backend.Act, ws uint64) []Launch {
	p := GemmProblem{Kind: string(kind), M: m, N: n, K: k, LDA: lda, LDB: ldb, TF32: d.TF32,
		Vec4: vec4(kind, a, b, m, n, k, lda, ldb)}
	return chooseGemm(d, p, func(ch GemmChoice) []Launch { return gemmLaunches(d, p, ch, c, a, b, bias, act, ws, nil, 0) })
}

// chooseGemm builds the launches of p's configuration: d's GemmChooser's choice, or
// DefaultGemm's.
func chooseGemm(d Target, p GemmProblem, build func(GemmChoice) []Launch) []Launch {
	var ch GemmChoice
	if d.Gemm != nil {
		ch = d.Gemm.ChooseGemm(p, build)
	}
	if d.Gemm == nil || ValidGemm(d, p, ch) != nil {
		ch = DefaultGemm(d, p)
	}
	return build(ch)
}

// tiledMatmul is matmul on matmul.cu's tiled kernels with K split `split` ways: the
// partial products go to the workspace and matmul_splitk_reduce_bias_act sums them.
func tiledMatmul(d Target, kind matmulKind, c, a, b, bias uint64, m, n, k, lda, ldb int, act backend.Act, split int, ws uint64) []Launch {
	prec, threads := "f32", f32Threads
	if d.TF32 {
		prec, threads = "tf32", tf32Threads
	}
	kchunk, split := kchunkFor(k, split, tileK)
	name := "matmul_" + prec + "_" + string(kind)
	grid := dim(cdiv(n, tileN), cdiv(m, tileM), split)
	block := dim(threads, 1, 1)
	if split == 1 {
		args := append([]Arg{Ptr(c), Ptr(a), Ptr(b), Ptr(bias), i32(m), i32(n), i32(k), i32(lda), i32(ldb), i32(kchunk)}, actArgs(act)...)
		return []Launch{{Kernel: name, Grid: grid, Block: block, Args: args}}
	}
	args := append([]Arg{Ptr(ws), Ptr(a), Ptr(b), Ptr(0), i32(m), i32(n), i32(k), i32(lda), i32(ldb), i32(kchunk)}, actArgs(backend.Act{})...)
	red := append([]Arg{Ptr(c), Ptr(ws), Ptr(bias), i32(m * n), i32(n), i32(split)}, actArgs(act)...)
	return []Launch{
		{Kernel: name, Grid: grid, Block: block, Args: args},
		ew("matmul_splitk_reduce_bias_act", d, m*n, red...),
	}
}

// DenseForward computes y = act(x·w + b) with x n×in, w in×out, b 1×out, y n×out: a
// tiled matmul (kernels matmul_f32_nn or matmul_tf32_nn) whose epilogue adds the bias
// and applies the activation, or, when the output has too few tiles to fill the
// device, split-K partials in the workspace and matmul_splitk_reduce_bias_act.
func DenseForward(d Target, y, x, w, b uint64, n, in, out int, act backend.Act, ws uint64) []Launch {
	return matmul(d, nn, y, x, w, b, n, out, in, in, out, act, ws)
}

// DenseMaxout computes the maxout units of z = x·w + b (x n×in, w in×units·pieces)
// into y (n×units) and arg, as MaxoutForward on z does, and with mask ≠ 0 their
// dropout, as MaxoutDropout does: in the product's epilogue where the chooser picks a
// fused configuration (z is then not written), else the product into z and
// maxout.cu's kernel.
func DenseMaxout(d Target, y, arg, mask, z, x, w, b uint64, n, in, units, pieces int, keep float32, s rng.Stream, ws uint64) []Launch {
	out := units * pieces
	p := GemmProblem{Kind: string(nn), M: n, N: out, K: in, LDA: in, LDB: out, TF32: d.TF32,
		Vec4: vec4(nn, x, w, n, out, in, in, out), Pieces: pieces, Dropout: mask != 0}
	mo := &maxoutOut{y: y, arg: arg, mask: mask, keep: keep, s: s}
	return chooseGemm(d, p, func(ch GemmChoice) []Launch {
		return gemmLaunches(d, p, ch, z, x, w, b, backend.Act{}, ws, mo, 0)
	})
}

// columnChunks splits `rows` rows into chunks for the column kernels (block 32×8 over
// 32 columns): about two blocks per multiprocessor, at least minSplitRows rows per
// chunk, and the chunks·cols·sums float64 partials (sums per column and chunk) within
// the workspace.
func columnChunks(d Target, rows, cols, sums int) (chunks, rowsPer int) {
	colBlocks := cdiv(cols, colTileW)
	chunks = 1
	if d.SMs > 0 && colBlocks < 2*d.SMs {
		chunks = cdiv(2*d.SMs, colBlocks)
	}
	chunks = min(chunks, cdiv(rows, minSplitRows), 65535)
	for chunks > 1 && chunks*cols*sums*8 > partialBytes {
		chunks--
	}
	chunks = max(chunks, 1)
	rowsPer = cdiv(rows, chunks)
	return cdiv(rows, rowsPer), rowsPer
}

// DenseBackward back-propagates through y = act(x·w + b) (x n×in, w in×out, y and dy
// n×out). dy is overwritten with dZ = dy ⊙ act'(y), and db = Σ_rows dZ is summed in
// the same pass (dense_backward_act_bias, plus bias_grad_reduce when the rows are
// split over several blocks); then dw = xᵀ·dZ (matmul_*_tn) and dx = dZ·wᵀ
// (matmul_*_nt). dx, dw and db may be 0 to skip them.
func DenseBackward(d Target, dx, dw, db, dy, x, y, w uint64, n, in, out int, act backend.Act, ws uint64) []Launch {
	ls := BiasActivationBackward(d, db, dy, y, n, out, act, ws)
	if dw != 0 {
		ls = append(ls, matmul(d, tn, dw, x, dy, 0, in, out, n, in, out, backend.Act{}, ws)...)
	}
	if dx != 0 {
		ls = append(ls, matmul(d, nt, dx, dy, w, 0, n, in, out, out, out, backend.Act{}, ws)...)
	}
	return ls
}

func b2i(b bool) int32 {
	if b {
		return 1
	}
	return 0
}

// MaxoutForward sets y[i] = max_p z[i·pieces+p] and arg[i] = the first p attaining it,
// for the `outputs` elements of y (n×units; z is n×units·pieces). Kernel maxout_forward.
func MaxoutForward(d Target, y, arg, z uint64, outputs, pieces int) []Launch {
	return []Launch{ew("maxout_forward", d, outputs, Ptr(y), Ptr(arg), Ptr(z), i32(outputs), i32(pieces))}
}

// MaxoutBackward sets dz[i·pieces+p] = dy[i] where p = arg[i] and 0 elsewhere, over
// the `outputs` elements of dy. Kernel maxout_backward (one thread per element of dz).
func MaxoutBackward(d Target, dz, dy, arg uint64, outputs, pieces int) []Launch {
	return []Launch{ew("maxout_backward", d, outputs*pieces, Ptr(dz), Ptr(dy), Ptr(arg), i32(outputs), i32(pieces))}
}

// MaxoutDropout is MaxoutForward then Dropout of its output in one kernel
// (maxout_dropout_forward, one thread per Philox block of 4 outputs): arg[i] the
// winning piece, mask[i] = 1/keep or 0 from word i of s, y[i] = max·mask[i].
func MaxoutDropout(d Target, y, arg, mask, z uint64, outputs, pieces int, keep float32, s rng.Stream) []Launch {
	return []Launch{ew("maxout_dropout_forward", d, cdiv(outputs, 4), Ptr(y), Ptr(arg), Ptr(mask), Ptr(z), i32(outputs),
		i32(pieces), Float(keep), Float(1/keep), U64(s.Seed), U64(s.Offset))}
}

// MaxoutDropoutBackward sets dz[i·pieces+p] = dy[i]·mask[i] where p = arg[i] and 0
// elsewhere. Kernel maxout_dropout_backward (one thread per element of dz).
func MaxoutDropoutBackward(d Target, dz, dy, mask, arg uint64, outputs, pieces int) []Launch {
	return []Launch{ew("maxout_dropout_backward", d, outputs*pieces, Ptr(dz), Ptr(dy), Ptr(mask), Ptr(arg),
		i32(outputs), i32(pieces))}
}

// Dropout draws the keep mask of n elements from s exactly as rng does (element e kept
// when rng.Keep(s.Word(e), keep)), stores 0 or 1/keep in mask and sets y = x ⊙ mask;
// y may alias x. Kernel dropout_mask_apply (one thread per Philox block of 4 words).
func Dropout(d Target, y, mask, x uint64, n int, keep float32, s rng.Stream) []Launch {
	return []Launch{ew("dropout_mask_apply", d, cdiv(n, 4), Ptr(y), Ptr(mask), Ptr(x), i32(n),
		Float(keep), Float(1/keep), U64(s.Seed), U64(s.Offset))}
}

// Uniform fills the n elements at t with rng.ToUniform(s.Word(e), lo, hi), bit for bit.
// Kernel uniform_fill.
func Uniform(d Target, t uint64, n int, lo, hi float32, s rng.Stream) []Launch {
	return []Launch{ew("uniform_fill", d, cdiv(n, 4), Ptr(t), i32(n), Float(lo), Float(hi),
		U64(s.Seed), U64(s.Offset))}
}

// Normal fills the n elements at t with mean + std·s.NormalAt(e), bit for bit (the
// Box–Muller transform uses ports of Go's math.Log and math.Cos). Kernel normal_fill.
func Normal(d Target, t uint64, n int, mean, std float32, s rng.Stream) []Launch {
	return []Launch{ew("normal_fill", d, cdiv(n, 2), Ptr(t), i32(n), Float(mean), Float(std),
		U64(s.Seed), U64(s.Offset))}
}

// partialBlocks is the grid of the first pass of a two-pass reduction over n items
// handled `per` items per block-iteration.
func partialBlocks(d Target, n, per int) int {
	return min(cdiv(max(n, 1), per), maxPartials, 8*max(d.SMs, 1))
}

// reduce is a two-pass reduction: first (g blocks, its arguments then part, out, mul,
// div), and unless g is 1 (then first writes the scalar itself) sum_partials_to_slot:
// out = float32(mul·Σ partials / div), summed in order.
func reduce(first Launch, g int, ws, out uint64, mul float32, div int) []Launch {
	first.Args = append(first.Args, Ptr(ws), Ptr(out), Float(mul), i32(div))
	if g == 1 {
		return []Launch{first}
	}
	return []Launch{first, {Kernel: "sum_partials_to_slot", Grid: dim(1, 1, 1), Block: dim(ewThreads, 1, 1),
		Args: []Arg{Ptr(out), Ptr(ws), i32(g), Float(mul), i32(div)}}}
}

// SigmoidCrossEntropy writes out[slot] = scale·Σ bce(σ(l_i), t_i) over the n logits,
// and dlogits_i = scale·(σ(l_i) − t_i) unless dlogits is 0: sigmoid_bce_loss_grad
// (per-block float64 partial sums in the workspace) then sum_partials_to_slot.
func SigmoidCrossEntropy(d Target, dlogits, logits, targets uint64, n int, scale float32, out uint64, slot int, ws uint64) []Launch {
	g := partialBlocks(d, n, ewThreads)
	return reduce(Launch{Kernel: "sigmoid_bce_loss_grad", Grid: dim(g, 1, 1), Block: dim(ewThreads, 1, 1),
		Args: []Arg{Ptr(dlogits), Ptr(logits), Ptr(targets), i32(n), Float(scale)}}, g, ws, out+4*uint64(slot), scale, 1)
}

// MeanSigmoid writes out[slot] = mean of σ(l_i) over the n logits: sigmoid_sum_partial
// then sum_partials_to_slot.
func MeanSigmoid(d Target, logits uint64, n int, out uint64, slot int, ws uint64) []Launch {
	g := partialBlocks(d, n, ewThreads)
	return reduce(Launch{Kernel: "sigmoid_sum_partial", Grid: dim(g, 1, 1), Block: dim(ewThreads, 1, 1),
		Args: []Arg{Ptr(logits), i32(n)}}, g, ws, out+4*uint64(slot), 1, n)
}

// SoftmaxCrossEntropy writes out[slot] = scale·Σ_i −log softmax(l_i)[label_i] over the
// n rows of logits (n×classes; labels int32 n×1) and dlogits (0 to skip):
// softmax_xent_loss_grad (one warp per row, per-block partial sums) then
// sum_partials_to_slot. A label outside [0, classes) makes that row's dlogits NaN and
// its loss NaN, so out[slot] is NaN: the backend, which cannot see the labels without
// a copy, reports a NaN loss as the error.
func SoftmaxCrossEntropy(d Target, dlogits, logits, labels uint64, n, classes int, scale float32, out uint64, slot int, ws uint64) []Launch {
	g := partialBlocks(d, n, warpsPerBlk)
	return reduce(Launch{Kernel: "softmax_xent_loss_grad", Grid: dim(g, 1, 1), Block: dim(ewThreads, 1, 1),
		Args: []Arg{Ptr(dlogits), Ptr(logits), Ptr(labels), i32(n), i32(classes), Float(scale)}}, g, ws, out+4*uint64(slot), scale, 1)
}

// LogSumExpRows sets out_i = log Σ_j exp(x_ij) for the n rows of x (n×m), stably
// around the row maximum (a row of −Inf gives −Inf). Kernel logsumexp_rows, one warp
// per row.
func LogSumExpRows(d Target, out, x uint64, n, m int) []Launch {
	g := min(cdiv(max(n, 1), warpsPerBlk), 32*max(d.SMs, 1))
	return []Launch{{Kernel: "logsumexp_rows", Grid: dim(g, 1, 1), Block: dim(ewThreads, 1, 1),
		Args: []Arg{Ptr(out), Ptr(x), i32(n), i32(m)}}}
}

// SGDMomentum applies v ← μv − lr·g, p ← p + v to n elements, bit for bit as the CPU
// backend. Kernel sgd_momentum_update.
func SGDMomentum(d Target, p, g, v uint64, n int, lr, mu float32) []Launch {
	return []Launch{ew("sgd_momentum_update", d, n, Ptr(p), Ptr(g), Ptr(v), i32(n), Float(lr), Float(mu))}
}

// Adam applies one Adam step (bias correction for step t ≥ 1) to n elements, bit for
// bit as the CPU backend: the correction factors 1/(1−β^t) are computed here, in
// float64 rounded to float32, as cpu does. Kernel adam_update.
func Adam(d Target, p, g, m, v uint64, n int, lr, beta1, beta2, eps float32, t int) []Launch {
	c1 := float32(1 / (1 - math.Pow(float64(beta1), float64(t))))
	c2 := float32(1 / (1 - math.Pow(float64(beta2), float64(t))))
	return []Launch{ew("adam_update", d, n, Ptr(p), Ptr(g), Ptr(m), Ptr(v), i32(n), Float(lr),
		Float(beta1), Float(beta2), Float(1-beta1), Float(1-beta2), Float(eps), Float(c1), Float(c2))}
}

// MovingAverage applies avg ← decay·avg + (1−decay)·x to n elements, bit for bit as
// the CPU backend (1−decay rounded to float32 here, as cpu does). Kernel
// moving_average_update.
func MovingAverage(d Target, avg, x uint64, n int, decay float32) []Launch {
	return []Launch{ew("moving_average_update", d, n, Ptr(avg), Ptr(x), i32(n), Float(decay), Float(1-decay))}
}

// ClipColumnNorms rescales each column of w (rows×cols) whose L2 norm exceeds maxNorm
// to norm maxNorm: column_sumsq_partial (float64 sums of squares per chunk of rows, in
// the workspace) then clip_columns_apply.
func ClipColumnNorms(d Target, w uint64, rows, cols int, maxNorm float32, ws uint64) []Launch {
	chunks, rowsPer := columnChunks(d, rows, cols, 1)
	grid, block := dim(cdiv(cols, colTileW), chunks, 1), dim(colTileW, colTileH, 1)
	return []Launch{
		{Kernel: "column_sumsq_partial", Grid: grid, Block: block,
			Args: []Arg{Ptr(ws), Ptr(w), i32(rows), i32(cols), i32(rowsPer)}},
		{Kernel: "clip_columns_apply", Grid: grid, Block: block,
			Args: []Arg{Ptr(w), Ptr(ws), i32(rows), i32(cols), i32(rowsPer), i32(chunks), Float(maxNorm)}},
	}
}

// GatherRows sets row r of dst (rows×cols) to row idx[offset+r] of src (srcRows×cols).
// An index outside [0, srcRows) is never read through: that row of dst is set to NaN
// (the GPU backend checks the indices on the host, where the CPU backend does, so this
// is only a guard against reading out of bounds). Kernel gather_rows.
func GatherRows(d Target, dst, src, idx uint64, rows, cols, srcRows, offset int) []Launch {
	return []Launch{ew("gather_rows", d, rows*cols, Ptr(dst), Ptr(src), Ptr(idx+4*uint64(offset)),
		i32(rows), i32(cols), i32(srcRows))}
}
