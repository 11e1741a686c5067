//go:build !nocuda

package gpu_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/gantrain/gantrain/config"
	"github.com/gantrain/gantrain/data"
	"github.com/gantrain/gantrain/gpu"
	"github.com/gantrain/gantrain/trainer"
)

var benchSet *data.Set

// BenchmarkIteration times one iteration of Algorithm 1 (a D step and a G step) of the
// paper's MNIST nets on the GPU at batch 100 and 4096, in fp32 and tf32, with the
// launches queued one by one or replayed as step graphs (graph.go), reading the
// losses back every 100 iterations as a run logging them would. It reports
// iterations per second, then (without graphs) the device time per kernel over 50
// more iterations (CUDA events around each launch) and the launches per iteration.
func BenchmarkIteration(b *testing.B) {
	if benchSet == nil {
		benchSet = randomImages(50000, 3)
	}
	for _, batch := range []int{100, 4096} {
		for _, tf32 := range []bool{false, true} {
			for _, graphs := range []bool{false, true} {
				benchIteration(b, batch, tf32, graphs)
			}
		}
	}
}

func benchIteration(b *testing.B, batch int, tf32, graphs bool) {
	prec := "fp32"
	if tf32 {
		prec = "tf32"
	}
	name := fmt.Sprintf("batch=%d/%s", batch, prec)
	if graphs {
		name += "/graph"
	}
	b.Run(name, func(b *testing.B) {
		be := newGPUWith(b, gpu.Options{Device: deviceOrdinal(b), TF32: tf32, Graphs: graphs})
		cfg := config.Default()
		cfg.Train.Batch = batch
		tr, err := trainer.New(cfg, be, benchSet, quietLog())
		if err != nil {
			b.Fatal(err)
		}
		step := func(observe bool) {
			be.BeginStep()
			_, err := tr.Step(observe)
			if err2 := be.EndStep(); err == nil {
				err = err2
			}
			if err != nil {
				b.Fatal(err)
			}
		}
		for i := 0; i < 10; i++ { // warm up
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
		if graphs {
			b.Logf("%+v", be.GraphStats())
		} else {
			b.Log(kernelTable(b, be, tr, 50))
		}
	})
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
