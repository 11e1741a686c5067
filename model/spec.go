// Package model turns layer specifications into nets whose parameters, gradients and
// activations live in a backend, and runs their forward and backward passes.
//
// A Net owns one parameter arena and one gradient arena (each a single 1×P tensor;
// every weight and bias is a view of it), so an optimiser updates a whole net with
// one fused operation. A Pass owns the activations of one minibatch size; passes of
// different sizes share the net's parameters, and Pass.Rows makes a pass over a row
// range of another (the fake half of the discriminator's real+fake minibatch) that
// shares its buffers.
package model

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"

	"github.com/gantrain/gantrain/backend"
)

// Layer types.
const (
	Dense   = "dense"
	Maxout  = "maxout"
	Dropout = "dropout"
	// Conv2D is a 2-D convolution over NHWC images (a maxout over channels with pieces > 1).
	Conv2D = "conv2d"
	// ConvTranspose2D is the transpose of a 2-D convolution: a generator's upsampling.
	ConvTranspose2D = "conv_transpose2d"
	// BatchNorm normalises each channel by batch statistics (running averages in
	// inference), then applies a learnt scale and shift and an activation.
	BatchNorm = "batchnorm"
	// Reshape reads its input as an image of Shape [H, W, C]; Flatten as a vector.
	Reshape = "reshape"
	Flatten = "flatten"
)

// Batch normalisation defaults (PyTorch's).
const (
	DefaultBatchNormMomentum = 0.1
	DefaultBatchNormEps      = 1e-5
)

// Bias initialisations.
const (
	BiasZero     = "zero"
	BiasDataMean = "data_mean" // the inverse of the output activation at the data's per-feature mean
)

// LayerSpec is one layer of a net, as written in the config.
type LayerSpec struct {
	// Type is one of the layer types above: dense, maxout, dropout, conv2d,
	// conv_transpose2d, batchnorm, reshape or flatten.
	Type string `yaml:"type" json:"type"`
	// Units is the layer's output width (dense, maxout). A generator's last layer may
	// leave it 0: it then takes the data's width.
	Units int `yaml:"units,omitempty" json:"units,omitempty"`
	// Pieces is the number of linear pieces a maxout unit takes the max over.
	Pieces int `yaml:"pieces,omitempty" json:"pieces,omitempty"`
	// Activation of a dense layer: identity, relu, leaky_relu, sigmoid, tanh.
	Activation string `yaml:"activation,omitempty" json:"activation,omitempty"`
	// Alpha is leaky_relu's negative slope.
	Alpha float32 `yaml:"alpha,omitempty" json:"alpha,omitempty"`
	// Keep is a dropout layer's keep probability, in (0, 1].
	Keep float32 `yaml:"keep,omitempty" json:"keep,omitempty"`
	// InitRange r draws the weights uniformly from (−r, r).
	InitRange float32 `yaml:"init_range,omitempty" json:"init_range,omitempty"`
	// MaxColNorm, when positive, rescales after every update each weight column (the
	// weights into one unit or maxout piece) whose L2 norm exceeds it (pylearn2's
	// max_col_norm, used with maxout networks).
	MaxColNorm float32 `yaml:"max_col_norm,omitempty" json:"max_col_norm,omitempty"`
	// BiasInit is zero (default) or data_mean (output layers of generators only).
	BiasInit string `yaml:"bias_init,omitempty" json:"bias_init,omitempty"`

	// Filters is a convolution's number of output channels (conv2d, conv_transpose2d).
	// A generator's last conv_transpose2d may leave it 0: it then takes the data's
	// channels.
	Filters int `yaml:"filters,omitempty" json:"filters,omitempty"`
	// Kernel is a convolution's square kernel size.
	Kernel int `yaml:"kernel,omitempty" json:"kernel,omitempty"`
	// Stride of a convolution (0: 1).
	Stride int `yaml:"stride,omitempty" json:"stride,omitempty"`
	// Padding is the zero padding on each side of a convolution's input; for a
	// transposed convolution, the padding of the convolution it transposes.
	Padding int `yaml:"padding,omitempty" json:"padding,omitempty"`
	// OutputPadding adds rows and columns to one side of a transposed convolution's
	// output (less than the stride), choosing among the sizes a stride maps alike.
	OutputPadding int `yaml:"output_padding,omitempty" json:"output_padding,omitempty"`
	// Shape is a reshape's image shape, [H, W, C].
	Shape []int `yaml:"shape,omitempty" json:"shape,omitempty"`
	// Momentum of a batchnorm layer's running averages (0: 0.1).
	Momentum float32 `yaml:"momentum,omitempty" json:"momentum,omitempty"`
	// Eps is added to a batchnorm layer's variance (0: 1e-5).
	Eps float32 `yaml:"eps,omitempty" json:"eps,omitempty"`
}

// stride is the spec's stride with its default.
func (l LayerSpec) stride() int { return max(l.Stride, 1) }

// bnMomentum and bnEps are a batchnorm layer's momentum and eps with their defaults.
func (l LayerSpec) bnMomentum() float32 {
	if l.Momentum == 0 {
		return DefaultBatchNormMomentum
	}
	return l.Momentum
}

func (l LayerSpec) bnEps() float32 {
	if l.Eps == 0 {
		return DefaultBatchNormEps
	}
	return l.Eps
}

// pieces is the number of linear pieces a unit or channel takes the max over (1: none).
func (l LayerSpec) pieces() int {
	if l.isMaxout() {
		return l.Pieces
	}
	return 1
}

// isMaxout reports whether the layer takes a max over pieces: a maxout layer, or a
// convolution with pieces > 1.
func (l LayerSpec) isMaxout() bool {
	return l.Type == Maxout || (l.Type == Conv2D && l.Pieces > 1)
}

// PaperGenerator is the MNIST generator of the 2014 paper's published configuration:
// 100 → 1200 ReLU → 1200 ReLU → data width (784) sigmoid, weights U(±0.05), output
// bias at the logit of the data mean.
func PaperGenerator() []LayerSpec {
	return []LayerSpec{
		{Type: Dense, Units: 1200, Activation: "relu", InitRange: 0.05},
		{Type: Dense, Units: 1200, Activation: "relu", InitRange: 0.05},
		{Type: Dense, Activation: "sigmoid", InitRange: 0.05, BiasInit: BiasDataMean},
	}
}

// PaperDiscriminator is the paper's MNIST discriminator: input dropout (keep 0.8) →
// maxout 240×5 → dropout 0.5 → maxout 240×5 → dropout 0.5 → one logit, weights
// U(±0.005). The final sigmoid is fused into the loss, so the last layer is linear.
func PaperDiscriminator() []LayerSpec {
	return []LayerSpec{
		{Type: Dropout, Keep: 0.8},
		{Type: Maxout, Units: 240, Pieces: 5, InitRange: 0.005},
		{Type: Dropout, Keep: 0.5},
		{Type: Maxout, Units: 240, Pieces: 5, InitRange: 0.005},
		{Type: Dropout, Keep: 0.5},
		{Type: Dense, Units: 1, Activation: "identity", InitRange: 0.005},
	}
}

// RingGenerator and RingDiscriminator are small nets for the 2-D ring toy set. G is
// noise → 64 ReLU → 64 ReLU → 2 linear with weights U(±0.3), so that its first
// samples spread around the data mean; from U(±0.1) they start as a tight blob and
// about one seed in twelve never finds one of the modes.
func RingGenerator() []LayerSpec {
	return []LayerSpec{
		{Type: Dense, Units: 64, Activation: "relu", InitRange: 0.3},
		{Type: Dense, Units: 64, Activation: "relu", InitRange: 0.3},
		{Type: Dense, Activation: "identity", InitRange: 0.3, BiasInit: BiasDataMean},
	}
}

// RingDiscriminator is the ring set's discriminator: 2 → 64 leaky ReLU → 64 leaky
// ReLU (slope 0.2) → the logit, weights U(±0.1). In sweeps it dropped modes less
// often than a maxout discriminator (32 units × 4 pieces).
func RingDiscriminator() []LayerSpec {
	return []LayerSpec{
		{Type: Dense, Units: 64, Activation: "leaky_relu", Alpha: 0.2, InitRange: 0.1},
		{Type: Dense, Units: 64, Activation: "leaky_relu", Alpha: 0.2, InitRange: 0.1},
		{Type: Dense, Units: 1, Activation: "identity", InitRange: 0.1},
	}
}

// DCGANGenerator is a DCGAN-style generator (Radford et al. 2015) for h×w×c images
// with h and w divisible by 2^ups: a dense layer to an (h/2^ups)×(w/2^ups)×base
// image, then ups transposed convolutions (kernel 4, stride 2, padding 1) that double
// its size and halve its channels, each but the last followed by batchnorm and ReLU;
// the last gives the data's channels through a sigmoid (the data lie in [0, 1]: the
// sigmoid is DCGAN's tanh output for data in [−1, 1], rescaled). With hidden > 0 a
// dense layer of that many units, with batchnorm and ReLU, comes first (InfoGAN's
// MNIST generator, Chen et al. 2016, is DCGANGenerator(28, 28, 128, 2, 1024)).
// Weights U(±0.035): the standard deviation 0.02 of DCGAN's normal initialisation.
func DCGANGenerator(h, w, base, ups, hidden int) []LayerSpec {
	const r = 0.035
	sh, sw := h>>ups, w>>ups
	var ls []LayerSpec
	if hidden > 0 {
		ls = append(ls, LayerSpec{Type: Dense, Units: hidden, Activation: "identity", InitRange: r},
			LayerSpec{Type: BatchNorm, Activation: "relu"})
	}
	ls = append(ls,
		LayerSpec{Type: Dense, Units: sh * sw * base, Activation: "identity", InitRange: r},
		LayerSpec{Type: BatchNorm, Activation: "relu"},
		LayerSpec{Type: Reshape, Shape: []int{sh, sw, base}})
	for u := 1; u < ups; u++ {
		ls = append(ls,
			LayerSpec{Type: ConvTranspose2D, Filters: base >> u, Kernel: 4, Stride: 2, Padding: 1, Activation: "identity", InitRange: r},
			LayerSpec{Type: BatchNorm, Activation: "relu"})
	}
	return append(ls, LayerSpec{Type: ConvTranspose2D, Kernel: 4, Stride: 2, Padding: 1, Activation: "sigmoid", InitRange: r, BiasInit: BiasDataMean})
}

// DCGANDiscriminator is the DCGAN-style discriminator matching DCGANGenerator: downs
// convolutions (kernel 4, stride 2, padding 1) from `first` channels, doubling them,
// with leaky ReLU (slope 0.2), batchnorm on all but the first, then, with hidden > 0,
// a dense layer of that many units with batchnorm and leaky ReLU (InfoGAN's MNIST
// discriminator is DCGANDiscriminator(64, 2, 1024)), then the logit.
func DCGANDiscriminator(first, downs, hidden int) []LayerSpec {
	const r = 0.035
	ls := []LayerSpec{{Type: Conv2D, Filters: first, Kernel: 4, Stride: 2, Padding: 1, Activation: "leaky_relu", Alpha: 0.2, InitRange: r}}
	for d := 1; d < downs; d++ {
		ls = append(ls,
			LayerSpec{Type: Conv2D, Filters: first << d, Kernel: 4, Stride: 2, Padding: 1, Activation: "identity", InitRange: r},
			LayerSpec{Type: BatchNorm, Activation: "leaky_relu", Alpha: 0.2})
	}
	ls = append(ls, LayerSpec{Type: Flatten})
	if hidden > 0 {
		ls = append(ls, LayerSpec{Type: Dense, Units: hidden, Activation: "identity", InitRange: r},
			LayerSpec{Type: BatchNorm, Activation: "leaky_relu", Alpha: 0.2})
	}
	return append(ls, LayerSpec{Type: Dense, Units: 1, Activation: "identity", InitRange: r})
}

// Head is what a net's last layer is.
type Head bool

const (
	// OutputHead is a last layer as wide as the net's output (a generator's data, a
	// classifier's classes); in a spec, units 0 follows that width.
	OutputHead Head = false
	// LogitHead is a single linear unit, the discriminator's logit.
	LogitHead Head = true
)

// Validate checks a net's layers; role names the net in errors ("generator",
// "discriminator"), and head says what its last layer must be.
func Validate(role string, layers []LayerSpec, head Head) error {
	if len(layers) == 0 {
		return fmt.Errorf("%s: no layers", role)
	}
	hasParams := false
	for i, l := range layers {
		where := fmt.Sprintf("%s layer %d (%s)", role, i, l.Type)
		last := i == len(layers)-1
		var err error
		switch l.Type {
		case Dense, Maxout:
			hasParams = true
			err = validateDense(l, head == OutputHead && last && l.Units == 0)
		case Conv2D, ConvTranspose2D:
			hasParams = true
			err = validateConv(l, head == OutputHead && last && l.Filters == 0)
		case BatchNorm:
			hasParams = true
			err = validateBatchNorm(l)
		case Dropout:
			if !(l.Keep > 0 && l.Keep <= 1) {
				err = fmt.Errorf("keep must be in (0, 1], got %g", l.Keep)
			} else if !l.only(LayerSpec{Type: l.Type, Keep: l.Keep}) {
				err = errors.New("dropout takes only keep")
			}
		case Reshape:
			if len(l.Shape) != 3 || l.Shape[0] <= 0 || l.Shape[1] <= 0 || l.Shape[2] <= 0 {
				err = fmt.Errorf("shape must be [H, W, C], each positive, got %v", l.Shape)
			} else if !l.only(LayerSpec{Type: l.Type, Shape: l.Shape}) {
				err = errors.New("reshape takes only shape")
			}
		case Flatten:
			if !l.only(LayerSpec{Type: l.Type}) {
				err = errors.New("flatten takes nothing")
			}
		default:
			err = fmt.Errorf("unknown layer type %q (want %s)", l.Type, orList(layerTypes))
		}
		if err == nil && l.BiasInit != "" && l.BiasInit != BiasZero {
			switch {
			case l.BiasInit != BiasDataMean:
				err = fmt.Errorf("unknown bias_init %q (want zero or data_mean)", l.BiasInit)
			case head == LogitHead || !last || (l.Type != Dense && l.Type != ConvTranspose2D):
				err = errors.New("bias_init data_mean is only for a generator's last (dense or conv_transpose2d) layer")
			}
		}
		if err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
	}
	if !hasParams {
		return fmt.Errorf("%s: no layer with parameters (dense, maxout, a convolution or batchnorm)", role)
	}
	last := layers[len(layers)-1]
	if head == LogitHead {
		if last.Type != Dense || last.Units != 1 || (last.Activation != "identity" && last.Activation != "" && last.Activation != "linear") {
			return fmt.Errorf("%s: the last layer must be dense with 1 unit and activation identity (the logit; the sigmoid is fused into the loss)", role)
		}
	} else if last.Type != Dense && last.Type != Maxout && last.Type != ConvTranspose2D && last.Type != Conv2D && last.Type != BatchNorm {
		return fmt.Errorf("%s: the last layer must compute something (dense, maxout, a convolution or batchnorm), not %s", role, last.Type)
	}
	return nil
}

var layerTypes = []string{Dense, Maxout, Dropout, Conv2D, ConvTranspose2D, BatchNorm, Reshape, Flatten}

func orList(s []string) string {
	return strings.Join(s[:len(s)-1], ", ") + " or " + s[len(s)-1]
}

// only reports whether l sets no field that want leaves zero (want holds the fields
// its type takes, copied from l).
func (l LayerSpec) only(want LayerSpec) bool {
	return reflect.DeepEqual(l, want)
}

// validateActivation checks a layer's activation name and leaky_relu's alpha.
func validateActivation(l LayerSpec) error {
	if _, err := backend.ParseActivation(l.Activation); err != nil {
		return err
	}
	if l.Activation == "leaky_relu" && !(l.Alpha > 0 && l.Alpha < 1) {
		return fmt.Errorf("leaky_relu needs alpha in (0, 1), got %g", l.Alpha)
	}
	return nil
}

// validateWeights checks init_range and max_col_norm.
func validateWeights(l LayerSpec) error {
	if !(l.MaxColNorm >= 0) || math.IsInf(float64(l.MaxColNorm), 0) {
		return fmt.Errorf("max_col_norm must be ≥ 0 (0: none), got %g", l.MaxColNorm)
	}
	if !(l.InitRange >= 0) || math.IsInf(float64(l.InitRange), 0) {
		return fmt.Errorf("init_range must be ≥ 0, got %g", l.InitRange)
	}
	return nil
}

func validateDense(l LayerSpec, dataWidth bool) error {
	if !dataWidth && (l.Units <= 0 || l.Units > 1<<20) {
		return fmt.Errorf("units must be in 1..%d, got %d", 1<<20, l.Units)
	}
	if l.Type == Maxout {
		if l.Pieces < 1 || l.Pieces > 64 || l.Units*l.Pieces > 1<<20 {
			return fmt.Errorf("pieces must be in 1..64 (units×pieces ≤ %d), got %d", 1<<20, l.Pieces)
		}
		if l.Activation != "" {
			return fmt.Errorf("a maxout layer takes no activation (got %q)", l.Activation)
		}
	} else if err := validateActivation(l); err != nil {
		return err
	}
	if l.Filters != 0 || l.Kernel != 0 || l.Stride != 0 || l.Padding != 0 || l.OutputPadding != 0 || l.Shape != nil || l.Momentum != 0 || l.Eps != 0 {
		return fmt.Errorf("a %s layer takes no filters, kernel, stride, padding, output_padding, shape, momentum or eps", l.Type)
	}
	return validateWeights(l)
}

func validateConv(l LayerSpec, dataChannels bool) error {
	if !dataChannels && (l.Filters <= 0 || l.Filters > 1<<15) {
		return fmt.Errorf("filters must be in 1..%d, got %d", 1<<15, l.Filters)
	}
	if l.Kernel <= 0 || l.Kernel > 64 {
		return fmt.Errorf("kernel must be in 1..64, got %d", l.Kernel)
	}
	if l.Stride < 0 || l.Stride > 64 {
		return fmt.Errorf("stride must be in 1..64 (0: 1), got %d", l.Stride)
	}
	if l.Padding < 0 || l.Padding >= l.Kernel {
		return fmt.Errorf("padding must be in 0..kernel−1 (%d), got %d", l.Kernel-1, l.Padding)
	}
	if l.Type == Conv2D {
		if l.OutputPadding != 0 {
			return errors.New("output_padding is for conv_transpose2d")
		}
		if l.Pieces < 0 || l.Pieces > 64 || l.Filters*max(l.Pieces, 1) > 1<<15 {
			return fmt.Errorf("pieces must be in 1..64 (0: no maxout; filters×pieces ≤ %d), got %d", 1<<15, l.Pieces)
		}
		if l.Pieces > 1 && l.Activation != "" {
			return fmt.Errorf("a maxout convolution (pieces %d) takes no activation (got %q)", l.Pieces, l.Activation)
		}
	} else {
		if l.OutputPadding < 0 || l.OutputPadding >= l.stride() {
			return fmt.Errorf("output_padding must be in 0..stride−1 (%d), got %d", l.stride()-1, l.OutputPadding)
		}
		if l.Pieces != 0 {
			return errors.New("a conv_transpose2d layer takes no pieces")
		}
		if l.MaxColNorm != 0 {
			return errors.New("max_col_norm is not defined for conv_transpose2d (its weight columns are not one channel's filter)")
		}
	}
	if err := validateActivation(l); err != nil {
		return err
	}
	if l.Units != 0 || l.Keep != 0 || l.Shape != nil || l.Momentum != 0 || l.Eps != 0 {
		return fmt.Errorf("a %s layer takes no units, keep, shape, momentum or eps", l.Type)
	}
	return validateWeights(l)
}

func validateBatchNorm(l LayerSpec) error {
	if err := validateActivation(l); err != nil {
		return err
	}
	if !(l.Momentum >= 0 && l.Momentum <= 1) {
		return fmt.Errorf("momentum must be in (0, 1] (0: %g), got %g", DefaultBatchNormMomentum, l.Momentum)
	}
	if !(l.Eps >= 0) || math.IsInf(float64(l.Eps), 0) {
		return fmt.Errorf("eps must be positive (0: %g), got %g", DefaultBatchNormEps, l.Eps)
	}
	want := LayerSpec{Type: l.Type, Activation: l.Activation, Alpha: l.Alpha, Momentum: l.Momentum, Eps: l.Eps}
	if !l.only(want) {
		return errors.New("batchnorm takes only activation, alpha, momentum and eps")
	}
	return nil
}

// DescribeLayers writes layers the way logs and errors show them:
// "dense(1200 relu)→dropout(0.5)→maxout(240×5)".
func DescribeLayers(ls []LayerSpec) string {
	var b strings.Builder
	for i, l := range ls {
		if i > 0 {
			b.WriteString("→")
		}
		switch l.Type {
		case Dropout:
			fmt.Fprintf(&b, "dropout(%g)", l.Keep)
		case Maxout:
			fmt.Fprintf(&b, "maxout(%d×%d)", l.Units, l.Pieces)
		case Conv2D, ConvTranspose2D:
			fmt.Fprintf(&b, "%s(%d k%d s%d p%d", l.Type, l.Filters, l.Kernel, l.stride(), l.Padding)
			if l.Pieces > 1 {
				fmt.Fprintf(&b, " ×%d", l.Pieces)
			}
			if l.Activation != "" {
				fmt.Fprintf(&b, " %s", l.Activation)
			}
			b.WriteString(")")
		case BatchNorm:
			fmt.Fprintf(&b, "batchnorm(%s)", l.Activation)
		case Reshape:
			fmt.Fprintf(&b, "reshape(%v)", l.Shape)
		case Flatten:
			b.WriteString("flatten")
		default:
			fmt.Fprintf(&b, "dense(%d %s)", l.Units, l.Activation)
		}
	}
	return b.String()
}
