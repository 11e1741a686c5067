//go:build cgo

package ops_test

import (
	"io"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/gantrain/gantrain/config"
	"github.com/gantrain/gantrain/data"
	"github.com/gantrain/gantrain/kernels"
	"github.com/gantrain/gantrain/trainer"
)

// TestLaunchesPerStep counts the kernel launches of one step of the paper's nets at
// batch 100 on an H100-sized plan (what a step graph holds), and checks that none is a
// second reduction pass: the matrix products finish their split-K sums in the last
// block, the losses and the bias gradients reduce in one launch at this size.
func TestLaunchesPerStep(t *testing.T) {
	for _, update := range []string{"alternating", "simultaneous"} {
		cfg := config.Default()
		cfg.Train.Update = update
		counts, total := launchesPerStep(t, cfg)
		t.Logf("%s update: %d launches:%s", update, total, listLaunches(counts))
		for _, k := range []string{"matmul_splitk_reduce_bias_act", "sum_partials_to_slot", "bias_grad_reduce"} {
			if counts[k] > 0 {
				t.Errorf("%s update: %d launches of %s", update, counts[k], k)
			}
		}
	}
}

// TestFusedMaxoutLaunches: with the maxout and dropout in the products' epilogues (a
// chooser that takes the fused candidates), the paper's alternating step loses its 4
// maxout+dropout launches (D's two layers, in the D step and in the G step) and gains
// none.
func TestFusedMaxoutLaunches(t *testing.T) {
	cfg := config.Default()
	d := kernels.Target{SMs: 132, MaxSharedBytes: 227 << 10}
	plain, total := launchesPerStepOn(t, cfg, d)
	d.Gemm = fusedFirst{d}
	fused, fusedTotal := launchesPerStepOn(t, cfg, d)
	t.Logf("fused: %d launches:%s", fusedTotal, listLaunches(fused))
	if plain["maxout_dropout_forward"] != 4 || fused["maxout_dropout_forward"] != 0 || fusedTotal != total-4 {
		t.Errorf("maxout_dropout_forward %d → %d, launches %d → %d; want 4 → 0 and 4 fewer",
			plain["maxout_dropout_forward"], fused["maxout_dropout_forward"], total, fusedTotal)
	}
}

// TestConvLaunchesPerStep lists the kernel launches of one step of --preset dcgan-mnist
// (the alternating update, batch 64) on an H100-sized plan: what its step graph holds.
// Every convolution is an im2col or a col2im beside a matrix product, and each of the
// three batchnorm layers (G's two, D's one) runs its statistics and its backward.
func TestConvLaunchesPerStep(t *testing.T) {
	cfg := config.Default()
	if err := config.ApplyPreset(&cfg, "dcgan-mnist"); err != nil {
		t.Fatal(err)
	}
	counts, total := launchesPerStep(t, cfg)
	t.Logf("dcgan-mnist, batch %d: %d launches:%s", cfg.Train.Batch, total, listLaunches(counts))
	for _, k := range []string{"im2col_nhwc", "col2im_nhwc", "batchnorm_stats_partial", "batchnorm_forward_apply",
		"batchnorm_backward_partial", "batchnorm_backward_apply"} {
		if counts[k] == 0 {
			t.Errorf("no launch of %s", k)
		}
	}
}

// launchesPerStep counts the launches of cfg's second step on the shim's Core (the
// kernels do not run: the shim would take minutes), by kernel, and in all.
func launchesPerStep(t *testing.T, cfg config.Config) (map[string]int, int) {
	t.Helper()
	return launchesPerStepOn(t, cfg, kernels.Target{SMs: 132, MaxSharedBytes: 227 << 10})
}

func launchesPerStepOn(t *testing.T, cfg config.Config, d kernels.Target) (map[string]int, int) {
	t.Helper()
	sh := newShim(t, d)
	counts := map[string]int{}
	total := 0
	sh.Core.Launch = func(op string, ls []kernels.Launch) {
		for _, l := range ls {
			counts[l.Kernel]++
			total++
		}
	}
	// 300 images: an epoch of more than two steps at batch 64 and 100, so the step counted
	// uploads no new order.
	set := &data.Set{Name: "random", N: 300, Dim: 784, Shape: data.Shape{H: 28, W: 28, C: 1}, X: make([]float32, 300*784)}
	tr, err := trainer.New(cfg, sh, set, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Step(false); err != nil {
		t.Fatal(err)
	}
	total = 0
	clear(counts)
	if _, err := tr.Step(false); err != nil {
		t.Fatal(err)
	}
	return counts, total
}

// listLaunches is " kernel×count" for each kernel, in name order.
func listLaunches(counts map[string]int) string {
	var sb strings.Builder
	for _, k := range slices.Sorted(maps.Keys(counts)) {
		sb.WriteString(" " + k + "×" + strconv.Itoa(counts[k]))
	}
	return sb.String()
}
