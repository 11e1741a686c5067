package eval

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"

	"github.com/gantrain/gantrain/backend"
	"github.com/gantrain/gantrain/checkpoint"
	"github.com/gantrain/gantrain/model"
	"github.com/gantrain/gantrain/rng"
)

// Classifier file metadata keys.
const (
	MetaClassifierArch = "gantrain.classifier.architecture"
	MetaClassifierCmd  = "gantrain.classifier.command"
	MetaClassifierSeed = "gantrain.classifier.seed"
	MetaClassifierEps  = "gantrain.classifier.epochs"
	MetaClassifierAcc  = "gantrain.classifier.test_accuracy"
)

// DefaultClassifierFile is the embedded MNIST classifier's path inside Embedded.
const DefaultClassifierFile = "mnistclassifier/mnist-mlp.safetensors"

// Embedded holds the committed MNIST classifier (made by `gantrain classifier train`,
// see eval/REFERENCE.md), so that evaluating needs no extra file.
//
//go:embed mnistclassifier
var Embedded embed.FS

// ClassifierArch is a classifier's architecture: a feature net (its output is the
// penultimate layer, whose activations the Fréchet distance compares) and a head
// that maps the features to one logit per class.
type ClassifierArch struct {
	In       int               `json:"in"`
	Classes  int               `json:"classes"`
	Features []model.LayerSpec `json:"features"`
	Head     []model.LayerSpec `json:"head"`
}

// MNISTClassifierArch is the committed MNIST classifier: an MLP 784 → 512 ReLU →
// 256 ReLU → 10, with dropout (keep 0.8) after each hidden layer while training. Its
// 256 penultimate ReLU units are the features of the Fréchet distance.
// Weights start uniform in ±√(6/fan_in) (He) for the ReLU layers, ±√(6/(in+out))
// (Glorot) for the logits.
func MNISTClassifierArch() ClassifierArch {
	he := func(in int) float32 { return float32(math.Sqrt(6 / float64(in))) }
	return ClassifierArch{
		In: 784, Classes: 10,
		Features: []model.LayerSpec{
			{Type: model.Dense, Units: 512, Activation: "relu", InitRange: he(784)},
			{Type: model.Dropout, Keep: 0.8},
			{Type: model.Dense, Units: 256, Activation: "relu", InitRange: he(512)},
		},
		Head: []model.LayerSpec{
			{Type: model.Dropout, Keep: 0.8},
			{Type: model.Dense, Units: 10, Activation: "identity", InitRange: float32(math.Sqrt(6.0 / (256 + 10)))},
		},
	}
}

// String describes the architecture, e.g. "784→dense(512 relu)→dropout(0.8)→…→10".
func (a ClassifierArch) String() string {
	return strconv.Itoa(a.In) + "→" + model.DescribeLayers(append(append([]model.LayerSpec(nil), a.Features...), a.Head...))
}

// Classifier is a classifier resident in a backend: its two nets and, once Infer has
// run, the buffers of an inference pass.
type Classifier struct {
	Arch           ClassifierArch
	Features, Head *model.Net
	// Meta is the metadata of the file the classifier was loaded from (nil otherwise).
	Meta map[string]string

	b backend.Backend
	// Inference: an inferBatch×In input, the passes over it, and host buffers.
	x            backend.Tensor
	fpass, hpass *model.Pass
	hostX        []float32
	hostLogits   []float32
	hostFeats    []float32
}

// inferBatch is the number of rows an inference pass runs at once.
const inferBatch = 500

// NewClassifier builds a classifier of architecture a in b, with zero parameters.
func NewClassifier(b backend.Backend, a ClassifierArch) (*Classifier, error) {
	if a.In < 1 || a.Classes < 2 {
		return nil, fmt.Errorf("classifier: input width %d and classes %d (want ≥ 1 and ≥ 2)", a.In, a.Classes)
	}
	if len(a.Features) == 0 || len(a.Head) == 0 {
		return nil, errors.New("classifier: the architecture needs feature layers and head layers")
	}
	lastUnits := func(ls []model.LayerSpec) int {
		for i := len(ls) - 1; i >= 0; i-- {
			if ls[i].Units > 0 {
				return ls[i].Units
			}
		}
		return 0
	}
	nf := lastUnits(a.Features)
	f, err := model.Build(b, "features", a.Features, model.Flat(a.In), model.Flat(nf), model.OutputHead)
	if err != nil {
		return nil, fmt.Errorf("classifier: %w", err)
	}
	h, err := model.Build(b, "head", a.Head, model.Flat(f.Out), model.Flat(a.Classes), model.OutputHead)
	if err != nil {
		return nil, fmt.Errorf("classifier: %w", err)
	}
	return &Classifier{Arch: a, Features: f, Head: h, b: b}, nil
}

// Init draws initial parameters from the seed (uniform in ±init_range, biases zero).
func (c *Classifier) Init(seed uint64) error {
	for k, n := range []*model.Net{c.Features, c.Head} {
		p, err := n.InitialParams(rng.Stream{Seed: seed, Offset: streamInit | uint64(k)}, nil)
		if err != nil {
			return fmt.Errorf("classifier init: %w", err)
		}
		if err := c.b.Upload(n.Params, p); err != nil {
			return fmt.Errorf("classifier init: %w", err)
		}
	}
	return nil
}

// NumFeatures is the width of the penultimate layer.
func (c *Classifier) NumFeatures() int { return c.Features.Out }

// Infer runs the classifier (dropout off) on the n rows of x (n×In, row-major) and
// returns p(y|x) (n×Classes, softmax of the logits in float64) and the penultimate
// features (n×NumFeatures). It runs in batches of 500 rows and stops between batches
// when ctx is done.
func (c *Classifier) Infer(ctx context.Context, x []float32, n int) (probs, feats []float64, err error) {
	return c.infer(ctx, x, n, true)
}

// Probabilities is Infer without the features: p(y|x) only.
func (c *Classifier) Probabilities(ctx context.Context, x []float32, n int) ([]float64, error) {
	probs, _, err := c.infer(ctx, x, n, false)
	return probs, err
}

// infer is Infer, which downloads the features only when wantFeatures is set.
func (c *Classifier) infer(ctx context.Context, x []float32, n int, wantFeatures bool) (probs, feats []float64, err error) {
	in, C, F := c.Arch.In, c.Arch.Classes, c.Features.Out
	if n < 0 || len(x) != n*in {
		return nil, nil, fmt.Errorf("classifier: %d values for %d rows of %d features", len(x), n, in)
	}
	if err := c.allocInfer(); err != nil {
		return nil, nil, err
	}
	probs = make([]float64, n*C)
	if wantFeatures {
		feats = make([]float64, n*F)
	}
	for r0 := 0; r0 < n; r0 += inferBatch {
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		r := min(inferBatch, n-r0)
		copy(c.hostX, x[r0*in:(r0+r)*in])
		clear(c.hostX[r*in:]) // pad a short last batch with zeros
		if err := c.b.Upload(c.x, c.hostX); err != nil {
			return nil, nil, fmt.Errorf("classifier: %w", err)
		}
		c.fpass.Forward(c.b, model.Infer, rng.Stream{})
		c.hpass.Forward(c.b, model.Infer, rng.Stream{})
		if err := c.b.Download(c.hostLogits, c.hpass.Out); err != nil {
			return nil, nil, fmt.Errorf("classifier: %w", err)
		}
		for i := 0; i < r; i++ {
			softmax(probs[(r0+i)*C:(r0+i+1)*C], c.hostLogits[i*C:(i+1)*C])
		}
		if wantFeatures {
			if err := c.b.Download(c.hostFeats, c.fpass.Out); err != nil {
				return nil, nil, fmt.Errorf("classifier: %w", err)
			}
			for i, v := range c.hostFeats[:r*F] {
				feats[r0*F+i] = float64(v)
			}
		}
	}
	return probs, feats, nil
}

func (c *Classifier) allocInfer() error {
	if c.x != nil {
		return nil
	}
	x, err := c.b.Alloc(backend.F32, inferBatch, c.Arch.In)
	if err != nil {
		return fmt.Errorf("classifier: %w", err)
	}
	fp, err := c.Features.NewPass(c.b, x, model.PassBuffers{})
	if err != nil {
		return fmt.Errorf("classifier: %w", err)
	}
	hp, err := c.Head.NewPass(c.b, fp.Out, model.PassBuffers{})
	if err != nil {
		return fmt.Errorf("classifier: %w", err)
	}
	c.x, c.fpass, c.hpass = x, fp, hp
	c.hostX = make([]float32, inferBatch*c.Arch.In)
	c.hostLogits = make([]float32, inferBatch*c.Arch.Classes)
	c.hostFeats = make([]float32, inferBatch*c.Features.Out)
	return nil
}

// softmax writes softmax(logits) into p, in float64 around the row maximum.
func softmax(p []float64, logits []float32) {
	mx := math.Inf(-1)
	for _, v := range logits {
		mx = max(mx, float64(v))
	}
	var z float64
	for j, v := range logits {
		p[j] = math.Exp(float64(v) - mx)
		z += p[j]
	}
	for j := range p {
		p[j] /= z
	}
}

// Accuracy is the fraction of rows whose most probable class is the label (NaN
// without labels, or with fewer rows than labels).
func Accuracy(probs []float64, classes int, labels []uint8) float64 {
	if len(labels) == 0 || classes < 1 || len(probs) < len(labels)*classes {
		return math.NaN()
	}
	right := 0
	for i, l := range labels {
		row := probs[i*classes : (i+1)*classes]
		best := 0
		for j, p := range row {
			if p > row[best] {
				best = j
			}
		}
		if best == int(l) {
			right++
		}
	}
	return float64(right) / float64(len(labels))
}

// File gathers the classifier's parameters as a safetensors file: each weight as
// PyTorch lays it out ([out, in], torch.nn.Linear's layout) under names like
// "features.layers.0.weight", the architecture (JSON) and meta in the metadata.
func (c *Classifier) File(meta map[string]string) (*checkpoint.File, error) {
	f := &checkpoint.File{Metadata: map[string]string{}}
	for k, v := range meta {
		f.Metadata[k] = v
	}
	arch, err := json.Marshal(c.Arch)
	if err != nil {
		return nil, fmt.Errorf("classifier: %w", err)
	}
	f.Metadata[MetaClassifierArch] = string(arch)
	for _, n := range []*model.Net{c.Features, c.Head} {
		host := make([]float32, n.Size())
		if err := c.b.Download(host, n.Params); err != nil {
			return nil, fmt.Errorf("classifier %s: %w", n.Name, err)
		}
		for _, p := range n.ParamList() {
			src := host[p.Offset : p.Offset+p.Rows*p.Cols]
			t := checkpoint.Tensor{Name: n.Name + "." + p.Name}
			if p.IsBias {
				t.Shape, t.F32 = []int{p.Cols}, append([]float32(nil), src...)
			} else {
				t.Shape, t.F32 = []int{p.Cols, p.Rows}, make([]float32, len(src))
				for i := 0; i < p.Rows; i++ {
					for j := 0; j < p.Cols; j++ {
						t.F32[j*p.Rows+i] = src[i*p.Cols+j]
					}
				}
			}
			f.Tensors = append(f.Tensors, t)
		}
	}
	return f, nil
}

// LoadClassifier builds the classifier a file describes in b and loads its weights.
func LoadClassifier(b backend.Backend, f *checkpoint.File) (*Classifier, error) {
	raw, ok := f.Metadata[MetaClassifierArch]
	if !ok {
		return nil, fmt.Errorf("classifier: no %s metadata (not a gantrain classifier file?)", MetaClassifierArch)
	}
	var a ClassifierArch
	if err := json.Unmarshal([]byte(raw), &a); err != nil {
		return nil, fmt.Errorf("classifier: metadata %s: %w", MetaClassifierArch, err)
	}
	c, err := NewClassifier(b, a)
	if err != nil {
		return nil, err
	}
	for _, n := range []*model.Net{c.Features, c.Head} {
		host := make([]float32, n.Size())
		for _, p := range n.ParamList() {
			name := n.Name + "." + p.Name
			t, ok := f.Tensor(name)
			want := []int{p.Cols}
			if !p.IsBias {
				want = []int{p.Cols, p.Rows}
			}
			if !ok {
				return nil, fmt.Errorf("classifier: no tensor %s", name)
			}
			if t.F32 == nil || !reflect.DeepEqual(t.Shape, want) {
				return nil, fmt.Errorf("classifier: tensor %s has shape %v %s, want %v F32", name, t.Shape, t.DType(), want)
			}
			dst := host[p.Offset : p.Offset+p.Rows*p.Cols]
			for _, v := range t.F32 {
				if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
					return nil, fmt.Errorf("classifier: tensor %s holds a non-finite value", name)
				}
			}
			if p.IsBias {
				copy(dst, t.F32)
				continue
			}
			for i := 0; i < p.Rows; i++ {
				for j := 0; j < p.Cols; j++ {
					dst[i*p.Cols+j] = t.F32[j*p.Rows+i]
				}
			}
		}
		if err := b.Upload(n.Params, host); err != nil {
			return nil, fmt.Errorf("classifier %s: %w", n.Name, err)
		}
	}
	c.Meta = f.Metadata
	return c, nil
}

// LoadDefaultClassifier loads the embedded MNIST classifier into b.
func LoadDefaultClassifier(b backend.Backend) (*Classifier, error) {
	raw, err := Embedded.ReadFile(DefaultClassifierFile)
	if err != nil {
		return nil, fmt.Errorf("classifier: the embedded %s is missing (train it with `gantrain classifier train --out eval/%s` and rebuild): %w",
			DefaultClassifierFile, DefaultClassifierFile, err)
	}
	f, err := checkpoint.DecodeBytes(raw, checkpoint.DecodeOptions{})
	if err != nil {
		return nil, fmt.Errorf("classifier: embedded %s: %w", DefaultClassifierFile, err)
	}
	return LoadClassifier(b, f)
}
