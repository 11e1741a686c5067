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
		if got := o.lr(); math.Abs(got-c.want) > 1e-12*c.want {
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
