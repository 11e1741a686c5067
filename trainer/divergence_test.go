package trainer

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gantrain/gantrain/checkpoint"
	"github.com/gantrain/gantrain/config"
	"github.com/gantrain/gantrain/data"
)

// divergingRing is a ring config whose SGD (lr 10, momentum 0.99) turns the losses
// into NaN within tens of steps; a learning rate 1e4 times smaller trains.
func divergingRing(t *testing.T, action string, maxRollbacks int) (config.Config, *data.Set) {
	t.Helper()
	c := config.Default()
	config.RingDefaults(&c)
	c.Optimizer.Kind, c.Optimizer.LR = "sgd", 10
	c.Optimizer.MomentumStart, c.Optimizer.MomentumEnd = 0.99, 0.99
	c.Train.OnDivergence, c.Train.MaxRollbacks, c.Train.RollbackLRFactor = action, maxRollbacks, 0.01
	c.Train.Steps = 300
	c.Output.LogEvery, c.Output.SampleEvery, c.Output.CheckpointEvery = 10, 0, 100
	c.Output.Dir = t.TempDir()
	d := c.Data
	return c, data.Ring(d.RingPoints, d.RingModes, d.RingRadius, d.RingStd, c.Train.Seed)
}

func metricsSteps(t *testing.T, dir string) []int64 {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, "metrics.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var steps []int64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r struct{ Step int64 }
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		steps = append(steps, r.Step)
	}
	return steps
}

func TestDivergenceStops(t *testing.T) {
	c, set := divergingRing(t, "stop", 3)
	tr, err := New(c, newCPU(t), set, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	err = tr.Run(context.Background(), RunOptions{Dir: c.Output.Dir})
	if !errors.Is(err, ErrDiverged) || !strings.Contains(err.Error(), "is NaN") {
		t.Fatalf("Run: %v, want a divergence naming the NaN", err)
	}
	// No checkpoint of a diverged state: any checkpoint on disk is finite.
	list, _ := checkpoint.List(c.Output.Dir)
	for _, e := range list {
		f, err := checkpoint.ReadFile(e.Path, checkpoint.DecodeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := checkFinite(f); err != nil {
			t.Errorf("%s: %v", e.Path, err)
		}
	}
}

// With on_divergence: rollback the run goes back to its newest checkpoint with lower
// learning rates until it trains; its metrics log keeps only the path it took.
func TestDivergenceRollsBack(t *testing.T) {
	c, set := divergingRing(t, "rollback", 3)
	tr, err := New(c, newCPU(t), set, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.Run(context.Background(), RunOptions{Dir: c.Output.Dir}); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if tr.rollbacks < 1 || tr.step != 300 {
		t.Fatalf("%d rollbacks, step %d; want ≥ 1 and 300", tr.rollbacks, tr.step)
	}
	steps := metricsSteps(t, c.Output.Dir)
	for i := 1; i < len(steps); i++ {
		if steps[i] != steps[i-1]+10 {
			t.Fatalf("metrics steps not continuous after rollback: %v", steps)
		}
	}
	f, err := checkpoint.ReadFile(checkpoint.Path(c.Output.Dir, 300), checkpoint.DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if f.Metadata[metaRollbacks] != "2" || f.Metadata[metaLRScale] != "0.0001" {
		t.Errorf("checkpoint rollback state %s=%s %s=%s; want 2 and 0.0001 (this config diverges twice)",
			metaRollbacks, f.Metadata[metaRollbacks], metaLRScale, f.Metadata[metaLRScale])
	}
	// The rollback state survives a resume.
	again, err := New(c, newCPU(t), set, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	if err := again.Restore(f); err != nil {
		t.Fatal(err)
	}
	if again.optG.scale != 1e-4 || again.optD.lr(0) != tr.optD.lr(0) || again.rollbacks != 2 {
		t.Errorf("restored scale %v, lr %v (want %v), rollbacks %d", again.optG.scale, again.optD.lr(0), tr.optD.lr(0), again.rollbacks)
	}
}

func TestDivergenceGivesUp(t *testing.T) {
	c, set := divergingRing(t, "rollback", 1)
	tr, err := New(c, newCPU(t), set, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	err = tr.Run(context.Background(), RunOptions{Dir: c.Output.Dir})
	if !errors.Is(err, ErrDiverged) || !strings.Contains(err.Error(), "giving up after 1 rollbacks") {
		t.Fatalf("Run: %v, want giving up after 1 rollback", err)
	}
}
