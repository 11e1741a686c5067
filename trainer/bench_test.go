package trainer

import (
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"

	"github.com/gantrain/gantrain/config"
	"github.com/gantrain/gantrain/cpu"
	"github.com/gantrain/gantrain/data"
)

// randomImages is a stand-in training set of n 28×28 images in [0, 1].
func randomImages(n int) *data.Set {
	r := rand.New(rand.NewPCG(1, 1))
	x := make([]float32, n*784)
	for i := range x {
		x[i] = r.Float32()
	}
	return &data.Set{Name: "random", X: x, N: n, Dim: 784, Shape: data.Shape{H: 28, W: 28, C: 1}}
}

// BenchmarkIteration times one iteration of Algorithm 1 (one D step and one G step)
// of the paper's MNIST nets at batch 100 on the CPU backend, and reports ms/iter.
// GANTRAIN_THREADS sets the BLAS threads, GANTRAIN_BLAS the library. bench/cpu.sh
// compares the result with PyTorch.
func BenchmarkIteration(b *testing.B) {
	threads, _ := strconv.Atoi(os.Getenv("GANTRAIN_THREADS"))
	lib := os.Getenv("GANTRAIN_BLAS")
	if lib == "" {
		lib = "auto"
	}
	be, err := cpu.New(cpu.Options{BLAS: lib, Threads: threads})
	if err != nil {
		b.Fatal(err)
	}
	cfg := config.Default()
	tr, err := New(cfg, be, randomImages(5000), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("backend: %s, threads %d", be.Describe(), threads)
	for i := 0; i < 3; i++ { // warm up
		if _, err := tr.Step(false); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := tr.Step(i == b.N-1); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/iter")
}
