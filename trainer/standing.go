package trainer

import (
	"fmt"

	"github.com/gantrain/gantrain/backend"
	"github.com/gantrain/gantrain/config"
	"github.com/gantrain/gantrain/model"
	"github.com/gantrain/gantrain/rng"
)

// The moving average of G's parameters (train.g_ema) is a generator no training pass
// runs, so its batchnorm layers have no running statistics of their own: G's would
// normalise it by the statistics of other parameters. Before it draws samples with
// running statistics (train.sample_batchnorm: running), its statistics are set to the
// mean of the batch statistics of standBatches passes of a minibatch's size, on noise
// that is the same at every call.
const (
	standBatches = 32
	streamStand  = 1<<63 | 1<<41 // | batch index
)

// stander sets the running statistics of an averaged generator.
type stander struct {
	z    backend.Tensor
	pass *model.Pass
	cfg  config.Config
	at   int64 // the step the statistics are of (−1: none yet)
}

// newStander returns the stander of g, a generator with the parameters of the moving
// average, or nil when g needs none: it has no batchnorm layer, or it samples with
// batch statistics.
func newStander(b backend.Backend, g *model.Net, cfg config.Config) (*stander, error) {
	if !g.HasBatchNorm() || sampleMode(cfg) != model.Infer {
		return nil, nil
	}
	s := &stander{cfg: cfg, at: -1}
	var err error
	if s.z, err = b.Alloc(backend.F32, cfg.Train.Batch, cfg.Noise.Dim); err != nil {
		return nil, fmt.Errorf("standing statistics noise: %w", err)
	}
	if s.pass, err = g.NewPass(b, s.z, model.PassBuffers{}); err != nil {
		return nil, fmt.Errorf("standing statistics pass: %w", err)
	}
	return s, nil
}

// stand sets the statistics for the parameters of step step, unless they are of it
// already.
func (s *stander) stand(b backend.Backend, step int64) error {
	if s == nil || s.at == step {
		return nil
	}
	err := s.pass.StandStatistics(b, standBatches, func(k int) {
		fillNoise(b, s.z, s.cfg.Noise.Dist, rng.Stream{Seed: s.cfg.Train.Seed, Offset: streamStand | uint64(k)})
	})
	if err != nil {
		return err
	}
	s.at = step
	return nil
}

// forget drops the statistics' step, so that the next stand sets them again: the
// parameters were restored from a checkpoint.
func (s *stander) forget() {
	if s != nil {
		s.at = -1
	}
}
