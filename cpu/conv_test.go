package cpu_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/gantrain/gantrain/backend"
	"github.com/gantrain/gantrain/backend/backendtest"
	"github.com/gantrain/gantrain/cpu"
)

// convCase is a batch of n images and a convolution geometry.
type convCase struct {
	n int
	g backend.ConvGeom
}

func (c convCase) String() string { return fmt.Sprintf("n%d %v", c.n, c.g) }

// convCases are ragged geometries: a 5×7×3 input under a 3×2 kernel with every
// stride from 1 to 3 and every padding, batches of 1 and 3; strides larger than the
// kernel; 1×1 kernels; a kernel as large as the padded input.
func convCases() []convCase {
	var cs []convCase
	for _, n := range []int{1, 3} {
		for s := 1; s <= 3; s++ {
			for ph := 0; ph < 3; ph++ {
				for pw := 0; pw < 2; pw++ {
					cs = append(cs, convCase{n, backend.ConvGeom{InH: 5, InW: 7, InC: 3, KH: 3, KW: 2, StrideH: s, StrideW: s, PadH: ph, PadW: pw}})
				}
			}
		}
	}
	return append(cs,
		convCase{2, backend.ConvGeom{InH: 5, InW: 7, InC: 3, KH: 3, KW: 2, StrideH: 2, StrideW: 3, PadH: 1, PadW: 0}},
		convCase{2, backend.ConvGeom{InH: 8, InW: 9, InC: 2, KH: 2, KW: 2, StrideH: 3, StrideW: 4, PadH: 1, PadW: 1}}, // stride > kernel
		convCase{2, backend.ConvGeom{InH: 7, InW: 6, InC: 2, KH: 1, KW: 2, StrideH: 4, StrideW: 3}},                   // stride > kernel
		convCase{3, backend.ConvGeom{InH: 4, InW: 5, InC: 4, KH: 1, KW: 1, StrideH: 1, StrideW: 1}},                   // 1×1
		convCase{2, backend.ConvGeom{InH: 4, InW: 5, InC: 4, KH: 1, KW: 1, StrideH: 2, StrideW: 3}},                   // 1×1, strided
		convCase{2, backend.ConvGeom{InH: 6, InW: 6, InC: 3, KH: 4, KW: 4, StrideH: 2, StrideW: 2, PadH: 1, PadW: 1}}, // a GAN's up/down-sampling layer
		convCase{2, backend.ConvGeom{InH: 3, InW: 4, InC: 2, KH: 5, KW: 4, StrideH: 1, StrideW: 2, PadH: 1, PadW: 0}}, // kernel = padded input
	)
}

// eachTap calls visit for every element e of Im2Col's output, in order, with the
// index at of the input element it copies, or −1 where it falls in the padding.
func eachTap(c convCase, visit func(e, at int)) {
	g := c.g
	e := 0
	for i := 0; i < c.n; i++ {
		for oy := 0; oy < g.OutH(); oy++ {
			for ox := 0; ox < g.OutW(); ox++ {
				for ky := 0; ky < g.KH; ky++ {
					for kx := 0; kx < g.KW; kx++ {
						iy, ix := oy*g.StrideH-g.PadH+ky, ox*g.StrideW-g.PadW+kx
						for ch := 0; ch < g.InC; ch++ {
							at := -1
							if iy >= 0 && iy < g.InH && ix >= 0 && ix < g.InW {
								at = ((i*g.InH+iy)*g.InW+ix)*g.InC + ch
							}
							visit(e, at)
							e++
						}
					}
				}
			}
		}
	}
}

// im2col32 is Im2Col's specification, element by element.
func im2col32(x []float32, c convCase) []float32 {
	cols := make([]float32, c.n*c.g.Positions()*c.g.Patch())
	eachTap(c, func(e, at int) {
		if at >= 0 {
			cols[e] = x[at]
		}
	})
	return cols
}

// col2im64 is Col2Im's specification as a scatter-add: each column element added to
// the input element Im2Col copied it from; mag gets the sums of magnitudes.
func col2im64(cols []float64, c convCase) (x, mag []float64) {
	x = make([]float64, c.n*c.g.InSize())
	mag = make([]float64, len(x))
	eachTap(c, func(e, at int) {
		if at >= 0 {
			x[at] += cols[e]
			mag[at] += math.Abs(cols[e])
		}
	})
	return x, mag
}

// conv64 is the direct convolution of the images x with the weights w
// ((KH·KW·InC)×f, rows in (ky, kx, c) order), in float64: y is NHWC with f channels;
// mag gets the sums of the products' magnitudes.
func conv64(x, w []float64, c convCase, f int) (y, mag []float64) {
	g := c.g
	oh, ow := g.OutH(), g.OutW()
	y = make([]float64, c.n*oh*ow*f)
	mag = make([]float64, len(y))
	for i := 0; i < c.n; i++ {
		for oy := 0; oy < oh; oy++ {
			for ox := 0; ox < ow; ox++ {
				for o := 0; o < f; o++ {
					var s, a float64
					for ky := 0; ky < g.KH; ky++ {
						for kx := 0; kx < g.KW; kx++ {
							iy, ix := oy*g.StrideH-g.PadH+ky, ox*g.StrideW-g.PadW+kx
							if iy < 0 || iy >= g.InH || ix < 0 || ix >= g.InW {
								continue
							}
							for ch := 0; ch < g.InC; ch++ {
								p := x[((i*g.InH+iy)*g.InW+ix)*g.InC+ch] * w[((ky*g.KW+kx)*g.InC+ch)*f+o]
								s += p
								a += math.Abs(p)
							}
						}
					}
					y[((i*oh+oy)*ow+ox)*f+o], mag[((i*oh+oy)*ow+ox)*f+o] = s, a
				}
			}
		}
	}
	return y, mag
}

// TestIm2ColConvolution checks Im2Col against its element-by-element specification,
// and that its rows times a weight matrix are the direct convolution.
func TestIm2ColConvolution(t *testing.T) {
	const f = 4
	b := newBackend(t, "go")
	for k, c := range convCases() {
		t.Run(c.String(), func(t *testing.T) {
			g := c.g
			r := rand.New(rand.NewPCG(uint64(k), 1))
			xs := uniform(r, c.n*g.InSize(), -1, 1)
			ws := uniform(r, g.Patch()*f, -1, 1)
			rows := c.n * g.Positions()
			x := tensorOf(t, b, c.n, g.InSize(), xs)
			// cols starts as NaN: every element must be written, padding included.
			cols := filled(t, b, rows, g.Patch(), float32(math.NaN()))
			b.Im2Col(cols, x, g)
			checkNoErr(t, b)
			checkBits(t, "cols", backendtest.Download(t, b, cols), im2col32(xs, c))

			y := alloc(t, b, backend.F32, rows, f)
			b.DenseForward(y, cols, tensorOf(t, b, g.Patch(), f, ws), alloc(t, b, backend.F32, 1, f), backend.Act{})
			checkNoErr(t, b)
			want, mag := conv64(to64(xs), to64(ws), c, f)
			for i := range mag {
				mag[i] = 1e-6 * (mag[i] + 1)
			}
			checkClose(t, "y", backendtest.Download(t, b, y), want, mag)
		})
	}
}

// TestCol2Im checks Col2Im against a scatter-add, and that it is Im2Col's adjoint:
// ⟨Im2Col(x), c⟩ = ⟨x, Col2Im(c)⟩.
func TestCol2Im(t *testing.T) {
	b := newBackend(t, "go")
	for k, c := range convCases() {
		t.Run(c.String(), func(t *testing.T) {
			g := c.g
			r := rand.New(rand.NewPCG(uint64(k), 2))
			rows := c.n * g.Positions()
			xs := uniform(r, c.n*g.InSize(), -1, 1)
			cs := uniform(r, rows*g.Patch(), -1, 1)
			cols := tensorOf(t, b, rows, g.Patch(), cs)
			// x starts as NaN: Col2Im overwrites, it does not accumulate, and an input
			// element that no tap reaches (stride > kernel) gets 0.
			x := filled(t, b, c.n, g.InSize(), float32(math.NaN()))
			b.Col2Im(x, cols, g)
			checkNoErr(t, b)
			got := backendtest.Download(t, b, x)
			want, mag := col2im64(to64(cs), c)
			for i := range mag {
				mag[i] *= 1e-6
			}
			checkClose(t, "x", got, want, mag)

			fwd := alloc(t, b, backend.F32, rows, g.Patch())
			b.Im2Col(fwd, tensorOf(t, b, c.n, g.InSize(), xs), g)
			checkNoErr(t, b)
			lhs, rhs := dot64(to64(backendtest.Download(t, b, fwd)), to64(cs)), dot64(to64(xs), to64(got))
			if scale := float64(len(cs)); math.Abs(lhs-rhs) > 1e-6*scale {
				t.Errorf("⟨Im2Col(x), c⟩ = %g, ⟨x, Col2Im(c)⟩ = %g", lhs, rhs)
			}
		})
	}
}

// identity is the n×n identity matrix.
func identity(n int) []float32 {
	w := make([]float32, n*n)
	for i := 0; i < n; i++ {
		w[i*n+i] = 1
	}
	return w
}

// TestBiasActivationMatchesDense requires BiasActivation to give DenseForward's
// bits for the same z and bias (z·I is exact), and BiasActivationBackward to give
// DenseBackward's dZ and db, with and without db.
func TestBiasActivationMatchesDense(t *testing.T) {
	b := newBackend(t, "go")
	for _, sh := range []struct{ m, c int }{{1, 1}, {7, 5}, {33, 70}, {700, 130}} {
		for _, act := range acts {
			t.Run(fmt.Sprintf("%dx%d/%v", sh.m, sh.c, act.Kind), func(t *testing.T) {
				r := rand.New(rand.NewPCG(uint64(sh.m), uint64(sh.c)))
				zs := uniform(r, sh.m*sh.c, -3, 3)
				bs := uniform(r, sh.c, -1, 1)
				w := tensorOf(t, b, sh.c, sh.c, identity(sh.c))
				bias := tensorOf(t, b, 1, sh.c, bs)
				dense := alloc(t, b, backend.F32, sh.m, sh.c)
				b.DenseForward(dense, tensorOf(t, b, sh.m, sh.c, zs), w, bias, act)
				y := tensorOf(t, b, sh.m, sh.c, zs)
				b.BiasActivation(y, bias, act)
				checkNoErr(t, b)
				ys := backendtest.Download(t, b, y)
				checkBits(t, "y", ys, backendtest.Download(t, b, dense))

				dys := uniform(r, sh.m*sh.c, -1, 1)
				dyDense, dbDense := tensorOf(t, b, sh.m, sh.c, dys), alloc(t, b, backend.F32, 1, sh.c)
				b.DenseBackward(nil, nil, dbDense, dyDense, y, y, w, act)
				dy, db := tensorOf(t, b, sh.m, sh.c, dys), filled(t, b, 1, sh.c, float32(math.NaN()))
				b.BiasActivationBackward(db, dy, y, act)
				dyNoDB := tensorOf(t, b, sh.m, sh.c, dys)
				b.BiasActivationBackward(nil, dyNoDB, y, act)
				checkNoErr(t, b)
				want := backendtest.Download(t, b, dyDense)
				checkBits(t, "dZ", backendtest.Download(t, b, dy), want)
				checkBits(t, "dZ without db", backendtest.Download(t, b, dyNoDB), want)
				checkBits(t, "db", backendtest.Download(t, b, db), backendtest.Download(t, b, dbDense))
				checkBits(t, "y after the backward", backendtest.Download(t, b, y), ys)
			})
		}
	}
}

// bn64 is batch normalisation in float64 over the m×c matrix x: the batch mean and
// biased variance, x̂ and the output.
func bn64(x, gamma, beta []float64, m, c int, eps float64, act backend.Act) (mean, variance, xh, y []float64) {
	mean, variance = make([]float64, c), make([]float64, c)
	xh, y = make([]float64, m*c), make([]float64, m*c)
	for j := 0; j < c; j++ {
		for r := 0; r < m; r++ {
			mean[j] += x[r*c+j]
		}
		mean[j] /= float64(m)
		for r := 0; r < m; r++ {
			d := x[r*c+j] - mean[j]
			variance[j] += d * d
		}
		variance[j] /= float64(m)
	}
	normalize64(y, xh, x, mean, variance, gamma, beta, m, c, eps, act)
	return mean, variance, xh, y
}

// normalize64 sets xh to (x − mean)/√(variance + eps) and y to act(gamma·xh + beta).
func normalize64(y, xh, x, mean, variance, gamma, beta []float64, m, c int, eps float64, act backend.Act) {
	for r := 0; r < m; r++ {
		for j := 0; j < c; j++ {
			e := r*c + j
			xh[e] = (x[e] - mean[j]) / math.Sqrt(variance[j]+eps)
			y[e] = backendtest.Act64(gamma[j]*xh[e]+beta[j], act)
		}
	}
}

// bnBackward64 is BatchNormBackward's formula in float64, given dZ.
func bnBackward64(dz, xh, gamma, variance []float64, m, c int, eps float64) (dx, dgamma, dbeta []float64) {
	dx, dgamma, dbeta = make([]float64, m*c), make([]float64, c), make([]float64, c)
	for j := 0; j < c; j++ {
		for r := 0; r < m; r++ {
			dbeta[j] += dz[r*c+j]
			dgamma[j] += dz[r*c+j] * xh[r*c+j]
		}
		k := gamma[j] / math.Sqrt(variance[j]+eps)
		for r := 0; r < m; r++ {
			e := r*c + j
			dx[e] = k * (dz[e] - dbeta[j]/float64(m) - xh[e]*dgamma[j]/float64(m))
		}
	}
	return dx, dgamma, dbeta
}

// actGrad64 is act'(z) from the output y, as the backend defines it.
func actGrad64(y float64, a backend.Act) float64 {
	switch a.Kind {
	case backend.ReLU:
		if y <= 0 {
			return 0
		}
	case backend.LeakyReLU:
		if y < 0 {
			return float64(a.Alpha)
		}
	case backend.Sigmoid:
		return y * (1 - y)
	case backend.Tanh:
		return 1 - y*y
	}
	return 1
}

// bnShapes are the batch-normalisation shapes tested: tiny batches (one row has
// variance 0), a ragged one, and one large enough to split between workers.
var bnShapes = []struct{ m, c int }{{1, 5}, {2, 5}, {7, 5}, {37, 19}, {1100, 100}}

// bnCase is a batch normalisation of an m×c matrix: its activation and inputs
// (x offset from 0 so that the mean matters; cs is a dL/dy), as values and as
// tensors of the backend.
type bnCase struct {
	m, c                            int
	act                             backend.Act
	xs, gs, bs, rms, rvs, cs        []float32
	x, gamma, beta, runMean, runVar backend.Tensor
}

// eachBN runs f as one subtest per shape and activation.
func eachBN(t *testing.T, b *cpu.Backend, shapes []struct{ m, c int }, f func(t *testing.T, k bnCase)) {
	t.Helper()
	for _, sh := range shapes {
		for _, act := range acts {
			t.Run(fmt.Sprintf("%dx%d/%v", sh.m, sh.c, act.Kind), func(t *testing.T) {
				m, c := sh.m, sh.c
				r := rand.New(rand.NewPCG(uint64(m), uint64(c)))
				k := bnCase{m: m, c: c, act: act,
					xs: uniform(r, m*c, -1, 2), gs: uniform(r, c, 0.5, 1.5), bs: uniform(r, c, -0.5, 0.5),
					rms: uniform(r, c, -1, 1), rvs: uniform(r, c, 0.5, 2), cs: uniform(r, m*c, -1, 1)}
				k.x, k.gamma, k.beta = tensorOf(t, b, m, c, k.xs), tensorOf(t, b, 1, c, k.gs), tensorOf(t, b, 1, c, k.bs)
				k.runMean, k.runVar = tensorOf(t, b, 1, c, k.rms), tensorOf(t, b, 1, c, k.rvs)
				f(t, k)
			})
		}
	}
}

// relTol is tol·(|v_i| + 1) for every i.
func relTol(v []float64, tol float64) []float64 {
	out := make([]float64, len(v))
	for i := range v {
		out[i] = tol * (math.Abs(v[i]) + 1)
	}
	return out
}

// unbiasedUpdate is the running-average update in float64.
func unbiasedUpdate(rm, rv, mean, variance []float64, m int, momentum float64) {
	for j := range rm {
		unbiased := variance[j]
		if m > 1 {
			unbiased *= float64(m) / float64(m-1)
		}
		rm[j] = (1-momentum)*rm[j] + momentum*mean[j]
		rv[j] = (1-momentum)*rv[j] + momentum*unbiased
	}
}

func TestBatchNorm(t *testing.T) {
	const eps, momentum = 1e-3, 0.1
	b := newBackend(t, "go")
	eachBN(t, b, bnShapes, func(t *testing.T, k bnCase) {
		nan := float32(math.NaN())
		y, mean, variance := filled(t, b, k.m, k.c, nan), filled(t, b, 1, k.c, nan), filled(t, b, 1, k.c, nan)
		b.BatchNorm(y, mean, variance, k.x, k.gamma, k.beta, k.runMean, k.runVar, 1, eps, momentum, k.act)
		checkNoErr(t, b)

		wantMean, wantVar, _, wantY := bn64(to64(k.xs), to64(k.gs), to64(k.bs), k.m, k.c, eps, k.act)
		checkClose(t, "mean", backendtest.Download(t, b, mean), wantMean, relTol(wantMean, 1e-7))
		checkClose(t, "variance", backendtest.Download(t, b, variance), wantVar, relTol(wantVar, 1e-7))
		checkClose(t, "y", backendtest.Download(t, b, y), wantY, relTol(wantY, 1e-6))
		rm, rv := to64(k.rms), to64(k.rvs)
		unbiasedUpdate(rm, rv, wantMean, wantVar, k.m, momentum)
		checkClose(t, "running mean", backendtest.Download(t, b, k.runMean), rm, relTol(rm, 1e-6))
		checkClose(t, "running variance", backendtest.Download(t, b, k.runVar), rv, relTol(rv, 1e-6))

		// Without running statistics: the same outputs.
		y2, mean2, variance2 := alloc(t, b, backend.F32, k.m, k.c), alloc(t, b, backend.F32, 1, k.c), alloc(t, b, backend.F32, 1, k.c)
		b.BatchNorm(y2, mean2, variance2, k.x, k.gamma, k.beta, nil, nil, 1, eps, momentum, k.act)
		checkNoErr(t, b)
		checkBits(t, "y without running statistics", backendtest.Download(t, b, y2), backendtest.Download(t, b, y))
		checkBits(t, "mean without running statistics", backendtest.Download(t, b, mean2), backendtest.Download(t, b, mean))
		checkBits(t, "variance without running statistics", backendtest.Download(t, b, variance2), backendtest.Download(t, b, variance))
	})
}

// TestBatchNormInfer checks the inference form against a float64 reference, in
// place and not, and that with the batch's own statistics as the running ones it
// gives BatchNorm's bits.
func TestBatchNormInfer(t *testing.T) {
	const eps = 1e-3
	b := newBackend(t, "go")
	eachBN(t, b, bnShapes, func(t *testing.T, k bnCase) {
		y := filled(t, b, k.m, k.c, float32(math.NaN()))
		b.BatchNormInfer(y, k.x, k.gamma, k.beta, k.runMean, k.runVar, eps, k.act)
		checkNoErr(t, b)
		want, xh := make([]float64, k.m*k.c), make([]float64, k.m*k.c)
		normalize64(want, xh, to64(k.xs), to64(k.rms), to64(k.rvs), to64(k.gs), to64(k.bs), k.m, k.c, eps, k.act)
		ys := backendtest.Download(t, b, y)
		checkClose(t, "y", ys, want, relTol(want, 1e-6))

		x := tensorOf(t, b, k.m, k.c, k.xs)
		b.BatchNormInfer(x, x, k.gamma, k.beta, k.runMean, k.runVar, eps, k.act)
		checkNoErr(t, b)
		checkBits(t, "y in place", backendtest.Download(t, b, x), ys)

		mean, variance := alloc(t, b, backend.F32, 1, k.c), alloc(t, b, backend.F32, 1, k.c)
		b.BatchNorm(y, mean, variance, k.x, k.gamma, k.beta, nil, nil, 1, eps, 0, k.act)
		b.BatchNormInfer(k.x, k.x, k.gamma, k.beta, mean, variance, eps, k.act)
		checkNoErr(t, b)
		checkBits(t, "y with the batch statistics", backendtest.Download(t, b, k.x), backendtest.Download(t, b, y))
	})
}

// TestBatchNormRunningUpdates runs several updates, m = 1 among them (its variance
// enters unbiased as itself, 0), with momentum 1 (the batch's statistics) and 0
// (unchanged).
func TestBatchNormRunningUpdates(t *testing.T) {
	const eps, c = 1e-5, 3
	b := newBackend(t, "go")
	runMean, runVar := filled(t, b, 1, c, 0), filled(t, b, 1, c, 1)
	mean, variance := alloc(t, b, backend.F32, 1, c), alloc(t, b, backend.F32, 1, c)
	gamma, beta := filled(t, b, 1, c, 1), filled(t, b, 1, c, 0)
	rm, rv := []float64{0, 0, 0}, []float64{1, 1, 1}
	for step, tc := range []struct {
		m        int
		momentum float32
	}{{4, 0.1}, {1, 0.5}, {3, 1}, {5, 0}, {2, 0.25}} {
		xs := uniform(rand.New(rand.NewPCG(uint64(step), 9)), tc.m*c, -2, 2)
		y := alloc(t, b, backend.F32, tc.m, c)
		b.BatchNorm(y, mean, variance, tensorOf(t, b, tc.m, c, xs), gamma, beta, runMean, runVar, 1, eps, tc.momentum, backend.Act{})
		checkNoErr(t, b)
		mu, v, _, _ := bn64(to64(xs), []float64{1, 1, 1}, []float64{0, 0, 0}, tc.m, c, eps, backend.Act{})
		unbiasedUpdate(rm, rv, mu, v, tc.m, float64(tc.momentum))
		tol := []float64{1e-6, 1e-6, 1e-6}
		checkClose(t, fmt.Sprintf("step %d running mean", step), backendtest.Download(t, b, runMean), rm, tol)
		checkClose(t, fmt.Sprintf("step %d running variance", step), backendtest.Download(t, b, runVar), rv, tol)
	}
}

// backward runs BatchNorm then BatchNormBackward with dL/dy = k.cs (the loss is
// Σ cs ⊙ y) and returns dx, dgamma, dbeta and dZ; forward holds BatchNorm's y, mean
// and variance.
func (k bnCase) backward(t *testing.T, b *cpu.Backend, eps float32) (dx, dgamma, dbeta, dz []float32, forward [3]backend.Tensor) {
	t.Helper()
	y, mean, variance := alloc(t, b, backend.F32, k.m, k.c), alloc(t, b, backend.F32, 1, k.c), alloc(t, b, backend.F32, 1, k.c)
	b.BatchNorm(y, mean, variance, k.x, k.gamma, k.beta, nil, nil, 1, eps, 0, k.act)
	nan := float32(math.NaN())
	dxT, dgT, dbT := filled(t, b, k.m, k.c, nan), filled(t, b, 1, k.c, nan), filled(t, b, 1, k.c, nan)
	dy := tensorOf(t, b, k.m, k.c, k.cs)
	b.BatchNormBackward(dxT, dgT, dbT, dy, k.x, y, k.gamma, mean, variance, 1, eps, k.act)
	checkNoErr(t, b)
	return backendtest.Download(t, b, dxT), backendtest.Download(t, b, dgT), backendtest.Download(t, b, dbT), backendtest.Download(t, b, dy), [3]backend.Tensor{y, mean, variance}
}

// TestBatchNormBackwardFiniteDifferences compares the gradients of the loss
// Σ c ⊙ BatchNorm(x) with central differences of a float64 forward.
func TestBatchNormBackwardFiniteDifferences(t *testing.T) {
	const eps = 1e-2
	b := newBackend(t, "go")
	eachBN(t, b, []struct{ m, c int }{{1, 5}, {2, 5}, {7, 5}}, func(t *testing.T, k bnCase) {
		dx, dgamma, dbeta, _, _ := k.backward(t, b, eps)
		x, g, be, c64 := to64(k.xs), to64(k.gs), to64(k.bs), to64(k.cs)
		loss := func() float64 {
			_, _, _, y := bn64(x, g, be, k.m, k.c, eps, k.act)
			return dot64(c64, y)
		}
		checkGrad(t, "dx", dx, centralDiff(x, loss), 2e-3)
		checkGrad(t, "dgamma", dgamma, centralDiff(g, loss), 2e-3)
		checkGrad(t, "dbeta", dbeta, centralDiff(be, loss), 2e-3)
	})
}

// TestBatchNormBackward compares the gradients with the formula in float64, on
// shapes up to one that splits between workers, and requires each of dx, dgamma and
// dbeta to be skippable without changing the others.
func TestBatchNormBackward(t *testing.T) {
	const eps = 1e-3
	b := newBackend(t, "go")
	eachBN(t, b, bnShapes, func(t *testing.T, k bnCase) {
		m, c := k.m, k.c
		dx, dgamma, dbeta, dz, fwd := k.backward(t, b, eps)
		_, variance, xh, y := bn64(to64(k.xs), to64(k.gs), to64(k.bs), m, c, eps, k.act)
		dz64 := make([]float64, m*c)
		for i := range dz64 {
			dz64[i] = float64(k.cs[i]) * actGrad64(y[i], k.act)
		}
		checkClose(t, "dZ", dz, dz64, relTol(dz64, 1e-5))
		wantDx, wantDg, wantDb := bnBackward64(dz64, xh, to64(k.gs), variance, m, c, eps)
		checkGrad(t, "dx", dx, wantDx, 1e-3)
		checkGrad(t, "dgamma", dgamma, wantDg, 1e-4)
		checkGrad(t, "dbeta", dbeta, wantDb, 1e-4)

		// Each output skipped in turn, then all three: the others keep their bits.
		for skip := 0; skip < 4; skip++ {
			outs := []backend.Tensor{alloc(t, b, backend.F32, m, c), alloc(t, b, backend.F32, 1, c), alloc(t, b, backend.F32, 1, c)}
			if skip < 3 {
				outs[skip] = nil
			} else {
				outs = []backend.Tensor{nil, nil, nil}
			}
			dy := tensorOf(t, b, m, c, k.cs)
			b.BatchNormBackward(outs[0], outs[1], outs[2], dy, k.x, fwd[0], k.gamma, fwd[1], fwd[2], 1, eps, k.act)
			checkNoErr(t, b)
			for o, want := range [][]float32{dx, dgamma, dbeta} {
				if outs[o] != nil {
					checkBits(t, fmt.Sprintf("output %d with %d skipped", o, skip), backendtest.Download(t, b, outs[o]), want)
				}
			}
			checkBits(t, fmt.Sprintf("dZ with %d skipped", skip), backendtest.Download(t, b, dy), dz)
		}
	})
}

// TestBatchNormGroups checks that groups of rows are normalised as separate calls on
// each group would: the same outputs and statistics, the running averages updated
// group after group, dx per group, and dgamma and dbeta the sums over the groups.
func TestBatchNormGroups(t *testing.T) {
	const eps, momentum, groups, m, c = 1e-3, 0.3, 3, 4, 5
	b := newBackend(t, "go")
	rows := groups * m
	src := rand.New(rand.NewPCG(11, 12))
	vals := func(n int, lo, hi float32) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = lo + (hi-lo)*src.Float32()
		}
		return v
	}
	xs, cs := vals(rows*c, -2, 3), vals(rows*c, -1, 1)
	rm0, rv0 := vals(c, -1, 1), vals(c, 0.5, 2)
	gamma, beta := tensorOf(t, b, 1, c, vals(c, 0.5, 1.5)), tensorOf(t, b, 1, c, vals(c, -1, 1))
	act := backend.Act{Kind: backend.LeakyReLU, Alpha: 0.2}
	view := func(x backend.Tensor, g, r int) backend.Tensor {
		v, err := b.View(x, g*r*x.Cols(), r, x.Cols())
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	run := func(split bool) (out [][]float32) {
		x, y, dy := tensorOf(t, b, rows, c, xs), alloc(t, b, backend.F32, rows, c), tensorOf(t, b, rows, c, cs)
		mean, variance := alloc(t, b, backend.F32, groups, c), alloc(t, b, backend.F32, groups, c)
		runMean, runVar := tensorOf(t, b, 1, c, rm0), tensorOf(t, b, 1, c, rv0)
		dx, dg, db := alloc(t, b, backend.F32, rows, c), alloc(t, b, backend.F32, 1, c), alloc(t, b, backend.F32, 1, c)
		if !split {
			b.BatchNorm(y, mean, variance, x, gamma, beta, runMean, runVar, groups, eps, momentum, act)
			b.BatchNormBackward(dx, dg, db, dy, x, y, gamma, mean, variance, groups, eps, act)
			checkNoErr(t, b)
			return [][]float32{backendtest.Download(t, b, y), backendtest.Download(t, b, mean), backendtest.Download(t, b, variance), backendtest.Download(t, b, runMean),
				backendtest.Download(t, b, runVar), backendtest.Download(t, b, dx), backendtest.Download(t, b, dy), backendtest.Download(t, b, dg), backendtest.Download(t, b, db)}
		}
		sg, sb := make([]float64, c), make([]float64, c)
		for g := range groups {
			b.BatchNorm(view(y, g, m), view(mean, g, 1), view(variance, g, 1), view(x, g, m), gamma, beta, runMean, runVar, 1, eps, momentum, act)
			b.BatchNormBackward(view(dx, g, m), dg, db, view(dy, g, m), view(x, g, m), view(y, g, m), gamma, view(mean, g, 1), view(variance, g, 1), 1, eps, act)
			for j, v := range backendtest.Download(t, b, dg) {
				sg[j] += float64(v)
				sb[j] += float64(backendtest.Download(t, b, db)[j])
			}
		}
		checkNoErr(t, b)
		g32, b32 := make([]float32, c), make([]float32, c)
		for j := range c {
			g32[j], b32[j] = float32(sg[j]), float32(sb[j])
		}
		return [][]float32{backendtest.Download(t, b, y), backendtest.Download(t, b, mean), backendtest.Download(t, b, variance), backendtest.Download(t, b, runMean),
			backendtest.Download(t, b, runVar), backendtest.Download(t, b, dx), backendtest.Download(t, b, dy), g32, b32}
	}
	together, apart := run(false), run(true)
	names := []string{"y", "mean", "variance", "running mean", "running variance", "dx", "dZ", "dgamma", "dbeta"}
	for k, name := range names {
		for i := range together[k] {
			want, got := apart[k][i], together[k][i]
			// dgamma and dbeta round the sum of the groups once, not each group's.
			if tol := float32(2e-6) * (1 + abs32(want)); k < 7 && got != want || k >= 7 && abs32(got-want) > tol {
				t.Errorf("%s[%d] = %g in groups, %g apart", name, i, got, want)
			}
		}
	}
}

func abs32(v float32) float32 { return float32(math.Abs(float64(v))) }
