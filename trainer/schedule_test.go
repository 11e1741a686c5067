package trainer

import (
	"math"
	"testing"

	"github.com/gantrain/gantrain/config"
)

// The SGD schedule of the paper's configuration, as pylearn2 ran it: the learning rate
// 0.1/1.000004^t before update t+1 (ExponentialDecay after each minibatch), floored at
// 1e-6; the momentum of MomentumAdjustor(start 1, saturate 250), whose count is 1
// during the first epoch: 0.5 + 0.2·(k − 1)/249 during epoch k, 0.7 from epoch 250.
func TestSGDSchedule(t *testing.T) {
	o := &optimizer{cfg: config.Default().Optimizer, scale: 1}
	for _, c := range []struct {
		finished int // epochs finished
		want     float64
	}{
		{0, 0.5},
		{1, 0.5 + 0.2/249},
		{2, 0.5 + 0.4/249},
		{124, 0.5 + 0.2*124/249},
		{248, 0.7 - 0.2/249},
		{249, 0.7},
		{1000, 0.7},
	} {
		if got := o.momentum(c.finished); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("momentum after %d finished epochs = %.12f, want %.12f", c.finished, got, c.want)
		}
	}
	for _, c := range []struct {
		updates int
		want    float64
	}{
		{0, 0.1},
		{1, 0.1 / 1.000004},
		{75000, 0.1 / math.Pow(1.000004, 75000)}, // epoch 150: 0.0741
		{5_000_000, 1e-6},                        // 0.1/e^20 < 1e-6: the floor
	} {
		o.t = c.updates
		if got := o.lr(0); math.Abs(got-c.want) > 1e-12*c.want {
			t.Errorf("learning rate after %d updates = %.12g, want %.12g", c.updates, got, c.want)
		}
	}

	// A step schedule (from = until): the end value from that epoch on.
	o.cfg.MomentumFrom, o.cfg.MomentumUntil = 3, 3
	for finished, want := range []float64{0.5, 0.5, 0.7, 0.7} {
		if got := o.momentum(finished); got != want {
			t.Errorf("step schedule at 3: momentum after %d finished epochs = %v, want %v", finished, got, want)
		}
	}
}

// The linear anneal scales either optimiser's rate: 1 to its start, falling linearly
// to 0 at its end, 0 after; with the SGD decay and a rollback's scale on top.
func TestAnneal(t *testing.T) {
	sgd := config.Default().Optimizer
	adam := config.Optimizer{Kind: config.OptimizerAdam, LR: 2e-4, Beta1: 0.5, Beta2: 0.999, Eps: 1e-8}
	for _, c := range []struct {
		name     string
		cfg      config.Optimizer
		from, n  int
		t        int
		scale    float64
		progress float64
		want     float64
	}{
		{"adam, no anneal", adam, 0, 0, 10, 1, 500, 2e-4},
		{"adam, before", adam, 10, 4, 10, 1, 9.5, 2e-4},
		{"adam, at the start", adam, 10, 4, 10, 1, 10, 2e-4},
		{"adam, a quarter in", adam, 10, 4, 10, 1, 11, 1.5e-4},
		{"adam, three quarters in", adam, 10, 4, 10, 1, 13, 0.5e-4},
		{"adam, at the end", adam, 10, 4, 10, 1, 14, 0},
		{"adam, after", adam, 10, 4, 10, 1, 20, 0},
		{"adam, from the first epoch", adam, 0, 8, 10, 1, 2, 1.5e-4},
		{"adam, halved by a rollback", adam, 10, 4, 10, 0.5, 12, 0.5e-4},
		{"sgd, with its decay", sgd, 100, 100, 75000, 1, 150, 0.5 * 0.1 / math.Pow(1.000004, 75000)},
		{"sgd, on its floor", sgd, 0, 10, 5_000_000, 1, 9, 0.1 * 1e-6},
	} {
		c.cfg.AnnealFrom, c.cfg.AnnealEpochs = c.from, c.n
		o := &optimizer{cfg: c.cfg, scale: c.scale, t: c.t}
		if got := o.lr(c.progress); math.Abs(got-c.want) > 1e-12*c.want {
			t.Errorf("%s: lr at epoch %v = %.12g, want %.12g", c.name, c.progress, got, c.want)
		}
	}
}
