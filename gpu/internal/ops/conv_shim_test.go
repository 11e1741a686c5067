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
			x := p.uniform(n, g.InSize(), -1, 1)
			cols := p.poisoned(n*g.Positions(), g.Patch())
			p.c.Im2Col(cols.c, x.c, g)
			p.g.Im2Col(cols.g, x.g, g)
			p.check(name+" im2col", cols, 0)
			xs := p.poisoned(n, g.InSize())
			p.c.Col2Im(xs.c, cols.c, g)
			p.g.Col2Im(xs.g, cols.g, g)
			p.check(name+" col2im", xs, 0)
		}
	}
	for _, s := range [][3]int{{1, 1, 1}, {37, 37, 1}, {600, 5, 2}} {
		m, c, groups := s[0], s[1], s[2]
		for _, act := range []backend.Act{{Kind: backend.ReLU}, {Kind: backend.LeakyReLU, Alpha: 0.2}, {}} {
			name := fmt.Sprintf("%dx%d/%d %s", m, c, groups, act.Kind)
			// Outputs are views in a larger tensor, as the layers use them.
			parent := p.poisoned(m+1, c)
			y := p.view(parent, c, m, c)
			bias := p.uniform(1, c, -0.5, 0.5)
			yv := make([]float32, m*c)
			for i := range yv {
				yv[i] = 2*p.r.Float32() - 1
			}
			p.set(y, yv)
			p.c.BiasActivation(y.c, bias.c, act)
			p.g.BiasActivation(y.g, bias.g, act)
			p.check(name+" bias activation", y, 0)
			dy, db := p.uniform(m, c, -1, 1), p.poisoned(1, c)
			p.c.BiasActivationBackward(db.c, dy.c, y.c, act)
			p.g.BiasActivationBackward(db.g, dy.g, y.g, act)
			p.check(name+" bias activation dZ", dy, 0)
			p.check(name+" bias activation db", db, 1e-5)

			x, gamma, beta := p.uniform(m, c, -1, 3), p.uniform(1, c, 0.5, 1.5), p.uniform(1, c, -0.5, 0.5)
			mean, variance := p.poisoned(groups, c), p.poisoned(groups, c)
			rm, rv := p.uniform(1, c, -0.1, 0.1), p.uniform(1, c, 0.5, 1.5)
			p.c.BatchNorm(y.c, mean.c, variance.c, x.c, gamma.c, beta.c, rm.c, rv.c, groups, 1e-5, 0.1, act)
			p.g.BatchNorm(y.g, mean.g, variance.g, x.g, gamma.g, beta.g, rm.g, rv.g, groups, 1e-5, 0.1, act)
			p.check(name+" batchnorm y", y, 1e-5)
			p.check(name+" batchnorm mean", mean, 1e-5)
			p.check(name+" batchnorm variance", variance, 1e-5)
			p.check(name+" batchnorm running mean", rm, 1e-5)
			p.check(name+" batchnorm running variance", rv, 1e-5)
			// Continue from the CPU's statistics and output, so that the backward
			// passes see the same inputs.
			for _, tw := range []twin{y, mean, variance} {
				v := make([]float32, backend.Len(tw.c))
				p.c.Download(v, tw.c)
				p.set(tw, v)
			}
			dy = p.uniform(m, c, -1, 1)
			dx, dgamma, dbeta := p.poisoned(m, c), p.poisoned(1, c), p.poisoned(1, c)
			p.c.BatchNormBackward(dx.c, dgamma.c, dbeta.c, dy.c, x.c, y.c, gamma.c, mean.c, variance.c, groups, 1e-5, act)
			p.g.BatchNormBackward(dx.g, dgamma.g, dbeta.g, dy.g, x.g, y.g, gamma.g, mean.g, variance.g, groups, 1e-5, act)
			p.check(name+" batchnorm dZ", dy, 0)
			p.check(name+" batchnorm dx", dx, 1e-5)
			p.check(name+" batchnorm dgamma", dgamma, 1e-5)
			p.check(name+" batchnorm dbeta", dbeta, 1e-5)
			yi := p.poisoned(m, c)
			p.c.BatchNormInfer(yi.c, x.c, gamma.c, beta.c, rm.c, rv.c, 1e-5, act)
			p.g.BatchNormInfer(yi.g, x.g, gamma.g, beta.g, rm.g, rv.g, 1e-5, act)
			p.check(name+" batchnorm infer", yi, 1e-5)
			row := make([]float32, (m+1)*c)
			p.g.Download(row, parent.g)
			for i, v := range row[:c] {
				if v == v {
					t.Fatalf("%s: element %d before the view was written (%g)", name, i, v)
				}
			}
		}
	}
}
