package cpu

import (
	"math"
	"math/rand/v2"
	"slices"
	"sync/atomic"
	"testing"
)

// The backend splits each product between its workers by blocks of rows or of
// columns of C, one library call a block. That must not change a bit, for any number
// of workers, where the library computes a row or column alike in a narrower call: a run's
// results then do not depend on the machine's core count. Where it does not (its
// kernels' blocking depends on the call's width: OpenBLAS 0.3.21 and BLIS on an AMD
// Zen 5), no split can be exact, and the split's results must agree with one call's
// to float32 rounding.
func TestProductSplitIsExact(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	rnd := func(n int) []float32 {
		x := make([]float32, n)
		for i := range x {
			x[i] = r.Float32()*2 - 1
		}
		return x
	}
	shapes := []struct {
		name           string
		transA, transB bool
		m, n, k        int
	}{
		{"forward", false, false, 100, 1200, 784},
		{"forward ragged", false, false, 37, 1111, 301},
		{"weight gradient", true, false, 784, 1200, 100},
		{"input gradient", false, true, 200, 784, 1200},
		{"tall, by rows", false, false, 1500, 96, 512},
		{"tall weight gradient, by rows", true, false, 1024, 128, 400},
		{"narrow by rows", false, false, 2000, 10, 784},
		{"narrow by rows, transposed", true, true, 1333, 7, 901},
	}
	for _, lib := range []string{"openblas", "blis", "mkl", "go"} {
		serial, err := New(Options{BLAS: lib, Threads: 1})
		if err != nil {
			t.Logf("%s not tested: %v", lib, err)
			continue
		}
		defer serial.Close()
		for _, s := range shapes {
			lda, ldb := s.k, s.n
			if s.transA {
				lda = s.m
			}
			if s.transB {
				ldb = s.k
			}
			p := product{transA: s.transA, transB: s.transB, m: s.m, n: s.n, k: s.k,
				a: rnd(s.m * s.k), lda: lda, b: rnd(s.k * s.n), ldb: ldb, ldc: s.n}
			want := make([]float32, s.m*s.n)
			serial.gemm.Sgemm(p.transA, p.transB, p.m, p.n, p.k, 1, p.a, p.lda, p.b, p.ldb, 0, want, p.ldc)
			exact := columnInvariant(serial, p, want)
			var bound []float64
			if !exact {
				t.Logf("%s %s: this CPU's kernels compute a column differently in a narrower call; the split is checked to rounding", lib, s.name)
				bound = roundingBound(p)
			}
			for _, workers := range []int{2, 3, 5} {
				b, err := New(Options{BLAS: lib, Threads: workers})
				if err != nil {
					t.Fatal(err)
				}
				p.c = make([]float32, s.m*s.n)
				var blocks atomic.Int32
				b.multiply(&p, func(r0, r1, c0, c1 int) { blocks.Add(1) })
				b.Close()
				if n := blocks.Load(); n < 2 {
					t.Errorf("%s %s, %d workers: not split (%d block)", lib, s.name, workers, n)
				}
				for i := range want {
					if exact && p.c[i] != want[i] || !exact && math.Abs(float64(p.c[i])-float64(want[i])) > bound[i] {
						t.Fatalf("%s %s, %d workers: C[%d] = %v, one call gives %v", lib, s.name, workers, i, p.c[i], want[i])
					}
				}
			}
		}
	}
}

// columnInvariant reports whether the library computes p's columns alike in two calls
// on halves, split on a multiple of splitAlign as the backend splits, as in one call
// (want); the rows, for a product the backend splits by rows.
func columnInvariant(b *Backend, p product, want []float32) bool {
	q := p
	q.c = make([]float32, len(want))
	if byRows, _ := p.split(2); !byRows {
		mid, _ := chunk(p.n, splitAlign, 2, 1)
		b.cols(&q, 0, mid)
		b.cols(&q, mid, p.n)
	} else {
		mid, _ := chunk(p.m, splitAlign, 2, 1)
		b.rows(&q, 0, mid)
		b.rows(&q, mid, p.m)
	}
	return slices.Equal(q.c, want)
}

// roundingBound is, for each element of p's C, how far two float32 evaluations of its
// sum in any orders can differ: 2·γ_k·Σ|a||b|, γ_k = k·2⁻²⁴/(1 − k·2⁻²⁴).
func roundingBound(p product) []float64 {
	u := math.Ldexp(1, -24)
	gamma := float64(p.k) * u / (1 - float64(p.k)*u)
	out := make([]float64, p.m*p.n)
	for i := range p.m {
		for j := range p.n {
			s := 0.0
			for l := range p.k {
				ai, bi := i*p.lda+l, l*p.ldb+j
				if p.transA {
					ai = l*p.lda + i
				}
				if p.transB {
					bi = j*p.ldb + l
				}
				a, b := p.a[ai], p.b[bi]
				s += math.Abs(float64(a) * float64(b))
			}
			out[i*p.n+j] = 2 * gamma * s
		}
	}
	return out
}

// TestProductSplitDirection: a product is split along the longer of C's dimensions,
// so that the larger operand is packed once, and along the other only when the longer
// cannot give each worker two aligned blocks.
func TestProductSplitDirection(t *testing.T) {
	for _, tc := range []struct {
		m, n, k  int
		workers  int
		wantRows bool
		want     int
	}{
		{100, 1200, 784, 2, false, 2},   // a dense layer: batch × outputs
		{6272, 128, 1024, 2, true, 2},   // a convolution: pixels × channels
		{1024, 128, 6272, 2, true, 2},   // its weight gradient
		{3136, 1024, 128, 2, true, 2},   // a transposed convolution's columns
		{2000, 10, 784, 2, true, 2},     // too narrow for columns
		{40, 4000, 784, 3, false, 3},    // too short for rows
		{512, 512, 1024, 2, false, 2},   // square: columns, as before
		{64, 48, 64, 2, false, 1},       // too small to split
		{4096, 64, 4096, 4, true, 4},    // more workers
		{4096, 4096, 4096, 1, false, 1}, // one worker
	} {
		p := product{m: tc.m, n: tc.n, k: tc.k}
		if byRows, parts := p.split(tc.workers); byRows != tc.wantRows && parts > 1 || parts != tc.want {
			t.Errorf("%d×%d·%d×%d on %d workers: byRows %v, %d parts; want %v, %d",
				tc.m, tc.k, tc.k, tc.n, tc.workers, byRows, parts, tc.wantRows, tc.want)
		}
	}
}
