// Command peak measures the single-precision FMA peak of this machine: a loop of
// independent vector FMAs (no memory traffic) on one thread and on every thread at
// once. bench/cpu.sh divides the achieved GFLOP/s of a training iteration by it.
//
//	go run ./bench/peak [-threads N]
//
// It prints one line per vector width, e.g.
//
//	peak AVX-512 one_thread_gflops=108.2 all_threads_gflops=215.9 threads=2
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"sync"
	"time"
)

// kernel is an FMA loop: run(n) does n iterations of flops float32 operations.
type kernel struct {
	name  string
	flops float64
	run   func(n int64)
}

func main() {
	threads := flag.Int("threads", runtime.GOMAXPROCS(0), "threads for the all-threads figure")
	flag.Parse()
	if *threads < 1 {
		fmt.Fprintf(os.Stderr, "peak: -threads must be ≥ 1, got %d\n", *threads)
		os.Exit(2)
	}
	ks := kernels()
	if len(ks) == 0 {
		fmt.Fprintf(os.Stderr, "peak: no FMA kernel for %s/%s\n", runtime.GOOS, runtime.GOARCH)
		os.Exit(1)
	}
	for _, k := range ks {
		fmt.Printf("peak %s one_thread_gflops=%.1f all_threads_gflops=%.1f threads=%d\n",
			k.name, best(k, 1), best(k, *threads), *threads)
	}
}

// best is the highest rate, in GFLOP/s, of five runs of about 0.1 s each on threads
// threads, each locked to its own OS thread.
func best(k kernel, threads int) float64 {
	const n = 20_000_000 // ~0.1 s a thread at 100 GFLOP/s (AVX-512)
	top := 0.0
	for range 5 {
		var wg sync.WaitGroup
		start := time.Now()
		for range threads {
			wg.Go(func() {
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
				k.run(n)
			})
		}
		wg.Wait()
		top = max(top, k.flops*n*float64(threads)/time.Since(start).Seconds()/1e9)
	}
	return top
}
