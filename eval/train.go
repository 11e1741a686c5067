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
	opt = opt.withDefaults()
	var rep TrainReport
	if err := opt.check(splits); err != nil {
		return nil, rep, err
	}
	start := time.Now()
	tr, err := newClassifierTraining(b, splits.Train, opt)
	if err != nil {
		return nil, rep, err
	}
	for epoch := 0; epoch < opt.Epochs; epoch++ {
		if rep.FinalLoss, err = tr.epoch(ctx, epoch); err != nil {
			return nil, rep, err
		}
		if math.IsNaN(rep.FinalLoss) || math.IsInf(rep.FinalLoss, 0) {
			return nil, rep, fmt.Errorf("classifier training epoch %d: the loss is %g", epoch+1, rep.FinalLoss)
		}
		if rep.ValidAccuracy, err = tr.c.SetAccuracy(ctx, splits.Valid); err != nil {
			return nil, rep, err
		}
		rep.Epochs = epoch + 1
		if opt.Progress != nil {
			opt.Progress(EpochReport{Epoch: epoch + 1, Loss: rep.FinalLoss, ValidAccuracy: rep.ValidAccuracy, Elapsed: time.Since(start)})
		}
	}
	if rep.TestAccuracy, err = tr.c.SetAccuracy(ctx, splits.Test); err != nil {
		return nil, rep, err
	}
	rep.Duration = time.Since(start)
	return tr.c, rep, nil
}

// withDefaults fills in the options left zero.
func (opt TrainOptions) withDefaults() TrainOptions {
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
	return opt
}

// check says what makes the options or the splits unusable for training.
func (opt TrainOptions) check(splits *data.Splits) error {
	if splits == nil || splits.Train == nil || splits.Valid == nil || splits.Test == nil {
		return fmt.Errorf("classifier training: need train, validation and test sets")
	}
	train := splits.Train
	if opt.Epochs < 1 || opt.Batch < 1 || opt.Batch > train.N || !(opt.LR > 0) {
		return fmt.Errorf("classifier training: epochs %d, batch %d (of %d examples), lr %g: want epochs ≥ 1, 1 ≤ batch ≤ examples, lr > 0",
			opt.Epochs, opt.Batch, train.N, opt.LR)
	}
	for _, s := range []*data.Set{train, splits.Valid, splits.Test} {
		if s.Dim != opt.Arch.In || len(s.Labels) != s.N || s.N == 0 {
			return fmt.Errorf("classifier training: %s has %d examples of %d features and %d labels, want %d features with labels",
				s.Name, s.N, s.Dim, len(s.Labels), opt.Arch.In)
		}
		for i, l := range s.Labels {
			if int(l) >= opt.Arch.Classes {
				return fmt.Errorf("classifier training: %s label %d at %d out of range for %d classes", s.Name, l, i, opt.Arch.Classes)
			}
		}
	}
	return nil
}

// classifierTraining is what TrainClassifier keeps resident: the classifier, the
// training set, a minibatch's buffers and passes, and Adam's state.
type classifierTraining struct {
	b     backend.Backend
	c     *Classifier
	opt   TrainOptions
	train *data.Set

	xTrain, order backend.Tensor // the training set and this epoch's permutation (I32)
	x, labels     backend.Tensor // a minibatch and its labels (I32)
	losses        backend.Tensor // 1 × steps: an epoch's minibatch losses
	adam          [2][2]backend.Tensor
	fp, hp        *model.Pass // the features' and the head's

	steps, total int // minibatches per epoch and in the run
	t            int // Adam updates so far

	perm, batchLabels []int32
	hostLosses        []float32
}

// newClassifierTraining makes a classifier with its initial weights and allocates
// everything its training uses.
func newClassifierTraining(b backend.Backend, train *data.Set, opt TrainOptions) (*classifierTraining, error) {
	c, err := NewClassifier(b, opt.Arch)
	if err != nil {
		return nil, err
	}
	if err := c.Init(opt.Seed); err != nil {
		return nil, err
	}
	m := opt.Batch
	steps := train.N / m // per epoch; the remainder waits for the next epoch's order
	tr := &classifierTraining{b: b, c: c, opt: opt, train: train, steps: steps, total: opt.Epochs * steps,
		perm: make([]int32, train.N), batchLabels: make([]int32, m), hostLosses: make([]float32, steps)}
	alloc := func(dt backend.DType, rows, cols int) backend.Tensor {
		t, e := b.Alloc(dt, rows, cols)
		if e != nil && err == nil {
			err = e
		}
		return t
	}
	tr.xTrain = alloc(backend.F32, train.N, train.Dim)
	tr.order = alloc(backend.I32, 1, train.N)
	tr.x = alloc(backend.F32, m, train.Dim)
	feat := alloc(backend.F32, m, c.Features.Out)
	tr.labels = alloc(backend.I32, m, 1)
	tr.losses = alloc(backend.F32, 1, steps)
	for k, n := range []*model.Net{c.Features, c.Head} { // per net: Adam's m and v
		tr.adam[k][0], tr.adam[k][1] = alloc(backend.F32, 1, n.Size()), alloc(backend.F32, 1, n.Size())
	}
	if err != nil {
		return nil, fmt.Errorf("classifier training: %w", err)
	}
	if err := b.Upload(tr.xTrain, train.X); err != nil {
		return nil, fmt.Errorf("classifier training: %w", err)
	}
	if tr.hp, err = c.Head.NewPass(b, feat, model.PassBuffers{InputGrad: true}); err != nil {
		return nil, fmt.Errorf("classifier training: %w", err)
	}
	if tr.fp, err = c.Features.NewPass(b, tr.x, model.PassBuffers{Out: feat, DOut: tr.hp.DIn}); err != nil {
		return nil, fmt.Errorf("classifier training: %w", err)
	}
	return tr, nil
}

// epoch trains one pass over the training set in the order of its permutation and
// returns the mean minibatch loss.
func (tr *classifierTraining) epoch(ctx context.Context, epoch int) (float64, error) {
	rng.Stream{Seed: tr.opt.Seed, Offset: streamOrder | uint64(epoch)}.Permutation(tr.perm)
	if err := tr.b.Upload(tr.order, tr.perm); err != nil {
		return 0, fmt.Errorf("classifier training: %w", err)
	}
	for step := 0; step < tr.steps; step++ {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		if err := tr.step(step); err != nil {
			return 0, err
		}
	}
	if err := tr.b.Download(tr.hostLosses, tr.losses); err != nil {
		return 0, fmt.Errorf("classifier training epoch %d: %w", epoch+1, err)
	}
	var sum float64
	for _, l := range tr.hostLosses {
		sum += float64(l)
	}
	return sum / float64(tr.steps), nil
}

// step is one Adam update of both nets on minibatch step of the epoch's order, its
// loss written to slot step of the losses.
func (tr *classifierTraining) step(step int) error {
	b, m, seed := tr.b, tr.opt.Batch, tr.opt.Seed
	for i := range tr.batchLabels {
		tr.batchLabels[i] = int32(tr.train.Labels[tr.perm[step*m+i]])
	}
	if err := b.Upload(tr.labels, tr.batchLabels); err != nil {
		return fmt.Errorf("classifier training: %w", err)
	}
	b.GatherRows(tr.x, tr.xTrain, tr.order, step*m)
	drop := streamDropout | uint64(tr.t)<<8
	tr.fp.Forward(b, model.Train, rng.Stream{Seed: seed, Offset: drop})
	tr.hp.Forward(b, model.Train, rng.Stream{Seed: seed, Offset: drop | 1<<4})
	b.SoftmaxCrossEntropy(tr.hp.DOut, tr.hp.Out, tr.labels, float32(1/float64(m)), tr.losses, step)
	tr.hp.Backward(b, model.Grads{Params: true, Input: true})
	tr.fp.Backward(b, model.Grads{Params: true})
	tr.t++
	// The learning rate is cosine-decayed from opt.LR to 0 over the run.
	lr := float32(tr.opt.LR * 0.5 * (1 + math.Cos(math.Pi*float64(tr.t-1)/float64(tr.total))))
	for k, n := range []*model.Net{tr.c.Features, tr.c.Head} {
		b.Adam(n.Params, n.Grads, tr.adam[k][0], tr.adam[k][1], lr, 0.9, 0.999, 1e-8, tr.t)
	}
	return nil
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
