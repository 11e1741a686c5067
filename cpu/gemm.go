package cpu

// The matrix products are split between the backend's workers by blocks of rows or
// of columns of C, whichever of its two dimensions is longer, each block one
// single-threaded library call. Where the library computes a row or column of C by
// the same sequence of operations whether or not its block has neighbours (OpenBLAS,
// BLIS and MKL on an Intel Xeon with AVX-512), the split does not change a bit and
// the results do not depend on the number of workers (TestProductSplitIsExact).
// Where its kernels' blocking depends on the call's width (OpenBLAS 0.3.21 and BLIS
// on an AMD Zen 5), a split changes the last bits of some columns, so results there
// depend on --threads. Each worker then finishes its own block's epilogue while the
// block is in its cache.

// minBlock is the least m·n·k of a block of a split product. It keeps blocks clear of
// the library's path for small products (OpenBLAS computes those, below about 10⁶,
// with other kernels that round differently) and worth a library call.
const minBlock = 1 << 22

// splitAlign is the granularity of a split, in columns or rows: a whole number of
// 16-float vectors, so that each block runs the library's full-width kernels.
const splitAlign = 16

// product describes C = op(A)·op(B) (alpha 1, beta 0) on row-major operands.
type product struct {
	transA, transB bool
	m, n, k        int
	a              []float32
	lda            int
	b              []float32
	ldb            int
	c              []float32
	ldc            int
}

// parts is how many workers share p when it is split along a dimension of size dim.
func (p *product) parts(workers, dim int) int {
	return max(1, min(workers, p.m*p.n*p.k/minBlock, dim/(2*splitAlign)))
}

// cols computes the columns [c0, c1) of C.
func (b *Backend) cols(p *product, c0, c1 int) {
	if c0 >= c1 {
		return
	}
	boff := c0 // op(B)'s columns are B's columns, or B's rows when it is transposed
	if p.transB {
		boff = c0 * p.ldb
	}
	b.gemm.Sgemm(p.transA, p.transB, p.m, c1-c0, p.k, 1, p.a, p.lda, p.b[boff:], p.ldb, 0, p.c[c0:], p.ldc)
}

// rows computes the rows [r0, r1) of C.
func (b *Backend) rows(p *product, r0, r1 int) {
	if r0 >= r1 {
		return
	}
	aoff := r0 * p.lda // op(A)'s rows are A's rows, or A's columns when it is transposed
	if p.transA {
		aoff = r0
	}
	b.gemm.Sgemm(p.transA, p.transB, r1-r0, p.n, p.k, 1, p.a[aoff:], p.lda, p.b, p.ldb, 0, p.c[r0*p.ldc:], p.ldc)
}

// split is how multiply divides p between workers: into parts blocks of rows of C
// when byRows, else of columns. A block of columns needs all of op(A), a block of
// rows all of op(B), and each library call packs what its block needs; splitting the
// longer of C's dimensions has the larger operand packed once rather than by every
// worker. (On the tall products of the dcgan-mnist nets, 6272×1024·1024×128, rows
// rather than columns made the whole iteration a fifth faster: docs/PERFORMANCE.md.)
// A dimension too short to give every worker two aligned blocks is split less.
func (p *product) split(workers int) (byRows bool, parts int) {
	colParts, rowParts := p.parts(workers, p.n), p.parts(workers, p.m)
	if rowParts > colParts || rowParts == colParts && p.m > p.n {
		return true, rowParts
	}
	return false, colParts
}

// multiply computes C on the workers; after its block of C, worker part calls
// epilogue with the block (rows [r0, r1), columns [c0, c1)) unless epilogue is nil.
func (b *Backend) multiply(p *product, epilogue func(r0, r1, c0, c1 int)) {
	byRows, parts := p.split(b.pool.n)
	switch {
	case !byRows:
		b.pool.run(parts, func(part int) {
			c0, c1 := chunk(p.n, splitAlign, parts, part)
			b.cols(p, c0, c1)
			if epilogue != nil && c0 < c1 {
				epilogue(0, p.m, c0, c1)
			}
		})
	default:
		b.pool.run(parts, func(part int) {
			r0, r1 := chunk(p.m, splitAlign, parts, part)
			b.rows(p, r0, r1)
			if epilogue != nil && r0 < r1 {
				epilogue(r0, r1, 0, p.n)
			}
		})
	}
}
