package model

// Reference tests of the convolutional layers against gorgonia (float64, symbolic
// gradients), in the manner of gorgonia_test.go: the same parameters and inputs, a
// training forward and the backward of L = Σ c ⊙ Out (c random), every output and
// gradient compared with compareRef.
//
// Our images are NHWC rows; gorgonia's Conv2d takes NCHW images and a
// [Cout, Cin, KH, KW] filter, which is PyTorch's Conv2d layout, so the reference
// transposes the images and takes the filter from Param.ToTorch. Gorgonia has no
// transposed convolution: that is checked through its adjoint, a Conv2d (see
// TestGorgoniaConvTranspose).

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	gg "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/gantrain/gantrain/backend"
	"github.com/gantrain/gantrain/backend/backendtest"
	"github.com/gantrain/gantrain/rng"
)

// convRefCase is a net checked against the reference.
type convRefCase struct {
	name   string
	specs  []LayerSpec
	in     Shape
	out    Shape
	rows   int
	groups int // batchnorm row groups
}

// ourRun is what the CPU backend computed for one training step of a net.
type ourRun struct {
	out, grads, dIn []float32
	// mean and variance are each batchnorm layer's batch statistics (groups×C); state
	// the running statistics after the forward.
	mean, variance map[int][]float32
	state          []float32
}

// runOurs runs a Train forward of n on x and the backward of L = Σ c ⊙ Out.
func runOurs(t *testing.T, b backend.Backend, n *Net, params, x, c []float32, rows, groups int) ourRun {
	t.Helper()
	in := alloc(t, b, rows, n.In, x)
	pass, err := n.NewPass(b, in, PassBuffers{InputGrad: true, Groups: groups})
	if err != nil {
		t.Fatal(err)
	}
	upload(t, b, n.Params, params)
	if n.State != nil {
		upload(t, b, n.State, n.InitialState())
	}
	b.Fill(n.Grads, float32(math.NaN())) // every gradient must be written
	pass.Forward(b, Train, rng.Stream{Seed: 5, Offset: 9})
	upload(t, b, pass.DOut, c)
	pass.Backward(b, Grads{Params: true, Input: true})
	r := ourRun{out: download(t, b, pass.Out), grads: download(t, b, n.Grads), dIn: download(t, b, pass.DIn),
		mean: map[int][]float32{}, variance: map[int][]float32{}}
	for i, l := range n.layers {
		if l.spec.Type == BatchNorm {
			r.mean[i], r.variance[i] = download(t, b, pass.mean[i]), download(t, b, pass.variance[i])
		}
	}
	if n.State != nil {
		r.state = download(t, b, n.State)
	}
	return r
}

// torchGrad is p's gradient from a gradient arena in the layout the reference's
// parameter node has: PyTorch's for convolution weights, our matrix otherwise.
func torchGrad(p Param, grads []float32) []float32 {
	if p.Layout == LayoutConv || p.Layout == LayoutConvTranspose {
		return p.ToTorch(grads)
	}
	return grads[p.Offset : p.Offset+p.Rows*p.Cols]
}

// convRef is a net's forward in a reference graph.
type convRef struct {
	out    *gg.Node
	params []*gg.Node // in ParamList order
	// mean and variance are each batchnorm layer's statistics, one node a group.
	mean, variance map[int][]*gg.Node
}

// convForward builds n's forward on x (rows examples of n.InShape). Convolutions
// take NHWC tensors [rows, H, W, C] (the layout of our rows) and per-channel
// operations their (rows·H·W)×C view, broadcasting along axis 0 only: gorgonia
// v0.9.18's gradient of a broadcast along several axes (a [1, 1, 1, C] bias added
// to [3, 4, 3, 4]) sums the wrong elements for some shapes. Parameter nodes hold
// host's values, convolution filters in PyTorch's layout [Cout, Cin, KH, KW], the
// rest as our matrices.
func (r *refGraph) convForward(n *Net, host []float32, x *gg.Node, rows, groups int) convRef {
	r.t.Helper()
	ref := convRef{mean: map[int][]*gg.Node{}, variance: map[int][]*gg.Node{}}
	ps := n.ParamList()
	leaf := func(p Param, shape []int) *gg.Node {
		v := host[p.Offset : p.Offset+p.Rows*p.Cols]
		if p.Layout == LayoutConv {
			v = p.ToTorch(host)
		}
		node := r.tensorLeaf(n.Name+"."+p.Name, shape, v)
		ref.params = append(ref.params, node)
		return node
	}
	k := 0 // the next parameter
	for i, l := range n.layers {
		switch l.spec.Type {
		case Dense:
			x = r.must(gg.Reshape(x, tensor.Shape{rows, l.in.Size()}))
			w, b := leaf(ps[k], []int{l.wRows, l.wCols}), leaf(ps[k+1], []int{1, l.bLen})
			z := r.must(gg.BroadcastAdd(r.must(gg.Mul(x, w)), b, nil, []byte{0}))
			x = r.activate(z, l.act)
		case Conv2D:
			x = r.must(gg.Reshape(x, tensor.Shape{rows, l.in.H, l.in.W, l.in.C}))
			w, b := leaf(ps[k], ps[k].TorchShape()), leaf(ps[k+1], []int{1, l.bLen})
			g := l.geom
			z := r.must(gg.Conv2d(r.must(gg.Transpose(x, 0, 3, 1, 2)), w, tensor.Shape{g.KH, g.KW},
				[]int{g.PadH, g.PadW}, []int{g.StrideH, g.StrideW}, []int{1, 1}))
			z = r.must(gg.Reshape(r.must(gg.Transpose(z, 0, 2, 3, 1)), tensor.Shape{rows * l.out.positions(), l.bLen}))
			z = r.must(gg.BroadcastAdd(z, b, nil, []byte{0}))
			if l.pieces > 1 {
				// Channel f·pieces + p is piece p of channel f: the max over the last
				// axis of [rows·H·W, C, pieces], as refGraph.forward's maxout.
				x = r.must(gg.Max(r.must(gg.Reshape(z, tensor.Shape{rows * l.out.positions(), l.out.C, l.pieces})), 2))
			} else {
				x = r.activate(z, l.act)
			}
		case BatchNorm:
			x = r.must(gg.Reshape(x, tensor.Shape{rows * l.in.positions(), l.in.C}))
			gamma, beta := leaf(ps[k], []int{1, l.out.C}), leaf(ps[k+1], []int{1, l.out.C})
			var y *gg.Node
			y, ref.mean[i], ref.variance[i] = r.batchNorm(x, gamma, beta, groups, float64(l.spec.bnEps()))
			x = r.activate(y, l.act)
		case Reshape, Flatten: // the next layer reshapes
		default:
			r.t.Fatalf("layer %d: %s has no convolutional reference", i, l.spec.Type)
		}
		if l.params {
			k += 2
		}
	}
	ref.out = x
	return ref
}

// batchNorm is training-mode batch normalisation of the columns of x, its rows in
// `groups` equal consecutive groups normalised apart:
// y = gamma·(x − mean)/√(variance + eps) + beta with the biased variance. It is
// written with gorgonia's primitives, so that its gradient is derived symbolically
// and the batch statistics are nodes to read. Gorgonia's BatchNorm op gives the same
// y and gradients (TestGorgoniaBatchNormOp), but from a hand-written backward, as
// ours is, with the statistics hidden in the op.
func (r *refGraph) batchNorm(x, gamma, beta *gg.Node, groups int, eps float64) (y *gg.Node, mean, variance []*gg.Node) {
	r.t.Helper()
	per := x.Shape()[0] / groups
	var parts []*gg.Node
	for g := 0; g < groups; g++ {
		xg := x
		if groups > 1 {
			xg = r.must(gg.Slice(x, gg.S(g*per, (g+1)*per)))
		}
		m := r.must(gg.Mean(xg, 0))
		xc := r.must(gg.BroadcastSub(xg, r.must(gg.Reshape(m, tensor.Shape{1, m.Shape()[0]})), nil, []byte{0}))
		v := r.must(gg.Mean(r.must(gg.Square(xc)), 0))
		inv := r.must(gg.Inverse(r.must(gg.Sqrt(r.must(gg.Add(v, gg.NewConstant(eps)))))))
		parts = append(parts, r.must(gg.BroadcastHadamardProd(xc, r.must(gg.Reshape(inv, tensor.Shape{1, m.Shape()[0]})), nil, []byte{0})))
		mean, variance = append(mean, m), append(variance, v)
	}
	xhat := parts[0]
	if groups > 1 {
		xhat = r.must(gg.Concat(0, parts...))
	}
	y = r.must(gg.BroadcastHadamardProd(xhat, gamma, nil, []byte{0}))
	return r.must(gg.BroadcastAdd(y, beta, nil, []byte{0})), mean, variance
}

// inputLeaf is x as the reference's input: NHWC images, or rows×n for vectors.
func (r *refGraph) inputLeaf(n *Net, rows int, x []float32) *gg.Node {
	if n.InShape == Flat(n.In) {
		return r.leaf("x", rows, n.In, x)
	}
	s := n.InShape
	return r.tensorLeaf("x", []int{rows, s.H, s.W, s.C}, x)
}

// runConvRef checks one case: our forward output, every parameter gradient, the
// input gradient and the batchnorm statistics against the reference.
func runConvRef(t *testing.T, b backend.Backend, tc convRefCase) {
	src := rand.New(rand.NewPCG(17, uint64(len(tc.name))))
	n, err := Build(b, "net", tc.specs, tc.in, tc.out, OutputHead)
	if err != nil {
		t.Fatal(err)
	}
	params := randomParams(n, 0.8, src)
	x := backendtest.RandSlice(src, tc.rows*n.In, -1, 1)
	c := backendtest.RandSlice(src, tc.rows*n.Out, -1, 1)
	ours := runOurs(t, b, n, params, x, c, tc.rows, tc.groups)

	g := newRefGraph(t)
	xn := g.inputLeaf(n, tc.rows, x)
	ref := g.convForward(n, params, xn, tc.rows, tc.groups)
	cn := g.tensorLeaf("c", ref.out.Shape(), c)
	loss := g.must(gg.Sum(g.must(gg.HadamardProd(ref.out, cn))))
	grads := g.grad(loss, append(ref.params, xn))
	out := g.read(ref.out)
	var gv []*gg.Value
	for _, gn := range grads {
		gv = append(gv, g.read(gn))
	}
	stats := map[int][2][]*gg.Value{}
	for i := range ref.mean {
		var s [2][]*gg.Value
		for grp := range ref.mean[i] {
			s[0] = append(s[0], g.read(ref.mean[i][grp]))
			s[1] = append(s[1], g.read(ref.variance[i][grp]))
		}
		stats[i] = s
	}
	g.run()

	check(t, nil, "output", ours.out, g.val(out))
	for k, p := range n.ParamList() {
		got, want := torchGrad(p, ours.grads), g.val(gv[k])
		if p.IsBias && n.layers[p.Layer].spec.Type != BatchNorm && p.Layer+1 < len(n.layers) && n.layers[p.Layer+1].spec.Type == BatchNorm {
			// The batch mean absorbs a bias right below a batchnorm layer: its
			// gradient is 0, ours up to rounding, small against its weight's.
			checkCancelled(t, "d"+p.Name, got, want, g.val(gv[k-1]))
			continue
		}
		check(t, nil, "d"+p.Name, got, want)
	}
	check(t, nil, "dIn", ours.dIn, g.val(gv[len(gv)-1]))
	for i := range n.layers {
		s, ok := stats[i]
		if !ok {
			continue
		}
		var mean, variance []float64
		for grp := range s[0] {
			mean, variance = append(mean, g.val(s[0][grp])...), append(variance, g.val(s[1][grp])...)
		}
		check(t, nil, fmt.Sprintf("layers.%d batch mean", i), ours.mean[i], mean)
		check(t, nil, fmt.Sprintf("layers.%d batch variance", i), ours.variance[i], variance)
		checkRunning(t, n, i, ours.state, mean, variance, tc.rows/tc.groups)
	}
}

// checkCancelled checks a gradient that is 0 in exact arithmetic: the reference's
// and ours must be within refRTol of the largest element of a related gradient.
func checkCancelled(t *testing.T, name string, got []float32, want, related []float64) {
	t.Helper()
	var scale, gmax, wmax float64
	for _, v := range related {
		scale = max(scale, math.Abs(v))
	}
	for e := range got {
		gmax, wmax = max(gmax, math.Abs(float64(got[e]))), max(wmax, math.Abs(want[e]))
	}
	t.Logf("%-34s n=%-7d zero: max |ours| %.3g, |reference| %.3g, against %.3g", name, len(got), gmax, wmax, scale)
	if !(gmax <= refRTol*scale && wmax <= refRTol*scale) || scale == 0 {
		t.Errorf("%s: max |ours| %.3g, |reference| %.3g, want both ≤ %g·%.3g", name, gmax, wmax, refRTol, scale)
	}
}

// checkRunning checks batchnorm layer i's running statistics after one training
// forward from the initial ones (means 0, variances 1): one update a group, in
// order, with the unbiased variance of the group's per-pixel rows.
func checkRunning(t *testing.T, n *Net, i int, state []float32, mean, variance []float64, perGroup int) {
	t.Helper()
	l := n.layers[i]
	mom, c := float64(l.spec.bnMomentum()), l.out.C
	r := float64(perGroup * l.in.positions())
	run := make([]float64, 2*c)
	for j := range c {
		run[c+j] = 1
	}
	for grp := 0; grp < len(mean)/c; grp++ {
		for j := range c {
			run[j] = (1-mom)*run[j] + mom*mean[grp*c+j]
			run[c+j] = (1-mom)*run[c+j] + mom*variance[grp*c+j]*r/(r-1)
		}
	}
	check(t, nil, fmt.Sprintf("layers.%d running statistics", i), state[l.sOff:l.sOff+2*c], run)
}

// TestGorgoniaConv2D checks convolutions (strided and padded, valid, maxout over
// channels, into a dense layer) against gorgonia's Conv2d.
func TestGorgoniaConv2D(t *testing.T) {
	tests := []convRefCase{
		{"strided then valid", []LayerSpec{
			{Type: Conv2D, Filters: 4, Kernel: 3, Stride: 2, Padding: 1, Activation: "leaky_relu", Alpha: 0.2},
			{Type: Conv2D, Filters: 2, Kernel: 2, Activation: "tanh"},
		}, Shape{7, 6, 3}, Shape{3, 2, 2}, 3, 1},
		{"maxout", []LayerSpec{
			{Type: Conv2D, Filters: 3, Pieces: 2, Kernel: 3, Stride: 2, Padding: 1},
			{Type: Conv2D, Filters: 2, Kernel: 3, Activation: "sigmoid"},
		}, Shape{7, 6, 3}, Shape{2, 1, 2}, 3, 1},
		{"stride 3 into dense", []LayerSpec{
			{Type: Conv2D, Filters: 3, Kernel: 3, Stride: 3, Padding: 2, Activation: "relu"},
			{Type: Flatten},
			{Type: Dense, Units: 2, Activation: "identity"},
		}, Shape{5, 8, 2}, Flat(2), 2, 1},
	}
	forBLAS(t, func(t *testing.T, b backend.Backend, _ string) {
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) { runConvRef(t, b, tc) })
		}
	})
}

// TestGorgoniaBatchNorm checks training-mode batch normalisation over per-pixel rows
// and over a dense layer's output, in one and two row groups, against the standard
// formula written in gorgonia's primitives.
func TestGorgoniaBatchNorm(t *testing.T) {
	// Groups of a few rows each: normalising two rows leaves x̂ = ±1, and the
	// gradient through it cancels to float32 rounding.
	var tests []convRefCase
	for _, groups := range []int{1, 2} {
		tests = append(tests,
			convRefCase{fmt.Sprintf("per pixel/%d groups", groups), []LayerSpec{
				{Type: BatchNorm, Activation: "leaky_relu", Alpha: 0.2},
			}, Shape{3, 5, 4}, Shape{3, 5, 4}, 4, groups},
			convRefCase{fmt.Sprintf("dense/%d groups", groups), []LayerSpec{
				{Type: Dense, Units: 6, Activation: "identity"},
				{Type: BatchNorm, Activation: "tanh", Momentum: 0.3, Eps: 1e-3},
			}, Flat(5), Flat(6), 6, groups},
			convRefCase{fmt.Sprintf("conv, flatten, dense/%d groups", groups), []LayerSpec{
				{Type: Conv2D, Filters: 4, Kernel: 3, Padding: 1, Activation: "identity"},
				{Type: BatchNorm, Activation: "leaky_relu", Alpha: 0.2},
				{Type: Flatten},
				{Type: Dense, Units: 3, Activation: "identity"},
				{Type: BatchNorm, Activation: "sigmoid"},
			}, Shape{4, 5, 2}, Flat(3), 8, groups})
	}
	forBLAS(t, func(t *testing.T, b backend.Backend, _ string) {
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) { runConvRef(t, b, tc) })
		}
	})
}

// TestGorgoniaBatchNormOp checks the reference's batch normalisation, built from
// primitives, against gorgonia's BatchNorm op (training mode, NC input), so that
// two derivations of the reference agree before ours is compared with one.
func TestGorgoniaBatchNormOp(t *testing.T) {
	src := rand.New(rand.NewPCG(29, 1))
	const m, c, eps = 12, 3, 1e-5
	x, cs := backendtest.RandSlice(src, m*c, -1, 1), backendtest.RandSlice(src, m*c, -1, 1)
	gamma, beta := backendtest.RandSlice(src, c, 0.5, 1.5), backendtest.RandSlice(src, c, -1, 1)
	run := func(op bool) [][]float64 {
		g := newRefGraph(t)
		xn, gn, bn := g.leaf("x", m, c, x), g.leaf("gamma", 1, c, gamma), g.leaf("beta", 1, c, beta)
		var y *gg.Node
		if op {
			var err error
			if y, _, _, _, err = gg.BatchNorm(xn, gn, bn, DefaultBatchNormMomentum, eps); err != nil {
				t.Fatal(err)
			}
		} else {
			y, _, _ = g.batchNorm(xn, gn, bn, 1, eps)
		}
		loss := g.must(gg.Sum(g.must(gg.HadamardProd(y, g.leaf("c", m, c, cs)))))
		reads := []*gg.Value{g.read(y)}
		for _, gr := range g.grad(loss, []*gg.Node{xn, gn, bn}) {
			reads = append(reads, g.read(gr))
		}
		g.run()
		var out [][]float64
		for _, v := range reads {
			out = append(out, g.val(v))
		}
		return out
	}
	ops, prims := run(true), run(false)
	for k, name := range []string{"y", "dx", "dgamma", "dbeta"} {
		for e, want := range ops[k] {
			if d := math.Abs(prims[k][e] - want); d > 1e-12*(1+math.Abs(want)) {
				t.Errorf("%s[%d]: primitives %.17g, BatchNorm op %.17g", name, e, prims[k][e], want)
			}
		}
	}
}

// TestGorgoniaConvTranspose checks transposed convolutions through the adjoint
// identity <convT(x; W), u> = <x, conv(u; W)>, conv being gorgonia's Conv2d with the
// transposed convolution's geometry and its weight read as a Conv2d filter
// (PyTorch's ConvTranspose2d weight [Cin, Cout, KH, KW] is the filter
// [Cout', Cin', KH, KW] of the convolution it transposes). With S(u, W, x) = Σ
// x ⊙ conv(u; W) in gorgonia and u = c, the loss's gradient at the output:
//
//	∂S/∂u = convT(x; W), elementwise (our forward, less the bias),
//	∂S/∂W = ∂/∂W Σ c ⊙ convT(x; W) = our dW,
//	∂S/∂x = conv(c; W) = our dx,
//
// and db is Σ c over the pixels of each channel. The activation is the identity,
// so that the loss's gradient at the output is c (activations are checked above).
func TestGorgoniaConvTranspose(t *testing.T) {
	tests := []struct {
		name    string
		spec    LayerSpec
		in, out Shape
		rows    int
	}{
		{"ragged, output padding", LayerSpec{Filters: 2, Kernel: 3, Stride: 2, Padding: 1, OutputPadding: 1}, Shape{3, 4, 5}, Shape{6, 8, 2}, 3},
		{"dcgan", LayerSpec{Filters: 3, Kernel: 4, Stride: 2, Padding: 1}, Shape{3, 2, 4}, Shape{6, 4, 3}, 2},
		{"stride 1", LayerSpec{Filters: 3, Kernel: 2}, Shape{4, 3, 2}, Shape{5, 4, 3}, 2},
		// The last two rows and columns are output padding that no input reaches.
		{"stride 3, output padding 2", LayerSpec{Filters: 2, Kernel: 3, Stride: 3, OutputPadding: 2}, Shape{2, 3, 3}, Shape{8, 11, 2}, 2},
	}
	forBLAS(t, func(t *testing.T, b backend.Backend, _ string) {
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				spec := tc.spec
				spec.Type, spec.Activation = ConvTranspose2D, "identity"
				n, err := Build(b, "net", []LayerSpec{spec}, tc.in, tc.out, OutputHead)
				if err != nil {
					t.Fatal(err)
				}
				src := rand.New(rand.NewPCG(23, uint64(len(tc.name))))
				params := randomParams(n, 0.8, src)
				x := backendtest.RandSlice(src, tc.rows*n.In, -1, 1)
				c := backendtest.RandSlice(src, tc.rows*n.Out, -1, 1)
				ours := runOurs(t, b, n, params, x, c, tc.rows, 1)
				wp, bp := n.ParamList()[0], n.ParamList()[1]
				bias := params[bp.Offset : bp.Offset+bp.Cols]

				g := newRefGraph(t)
				geom := n.layers[0].geom
				xn := g.inputLeaf(n, tc.rows, x)
				un := g.tensorLeaf("u", []int{tc.rows, tc.out.H, tc.out.W, tc.out.C}, c)
				wn := g.tensorLeaf("w", wp.TorchShape(), wp.ToTorch(params))
				conv := g.must(gg.Conv2d(g.must(gg.Transpose(un, 0, 3, 1, 2)), wn, tensor.Shape{geom.KH, geom.KW},
					[]int{geom.PadH, geom.PadW}, []int{geom.StrideH, geom.StrideW}, []int{1, 1}))
				s := g.must(gg.Sum(g.must(gg.HadamardProd(g.must(gg.Transpose(xn, 0, 3, 1, 2)), conv))))
				grads := g.grad(s, []*gg.Node{un, wn, xn})
				sv, fwd, dw, dx := g.read(s), g.read(grads[0]), g.read(grads[1]), g.read(grads[2])
				g.run()

				// <convT(x; W), c> = <x, conv(c; W)>: our output less its bias against S.
				var adj float64
				for e, y := range ours.out {
					adj += float64(c[e]) * (float64(y) - float64(bias[e%tc.out.C]))
				}
				check(t, nil, "adjoint <convT(x), c>", []float32{float32(adj)}, g.val(sv))
				want := g.val(fwd)
				for e := range want {
					want[e] += float64(bias[e%tc.out.C])
				}
				check(t, nil, "output", ours.out, want)
				check(t, nil, "dW", torchGrad(wp, ours.grads), g.val(dw))
				db := make([]float64, tc.out.C)
				for e, v := range c {
					db[e%tc.out.C] += float64(v)
				}
				check(t, nil, "db", ours.grads[bp.Offset:bp.Offset+bp.Cols], db)
				check(t, nil, "dIn", ours.dIn, g.val(dx))
			})
		}
	})
}
