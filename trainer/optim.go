package trainer

import (
	"fmt"
	"math"

	"github.com/gantrain/gantrain/backend"
	"github.com/gantrain/gantrain/config"
	"github.com/gantrain/gantrain/model"
)

// optimizer updates one net's parameter arena from its gradient arena with one fused
// backend operation per step.
type optimizer struct {
	cfg   config.Optimizer
	net   *model.Net
	state []backend.Tensor // sgd: velocity; adam: first and second moments
	t     int              // updates applied so far
	scale float64          // learning-rate multiplier: 1, lowered by divergence rollbacks

	// avg is the exponential moving average of the parameters (nil: none kept), with
	// decay emaDecay per update; averaged is the net over it.
	avg       backend.Tensor
	emaDecay  float32
	emaWarmup bool
	averaged  *model.Net
}

// averaging is the moving average of a net's parameters an optimizer keeps: decay
// per update (0: none), with TensorFlow's warm-up or without.
type averaging struct {
	decay  float64
	warmup bool
}

// newOptimizer makes net's optimiser state and, when avg.decay > 0, a moving average
// of its parameters (which starts at the parameters: call startAverage once they are
// initialised).
func newOptimizer(b backend.Backend, cfg config.Optimizer, net *model.Net, avg averaging) (*optimizer, error) {
	o := &optimizer{cfg: cfg, net: net, scale: 1, emaDecay: float32(avg.decay), emaWarmup: avg.warmup}
	n := 1
	if cfg.Kind == config.OptimizerAdam {
		n = 2
	}
	for i := 0; i < n; i++ {
		s, err := b.Alloc(backend.F32, 1, net.Size())
		if err != nil {
			return nil, fmt.Errorf("%s optimiser state: %w", net.Name, err)
		}
		o.state = append(o.state, s)
	}
	if avg.decay > 0 {
		var err error
		if o.avg, err = b.Alloc(backend.F32, 1, net.Size()); err != nil {
			return nil, fmt.Errorf("%s parameter average: %w", net.Name, err)
		}
		if o.averaged, err = net.WithParams(b, o.avg); err != nil {
			return nil, err
		}
	}
	return o, nil
}

// startAverage sets the moving average to the current parameters.
func (o *optimizer) startAverage(b backend.Backend) {
	if o.avg != nil {
		b.Copy(o.avg, o.net.Params)
	}
}

// sampler is the net to draw samples from: the averaged one when kept.
func (o *optimizer) sampler() *model.Net {
	if o.averaged != nil {
		return o.averaged
	}
	return o.net
}

// arenas are what a checkpoint holds of this net: its parameters, then the optimiser
// state, with the suffix that names each in checkpoints ("" for the parameters).
func (o *optimizer) arenas() ([]backend.Tensor, []string) {
	names := []string{"", "velocity"}
	if o.cfg.Kind == config.OptimizerAdam {
		names = []string{"", "adam_m", "adam_v"}
	}
	arenas := append([]backend.Tensor{o.net.Params}, o.state...)
	if o.avg != nil {
		arenas, names = append(arenas, o.avg), append(names, suffixEMA)
	}
	return arenas, names
}

// suffixEMA names the moving average of a parameter in checkpoints.
const suffixEMA = "ema"

// lr is the learning rate of an update made at epoch progress (finished epochs plus
// the fraction of the current one): the paper's exponential decay per minibatch for
// SGD (0.1 / 1.000004^t, floored), constant for Adam, either times the linear anneal.
func (o *optimizer) lr(progress float64) float64 {
	lr := o.cfg.LR
	if o.cfg.Kind == config.OptimizerSGD {
		lr = math.Max(lr/math.Pow(o.cfg.LRDecay, float64(o.t)), o.cfg.LRFloor)
	}
	return o.scale * lr * o.cfg.Anneal(progress)
}

// momentum is SGD's momentum during the epoch after `finished` finished epochs, that
// is during epoch k = finished+1 counted from 1 as pylearn2's MomentumAdjustor counts
// (it runs once before the first epoch, then after each): the start value until
// epoch MomentumFrom, then linear to the end value at epoch MomentumUntil.
func (o *optimizer) momentum(finished int) float64 {
	c, k := o.cfg, finished+1
	if c.MomentumUntil <= c.MomentumFrom {
		if k >= c.MomentumUntil {
			return c.MomentumEnd
		}
		return c.MomentumStart
	}
	a := float64(k-c.MomentumFrom) / float64(c.MomentumUntil-c.MomentumFrom)
	a = math.Min(math.Max(a, 0), 1)
	return c.MomentumStart*(1-a) + c.MomentumEnd*a
}

// progress is when an update is made: the epochs finished, and the same with the
// fraction of the current epoch.
type progress struct {
	finished int
	epochs   float64
}

// step applies one update with the net's current gradients, then the net's weight
// constraints.
func (o *optimizer) step(b backend.Backend, at progress) {
	lr := float32(o.lr(at.epochs))
	o.t++
	switch o.cfg.Kind {
	case config.OptimizerSGD:
		b.SGDMomentum(o.net.Params, o.net.Grads, o.state[0], lr, float32(o.momentum(at.finished)))
	case config.OptimizerAdam:
		b.Adam(o.net.Params, o.net.Grads, o.state[0], o.state[1], lr,
			float32(o.cfg.Beta1), float32(o.cfg.Beta2), float32(o.cfg.Eps), o.t)
	}
	o.net.Constrain(b)
	if o.avg != nil {
		b.MovingAverage(o.avg, o.net.Params, o.averageDecay())
	}
}

// averageDecay is the moving average's decay for update o.t (counted from 1).
func (o *optimizer) averageDecay() float32 {
	if o.emaWarmup {
		return min(o.emaDecay, warmupDecay(o.t))
	}
	return o.emaDecay
}

// warmupDecay is (1+t)/(10+t) in float32.
func warmupDecay(t int) float32 { return float32((1 + float64(t)) / (10 + float64(t))) }
