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
		sh := newShim(t, kernels.Target{SMs: 132, MaxSharedBytes: 227 << 10})
		counts := map[string]int{}
		total := 0
		sh.Core.Launch = func(op string, ls []kernels.Launch) { // count only: the shim would take minutes
			for _, l := range ls {
				counts[l.Kernel]++
				total++
			}
		}
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
		var sb strings.Builder
		for _, k := range slices.Sorted(maps.Keys(counts)) {
			sb.WriteString(" " + k + "×" + strconv.Itoa(counts[k]))
		}
		t.Logf("%s update: %d launches:%s", update, total, sb.String())
		for _, k := range []string{"matmul_splitk_reduce_bias_act", "sum_partials_to_slot", "bias_grad_reduce"} {
			if counts[k] > 0 {
				t.Errorf("%s update: %d launches of %s", update, counts[k], k)
			}
		}
	}
}
