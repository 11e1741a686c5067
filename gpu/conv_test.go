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

// convForwardCases are convCases, a ragged one of 8 channels (the implicit im2col's
// candidates too) and one of 136 (a transposed convolution's output in several column
// tiles); GANTRAIN_GEMM_SMALL=1 keeps only the small ones, for the sanitizers.
func convForwardCases() []convCase {
	cs := append(convCases[:len(convCases):len(convCases)],
		convCase{backend.ConvGeom{InH: 9, InW: 6, InC: 8, KH: 3, KW: 4, StrideH: 1, StrideW: 2, PadH: 2, PadW: 1}, 5},
		convCase{backend.ConvGeom{InH: 6, InW: 6, InC: 136, KH: 4, KW: 4, StrideH: 2, StrideW: 2, PadH: 1, PadW: 1}, 3})
	if os.Getenv("GANTRAIN_GEMM_SMALL") != "" {
		return slices.DeleteFunc(cs, func(c convCase) bool { return c.n*c.g.Positions()*c.g.Patch() > 1<<14 })
	}
	return cs
}

// eachConvCandidate runs, for each precision and each of convForwardCases, the
// operation case_ prepares (its problem for the chooser and a run that calls the
// operation on the GPU and checks it against the CPU's result) with every candidate
// of that problem, which the operation must ask the chooser about. It fails unless an
// _im or _ct kernel (a convolution kernel that lays out no columns first) ran.
func eachConvCandidate(t *testing.T, case_ func(p *pair, c convCase, tf32 bool, tol float64) (kernels.GemmProblem, func(name string))) {
	for _, prec := range precisions() {
		t.Run(prec.name, func(t *testing.T) {
			sw, p, plan := switchedPair(t, prec.tf32)
			total, implicit := 0, 0
			for _, c := range convForwardCases() {
				pr, run := case_(p, c, prec.tf32, prec.tol)
				for _, ch := range kernels.GemmCandidates(plan, pr) {
					sw.c, sw.asked = ch, nil
					name := fmt.Sprintf("%v %v", pr, ch)
					run(name)
					if !slices.Contains(sw.asked, pr) {
						t.Fatalf("%s: the backend planned %v", name, sw.asked)
					}
					total++
					if ch.Im2Col || ch.Col2Im {
						implicit++
					}
				}
			}
			if implicit == 0 {
				t.Errorf("no _im or _ct kernel among the %d candidates", total)
			}
			t.Logf("%d candidate runs checked, %d of _im or _ct kernels", total, implicit)
		})
	}
}

// TestConvForwardCandidates runs every candidate of each convolution's forward
// product on the device, the implicit im2col's (_im kernels) included, against the CPU
// backend: the columns bit for bit, the output within the precision's tolerance.
func TestConvForwardCandidates(t *testing.T) {
	eachConvCandidate(t, func(p *pair, c convCase, tf32 bool, tol float64) (kernels.GemmProblem, func(string)) {
		g, n, out := c.g, c.n, 72
		x := p.Uniform(n, g.InSize(), -1, 1)
		w := p.Uniform(g.Patch(), out, -0.1, 0.1)
		bias := p.Uniform(1, out, -0.5, 0.5)
		rows := n * g.Positions()
		y, cols := p.Alloc(backend.F32, rows, out), p.Alloc(backend.F32, rows, g.Patch())
		act := backend.Act{Kind: backend.LeakyReLU, Alpha: 0.2}
		p.C.ConvForward(y.C, cols.C, x.C, w.C, bias.C, g, act)
		wantY, wantCols := backendtest.Download(t, p.C, y.C), backendtest.Download(t, p.C, cols.C)
		pr := kernels.GemmProblem{Kind: "nn", M: rows, N: out, K: g.Patch(), LDA: g.Patch(), LDB: out, TF32: tf32,
			Vec4: g.Patch()%4 == 0, Conv: g, ConvVec4: g.InC%4 == 0}
		return pr, func(name string) {
			p.Poison(y, cols)
			p.G.ConvForward(y.G, cols.G, x.G, w.G, bias.G, g, act)
			p.NoErr()
			backendtest.Bitwise(t, name+" cols", backendtest.Download(t, p.G, cols.G), wantCols)
			writtenNear(t, name+" y", backendtest.Download(t, p.G, y.G), wantY, tol)
		}
	})
}

// TestConvBackwardCandidates runs every candidate of each convolution's input
// gradient on the device (dZ·wᵀ into the columns, then col2im_nhwc; the nt _ct
// kernels), after dZ and the weight and bias gradients, against the CPU backend: dZ
// bit for bit, dx, dw and db within the precision's tolerance.
func TestConvBackwardCandidates(t *testing.T) {
	eachConvCandidate(t, func(p *pair, c convCase, tf32 bool, tol float64) (kernels.GemmProblem, func(string)) {
		g, n, out := c.g, c.n, 72
		rows := n * g.Positions()
		cols, w := p.Uniform(rows, g.Patch(), -1, 1), p.Uniform(g.Patch(), out, -0.1, 0.1)
		y, dy0 := p.Uniform(rows, out, -1, 1), p.Uniform(rows, out, -1, 1)
		dy := p.Alloc(backend.F32, rows, out)
		dx, dw, db, dcols := p.Alloc(backend.F32, n, g.InSize()), p.Alloc(backend.F32, g.Patch(), out), p.Alloc(backend.F32, 1, out),
			p.Alloc(backend.F32, rows, g.Patch())
		act := backend.Act{Kind: backend.LeakyReLU, Alpha: 0.2}
		p.C.Copy(dy.C, dy0.C)
		p.C.ConvBackward(dx.C, dw.C, db.C, dcols.C, dy.C, cols.C, y.C, w.C, g, act)
		wantDZ, wantDX := backendtest.Download(t, p.C, dy.C), backendtest.Download(t, p.C, dx.C)
		wantDW, wantDB := backendtest.Download(t, p.C, dw.C), backendtest.Download(t, p.C, db.C)
		pr := kernels.GemmProblem{Kind: "nt", M: rows, N: g.Patch(), K: out, LDA: out, LDB: out, TF32: tf32,
			Vec4: true, ConvT: g, ConvTVec4: g.InC%4 == 0}
		return pr, func(name string) {
			p.Poison(dx, dw, db, dcols)
			p.G.Copy(dy.G, dy0.G)
			p.G.ConvBackward(dx.G, dw.G, db.G, dcols.G, dy.G, cols.G, y.G, w.G, g, act)
			p.NoErr()
			backendtest.Bitwise(t, name+" dZ", backendtest.Download(t, p.G, dy.G), wantDZ)
			writtenNear(t, name+" dx", backendtest.Download(t, p.G, dx.G), wantDX, tol)
			writtenNear(t, name+" dw", backendtest.Download(t, p.G, dw.G), wantDW, tol)
			writtenNear(t, name+" db", backendtest.Download(t, p.G, db.G), wantDB, tol)
		}
	})
}

// TestConvTransposeForwardCandidates runs every candidate of each transposed
// convolution's forward pass on the device (the product, col2im_nhwc and
// bias_activation; the _ct kernels, one product per output phase), against the CPU
// backend: y within the precision's tolerance.
func TestConvTransposeForwardCandidates(t *testing.T) {
	eachConvCandidate(t, func(p *pair, c convCase, tf32 bool, tol float64) (kernels.GemmProblem, func(string)) {
		g, n, in := c.g, c.n, 72 // the transposed convolution of g, from in channels
		rows := n * g.Positions()
		x, w, bias := p.Uniform(rows, in, -1, 1), p.Uniform(in, g.Patch(), -0.1, 0.1), p.Uniform(1, g.InC, -0.5, 0.5)
		y, cols := p.Alloc(backend.F32, n, g.InSize()), p.Alloc(backend.F32, rows, g.Patch())
		act := backend.Act{Kind: backend.Tanh}
		p.C.ConvTransposeForward(y.C, cols.C, x.C, w.C, bias.C, g, act)
		wantY := backendtest.Download(t, p.C, y.C)
		pr := kernels.GemmProblem{Kind: "nn", M: rows, N: g.Patch(), K: in, LDA: in, LDB: g.Patch(), TF32: tf32,
			Vec4: g.Patch()%4 == 0, ConvT: g, ConvTVec4: g.InC%4 == 0}
		return pr, func(name string) {
			p.Poison(y, cols)
			p.G.ConvTransposeForward(y.G, cols.G, x.G, w.G, bias.G, g, act)
			p.NoErr()
			writtenNear(t, name+" y", backendtest.Download(t, p.G, y.G), wantY, tol)
		}
	})
}

// TestConvTransposeBackwardCandidates runs every candidate of the input gradient's
// product of each transposed convolution (the columns of the output gradient times
// wᵀ), the implicit im2col's included, and the weight gradient on the columns it
// leaves, on the device against the CPU backend: the columns bit for bit, dx and dw
// within the precision's tolerance.
func TestConvTransposeBackwardCandidates(t *testing.T) {
	eachConvCandidate(t, func(p *pair, c convCase, tf32 bool, tol float64) (kernels.GemmProblem, func(string)) {
		g, n, in := c.g, c.n, 72 // the transposed convolution of g, from in channels
		rows := n * g.Positions()
		x, dy := p.Uniform(rows, in, -1, 1), p.Uniform(n, g.InSize(), -1, 1)
		w := p.Uniform(in, g.Patch(), -0.1, 0.1)
		dx, dw, cols := p.Alloc(backend.F32, rows, in), p.Alloc(backend.F32, in, g.Patch()), p.Alloc(backend.F32, rows, g.Patch())
		p.C.ConvTransposeBackward(dx.C, dw.C, cols.C, dy.C, x.C, w.C, g)
		wantDX, wantDW := backendtest.Download(t, p.C, dx.C), backendtest.Download(t, p.C, dw.C)
		wantCols := backendtest.Download(t, p.C, cols.C)
		pr := kernels.GemmProblem{Kind: "nt", M: rows, N: in, K: g.Patch(), LDA: g.Patch(), LDB: g.Patch(), TF32: tf32,
			Vec4: g.Patch()%4 == 0, Conv: g, ConvVec4: g.InC%4 == 0}
		return pr, func(name string) {
			p.Poison(dx, dw, cols)
			p.G.ConvTransposeBackward(dx.G, dw.G, cols.G, dy.G, x.G, w.G, g)
			p.NoErr()
			backendtest.Bitwise(t, name+" cols", backendtest.Download(t, p.G, cols.G), wantCols)
			writtenNear(t, name+" dx", backendtest.Download(t, p.G, dx.G), wantDX, tol)
			writtenNear(t, name+" dw", backendtest.Download(t, p.G, dw.G), wantDW, tol)
		}
	})
}
