package model

// Reference test: the generator and discriminator are rebuilt as a gorgonia graph
// (float64, symbolic gradients) with the same parameters, inputs and dropout masks,
// and the CPU backend's forward values, losses and every parameter gradient are
// checked against it. The nets are wired exactly as package trainer wires them: D's
// input is [real; fake] rows, G writes into the fake half, G's DOut is D's DIn for
// the fake half.

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	gg "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/gantrain/gantrain/backend"
	"github.com/gantrain/gantrain/backend/backendtest"
	"github.com/gantrain/gantrain/cpu"
	"github.com/gantrain/gantrain/rng"
)

// refRTol is the comparison tolerance: element i of a tensor passes when
// |got−want| ≤ refRTol·(|want| + 0.1·scale), scale = max|want| over the tensor. That
// is a relative tolerance of 1e-4 with an absolute floor of 1e-5 of the tensor's
// magnitude (for elements that cancel to almost nothing).
const refRTol = 1e-4

// cmpResult is the outcome of comparing our float32 tensor with the reference.
type cmpResult struct {
	ok     bool
	n      int
	scale  float64 // max |want|
	maxAbs float64 // max |got − want|
	maxErr float64 // max |got − want| / (|want| + 0.1·scale): must be ≤ rtol
	worst  int     // element with the largest normalised error
	big    int     // element with the largest |want|
	why    string
}

// compareRef compares got (ours) with want (the reference) under rtol.
func compareRef(got []float32, want []float64, rtol float64) cmpResult {
	r := cmpResult{n: len(want), worst: -1}
	if len(got) != len(want) {
		r.why = fmt.Sprintf("length %d, want %d", len(got), len(want))
		return r
	}
	for i, w := range want {
		if math.IsNaN(w) || math.IsInf(w, 0) {
			r.why = fmt.Sprintf("reference element %d is %g", i, w)
			return r
		}
		if a := math.Abs(w); a > r.scale {
			r.scale, r.big = a, i
		}
	}
	r.ok = true
	for i, w := range want {
		g := float64(got[i])
		d := math.Abs(g - w)
		if math.IsNaN(g) || math.IsInf(g, 0) {
			r.ok, r.worst, r.maxAbs, r.maxErr = false, i, math.Inf(1), math.Inf(1)
			r.why = fmt.Sprintf("element %d is %g (want %g)", i, g, w)
			return r
		}
		if d == 0 {
			continue
		}
		e := d / (math.Abs(w) + 0.1*r.scale) // +Inf when the reference is all zeros
		if d > r.maxAbs {
			r.maxAbs = d
		}
		if e > r.maxErr || r.worst < 0 {
			r.maxErr, r.worst = e, i
		}
	}
	if !(r.maxErr <= rtol) {
		r.ok = false
		r.why = fmt.Sprintf("element %d: got %.9g, want %.9g", r.worst, got[r.worst], want[r.worst])
	}
	return r
}

// errStats accumulates the largest errors seen by one test, for the summary line.
type errStats struct {
	n              int
	maxAbs, maxErr float64
	where          string
}

// check compares got with want, logs the errors, fails t when they are out of
// tolerance, and checks that the comparison has teeth: adding 1e-2 to the element of
// largest magnitude (where the tolerance is widest) must fail it.
func check(t *testing.T, st *errStats, name string, got []float32, want []float64) {
	t.Helper()
	r := compareRef(got, want, refRTol)
	t.Logf("%-34s n=%-7d scale=%-10.3g maxAbs=%-10.3g maxErr=%.3g", name, r.n, r.scale, r.maxAbs, r.maxErr)
	if !r.ok {
		t.Errorf("%s: differs from the gorgonia reference (max abs %.3g, normalised %.3g > %g): %s", name, r.maxAbs, r.maxErr, refRTol, r.why)
		return
	}
	if st != nil {
		st.n++
		if r.maxAbs > st.maxAbs {
			st.maxAbs = r.maxAbs
		}
		if r.maxErr > st.maxErr {
			st.maxErr, st.where = r.maxErr, name
		}
	}
	if len(got) > 0 {
		p := slices.Clone(got)
		p[r.big] += 1e-2
		if compareRef(p, want, refRTol).ok {
			t.Errorf("%s: the comparison would not catch +1e-2 at element %d (scale %.3g)", name, r.big, r.scale)
		}
	}
}

func TestCompareRefCatchesErrors(t *testing.T) {
	want := []float64{0.5, -1.25, 3e-3, 0, 2}
	got := make([]float32, len(want))
	for i, w := range want {
		got[i] = float32(w)
	}
	if r := compareRef(got, want, refRTol); !r.ok {
		t.Fatalf("float32 rounding of the reference fails the comparison: %+v", r)
	}
	bad := map[string]func([]float32){
		"+1e-2 on the largest": func(g []float32) { g[4] += 1e-2 },
		"+1e-3 on a small one": func(g []float32) { g[2] += 1e-3 },
		"0 where want is 0":    func(g []float32) { g[3] = 1e-4 },
		"relative 1e-3":        func(g []float32) { g[1] *= 1.001 },
		"NaN":                  func(g []float32) { g[0] = float32(math.NaN()) },
		"+Inf":                 func(g []float32) { g[0] = float32(math.Inf(1)) },
		"sign flip":            func(g []float32) { g[1] = -g[1] },
	}
	for name, f := range bad {
		g := slices.Clone(got)
		f(g)
		if compareRef(g, want, refRTol).ok {
			t.Errorf("%s: not caught", name)
		}
	}
	if compareRef(got[:4], want, refRTol).ok {
		t.Error("length mismatch not caught")
	}
	// An all-zero reference demands exact zeros.
	if !compareRef([]float32{0, 0}, []float64{0, 0}, refRTol).ok || compareRef([]float32{0, 1e-30}, []float64{0, 0}, refRTol).ok {
		t.Error("all-zero reference mishandled")
	}
}

// ---------------------------------------------------------------------------------
// The gorgonia reference.

// refGraph builds one gorgonia graph; it fails the test on any gorgonia error.
type refGraph struct {
	t     *testing.T
	g     *gg.ExprGraph
	names int
}

func newRefGraph(t *testing.T) *refGraph { return &refGraph{t: t, g: gg.NewGraph()} }

func (r *refGraph) must(n *gg.Node, err error) *gg.Node {
	r.t.Helper()
	if err != nil {
		r.t.Fatalf("gorgonia: %v", err)
	}
	return n
}

// leaf is a rows×cols float64 input node holding v.
func (r *refGraph) leaf(name string, rows, cols int, v []float32) *gg.Node {
	r.t.Helper()
	return r.tensorLeaf(name, []int{rows, cols}, v)
}

// tensorLeaf is a float64 input node of the given shape holding v (row-major).
// Names are unique: gorgonia merges input nodes of equal name and type.
func (r *refGraph) tensorLeaf(name string, shape []int, v []float32) *gg.Node {
	r.t.Helper()
	size := 1
	for _, d := range shape {
		size *= d
	}
	if len(v) != size {
		r.t.Fatalf("leaf %s: %d values for %v", name, len(v), shape)
	}
	d := make([]float64, len(v))
	for i, x := range v {
		d[i] = float64(x)
	}
	r.names++
	return gg.NewTensor(r.g, tensor.Float64, len(shape), gg.WithShape(shape...), gg.WithName(fmt.Sprintf("%s#%d", name, r.names)),
		gg.WithValue(tensor.New(tensor.WithShape(shape...), tensor.WithBacking(d))))
}

// refNet is a Net's parameters in a graph.
type refNet struct {
	net    *Net
	w, b   []*gg.Node // by layer; nil for dropout
	params []*gg.Node // in ParamList order
}

func (r *refGraph) net(n *Net, host []float32) *refNet {
	rn := &refNet{net: n, w: make([]*gg.Node, len(n.layers)), b: make([]*gg.Node, len(n.layers))}
	for i, l := range n.layers {
		if !l.params {
			continue
		}
		rn.w[i] = r.leaf(fmt.Sprintf("%s.%d.w", n.Name, i), l.wRows, l.wCols, host[l.wOff:l.wOff+l.wRows*l.wCols])
		rn.b[i] = r.leaf(fmt.Sprintf("%s.%d.b", n.Name, i), 1, l.bLen, host[l.bOff:l.bOff+l.bLen])
		rn.params = append(rn.params, rn.w[i], rn.b[i])
	}
	return rn
}

// forward applies the net to x (rows×In). masks[i] is dropout layer i's mask (the
// values our forward drew, rows×width). It returns the output and the maxout layers'
// pre-activations (rows×units·pieces, pieces adjacent per unit).
func (r *refGraph) forward(rn *refNet, x *gg.Node, rows int, masks map[int][]float32) (*gg.Node, map[int]*gg.Node) {
	r.t.Helper()
	lin := map[int]*gg.Node{}
	for i, l := range rn.net.layers {
		switch l.spec.Type {
		case Dense, Maxout:
			z := r.must(gg.Mul(x, rn.w[i]))
			z = r.must(gg.BroadcastAdd(z, rn.b[i], nil, []byte{0}))
			if l.spec.Type == Maxout {
				// rows×(units·pieces) → rows×units×pieces (pieces adjacent per unit),
				// max over the last axis: a rows×units result with no reshape after
				// the max. (Reshaping the result of Max, as in
				// Reshape(Max(Reshape(z, (rows·units, pieces)), 1), (rows, units)),
				// gets a wrong gradient in gorgonia v0.9.18 when an in-place op such as
				// the dropout product follows: the reshape aliases Max's output, the
				// product overwrites it, and Max's gradient, which compares its output
				// with its input, then routes nothing.)
				lin[i] = z
				z = r.must(gg.Reshape(z, tensor.Shape{rows, l.out.Size(), l.spec.Pieces}))
				x = r.must(gg.Max(z, 2))
				continue
			}
			x = r.activate(z, l.act)
		case Dropout:
			m, ok := masks[i]
			if !ok {
				r.t.Fatalf("%s layer %d: no dropout mask", rn.net.Name, i)
			}
			x = r.must(gg.HadamardProd(x, r.leaf(fmt.Sprintf("%s.%d.mask", rn.net.Name, i), rows, l.out.Size(), m)))
		}
	}
	return x, lin
}

// activate applies act to z.
func (r *refGraph) activate(z *gg.Node, act backend.Act) *gg.Node {
	r.t.Helper()
	switch act.Kind {
	case backend.Identity:
		return z
	case backend.ReLU:
		return r.must(gg.Rectify(z))
	case backend.LeakyReLU:
		return r.must(gg.LeakyRelu(z, float64(act.Alpha)))
	case backend.Sigmoid:
		return r.must(gg.Sigmoid(z))
	case backend.Tanh:
		return r.must(gg.Tanh(z))
	}
	r.t.Fatalf("activation %v has no reference", act.Kind)
	return nil
}

// bce is scale·Σ bce(σ(l), t) written out stably: max(l,0) − l·t + log(1+e^{−|l|}).
func (r *refGraph) bce(logits *gg.Node, targets []float32, scale float32) *gg.Node {
	r.t.Helper()
	tn := r.leaf("targets", len(targets), 1, targets)
	pos := r.must(gg.Rectify(logits))
	lt := r.must(gg.HadamardProd(logits, tn))
	tail := r.must(gg.Log1p(r.must(gg.Exp(r.must(gg.Neg(r.must(gg.Abs(logits))))))))
	s := r.must(gg.Add(r.must(gg.Sub(pos, lt)), tail))
	return r.must(gg.Mul(r.must(gg.Sum(s)), gg.NewConstant(float64(scale))))
}

// grad is the symbolic gradient of cost with respect to the nodes.
func (r *refGraph) grad(cost *gg.Node, wrt []*gg.Node) []*gg.Node {
	r.t.Helper()
	gs, err := gg.Grad(cost, wrt...)
	if err != nil {
		r.t.Fatalf("gorgonia.Grad: %v", err)
	}
	return gs
}

// read arranges for n's value to be copied out when the graph runs. Values must be
// read this way: the tape machine reuses and overwrites the memory of intermediate
// nodes, so n.Value() after the run is not reliable.
func (r *refGraph) read(n *gg.Node) *gg.Value {
	v := new(gg.Value)
	gg.Read(n, v)
	return v
}

// run executes the graph; read values with val before the next run.
func (r *refGraph) run() {
	r.t.Helper()
	vm := gg.NewTapeMachine(r.g)
	defer vm.Close()
	if err := vm.RunAll(); err != nil {
		r.t.Fatalf("gorgonia run: %v", err)
	}
}

// val converts a value read with read.
func (r *refGraph) val(p *gg.Value) []float64 {
	r.t.Helper()
	switch v := (*p).(type) {
	case *gg.F64:
		return []float64{float64(*v)}
	case tensor.Tensor:
		d, ok := v.Data().([]float64)
		if !ok {
			if f, ok := v.Data().(float64); ok {
				return []float64{f}
			}
			r.t.Fatalf("value data %T", v.Data())
		}
		return slices.Clone(d)
	}
	r.t.Fatalf("value %T", *p)
	return nil
}

// ---------------------------------------------------------------------------------
// Our side: the nets wired as package trainer wires them.

type gradCase struct {
	name           string
	noise, dim, m  int
	gSpecs, dSpecs []LayerSpec
	paperInit      bool // InitialParams with an MNIST-like data mean; else random parameters
}

func smallCase() gradCase {
	return gradCase{
		name: "small", noise: 7, dim: 9, m: 5,
		gSpecs: []LayerSpec{
			{Type: Dense, Units: 13, Activation: "relu"},
			{Type: Dropout, Keep: 0.9},
			{Type: Dense, Units: 11, Activation: "leaky_relu", Alpha: 0.2},
			{Type: Dense, Units: 10, Activation: "tanh"},
			{Type: Dense, Activation: "sigmoid"},
		},
		dSpecs: []LayerSpec{
			{Type: Dropout, Keep: 0.8},
			{Type: Maxout, Units: 6, Pieces: 3},
			{Type: Dropout, Keep: 0.5},
			{Type: Maxout, Units: 5, Pieces: 2},
			{Type: Dropout, Keep: 0.5},
			{Type: Dense, Units: 1, Activation: "identity"},
		},
	}
}

func paperCase() gradCase {
	return gradCase{name: "paper", noise: 100, dim: 784, m: 4,
		gSpecs: PaperGenerator(), dSpecs: PaperDiscriminator(), paperInit: true}
}

type rig struct {
	t    *testing.T
	b    backend.Backend
	c    gradCase
	G, D *Net

	gHost, dHost                         []float32
	z, xD, realX, targets, gTgt, scalars backend.Tensor
	gPass, dPass, dFake                  *Pass
	gScale                               float32
	gTargets                             []float32 // host copy of gTgt
}

func (r *rig) alloc(rows, cols int) backend.Tensor {
	r.t.Helper()
	x, err := r.b.Alloc(backend.F32, rows, cols)
	if err != nil {
		r.t.Fatal(err)
	}
	return x
}

func (r *rig) view(x backend.Tensor, off, rows, cols int) backend.Tensor {
	r.t.Helper()
	v, err := r.b.View(x, off, rows, cols)
	if err != nil {
		r.t.Fatal(err)
	}
	return v
}

func (r *rig) up(x backend.Tensor, v []float32) {
	r.t.Helper()
	if err := r.b.Upload(x, v); err != nil {
		r.t.Fatal(err)
	}
}

// download copies x to the host.
func download(t *testing.T, b backend.Backend, x backend.Tensor) []float32 {
	t.Helper()
	v := make([]float32, backend.Len(x))
	if err := b.Download(v, x); err != nil {
		t.Fatal(err)
	}
	return v
}

func (r *rig) down(x backend.Tensor) []float32 {
	r.t.Helper()
	return download(r.t, r.b, x)
}

func (r *rig) downI(x backend.Tensor) []int32 {
	r.t.Helper()
	v := make([]int32, backend.Len(x))
	if err := r.b.Download(v, x); err != nil {
		r.t.Fatal(err)
	}
	return v
}

// masks downloads the dropout masks of p's last training forward.
func (r *rig) masks(p *Pass) map[int][]float32 {
	out := map[int][]float32{}
	for i, l := range p.net.layers {
		if l.spec.Type == Dropout {
			out[i] = r.down(p.aux[i])
		}
	}
	return out
}

func newRig(t *testing.T, b backend.Backend, c gradCase, minimax bool, src *rand.Rand) *rig {
	t.Helper()
	r := &rig{t: t, b: b, c: c}
	var err error
	if r.G, err = Build(b, "generator", c.gSpecs, Flat(c.noise), Flat(c.dim), OutputHead); err != nil {
		t.Fatal(err)
	}
	if r.D, err = Build(b, "discriminator", c.dSpecs, Flat(c.dim), Shape{}, LogitHead); err != nil {
		t.Fatal(err)
	}
	if c.paperInit {
		mean := make([]float32, c.dim)
		for j := range mean {
			if src.IntN(3) > 0 { // MNIST has pixels that are always 0
				mean[j] = 0.5 * src.Float32()
			}
		}
		if r.gHost, err = r.G.InitialParams(rng.Stream{Seed: 7, Offset: 1}, mean); err != nil {
			t.Fatal(err)
		}
		if r.dHost, err = r.D.InitialParams(rng.Stream{Seed: 7, Offset: 2}, nil); err != nil {
			t.Fatal(err)
		}
		// Non-zero hidden biases, so that the reference also sees them in the forward.
		for _, p := range r.D.ParamList() {
			if p.IsBias {
				for e := p.Offset; e < p.Offset+p.Cols; e++ {
					r.dHost[e] = 0.002 * (2*src.Float32() - 1)
				}
			}
		}
	} else {
		r.gHost, r.dHost = randomParams(r.G, 0.6, src), randomParams(r.D, 0.5, src)
	}
	r.up(r.G.Params, r.gHost)
	r.up(r.D.Params, r.dHost)

	m := c.m
	r.z = r.alloc(m, c.noise)
	r.xD = r.alloc(2*m, c.dim)
	r.targets = r.alloc(2*m, 1)
	r.scalars = r.alloc(1, 4)
	tg := make([]float32, 2*m)
	for i := 0; i < m; i++ {
		tg[i] = 1
	}
	r.up(r.targets, tg)
	if r.dPass, err = r.D.NewPass(b, r.xD, PassBuffers{InputGrad: true}); err != nil {
		t.Fatal(err)
	}
	if r.dFake, err = r.dPass.Rows(b, m, m); err != nil {
		t.Fatal(err)
	}
	r.realX = r.view(r.xD, 0, m, c.dim)
	fakeX := r.view(r.xD, m*c.dim, m, c.dim)
	if r.gPass, err = r.G.NewPass(b, r.z, PassBuffers{Out: fakeX, DOut: r.dFake.DIn}); err != nil {
		t.Fatal(err)
	}
	if minimax {
		r.gScale, r.gTgt, r.gTargets = -1/float32(m), r.view(r.targets, m, m, 1), tg[m:]
	} else {
		r.gScale, r.gTgt, r.gTargets = 1/float32(m), r.view(r.targets, 0, m, 1), tg[:m]
	}
	return r
}

// randomParams draws every weight from U(±wr·√(3/in)) (standard deviation wr/√in) and
// every bias from U(±0.2).
func randomParams(n *Net, wr float32, src *rand.Rand) []float32 {
	p := make([]float32, n.Size())
	for _, l := range n.layers {
		if !l.params {
			continue
		}
		r := wr * float32(math.Sqrt(3/float64(l.wRows)))
		for e := 0; e < l.wRows*l.wCols; e++ {
			p[l.wOff+e] = r * (2*src.Float32() - 1)
		}
		for e := 0; e < l.bLen; e++ {
			p[l.bOff+e] = 0.2 * (2*src.Float32() - 1)
		}
	}
	return p
}

// realRows is data-like: in [0, 1], many exact zeros (as MNIST's background).
func realRows(src *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		if src.IntN(3) > 0 {
			v[i] = src.Float32()
		}
	}
	return v
}

func (r *rig) nanGrads(n *Net) {
	r.b.Fill(n.Grads, float32(math.NaN()))
}

// checkGrads compares every parameter gradient of n (from its Grads arena) with the
// reference gradients, which are in ParamList order.
func (r *rig) checkGrads(st *errStats, what string, n *Net, ref [][]float64) {
	r.t.Helper()
	all := r.down(n.Grads)
	ps := n.ParamList()
	if len(ps) != len(ref) {
		r.t.Fatalf("%s: %d parameters, %d reference gradients", what, len(ps), len(ref))
	}
	for k, p := range ps {
		check(r.t, st, fmt.Sprintf("%s d%s", what, p.Name), all[p.Offset:p.Offset+p.Rows*p.Cols], ref[k])
	}
}

// checkMaxout checks our maxout layers of pass p against the reference
// pre-activations: the pre-activations agree, our argmax is the first maximum of our
// pre-activations, and it is the maximum of the reference's.
func (r *rig) checkMaxout(st *errStats, what string, p *Pass, lin map[int][]float64) {
	r.t.Helper()
	for i, l := range p.net.layers {
		if l.spec.Type != Maxout {
			continue
		}
		ours, arg, ref := r.down(p.lin[i]), r.downI(p.aux[i]), lin[i]
		check(r.t, st, fmt.Sprintf("%s layers.%d pre-maxout", what, i), ours, ref)
		// A maxout followed by dropout runs fused in training and stores only the
		// dropped output: the maxout value is that output over its mask.
		y, mask := r.down(p.acts[i+1]), []float32(nil)
		if p.droppedAfter(i) {
			y, mask = r.down(p.acts[i+2]), r.down(p.aux[i+1])
		}
		P := l.spec.Pieces
		bad, flips := 0, 0
		for u := range arg {
			grp, rgrp := ours[u*P:(u+1)*P], ref[u*P:(u+1)*P]
			first := 0
			for q := 1; q < P; q++ {
				if grp[q] > grp[first] {
					first = q
				}
			}
			want := grp[first]
			if mask != nil {
				want *= mask[u]
			}
			if int(arg[u]) != first || y[u] != want {
				bad++
			}
			rbest := 0
			for q := 1; q < P; q++ {
				if rgrp[q] > rgrp[rbest] {
					rbest = q
				}
			}
			if int(arg[u]) != rbest {
				if flips++; flips > 5 {
					continue
				}
				r.t.Errorf("%s layers.%d unit %d: our maxout picks piece %d (reference value %.9g), the reference's maximum is piece %d (%.9g)",
					what, i, u, arg[u], rgrp[arg[u]], rbest, rgrp[rbest])
			}
		}
		if bad > 0 {
			r.t.Errorf("%s layers.%d: %d of %d maxout units do not hold the first maximum of their pieces", what, i, bad, len(arg))
		}
		if flips > 0 {
			r.t.Errorf("%s layers.%d: %d of %d maxout units pick another piece than the reference", what, i, flips, len(arg))
		}
	}
}

// refOut are the reference values of one step.
type refOut struct {
	gOut, logits, loss, dIn []float64
	grads                   [][]float64
	lin                     map[int][]float64 // D's maxout pre-activations
}

// stepReads are the reads of a step's values: G's output, D's logits, the
// cost, D's maxout pre-activations and the gradients.
type stepReads struct {
	gOut, logits, cost *gg.Value
	lin                map[int]*gg.Value
	grads              []*gg.Value
}

func (r *refGraph) readStep(fake, logits, cost *gg.Node, lin map[int]*gg.Node, grads []*gg.Node) stepReads {
	sr := stepReads{gOut: r.read(fake), logits: r.read(logits), cost: r.read(cost), lin: map[int]*gg.Value{}}
	for i, n := range lin {
		sr.lin[i] = r.read(n)
	}
	for _, n := range grads {
		sr.grads = append(sr.grads, r.read(n))
	}
	return sr
}

func (r *refGraph) values(sr stepReads) refOut {
	out := refOut{gOut: r.val(sr.gOut), logits: r.val(sr.logits), loss: r.val(sr.cost), lin: map[int][]float64{}}
	for i, v := range sr.lin {
		out.lin[i] = r.val(v)
	}
	for _, v := range sr.grads {
		out.grads = append(out.grads, r.val(v))
	}
	return out
}

// refDStep: G(z) with gMasks into the fake half, D on [real; fake] with dMasks, the
// D loss and its gradient w.r.t. D's parameters.
func (r *rig) refDStep(z, real []float32, gMasks, dMasks map[int][]float32) refOut {
	c, m := r.c, r.c.m
	g := newRefGraph(r.t)
	gp, dp := g.net(r.G, r.gHost), g.net(r.D, r.dHost)
	fake, _ := g.forward(gp, g.leaf("z", m, c.noise, z), m, gMasks)
	xD := g.must(gg.Concat(0, g.leaf("real", m, c.dim, real), fake))
	logits, lin := g.forward(dp, xD, 2*m, dMasks)
	tg := make([]float32, 2*m)
	for i := 0; i < m; i++ {
		tg[i] = 1
	}
	cost := g.bce(logits, tg, 1/(2*float32(m)))
	sr := g.readStep(fake, logits, cost, lin, g.grad(cost, dp.params))
	g.run()
	return g.values(sr)
}

// refGStep: G(z) with gMasks, D on the fake rows with dMasks (the fake half's), the
// G loss and its gradient w.r.t. G's parameters. fakeOurs is our G output, on which
// a second graph gives dLoss/dD-input, the G pass's DOut.
func (r *rig) refGStep(z []float32, gMasks, dMasks map[int][]float32, fakeOurs []float32) refOut {
	c, m := r.c, r.c.m
	g := newRefGraph(r.t)
	gp, dp := g.net(r.G, r.gHost), g.net(r.D, r.dHost)
	fake, _ := g.forward(gp, g.leaf("z", m, c.noise, z), m, gMasks)
	logits, lin := g.forward(dp, fake, m, dMasks)
	cost := g.bce(logits, r.gTargets, r.gScale)
	sr := g.readStep(fake, logits, cost, lin, g.grad(cost, gp.params))
	g.run()
	out := g.values(sr)

	h := newRefGraph(r.t)
	x := h.leaf("fake", m, c.dim, fakeOurs)
	hl, _ := h.forward(h.net(r.D, r.dHost), x, m, dMasks)
	dx := h.read(h.grad(h.bce(hl, r.gTargets, r.gScale), []*gg.Node{x})[0])
	h.run()
	out.dIn = h.val(dx)
	return out
}

// half returns the rows [m, 2m) of each mask of a 2m-row pass.
func half(masks map[int][]float32) map[int][]float32 {
	out := map[int][]float32{}
	for i, v := range masks {
		out[i] = v[len(v)/2:]
	}
	return out
}

func runGradCase(t *testing.T, b backend.Backend, c gradCase, minimax bool, st *errStats) {
	src := rand.New(rand.NewPCG(uint64(len(c.name)), 2014))
	r := newRig(t, b, c, minimax, src)
	m := c.m
	gLoss := "G(non-saturating)"
	if minimax {
		gLoss = "G(minimax)"
	}
	sqrt3 := float32(math.Sqrt(3))
	sG1, sD1 := rng.Stream{Seed: 11, Offset: 1 << 10}, rng.Stream{Seed: 11, Offset: 2 << 10}
	sG2, sD2 := rng.Stream{Seed: 11, Offset: 3 << 10}, rng.Stream{Seed: 11, Offset: 4 << 10}

	// --- The discriminator step (trainer.discriminatorForward + Backward).
	z1, real := backendtest.RandSlice(src, m*c.noise, -sqrt3, sqrt3), realRows(src, m*c.dim)
	r.up(r.z, z1)
	r.up(r.realX, real)
	r.nanGrads(r.D)
	r.nanGrads(r.G)
	r.gPass.Forward(b, Train, sG1)
	r.dPass.Forward(b, Train, sD1)
	b.SigmoidCrossEntropy(r.dPass.DOut, r.dPass.Out, r.targets, 1/(2*float32(m)), r.scalars, 0)
	r.dPass.Backward(b, Grads{Params: true})
	if err := b.Sync(); err != nil {
		t.Fatal(err)
	}
	gMasks1, dMasks1 := r.masks(r.gPass), r.masks(r.dPass)
	ref := r.refDStep(z1, real, gMasks1, dMasks1)
	check(t, st, "Dstep G output", r.down(r.gPass.Out), ref.gOut)
	check(t, st, "Dstep D logits", r.down(r.dPass.Out), ref.logits)
	check(t, st, "Dstep D loss", r.down(r.scalars)[:1], ref.loss)
	r.checkMaxout(st, "Dstep", r.dPass, ref.lin)
	r.checkGrads(st, "Dstep D", r.D, ref.grads)
	dGrads := r.down(r.D.Grads)
	for i, v := range r.down(r.G.Grads) {
		if !math.IsNaN(float64(v)) {
			t.Fatalf("the D step wrote G's gradient %d", i)
		}
	}

	// --- The simultaneous update's G backward: same minibatch, same masks, after D's backward.
	r.nanGrads(r.G)
	b.SigmoidCrossEntropy(r.dFake.DOut, r.dFake.Out, r.gTgt, r.gScale, r.scalars, 1)
	r.dFake.Backward(b, Grads{Input: true})
	dIn := r.down(r.dFake.DIn)
	r.gPass.Backward(b, Grads{Params: true})
	ref = r.refGStep(z1, gMasks1, half(dMasks1), r.down(r.gPass.Out))
	check(t, st, "sim "+gLoss+" loss", r.down(r.scalars)[1:2], ref.loss)
	check(t, st, "sim "+gLoss+" D dIn (=G DOut)", dIn, ref.dIn)
	r.checkGrads(st, "sim "+gLoss, r.G, ref.grads)
	if !slices.Equal(math32bits(dGrads), math32bits(r.down(r.D.Grads))) {
		t.Error("the G backward changed D's gradients")
	}

	// --- The alternating update's G step (trainer.generatorStep): fresh noise and masks, D on the fake half only.
	z2 := backendtest.RandSlice(src, m*c.noise, -sqrt3, sqrt3)
	r.up(r.z, z2)
	r.nanGrads(r.G)
	r.gPass.Forward(b, Train, sG2)
	r.dFake.Forward(b, Train, sD2)
	b.SigmoidCrossEntropy(r.dFake.DOut, r.dFake.Out, r.gTgt, r.gScale, r.scalars, 1)
	r.dFake.Backward(b, Grads{Input: true})
	dIn = r.down(r.dFake.DIn)
	r.gPass.Backward(b, Grads{Params: true})
	if err := b.Sync(); err != nil {
		t.Fatal(err)
	}
	ref = r.refGStep(z2, r.masks(r.gPass), r.masks(r.dFake), r.down(r.gPass.Out))
	check(t, st, "Gstep G output", r.down(r.gPass.Out), ref.gOut)
	check(t, st, "Gstep D logits", r.down(r.dFake.Out), ref.logits)
	check(t, st, "Gstep "+gLoss+" loss", r.down(r.scalars)[1:2], ref.loss)
	r.checkMaxout(st, "Gstep", r.dFake, ref.lin)
	check(t, st, "Gstep "+gLoss+" D dIn (=G DOut)", dIn, ref.dIn)
	r.checkGrads(st, "Gstep "+gLoss, r.G, ref.grads)
	if !slices.Equal(math32bits(dGrads), math32bits(r.down(r.D.Grads))) {
		t.Error("the G step changed D's gradients")
	}
	// The real half of D's pass is untouched by the fake-half pass.
	if got := r.down(r.realX); !slices.Equal(got, real) {
		t.Error("the G step changed the real half of D's input")
	}
}

func math32bits(v []float32) []uint32 {
	out := make([]uint32, len(v))
	for i, x := range v {
		out[i] = math.Float32bits(x)
	}
	return out
}

// forBLAS runs f as a subtest on a CPU backend with each BLAS library: the pure-Go
// one, and OpenBLAS where it is available.
func forBLAS(t *testing.T, f func(t *testing.T, b backend.Backend, blasName string)) {
	for _, blasName := range []string{"go", "openblas"} {
		t.Run(blasName, func(t *testing.T) {
			b, err := cpu.New(cpu.Options{BLAS: blasName})
			if err != nil {
				if blasName == "openblas" {
					t.Skip("OpenBLAS not available:", err)
				}
				t.Fatal(err)
			}
			defer b.Close()
			f(t, b, blasName)
		})
	}
}

func runRef(t *testing.T, c gradCase) {
	forBLAS(t, func(t *testing.T, b backend.Backend, blasName string) {
		for _, minimax := range []bool{false, true} {
			name := "non-saturating"
			if minimax {
				name = "minimax"
			}
			t.Run(name, func(t *testing.T) {
				var st errStats
				runGradCase(t, b, c, minimax, &st)
				t.Logf("SUMMARY %s/%s/%s: %d tensors, max abs err %.3g, max normalised err %.3g (%s)",
					c.name, blasName, name, st.n, st.maxAbs, st.maxErr, st.where)
			})
		}
	})
}

// TestGorgoniaReferenceSmall checks small nets that use every activation, a
// generator dropout layer and maxout with 2 and 3 pieces.
func TestGorgoniaReferenceSmall(t *testing.T) { runRef(t, smallCase()) }

// TestGorgoniaReferencePaper checks the paper's MNIST nets at minibatch 4.
func TestGorgoniaReferencePaper(t *testing.T) {
	if testing.Short() {
		t.Skip("paper-size nets in -short mode")
	}
	runRef(t, paperCase())
}
