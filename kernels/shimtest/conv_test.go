//go:build cgo

package shimtest

import (
	"fmt"
	"slices"
	"testing"

	"github.com/gantrain/gantrain/backend"
	"github.com/gantrain/gantrain/backend/backendtest"
	"github.com/gantrain/gantrain/kernels"
)

// convGeoms are ragged geometries: a 5×7 input with a 3×2 kernel at every stride from
// 1 to 3 and several paddings, one and 37 channels, a 1×1 kernel, and an input the
// kernel just covers.
var convGeoms = []backend.ConvGeom{
	{InH: 5, InW: 7, InC: 3, KH: 3, KW: 2, StrideH: 1, StrideW: 1},
	{InH: 5, InW: 7, InC: 3, KH: 3, KW: 2, StrideH: 2, StrideW: 1, PadH: 1, PadW: 1},
	{InH: 5, InW: 7, InC: 3, KH: 3, KW: 2, StrideH: 3, StrideW: 2, PadH: 2},
	{InH: 5, InW: 7, InC: 1, KH: 3, KW: 2, StrideH: 1, StrideW: 3, PadH: 1, PadW: 1},
	{InH: 5, InW: 7, InC: 37, KH: 3, KW: 2, StrideH: 2, StrideW: 2, PadH: 2, PadW: 1},
	{InH: 4, InW: 4, InC: 2, KH: 1, KW: 1, StrideH: 2, StrideW: 1},
	{InH: 2, InW: 1, InC: 5, KH: 3, KW: 3, StrideH: 3, StrideW: 1, PadH: 1, PadW: 1},
}

// Im2Col and Col2Im copy and add the same float32 values in the same order as the CPU
// backend: bit for bit.
func TestIm2ColCol2Im(t *testing.T) {
	e := newEnv(t)
	d := devices[0]
	for _, g := range convGeoms {
		if err := g.Valid(); err != nil {
			t.Fatal(err)
		}
		for _, n := range []int{1, 3} {
			name := fmt.Sprintf("%v n=%d", g, n)
			rows, patch := n*g.Positions(), g.Patch()
			xv := e.floats(n*g.InSize(), -1, 1)
			x, cols := e.mem(xv), e.poisoned(rows*patch)
			e.run(kernels.Im2Col(d, cols.Addr(), x.Addr(), n, g))
			C := e.tensor(rows, patch, make([]float32, rows*patch))
			e.cpu.Im2Col(C, e.tensor(n, g.InSize(), xv), g)
			backendtest.Bitwise(t, name+" im2col", cols.F32(), e.down(C))

			cv := e.floats(rows*patch, -1, 1)
			c, xs := e.mem(cv), e.poisoned(n*g.InSize())
			e.run(kernels.Col2Im(d, xs.Addr(), c.Addr(), n, g))
			X := e.tensor(n, g.InSize(), make([]float32, n*g.InSize()))
			e.cpu.Col2Im(X, e.tensor(rows, patch, cv), g)
			backendtest.Bitwise(t, name+" col2im", xs.F32(), e.down(X))
		}
	}
}

// Shapes m×c of the per-channel operations: one element, one column, 37 columns (a
// ragged column block), and enough rows that the H100 plan splits them into chunks.
var channelShapes = [][2]int{{1, 1}, {37, 1}, {29, 37}, {3000, 3}, {700, 37}}

func TestBiasActivation(t *testing.T) {
	e := newEnv(t)
	for _, d := range devices[:2] {
		for _, s := range channelShapes {
			m, c := s[0], s[1]
			for _, act := range acts {
				name := fmt.Sprintf("%+v %dx%d %v", d, m, c, act.Kind)
				yv, bv := e.floats(m*c, -2, 2), e.floats(c, -1, 1)
				y, b := e.mem(yv), e.mem(bv)
				e.run(kernels.BiasActivation(d, y.Addr(), b.Addr(), m, c, act))
				Y := e.tensor(m, c, yv)
				e.cpu.BiasActivation(Y, e.tensor(1, c, bv), act)
				backendtest.Bitwise(t, name+" y", y.F32(), e.down(Y))

				dyv := e.floats(m*c, -1, 1)
				for _, withDB := range []bool{true, false} {
					dy, db := e.mem(dyv), e.poisoned(c)
					dba := db.Addr()
					if !withDB {
						dba = 0
					}
					e.run(kernels.BiasActivationBackward(d, dba, dy.Addr(), y.Addr(), m, c, act, e.ws.Addr()))
					DY, DB := e.tensor(m, c, dyv), e.tensor(1, c, make([]float32, c))
					if withDB {
						e.cpu.BiasActivationBackward(DB, DY, Y, act)
						backendtest.Near(t, name+" db", db.F32(), e.down(DB), tolF32)
					} else {
						e.cpu.BiasActivationBackward(nil, DY, Y, act)
					}
					backendtest.Bitwise(t, name+" dZ", dy.F32(), e.down(DY))
				}
			}
		}
	}
}

// bnCases are batch-normalisation problems m×c in groups: single rows, a group per
// row (the biased variance in the running average), ragged columns, and rows the H100
// plan splits into chunks within each group.
var bnCases = []struct{ m, c, groups int }{
	{1, 1, 1}, {3, 2, 3}, {37, 1, 1}, {29, 37, 1}, {58, 37, 2}, {3000, 3, 2}, {1400, 40, 1}, {600, 5, 3},
}

// The batch statistics are float64 sums in another order than the CPU's, rounded to
// float32: mean, variance and y agree to rounding; the activation gradient dZ is the
// same float32 operations, bit for bit.
func TestBatchNorm(t *testing.T) {
	e := newEnv(t)
	const eps, momentum = 1e-5, 0.1
	for _, d := range devices[:2] {
		for ci, bc := range bnCases {
			m, c, groups := bc.m, bc.c, bc.groups
			act := acts[ci%len(acts)]
			name := fmt.Sprintf("%+v %dx%d/%d %v", d, m, c, groups, act.Kind)
			xv := e.floats(m*c, -1, 3) // a mean away from 0
			gv, bv := e.floats(c, 0.5, 1.5), e.floats(c, -0.5, 0.5)
			rmv, rvv := e.floats(c, -0.1, 0.1), e.floats(c, 0.5, 1.5)
			x, gamma, beta := e.mem(xv), e.mem(gv), e.mem(bv)
			y, mean, variance := e.poisoned(m*c), e.poisoned(groups*c), e.poisoned(groups*c)
			rm, rv := e.mem(rmv), e.mem(rvv)
			e.run(kernels.BatchNorm(d, y.Addr(), mean.Addr(), variance.Addr(), x.Addr(), gamma.Addr(), beta.Addr(),
				rm.Addr(), rv.Addr(), m, c, groups, eps, momentum, act, e.ws.Addr()))
			X, G, B := e.tensor(m, c, xv), e.tensor(1, c, gv), e.tensor(1, c, bv)
			Y, M, V := e.tensor(m, c, make([]float32, m*c)), e.tensor(groups, c, make([]float32, groups*c)),
				e.tensor(groups, c, make([]float32, groups*c))
			RM, RV := e.tensor(1, c, rmv), e.tensor(1, c, rvv)
			e.cpu.BatchNorm(Y, M, V, X, G, B, RM, RV, groups, eps, momentum, act)
			backendtest.Near(t, name+" mean", mean.F32(), e.down(M), tolF32)
			backendtest.Near(t, name+" variance", variance.F32(), e.down(V), tolF32)
			backendtest.Near(t, name+" y", y.F32(), e.down(Y), tolF32)
			backendtest.Near(t, name+" runMean", rm.F32(), e.down(RM), tolF32)
			backendtest.Near(t, name+" runVar", rv.F32(), e.down(RV), tolF32)

			// Without running averages: they are not touched.
			y2 := e.poisoned(m * c)
			e.run(kernels.BatchNorm(d, y2.Addr(), mean.Addr(), variance.Addr(), x.Addr(), gamma.Addr(), beta.Addr(),
				0, 0, m, c, groups, eps, momentum, act, e.ws.Addr()))
			backendtest.Bitwise(t, name+" y without running averages", y2.F32(), y.F32())

			// Inference with the running statistics, in place.
			yi := e.mem(xv)
			e.run(kernels.BatchNormInfer(d, yi.Addr(), yi.Addr(), gamma.Addr(), beta.Addr(), rm.Addr(), rv.Addr(), m, c, eps, act))
			YI := e.tensor(m, c, xv)
			e.cpu.BatchNormInfer(YI, YI, G, B, RM, RV, eps, act)
			backendtest.Near(t, name+" infer", yi.F32(), e.down(YI), tolF32)

			// Backward, with y as the forward pass left it, every subset of the outputs.
			yv, mv, vv := e.down(Y), e.down(M), e.down(V)
			dyv := e.floats(m*c, -1, 1)
			for _, want := range []struct{ dx, dg, db bool }{{true, true, true}, {true, false, false}, {false, true, false}, {false, false, true}, {false, false, false}} {
				wname := fmt.Sprintf("%s %+v", name, want)
				dy, yy, mm, vvv := e.mem(dyv), e.mem(yv), e.mem(mv), e.mem(vv)
				dx, dg, db := e.poisoned(m*c), e.poisoned(c), e.poisoned(c)
				pick := func(on bool, a *Mem) uint64 {
					if on {
						return a.Addr()
					}
					return 0
				}
				e.run(kernels.BatchNormBackward(d, pick(want.dx, dx), pick(want.dg, dg), pick(want.db, db), dy.Addr(), x.Addr(),
					yy.Addr(), gamma.Addr(), mm.Addr(), vvv.Addr(), m, c, groups, eps, act, e.ws.Addr()))
				DY, DX, DG, DB := e.tensor(m, c, dyv), e.tensor(m, c, make([]float32, m*c)), e.tensor(1, c, make([]float32, c)),
					e.tensor(1, c, make([]float32, c))
				opt := func(on bool, t backend.Tensor) backend.Tensor {
					if on {
						return t
					}
					return nil
				}
				e.cpu.BatchNormBackward(opt(want.dx, DX), opt(want.dg, DG), opt(want.db, DB), DY, X, e.tensor(m, c, yv), G,
					e.tensor(groups, c, mv), e.tensor(groups, c, vv), groups, eps, act)
				backendtest.Bitwise(t, wname+" dZ", dy.F32(), e.down(DY))
				if want.dx {
					backendtest.Near(t, wname+" dx", dx.F32(), e.down(DX), tolF32)
				}
				if want.dg {
					backendtest.Near(t, wname+" dgamma", dg.F32(), e.down(DG), tolF32)
				}
				if want.db {
					backendtest.Near(t, wname+" dbeta", db.F32(), e.down(DB), tolF32)
				}
			}
		}
	}
}

// convForwardGeoms are convolutions for ConvForward: channels a multiple of 4 (the
// implicit im2col's candidates too) with padding on every side, strides 1 to 3 and a
// ragged number of output positions, one of 3 channels (im2col_nhwc first only), one
// whose stride exceeds its kernel (a transposed convolution's output rows that no tap
// reaches), and one of 136 channels (a transposed convolution's output in several
// column tiles).
var convForwardGeoms = []struct {
	g      backend.ConvGeom
	n, out int
}{
	{backend.ConvGeom{InH: 7, InW: 5, InC: 8, KH: 4, KW: 4, StrideH: 2, StrideW: 2, PadH: 1, PadW: 1}, 3, 12},
	{backend.ConvGeom{InH: 6, InW: 9, InC: 4, KH: 3, KW: 2, StrideH: 1, StrideW: 3, PadH: 2, PadW: 1}, 2, 72},
	{backend.ConvGeom{InH: 5, InW: 5, InC: 12, KH: 3, KW: 3, StrideH: 3, StrideW: 1, PadH: 1}, 5, 8},
	{backend.ConvGeom{InH: 5, InW: 7, InC: 3, KH: 3, KW: 2, StrideH: 2, StrideW: 1, PadH: 1, PadW: 1}, 3, 8},
	{backend.ConvGeom{InH: 5, InW: 4, InC: 4, KH: 1, KW: 2, StrideH: 2, StrideW: 3, PadW: 1}, 2, 4},
	{backend.ConvGeom{InH: 3, InW: 4, InC: 136, KH: 2, KW: 2, StrideH: 2, StrideW: 2, PadH: 1}, 2, 8},
}

// eachConvGeom calls f for each of convForwardGeoms with the shim's copies landing at
// their wait, and for the first again with them landing at their issue.
func eachConvGeom(t *testing.T, f func(eager bool, ci int, g backend.ConvGeom, n, out int)) {
	defer SetCopyMode(false)
	for _, eager := range []bool{false, true} {
		SetCopyMode(eager)
		for ci, cf := range convForwardGeoms {
			if eager && ci > 0 {
				break
			}
			if err := cf.g.Valid(); err != nil {
				t.Fatal(err)
			}
			f(eager, ci, cf.g, cf.n, cf.out)
		}
	}
}

// convCandidates lists p's candidates on d, checking that the implicit im2col (the
// _ct kernels for a transposed convolution) is among them exactly when the images'
// channels (and a transposed convolution's input channels) are a multiple of 4.
func convCandidates(t *testing.T, d kernels.Target, p kernels.GemmProblem) []kernels.GemmChoice {
	t.Helper()
	cands := kernels.GemmCandidates(d, p)
	implicit, want := func(c kernels.GemmChoice) bool { return c.Im2Col }, p.Conv.InC%4 == 0
	if p.ConvT.InH > 0 {
		implicit, want = func(c kernels.GemmChoice) bool { return c.Col2Im }, p.ConvT.InC%4 == 0 && p.K%4 == 0
	}
	if slices.ContainsFunc(cands, implicit) != want {
		t.Errorf("%v: candidates %v", p, cands)
	}
	return cands
}

// eachConvCandidate calls run for every candidate of the problem problem(tf32) gives
// (convCandidates), fp32 and tf32, with a device whose chooser answers the candidate;
// the builder must have asked about the problem, and the split-K counters must be left
// at zero.
func eachConvCandidate(t *testing.T, e *env, eager bool, problem func(tf32 bool) kernels.GemmProblem, run func(d kernels.Target, name string)) {
	for _, tf32 := range []bool{false, true} {
		d := gemmDevice(tf32)
		p := problem(tf32)
		for _, c := range convCandidates(t, d, p) {
			if wdotSpared(c, tf32, eager) {
				continue
			}
			var seen []kernels.GemmProblem
			d.Gemm = recorder{c, &seen}
			name := fmt.Sprintf("eager=%v/%v/%v", eager, p, c)
			run(d, name)
			if !slices.Contains(seen, p) {
				t.Fatalf("%s: the builder planned %v", name, seen)
			}
			e.countersZero(name)
		}
	}
}

// TestConvForwardCandidates runs every candidate of every convolution's forward
// product, the implicit im2col's included, against the CPU backend: the columns bit
// for bit, the output to the product's rounding; with the shim's copies landing at
// their wait and, for the first geometry, at their issue.
func TestConvForwardCandidates(t *testing.T) {
	e := newEnv(t)
	eachConvGeom(t, func(eager bool, ci int, g backend.ConvGeom, n, out int) {
		rows, patch := n*g.Positions(), g.Patch()
		xv, wv, bv := e.floats(n*g.InSize(), -1, 1), e.floats(patch*out, -0.5, 0.5), e.floats(out, -1, 1)
		act := acts[ci%len(acts)]
		Y, C := e.tensor(rows, out, make([]float32, rows*out)), e.tensor(rows, patch, make([]float32, rows*patch))
		e.cpu.ConvForward(Y, C, e.tensor(n, g.InSize(), xv), e.tensor(patch, out, wv), e.tensor(1, out, bv), g, act)
		wantY, wantC := e.down(Y), e.down(C)
		x, w, b := e.mem(xv), e.mem(wv), e.mem(bv)
		eachConvCandidate(t, e, eager, func(tf32 bool) kernels.GemmProblem {
			return kernels.GemmProblem{Kind: "nn", M: rows, N: out, K: patch, LDA: patch, LDB: out, TF32: tf32,
				Vec4: patch%4 == 0 && out%4 == 0, Conv: g, ConvVec4: g.InC%4 == 0}
		}, func(d kernels.Target, name string) {
			y, cols := e.poisoned(rows*out), e.poisoned(rows*patch)
			e.run(kernels.ConvForward(d, y.Addr(), cols.Addr(), x.Addr(), w.Addr(), b.Addr(), n, g, out, act, e.ws.Addr()))
			backendtest.Bitwise(t, name+" cols", cols.F32(), wantC)
			backendtest.Near(t, name+" y", y.F32(), wantY, tol(d))
		})
	})
}

// TestConvTransposeBackwardCandidates runs every candidate of the input gradient's
// product of a transposed convolution (nt, A the columns of the output gradient), the
// implicit im2col's included, then the weight gradient on the columns it left, against
// the CPU backend: the columns bit for bit, dx and dw to the products' rounding; with
// the shim's copies landing at their wait and, for the first geometry, at their issue.
func TestConvTransposeBackwardCandidates(t *testing.T) {
	e := newEnv(t)
	eachConvGeom(t, func(eager bool, _ int, g backend.ConvGeom, n, in int) {
		// The transposed convolution of g: input (n·Positions)×in, output n images of
		// g.InSize(); in plays the part of the filters.
		rows, patch := n*g.Positions(), g.Patch()
		xv, wv, dyv := e.floats(rows*in, -1, 1), e.floats(in*patch, -0.5, 0.5), e.floats(n*g.InSize(), -1, 1)
		X, W, DY := e.tensor(rows, in, xv), e.tensor(in, patch, wv), e.tensor(n, g.InSize(), dyv)
		C := e.tensor(rows, patch, make([]float32, rows*patch))
		DX, DW := e.tensor(rows, in, make([]float32, rows*in)), e.tensor(in, patch, make([]float32, in*patch))
		e.cpu.ConvTransposeBackward(DX, DW, C, DY, X, W, g)
		wantC, wantDX, wantDW := e.down(C), e.down(DX), e.down(DW)
		x, w, dy := e.mem(xv), e.mem(wv), e.mem(dyv)
		eachConvCandidate(t, e, eager, func(tf32 bool) kernels.GemmProblem {
			return kernels.GemmProblem{Kind: "nt", M: rows, N: in, K: patch, LDA: patch, LDB: patch, TF32: tf32,
				Vec4: patch%4 == 0, Conv: g, ConvVec4: g.InC%4 == 0}
		}, func(d kernels.Target, name string) {
			dx, dw, cols := e.poisoned(rows*in), e.poisoned(in*patch), e.poisoned(rows*patch)
			e.run(kernels.ConvTransposeBackward(d, dx.Addr(), dw.Addr(), cols.Addr(), dy.Addr(), x.Addr(), w.Addr(), n, g, in, e.ws.Addr()))
			backendtest.Bitwise(t, name+" cols", cols.F32(), wantC)
			backendtest.Near(t, name+" dx", dx.F32(), wantDX, tol(d))
			backendtest.Near(t, name+" dw", dw.F32(), wantDW, tol(d))
		})
	})
}

// TestConvTransposeForwardCandidates runs every candidate of a transposed
// convolution's forward pass (the transposed convolution of each of convForwardGeoms,
// its filters the input's channels), the _ct kernels included, against the CPU
// backend: y to the products' rounding, which for a _ct kernel includes the sum over
// the taps; with the shim's copies landing at their wait and, for the first geometry,
// at their issue.
func TestConvTransposeForwardCandidates(t *testing.T) {
	e := newEnv(t)
	eachConvGeom(t, func(eager bool, ci int, g backend.ConvGeom, n, in int) {
		rows, patch := n*g.Positions(), g.Patch()
		xv, wv, bv := e.floats(rows*in, -1, 1), e.floats(in*patch, -0.5, 0.5), e.floats(g.InC, -1, 1)
		act := acts[(ci+1)%len(acts)]
		Y, C := e.tensor(n, g.InSize(), make([]float32, n*g.InSize())), e.tensor(rows, patch, make([]float32, rows*patch))
		e.cpu.ConvTransposeForward(Y, C, e.tensor(rows, in, xv), e.tensor(in, patch, wv), e.tensor(1, g.InC, bv), g, act)
		wantY := e.down(Y)
		x, w, b := e.mem(xv), e.mem(wv), e.mem(bv)
		eachConvCandidate(t, e, eager, func(tf32 bool) kernels.GemmProblem {
			return kernels.GemmProblem{Kind: "nn", M: rows, N: patch, K: in, LDA: in, LDB: patch, TF32: tf32,
				Vec4: in%4 == 0 && patch%4 == 0, ConvT: g, ConvTVec4: in%4 == 0 && g.InC%4 == 0}
		}, func(d kernels.Target, name string) {
			y, cols := e.poisoned(n*g.InSize()), e.poisoned(rows*patch)
			e.run(kernels.ConvTransposeForward(d, y.Addr(), cols.Addr(), x.Addr(), w.Addr(), b.Addr(), n, g, in, act, e.ws.Addr()))
			backendtest.Near(t, name+" y", y.F32(), wantY, tol(d))
		})
	})
}

// TestConvBackwardCandidates runs every candidate of a convolution's input gradient
// (dZ·wᵀ into the columns, then col2im_nhwc; the nt _ct kernels, one product per phase
// of the input pixels), after dZ and the weight and bias gradients, against the CPU
// backend: dZ bit for bit, dx, dw and db to the products' rounding; with the shim's
// copies landing at their wait and, for the first geometry, at their issue.
func TestConvBackwardCandidates(t *testing.T) {
	e := newEnv(t)
	eachConvGeom(t, func(eager bool, ci int, g backend.ConvGeom, n, out int) {
		rows, patch := n*g.Positions(), g.Patch()
		cv, wv := e.floats(rows*patch, -1, 1), e.floats(patch*out, -0.5, 0.5)
		yv, dyv := e.floats(rows*out, -1, 1), e.floats(rows*out, -1, 1)
		act := acts[(ci+2)%len(acts)]
		C, W, Y, DY := e.tensor(rows, patch, cv), e.tensor(patch, out, wv), e.tensor(rows, out, yv), e.tensor(rows, out, dyv)
		DX, DW, DB := e.tensor(n, g.InSize(), make([]float32, n*g.InSize())), e.tensor(patch, out, make([]float32, patch*out)),
			e.tensor(1, out, make([]float32, out))
		e.cpu.ConvBackward(DX, DW, DB, e.tensor(rows, patch, make([]float32, rows*patch)), DY, C, Y, W, g, act)
		wantDZ, wantDX, wantDW, wantDB := e.down(DY), e.down(DX), e.down(DW), e.down(DB)
		cols, w, y := e.mem(cv), e.mem(wv), e.mem(yv)
		eachConvCandidate(t, e, eager, func(tf32 bool) kernels.GemmProblem {
			return kernels.GemmProblem{Kind: "nt", M: rows, N: patch, K: out, LDA: out, LDB: out, TF32: tf32,
				Vec4: out%4 == 0, ConvT: g, ConvTVec4: out%4 == 0 && g.InC%4 == 0}
		}, func(d kernels.Target, name string) {
			dy, dx, dw, db, dcols := e.mem(dyv), e.poisoned(n*g.InSize()), e.poisoned(patch*out), e.poisoned(out), e.poisoned(rows*patch)
			e.run(kernels.ConvBackward(d, dx.Addr(), dw.Addr(), db.Addr(), dcols.Addr(), dy.Addr(), cols.Addr(), y.Addr(), w.Addr(),
				n, g, out, act, e.ws.Addr()))
			backendtest.Bitwise(t, name+" dZ", dy.F32(), wantDZ)
			backendtest.Near(t, name+" dx", dx.F32(), wantDX, tol(d))
			backendtest.Near(t, name+" dw", dw.F32(), wantDW, tol(d))
			backendtest.Near(t, name+" db", db.F32(), wantDB, tol(d))
		})
	})
}
