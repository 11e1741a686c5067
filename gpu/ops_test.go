//go:build !nocuda

package gpu_test

import (
	"fmt"
	"math"
	"testing"

	"github.com/gantrain/gantrain/backend"
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
					x := p.uniform(c.n, c.in, -1, 1)
					w := p.uniform(c.in, c.out, -0.1, 0.1)
					bias := p.uniform(1, c.out, -0.5, 0.5)
					// y is a view in the middle of a larger tensor whose other rows must stay poisoned.
					parent := p.alloc(backend.F32, c.n+2, c.out)
					p.poison(parent)
					y := p.view(parent, c.out, c.n, c.out)
					p.c.DenseForward(y.c, x.c, w.c, bias.c, act)
					p.g.DenseForward(y.g, x.g, w.g, bias.g, act)
					p.noErr()
					if !prec.tf32 || !p.withinTF32Bound(y, x, w, prec.tol) {
						p.close(name+" y", y, prec.tol)
					}
					p.untouched(name, parent, 0, c.out)
					p.untouched(name, parent, (c.n+1)*c.out, c.out)
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
	p.t.Helper()
	n, in, out := x.rows, x.cols, w.cols
	if n*in*out > 1<<20 {
		return false
	}
	c, g := p.both(y)
	xv, wv := download(p.t, p.c, x.c), download(p.t, p.c, w.c)
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

// view makes the same view on both sides.
func (p *pair) view(x twin, offset, rows, cols int) twin {
	p.t.Helper()
	c, err := p.c.View(x.c, offset, rows, cols)
	if err != nil {
		p.t.Fatal(err)
	}
	g, err := p.g.View(x.g, offset, rows, cols)
	if err != nil {
		p.t.Fatal(err)
	}
	return twin{c: c, g: g, rows: rows, cols: cols, dt: x.dt}
}

// untouched checks that elements [at, at+n) of x are still NaN on the GPU.
func (p *pair) untouched(name string, x twin, at, n int) {
	p.t.Helper()
	g := download(p.t, p.g, x.g)
	for i := at; i < at+n; i++ {
		if g[i] == g[i] {
			p.t.Errorf("%s: element %d outside the output was written (%g)", name, i, g[i])
			return
		}
	}
}

func TestDenseBackward(t *testing.T) {
	for _, prec := range precisions() {
		t.Run(prec.name, func(t *testing.T) {
			p := newPair(t, prec.tf32)
			for _, c := range denseCases {
				for _, act := range caseActs(c) {
					for _, want := range []string{"dx dw db", "dw db", "dx"} {
						name := fmt.Sprintf("%s/%s/%s", shape(c.n, c.in, c.out), act.Kind, want)
						x := p.uniform(c.n, c.in, -1, 1)
						w := p.uniform(c.in, c.out, -0.1, 0.1)
						bias := p.uniform(1, c.out, -0.5, 0.5)
						// y from the CPU forward, uploaded to both: the activation masks agree.
						y := p.alloc(backend.F32, c.n, c.out)
						p.c.DenseForward(y.c, x.c, w.c, bias.c, act)
						p.set(y, download(t, p.c, y.c))
						dy := p.uniform(c.n, c.out, -1, 1)
						var dx, dw, db twin
						var cdx, cdw, cdb, gdx, gdw, gdb backend.Tensor
						if want != "dx" {
							dw, db = p.alloc(backend.F32, c.in, c.out), p.alloc(backend.F32, 1, c.out)
							p.poison(dw, db)
							cdw, cdb, gdw, gdb = dw.c, db.c, dw.g, db.g
						}
						if want != "dw db" {
							dx = p.alloc(backend.F32, c.n, c.in)
							p.poison(dx)
							cdx, gdx = dx.c, dx.g
						}
						p.c.DenseBackward(cdx, cdw, cdb, dy.c, x.c, y.c, w.c, act)
						p.g.DenseBackward(gdx, gdw, gdb, dy.g, x.g, y.g, w.g, act)
						p.noErr()
						p.close(name+" dZ", dy, tolFP32) // elementwise: no matrix product involved
						if want != "dx" {
							p.close(name+" dw", dw, prec.tol)
							p.close(name+" db", db, tolFP32)
						}
						if want != "dw db" {
							p.close(name+" dx", dx, prec.tol)
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
			z := p.alloc(backend.F32, c.n, c.units*c.pieces)
			v := randSlice(p.r, c.n*c.units*c.pieces, -2, 2)
			if ties { // few distinct values: the first maximum must win, as on the CPU
				for i := range v {
					v[i] = float32(math.Floor(float64(v[i])))
				}
			}
			p.set(z, v)
			y, arg := p.alloc(backend.F32, c.n, c.units), p.alloc(backend.I32, c.n, c.units)
			p.poison(y, arg)
			p.c.MaxoutForward(y.c, arg.c, z.c, c.pieces)
			p.g.MaxoutForward(y.g, arg.g, z.g, c.pieces)
			p.noErr()
			p.same(name+" y", y)
			p.same(name+" arg", arg)

			dy := p.uniform(c.n, c.units, -1, 1)
			dz := p.alloc(backend.F32, c.n, c.units*c.pieces)
			p.poison(dz)
			p.c.MaxoutBackward(dz.c, dy.c, arg.c, c.pieces)
			p.g.MaxoutBackward(dz.g, dy.g, arg.g, c.pieces)
			p.noErr()
			p.same(name+" dz", dz)
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
		s := rng.Stream{Seed: p.r.Uint64(), Offset: p.r.Uint64()}
		z := p.uniform(c.n, c.units*c.pieces, -2, 2)
		y, mask := p.alloc(backend.F32, c.n, c.units), p.alloc(backend.F32, c.n, c.units)
		arg := p.alloc(backend.I32, c.n, c.units)
		p.poison(y, mask, arg)
		p.c.MaxoutDropout(y.c, arg.c, mask.c, z.c, c.pieces, c.keep, s)
		p.g.MaxoutDropout(y.g, arg.g, mask.g, z.g, c.pieces, c.keep, s)
		p.noErr()
		p.same(name+" y", y)
		p.same(name+" arg", arg)
		p.same(name+" mask", mask)

		dy := p.uniform(c.n, c.units, -1, 1)
		dz := p.alloc(backend.F32, c.n, c.units*c.pieces)
		p.poison(dz)
		p.c.MaxoutDropoutBackward(dz.c, dy.c, mask.c, arg.c, c.pieces)
		p.g.MaxoutDropoutBackward(dz.g, dy.g, mask.g, arg.g, c.pieces)
		p.noErr()
		p.same(name+" dz", dz)
	}
}

func TestDropout(t *testing.T) {
	p := newPair(t, false)
	for _, c := range []struct{ rows, cols int }{{1, 1}, {1, 3}, {1, 7}, {37, 53}, {200, 784}, {200, 240}, {4096, 240}, {4096, 1200}} {
		for _, keep := range []float32{0.8, 0.5, 1} {
			for _, alias := range []bool{false, true} {
				name := fmt.Sprintf("%s keep=%g alias=%v", shape(c.rows, c.cols), keep, alias)
				s := rng.Stream{Seed: p.r.Uint64(), Offset: p.r.Uint64()}
				x := p.uniform(c.rows, c.cols, -1, 1)
				mask := p.alloc(backend.F32, c.rows, c.cols)
				y := x
				if !alias {
					y = p.alloc(backend.F32, c.rows, c.cols)
					p.poison(y)
				}
				p.poison(mask)
				p.c.Dropout(y.c, mask.c, x.c, keep, s)
				p.g.Dropout(y.g, mask.g, x.g, keep, s)
				p.noErr()
				p.same(name+" mask", mask)
				p.same(name+" y", y)
			}
		}
	}
}

func TestMulFillCopy(t *testing.T) {
	p := newPair(t, false)
	for _, c := range []struct{ rows, cols int }{{1, 1}, {1, 5}, {37, 53}, {200, 784}, {4096, 1200}} {
		name := shape(c.rows, c.cols)
		a, b := p.uniform(c.rows, c.cols, -2, 2), p.uniform(c.rows, c.cols, -2, 2)
		y := p.alloc(backend.F32, c.rows, c.cols)
		p.poison(y)
		p.c.Mul(y.c, a.c, b.c)
		p.g.Mul(y.g, a.g, b.g)
		p.noErr()
		p.same(name+" Mul", y)
		p.c.Mul(a.c, a.c, b.c) // y may alias a
		p.g.Mul(a.g, a.g, b.g)
		p.noErr()
		p.same(name+" Mul in place", a)

		v := float32(p.r.NormFloat64())
		p.poison(y)
		p.c.Fill(y.c, v)
		p.g.Fill(y.g, v)
		p.noErr()
		p.same(name+" Fill", y)

		p.poison(y)
		p.c.Copy(y.c, b.c)
		p.g.Copy(y.g, b.g)
		p.noErr()
		p.same(name+" Copy", y)
	}
}

// out4 is a 1×4 scalars tensor, poisoned: an operation must write its slot only.
func (p *pair) out4() twin {
	o := p.alloc(backend.F32, 1, 4)
	p.poison(o)
	return o
}

// slot checks slot s of o against the CPU within tol, and that the other slots were
// not written.
func (p *pair) slot(name string, o twin, s int, tol float64) {
	p.t.Helper()
	c, g := p.both(o)
	if e := relErr(g[s:s+1], c[s:s+1]); !(e <= tol) {
		p.t.Errorf("%s: slot %d: gpu %g, cpu %g (relative error %.3g > %.0e)", name, s, g[s], c[s], e, tol)
	}
	for i, v := range g {
		if i != s && v == v {
			p.t.Errorf("%s: slot %d written (%g), only %d should be", name, i, v, s)
		}
	}
}

func TestSigmoidCrossEntropy(t *testing.T) {
	p := newPair(t, false)
	for _, n := range []int{1, 2, 37, 200, 4096, 50000} {
		for _, withGrad := range []bool{true, false} {
			for _, scale := range []float32{1 / float32(n), -1 / float32(n), 1} {
				name := fmt.Sprintf("n=%d grad=%v scale=%g", n, withGrad, scale)
				l := randSlice(p.r, n, -8, 8)
				for i := 0; i < n; i += 17 { // some saturated logits
					l[i] = []float32{30, -30, 100, -100, 0}[i%5]
				}
				logits := p.alloc(backend.F32, n, 1)
				p.set(logits, l)
				tv := randSlice(p.r, n, 0, 1)
				for i := range tv {
					if i%3 != 0 {
						tv[i] = float32(i % 2)
					}
				}
				targets := p.alloc(backend.F32, n, 1)
				p.set(targets, tv)
				out := p.out4()
				slot := n % 4
				var dl twin
				var cdl, gdl backend.Tensor
				if withGrad {
					dl = p.alloc(backend.F32, n, 1)
					p.poison(dl)
					cdl, gdl = dl.c, dl.g
				}
				p.c.SigmoidCrossEntropy(cdl, logits.c, targets.c, scale, out.c, slot)
				p.g.SigmoidCrossEntropy(gdl, logits.g, targets.g, scale, out.g, slot)
				p.noErr()
				p.slot(name+" loss", out, slot, tolFP32)
				if withGrad {
					p.close(name+" dlogits", dl, tolFP32)
				}
			}
		}
	}
}

func TestMeanSigmoid(t *testing.T) {
	p := newPair(t, false)
	for _, n := range []int{1, 2, 37, 100, 200, 8192} {
		logits := p.uniform(n, 1, -10, 10)
		out := p.out4()
		slot := 3 - n%4
		p.c.MeanSigmoid(logits.c, out.c, slot)
		p.g.MeanSigmoid(logits.g, out.g, slot)
		p.noErr()
		p.slot(fmt.Sprintf("n=%d", n), out, slot, tolFP32)
	}
}

func TestSoftmaxCrossEntropy(t *testing.T) {
	p := newPair(t, false)
	for _, c := range []struct{ n, classes int }{{1, 1}, {1, 10}, {2, 3}, {37, 10}, {100, 37}, {4096, 10}, {3, 1000}} {
		for _, withGrad := range []bool{true, false} {
			name := fmt.Sprintf("%s grad=%v", shape(c.n, c.classes), withGrad)
			logits := p.uniform(c.n, c.classes, -5, 5)
			labels := p.indices(c.n, 1, c.classes)
			out := p.out4()
			scale := 1 / float32(c.n)
			var dl twin
			var cdl, gdl backend.Tensor
			if withGrad {
				dl = p.alloc(backend.F32, c.n, c.classes)
				p.poison(dl)
				cdl, gdl = dl.c, dl.g
			}
			p.c.SoftmaxCrossEntropy(cdl, logits.c, labels.c, scale, out.c, 1)
			p.g.SoftmaxCrossEntropy(gdl, logits.g, labels.g, scale, out.g, 1)
			p.noErr()
			p.slot(name+" loss", out, 1, tolFP32)
			if withGrad {
				p.close(name+" dlogits", dl, tolFP32)
			}
		}
	}
}

func TestLogSumExpRows(t *testing.T) {
	p := newPair(t, false)
	inf := float32(math.Inf(-1))
	for _, c := range []struct{ n, m int }{{1, 1}, {2, 1}, {3, 2}, {37, 53}, {100, 1000}, {4096, 10}, {10, 10000}} {
		x := p.alloc(backend.F32, c.n, c.m)
		v := randSlice(p.r, c.n*c.m, -20, 20)
		if c.n > 1 {
			for j := 0; j < c.m; j++ { // a row of −Inf gives −Inf
				v[j] = inf
			}
			v[c.m] = inf // one −Inf in a row
		}
		p.set(x, v)
		out := p.alloc(backend.F32, c.n, 1)
		p.poison(out)
		p.c.LogSumExpRows(out.c, x.c)
		p.g.LogSumExpRows(out.g, x.g)
		p.noErr()
		p.close(shape(c.n, c.m), out, tolFP32)
	}
}

func TestSGDMomentum(t *testing.T) {
	p := newPair(t, false)
	for _, n := range []int{1, 7, 1000, 2_500_000} {
		pp, g, v := p.uniform(1, n, -1, 1), p.uniform(1, n, -1, 1), p.uniform(1, n, -0.1, 0.1)
		lr, mu := float32(0.1)*p.r.Float32(), float32(0.5)+0.2*p.r.Float32()
		p.c.SGDMomentum(pp.c, g.c, v.c, lr, mu)
		p.g.SGDMomentum(pp.g, g.g, v.g, lr, mu)
		p.noErr()
		p.close(fmt.Sprintf("n=%d p", n), pp, tolFP32)
		p.close(fmt.Sprintf("n=%d v", n), v, tolFP32)
	}
}

func TestMovingAverage(t *testing.T) {
	p := newPair(t, false)
	for _, n := range []int{1, 7, 1000, 2_500_000} {
		avg, x := p.uniform(1, n, -1, 1), p.uniform(1, n, -1, 1)
		decay := 0.99 + 0.01*p.r.Float32()
		p.c.MovingAverage(avg.c, x.c, decay)
		p.g.MovingAverage(avg.g, x.g, decay)
		p.noErr()
		p.close(fmt.Sprintf("n=%d", n), avg, tolFP32)
	}
}

func TestAdam(t *testing.T) {
	p := newPair(t, false)
	for _, n := range []int{1, 7, 1000, 2_500_000} {
		for _, step := range []int{1, 10, 10000} {
			name := fmt.Sprintf("n=%d t=%d", n, step)
			pp, g := p.uniform(1, n, -1, 1), p.uniform(1, n, -1, 1)
			m, v := p.uniform(1, n, -0.1, 0.1), p.uniform(1, n, 0, 0.01)
			p.c.Adam(pp.c, g.c, m.c, v.c, 2e-4, 0.5, 0.999, 1e-8, step)
			p.g.Adam(pp.g, g.g, m.g, v.g, 2e-4, 0.5, 0.999, 1e-8, step)
			p.noErr()
			p.close(name+" p", pp, tolFP32)
			p.close(name+" m", m, tolFP32)
			p.close(name+" v", v, tolFP32)
		}
	}
}

func TestClipColumnNorms(t *testing.T) {
	p := newPair(t, false)
	for _, c := range []struct{ rows, cols int }{{1, 1}, {1, 9}, {37, 53}, {240, 1}, {784, 1200}, {240, 1200}, {5000, 3}} {
		w := p.uniform(c.rows, c.cols, -1, 1)
		maxNorm := float32(math.Sqrt(float64(c.rows) / 3)) // about half the columns are clipped
		p.c.ClipColumnNorms(w.c, maxNorm)
		p.g.ClipColumnNorms(w.g, maxNorm)
		p.noErr()
		p.close(shape(c.rows, c.cols), w, tolFP32)
	}
}

func TestNoise(t *testing.T) {
	p := newPair(t, false)
	for _, c := range []struct{ rows, cols int }{{1, 1}, {1, 2}, {1, 3}, {1, 5}, {7, 143}, {100, 100}, {4096, 100}} {
		name := shape(c.rows, c.cols)
		s := rng.Stream{Seed: p.r.Uint64(), Offset: p.r.Uint64()}
		x := p.alloc(backend.F32, c.rows, c.cols)
		for _, r := range [][2]float32{{-float32(math.Sqrt(3)), float32(math.Sqrt(3))}, {0, 1}, {-1, 0.5}, {3, 3.0000005}} {
			p.poison(x)
			p.c.Uniform(x.c, r[0], r[1], s)
			p.g.Uniform(x.g, r[0], r[1], s)
			p.noErr()
			p.same(fmt.Sprintf("%s Uniform[%g,%g)", name, r[0], r[1]), x)
		}
		for _, ms := range [][2]float32{{0, 1}, {0.5, 2}} {
			p.poison(x)
			p.c.Normal(x.c, ms[0], ms[1], s)
			p.g.Normal(x.g, ms[0], ms[1], s)
			p.noErr()
			p.same(fmt.Sprintf("%s Normal(%g,%g)", name, ms[0], ms[1]), x)
		}
	}
}

func TestGatherRows(t *testing.T) {
	p := newPair(t, false)
	for _, c := range []struct{ srcRows, cols, rows int }{{1, 1, 1}, {5, 3, 2}, {1000, 784, 100}, {50000, 784, 4096}, {300, 2, 300}} {
		name := shape(c.srcRows, c.cols, c.rows)
		src := p.uniform(c.srcRows, c.cols, 0, 1)
		perm := p.r.Perm(c.srcRows)
		idx := p.alloc(backend.I32, 1, c.srcRows+c.rows)
		v := make([]int32, c.srcRows+c.rows)
		for i := range v {
			v[i] = int32(perm[i%c.srcRows])
		}
		p.set(idx, v)
		parent := p.alloc(backend.F32, c.rows+1, c.cols)
		p.poison(parent)
		dst := p.view(parent, 0, c.rows, c.cols)
		for _, offset := range []int{0, c.srcRows / 2, c.srcRows} {
			p.c.GatherRows(dst.c, src.c, idx.c, offset)
			p.g.GatherRows(dst.g, src.g, idx.g, offset)
			p.noErr()
			p.same(fmt.Sprintf("%s offset %d", name, offset), dst)
			p.untouched(name, parent, c.rows*c.cols, c.cols)
		}
	}
}
