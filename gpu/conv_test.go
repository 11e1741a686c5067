//go:build !nocuda

package gpu_test

import (
	"fmt"
	"os"
	"slices"
	"testing"

	"github.com/gantrain/gantrain/backend"
	"github.com/gantrain/gantrain/backend/backendtest"
	"github.com/gantrain/gantrain/kernels"
)

// The convolution and batch-normalisation operations against their CPU twins: data
// movement and dZ bit for bit, the batch statistics and what depends on them within
// fp32 rounding. Ragged geometries, the DCGAN's sizes, and rows enough to split.

// convCase is a convolution's geometry and its number of images.
type convCase struct {
	g backend.ConvGeom
	n int
}

var convCases = []convCase{
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
		x := p.Uniform(c.n, c.g.InSize(), -1, 1)
		cols := p.Alloc(backend.F32, c.n*c.g.Positions(), c.g.Patch())
		p.Poison(cols)
		p.C.Im2Col(cols.C, x.C, c.g)
		p.G.Im2Col(cols.G, x.G, c.g)
		p.NoErr()
		p.Same(name+" im2col", cols)
		dcols := p.Uniform(c.n*c.g.Positions(), c.g.Patch(), -1, 1)
		dx := p.Alloc(backend.F32, c.n, c.g.InSize())
		p.Poison(dx)
		p.C.Col2Im(dx.C, dcols.C, c.g)
		p.G.Col2Im(dx.G, dcols.G, c.g)
		p.NoErr()
		p.Same(name+" col2im", dx)
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
			y, bias := p.Uniform(c.m, c.c, -2, 2), p.Uniform(1, c.c, -1, 1)
			p.C.BiasActivation(y.C, bias.C, act)
			p.G.BiasActivation(y.G, bias.G, act)
			p.NoErr()
			p.Same(name+" y", y)
			p.Set(y, backendtest.Download(t, p.C, y.C))
			dy, db := p.Uniform(c.m, c.c, -1, 1), p.Alloc(backend.F32, 1, c.c)
			p.Poison(db)
			p.C.BiasActivationBackward(db.C, dy.C, y.C, act)
			p.G.BiasActivationBackward(db.G, dy.G, y.G, act)
			p.NoErr()
			p.Same(name+" dZ", dy)
			p.Close(name+" db", db, tolFP32)
		}
	}
}

func TestBatchNorm(t *testing.T) {
	p := newPair(t, false)
	const eps, momentum = 1e-5, 0.1
	for ci, c := range channelCases {
		act := acts[ci%len(acts)]
		name := fmt.Sprintf("%s/%d groups/%s", shape(c.m, c.c), c.groups, act.Kind)
		x, gamma, beta := p.Uniform(c.m, c.c, -1, 3), p.Uniform(1, c.c, 0.5, 1.5), p.Uniform(1, c.c, -0.5, 0.5)
		y, mean, variance := p.Alloc(backend.F32, c.m, c.c), p.Alloc(backend.F32, c.groups, c.c), p.Alloc(backend.F32, c.groups, c.c)
		p.Poison(y, mean, variance)
		rm, rv := p.Uniform(1, c.c, -0.1, 0.1), p.Uniform(1, c.c, 0.5, 1.5)
		p.C.BatchNorm(y.C, mean.C, variance.C, x.C, gamma.C, beta.C, rm.C, rv.C, c.groups, eps, momentum, act)
		p.G.BatchNorm(y.G, mean.G, variance.G, x.G, gamma.G, beta.G, rm.G, rv.G, c.groups, eps, momentum, act)
		p.NoErr()
		p.Close(name+" mean", mean, tolFP32)
		p.Close(name+" variance", variance, tolFP32)
		p.Close(name+" y", y, tolFP32)
		p.Close(name+" running mean", rm, tolFP32)
		p.Close(name+" running variance", rv, tolFP32)
		yi := p.Alloc(backend.F32, c.m, c.c)
		p.Poison(yi)
		p.C.BatchNormInfer(yi.C, x.C, gamma.C, beta.C, rm.C, rv.C, eps, act)
		p.G.BatchNormInfer(yi.G, x.G, gamma.G, beta.G, rm.G, rv.G, eps, act)
		p.NoErr()
		p.Close(name+" infer", yi, tolFP32)
		// The backward pass from the CPU's forward results on both sides.
		for _, tw := range []twin{y, mean, variance} {
			p.Set(tw, backendtest.Download(t, p.C, tw.C))
		}
		dy := p.Uniform(c.m, c.c, -1, 1)
		dx, dgamma, dbeta := p.Alloc(backend.F32, c.m, c.c), p.Alloc(backend.F32, 1, c.c), p.Alloc(backend.F32, 1, c.c)
		p.Poison(dx, dgamma, dbeta)
		p.C.BatchNormBackward(dx.C, dgamma.C, dbeta.C, dy.C, x.C, y.C, gamma.C, mean.C, variance.C, c.groups, eps, act)
		p.G.BatchNormBackward(dx.G, dgamma.G, dbeta.G, dy.G, x.G, y.G, gamma.G, mean.G, variance.G, c.groups, eps, act)
		p.NoErr()
		p.Same(name+" dZ", dy)
		p.Close(name+" dx", dx, tolFP32)
		p.Close(name+" dgamma", dgamma, tolFP32)
		p.Close(name+" dbeta", dbeta, tolFP32)
	}
}

// convForwardCases are convCases and a ragged one of 8 channels (the implicit im2col's
// candidates too); GANTRAIN_GEMM_SMALL=1 keeps only the small ones, for the
// sanitizers.
func convForwardCases() []convCase {
	cs := append(convCases[:len(convCases):len(convCases)],
		convCase{backend.ConvGeom{InH: 9, InW: 6, InC: 8, KH: 3, KW: 4, StrideH: 1, StrideW: 2, PadH: 2, PadW: 1}, 5})
	if os.Getenv("GANTRAIN_GEMM_SMALL") != "" {
		return slices.DeleteFunc(cs, func(c convCase) bool { return c.n*c.g.Positions()*c.g.Patch() > 1<<14 })
	}
	return cs
}

// implicitCounter counts a test's candidate runs, and those of the implicit im2col.
type implicitCounter struct{ total, implicit int }

func (c *implicitCounter) add(ch kernels.GemmChoice) {
	c.total++
	if ch.Im2Col {
		c.implicit++
	}
}

// check fails unless the implicit im2col ran, and logs the counts.
func (c *implicitCounter) check(t *testing.T) {
	if c.implicit == 0 {
		t.Errorf("no implicit im2col among the %d candidates", c.total)
	}
	t.Logf("%d candidate runs checked, %d with the implicit im2col", c.total, c.implicit)
}

// TestConvForwardCandidates runs every candidate of each convolution's forward
// product on the device, the implicit im2col's (_im kernels) included, against the CPU
// backend: the columns bit for bit, the output within the precision's tolerance.
func TestConvForwardCandidates(t *testing.T) {
	for _, prec := range precisions() {
		t.Run(prec.name, func(t *testing.T) {
			sw, p, plan := switchedPair(t, prec.tf32)
			var runs implicitCounter
			for _, c := range convForwardCases() {
				g, n, out := c.g, c.n, 72
				x := p.Uniform(n, g.InSize(), -1, 1)
				w := p.Uniform(g.Patch(), out, -0.1, 0.1)
				bias := p.Uniform(1, out, -0.5, 0.5)
				rows := n * g.Positions()
				y, cols := p.Alloc(backend.F32, rows, out), p.Alloc(backend.F32, rows, g.Patch())
				act := backend.Act{Kind: backend.LeakyReLU, Alpha: 0.2}
				p.C.ConvForward(y.C, cols.C, x.C, w.C, bias.C, g, act)
				wantY, wantCols := backendtest.Download(t, p.C, y.C), backendtest.Download(t, p.C, cols.C)
				pr := kernels.GemmProblem{Kind: "nn", M: rows, N: out, K: g.Patch(), LDA: g.Patch(), LDB: out, TF32: prec.tf32,
					Vec4: g.Patch()%4 == 0, Conv: g, ConvVec4: g.InC%4 == 0}
				for _, ch := range kernels.GemmCandidates(plan, pr) {
					sw.c = ch
					name := fmt.Sprintf("%v %v", pr, ch)
					p.Poison(y, cols)
					p.G.ConvForward(y.G, cols.G, x.G, w.G, bias.G, g, act)
					p.NoErr()
					if sw.seen != pr {
						t.Fatalf("%s: the backend planned %v", name, sw.seen)
					}
					backendtest.Bitwise(t, name+" cols", backendtest.Download(t, p.G, cols.G), wantCols)
					writtenNear(t, name+" y", backendtest.Download(t, p.G, y.G), wantY, prec.tol)
					runs.add(ch)
				}
			}
			runs.check(t)
		})
	}
}

// TestConvTransposeBackwardCandidates runs every candidate of the input gradient's
// product of each transposed convolution (the columns of the output gradient times
// wᵀ), the implicit im2col's included, and the weight gradient on the columns it
// leaves, on the device against the CPU backend: the columns bit for bit, dx and dw
// within the precision's tolerance.
func TestConvTransposeBackwardCandidates(t *testing.T) {
	for _, prec := range precisions() {
		t.Run(prec.name, func(t *testing.T) {
			sw, p, plan := switchedPair(t, prec.tf32)
			var runs implicitCounter
			for _, c := range convForwardCases() {
				g, n, in := c.g, c.n, 72 // the transposed convolution of g, from in channels
				rows := n * g.Positions()
				x, dy := p.Uniform(rows, in, -1, 1), p.Uniform(n, g.InSize(), -1, 1)
				w := p.Uniform(in, g.Patch(), -0.1, 0.1)
				dx, dw, cols := p.Alloc(backend.F32, rows, in), p.Alloc(backend.F32, in, g.Patch()), p.Alloc(backend.F32, rows, g.Patch())
				p.C.ConvTransposeBackward(dx.C, dw.C, cols.C, dy.C, x.C, w.C, g)
				wantDX, wantDW := backendtest.Download(t, p.C, dx.C), backendtest.Download(t, p.C, dw.C)
				wantCols := backendtest.Download(t, p.C, cols.C)
				pr := kernels.GemmProblem{Kind: "nt", M: rows, N: in, K: g.Patch(), LDA: g.Patch(), LDB: g.Patch(), TF32: prec.tf32,
					Vec4: g.Patch()%4 == 0, Conv: g, ConvVec4: g.InC%4 == 0}
				for _, ch := range kernels.GemmCandidates(plan, pr) {
					sw.c = ch
					name := fmt.Sprintf("%v %v", pr, ch)
					p.Poison(dx, dw, cols)
					p.G.ConvTransposeBackward(dx.G, dw.G, cols.G, dy.G, x.G, w.G, g)
					p.NoErr()
					backendtest.Bitwise(t, name+" cols", backendtest.Download(t, p.G, cols.G), wantCols)
					writtenNear(t, name+" dx", backendtest.Download(t, p.G, dx.G), wantDX, prec.tol)
					writtenNear(t, name+" dw", backendtest.Download(t, p.G, dw.G), wantDW, prec.tol)
					runs.add(ch)
				}
			}
			runs.check(t)
		})
	}
}
