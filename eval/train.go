package eval

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/gantrain/gantrain/backend"
	"github.com/gantrain/gantrain/data"
	"github.com/gantrain/gantrain/model"
	"github.com/gantrain/gantrain/rng"
)

// Random stream offsets of classifier training (seeded by TrainOptions.Seed).
const (
	streamInit    = 1<<62 | 1<<40 // | net index
	streamOrder   = 1<<62 | 2<<40 // | epoch
	streamDropout = 1<<62 | 3<<40 // | step<<8 | net<<4 (| layer, added by Pass.Forward)
)

// TrainOptions configure TrainClassifier.
type TrainOptions struct {
	Arch   ClassifierArch // zero: MNISTClassifierArch
	Seed   uint64
	Epochs int     // passes over the training set (default 20)
	Batch  int     // minibatch size (default 100)
	LR     float64 // Adam's initial learning rate (default 1e-3), cosine-decayed to 0 over the run
	// Progress, when set, is called after every epoch.
	Progress func(EpochReport)
}

// EpochReport is one epoch of classifier training.
type EpochReport struct {
	Epoch         int           `json:"epoch"`
	Loss          float64       `json:"loss"` // mean training cross-entropy (dropout on)
	ValidAccuracy float64       `json:"valid_accuracy"`
	Elapsed       time.Duration `json:"-"`
}

// TrainReport is the outcome of TrainClassifier.
type TrainReport struct {
	Epochs        int           `json:"epochs"`
	FinalLoss     float64       `json:"final_loss"`
	ValidAccuracy float64       `json:"valid_accuracy"`
	TestAccuracy  float64       `json:"test_accuracy"`
	Duration      time.Duration `json:"-"`
}

// TrainClassifier trains a classifier on splits.Train by minibatch Adam on the
// softmax cross-entropy, with the backend's fused operations (the training set is
// resident in the backend; a step gathers its minibatch by the epoch's permutation),
// and reports its accuracy on splits.Valid and splits.Test. Every random draw
// (initial weights, data order, dropout) is a function of the seed.
func TrainClassifier(ctx context.Context, b backend.Backend, splits *data.Splits, opt TrainOptions) (*Classifier, TrainReport, error) {
	if opt.Arch.In == 0 {
		opt.Arch = MNISTClassifierArch()
	}
	if opt.Epochs == 0 {
		opt.Epochs = 20
	}
	if opt.Batch == 0 {
		opt.Batch = 100
	}
	if opt.LR == 0 {
		opt.LR = 1e-3
	}
	var rep TrainReport
	if splits == nil || splits.Train == nil || splits.Valid == nil || splits.Test == nil {
		return nil, rep, fmt.Errorf("classifier training: need train, validation and test sets")
	}
	train := splits.Train
	if opt.Epochs < 1 || opt.Batch < 1 || opt.Batch > train.N || !(opt.LR > 0) {
		return nil, rep, fmt.Errorf("classifier training: epochs %d, batch %d (of %d examples), lr %g: want epochs ≥ 1, 1 ≤ batch ≤ examples, lr > 0",
			opt.Epochs, opt.Batch, train.N, opt.LR)
	}
	for _, s := range []*data.Set{train, splits.Valid, splits.Test} {
		if s.Dim != opt.Arch.In || len(s.Labels) != s.N || s.N == 0 {
			return nil, rep, fmt.Errorf("classifier training: %s has %d examples of %d features and %d labels, want %d features with labels",
				s.Name, s.N, s.Dim, len(s.Labels), opt.Arch.In)
		}
		for i, l := range s.Labels {
			if int(l) >= opt.Arch.Classes {
				return nil, rep, fmt.Errorf("classifier training: %s label %d at %d out of range for %d classes", s.Name, l, i, opt.Arch.Classes)
			}
		}
	}
	start := time.Now()
	c, err := NewClassifier(b, opt.Arch)
	if err != nil {
		return nil, rep, err
	}
	if err := c.Init(opt.Seed); err != nil {
		return nil, rep, err
	}
	m := opt.Batch
	alloc := func(dt backend.DType, rows, cols int) backend.Tensor {
		t, e := b.Alloc(dt, rows, cols)
		if e != nil && err == nil {
			err = e
		}
		return t
	}
	xTrain := alloc(backend.F32, train.N, train.Dim)
	order := alloc(backend.I32, 1, train.N)
	x := alloc(backend.F32, m, train.Dim)
	feat := alloc(backend.F32, m, c.Features.Out)
	labels := alloc(backend.I32, m, 1)
	steps := train.N / m // per epoch; the remainder waits for the next epoch's order
	losses := alloc(backend.F32, 1, steps)
	var adam [2][2]backend.Tensor // per net: m, v
	for k, n := range []*model.Net{c.Features, c.Head} {
		adam[k][0], adam[k][1] = alloc(backend.F32, 1, n.Size()), alloc(backend.F32, 1, n.Size())
	}
	if err != nil {
		return nil, rep, fmt.Errorf("classifier training: %w", err)
	}
	if err := b.Upload(xTrain, train.X); err != nil {
		return nil, rep, fmt.Errorf("classifier training: %w", err)
	}
	hp, err := c.Head.NewPass(b, feat, model.PassBuffers{InputGrad: true})
	if err != nil {
		return nil, rep, fmt.Errorf("classifier training: %w", err)
	}
	fp, err := c.Features.NewPass(b, x, model.PassBuffers{Out: feat, DOut: hp.DIn})
	if err != nil {
		return nil, rep, fmt.Errorf("classifier training: %w", err)
	}
	perm := make([]int32, train.N)
	batchLabels := make([]int32, m)
	hostLosses := make([]float32, steps)
	total := opt.Epochs * steps
	t := 0 // Adam updates so far
	for epoch := 0; epoch < opt.Epochs; epoch++ {
		rng.Stream{Seed: opt.Seed, Offset: streamOrder | uint64(epoch)}.Permutation(perm)
		if err := b.Upload(order, perm); err != nil {
			return nil, rep, fmt.Errorf("classifier training: %w", err)
		}
		for step := 0; step < steps; step++ {
			if err := ctx.Err(); err != nil {
				return nil, rep, err
			}
			for i := range batchLabels {
				batchLabels[i] = int32(train.Labels[perm[step*m+i]])
			}
			if err := b.Upload(labels, batchLabels); err != nil {
				return nil, rep, fmt.Errorf("classifier training: %w", err)
			}
			b.GatherRows(x, xTrain, order, step*m)
			drop := streamDropout | uint64(t)<<8
			fp.Forward(b, model.Train, rng.Stream{Seed: opt.Seed, Offset: drop})
			hp.Forward(b, model.Train, rng.Stream{Seed: opt.Seed, Offset: drop | 1<<4})
			b.SoftmaxCrossEntropy(hp.DOut, hp.Out, labels, float32(1/float64(m)), losses, step)
			hp.Backward(b, model.Grads{Params: true, Input: true})
			fp.Backward(b, model.Grads{Params: true})
			t++
			lr := float32(opt.LR * 0.5 * (1 + math.Cos(math.Pi*float64(t-1)/float64(total))))
			for k, n := range []*model.Net{c.Features, c.Head} {
				b.Adam(n.Params, n.Grads, adam[k][0], adam[k][1], lr, 0.9, 0.999, 1e-8, t)
			}
		}
		if err := b.Download(hostLosses, losses); err != nil {
			return nil, rep, fmt.Errorf("classifier training epoch %d: %w", epoch+1, err)
		}
		var sum float64
		for _, l := range hostLosses {
			sum += float64(l)
		}
		rep.FinalLoss = sum / float64(steps)
		if math.IsNaN(rep.FinalLoss) || math.IsInf(rep.FinalLoss, 0) {
			return nil, rep, fmt.Errorf("classifier training epoch %d: the loss is %g", epoch+1, rep.FinalLoss)
		}
		if rep.ValidAccuracy, err = c.SetAccuracy(ctx, splits.Valid); err != nil {
			return nil, rep, err
		}
		rep.Epochs = epoch + 1
		if opt.Progress != nil {
			opt.Progress(EpochReport{Epoch: epoch + 1, Loss: rep.FinalLoss, ValidAccuracy: rep.ValidAccuracy, Elapsed: time.Since(start)})
		}
	}
	if rep.TestAccuracy, err = c.SetAccuracy(ctx, splits.Test); err != nil {
		return nil, rep, err
	}
	rep.Duration = time.Since(start)
	return c, rep, nil
}

// SetAccuracy is the classifier's accuracy on a labelled set.
func (c *Classifier) SetAccuracy(ctx context.Context, s *data.Set) (float64, error) {
	if len(s.Labels) != s.N {
		return 0, fmt.Errorf("classifier: %s has no labels", s.Name)
	}
	probs, err := c.Probabilities(ctx, s.X[:s.N*s.Dim], s.N)
	if err != nil {
		return 0, fmt.Errorf("classifier on %s: %w", s.Name, err)
	}
	return Accuracy(probs, c.Arch.Classes, s.Labels), nil
}
