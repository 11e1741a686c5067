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
	chunk := (n + workers - 1) / workers
	chunk = (chunk + align - 1) / align * align
	var wg sync.WaitGroup
	for lo := 0; lo < n; lo += chunk {
		hi := min(lo+chunk, n)
		wg.Add(1)
		go func() {
			defer wg.Done()
			body(lo, hi)
		}()
	}
	wg.Wait()
}
