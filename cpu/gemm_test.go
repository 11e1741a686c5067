package cpu

import (
	"math/rand/v2"
	"sync/atomic"
	"testing"
)

// The backend splits each product between its workers by blocks of columns (or
// rows) of C, one library call a block. That must not change a bit, for any number
// of workers: a run's results do not depend on the machine's core count.
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
					if p.c[i] != want[i] {
						t.Fatalf("%s %s, %d workers: C[%d] = %v, one call gives %v", lib, s.name, workers, i, p.c[i], want[i])
					}
				}
			}
		}
	}
}
