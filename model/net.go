package model

import (
	"fmt"
	"math"

	"github.com/gantrain/gantrain/backend"
	"github.com/gantrain/gantrain/rng"
)

// layer is a built layer: its spec, widths and parameter views.
type layer struct {
	spec    LayerSpec
	in, out int // widths of the layer's input and output
	lin     int // width of the linear part: out, or out×pieces for maxout
	act     backend.Act

	wOff, bOff int            // offsets in the arenas
	w, b       backend.Tensor // views of Params
	dw, db     backend.Tensor // views of Grads
}

// Param describes one parameter tensor's place in a net's arenas.
type Param struct {
	Name       string // e.g. "layers.1.weight"
	Offset     int    // element offset in the arena
	Rows, Cols int    // weight: in×out (x·W); bias: 1×out
	Layer      int
	IsBias     bool
}

// Net is a built net: layers with their parameters resident in a backend.
type Net struct {
	Name    string
	In, Out int
	layers  []layer
	params  []Param
	// firstParam is the index of the first layer with parameters.
	firstParam int
	// Params holds every parameter, Grads every parameter gradient, in the same layout.
	Params, Grads backend.Tensor
}

// Build validates specs and allocates a net with input width in. With an OutputHead
// a last layer with Units 0 gets width dataWidth; one with another width must match it.
func Build(b backend.Backend, name string, specs []LayerSpec, in, dataWidth int, head Head) (*Net, error) {
	if err := Validate(name, specs, head); err != nil {
		return nil, err
	}
	if in <= 0 {
		return nil, fmt.Errorf("%s: input width must be positive, got %d", name, in)
	}
	if head == OutputHead {
		specs = append([]LayerSpec(nil), specs...)
		last := &specs[len(specs)-1]
		if last.Units == 0 {
			last.Units = dataWidth
		} else if last.Units != dataWidth {
			return nil, fmt.Errorf("%s: the last layer has %d units but the data has %d features (leave units out to follow the data)", name, last.Units, dataWidth)
		}
	}
	n := &Net{Name: name, In: in}
	width, size := in, 0
	for i, s := range specs {
		l := layer{spec: s, in: width, out: width}
		switch s.Type {
		case Dense, Maxout:
			l.out, l.lin = s.Units, s.Units
			if s.Type == Maxout {
				l.lin = s.Units * s.Pieces
			} else {
				kind, _ := backend.ParseActivation(s.Activation)
				l.act = backend.Act{Kind: kind, Alpha: s.Alpha}
			}
			l.wOff, l.bOff = size, size+l.in*l.lin
			size += l.in*l.lin + l.lin
			n.params = append(n.params,
				Param{Name: fmt.Sprintf("layers.%d.weight", i), Offset: l.wOff, Rows: l.in, Cols: l.lin, Layer: i},
				Param{Name: fmt.Sprintf("layers.%d.bias", i), Offset: l.bOff, Rows: 1, Cols: l.lin, Layer: i, IsBias: true})
		}
		if size > math.MaxInt32 {
			return nil, fmt.Errorf("%s: %d parameters is too many", name, size)
		}
		n.layers = append(n.layers, l)
		width = l.out
	}
	n.Out = width
	for i, l := range n.layers {
		if l.lin > 0 {
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
	return n, nil
}

// viewArena hands set each parametric layer's weight and bias views of arena (laid out
// as n.Params).
func (n *Net) viewArena(b backend.Backend, arena backend.Tensor, set func(l *layer, w, bias backend.Tensor)) error {
	for i := range n.layers {
		l := &n.layers[i]
		if l.lin == 0 {
			continue
		}
		w, err := b.View(arena, l.wOff, l.in, l.lin)
		if err != nil {
			return fmt.Errorf("%s layer %d: %w", n.Name, i, err)
		}
		bias, err := b.View(arena, l.bOff, 1, l.lin)
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
// must not be trained.
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

// InitialParams draws the net's initial parameters on the host: weights uniform in
// (−r, r) from the counter-based RNG with the given stream, biases zero or, for
// bias_init data_mean, the inverse of the output activation at dataMean (clamped so
// that a pixel that is always 0 or 1 gets a finite logit).
func (n *Net) InitialParams(s rng.Stream, dataMean []float32) ([]float32, error) {
	p := make([]float32, n.Size())
	for _, l := range n.layers {
		if l.lin == 0 {
			continue
		}
		r := l.spec.InitRange
		if r > 0 {
			for e := 0; e < l.in*l.lin; e++ {
				p[l.wOff+e] = rng.ToUniform(s.Word(uint64(l.wOff+e)), -r, r)
			}
		}
		if l.spec.BiasInit == BiasDataMean {
			if len(dataMean) != l.lin {
				return nil, fmt.Errorf("%s: data_mean bias needs the mean of %d features, have %d", n.Name, l.lin, len(dataMean))
			}
			for j, m := range dataMean {
				p[l.bOff+j] = inverseActivation(l.act.Kind, m)
			}
		}
	}
	return p, nil
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
	// In is the input (N×net.In), Out the output (N×net.Out); DOut receives dL/dOut
	// before Backward; DIn gets dL/dIn from Backward when the pass has one.
	In, Out, DOut, DIn backend.Tensor
	acts               []backend.Tensor // acts[i] is layer i's input, acts[len] = Out
	dacts              []backend.Tensor // gradients of acts (dacts[0] = DIn, may be nil)
	lin                []backend.Tensor // maxout: pre-max activations (N×units·pieces)
	dlin               []backend.Tensor
	aux                []backend.Tensor // maxout: argmax (I32); dropout: mask
}

// PassBuffers lets a pass use buffers it does not own, so that nets chain without
// copies: the generator's Out can be a view of the discriminator's input, and its
// DOut a view of the discriminator's DIn.
type PassBuffers struct {
	Out, DOut backend.Tensor // nil: allocate
	InputGrad bool           // allocate DIn, so that Backward can compute dL/dIn
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
	out := bufs.Out
	p := &Pass{net: n, N: rows, In: in}
	L := len(n.layers)
	p.acts = make([]backend.Tensor, L+1)
	p.dacts = make([]backend.Tensor, L+1)
	p.lin = make([]backend.Tensor, L)
	p.dlin = make([]backend.Tensor, L)
	p.aux = make([]backend.Tensor, L)
	p.acts[0] = in
	var err error
	alloc := func(dt backend.DType, cols int) backend.Tensor {
		t, e := b.Alloc(dt, rows, cols)
		if e != nil && err == nil {
			err = e
		}
		return t
	}
	for i, l := range n.layers {
		if i == L-1 && out != nil {
			p.acts[i+1] = out
		} else {
			p.acts[i+1] = alloc(backend.F32, l.out)
		}
		if i == L-1 && bufs.DOut != nil {
			p.dacts[i+1] = bufs.DOut
		} else {
			p.dacts[i+1] = alloc(backend.F32, l.out)
		}
		switch l.spec.Type {
		case Maxout:
			p.lin[i] = alloc(backend.F32, l.lin)
			p.dlin[i] = alloc(backend.F32, l.lin)
			p.aux[i] = alloc(backend.I32, l.out)
		case Dropout:
			p.aux[i] = alloc(backend.F32, l.out)
		}
	}
	if bufs.InputGrad {
		p.dacts[0] = alloc(backend.F32, n.In)
	}
	if err != nil {
		return nil, fmt.Errorf("%s pass of %d rows: %w", n.Name, rows, err)
	}
	p.Out, p.DOut, p.DIn = p.acts[L], p.dacts[L], p.dacts[0]
	return p, nil
}

// Rows returns a pass over rows [row0, row0+rows) of p whose buffers are views of
// p's: the discriminator's pass over the fake half of its real+fake minibatch.
func (p *Pass) Rows(b backend.Backend, row0, rows int) (*Pass, error) {
	if row0 < 0 || rows <= 0 || row0+rows > p.N {
		return nil, fmt.Errorf("%s pass: rows [%d, %d) outside %d rows", p.net.Name, row0, row0+rows, p.N)
	}
	q := &Pass{net: p.net, N: rows}
	var err error
	view := func(t backend.Tensor) backend.Tensor {
		if t == nil || err != nil {
			return nil
		}
		v, e := b.View(t, row0*t.Cols(), rows, t.Cols())
		if e != nil {
			err = e
		}
		return v
	}
	views := func(ts []backend.Tensor) []backend.Tensor {
		out := make([]backend.Tensor, len(ts))
		for i, t := range ts {
			out[i] = view(t)
		}
		return out
	}
	q.acts, q.dacts = views(p.acts), views(p.dacts)
	q.lin, q.dlin, q.aux = views(p.lin), views(p.dlin), views(p.aux)
	if err != nil {
		return nil, fmt.Errorf("%s pass rows [%d, %d): %w", p.net.Name, row0, row0+rows, err)
	}
	L := len(p.net.layers)
	q.In, q.Out, q.DOut, q.DIn = q.acts[0], q.acts[L], q.dacts[L], q.dacts[0]
	return q, nil
}

// Mode says whether a pass trains or infers.
type Mode bool

const (
	// Infer runs dropout layers as the identity.
	Infer Mode = false
	// Train draws dropout masks.
	Train Mode = true
)

// Forward runs the net on In into Out. In Train mode, dropout layer i draws its
// mask from stream {s.Seed, s.Offset + i}; in Infer mode dropout is the identity (the
// inverted scaling already happened in training). In training, a maxout layer
// followed by dropout runs as one MaxoutDropout, and the maxout's own output
// (acts[i+1]) is not written: nothing after it reads that buffer.
func (p *Pass) Forward(b backend.Backend, mode Mode, s rng.Stream) {
	train := mode == Train
	stream := func(i int) rng.Stream { return rng.Stream{Seed: s.Seed, Offset: s.Offset + uint64(i)} }
	for i := 0; i < len(p.net.layers); i++ {
		l := p.net.layers[i]
		x, y := p.acts[i], p.acts[i+1]
		switch l.spec.Type {
		case Dense:
			b.DenseForward(y, x, l.w, l.b, l.act)
		case Maxout:
			b.DenseForward(p.lin[i], x, l.w, l.b, backend.Act{})
			if train && p.droppedAfter(i) {
				b.MaxoutDropout(p.acts[i+2], p.aux[i], p.aux[i+1], p.lin[i], l.spec.Pieces,
					p.net.layers[i+1].spec.Keep, stream(i+1))
				i++ // the dropout layer is done
				continue
			}
			b.MaxoutForward(y, p.aux[i], p.lin[i], l.spec.Pieces)
		case Dropout:
			if train {
				b.Dropout(y, p.aux[i], x, l.spec.Keep, stream(i))
			} else {
				b.Copy(y, x)
			}
		}
	}
}

// droppedAfter reports whether layer i is a maxout layer whose output goes straight
// into a dropout layer: the pair runs as one kernel each way in training.
func (p *Pass) droppedAfter(i int) bool {
	ls := p.net.layers
	return ls[i].spec.Type == Maxout && i+1 < len(ls) && ls[i+1].spec.Type == Dropout
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
		l := p.net.layers[i]
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
		case Maxout:
			if p.droppedAfter(i) { // the dropout above left its gradient unmasked (below)
				b.MaxoutDropoutBackward(p.dlin[i], p.dacts[i+2], p.aux[i+1], p.aux[i], l.spec.Pieces)
			} else {
				b.MaxoutBackward(p.dlin[i], dy, p.aux[i], l.spec.Pieces)
			}
			b.DenseBackward(dx, dw, db, p.dlin[i], p.acts[i], p.lin[i], l.w, backend.Act{})
		case Dropout:
			// Above a maxout layer the mask is applied by that layer's MaxoutDropoutBackward
			// (the maxout runs whenever this layer's dx is wanted: it is parametric).
			if dx != nil && !(i > 0 && p.droppedAfter(i-1)) {
				b.Mul(dx, dy, p.aux[i])
			}
		}
	}
}
