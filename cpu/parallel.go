package cpu

import (
	"runtime"
	"sync"
)

// minParallel is the smallest elementwise job worth splitting across the workers:
// below it handing out the parts costs more than the memory traffic it hides.
const minParallel = 1 << 16

// pool is the backend's workers: goroutines started once with the backend, each
// waiting for its part of the next job, and the calling goroutine, which does part
// 0. One pool serves every operation (products included), so the step's threads are
// exactly these: no goroutine is started per operation and no BLAS thread pool spins
// beside them.
type pool struct {
	n    int
	work []chan func(part int) // one per worker goroutine (parts 1..n-1)
	wg   sync.WaitGroup
}

// newPool starts workers-1 goroutines (a pool of one worker starts none).
func newPool(workers int) *pool {
	p := &pool{n: max(workers, 1)}
	for part := 1; part < p.n; part++ {
		ch := make(chan func(int))
		p.work = append(p.work, ch)
		go func() {
			for job := range ch {
				job(part)
				p.wg.Done()
			}
		}()
	}
	return p
}

// run calls job(part) for every part in [0, parts) at once, one part per worker
// (parts ≤ p.n), and returns when all are done. It must not be called from a job.
func (p *pool) run(parts int, job func(part int)) {
	parts = min(parts, p.n)
	if parts <= 1 {
		job(0)
		return
	}
	p.wg.Add(parts - 1)
	for part := 1; part < parts; part++ {
		p.work[part-1] <- job
	}
	job(0)
	p.wg.Wait()
}

// close ends the worker goroutines; the pool then runs every job on the caller. The
// pool must be idle.
func (p *pool) close() {
	for _, ch := range p.work {
		close(ch)
	}
	p.work, p.n = nil, 1
}

// chunk is part's share [lo, hi) of [0, n) split into parts chunks whose starts are
// multiples of align (the last chunk takes the rest; a chunk may be empty).
func chunk(n, align, parts, part int) (lo, hi int) {
	size := (n + parts - 1) / parts
	size = (size + align - 1) / align * align
	lo, hi = min(part*size, n), min((part+1)*size, n)
	return lo, hi
}

// parallel runs body over [0, n) in contiguous chunks, one per worker, each chunk
// starting on a multiple of align elements (so that a chunk starts on an RNG block).
// Only for elementwise work: each element is computed alone, so the result does not
// depend on the split.
func (b *Backend) parallel(n, align int, body func(lo, hi int)) {
	parts := b.pool.n
	if n < minParallel {
		parts = 1
	}
	b.pool.run(parts, func(part int) {
		if lo, hi := chunk(n, align, parts, part); lo < hi {
			body(lo, hi)
		}
	})
}

// parallelRows runs body over the rows [0, rows) of a rows×cols job in chunks of
// whole rows, split as parallel splits elements.
func (b *Backend) parallelRows(rows, cols int, body func(r0, r1 int)) {
	parts := b.pool.n
	if rows*cols < minParallel {
		parts = 1
	}
	b.pool.run(parts, func(part int) {
		if r0, r1 := chunk(rows, 1, parts, part); r0 < r1 {
			body(r0, r1)
		}
	})
}

// defaultWorkers is one worker per CPU the Go scheduler may use.
func defaultWorkers() int { return runtime.GOMAXPROCS(0) }
