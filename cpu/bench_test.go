package cpu

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/gantrain/gantrain/backend"
	"github.com/gantrain/gantrain/rng"
)

// BenchmarkElementwise times the operations around the products of the paper's
// step, on the shapes of that step (batch 100, and 500 for maxout), and batchnorm on
// the dcgan-mnist step's, on one thread (GANTRAIN_THREADS sets others): the work the
// products' library does not do.
// ns/elem is per element of the largest operand.
func BenchmarkElementwise(b *testing.B) {
	be := benchBackend(b, 1)
	r := rand.New(rand.NewPCG(5, 6))
	newT := func(rows, cols int) backend.Tensor {
		t, err := be.Alloc(backend.F32, rows, cols)
		if err != nil {
			b.Fatal(err)
		}
		for i := range t.(*tensor).f {
			t.(*tensor).f[i] = r.Float32()*2 - 1
		}
		return t
	}
	index := func(rows, cols int) backend.Tensor {
		t, err := be.Alloc(backend.I32, rows, cols)
		if err != nil {
			b.Fatal(err)
		}
		return t
	}
	s := rng.Stream{Seed: 1, Offset: 2}
	type bench struct {
		name  string
		elems int
		run   func()
	}
	var list []bench
	{
		y, m, x := newT(200, 784), newT(200, 784), newT(200, 784)
		list = append(list, bench{"Dropout/200×784", 200 * 784, func() { be.Dropout(y, m, x, 0.8, s) }})
	}
	{
		y, arg, m, z := newT(1000, 240), index(1000, 240), newT(1000, 240), newT(1000, 1200)
		list = append(list, bench{"MaxoutDropout/1000×1200", 1000 * 1200, func() { be.MaxoutDropout(y, arg, m, z, 5, 0.5, s) }})
	}
	{
		y, arg, m, z := newT(200, 240), index(200, 240), newT(200, 240), newT(200, 1200)
		list = append(list, bench{"MaxoutDropout/200×1200", 200 * 1200, func() { be.MaxoutDropout(y, arg, m, z, 5, 0.5, s) }})
		dz := newT(200, 1200)
		list = append(list, bench{"MaxoutDropoutBackward/200×1200", 200 * 1200, func() { be.MaxoutDropoutBackward(dz, y, m, arg, 5) }})
	}
	{
		z := newT(64, 100)
		list = append(list, bench{"Normal/64×100", 64 * 100, func() { be.Normal(z, 0, 1, s) }})
	}
	{
		p, g, v := newT(1, 2503984), newT(1, 2503984), newT(1, 2503984)
		list = append(list, bench{"SGDMomentum/2503984", 2503984, func() { be.SGDMomentum(p, g, v, 0.1, 0.5) }})
	}
	for _, act := range []backend.Act{{Kind: backend.ReLU}, {Kind: backend.Sigmoid}} {
		z, bias := newT(100, 784), newT(1, 784)
		zf, bf := z.(*tensor).f, bias.(*tensor).f
		list = append(list, bench{fmt.Sprintf("biasActivate %s/100×784", act.Kind), 100 * 784, func() {
			for r := 0; r < 100; r++ {
				biasActivate(zf[r*784:(r+1)*784], bf, act)
			}
		}})
		y, dy := newT(100, 784), newT(100, 784)
		list = append(list, bench{fmt.Sprintf("activationGrad %s/100×784", act.Kind), 100 * 784, func() {
			activationGrad(dy.(*tensor).f, y.(*tensor).f, act)
		}})
	}
	{
		dy := newT(200, 1200)
		sum := make([]float32, 1200)
		list = append(list, bench{"columnSums/200×1200", 200 * 1200, func() { be.columnSums(sum, dy.(*tensor).f, 200, 1200) }})
	}
	// Batchnorm on the dcgan-mnist step's largest shapes: G's 14×14×64 layer at batch
	// 64 and D's 7×7×128 layer on the real and generated halves.
	for _, bn := range []struct {
		rows, cols, groups int
		act                backend.Act
	}{
		{12544, 64, 1, backend.Act{Kind: backend.ReLU}},
		{6272, 128, 2, backend.Act{Kind: backend.LeakyReLU, Alpha: 0.2}},
	} {
		n, g := bn.cols, bn.groups
		x, y, dx, dy := newT(bn.rows, n), newT(bn.rows, n), newT(bn.rows, n), newT(bn.rows, n)
		gamma, beta, dgamma, dbeta := newT(1, n), newT(1, n), newT(1, n), newT(1, n)
		mean, variance, runMean, runVar := newT(g, n), newT(g, n), newT(1, n), newT(1, n)
		shape := fmt.Sprintf("%d×%d/groups=%d", bn.rows, n, g)
		list = append(list,
			bench{"BatchNorm/" + shape, bn.rows * n, func() {
				be.BatchNorm(y, mean, variance, x, gamma, beta, runMean, runVar, g, 1e-5, 0.1, bn.act)
			}},
			bench{"BatchNormBackward/" + shape, bn.rows * n, func() {
				be.BatchNormBackward(dx, dgamma, dbeta, dy, x, y, gamma, mean, variance, g, 1e-5, bn.act)
			}})
	}
	for _, c := range list {
		b.Run(c.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				c.run()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(c.elems), "ns/elem")
		})
	}
}

// BenchmarkColumnBlocks times one elementwise pass (the ReLU gradient, in place) over
// rows×cols matrices of 1.6 M elements three ways: split between the workers
// (GANTRAIN_THREADS, default 2) by rows; by blocks of columns, each worker taking its
// block of every row, as a column sum must split to keep its bits; and on one worker.
// A narrow block strides through memory: where the column split is slower than one
// worker, columnParts gives the job to one worker (blocks narrower than columnBlock).
func BenchmarkColumnBlocks(b *testing.B) {
	be := benchBackend(b, 2)
	const total = 25088 * 64
	r := rand.New(rand.NewPCG(5, 6))
	dy, y := make([]float32, total), make([]float32, total)
	for i := range dy {
		dy[i], y[i] = r.Float32()*2-1, r.Float32()*2-1
	}
	relu := backend.Act{Kind: backend.ReLU}
	for _, cols := range []int{64, 128, 512, 1024, 2048, 6272} {
		rows := total / cols
		parts := min(be.pool.n, cols/splitAlign)
		b.Run(fmt.Sprintf("%d×%d", rows, cols), func(b *testing.B) {
			var byRows, byCols, one time.Duration
			for i := 0; i < b.N; i++ {
				t0 := time.Now()
				activationGrad(dy, y, relu)
				one += time.Since(t0)
				t0 = time.Now()
				be.parallelRows(rows, cols, func(r0, r1 int) {
					activationGrad(dy[r0*cols:r1*cols], y[r0*cols:r1*cols], relu)
				})
				t1 := time.Now()
				be.pool.run(parts, func(part int) {
					c0, c1 := chunk(cols, splitAlign, parts, part)
					for r := 0; r < rows; r++ {
						activationGrad(dy[r*cols+c0:r*cols+c1], y[r*cols+c0:r*cols+c1], relu)
					}
				})
				byRows, byCols = byRows+t1.Sub(t0), byCols+time.Since(t1)
			}
			per := float64(b.N) * total
			b.ReportMetric(float64(byRows.Nanoseconds())/per, "ns/elem-by-rows")
			b.ReportMetric(float64(byCols.Nanoseconds())/per, "ns/elem-by-columns")
			b.ReportMetric(float64(one.Nanoseconds())/per, "ns/elem-one-worker")
			b.ReportMetric(float64(byCols)/float64(one), "columns/one-worker")
		})
	}
}

// benchBackend is a backend with the pure-Go products on GANTRAIN_THREADS workers
// (threads when unset), closed when the benchmark ends.
func benchBackend(b *testing.B, threads int) *Backend {
	if v := os.Getenv("GANTRAIN_THREADS"); v != "" {
		threads, _ = strconv.Atoi(v)
	}
	be, err := New(Options{BLAS: "go", Threads: threads})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { be.Close() })
	return be
}
