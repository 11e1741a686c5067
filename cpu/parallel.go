package cpu

import (
	"runtime"
	"sync"
)

// minParallel is the smallest elementwise job worth splitting across goroutines:
// below it the goroutine start-up costs more than the memory traffic it hides.
const minParallel = 1 << 16

// parallel runs body over [0, n) in contiguous chunks, one per available CPU, each
// chunk a multiple of align elements (so that a chunk starts on an RNG block). Only
// for elementwise work: each element is computed alone, so the result does not
// depend on the split.
func parallel(n, align int, body func(lo, hi int)) {
	workers := runtime.GOMAXPROCS(0)
	if n < minParallel || workers < 2 {
		body(0, n)
		return
	}
	split(n, align, workers, body)
}

// split runs body over [0, n) in workers chunks aligned to align.
func split(n, align, workers int, body func(lo, hi int)) {
	if workers < 2 || n < 2 {
		body(0, n)
		return
	}
	chunk := (n + workers - 1) / workers
	chunk = (chunk + align - 1) / align * align
	var wg sync.WaitGroup
	lo := 0
	for ; lo+chunk < n; lo += chunk {
		wg.Add(1)
		go func(lo, hi int) {
			defer wg.Done()
			body(lo, hi)
		}(lo, lo+chunk)
	}
	body(lo, n) // the last chunk on the calling goroutine
	wg.Wait()
}

// parallelRows runs body over the rows [0, rows) of a rows×cols job in chunks of
// whole rows, split as parallel splits elements.
func parallelRows(rows, cols int, body func(r0, r1 int)) {
	if rows*cols < minParallel {
		body(0, rows)
		return
	}
	split(rows, 1, runtime.GOMAXPROCS(0), body)
}
