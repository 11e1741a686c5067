package model

import (
	"fmt"
	"math"
	"strings"

	"github.com/gantrain/gantrain/backend"
	"github.com/gantrain/gantrain/rng"
)

// Shape is the shape of one example's activation: an H×W×C image stored HWC, or a
// vector of n values as the 1×1×n image (Flat).
type Shape struct{ H, W, C int }

// Flat is the shape of a vector of n values.
func Flat(n int) Shape { return Shape{1, 1, n} }

// Size is the number of values, H·W·C.
func (s Shape) Size() int { return s.H * s.W * s.C }

// positions is the number of pixels, H·W: an activation's rows per example in its
// (n·H·W)×C view.
func (s Shape) positions() int { return s.H * s.W }

func (s Shape) String() string {
	if s.H == 1 && s.W == 1 {
		return fmt.Sprint(s.C)
	}
	return fmt.Sprintf("%d×%d×%d", s.H, s.W, s.C)
}

// layer is a built layer: its spec, shapes and parameter views.
type layer struct {
	spec    LayerSpec
	in, out Shape // shapes of the layer's input and output
	act     backend.Act
	pieces  int              // maxout pieces (1: none)
	geom    backend.ConvGeom // convolutions: the (transposed) convolution's geometry

	params       bool // the layer has a weight (or batchnorm's scale) and a bias
	wRows, wCols int  // the weight's shape as a matrix
	bLen         int
	wOff, bOff   int            // offsets in the arenas
	w, b         backend.Tensor // views of Params (batchnorm: gamma, beta)
	dw, db       backend.Tensor // views of Grads
	sOff         int            // batchnorm: offset of the running mean in State (the variance follows)
	runMean      backend.Tensor // views of State
	runVar       backend.Tensor
	wLayout      Layout
}

// Layout says how a parameter's matrix maps to PyTorch's tensor of the same layer.
type Layout uint8

const (
	// LayoutLinear is an in×out weight: torch.nn.Linear's [out, in].
	LayoutLinear Layout = iota
	// LayoutVector is a bias, a batchnorm scale or shift or running statistic: [n].
	LayoutVector
	// LayoutConv is a (KH·KW·Cin)×Cout weight: torch.nn.Conv2d's [Cout, Cin, KH, KW].
	LayoutConv
	// LayoutConvTranspose is a Cin×(KH·KW·Cout) weight: torch.nn.ConvTranspose2d's
	// [Cin, Cout, KH, KW].
	LayoutConvTranspose
)

// Param describes one parameter tensor's place in a net's arenas.
type Param struct {
	Name       string // e.g. "layers.1.weight"
	Offset     int    // element offset in the arena
	Rows, Cols int    // weight: in×out (x·W); bias: 1×out
	Layer      int
	IsBias     bool // a vector (bias, batchnorm scale or shift, running statistic)
	Layout     Layout
	KH, KW     int // convolution weights: the kernel
	// InImage and OutImage are the images whose H×W×C flattening the rows (a dense
	// weight's input features) and the columns (its output features, a bias, a
	// batchnorm vector over features) are, where they are one: PyTorch flattens NCHW
	// images, so those features are stored in C×H×W order. A zero Shape: none.
	InImage, OutImage Shape
	// Pieces is a maxout's: its columns are unit·Pieces + piece, and only the units
	// are reordered.
	Pieces int
}

// torchFeature maps feature k of the H×W×C flattening of s to its place in the C×H×W
// flattening; the identity where the two orders agree (one channel or one position).
func (s Shape) torchFeature(k int) int {
	if s.C <= 1 || s.positions() <= 1 {
		return k
	}
	h, w, c := k/(s.W*s.C), k/s.C%s.W, k%s.C
	return (c*s.H+h)*s.W + w
}

// torchColumn maps column j of p (an output feature) to PyTorch's order.
func (p Param) torchColumn(j int) int {
	pc := max(p.Pieces, 1)
	return p.OutImage.torchFeature(j/pc)*pc + j%pc
}

// TorchShape is the shape of p's tensor in PyTorch's module of the same layer.
func (p Param) TorchShape() []int {
	switch p.Layout {
	case LayoutVector:
		return []int{p.Rows * p.Cols}
	case LayoutConv:
		return []int{p.Cols, p.Rows / (p.KH * p.KW), p.KH, p.KW}
	case LayoutConvTranspose:
		return []int{p.Rows, p.Cols / (p.KH * p.KW), p.KH, p.KW}
	}
	return []int{p.Cols, p.Rows}
}

// torchIndex maps element (i, j) of p's matrix to its index in PyTorch's layout.
func (p Param) torchIndex(i, j int) int {
	switch p.Layout {
	case LayoutVector:
		return i*p.Cols + p.torchColumn(j)
	case LayoutConv: // row (ky, kx, c), column o → [o, c, ky, kx]
		cin := p.Rows / (p.KH * p.KW)
		k, c := i/cin, i%cin
		return (j*cin+c)*p.KH*p.KW + k
	case LayoutConvTranspose: // row c, column (ky, kx, o) → [c, o, ky, kx]
		cout := p.Cols / (p.KH * p.KW)
		k, o := j/cout, j%cout
		return (i*cout+o)*p.KH*p.KW + k
	}
	return p.torchColumn(j)*p.Rows + p.InImage.torchFeature(i)
}

// ToTorch copies p out of a host copy of its arena in PyTorch's layout.
func (p Param) ToTorch(arena []float32) []float32 {
	src := arena[p.Offset : p.Offset+p.Rows*p.Cols]
	dst := make([]float32, len(src))
	for i := 0; i < p.Rows; i++ {
		for j := 0; j < p.Cols; j++ {
			dst[p.torchIndex(i, j)] = src[i*p.Cols+j]
		}
	}
	return dst
}

// FromTorch is ToTorch's inverse: it copies src (PyTorch's layout) into p's place in
// a host arena.
func (p Param) FromTorch(src, arena []float32) {
	dst := arena[p.Offset : p.Offset+p.Rows*p.Cols]
	for i := 0; i < p.Rows; i++ {
		for j := 0; j < p.Cols; j++ {
			dst[i*p.Cols+j] = src[p.torchIndex(i, j)]
		}
	}
}

// Net is a built net: layers with their parameters resident in a backend.
type Net struct {
	Name    string
	In, Out int
	// InShape and OutShape are the shapes of one example's input and output.
	InShape, OutShape Shape
	layers            []layer
	params            []Param
	states            []Param
	// firstParam is the index of the first layer with parameters.
	firstParam int
	// Params holds every parameter, Grads every parameter gradient, in the same layout.
	Params, Grads backend.Tensor
	// State holds the batchnorm layers' running means and variances (nil: none). It is
	// not trained by gradients; a checkpoint keeps it.
	State backend.Tensor
}

// Build validates specs and allocates a net whose input has shape in. With an
// OutputHead the last layer's output must have the shape data (a last dense layer
// with Units 0 or conv_transpose2d with Filters 0 follows it); a net that ends in a
// dense layer flattens it, so data may be an image.
func Build(b backend.Backend, name string, specs []LayerSpec, in, data Shape, head Head) (*Net, error) {
	if err := Validate(name, specs, head); err != nil {
		return nil, err
	}
	if in.H <= 0 || in.W <= 0 || in.C <= 0 {
		return nil, fmt.Errorf("%s: input shape must be positive, got %v", name, in)
	}
	if head == OutputHead {
		specs = append([]LayerSpec(nil), specs...)
		last := &specs[len(specs)-1]
		switch {
		case last.Type == ConvTranspose2D && last.Filters == 0:
			last.Filters = data.C
		case last.Type != ConvTranspose2D && last.Type != Conv2D && last.Type != BatchNorm && last.Units == 0:
			last.Units = data.Size()
		}
	}
	n := &Net{Name: name, In: in.Size(), InShape: in}
	shape, size, state := in, 0, 0
	for i, s := range specs {
		l, err := newLayer(s, shape)
		if err != nil {
			return nil, fmt.Errorf("%s layer %d (%s), input %v: %w", name, i, s.Type, shape, err)
		}
		if l.params {
			l.wOff, l.bOff = size, size+l.wRows*l.wCols
			size += l.wRows*l.wCols + l.bLen
			weight := Param{Name: fmt.Sprintf("layers.%d.weight", i), Offset: l.wOff, Rows: l.wRows, Cols: l.wCols, Layer: i, Layout: l.wLayout, KH: s.Kernel, KW: s.Kernel}
			weight.IsBias = l.wLayout == LayoutVector
			n.params = append(n.params, weight,
				Param{Name: fmt.Sprintf("layers.%d.bias", i), Offset: l.bOff, Rows: 1, Cols: l.bLen, Layer: i, IsBias: true, Layout: LayoutVector})
		}
		if s.Type == BatchNorm {
			l.sOff = state
			c := l.out.C
			n.states = append(n.states,
				Param{Name: fmt.Sprintf("layers.%d.running_mean", i), Offset: state, Rows: 1, Cols: c, Layer: i, IsBias: true, Layout: LayoutVector},
				Param{Name: fmt.Sprintf("layers.%d.running_var", i), Offset: state + c, Rows: 1, Cols: c, Layer: i, IsBias: true, Layout: LayoutVector})
			state += 2 * c
		}
		if size > math.MaxInt32 || state > math.MaxInt32 {
			return nil, fmt.Errorf("%s: %d parameters is too many", name, size)
		}
		n.layers = append(n.layers, l)
		shape = l.out
	}
	n.Out, n.OutShape = shape.Size(), shape
	if head == OutputHead && shape != data && !(shape == Flat(data.Size()) && specs[len(specs)-1].Type != ConvTranspose2D) {
		return nil, fmt.Errorf("%s: the last layer's output is %v but the data is %v (leave units or filters out to follow the data)", name, shape, data)
	}
	inImg, outImg := torchImages(n.layers, data, head)
	for _, ps := range [][]Param{n.params, n.states} {
		for k := range ps {
			p, l := &ps[k], n.layers[ps[k].Layer]
			p.OutImage = outImg[p.Layer]
			if l.spec.Type == Dense || l.spec.Type == Maxout {
				p.Pieces = l.pieces
				if !p.IsBias {
					p.InImage = inImg[p.Layer]
				}
			}
		}
	}
	for i, l := range n.layers {
		if l.params {
			n.firstParam = i
			break
		}
	}
	var err error
	if n.Params, err = b.Alloc(backend.F32, 1, size); err != nil {
		return nil, fmt.Errorf("%s parameters: %w", name, err)
	}
	if n.Grads, err = b.Alloc(backend.F32, 1, size); err != nil {
		return nil, fmt.Errorf("%s gradients: %w", name, err)
	}
	if err := n.viewArena(b, n.Params, func(l *layer, w, bias backend.Tensor) { l.w, l.b = w, bias }); err != nil {
		return nil, err
	}
	if err := n.viewArena(b, n.Grads, func(l *layer, w, bias backend.Tensor) { l.dw, l.db = w, bias }); err != nil {
		return nil, err
	}
	if state > 0 {
		if n.State, err = b.Alloc(backend.F32, 1, state); err != nil {
			return nil, fmt.Errorf("%s batchnorm statistics: %w", name, err)
		}
	}
	if err := n.viewState(b); err != nil {
		return nil, err
	}
	return n, nil
}

// torchImages works out the images whose H×W×C flattening a layer's flat features
// are, where they are one, for Param.InImage and OutImage: in[i] is the image a dense
// (or maxout) layer i reads as a vector (its own input image, or one a flatten made,
// through batchnorm and dropout over features); out[i] the image that dense layer i's
// output becomes (by a reshape, through batchnorm and dropout, or as a generator's
// image output), and the features of a batchnorm or dropout layer i over a flat input.
// A flatten whose features reach a reshape without a dense layer between them has no
// PyTorch equivalent (a view of NCHW features is not one of NHWC features); the
// reshape's order is then the one stored.
func torchImages(layers []layer, data Shape, head Head) (in, out []Shape) {
	in, out = make([]Shape, len(layers)), make([]Shape, len(layers))
	dense := func(l layer) bool { return l.spec.Type == Dense || l.spec.Type == Maxout }
	perFeature := func(l layer) bool {
		return (l.spec.Type == BatchNorm || l.spec.Type == Dropout) && l.in.positions() == 1
	}
	var cur Shape // the image the features in flight flatten
	for i, l := range layers {
		switch {
		case dense(l):
			if l.in.positions() > 1 {
				cur = l.in
			}
			in[i], cur = cur, Shape{}
		case l.spec.Type == Flatten:
			cur = l.in
		case perFeature(l):
			out[i] = cur
		default:
			cur = Shape{}
		}
	}
	var want Shape // the image the features in flight become
	if last := layers[len(layers)-1]; head == OutputHead && data.positions() > 1 && last.out.positions() == 1 {
		want = data
	}
	for i := len(layers) - 1; i >= 0; i-- {
		l := layers[i]
		switch {
		case l.spec.Type == Reshape:
			want = l.out
		case perFeature(l):
			if want != (Shape{}) {
				out[i] = want
			}
		case dense(l):
			out[i], want = want, Shape{}
		default:
			want = Shape{}
		}
	}
	return in, out
}

// viewState points the batchnorm layers' running statistics at their part of State.
func (n *Net) viewState(b backend.Backend) error {
	for i := range n.layers {
		l := &n.layers[i]
		if l.spec.Type != BatchNorm {
			continue
		}
		c := l.out.C
		var err error
		if l.runMean, err = b.View(n.State, l.sOff, 1, c); err == nil {
			l.runVar, err = b.View(n.State, l.sOff+c, 1, c)
		}
		if err != nil {
			return fmt.Errorf("%s layer %d: %w", n.Name, i, err)
		}
	}
	return nil
}

// newLayer works out a layer's shapes and parameter sizes from its spec and input.
func newLayer(s LayerSpec, in Shape) (layer, error) {
	l := layer{spec: s, in: in, out: in, pieces: 1}
	kind, _ := backend.ParseActivation(s.Activation)
	l.act = backend.Act{Kind: kind, Alpha: s.Alpha}
	switch s.Type {
	case Dense, Maxout:
		l.pieces = s.pieces()
		if s.Type == Maxout {
			l.act = backend.Act{}
		}
		l.out = Flat(s.Units)
		l.params, l.wRows, l.wCols, l.bLen = true, in.Size(), s.Units*l.pieces, s.Units*l.pieces
	case Conv2D:
		l.pieces = max(s.Pieces, 1)
		if l.pieces > 1 {
			l.act = backend.Act{}
		}
		l.geom = backend.ConvGeom{InH: in.H, InW: in.W, InC: in.C, KH: s.Kernel, KW: s.Kernel,
			StrideH: s.stride(), StrideW: s.stride(), PadH: s.Padding, PadW: s.Padding}
		if err := l.geom.Valid(); err != nil {
			return l, err
		}
		l.out = Shape{l.geom.OutH(), l.geom.OutW(), s.Filters}
		f := s.Filters * l.pieces
		l.params, l.wRows, l.wCols, l.bLen, l.wLayout = true, l.geom.Patch(), f, f, LayoutConv
	case ConvTranspose2D:
		st := s.stride()
		out := Shape{(in.H-1)*st - 2*s.Padding + s.Kernel + s.OutputPadding, (in.W-1)*st - 2*s.Padding + s.Kernel + s.OutputPadding, s.Filters}
		if out.H <= 0 || out.W <= 0 {
			return l, fmt.Errorf("kernel %d, stride %d and padding %d leave no output", s.Kernel, st, s.Padding)
		}
		l.geom = backend.ConvGeom{InH: out.H, InW: out.W, InC: s.Filters, KH: s.Kernel, KW: s.Kernel,
			StrideH: st, StrideW: st, PadH: s.Padding, PadW: s.Padding}
		if err := l.geom.Valid(); err != nil {
			return l, err
		}
		if l.geom.OutH() != in.H || l.geom.OutW() != in.W {
			return l, fmt.Errorf("output %v does not map back to the input by the convolution it transposes", out)
		}
		l.out = out
		l.params, l.wRows, l.wCols, l.bLen, l.wLayout = true, in.C, l.geom.Patch(), s.Filters, LayoutConvTranspose
	case BatchNorm:
		l.params, l.wRows, l.wCols, l.bLen, l.wLayout = true, 1, in.C, in.C, LayoutVector
	case Reshape:
		l.out = Shape{s.Shape[0], s.Shape[1], s.Shape[2]}
		if l.out.Size() != in.Size() {
			return l, fmt.Errorf("shape %v holds %d values, the input %d", s.Shape, l.out.Size(), in.Size())
		}
	case Flatten:
		l.out = Flat(in.Size())
	}
	return l, nil
}

// viewArena hands set each parametric layer's weight and bias views of arena (laid out
// as n.Params).
func (n *Net) viewArena(b backend.Backend, arena backend.Tensor, set func(l *layer, w, bias backend.Tensor)) error {
	for i := range n.layers {
		l := &n.layers[i]
		if !l.params {
			continue
		}
		w, err := b.View(arena, l.wOff, l.wRows, l.wCols)
		if err != nil {
			return fmt.Errorf("%s layer %d: %w", n.Name, i, err)
		}
		bias, err := b.View(arena, l.bOff, 1, l.bLen)
		if err != nil {
			return fmt.Errorf("%s layer %d: %w", n.Name, i, err)
		}
		set(l, w, bias)
	}
	return nil
}

// WithParams returns a net of the same layers whose parameters are views of arena
// (laid out as n.Params), for inference passes over another copy of the parameters:
// the exponential moving average of a generator's. It shares n's gradient arena and
// must not be trained. Its batchnorm layers keep running statistics of their own,
// since n's were gathered with other parameters: they start as InitialState, and
// Pass.StandStatistics sets them for these parameters.
func (n *Net) WithParams(b backend.Backend, arena backend.Tensor) (*Net, error) {
	if arena.DType() != backend.F32 || arena.Rows() != 1 || arena.Cols() != n.Size() {
		return nil, fmt.Errorf("%s: a parameter arena must be F32 1×%d, got %s", n.Name, n.Size(), backend.ShapeString(arena))
	}
	c := *n
	c.Params = arena
	c.layers = append([]layer(nil), n.layers...)
	if err := c.viewArena(b, arena, func(l *layer, w, bias backend.Tensor) { l.w, l.b = w, bias }); err != nil {
		return nil, err
	}
	if n.State != nil {
		var err error
		if c.State, err = b.Alloc(backend.F32, 1, n.State.Cols()); err != nil {
			return nil, fmt.Errorf("%s batchnorm statistics: %w", n.Name, err)
		}
		if err := b.Upload(c.State, n.InitialState()); err != nil {
			return nil, fmt.Errorf("%s batchnorm statistics: %w", n.Name, err)
		}
		if err := c.viewState(b); err != nil {
			return nil, err
		}
	}
	return &c, nil
}

// Constrain applies the layers' weight constraints (max_col_norm) after an update.
func (n *Net) Constrain(b backend.Backend) {
	for _, l := range n.layers {
		if l.spec.MaxColNorm > 0 {
			b.ClipColumnNorms(l.w, l.spec.MaxColNorm)
		}
	}
}

// Size is the number of parameters.
func (n *Net) Size() int { return n.Params.Cols() }

// ParamList describes every parameter tensor in arena order.
func (n *Net) ParamList() []Param { return append([]Param(nil), n.params...) }

// StateList describes the tensors of State (running means and variances) in order.
func (n *Net) StateList() []Param { return append([]Param(nil), n.states...) }

// HasBatchNorm reports whether the net has a batchnorm layer.
func (n *Net) HasBatchNorm() bool { return n.State != nil }

// InitialState is State's initial contents: running means 0 and variances 1.
func (n *Net) InitialState() []float32 {
	if n.State == nil {
		return nil
	}
	st := make([]float32, n.State.Cols())
	for _, p := range n.states {
		if strings.HasSuffix(p.Name, "running_var") {
			for j := range p.Cols {
				st[p.Offset+j] = 1
			}
		}
	}
	return st
}

// InitialParams draws the net's initial parameters on the host: weights uniform in
// (−r, r) from the counter-based RNG with the given stream, biases zero or, for
// bias_init data_mean, the inverse of the output activation at dataMean (clamped so
// that a pixel that is always 0 or 1 gets a finite logit; a transposed convolution's
// bias, one per channel, at the channel's mean), batchnorm scales 1 and shifts 0.
func (n *Net) InitialParams(s rng.Stream, dataMean []float32) ([]float32, error) {
	p := make([]float32, n.Size())
	for _, l := range n.layers {
		if !l.params {
			continue
		}
		if l.spec.Type == BatchNorm {
			for j := range l.wCols {
				p[l.wOff+j] = 1
			}
			continue
		}
		r := l.spec.InitRange
		if r > 0 {
			for e := 0; e < l.wRows*l.wCols; e++ {
				p[l.wOff+e] = rng.ToUniform(s.Word(uint64(l.wOff+e)), -r, r)
			}
		}
		if l.spec.BiasInit == BiasDataMean {
			if len(dataMean) != l.out.Size() {
				return nil, fmt.Errorf("%s: data_mean bias needs the mean of %d features, have %d", n.Name, l.out.Size(), len(dataMean))
			}
			for j, m := range channelMeans(dataMean, l.bLen) {
				p[l.bOff+j] = inverseActivation(l.act.Kind, m)
			}
		}
	}
	return p, nil
}

// channelMeans averages HWC values over their pixels, per channel of c; with one
// value per channel it returns them as they are.
func channelMeans(v []float32, c int) []float32 {
	if len(v) == c {
		return v
	}
	sums := make([]float64, c)
	for i, x := range v {
		sums[i%c] += float64(x)
	}
	out := make([]float32, c)
	for j, sum := range sums {
		out[j] = float32(sum / float64(len(v)/c))
	}
	return out
}

// inverseActivation is the pre-activation that gives output m.
func inverseActivation(a backend.Activation, m float32) float32 {
	// pylearn2's init_sigmoid_bias_from_array, which the paper's code used, clips the
	// mean to [1e-7, 1-1e-7]: an always-black MNIST pixel starts at logit −16.1.
	const eps = 1e-7
	x := float64(m)
	switch a {
	case backend.Sigmoid:
		x = math.Min(math.Max(x, eps), 1-eps)
		return float32(math.Log(x / (1 - x)))
	case backend.Tanh:
		x = math.Min(math.Max(x, -1+eps), 1-eps)
		return float32(math.Atanh(x))
	}
	return m
}

// Pass holds the activations and gradients of one minibatch through a net.
type Pass struct {
	net *Net
	N   int
	// groups is the number of equal row groups whose batchnorm statistics are kept
	// apart (the discriminator's real and fake halves).
	groups int
	// In is the input (N×net.In), Out the output (N×net.Out); DOut receives dL/dOut
	// before Backward; DIn gets dL/dIn from Backward when the pass has one.
	In, Out, DOut, DIn backend.Tensor
	// Buffers of N rows, one row per example (so that Rows views them alike).
	acts  []backend.Tensor // acts[i] is layer i's input, acts[len] = Out
	dacts []backend.Tensor // gradients of acts (dacts[0] = DIn, may be nil)
	lin   []backend.Tensor // maxout: pre-max activations (units·pieces, or H·W·C·pieces); scratch of DenseMaxout
	dlin  []backend.Tensor
	aux   []backend.Tensor // maxout: argmax (I32); dropout: mask
	cols  []backend.Tensor // convolutions: the column matrix (its gradient in a transposed one's backward)
	dcols []backend.Tensor // conv2d: the column matrix's gradient
	// Batchnorm statistics of the last training forward: groups×C.
	mean, variance []backend.Tensor
	// standMomentum is the running statistics' momentum of a standing pass.
	standMomentum float32
	// v holds each layer's views of the buffers as (N·H·W)×C matrices.
	v []views
}

// views are one layer's buffers seen as matrices of one row per pixel: x and dx with
// the input's channels, y, dy and aux with the output's, lin and dlin with the
// output's channels × pieces, cols and dcols with a receptive field per row. For a
// dense layer they are the N-row buffers themselves.
type views struct {
	x, y, dx, dy, lin, dlin, aux, cols, dcols backend.Tensor
}

// PassBuffers lets a pass use buffers it does not own, so that nets chain without
// copies: the generator's Out can be a view of the discriminator's input, and its
// DOut a view of the discriminator's DIn.
type PassBuffers struct {
	Out, DOut backend.Tensor // nil: allocate
	InputGrad bool           // allocate DIn, so that Backward can compute dL/dIn
	// Groups is the number of equal consecutive row groups whose batchnorm statistics
	// are computed apart (0: 1), as if each were its own pass: the discriminator's real
	// and fake halves.
	Groups int
}

// NewPass allocates the buffers of a pass of in.Rows() rows whose input is in.
func (n *Net) NewPass(b backend.Backend, in backend.Tensor, bufs PassBuffers) (*Pass, error) {
	rows := in.Rows()
	if in.Cols() != n.In || rows <= 0 {
		return nil, fmt.Errorf("%s pass: input %s, want N×%d", n.Name, backend.ShapeString(in), n.In)
	}
	for _, t := range []backend.Tensor{bufs.Out, bufs.DOut} {
		if t != nil && (t.Rows() != rows || t.Cols() != n.Out || t.DType() != backend.F32) {
			return nil, fmt.Errorf("%s pass: output buffer %s, want %d×%d f32", n.Name, backend.ShapeString(t), rows, n.Out)
		}
	}
	groups := max(bufs.Groups, 1)
	if rows%groups != 0 {
		return nil, fmt.Errorf("%s pass: %d rows do not split into %d equal groups", n.Name, rows, groups)
	}
	out := bufs.Out
	p := &Pass{net: n, N: rows, In: in, groups: groups}
	L := len(n.layers)
	p.acts = make([]backend.Tensor, L+1)
	p.dacts = make([]backend.Tensor, L+1)
	p.lin, p.dlin, p.aux = make([]backend.Tensor, L), make([]backend.Tensor, L), make([]backend.Tensor, L)
	p.cols, p.dcols = make([]backend.Tensor, L), make([]backend.Tensor, L)
	p.mean, p.variance = make([]backend.Tensor, L), make([]backend.Tensor, L)
	p.acts[0] = in
	var err error
	alloc := func(dt backend.DType, r, cols int) backend.Tensor {
		t, e := b.Alloc(dt, r, cols)
		if e != nil && err == nil {
			err = e
		}
		return t
	}
	if bufs.InputGrad {
		p.dacts[0] = alloc(backend.F32, rows, n.In)
	}
	for i, l := range n.layers {
		switch {
		case i == L-1 && out != nil:
			p.acts[i+1] = out
		case l.spec.Type == Reshape || l.spec.Type == Flatten:
			p.acts[i+1] = p.acts[i] // the same values, read in another shape
		default:
			p.acts[i+1] = alloc(backend.F32, rows, l.out.Size())
		}
		switch {
		case i == L-1 && bufs.DOut != nil:
			p.dacts[i+1] = bufs.DOut
		case (l.spec.Type == Reshape || l.spec.Type == Flatten) && p.dacts[i] != nil:
			p.dacts[i+1] = p.dacts[i]
		default:
			p.dacts[i+1] = alloc(backend.F32, rows, l.out.Size())
		}
		if l.pieces > 1 {
			p.lin[i] = alloc(backend.F32, rows, l.out.Size()*l.pieces)
			p.dlin[i] = alloc(backend.F32, rows, l.out.Size()*l.pieces)
			p.aux[i] = alloc(backend.I32, rows, l.out.Size())
		} else if l.spec.Type == Maxout { // maxout with one piece: the max is the piece
			p.lin[i] = alloc(backend.F32, rows, l.out.Size())
			p.dlin[i] = alloc(backend.F32, rows, l.out.Size())
			p.aux[i] = alloc(backend.I32, rows, l.out.Size())
		}
		switch l.spec.Type {
		case Dropout:
			p.aux[i] = alloc(backend.F32, rows, l.out.Size())
		case Conv2D:
			p.cols[i] = alloc(backend.F32, rows, l.geom.Positions()*l.geom.Patch())
			if i > n.firstParam || bufs.InputGrad {
				p.dcols[i] = alloc(backend.F32, rows, l.geom.Positions()*l.geom.Patch())
			}
		case ConvTranspose2D:
			p.cols[i] = alloc(backend.F32, rows, l.geom.Positions()*l.geom.Patch())
		case BatchNorm:
			p.mean[i] = alloc(backend.F32, groups, l.out.C)
			p.variance[i] = alloc(backend.F32, groups, l.out.C)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("%s pass of %d rows: %w", n.Name, rows, err)
	}
	if err := p.makeViews(b); err != nil {
		return nil, err
	}
	p.Out, p.DOut, p.DIn = p.acts[L], p.dacts[L], p.dacts[0]
	return p, nil
}

// makeViews builds each layer's matrix views of the pass's buffers.
func (p *Pass) makeViews(b backend.Backend) error {
	var err error
	perPixel := func(t backend.Tensor, c int) backend.Tensor {
		if t == nil || err != nil {
			return nil
		}
		v, e := b.View(t, 0, backend.Len(t)/c, c)
		if e != nil {
			err = e
		}
		return v
	}
	p.v = make([]views, len(p.net.layers))
	for i, l := range p.net.layers {
		v := &p.v[i]
		switch l.spec.Type {
		case Dense, Maxout:
			v.x, v.y, v.dx, v.dy = p.acts[i], p.acts[i+1], p.dacts[i], p.dacts[i+1]
			v.lin, v.dlin, v.aux = p.lin[i], p.dlin[i], p.aux[i]
			continue
		case Conv2D, ConvTranspose2D:
			v.cols, v.dcols = perPixel(p.cols[i], l.geom.Patch()), perPixel(p.dcols[i], l.geom.Patch())
		}
		v.x, v.dx = perPixel(p.acts[i], l.in.C), perPixel(p.dacts[i], l.in.C)
		v.y, v.dy = perPixel(p.acts[i+1], l.out.C), perPixel(p.dacts[i+1], l.out.C)
		v.aux = perPixel(p.aux[i], l.out.C)
		v.lin, v.dlin = perPixel(p.lin[i], l.out.C*l.pieces), perPixel(p.dlin[i], l.out.C*l.pieces)
	}
	if err != nil {
		return fmt.Errorf("%s pass: %w", p.net.Name, err)
	}
	return nil
}

// Rows returns a pass over rows [row0, row0+rows) of p whose buffers are views of
// p's: the discriminator's pass over the fake half of its real+fake minibatch. With
// batchnorm groups the range must cover whole groups.
func (p *Pass) Rows(b backend.Backend, row0, rows int) (*Pass, error) {
	if row0 < 0 || rows <= 0 || row0+rows > p.N {
		return nil, fmt.Errorf("%s pass: rows [%d, %d) outside %d rows", p.net.Name, row0, row0+rows, p.N)
	}
	per := p.N / p.groups
	if !p.net.HasBatchNorm() {
		per = 1 // no statistics to keep apart
	} else if row0%per != 0 || rows%per != 0 {
		return nil, fmt.Errorf("%s pass: rows [%d, %d) split its batchnorm groups of %d rows", p.net.Name, row0, row0+rows, per)
	}
	q := &Pass{net: p.net, N: rows, groups: max(rows/per, 1)}
	var err error
	view := func(t backend.Tensor, r0, r int) backend.Tensor {
		if t == nil || err != nil {
			return nil
		}
		v, e := b.View(t, r0*t.Cols(), r, t.Cols())
		if e != nil {
			err = e
		}
		return v
	}
	views := func(ts []backend.Tensor) []backend.Tensor {
		out := make([]backend.Tensor, len(ts))
		for i, t := range ts {
			out[i] = view(t, row0, rows)
		}
		return out
	}
	q.acts, q.dacts = views(p.acts), views(p.dacts)
	q.lin, q.dlin, q.aux = views(p.lin), views(p.dlin), views(p.aux)
	q.cols, q.dcols = views(p.cols), views(p.dcols)
	q.mean, q.variance = make([]backend.Tensor, len(p.mean)), make([]backend.Tensor, len(p.variance))
	if p.net.HasBatchNorm() {
		for i := range p.mean {
			q.mean[i] = view(p.mean[i], row0/per, q.groups)
			q.variance[i] = view(p.variance[i], row0/per, q.groups)
		}
	} else {
		q.groups = 1
	}
	if err != nil {
		return nil, fmt.Errorf("%s pass rows [%d, %d): %w", p.net.Name, row0, row0+rows, err)
	}
	if err := q.makeViews(b); err != nil {
		return nil, err
	}
	L := len(p.net.layers)
	q.In, q.Out, q.DOut, q.DIn = q.acts[0], q.acts[L], q.dacts[L], q.dacts[0]
	return q, nil
}

// Mode says whether a pass trains or infers.
type Mode uint8

const (
	// Infer runs dropout layers as the identity and batchnorm with its running
	// statistics.
	Infer Mode = iota
	// Train draws dropout masks and runs batchnorm with the batch's statistics,
	// updating the running ones.
	Train
	// InferBatchStats is Infer with batchnorm normalising by the batch's own
	// statistics (and leaving the running ones), as in training.
	InferBatchStats
)

// standing is the mode of StandStatistics' passes: Infer, but batchnorm normalises by
// the batch's statistics and folds them into the running ones with the pass's
// standMomentum.
const standing Mode = 255

// StandStatistics sets the running statistics of the net's batchnorm layers to the
// mean, over `batches` passes, of each batch's statistics (the standing statistics of
// Brock et al. 2019), fill(k) writing the k-th batch into In before its pass. A net
// whose parameters no training pass has run with (the moving average of a
// generator's) then infers with statistics of its own. Dropout layers run as in
// inference. The pass must keep its rows in one group.
func (p *Pass) StandStatistics(b backend.Backend, batches int, fill func(k int)) error {
	if batches < 1 || p.groups != 1 {
		return fmt.Errorf("%s: standing statistics need at least one batch of one group, got %d batches of %d groups", p.net.Name, batches, p.groups)
	}
	if p.net.State == nil {
		return nil
	}
	for k := range batches {
		fill(k)
		p.standMomentum = 1 / float32(k+1) // the running mean of the batches so far
		p.Forward(b, standing, rng.Stream{})
	}
	return nil
}

// Forward runs the net on In into Out. In Train mode, dropout layer i draws its
// mask from stream {s.Seed, s.Offset + i}; in the inference modes dropout is the
// identity (the inverted scaling already happened in training). A maxout layer runs as
// one DenseMaxout, which may leave its pre-max buffer (lin) unwritten: its backward
// needs only the argmax. In training, a maxout layer followed by dropout runs as one
// DenseMaxout with the dropout, and the maxout's own output (acts[i+1]) is not
// written: nothing after it reads that buffer.
func (p *Pass) Forward(b backend.Backend, mode Mode, s rng.Stream) {
	train := mode == Train
	stream := func(i int) rng.Stream { return rng.Stream{Seed: s.Seed, Offset: s.Offset + uint64(i)} }
	for i := 0; i < len(p.net.layers); i++ {
		l, v := &p.net.layers[i], &p.v[i]
		x, y := p.acts[i], p.acts[i+1]
		switch l.spec.Type {
		case Dense:
			b.DenseForward(y, x, l.w, l.b, l.act)
		case Maxout, Conv2D:
			in := x
			if l.spec.Type == Conv2D {
				if !l.spec.isMaxout() {
					b.ConvForward(v.y, v.cols, x, l.w, l.b, l.geom, l.act)
					break
				}
				b.Im2Col(v.cols, x, l.geom)
				in = v.cols
			}
			if !l.spec.isMaxout() {
				b.DenseForward(v.y, in, l.w, l.b, l.act)
				break
			}
			if train && p.droppedAfter(i) {
				next := &p.v[i+1]
				b.DenseMaxout(next.y, v.aux, next.aux, v.lin, in, l.w, l.b, l.pieces, p.net.layers[i+1].spec.Keep, stream(i+1))
				i++ // the dropout layer is done
				continue
			}
			b.DenseMaxout(v.y, v.aux, nil, v.lin, in, l.w, l.b, l.pieces, 1, rng.Stream{})
		case ConvTranspose2D:
			b.ConvTransposeForward(y, v.cols, v.x, l.w, l.b, l.geom, l.act)
		case BatchNorm:
			switch mode {
			case Train:
				b.BatchNorm(v.y, p.mean[i], p.variance[i], v.x, l.w, l.b, l.runMean, l.runVar, p.groups, l.spec.bnEps(), l.spec.bnMomentum(), l.act)
			case InferBatchStats:
				b.BatchNorm(v.y, p.mean[i], p.variance[i], v.x, l.w, l.b, nil, nil, p.groups, l.spec.bnEps(), l.spec.bnMomentum(), l.act)
			case standing:
				b.BatchNorm(v.y, p.mean[i], p.variance[i], v.x, l.w, l.b, l.runMean, l.runVar, p.groups, l.spec.bnEps(), p.standMomentum, l.act)
			default:
				b.BatchNormInfer(v.y, v.x, l.w, l.b, l.runMean, l.runVar, l.spec.bnEps(), l.act)
			}
		case Dropout:
			if train {
				b.Dropout(y, p.aux[i], x, l.spec.Keep, stream(i))
			} else {
				b.Copy(y, x)
			}
		}
	}
}

// droppedAfter reports whether layer i takes a max over pieces and its output goes
// straight into a dropout layer: the pair runs as one kernel each way in training.
func (p *Pass) droppedAfter(i int) bool {
	ls := p.net.layers
	return ls[i].spec.isMaxout() && i+1 < len(ls) && ls[i+1].spec.Type == Dropout
}

// Grads says which gradients a Backward writes.
type Grads struct {
	Params bool // the net's Grads
	Input  bool // the pass's DIn (the pass must have been made with InputGrad)
}

// Backward back-propagates DOut (which it overwrites, as it does every internal
// gradient buffer) through the layers of the last training Forward, writing the
// gradients want names.
func (p *Pass) Backward(b backend.Backend, want Grads) {
	paramGrads, inputGrad := want.Params, want.Input
	for i := len(p.net.layers) - 1; i >= 0; i-- {
		l, v := &p.net.layers[i], &p.v[i]
		dx, dy := p.dacts[i], p.dacts[i+1]
		// A layer's input gradient is wanted only by the layers below it: for their
		// parameters (none below the first parametric layer) or for DIn. Skipping it
		// saves the D step the largest product of the discriminator's backward pass.
		if !inputGrad && (!paramGrads || i <= p.net.firstParam) {
			dx = nil
		}
		if dx == nil && (!paramGrads || i < p.net.firstParam) {
			return // nothing at or below this layer is wanted
		}
		dw, db := l.dw, l.db
		if !paramGrads {
			dw, db = nil, nil
		}
		switch l.spec.Type {
		case Dense:
			b.DenseBackward(dx, dw, db, dy, p.acts[i], p.acts[i+1], l.w, l.act)
		case Maxout, Conv2D:
			in, din := p.acts[i], dx
			if l.spec.Type == Conv2D {
				in = v.cols
				if dx != nil {
					din = v.dcols
				}
			}
			if !l.spec.isMaxout() {
				if l.spec.Type == Conv2D {
					b.ConvBackward(dx, dw, db, v.dcols, v.dy, v.cols, v.y, l.w, l.geom, l.act)
					break
				}
				b.DenseBackward(din, dw, db, v.dy, in, v.y, l.w, l.act)
			} else {
				if p.droppedAfter(i) { // the dropout above left its gradient unmasked (below)
					next := &p.v[i+1]
					b.MaxoutDropoutBackward(v.dlin, next.dy, next.aux, v.aux, l.pieces)
				} else {
					b.MaxoutBackward(v.dlin, v.dy, v.aux, l.pieces)
				}
				b.DenseBackward(din, dw, db, v.dlin, in, v.lin, l.w, backend.Act{})
			}
			if l.spec.Type == Conv2D && dx != nil {
				b.Col2Im(dx, v.dcols, l.geom)
			}
		case ConvTranspose2D:
			b.BiasActivationBackward(db, v.dy, v.y, l.act)
			var dxm backend.Tensor
			if dx != nil {
				dxm = v.dx
			}
			b.ConvTransposeBackward(dxm, dw, v.cols, dy, v.x, l.w, l.geom) // the columns' gradient in the forward's columns

		case BatchNorm:
			var dxm backend.Tensor
			if dx != nil {
				dxm = v.dx
			}
			b.BatchNormBackward(dxm, dw, db, v.dy, v.x, v.y, l.w, p.mean[i], p.variance[i], p.groups, l.spec.bnEps(), l.act)
		case Dropout:
			// Above a maxout layer the mask is applied by that layer's MaxoutDropoutBackward
			// (the maxout runs whenever this layer's dx is wanted: it is parametric).
			if dx != nil && !(i > 0 && p.droppedAfter(i-1)) {
				b.Mul(dx, dy, p.aux[i])
			}
		}
	}
}
