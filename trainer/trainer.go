// Package trainer plays the minimax game of the 2014 adversarial-nets paper
// (Algorithm 1) on a backend: k discriminator steps, then one generator step, or the
// published code's simultaneous update.
//
// Everything a step touches is allocated in New: both nets, their optimiser state,
// the training set, the minibatch buffers. A step launches backend operations only;
// the one thing it reads back is the small scalars tensor, and only when asked.
//
// One discriminator step, alternating update (Trainer.Step has the code):
//
//	z ~ noise                       → Z            (m × noise)
//	G(Z)                            → xD[m:2m]     (the generator writes into D's input)
//	gather m real rows              → xD[0:m]
//	D(xD) with dropout              → logits       (2m × 1)
//	BCE(logits, [1…1 0…0]) / 2m     → dlogits, D loss
//	backprop through D              → D's gradients; SGD/Adam on D
//
// and the generator step: fresh Z, G(Z) → xD[m:2m], D on that half only, BCE against
// ones (non-saturating) or −BCE against zeros (minimax), backprop through D to its
// input (no D parameter gradients), on through G, update G.
package trainer

import (
	"fmt"
	"log/slog"
	"math"

	"github.com/gantrain/gantrain/backend"
	"github.com/gantrain/gantrain/config"
	"github.com/gantrain/gantrain/data"
	"github.com/gantrain/gantrain/model"
	"github.com/gantrain/gantrain/output"
	"github.com/gantrain/gantrain/rng"
)

// Slots of the scalars tensor.
const (
	slotDLoss = iota
	slotGLoss
	slotDReal
	slotDFake
	numSlots
)

// Random stream layout: every draw of a run has its own Philox offset, a pure
// function of what it is for, so that CPU and GPU draw the same numbers and a
// resumed run draws what an uninterrupted one would.
const (
	streamInitG      = 1<<63 | 1
	streamInitD      = 1<<63 | 2
	streamFixedNoise = 1<<63 | 3
	streamOrder      = 1 << 62 // | epoch
	// Step streams: iteration<<20 | (4·substep + draw)<<10 | layer, where substep j < 64
	// is a discriminator step and substep 255 the generator step; iteration < 2^42.
	drawNoise    = 0
	drawDDropout = 1
	drawGDropout = 2
	gSubstep     = 255
)

func stepStream(seed uint64, iteration int64, substep, draw int) rng.Stream {
	return rng.Stream{Seed: seed, Offset: uint64(iteration)<<20 | uint64(4*substep+draw)<<10}
}

// Stats are the scalars of one iteration, read back from the backend.
type Stats struct {
	Step  int64   // iterations completed, including this one
	Epoch float64 // epochs completed (fractional)
	DLoss float64 // mean BCE of D on real (target 1) and fake (target 0)
	GLoss float64 // −mean log D(G(z)) (non-saturating) or mean log(1 − D(G(z))) (minimax)
	DReal float64 // mean D(x) over the last real minibatch
	DFake float64 // mean D(G(z)) over the last fake minibatch of the D step
	LR    float64 // learning rate of G's last update
	DLR   float64 // learning rate of D's last update
	Mom   float64 // momentum of the last update (SGD)
}

// Trainer holds a run's nets, optimisers and resident buffers.
type Trainer struct {
	cfg  config.Config
	b    backend.Backend
	log  *slog.Logger
	seed uint64

	G, D       *model.Net
	optG, optD *optimizer

	nTrain   int
	shape    data.Shape
	xTrain   backend.Tensor // the training set, N × dim
	order    backend.Tensor // I32: this epoch's permutation of the training set
	xD       backend.Tensor // D's input: m real rows, then m fake rows
	realX    backend.Tensor // the real half of xD
	z        backend.Tensor // noise, m × noise dim
	targets  backend.Tensor // 3m × 1: m real labels (1, or less when smoothed), m zeros, m ones
	dTargets backend.Tensor // the first 2m rows of targets: D's targets on [real; fake]
	gTargets backend.Tensor // m × 1: the generator's targets (a view of targets)
	gScale   float32
	scalars  backend.Tensor // 1 × numSlots

	gPass, dPass, dFake    *model.Pass
	realLogits, fakeLogits backend.Tensor

	sampleZ    backend.Tensor
	samplePass *model.Pass
	stander    *stander // the averaged G's batchnorm statistics (nil: none needed)

	rollbacks int // divergence rollbacks done (on_divergence: rollback)

	step  int64 // iterations completed
	epoch int   // epochs completed
	pos   int   // next position in order
	host  []float32

	// openOutput opens metrics.jsonl for appending (nil: the file system); tests
	// give one that fails as a full disk does.
	openOutput output.OpenFunc
}

// New builds both nets on b, puts the training set on b, and initialises the
// parameters as the paper does.
func New(cfg config.Config, b backend.Backend, train *data.Set, log *slog.Logger) (*Trainer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("trainer: %w", err)
	}
	m := cfg.Train.Batch
	if train == nil || train.N < m {
		return nil, fmt.Errorf("trainer: the training set has %d examples, fewer than one minibatch of %d", setLen(train), m)
	}
	t := &Trainer{cfg: cfg, b: b, log: log, seed: cfg.Train.Seed, nTrain: train.N, shape: train.Shape, host: make([]float32, numSlots)}
	var err error
	shape := dataShape(train.Shape, train.Dim)
	if t.G, err = model.Build(b, "generator", cfg.Generator, model.Flat(cfg.Noise.Dim), shape, model.OutputHead); err != nil {
		return nil, err
	}
	if t.D, err = model.Build(b, "discriminator", cfg.Discriminator, shape, model.Shape{}, model.LogitHead); err != nil {
		return nil, err
	}
	if t.optG, err = newOptimizer(b, cfg.Optimizer, t.G, averaging{decay: cfg.Train.GEMA, warmup: cfg.Train.GEMAWarmup}); err != nil {
		return nil, err
	}
	if t.optD, err = newOptimizer(b, cfg.Optimizer.ForDiscriminator(), t.D, averaging{}); err != nil {
		return nil, err
	}
	if err := t.allocate(train); err != nil {
		return nil, fmt.Errorf("trainer: %w", err)
	}
	if err := t.initParams(train.Mean()); err != nil {
		return nil, fmt.Errorf("trainer: %w", err)
	}
	if err := t.shuffle(); err != nil {
		return nil, fmt.Errorf("trainer: %w", err)
	}
	return t, b.Sync()
}

// dataShape is the model's shape of one example: its image shape, or a vector of
// width values.
func dataShape(s data.Shape, width int) model.Shape {
	if s.IsImage() {
		return model.Shape{H: s.H, W: s.W, C: s.C}
	}
	return model.Flat(width)
}

func setLen(s *data.Set) int {
	if s == nil {
		return 0
	}
	return s.N
}

// allocate makes every resident buffer and wires the passes together.
func (t *Trainer) allocate(train *data.Set) error {
	if err := t.allocBuffers(train); err != nil {
		return err
	}
	if err := t.upload(train); err != nil {
		return err
	}
	if err := t.wirePasses(train.Dim); err != nil {
		return err
	}
	t.noise(t.sampleZ, rng.Stream{Seed: t.seed, Offset: streamFixedNoise})
	return t.b.Err()
}

// allocBuffers makes the buffers the trainer owns outright.
func (t *Trainer) allocBuffers(train *data.Set) error {
	m := t.cfg.Train.Batch
	type buf struct {
		dst        *backend.Tensor
		dt         backend.DType
		rows, cols int
	}
	for _, a := range []buf{
		{&t.xTrain, backend.F32, train.N, train.Dim},
		{&t.order, backend.I32, 1, train.N},
		{&t.xD, backend.F32, 2 * m, train.Dim},
		{&t.z, backend.F32, m, t.cfg.Noise.Dim},
		{&t.targets, backend.F32, 3 * m, 1},
		{&t.scalars, backend.F32, 1, numSlots},
		{&t.sampleZ, backend.F32, t.cfg.Output.Samples, t.cfg.Noise.Dim},
	} {
		var err error
		if *a.dst, err = t.b.Alloc(a.dt, a.rows, a.cols); err != nil {
			return fmt.Errorf("allocate %d×%d: %w", a.rows, a.cols, err)
		}
	}
	return nil
}

// upload puts the training set and the targets on the backend.
func (t *Trainer) upload(train *data.Set) error {
	if err := t.b.Upload(t.xTrain, train.X); err != nil {
		return fmt.Errorf("upload training set: %w", err)
	}
	m := t.cfg.Train.Batch
	labels := make([]float32, 3*m)
	for i := 0; i < m; i++ {
		labels[i], labels[2*m+i] = float32(t.cfg.Train.RealLabel), 1
	}
	if err := t.b.Upload(t.targets, labels); err != nil {
		return fmt.Errorf("upload targets: %w", err)
	}
	return nil
}

// wirePasses makes the passes and the views that chain them: G writes the fake half
// of D's input, and D's input gradient is G's output gradient.
func (t *Trainer) wirePasses(dim int) error {
	b, m := t.b, t.cfg.Train.Batch
	var err error
	if t.dTargets, err = b.View(t.targets, 0, 2*m, 1); err != nil {
		return err
	}
	// Batchnorm in D normalises the real and the fake half apart, as two passes would.
	if t.dPass, err = t.D.NewPass(b, t.xD, model.PassBuffers{InputGrad: true, Groups: 2}); err != nil {
		return err
	}
	if t.dFake, err = t.dPass.Rows(b, m, m); err != nil {
		return err
	}
	if t.realX, err = b.View(t.xD, 0, m, dim); err != nil {
		return err
	}
	fakeX, err := b.View(t.xD, m*dim, m, dim)
	if err != nil {
		return err
	}
	if t.gPass, err = t.G.NewPass(b, t.z, model.PassBuffers{Out: fakeX, DOut: t.dFake.DIn}); err != nil {
		return err
	}
	if t.realLogits, err = b.View(t.dPass.Out, 0, m, 1); err != nil {
		return err
	}
	t.fakeLogits = t.dFake.Out
	// Non-saturating: minimise mean BCE(D(G(z)), 1). Minimax: minimise
	// mean log(1 − D(G(z))) = −mean BCE(D(G(z)), 0).
	if t.cfg.Train.GLoss == config.GLossMinimax {
		t.gScale = -1 / float32(m)
		if t.gTargets, err = b.View(t.targets, m, m, 1); err != nil {
			return err
		}
	} else {
		t.gScale = 1 / float32(m)
		if t.gTargets, err = b.View(t.targets, 2*m, m, 1); err != nil {
			return err
		}
	}
	if t.samplePass, err = t.optG.sampler().NewPass(b, t.sampleZ, model.PassBuffers{}); err != nil {
		return err
	}
	if t.optG.averaged != nil {
		t.stander, err = newStander(b, t.optG.averaged, t.cfg)
	}
	return err
}

// initParams draws both nets' initial parameters.
func (t *Trainer) initParams(dataMean []float32) error {
	for _, x := range []struct {
		net    *model.Net
		offset uint64
	}{{t.G, streamInitG}, {t.D, streamInitD}} {
		p, err := x.net.InitialParams(rng.Stream{Seed: t.seed, Offset: x.offset}, dataMean)
		if err != nil {
			return err
		}
		if err := t.b.Upload(x.net.Params, p); err != nil {
			return fmt.Errorf("upload %s parameters: %w", x.net.Name, err)
		}
		if x.net.HasBatchNorm() {
			if err := t.b.Upload(x.net.State, x.net.InitialState()); err != nil {
				return fmt.Errorf("upload %s batchnorm statistics: %w", x.net.Name, err)
			}
		}
	}
	t.optG.startAverage(t.b)
	return nil
}

// shuffle uploads the permutation of epoch t.epoch, which depends only on the seed
// and the epoch. It runs once per epoch, between minibatches.
func (t *Trainer) shuffle() error {
	perm := make([]int32, t.nTrain)
	rng.Stream{Seed: t.seed, Offset: streamOrder | uint64(t.epoch)}.Permutation(perm)
	if err := t.b.Upload(t.order, perm); err != nil {
		return fmt.Errorf("upload epoch %d order: %w", t.epoch, err)
	}
	return nil
}

// noise fills z from the configured distribution.
func (t *Trainer) noise(z backend.Tensor, s rng.Stream) { fillNoise(t.b, z, t.cfg.Noise.Dist, s) }

// fillNoise fills z with N(0, 1) (config.DistNormal) or uniform noise in ±√3 (unit
// variance).
func fillNoise(b backend.Backend, z backend.Tensor, dist string, s rng.Stream) {
	if dist == config.DistNormal {
		b.Normal(z, 0, 1, s)
		return
	}
	r := float32(math.Sqrt(3))
	b.Uniform(z, -r, r, s)
}

// nextReal gathers the next m training examples into the real half of D's input,
// starting a new epoch (and its shuffle) when fewer than m are left.
func (t *Trainer) nextReal() error {
	m := t.cfg.Train.Batch
	t.b.GatherRows(t.realX, t.xTrain, t.order, t.pos)
	t.pos += m
	if t.pos+m > t.nTrain {
		t.epoch++
		t.pos = 0
		return t.shuffle()
	}
	return nil
}

// Step runs one iteration of Algorithm 1. With observe set it reads back the losses
// and mean discriminator outputs (the only device-to-host transfer of a step). A
// backend that groups a step's launches (a CUDA graph) is told where the step starts
// and ends.
func (t *Trainer) Step(observe bool) (Stats, error) {
	g, ok := t.b.(backend.StepGrouper)
	if !ok {
		return t.iterate(observe)
	}
	g.BeginStep()
	st, err := t.iterate(observe)
	if gerr := g.EndStep(); err == nil && gerr != nil {
		err = fmt.Errorf("step %d: %w", t.step, gerr)
	}
	return st, err
}

// iterate is Step's body.
func (t *Trainer) iterate(observe bool) (Stats, error) {
	it := t.step
	at := progress{finished: t.epoch, epochs: t.Epoch()}
	if t.cfg.Train.Update == config.UpdateSimultaneous {
		if err := t.simultaneousStep(it, at, observe); err != nil {
			return Stats{}, err
		}
	} else {
		for j := 0; j < t.cfg.Train.K; j++ {
			if err := t.discriminatorStep(it, j, at, observe && j == t.cfg.Train.K-1); err != nil {
				return Stats{}, err
			}
		}
		t.generatorStep(it, at)
	}
	t.step++
	st := Stats{Step: t.step, Epoch: t.Epoch(), LR: t.optG.lr(t.Epoch()), DLR: t.optD.lr(t.Epoch())}
	if t.cfg.Optimizer.Kind == config.OptimizerSGD {
		st.Mom = t.optG.momentum(at.finished)
	}
	if !observe {
		return st, t.b.Err()
	}
	if err := t.b.Download(t.host, t.scalars); err != nil {
		return st, fmt.Errorf("step %d: %w", t.step, err)
	}
	st.DLoss, st.GLoss = float64(t.host[slotDLoss]), float64(t.host[slotGLoss])
	st.DReal, st.DFake = float64(t.host[slotDReal]), float64(t.host[slotDFake])
	return st, nil
}

// discriminatorForward draws noise, generates the fake half, gathers the real half
// and runs D over both with dropout.
func (t *Trainer) discriminatorForward(it int64, j int, observe bool) error {
	t.noise(t.z, stepStream(t.seed, it, j, drawNoise))
	t.gPass.Forward(t.b, model.Train, stepStream(t.seed, it, j, drawGDropout))
	if err := t.nextReal(); err != nil {
		return err
	}
	t.dPass.Forward(t.b, model.Train, stepStream(t.seed, it, j, drawDDropout))
	m := float32(t.cfg.Train.Batch)
	t.b.SigmoidCrossEntropy(t.dPass.DOut, t.dPass.Out, t.dTargets, 1/(2*m), t.scalars, slotDLoss)
	if observe {
		t.b.MeanSigmoid(t.realLogits, t.scalars, slotDReal)
		t.b.MeanSigmoid(t.fakeLogits, t.scalars, slotDFake)
	}
	return nil
}

func (t *Trainer) discriminatorStep(it int64, j int, at progress, observe bool) error {
	if err := t.discriminatorForward(it, j, observe); err != nil {
		return err
	}
	t.dPass.Backward(t.b, model.Grads{Params: true})
	t.optD.step(t.b, at)
	return nil
}

func (t *Trainer) generatorStep(it int64, at progress) {
	t.noise(t.z, stepStream(t.seed, it, gSubstep, drawNoise))
	t.gPass.Forward(t.b, model.Train, stepStream(t.seed, it, gSubstep, drawGDropout))
	t.dFake.Forward(t.b, model.Train, stepStream(t.seed, it, gSubstep, drawDDropout))
	t.generatorBackward()
	t.optG.step(t.b, at)
}

// generatorBackward computes G's loss on D's fake-half logits and back-propagates it
// through D (input gradient only) and G.
func (t *Trainer) generatorBackward() {
	t.b.SigmoidCrossEntropy(t.dFake.DOut, t.fakeLogits, t.gTargets, t.gScale, t.scalars, slotGLoss)
	t.dFake.Backward(t.b, model.Grads{Input: true}) // writes G's DOut
	t.gPass.Backward(t.b, model.Grads{Params: true})
}

// simultaneousStep computes both nets' gradients from one minibatch (with the same
// dropout masks) and applies both updates, as the paper's published code does.
func (t *Trainer) simultaneousStep(it int64, at progress, observe bool) error {
	if err := t.discriminatorForward(it, 0, observe); err != nil {
		return err
	}
	t.dPass.Backward(t.b, model.Grads{Params: true})
	t.generatorBackward()
	t.optD.step(t.b, at)
	t.optG.step(t.b, at)
	return nil
}

// sampleMode is the mode G draws samples in: batchnorm with its running statistics,
// or with each batch's own (train.sample_batchnorm).
func sampleMode(c config.Config) model.Mode {
	if c.Train.SampleBatchNorm == config.SampleBatchNormBatch {
		return model.InferBatchStats
	}
	return model.Infer
}

// Epoch is the number of epochs completed, fractional.
func (t *Trainer) Epoch() float64 {
	return float64(t.epoch) + float64(t.pos)/float64(t.nTrain)
}

// Steps is the number of iterations completed.
func (t *Trainer) Steps() int64 { return t.step }

// Done reports whether the run reached its step or epoch limit.
func (t *Trainer) Done() bool {
	c, epochs := t.cfg.Train, t.epochLimit()
	return (c.Steps > 0 && t.step >= c.Steps) || (epochs > 0 && t.epoch >= epochs)
}

// epochLimit is the epoch at which the run ends (0: none): train.epochs, or the end
// of the learning-rate anneal when that comes first (nothing would change after it).
func (t *Trainer) epochLimit() int {
	n, o := t.cfg.Train.Epochs, t.cfg.Optimizer
	if end := o.AnnealFrom + o.AnnealEpochs; o.AnnealEpochs > 0 && (n == 0 || end < n) {
		return end
	}
	return n
}

// Samples runs G (its parameter average when train.g_ema is set) on the run's fixed noise and returns the outputs (rows × data width).
func (t *Trainer) Samples() ([]float32, error) {
	if err := t.stander.stand(t.b, t.step); err != nil {
		return nil, fmt.Errorf("samples: %w", err)
	}
	t.samplePass.Forward(t.b, sampleMode(t.cfg), rng.Stream{})
	out := make([]float32, backend.Len(t.samplePass.Out))
	if err := t.b.Download(out, t.samplePass.Out); err != nil {
		return nil, fmt.Errorf("samples: %w", err)
	}
	return out, nil
}
