//go:build !nocuda

package gpu_test

import (
	"fmt"
	"testing"

	"github.com/gantrain/gantrain/backend"
)

// The convolution and batch-normalisation operations against their CPU twins: data
// movement and dZ bit for bit, the batch statistics and what depends on them within
// fp32 rounding. Ragged geometries, the DCGAN's sizes, and rows enough to split.

var convCases = []struct {
	g backend.ConvGeom
	n int
}{
	{backend.ConvGeom{InH: 5, InW: 7, InC: 3, KH: 3, KW: 2, StrideH: 1, StrideW: 1}, 3},
	{backend.ConvGeom{InH: 5, InW: 7, InC: 1, KH: 3, KW: 2, StrideH: 2, StrideW: 3, PadH: 1, PadW: 1}, 1},
	{backend.ConvGeom{InH: 5, InW: 7, InC: 37, KH: 3, KW: 2, StrideH: 3, StrideW: 2, PadH: 2, PadW: 1}, 3},
	{backend.ConvGeom{InH: 28, InW: 28, InC: 1, KH: 4, KW: 4, StrideH: 2, StrideW: 2, PadH: 1, PadW: 1}, 100},
	{backend.ConvGeom{InH: 14, InW: 14, InC: 64, KH: 4, KW: 4, StrideH: 2, StrideW: 2, PadH: 1, PadW: 1}, 100},
}

func TestIm2ColCol2Im(t *testing.T) {
	p := newPair(t, false)
	for _, c := range convCases {
		name := fmt.Sprintf("%v n=%d", c.g, c.n)
		x := p.uniform(c.n, c.g.InSize(), -1, 1)
		cols := p.alloc(backend.F32, c.n*c.g.Positions(), c.g.Patch())
		p.poison(cols)
		p.c.Im2Col(cols.c, x.c, c.g)
		p.g.Im2Col(cols.g, x.g, c.g)
		p.noErr()
		p.same(name+" im2col", cols)
		dcols := p.uniform(c.n*c.g.Positions(), c.g.Patch(), -1, 1)
		dx := p.alloc(backend.F32, c.n, c.g.InSize())
		p.poison(dx)
		p.c.Col2Im(dx.c, dcols.c, c.g)
		p.g.Col2Im(dx.g, dcols.g, c.g)
		p.noErr()
		p.same(name+" col2im", dx)
	}
}

// channelCases are m×c per-channel problems in groups: ragged, the DCGAN's layers at
// batch 100 (the discriminator's real and fake halves as two groups), and a large one.
var channelCases = []struct{ m, c, groups int }{
	{1, 1, 1}, {3, 2, 3}, {37, 37, 1}, {700, 5, 2}, {100 * 7 * 7, 128, 1}, {200 * 14 * 14, 64, 2}, {100 * 14 * 14, 64, 1},
	{4096, 1024, 1},
}

func TestBiasActivation(t *testing.T) {
	p := newPair(t, false)
	for _, c := range channelCases {
		for _, act := range acts {
			name := fmt.Sprintf("%s/%s", shape(c.m, c.c), act.Kind)
			y, bias := p.uniform(c.m, c.c, -2, 2), p.uniform(1, c.c, -1, 1)
			p.c.BiasActivation(y.c, bias.c, act)
			p.g.BiasActivation(y.g, bias.g, act)
			p.noErr()
			p.same(name+" y", y)
			p.set(y, download(t, p.c, y.c))
			dy, db := p.uniform(c.m, c.c, -1, 1), p.alloc(backend.F32, 1, c.c)
			p.poison(db)
			p.c.BiasActivationBackward(db.c, dy.c, y.c, act)
			p.g.BiasActivationBackward(db.g, dy.g, y.g, act)
			p.noErr()
			p.same(name+" dZ", dy)
			p.close(name+" db", db, tolFP32)
		}
	}
}

func TestBatchNorm(t *testing.T) {
	p := newPair(t, false)
	const eps, momentum = 1e-5, 0.1
	for ci, c := range channelCases {
		act := acts[ci%len(acts)]
		name := fmt.Sprintf("%s/%d groups/%s", shape(c.m, c.c), c.groups, act.Kind)
		x, gamma, beta := p.uniform(c.m, c.c, -1, 3), p.uniform(1, c.c, 0.5, 1.5), p.uniform(1, c.c, -0.5, 0.5)
		y, mean, variance := p.alloc(backend.F32, c.m, c.c), p.alloc(backend.F32, c.groups, c.c), p.alloc(backend.F32, c.groups, c.c)
		p.poison(y, mean, variance)
		rm, rv := p.uniform(1, c.c, -0.1, 0.1), p.uniform(1, c.c, 0.5, 1.5)
		p.c.BatchNorm(y.c, mean.c, variance.c, x.c, gamma.c, beta.c, rm.c, rv.c, c.groups, eps, momentum, act)
		p.g.BatchNorm(y.g, mean.g, variance.g, x.g, gamma.g, beta.g, rm.g, rv.g, c.groups, eps, momentum, act)
		p.noErr()
		p.close(name+" mean", mean, tolFP32)
		p.close(name+" variance", variance, tolFP32)
		p.close(name+" y", y, tolFP32)
		p.close(name+" running mean", rm, tolFP32)
		p.close(name+" running variance", rv, tolFP32)
		yi := p.alloc(backend.F32, c.m, c.c)
		p.poison(yi)
		p.c.BatchNormInfer(yi.c, x.c, gamma.c, beta.c, rm.c, rv.c, eps, act)
		p.g.BatchNormInfer(yi.g, x.g, gamma.g, beta.g, rm.g, rv.g, eps, act)
		p.noErr()
		p.close(name+" infer", yi, tolFP32)
		// The backward pass from the CPU's forward results on both sides.
		for _, tw := range []twin{y, mean, variance} {
			p.set(tw, download(t, p.c, tw.c))
		}
		dy := p.uniform(c.m, c.c, -1, 1)
		dx, dgamma, dbeta := p.alloc(backend.F32, c.m, c.c), p.alloc(backend.F32, 1, c.c), p.alloc(backend.F32, 1, c.c)
		p.poison(dx, dgamma, dbeta)
		p.c.BatchNormBackward(dx.c, dgamma.c, dbeta.c, dy.c, x.c, y.c, gamma.c, mean.c, variance.c, c.groups, eps, act)
		p.g.BatchNormBackward(dx.g, dgamma.g, dbeta.g, dy.g, x.g, y.g, gamma.g, mean.g, variance.g, c.groups, eps, act)
		p.noErr()
		p.same(name+" dZ", dy)
		p.close(name+" dx", dx, tolFP32)
		p.close(name+" dgamma", dgamma, tolFP32)
		p.close(name+" dbeta", dbeta, tolFP32)
	}
}
