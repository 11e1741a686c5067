package cpu

import (
	"runtime"
	"sync/atomic"
	"time"
)

// minParallel is the smallest elementwise job worth splitting across the workers:
// below it handing out the parts costs more than the memory traffic it hides.
const minParallel = 1 << 16

// spinFor is how long a worker out of work, or a caller waiting for its workers,
// polls before it sleeps. The operations of a step follow each other within tens of
// microseconds; waking a sleeping thread costs about that much again on a virtual
// machine, and a step hands out about a hundred jobs.
const spinFor = 200 * time.Microsecond

// pool is the backend's workers: goroutines started once with the backend, each
// waiting for its part of the next job, and the calling goroutine, which does part
// 0. One pool serves every operation (products included), so the step's threads are
// exactly these: no goroutine is started per operation and no BLAS thread pool
// competes with them.
type pool struct {
	n       int
	workers []*worker    // parts 1..n-1
	pending atomic.Int32 // worker parts of the current job not yet done
	waiting atomic.Bool  // the caller sleeps until pending is 0
	done    chan struct{}
	closed  atomic.Bool
}

// worker is one goroutine of the pool.
type worker struct {
	job      atomic.Pointer[func(part int)]
	sleeping atomic.Bool
	wake     chan struct{}
}

// newPool starts workers-1 goroutines (a pool of one worker starts none).
func newPool(workers int) *pool {
	p := &pool{n: max(workers, 1), done: make(chan struct{}, 1)}
	for part := 1; part < p.n; part++ {
		w := &worker{wake: make(chan struct{}, 1)}
		p.workers = append(p.workers, w)
		go func() {
			for {
				job := w.next(&p.closed)
				if job == nil {
					return
				}
				(*job)(part)
				if p.pending.Add(-1) == 0 && p.waiting.Load() {
					signal(p.done)
				}
			}
		}()
	}
	return p
}

// signal leaves a token in ch (buffered, size 1) unless one is there.
func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// spin calls ready until it reports true or spinFor has passed, and says which.
func spin(ready func() bool) bool {
	start := time.Now()
	for i := 1; ; i++ {
		if ready() {
			return true
		}
		if i%64 == 0 {
			if time.Since(start) > spinFor {
				return false
			}
			runtime.Gosched()
		}
	}
}

// next waits for the worker's next job: nil when the pool is closed. A token left
// in wake by an earlier hand-over only costs one more look.
func (w *worker) next(closed *atomic.Bool) *func(int) {
	var job *func(int)
	take := func() bool {
		if w.job.Load() == nil {
			return false
		}
		job = w.job.Swap(nil)
		return job != nil
	}
	if spin(take) {
		return job
	}
	for {
		// Announce the sleep, then look once more: a job handed over before the
		// announcement is seen here, one after it comes with a token.
		w.sleeping.Store(true)
		if take() {
			w.sleeping.Store(false)
			return job
		}
		if closed.Load() {
			return nil
		}
		<-w.wake
		w.sleeping.Store(false)
		if take() {
			return job
		}
	}
}

// give hands job to the worker.
func (w *worker) give(job *func(int)) {
	w.job.Store(job)
	if w.sleeping.Load() {
		signal(w.wake)
	}
}

// run calls job(part) for every part in [0, parts) at once, one part per worker
// (parts ≤ p.n), and returns when all are done. It must not be called from a job.
func (p *pool) run(parts int, job func(part int)) {
	parts = min(parts, p.n)
	if parts <= 1 {
		job(0)
		return
	}
	p.pending.Store(int32(parts - 1))
	for _, w := range p.workers[:parts-1] {
		w.give(&job)
	}
	job(0)
	idle := func() bool { return p.pending.Load() == 0 }
	if spin(idle) {
		return
	}
	for {
		p.waiting.Store(true)
		if idle() {
			p.waiting.Store(false)
			return
		}
		<-p.done
		p.waiting.Store(false)
		if idle() {
			return
		}
	}
}

// close ends the worker goroutines; the pool then runs every job on the caller. The
// pool must be idle.
func (p *pool) close() {
	p.closed.Store(true)
	for _, w := range p.workers {
		signal(w.wake)
	}
	p.workers, p.n = nil, 1
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
	b.parallelWork(n, n, align, body)
}

// parallelWork is parallel for elements that cost more (or less) than one memory
// pass each: work is the whole job's cost counted in such passes (e.g. n·pieces for
// maxout, or a share of a Philox block per element), and decides whether splitting
// pays.
func (b *Backend) parallelWork(n, work, align int, body func(lo, hi int)) {
	parts := b.pool.n
	if work < minParallel {
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
	b.parallelWork(rows, rows*cols, 1, body)
}

// defaultWorkers is one worker per CPU the Go scheduler may use.
func defaultWorkers() int { return runtime.GOMAXPROCS(0) }
