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
	"fmt"
	"math"
	"strings"

	"github.com/gantrain/gantrain/backend"
)

// Layer types.
const (
	Dense   = "dense"
	Maxout  = "maxout"
	Dropout = "dropout"
)

// Bias initialisations.
const (
	BiasZero     = "zero"
	BiasDataMean = "data_mean" // the inverse of the output activation at the data's per-feature mean
)

// LayerSpec is one layer of a net, as written in the config.
type LayerSpec struct {
	// Type is dense, maxout or dropout.
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
		switch l.Type {
		case Dense, Maxout:
			hasParams = true
			dataWidth := head == OutputHead && i == len(layers)-1 && l.Units == 0
			if !dataWidth && (l.Units <= 0 || l.Units > 1<<20) {
				return fmt.Errorf("%s: units must be in 1..%d, got %d", where, 1<<20, l.Units)
			}
			if l.Type == Maxout && (l.Pieces < 1 || l.Pieces > 64 || l.Units*l.Pieces > 1<<20) {
				return fmt.Errorf("%s: pieces must be in 1..64 (units×pieces ≤ %d), got %d", where, 1<<20, l.Pieces)
			}
			if l.Type == Dense {
				if _, err := backend.ParseActivation(l.Activation); err != nil {
					return fmt.Errorf("%s: %w", where, err)
				}
			} else if l.Activation != "" {
				return fmt.Errorf("%s: a maxout layer takes no activation (got %q)", where, l.Activation)
			}
			if l.Activation == "leaky_relu" && !(l.Alpha > 0 && l.Alpha < 1) {
				return fmt.Errorf("%s: leaky_relu needs alpha in (0, 1), got %g", where, l.Alpha)
			}
			if !(l.MaxColNorm >= 0) || math.IsInf(float64(l.MaxColNorm), 0) {
				return fmt.Errorf("%s: max_col_norm must be ≥ 0 (0: none), got %g", where, l.MaxColNorm)
			}
			if !(l.InitRange >= 0) || math.IsInf(float64(l.InitRange), 0) {
				return fmt.Errorf("%s: init_range must be ≥ 0, got %g", where, l.InitRange)
			}
			switch l.BiasInit {
			case "", BiasZero:
			case BiasDataMean:
				if head == LogitHead || i != len(layers)-1 || l.Type != Dense {
					return fmt.Errorf("%s: bias_init data_mean is only for a generator's last (dense) layer", where)
				}
			default:
				return fmt.Errorf("%s: unknown bias_init %q (want zero or data_mean)", where, l.BiasInit)
			}
		case Dropout:
			if !(l.Keep > 0 && l.Keep <= 1) {
				return fmt.Errorf("%s: keep must be in (0, 1], got %g", where, l.Keep)
			}
			if l.Units != 0 || l.Pieces != 0 || l.Activation != "" || l.MaxColNorm != 0 {
				return fmt.Errorf("%s: dropout takes only keep", where)
			}
		default:
			return fmt.Errorf("%s: unknown layer type %q (want dense, maxout or dropout)", where, l.Type)
		}
	}
	if !hasParams {
		return fmt.Errorf("%s: no dense or maxout layer", role)
	}
	last := layers[len(layers)-1]
	if head == LogitHead {
		if last.Type != Dense || last.Units != 1 || (last.Activation != "identity" && last.Activation != "" && last.Activation != "linear") {
			return fmt.Errorf("%s: the last layer must be dense with 1 unit and activation identity (the logit; the sigmoid is fused into the loss)", role)
		}
	} else if last.Type == Dropout {
		return fmt.Errorf("%s: the last layer must not be dropout", role)
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
		default:
			fmt.Fprintf(&b, "dense(%d %s)", l.Units, l.Activation)
		}
	}
	return b.String()
}
