//go:build !nocuda

package gpu_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gantrain/gantrain/config"
	"github.com/gantrain/gantrain/data"
	"github.com/gantrain/gantrain/gpu"
	"github.com/gantrain/gantrain/trainer"
)

var benchSet *data.Set

// BenchmarkIteration times one iteration of Algorithm 1 (a D step and a G step) of the
// paper's MNIST nets on the GPU at batch 100, 1024 and 4096, in fp32 and tf32, reading
// the losses back every 100 iterations as a run logging them would:
//
//	batch=B/P               launched kernel by kernel, autotuned kernels; then the
//	                        device time per kernel over 50 more iterations (CUDA
//	                        events around each launch) and the launches per iteration
//	batch=B/P/graph         replayed as step graphs (graph.go), autotuned kernels; then
//	                        every matrix product's choice, time and TFLOP/s against
//	                        the card's peak for the precision
//	batch=B/P/graph/table   step graphs, the fixed table (--autotune=off)
//
// It reports iterations per second; GANTRAIN_BENCH_ONLY=batch=B/P/… runs one variant. The autotuner's cache is a file of the benchmark's
// own, so the first variant of a shape times the candidates and the others reuse them.
func BenchmarkIteration(b *testing.B) {
	if benchSet == nil {
		benchSet = randomImages(50000, 3)
	}
	cache := filepath.Join(b.TempDir(), "autotune.json")
	for _, batch := range []int{100, 1024, 4096} {
		for _, tf32 := range []bool{false, true} {
			cfg := config.Default()
			cfg.Train.Batch = batch
			benchIteration(b, "", cfg, tf32, false, true, cache)
			benchIteration(b, "", cfg, tf32, true, true, cache)
			benchIteration(b, "", cfg, tf32, true, false, cache)
		}
	}
}

// BenchmarkConvIteration times one iteration of the convolutional presets (G and D with
// batchnorm, Adam, the alternating update: a D step and a G step) on the GPU, in fp32
// and tf32, replayed as step graphs with autotuned kernels, reading the losses back
// every 100 iterations: dcgan-mnist at batch 64 (the preset's) and 512, and best (the
// dcgan-mnist nets with a dense hidden layer in each, and G's moving average) at the
// preset's batch:
//
//	net=N/batch=B/P/graph   iterations per second, then every matrix product's
//	                        choice (the convolutions' among them)
//
// GANTRAIN_BENCH_ONLY=net=N/batch=B/P/graph runs one variant. Only the step graphs are
// timed, to keep the GPU check short; bench/torch_dcgan.py --device cuda (--net best)
// times PyTorch on the same iterations.
func BenchmarkConvIteration(b *testing.B) {
	if benchSet == nil {
		benchSet = randomImages(50000, 3)
	}
	cache := filepath.Join(b.TempDir(), "autotune.json")
	for _, v := range []struct {
		preset  string
		batches []int // none: the preset's own
	}{
		{"dcgan-mnist", []int{64, 512}},
		{"best", nil},
	} {
		cfg := config.Default()
		if err := config.ApplyPreset(&cfg, v.preset); err != nil {
			b.Fatal(err)
		}
		batches := v.batches
		if batches == nil {
			batches = []int{cfg.Train.Batch}
		}
		for _, batch := range batches {
			cfg.Train.Batch = batch
			for _, tf32 := range []bool{false, true} {
				benchIteration(b, "net="+v.preset+"/", cfg, tf32, true, true, cache)
			}
		}
	}
}

// benchIteration runs one variant of a benchmark: cfg's iteration at cfg.Train.Batch,
// named prefix+"batch=B/P[/graph][/table]".
func benchIteration(b *testing.B, prefix string, cfg config.Config, tf32, graphs, autotune bool, cache string) {
	prec := "fp32"
	if tf32 {
		prec = "tf32"
	}
	name := fmt.Sprintf("%sbatch=%d/%s", prefix, cfg.Train.Batch, prec)
	if graphs {
		name += "/graph"
	}
	if !autotune {
		name += "/table"
	}
	// GANTRAIN_BENCH_ONLY names the one variant to run: -test.bench cannot exclude a
	// variant whose name is a prefix of the one wanted (batch=100/tf32 runs, and
	// autotunes, before batch=100/tf32/graph/table), which a profiler would see first.
	if only := os.Getenv("GANTRAIN_BENCH_ONLY"); only != "" && only != name {
		return
	}
	b.Run(name, func(b *testing.B) {
		opt := gpu.Options{Device: deviceOrdinal(b), TF32: tf32, Graphs: graphs, Autotune: autotune}
		if autotune {
			opt.TuneCache = cache
		}
		be := newGPUWith(b, opt)
		tr, err := trainer.New(cfg, be, benchSet, quietLog())
		if err != nil {
			b.Fatal(err)
		}
		step := func(observe bool) {
			if _, err := tr.Step(observe); err != nil {
				b.Fatal(err)
			}
		}
		for i := 0; i < 10; i++ { // warm up (and autotune)
			step(i == 9)
		}
		if err := be.Sync(); err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			step(i%100 == 99 || i == b.N-1)
		}
		if err := be.Sync(); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "it/s")
		b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/it")
		switch {
		case graphs && autotune:
			b.Logf("%+v", be.GraphStats())
			b.Log(choiceTable(name, be, tf32))
		case !graphs:
			b.Log(kernelTable(b, be, tr, 50))
		}
	})
}

// choiceTable lists the matrix products the backend chose kernels for, with the chosen
// candidate's time (as the autotuner measured it) and rate against the card's peak;
// each row names the benchmark, for scripts/gpu-bench-table.py.
func choiceTable(name string, be *gpu.Backend, tf32 bool) string {
	info := be.DeviceInfo()
	peak := info.PeakTFLOPs(tf32)
	var sb strings.Builder
	fmt.Fprintf(&sb, "matrix products of %s (peak %.1f TFLOP/s at %d MHz):\n", name, peak, info.ClockKHz/1000)
	for _, c := range be.KernelChoices() {
		tf := c.Problem.FLOPs() / c.Micros / 1e6
		fmt.Fprintf(&sb, "  gemm[%s] %-42s | %-30s | %-6s | %9.1f µs | %7.2f TFLOP/s | %5.1f%% of peak\n",
			name, c.Problem, c.Choice, c.Source, c.Micros, tf, 100*tf/peak)
	}
	return sb.String()
}

// kernelTable times n iterations kernel by kernel.
func kernelTable(b *testing.B, be *gpu.Backend, tr *trainer.Trainer, n int) string {
	if err := be.EnableTiming(true); err != nil {
		b.Fatal(err)
	}
	defer be.EnableTiming(false)
	for i := 0; i < n; i++ {
		if _, err := tr.Step(false); err != nil {
			b.Fatal(err)
		}
	}
	times, err := be.KernelTimes()
	if err != nil {
		b.Fatal(err)
	}
	var sb strings.Builder
	var total float64
	launches := 0
	for _, k := range times {
		total += k.Millis
		launches += k.Launches
	}
	fmt.Fprintf(&sb, "%s; device time per iteration %.3f ms in %.1f launches:\n", be.Describe(), total/float64(n), float64(launches)/float64(n))
	fmt.Fprintf(&sb, "  %-34s %9s %12s %7s\n", "kernel", "launches", "µs/it", "share")
	for _, k := range times {
		fmt.Fprintf(&sb, "  %-34s %9d %12.1f %6.1f%%\n", k.Kernel, k.Launches, 1000*k.Millis/float64(n), 100*k.Millis/total)
	}
	return sb.String()
}
