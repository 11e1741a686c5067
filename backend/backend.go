// Package backend defines the compute interface that gantrain's trainer drives: one
// interface, implemented by the CPU backend (package cpu) and by the GPU backend
// (package gpu, CUDA builds).
//
// The interface is shaped for a device that keeps every tensor resident. Tensors are
// handles owned by the backend; the trainer allocates everything once, before the
// first step (parameters, gradients, optimiser state, activations, the data set), and
// inside a step only launches operations on handles. Nothing crosses to the host
// inside a step except what the trainer asks for with Download, typically a small
// tensor of scalars that the reductions (losses, mean D outputs) have written.
//
// Operations do not return errors: like a device stream, a backend records the first
// failure (a shape mismatch, a device fault) and refuses further work; Err, Download
// and Sync report it. Shapes are checked by every operation, so a model wired wrongly
// fails at its first step with the operation's name, never with a corrupt result.
package backend

import (
	"errors"
	"fmt"

	"github.com/gantrain/gantrain/rng"
)

// DType is the element type of a tensor.
type DType uint8

// Element types.
const (
	F32 DType = iota // float32
	I32              // int32: minibatch indices, maxout argmax
)

func (d DType) String() string {
	switch d {
	case F32:
		return "f32"
	case I32:
		return "i32"
	}
	return fmt.Sprintf("dtype(%d)", uint8(d))
}

// Tensor is a handle to a row-major rows×cols matrix owned by a backend. A tensor is
// either an allocation or a view of a contiguous range of one (see Backend.View).
type Tensor interface {
	Rows() int
	Cols() int
	DType() DType
}

// Len is the number of elements of t.
func Len(t Tensor) int { return t.Rows() * t.Cols() }

// Activation is an elementwise nonlinearity fused into a dense layer.
type Activation uint8

// Activations.
const (
	Identity Activation = iota
	ReLU
	LeakyReLU // slope Alpha for negative inputs
	Sigmoid
	Tanh
)

var actNames = [...]string{"identity", "relu", "leaky_relu", "sigmoid", "tanh"}

func (a Activation) String() string {
	if int(a) < len(actNames) {
		return actNames[a]
	}
	return fmt.Sprintf("activation(%d)", uint8(a))
}

// ParseActivation maps a config name to an Activation.
func ParseActivation(s string) (Activation, error) {
	for i, n := range actNames {
		if s == n {
			return Activation(i), nil
		}
	}
	if s == "linear" || s == "" {
		return Identity, nil
	}
	return 0, fmt.Errorf("unknown activation %q (want one of identity, relu, leaky_relu, sigmoid, tanh)", s)
}

// Act is an activation with its parameter.
type Act struct {
	Kind  Activation
	Alpha float32 // negative slope of LeakyReLU
}

// ErrShape is wrapped by the errors of operations given tensors of the wrong shape or type.
var ErrShape = errors.New("shape mismatch")

// Backend is the set of fused operations a training step is built from. All tensors
// passed to one backend must have been made by it. Unless an operation says so, its
// output must not alias its inputs.
type Backend interface {
	// Name is "cpu" or "cuda".
	Name() string
	// Describe says what the backend runs on (for logs and metrics).
	Describe() string

	// Alloc makes a zeroed rows×cols tensor. Call it at setup, not inside a step.
	Alloc(dt DType, rows, cols int) (Tensor, error)
	// View is a rows×cols tensor over the elements [offset, offset+rows*cols) of t.
	View(t Tensor, offset, rows, cols int) (Tensor, error)
	// Upload copies src (len = Len(dst)) into dst. src is []float32 or []int32 to match dst.
	Upload(dst Tensor, src any) error
	// Download copies src into dst (len = Len(src)) after all queued work; it is the
	// only way data leaves the backend.
	Download(dst any, src Tensor) error
	// Sync waits for queued work and returns the first error recorded.
	Sync() error
	// Err returns the first error recorded, without waiting.
	Err() error
	// Close frees everything the backend holds.
	Close() error

	// Fill sets every element of t to v.
	Fill(t Tensor, v float32)
	// Copy copies src into dst (same shape).
	Copy(dst, src Tensor)

	// DenseForward computes y = act(x·w + b): x is n×in, w in×out, b 1×out, y n×out.
	DenseForward(y, x, w, b Tensor, act Act)
	// DenseBackward back-propagates through a dense layer whose output was y. On entry
	// dy holds dL/dy; it is overwritten with dZ = dy ⊙ act'(z) (act' is computed from
	// y, so z need not be kept). Then dw = xᵀ·dZ, db = Σ_rows dZ and dx = dZ·wᵀ are
	// written; any of dx, dw, db may be nil to skip it (dx for a first layer, dw and db
	// when only the input gradient is wanted).
	DenseBackward(dx, dw, db, dy, x, y, w Tensor, act Act)
	// MaxoutForward takes the max over groups of `pieces` adjacent columns of z
	// (n×units·pieces) into y (n×units) and the winning piece into arg (I32, n×units).
	MaxoutForward(y, arg, z Tensor, pieces int)
	// MaxoutBackward routes dy (n×units) to the winning pieces of dz (n×units·pieces);
	// the other pieces get zero.
	MaxoutBackward(dz, dy, arg Tensor, pieces int)
	// Dropout draws a mask from s (element e kept when rng.Keep(s.Word(e), keep)),
	// stores it in mask as 0 or 1/keep (inverted scaling), and sets y = x ⊙ mask.
	// y may alias x.
	Dropout(y, mask, x Tensor, keep float32, s rng.Stream)
	// Mul sets y = a ⊙ b elementwise (the dropout backward: dx = dy ⊙ mask). y may alias a.
	Mul(y, a, b Tensor)
	// MaxoutDropout is MaxoutForward followed by Dropout of its output, in one pass:
	// arg as MaxoutForward sets it, mask and y as Dropout(y, mask, maxout(z), keep, s)
	// sets them, bit for bit; the maxout's own output is not stored.
	MaxoutDropout(y, arg, mask, z Tensor, pieces int, keep float32, s rng.Stream)
	// MaxoutDropoutBackward is Mul(dy ⊙ mask) followed by MaxoutBackward, in one pass:
	// dz[i·pieces + arg[i]] = dy[i]·mask[i], the other pieces zero.
	MaxoutDropoutBackward(dz, dy, mask, arg Tensor, pieces int)
	// DenseMaxout is DenseForward(z, x, w, b, identity) followed by MaxoutForward(y,
	// arg, z, pieces), or, with mask not nil, by MaxoutDropout(y, arg, mask, z, pieces,
	// keep, s): y, arg and mask as those set them, to the product's rounding. z
	// (n×units·pieces) is scratch whose contents are unspecified afterwards: the GPU may
	// take the maxout in the product's epilogue and never store z.
	DenseMaxout(y, arg, mask, z, x, w, b Tensor, pieces int, keep float32, s rng.Stream)

	// Im2Col lays out the receptive fields of the NHWC images x (n×g.InSize()) as the
	// rows of cols ((n·g.Positions())×g.Patch()): row (i, oy, ox), column (ky, kx, c)
	// holds x[i, oy·StrideH − PadH + ky, ox·StrideW − PadW + kx, c], or 0 where that
	// falls in the padding.
	Im2Col(cols, x Tensor, g ConvGeom)
	// Col2Im is the adjoint of Im2Col: it overwrites x with, at each input element, the
	// sum of the elements of cols that Im2Col would copy from it (the input gradient of
	// a convolution, and the forward pass of a transposed one). Each element is summed
	// in the order of its (ky, kx) taps, so results do not depend on scheduling.
	Col2Im(x, cols Tensor, g ConvGeom)
	// ConvForward is Im2Col(cols, x, g) followed by DenseForward(y, cols, w, b, act): a
	// convolution's output y ((n·g.Positions())×F, NHWC), its columns left in cols for
	// the backward pass. The GPU may read the product's operand straight from x and
	// store cols as it goes.
	ConvForward(y, cols, x, w, b Tensor, g ConvGeom, act Act)
	// ConvBackward is a convolution's backward pass (its forward: ConvForward):
	// DenseBackward(dcols, dw, db, dy, cols, y, w, act) followed by Col2Im(dx, dcols,
	// g), dy overwritten with dZ as DenseBackward leaves it; dx, dw and db each unless
	// nil (dcols may be nil without dx). dcols ((n·g.Positions())×g.Patch()) is scratch
	// whose contents are unspecified afterwards: the GPU may compute dx in one product
	// per phase of the input pixels, to the products' rounding, and never store the
	// columns' gradient.
	ConvBackward(dx, dw, db, dcols, dy, cols, y, w Tensor, g ConvGeom, act Act)
	// ConvTransposeBackward is the products of a transposed convolution's backward pass
	// (its forward: x·w, then Col2Im by g): Im2Col(cols, dy, g), the gradient of the
	// columns, followed by DenseBackward(dx, dw, nil, cols, x, cols, w, identity): dx =
	// cols·wᵀ and dw = xᵀ·cols, each unless nil. dy (n×g.InSize()) is the output's
	// gradient after the bias and activation; x is (n·g.Positions())×C, w C×g.Patch().
	// The GPU may read dx's product's operand straight from dy and store cols as it goes.
	ConvTransposeBackward(dx, dw, cols, dy, x, w Tensor, g ConvGeom)
	// ConvTransposeForward is a transposed convolution's output: the product x·w into
	// cols (identity, no bias), then Col2Im(y, cols, g), then BiasActivation(y, b,
	// act). x is (n·g.Positions())×C, w C×g.Patch(), b 1×g.InC, y n×g.InSize(); cols
	// ((n·g.Positions())×g.Patch()) is scratch whose contents are unspecified
	// afterwards: the GPU may compute y in one product per output phase, to the
	// products' rounding, and never store the columns.
	ConvTransposeForward(y, cols, x, w, b Tensor, g ConvGeom, act Act)
	// BiasActivation sets y = act(y + b) in place, b (1×C) added to every row of y (m×C).
	BiasActivation(y, b Tensor, act Act)
	// BiasActivationBackward overwrites dy (m×C) with dZ = dy ⊙ act'(z), act' computed
	// from the activation's output y, and sets db = Σ_rows dZ unless db is nil.
	BiasActivationBackward(db, dy, y Tensor, act Act)
	// BatchNorm normalises each column of x (m×C, one column per channel) by batch
	// statistics. x's rows are `groups` equal consecutive groups (groups divides m),
	// each normalised by its own statistics, as if each were a separate call (the
	// discriminator's real and fake halves): mean and variance (groups×C, the biased
	// variance) are written, and in group g
	//   y = act(gamma·(x − mean_g)/√(variance_g + eps) + beta).
	// Unless runMean and runVar are nil, it also updates them as running averages, once
	// per group in order: run ← (1 − momentum)·run + momentum·batch_g, with the unbiased
	// variance (variance·r/(r−1) for r rows a group; the biased one when r = 1).
	// y must not alias x.
	BatchNorm(y, mean, variance, x, gamma, beta, runMean, runVar Tensor, groups int, eps, momentum float32, act Act)
	// BatchNormInfer is BatchNorm with the running statistics in place of the batch's:
	// y = act(gamma·(x − runMean)/√(runVar + eps) + beta). y may alias x.
	BatchNormInfer(y, x, gamma, beta, runMean, runVar Tensor, eps float32, act Act)
	// BatchNormBackward back-propagates through a BatchNorm that read x and wrote y,
	// mean and variance in `groups` groups. On entry dy holds dL/dy; it is overwritten
	// with dZ = dy ⊙ act'(y). Then, in each group g of r rows, with
	// x̂ = (x − mean_g)/√(variance_g + eps) and the sums over the group's rows
	// Sβ_g = Σ dZ, Sγ_g = Σ dZ ⊙ x̂:
	//   dx = gamma/√(variance_g + eps) ⊙ (dZ − Sβ_g/r − x̂ ⊙ Sγ_g/r),
	// and dbeta = Σ_g Sβ_g, dgamma = Σ_g Sγ_g. Any of dx, dgamma, dbeta may be nil to
	// skip it.
	BatchNormBackward(dx, dgamma, dbeta, dy, x, y, gamma, mean, variance Tensor, groups int, eps float32, act Act)

	// SigmoidCrossEntropy is the fused, numerically stable binary cross-entropy on
	// logits (n×1) with targets (n×1, values in [0,1]):
	//   out[slot] = scale · Σ_i bce(σ(logits_i), t_i),  dlogits_i = scale · (σ(logits_i) − t_i).
	// scale is 1/n for a mean, negative to ascend. dlogits may be nil.
	SigmoidCrossEntropy(dlogits, logits, targets Tensor, scale float32, out Tensor, slot int)
	// MeanSigmoid sets out[slot] to the mean of σ(logits).
	MeanSigmoid(logits Tensor, out Tensor, slot int)
	// SoftmaxCrossEntropy is the fused, numerically stable multiclass cross-entropy on
	// logits (n×C) with integer labels (I32, n×1, each in [0, C)):
	//   out[slot] = scale · Σ_i −log softmax(logits_i)[label_i],
	//   dlogits_ij = scale · (softmax(logits_i)_j − [j = label_i]).
	// dlogits may be nil. A label out of range is an error (a device backend that cannot
	// report it writes NaN to out[slot] and to that row of dlogits).
	SoftmaxCrossEntropy(dlogits, logits, labels Tensor, scale float32, out Tensor, slot int)
	// LogSumExpRows sets out_i (out is n×1) to log Σ_j exp(x_ij) for each row of x (n×m),
	// computed stably around the row maximum; a row of −Inf gives −Inf.
	LogSumExpRows(out, x Tensor)

	// SGDMomentum applies v ← μv − lr·g, p ← p + v elementwise (the paper's velocity form).
	SGDMomentum(p, g, v Tensor, lr, mu float32)
	// Adam applies one Adam update with bias correction for step t (t ≥ 1).
	Adam(p, g, m, v Tensor, lr, beta1, beta2, eps float32, t int)

	// MovingAverage applies avg ← decay·avg + (1−decay)·x elementwise (the exponential
	// moving average of a net's parameters, with 1−decay rounded to float32 first).
	MovingAverage(avg, x Tensor, decay float32)

	// ClipColumnNorms rescales every column of w whose L2 norm exceeds maxNorm to norm
	// maxNorm (the max-norm constraint of maxout networks, pylearn2's max_col_norm).
	ClipColumnNorms(w Tensor, maxNorm float32)

	// Uniform fills t with values in [lo, hi): element e is rng.ToUniform(s.Word(e), lo, hi).
	Uniform(t Tensor, lo, hi float32, s rng.Stream)
	// Normal fills t with mean + std·N(0,1): element e is mean + std·s.NormalAt(e).
	Normal(t Tensor, mean, std float32, s rng.Stream)
	// GatherRows sets dst row r to src row idx[offset+r] (idx is an I32 tensor).
	GatherRows(dst, src, idx Tensor, offset int)
}

// Check returns an ErrShape error for op unless ok.
func Check(ok bool, op, format string, args ...any) error {
	if ok {
		return nil
	}
	return fmt.Errorf("%s: %w: %s", op, ErrShape, fmt.Sprintf(format, args...))
}

// ShapeString formats a tensor's shape for error messages.
func ShapeString(t Tensor) string {
	if t == nil {
		return "nil"
	}
	return fmt.Sprintf("%d×%d %s", t.Rows(), t.Cols(), t.DType())
}

// Accelerator identifies the device a backend runs on, for the gantrain_device_info
// metric and the memory gauges' device label.
type Accelerator struct {
	ID      string // the device as --device names it, e.g. "cuda:0"
	Name    string // the product name, e.g. "NVIDIA H200"
	Compute string // compute capability, e.g. "9.0"
	Memory  int64  // bytes of device memory
}

// AcceleratorReporter is implemented by backends that run on an accelerator.
type AcceleratorReporter interface {
	Accelerator() Accelerator
}

// MemoryReporter is implemented by backends whose tensors live in a device's own
// memory. Memory reports the bytes in use and the device's total; callers must call
// it from the goroutine that drives the backend.
type MemoryReporter interface {
	Memory() (used, total int64)
}

// Queued is implemented by backends whose operations run after the call that
// launches them returns, in order, on a device's queue (the CUDA backend's stream):
// reading a result back waits until the queue has drained, which costs a step its
// overlap with the host.
type Queued interface {
	Queued() bool
}

// ReadbackIsCheap reports whether reading b's results back costs next to nothing,
// which is so unless b queues its operations (Queued): the CPU backend's operations
// have finished when they return.
func ReadbackIsCheap(b Backend) bool {
	q, ok := b.(Queued)
	return !ok || !q.Queued()
}

// StepGrouper is implemented by backends that can submit a training step's launches
// as one unit (the CUDA backend's step graphs). The trainer calls BeginStep before a
// step's operations and EndStep after them; EndStep returns the first error.
type StepGrouper interface {
	BeginStep()
	EndStep() error
}

// KernelTuner is implemented by backends that choose among kernel configurations at
// run time (the CUDA backend's autotuner). A checkpoint stores the choices made, and a
// run resumed from it presets them, so that it computes with the same kernels and
// continues bit for bit.
type KernelTuner interface {
	// KernelChoiceMap returns the choices made so far: problem → configuration.
	KernelChoiceMap() map[string]string
	// PresetKernelChoices makes the backend use those choices for those problems.
	PresetKernelChoices(map[string]string) error
}
