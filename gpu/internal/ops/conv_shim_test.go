//go:build cgo

package ops_test

import (
	"fmt"
	"testing"

	"github.com/gantrain/gantrain/backend"
)

// TestConvOpsOnShim runs the convolution and batch-normalisation operations through
// the backend wiring on the shim and compares with the CPU backend: data movement and
// dZ bit for bit, the batch statistics and what depends on them to rounding.
func TestConvOpsOnShim(t *testing.T) {
	p := newPair(t, plans[0].d)
	for _, g := range []backend.ConvGeom{
		{InH: 5, InW: 7, InC: 3, KH: 3, KW: 2, StrideH: 2, StrideW: 1, PadH: 1, PadW: 1},
		{InH: 5, InW: 7, InC: 37, KH: 3, KW: 2, StrideH: 3, StrideW: 2, PadH: 2},
	} {
		for _, n := range []int{1, 3} {
			name := fmt.Sprintf("%v n=%d", g, n)
			x := p.Uniform(n, g.InSize(), -1, 1)
			cols := p.Poisoned(n*g.Positions(), g.Patch())
			p.C.Im2Col(cols.C, x.C, g)
			p.G.Im2Col(cols.G, x.G, g)
			p.Same(name+" im2col", cols)
			xs := p.Poisoned(n, g.InSize())
			p.C.Col2Im(xs.C, cols.C, g)
			p.G.Col2Im(xs.G, cols.G, g)
			p.Same(name+" col2im", xs)
		}
	}
	// A convolution's forward product, through the backend's chooser (the shim's plan
	// device has none: the fixed table).
	for _, g := range []backend.ConvGeom{
		{InH: 5, InW: 7, InC: 3, KH: 3, KW: 2, StrideH: 2, StrideW: 1, PadH: 1, PadW: 1},
		{InH: 6, InW: 5, InC: 8, KH: 4, KW: 4, StrideH: 2, StrideW: 2, PadH: 1, PadW: 1},
	} {
		n, out := 3, 20
		name := fmt.Sprintf("%v n=%d conv forward", g, n)
		x, w, bias := p.Uniform(n, g.InSize(), -1, 1), p.Uniform(g.Patch(), out, -0.5, 0.5), p.Uniform(1, out, -0.5, 0.5)
		y, cols := p.Poisoned(n*g.Positions(), out), p.Poisoned(n*g.Positions(), g.Patch())
		act := backend.Act{Kind: backend.LeakyReLU, Alpha: 0.2}
		p.C.ConvForward(y.C, cols.C, x.C, w.C, bias.C, g, act)
		p.G.ConvForward(y.G, cols.G, x.G, w.G, bias.G, g, act)
		p.Same(name+" cols", cols)
		p.Close(name+" y", y, 1e-5)

		// Its backward pass, every gradient, then the input's alone.
		name = fmt.Sprintf("%v n=%d conv backward", g, n)
		dyv := make([]float32, n*g.Positions()*out)
		for i := range dyv {
			dyv[i] = 2*p.R.Float32() - 1
		}
		for _, all := range []bool{true, false} {
			dy, dx, dcols := p.Alloc(backend.F32, n*g.Positions(), out), p.Poisoned(n, g.InSize()), p.Poisoned(n*g.Positions(), g.Patch())
			p.Set(dy, dyv)
			dw, db := p.Poisoned(g.Patch(), out), p.Poisoned(1, out)
			if all {
				p.C.ConvBackward(dx.C, dw.C, db.C, dcols.C, dy.C, cols.C, y.C, w.C, g, act)
				p.G.ConvBackward(dx.G, dw.G, db.G, dcols.G, dy.G, cols.G, y.G, w.G, g, act)
				p.Close(name+" dw", dw, 1e-5)
				p.Close(name+" db", db, 1e-5)
			} else {
				p.C.ConvBackward(dx.C, nil, nil, dcols.C, dy.C, cols.C, y.C, w.C, g, act)
				p.G.ConvBackward(dx.G, nil, nil, dcols.G, dy.G, cols.G, y.G, w.G, g, act)
			}
			p.Same(name+" dZ", dy)
			p.Close(name+" dx", dx, 1e-5)
		}

		// The transposed convolution of g (out channels in), backward.
		name = fmt.Sprintf("%v n=%d conv transpose backward", g, n)
		tx, dy := p.Uniform(n*g.Positions(), out, -1, 1), p.Uniform(n, g.InSize(), -1, 1)
		tw := p.Uniform(out, g.Patch(), -0.5, 0.5)
		dx, dw := p.Poisoned(n*g.Positions(), out), p.Poisoned(out, g.Patch())
		p.C.ConvTransposeBackward(dx.C, dw.C, cols.C, dy.C, tx.C, tw.C, g)
		p.G.ConvTransposeBackward(dx.G, dw.G, cols.G, dy.G, tx.G, tw.G, g)
		p.Same(name+" cols", cols)
		p.Close(name+" dx", dx, 1e-5)
		p.Close(name+" dw", dw, 1e-5)

		// The transposed convolution of g (out channels in), forward.
		name = fmt.Sprintf("%v n=%d conv transpose forward", g, n)
		ty, tb := p.Poisoned(n, g.InSize()), p.Uniform(1, g.InC, -0.5, 0.5)
		p.C.ConvTransposeForward(ty.C, cols.C, tx.C, tw.C, tb.C, g, act)
		p.G.ConvTransposeForward(ty.G, cols.G, tx.G, tw.G, tb.G, g, act)
		p.Close(name+" y", ty, 1e-5)
	}
	for _, s := range [][3]int{{1, 1, 1}, {37, 37, 1}, {600, 5, 2}} {
		m, c, groups := s[0], s[1], s[2]
		for _, act := range []backend.Act{{Kind: backend.ReLU}, {Kind: backend.LeakyReLU, Alpha: 0.2}, {}} {
			name := fmt.Sprintf("%dx%d/%d %s", m, c, groups, act.Kind)
			// Outputs are views in a larger tensor, as the layers use them.
			parent := p.Poisoned(m+1, c)
			y := p.View(parent, c, m, c)
			bias := p.Uniform(1, c, -0.5, 0.5)
			yv := make([]float32, m*c)
			for i := range yv {
				yv[i] = 2*p.R.Float32() - 1
			}
			p.Set(y, yv)
			p.C.BiasActivation(y.C, bias.C, act)
			p.G.BiasActivation(y.G, bias.G, act)
			p.Same(name+" bias activation", y)
			dy, db := p.Uniform(m, c, -1, 1), p.Poisoned(1, c)
			p.C.BiasActivationBackward(db.C, dy.C, y.C, act)
			p.G.BiasActivationBackward(db.G, dy.G, y.G, act)
			p.Same(name+" bias activation dZ", dy)
			p.Close(name+" bias activation db", db, 1e-5)

			x, gamma, beta := p.Uniform(m, c, -1, 3), p.Uniform(1, c, 0.5, 1.5), p.Uniform(1, c, -0.5, 0.5)
			mean, variance := p.Poisoned(groups, c), p.Poisoned(groups, c)
			rm, rv := p.Uniform(1, c, -0.1, 0.1), p.Uniform(1, c, 0.5, 1.5)
			p.C.BatchNorm(y.C, mean.C, variance.C, x.C, gamma.C, beta.C, rm.C, rv.C, groups, 1e-5, 0.1, act)
			p.G.BatchNorm(y.G, mean.G, variance.G, x.G, gamma.G, beta.G, rm.G, rv.G, groups, 1e-5, 0.1, act)
			p.Close(name+" batchnorm y", y, 1e-5)
			p.Close(name+" batchnorm mean", mean, 1e-5)
			p.Close(name+" batchnorm variance", variance, 1e-5)
			p.Close(name+" batchnorm running mean", rm, 1e-5)
			p.Close(name+" batchnorm running variance", rv, 1e-5)
			// Continue from the CPU's statistics and output, so that the backward
			// passes see the same inputs.
			for _, tw := range []twin{y, mean, variance} {
				v := make([]float32, backend.Len(tw.C))
				p.C.Download(v, tw.C)
				p.Set(tw, v)
			}
			dy = p.Uniform(m, c, -1, 1)
			dx, dgamma, dbeta := p.Poisoned(m, c), p.Poisoned(1, c), p.Poisoned(1, c)
			p.C.BatchNormBackward(dx.C, dgamma.C, dbeta.C, dy.C, x.C, y.C, gamma.C, mean.C, variance.C, groups, 1e-5, act)
			p.G.BatchNormBackward(dx.G, dgamma.G, dbeta.G, dy.G, x.G, y.G, gamma.G, mean.G, variance.G, groups, 1e-5, act)
			p.Same(name+" batchnorm dZ", dy)
			p.Close(name+" batchnorm dx", dx, 1e-5)
			p.Close(name+" batchnorm dgamma", dgamma, 1e-5)
			p.Close(name+" batchnorm dbeta", dbeta, 1e-5)
			yi := p.Poisoned(m, c)
			p.C.BatchNormInfer(yi.C, x.C, gamma.C, beta.C, rm.C, rv.C, 1e-5, act)
			p.G.BatchNormInfer(yi.G, x.G, gamma.G, beta.G, rm.G, rv.G, 1e-5, act)
			p.Close(name+" batchnorm infer", yi, 1e-5)
			row := make([]float32, (m+1)*c)
			p.G.Download(row, parent.G)
			for i, v := range row[:c] {
				if v == v {
					t.Fatalf("%s: element %d before the view was written (%g)", name, i, v)
				}
			}
		}
	}
}
