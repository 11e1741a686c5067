//go:build !nocuda

package gpu_test

import (
	"fmt"
	"math"
	"testing"

	"github.com/gantrain/gantrain/backend"
	"github.com/gantrain/gantrain/backend/backendtest"
	"github.com/gantrain/gantrain/rng"
)

// Every operation against its CPU twin, on fresh random inputs of several shapes
// (ragged ones, the paper's, a large batch), with outputs poisoned (NaN) first.

var acts = []backend.Act{
	{Kind: backend.Identity},
	{Kind: backend.ReLU},
	{Kind: backend.LeakyReLU, Alpha: 0.2},
	{Kind: backend.Sigmoid},
	{Kind: backend.Tanh},
}

type denseCase struct {
	n, in, out int
	allActs    bool // every activation (else ReLU and sigmoid only)
}

var denseCases = []denseCase{
	{1, 1, 1, true},
	{1, 100, 1200, true},
	{2, 3, 5, true},
	{37, 53, 29, true},
	{100, 100, 1200, false},  // G's first layer, paper batch
	{100, 1200, 1200, true},  // G's second layer
	{100, 1200, 784, false},  // G's output layer
	{200, 784, 1200, false},  // D's first layer on [real; fake]
	{200, 240, 1, true},      // D's logit layer
	{100, 240, 1200, false},  // D's second layer, fake half only
	{4096, 784, 1200, false}, // a large batch
	{4096, 240, 1, false},
}

func precisions() []struct {
	name string
	tf32 bool
	tol  float64
} {
	return []struct {
		name string
		tf32 bool
		tol  float64
	}{{"fp32", false, tolFP32}, {"tf32", true, tolTF32}}
}

func caseActs(c denseCase) []backend.Act {
	if c.allActs {
		return acts
	}
	return []backend.Act{{Kind: backend.ReLU}, {Kind: backend.Sigmoid}}
}

func TestDenseForward(t *testing.T) {
	for _, prec := range precisions() {
		t.Run(prec.name, func(t *testing.T) {
			p := newPair(t, prec.tf32)
			for _, c := range denseCases {
				for _, act := range caseActs(c) {
					name := fmt.Sprintf("%s/%s", shape(c.n, c.in, c.out), act.Kind)
					x := p.Uniform(c.n, c.in, -1, 1)
					w := p.Uniform(c.in, c.out, -0.1, 0.1)
					bias := p.Uniform(1, c.out, -0.5, 0.5)
					// y is a view in the middle of a larger tensor whose other rows must stay poisoned.
					parent := p.Alloc(backend.F32, c.n+2, c.out)
					p.Poison(parent)
					y := p.View(parent, c.out, c.n, c.out)
					p.C.DenseForward(y.C, x.C, w.C, bias.C, act)
					p.G.DenseForward(y.G, x.G, w.G, bias.G, act)
					p.NoErr()
					if !prec.tf32 || !p.withinTF32Bound(y, x, w, prec.tol) {
						p.Close(name+" y", y, prec.tol)
					}
					p.Untouched(name, parent, 0, c.out)
					p.Untouched(name, parent, (c.n+1)*c.out, c.out)
				}
			}
		})
	}
}

// withinTF32Bound reports whether y = act(x·w + b) on the GPU is within tol of the CPU
// on the scale of the products: ‖gpu − cpu‖ ≤ tol·(‖cpu‖ + ‖|x|·|w|‖). TF32 rounds the
// products' inputs, so its error scales with Σ|x||w|, not with y; where x·w nearly
// cancels b, ‖gpu − cpu‖/‖cpu‖ exceeds 3e-3 by chance (at 1×1×1 in about 1.5% of runs).
// Every activation is 1-Lipschitz, so the bound holds through it. Small shapes only
// (computed on the host); false sends the caller to the usual relative check.
func (p *pair) withinTF32Bound(y, x, w twin, tol float64) bool {
	p.T.Helper()
	n, in, out := x.Rows, x.Cols, w.Cols
	if n*in*out > 1<<20 {
		return false
	}
	c, g := p.Both(y)
	xv, wv := backendtest.Download(p.T, p.C, x.C), backendtest.Download(p.T, p.C, w.C)
	var d, cc, s float64
	for i := 0; i < n; i++ {
		for j := 0; j < out; j++ {
			var a float64
			for q := 0; q < in; q++ {
				a += math.Abs(float64(xv[i*in+q]) * float64(wv[q*out+j]))
			}
			e := float64(g[i*out+j]) - float64(c[i*out+j])
			d, cc, s = d+e*e, cc+float64(c[i*out+j])*float64(c[i*out+j]), s+a*a
		}
	}
	return math.Sqrt(d) <= tol*(math.Sqrt(cc)+math.Sqrt(s)) // false on a NaN
}

func TestDenseBackward(t *testing.T) {
	for _, prec := range precisions() {
		t.Run(prec.name, func(t *testing.T) {
			p := newPair(t, prec.tf32)
			for _, c := range denseCases {
				for _, act := range caseActs(c) {
					for _, want := range []string{"dx dw db", "dw db", "dx"} {
						name := fmt.Sprintf("%s/%s/%s", shape(c.n, c.in, c.out), act.Kind, want)
						x := p.Uniform(c.n, c.in, -1, 1)
						w := p.Uniform(c.in, c.out, -0.1, 0.1)
						bias := p.Uniform(1, c.out, -0.5, 0.5)
						// y from the CPU forward, uploaded to both: the activation masks agree.
						y := p.Alloc(backend.F32, c.n, c.out)
						p.C.DenseForward(y.C, x.C, w.C, bias.C, act)
						p.Set(y, backendtest.Download(t, p.C, y.C))
						dy := p.Uniform(c.n, c.out, -1, 1)
						var dx, dw, db twin
						var cdx, cdw, cdb, gdx, gdw, gdb backend.Tensor
						if want != "dx" {
							dw, db = p.Alloc(backend.F32, c.in, c.out), p.Alloc(backend.F32, 1, c.out)
							p.Poison(dw, db)
							cdw, cdb, gdw, gdb = dw.C, db.C, dw.G, db.G
						}
						if want != "dw db" {
							dx = p.Alloc(backend.F32, c.n, c.in)
							p.Poison(dx)
							cdx, gdx = dx.C, dx.G
						}
						p.C.DenseBackward(cdx, cdw, cdb, dy.C, x.C, y.C, w.C, act)
						p.G.DenseBackward(gdx, gdw, gdb, dy.G, x.G, y.G, w.G, act)
						p.NoErr()
						p.Close(name+" dZ", dy, tolFP32) // elementwise: no matrix product involved
						if want != "dx" {
							p.Close(name+" dw", dw, prec.tol)
							p.Close(name+" db", db, tolFP32)
						}
						if want != "dw db" {
							p.Close(name+" dx", dx, prec.tol)
						}
					}
				}
			}
		})
	}
}

func TestMaxout(t *testing.T) {
	p := newPair(t, false)
	for _, c := range []struct{ n, units, pieces int }{
		{1, 1, 1}, {1, 1, 5}, {3, 7, 3}, {37, 13, 5}, {200, 240, 5}, {100, 240, 5}, {4096, 240, 5}, {5, 3, 32},
	} {
		for _, ties := range []bool{false, true} {
			name := fmt.Sprintf("%s ties=%v", shape(c.n, c.units, c.pieces), ties)
			z := p.Alloc(backend.F32, c.n, c.units*c.pieces)
			v := backendtest.RandSlice(p.R, c.n*c.units*c.pieces, -2, 2)
			if ties { // few distinct values: the first maximum must win, as on the CPU
				for i := range v {
					v[i] = float32(math.Floor(float64(v[i])))
				}
			}
			p.Set(z, v)
			y, arg := p.Alloc(backend.F32, c.n, c.units), p.Alloc(backend.I32, c.n, c.units)
			p.Poison(y, arg)
			p.C.MaxoutForward(y.C, arg.C, z.C, c.pieces)
			p.G.MaxoutForward(y.G, arg.G, z.G, c.pieces)
			p.NoErr()
			p.Same(name+" y", y)
			p.Same(name+" arg", arg)

			dy := p.Uniform(c.n, c.units, -1, 1)
			dz := p.Alloc(backend.F32, c.n, c.units*c.pieces)
			p.Poison(dz)
			p.C.MaxoutBackward(dz.C, dy.C, arg.C, c.pieces)
			p.G.MaxoutBackward(dz.G, dy.G, arg.G, c.pieces)
			p.NoErr()
			p.Same(name+" dz", dz)
		}
	}
}

func TestMaxoutDropout(t *testing.T) {
	p := newPair(t, false)
	for _, c := range []struct {
		n, units, pieces int
		keep             float32
	}{{1, 1, 1, 0.5}, {3, 7, 3, 0.8}, {37, 13, 5, 0.5}, {200, 240, 5, 0.5}, {100, 240, 5, 1}, {4096, 240, 5, 0.5}} {
		name := fmt.Sprintf("%s keep=%g", shape(c.n, c.units, c.pieces), c.keep)
		s := rng.Stream{Seed: p.R.Uint64(), Offset: p.R.Uint64()}
		z := p.Uniform(c.n, c.units*c.pieces, -2, 2)
		y, mask := p.Alloc(backend.F32, c.n, c.units), p.Alloc(backend.F32, c.n, c.units)
		arg := p.Alloc(backend.I32, c.n, c.units)
		p.Poison(y, mask, arg)
		p.C.MaxoutDropout(y.C, arg.C, mask.C, z.C, c.pieces, c.keep, s)
		p.G.MaxoutDropout(y.G, arg.G, mask.G, z.G, c.pieces, c.keep, s)
		p.NoErr()
		p.Same(name+" y", y)
		p.Same(name+" arg", arg)
		p.Same(name+" mask", mask)

		dy := p.Uniform(c.n, c.units, -1, 1)
		dz := p.Alloc(backend.F32, c.n, c.units*c.pieces)
		p.Poison(dz)
		p.C.MaxoutDropoutBackward(dz.C, dy.C, mask.C, arg.C, c.pieces)
		p.G.MaxoutDropoutBackward(dz.G, dy.G, mask.G, arg.G, c.pieces)
		p.NoErr()
		p.Same(name+" dz", dz)
	}
}

func TestDropout(t *testing.T) {
	p := newPair(t, false)
	for _, c := range []struct{ rows, cols int }{{1, 1}, {1, 3}, {1, 7}, {37, 53}, {200, 784}, {200, 240}, {4096, 240}, {4096, 1200}} {
		for _, keep := range []float32{0.8, 0.5, 1} {
			for _, alias := range []bool{false, true} {
				name := fmt.Sprintf("%s keep=%g alias=%v", shape(c.rows, c.cols), keep, alias)
				s := rng.Stream{Seed: p.R.Uint64(), Offset: p.R.Uint64()}
				x := p.Uniform(c.rows, c.cols, -1, 1)
				mask := p.Alloc(backend.F32, c.rows, c.cols)
				y := x
				if !alias {
					y = p.Alloc(backend.F32, c.rows, c.cols)
					p.Poison(y)
				}
				p.Poison(mask)
				p.C.Dropout(y.C, mask.C, x.C, keep, s)
				p.G.Dropout(y.G, mask.G, x.G, keep, s)
				p.NoErr()
				p.Same(name+" mask", mask)
				p.Same(name+" y", y)
			}
		}
	}
}

func TestMulFillCopy(t *testing.T) {
	p := newPair(t, false)
	for _, c := range []struct{ rows, cols int }{{1, 1}, {1, 5}, {37, 53}, {200, 784}, {4096, 1200}} {
		name := shape(c.rows, c.cols)
		a, b := p.Uniform(c.rows, c.cols, -2, 2), p.Uniform(c.rows, c.cols, -2, 2)
		y := p.Alloc(backend.F32, c.rows, c.cols)
		p.Poison(y)
		p.C.Mul(y.C, a.C, b.C)
		p.G.Mul(y.G, a.G, b.G)
		p.NoErr()
		p.Same(name+" Mul", y)
		p.C.Mul(a.C, a.C, b.C) // y may alias a
		p.G.Mul(a.G, a.G, b.G)
		p.NoErr()
		p.Same(name+" Mul in place", a)

		v := float32(p.R.NormFloat64())
		p.Poison(y)
		p.C.Fill(y.C, v)
		p.G.Fill(y.G, v)
		p.NoErr()
		p.Same(name+" Fill", y)

		p.Poison(y)
		p.C.Copy(y.C, b.C)
		p.G.Copy(y.G, b.G)
		p.NoErr()
		p.Same(name+" Copy", y)
	}
}

// out4 is a 1×4 scalars tensor, poisoned: an operation must write its slot only.
func (p *pair) out4() twin {
	o := p.Alloc(backend.F32, 1, 4)
	p.Poison(o)
	return o
}

// slot checks slot s of o against the CPU within tol, and that the other slots were
// not written.
func (p *pair) slot(name string, o twin, s int, tol float64) {
	p.T.Helper()
	c, g := p.Both(o)
	if e := backendtest.RelErr(g[s:s+1], c[s:s+1]); !(e <= tol) {
		p.T.Errorf("%s: slot %d: gpu %g, cpu %g (relative error %.3g > %.0e)", name, s, g[s], c[s], e, tol)
	}
	for i, v := range g {
		if i != s && v == v {
			p.T.Errorf("%s: slot %d written (%g), only %d should be", name, i, v, s)
		}
	}
}

func TestSigmoidCrossEntropy(t *testing.T) {
	p := newPair(t, false)
	for _, n := range []int{1, 2, 37, 200, 4096, 50000} {
		for _, withGrad := range []bool{true, false} {
			for _, scale := range []float32{1 / float32(n), -1 / float32(n), 1} {
				name := fmt.Sprintf("n=%d grad=%v scale=%g", n, withGrad, scale)
				l := backendtest.RandSlice(p.R, n, -8, 8)
				for i := 0; i < n; i += 17 { // some saturated logits
					l[i] = []float32{30, -30, 100, -100, 0}[i%5]
				}
				logits := p.Alloc(backend.F32, n, 1)
				p.Set(logits, l)
				tv := backendtest.RandSlice(p.R, n, 0, 1)
				for i := range tv {
					if i%3 != 0 {
						tv[i] = float32(i % 2)
					}
				}
				targets := p.Alloc(backend.F32, n, 1)
				p.Set(targets, tv)
				out := p.out4()
				slot := n % 4
				var dl twin
				var cdl, gdl backend.Tensor
				if withGrad {
					dl = p.Alloc(backend.F32, n, 1)
					p.Poison(dl)
					cdl, gdl = dl.C, dl.G
				}
				p.C.SigmoidCrossEntropy(cdl, logits.C, targets.C, scale, out.C, slot)
				p.G.SigmoidCrossEntropy(gdl, logits.G, targets.G, scale, out.G, slot)
				p.NoErr()
				p.slot(name+" loss", out, slot, tolFP32)
				if withGrad {
					p.Close(name+" dlogits", dl, tolFP32)
				}
			}
		}
	}
}

func TestMeanSigmoid(t *testing.T) {
	p := newPair(t, false)
	for _, n := range []int{1, 2, 37, 100, 200, 8192} {
		logits := p.Uniform(n, 1, -10, 10)
		out := p.out4()
		slot := 3 - n%4
		p.C.MeanSigmoid(logits.C, out.C, slot)
		p.G.MeanSigmoid(logits.G, out.G, slot)
		p.NoErr()
		p.slot(fmt.Sprintf("n=%d", n), out, slot, tolFP32)
	}
}

func TestSoftmaxCrossEntropy(t *testing.T) {
	p := newPair(t, false)
	for _, c := range []struct{ n, classes int }{{1, 1}, {1, 10}, {2, 3}, {37, 10}, {100, 37}, {4096, 10}, {3, 1000}} {
		for _, withGrad := range []bool{true, false} {
			name := fmt.Sprintf("%s grad=%v", shape(c.n, c.classes), withGrad)
			logits := p.Uniform(c.n, c.classes, -5, 5)
			labels := p.Indices(c.n, 1, c.classes)
			out := p.out4()
			scale := 1 / float32(c.n)
			var dl twin
			var cdl, gdl backend.Tensor
			if withGrad {
				dl = p.Alloc(backend.F32, c.n, c.classes)
				p.Poison(dl)
				cdl, gdl = dl.C, dl.G
			}
			p.C.SoftmaxCrossEntropy(cdl, logits.C, labels.C, scale, out.C, 1)
			p.G.SoftmaxCrossEntropy(gdl, logits.G, labels.G, scale, out.G, 1)
			p.NoErr()
			p.slot(name+" loss", out, 1, tolFP32)
			if withGrad {
				p.Close(name+" dlogits", dl, tolFP32)
			}
		}
	}
}

func TestLogSumExpRows(t *testing.T) {
	p := newPair(t, false)
	inf := float32(math.Inf(-1))
	for _, c := range []struct{ n, m int }{{1, 1}, {2, 1}, {3, 2}, {37, 53}, {100, 1000}, {4096, 10}, {10, 10000}} {
		x := p.Alloc(backend.F32, c.n, c.m)
		v := backendtest.RandSlice(p.R, c.n*c.m, -20, 20)
		if c.n > 1 {
			for j := 0; j < c.m; j++ { // a row of −Inf gives −Inf
				v[j] = inf
			}
			v[c.m] = inf // one −Inf in a row
		}
		p.Set(x, v)
		out := p.Alloc(backend.F32, c.n, 1)
		p.Poison(out)
		p.C.LogSumExpRows(out.C, x.C)
		p.G.LogSumExpRows(out.G, x.G)
		p.NoErr()
		p.Close(shape(c.n, c.m), out, tolFP32)
	}
}

func TestSGDMomentum(t *testing.T) {
	p := newPair(t, false)
	for _, n := range []int{1, 7, 1000, 2_500_000} {
		pp, g, v := p.Uniform(1, n, -1, 1), p.Uniform(1, n, -1, 1), p.Uniform(1, n, -0.1, 0.1)
		lr, mu := float32(0.1)*p.R.Float32(), float32(0.5)+0.2*p.R.Float32()
		p.C.SGDMomentum(pp.C, g.C, v.C, lr, mu)
		p.G.SGDMomentum(pp.G, g.G, v.G, lr, mu)
		p.NoErr()
		p.Close(fmt.Sprintf("n=%d p", n), pp, tolFP32)
		p.Close(fmt.Sprintf("n=%d v", n), v, tolFP32)
	}
}

func TestMovingAverage(t *testing.T) {
	p := newPair(t, false)
	for _, n := range []int{1, 7, 1000, 2_500_000} {
		avg, x := p.Uniform(1, n, -1, 1), p.Uniform(1, n, -1, 1)
		decay := 0.99 + 0.01*p.R.Float32()
		p.C.MovingAverage(avg.C, x.C, decay)
		p.G.MovingAverage(avg.G, x.G, decay)
		p.NoErr()
		p.Close(fmt.Sprintf("n=%d", n), avg, tolFP32)
	}
}

func TestAdam(t *testing.T) {
	p := newPair(t, false)
	for _, n := range []int{1, 7, 1000, 2_500_000} {
		for _, step := range []int{1, 10, 10000} {
			name := fmt.Sprintf("n=%d t=%d", n, step)
			pp, g := p.Uniform(1, n, -1, 1), p.Uniform(1, n, -1, 1)
			m, v := p.Uniform(1, n, -0.1, 0.1), p.Uniform(1, n, 0, 0.01)
			p.C.Adam(pp.C, g.C, m.C, v.C, 2e-4, 0.5, 0.999, 1e-8, step)
			p.G.Adam(pp.G, g.G, m.G, v.G, 2e-4, 0.5, 0.999, 1e-8, step)
			p.NoErr()
			p.Close(name+" p", pp, tolFP32)
			p.Close(name+" m", m, tolFP32)
			p.Close(name+" v", v, tolFP32)
		}
	}
}

func TestClipColumnNorms(t *testing.T) {
	p := newPair(t, false)
	for _, c := range []struct{ rows, cols int }{{1, 1}, {1, 9}, {37, 53}, {240, 1}, {784, 1200}, {240, 1200}, {5000, 3}} {
		w := p.Uniform(c.rows, c.cols, -1, 1)
		maxNorm := float32(math.Sqrt(float64(c.rows) / 3)) // about half the columns are clipped
		p.C.ClipColumnNorms(w.C, maxNorm)
		p.G.ClipColumnNorms(w.G, maxNorm)
		p.NoErr()
		p.Close(shape(c.rows, c.cols), w, tolFP32)
	}
}

func TestNoise(t *testing.T) {
	p := newPair(t, false)
	for _, c := range []struct{ rows, cols int }{{1, 1}, {1, 2}, {1, 3}, {1, 5}, {7, 143}, {100, 100}, {4096, 100}} {
		name := shape(c.rows, c.cols)
		s := rng.Stream{Seed: p.R.Uint64(), Offset: p.R.Uint64()}
		x := p.Alloc(backend.F32, c.rows, c.cols)
		for _, r := range [][2]float32{{-float32(math.Sqrt(3)), float32(math.Sqrt(3))}, {0, 1}, {-1, 0.5}, {3, 3.0000005}} {
			p.Poison(x)
			p.C.Uniform(x.C, r[0], r[1], s)
			p.G.Uniform(x.G, r[0], r[1], s)
			p.NoErr()
			p.Same(fmt.Sprintf("%s Uniform[%g,%g)", name, r[0], r[1]), x)
		}
		for _, ms := range [][2]float32{{0, 1}, {0.5, 2}} {
			p.Poison(x)
			p.C.Normal(x.C, ms[0], ms[1], s)
			p.G.Normal(x.G, ms[0], ms[1], s)
			p.NoErr()
			p.Same(fmt.Sprintf("%s Normal(%g,%g)", name, ms[0], ms[1]), x)
		}
	}
}

func TestGatherRows(t *testing.T) {
	p := newPair(t, false)
	for _, c := range []struct{ srcRows, cols, rows int }{{1, 1, 1}, {5, 3, 2}, {1000, 784, 100}, {50000, 784, 4096}, {300, 2, 300}} {
		name := shape(c.srcRows, c.cols, c.rows)
		src := p.Uniform(c.srcRows, c.cols, 0, 1)
		perm := p.R.Perm(c.srcRows)
		idx := p.Alloc(backend.I32, 1, c.srcRows+c.rows)
		v := make([]int32, c.srcRows+c.rows)
		for i := range v {
			v[i] = int32(perm[i%c.srcRows])
		}
		p.Set(idx, v)
		parent := p.Alloc(backend.F32, c.rows+1, c.cols)
		p.Poison(parent)
		dst := p.View(parent, 0, c.rows, c.cols)
		for _, offset := range []int{0, c.srcRows / 2, c.srcRows} {
			p.C.GatherRows(dst.C, src.C, idx.C, offset)
			p.G.GatherRows(dst.G, src.G, idx.G, offset)
			p.NoErr()
			p.Same(fmt.Sprintf("%s offset %d", name, offset), dst)
			p.Untouched(name, parent, c.rows*c.cols, c.cols)
		}
	}
}
