//go:build cgo

package shimtest

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/gantrain/gantrain/backend"
	"github.com/gantrain/gantrain/backend/backendtest"
	"github.com/gantrain/gantrain/kernels"
	"github.com/gantrain/gantrain/rng"
)

// forced is a GemmChooser that always answers c (the tests' way to run one candidate)
// and remembers the product it was asked about.
type forced struct {
	c    kernels.GemmChoice
	seen *kernels.GemmProblem
}

func (f forced) ChooseGemm(p kernels.GemmProblem, _ func(kernels.GemmChoice) []kernels.Launch) kernels.GemmChoice {
	if f.seen != nil {
		*f.seen = p
	}
	return f.c
}

// recorder is a GemmChooser that always answers c and records every product it was
// asked about (an operation of several products asks once for each).
type recorder struct {
	c    kernels.GemmChoice
	seen *[]kernels.GemmProblem
}

func (r recorder) ChooseGemm(p kernels.GemmProblem, _ func(kernels.GemmChoice) []kernels.Launch) kernels.GemmChoice {
	*r.seen = append(*r.seen, p)
	return r.c
}

// vec4 is whether gemm.cu can read a product's operands (16-byte aligned, as the shim's
// allocations are): the contiguous extents and row lengths multiples of 4.
func vec4(p kernels.GemmProblem) bool {
	if p.LDA%4 != 0 || p.LDB%4 != 0 {
		return false
	}
	switch p.Kind {
	case "nn":
		return p.K%4 == 0 && p.N%4 == 0
	case "tn":
		return p.M%4 == 0 && p.N%4 == 0
	}
	return p.K%4 == 0
}

// gemmShapes (n×in→out of a dense layer: the forward product is n×out×in, dW's in×out×n,
// dX's n×in×out) are ragged against every tile, multiples of 4 where the 16-byte copies
// need it, deep enough in one of the three products to wrap the pipeline's ring of
// stages, and small enough for the shim.
// The fifth has in = 50: its nn and tn products are not for gemm.cu, its nt product (N =
// 50) is, with C's rows not whole 16-byte chunks (the epilogue's scalar path).
var gemmShapes = [][3]int{{44, 196, 72}, {36, 40, 76}, {4, 4, 4}, {40, 96, 1}, {44, 50, 72}}

// wdotSpared reports whether a run of the wdot kernel (one warp per element of C)
// would repeat what the suite covers elsewhere. In the shim each of its five shuffles
// per element is two barriers over 32 real threads, a third to three quarters of the
// candidate tests' time, and it has no tiles, shared memory or cp.async copies: its
// grid-stride loop, ragged K and operand layouts are as well covered on small products
// as on large ones, and its tf32 truncation in TestGemmCandidates. So
// TestGemmCandidates runs it on every shape but the largest (the first, the only one
// run with eager copies too; the others still wrap the grid), and the convolution tests
// in fp32 with copies landing at their wait.
func wdotSpared(c kernels.GemmChoice, tf32, eager bool) bool {
	return c.Config == "wdot" && (tf32 || eager)
}

// gemmDevice is small, so that the candidates include splits of K.
func gemmDevice(tf32 bool) kernels.Target { return kernels.Target{SMs: 6, TF32: tf32} }

// TestGemmCandidates runs every candidate configuration and split of every matrix
// product of a dense layer (forward nn, dW tn, dX nt) against the CPU backend, with
// the shim's cp.async copies landing at their wait (every shape) and at their issue
// (the first).
func TestGemmCandidates(t *testing.T) {
	e := newEnv(t)
	defer SetCopyMode(false)
	for _, eager := range []bool{false, true} {
		SetCopyMode(eager)
		for _, tf32 := range []bool{false, true} {
			for si, s := range gemmShapes {
				if eager && si > 0 {
					break // copies at their issue: the shape that wraps the ring of stages is enough
				}
				n, in, out := s[0], s[1], s[2]
				xv, wv, bv := e.floats(n*in, -1, 1), e.floats(in*out, -0.5, 0.5), e.floats(out, -1, 1)
				dyv := e.floats(n*out, -1, 1)
				X, W, B, DY := e.tensor(n, in, xv), e.tensor(in, out, wv), e.tensor(1, out, bv), e.tensor(n, out, dyv)
				Y := e.tensor(n, out, make([]float32, n*out))
				act := acts[si%len(acts)]
				e.cpu.DenseForward(Y, X, W, B, act)
				DX, DW := e.tensor(n, in, make([]float32, n*in)), e.tensor(in, out, make([]float32, in*out))
				e.cpu.DenseBackward(DX, DW, nil, DY, X, Y, W, backend.Act{})
				wantY, wantDX, wantDW := e.down(Y), e.down(DX), e.down(DW)

				x, w, b, dy := e.mem(xv), e.mem(wv), e.mem(bv), e.mem(dyv)
				d := gemmDevice(tf32)
				problems := map[string]kernels.GemmProblem{
					"nn": {Kind: "nn", M: n, N: out, K: in, LDA: in, LDB: out, TF32: tf32},
					"tn": {Kind: "tn", M: in, N: out, K: n, LDA: in, LDB: out, TF32: tf32},
					"nt": {Kind: "nt", M: n, N: in, K: out, LDA: out, LDB: out, TF32: tf32},
				}
				for _, kind := range []string{"nn", "tn", "nt"} {
					pr := problems[kind]
					pr.Vec4 = vec4(pr)
					problems[kind] = pr
					cands := kernels.GemmCandidates(d, problems[kind])
					if !slices.ContainsFunc(cands, func(c kernels.GemmChoice) bool { return c.Split > 1 }) && problems[kind].K >= 128 {
						t.Errorf("%v: no split among the candidates %v", problems[kind], cands)
					}
					for _, c := range cands {
						if c.Config == "wdot" && si == 0 {
							continue // see wdotSpared
						}
						var seen kernels.GemmProblem
						d.Gemm = forced{c, &seen}
						name := fmt.Sprintf("eager=%v/%v/%v", eager, problems[kind], c)
						switch kind {
						case "nn":
							y := e.poisoned(n * out)
							e.run(kernels.DenseForward(d, y.Addr(), x.Addr(), w.Addr(), b.Addr(), n, in, out, act, e.ws.Addr()))
							backendtest.Near(t, name, y.F32(), wantY, tol(d))
						case "tn":
							dw := e.poisoned(in * out)
							e.run(kernels.DenseBackward(d, 0, dw.Addr(), 0, dy.Addr(), x.Addr(), 0, w.Addr(), n, in, out, backend.Act{}, e.ws.Addr()))
							backendtest.Near(t, name, dw.F32(), wantDW, tol(d))
						case "nt":
							dx := e.poisoned(n * in)
							e.run(kernels.DenseBackward(d, dx.Addr(), 0, 0, dy.Addr(), x.Addr(), 0, w.Addr(), n, in, out, backend.Act{}, e.ws.Addr()))
							backendtest.Near(t, name, dx.F32(), wantDX, tol(d))
						}
						if seen != problems[kind] {
							t.Fatalf("%s: the builder planned %v", name, seen)
						}
						e.countersZero(name)
					}
				}
			}
		}
	}
}

// countersZero checks that the split-K tile counters were left at zero.
func (e *env) countersZero(what string) {
	e.t.Helper()
	off, n := kernels.CounterRegion()
	for i, v := range e.ws.I32()[off/4 : (off+n)/4] {
		if v != 0 {
			e.t.Fatalf("%s: split-K counter %d left at %d", what, i, v)
		}
	}
}

// Every configuration's kernels are in the module, and every gemm kernel of the module
// is a configuration's.
func TestGemmConfigsMatchKernels(t *testing.T) {
	have := map[string]bool{}
	for _, k := range KernelNames() {
		if strings.HasPrefix(k, "gemm_") {
			have[k] = true
		}
	}
	want := 0
	for _, g := range kernels.GemmConfigs() {
		if g.Family == "tiled" {
			continue
		}
		for _, kind := range g.Kinds() {
			var names []string
			switch fam, rest, _ := strings.Cut(g.Name(), "_"); g.Family {
			case "dot", "wdot":
				names = []string{"gemm_" + fam + "_f32_" + kind, "gemm_" + fam + "_tf32_" + kind}
			default:
				names = []string{"gemm_" + fam + "_" + kind + "_" + rest}
				switch kind {
				case "nn": // and with the maxout epilogue, the implicit im2col, and as a transposed convolution
					names = append(names, names[0]+"_mx", names[0]+"_im", names[0]+"_ct")
				case "nt":
					if !g.Swizzle {
						names = append(names, names[0]+"_im", names[0]+"_ct")
					}
				}
				if sb := g.SharedBytes(kind); sb > maxSharedBytes || sb <= 0 {
					t.Errorf("%s %s: %d B of shared memory", g.Name(), kind, sb)
				}
			}
			for _, k := range names {
				if !have[k] {
					t.Errorf("configuration %s: no kernel %s", g.Name(), k)
				}
				want++
			}
		}
	}
	if len(have) != want {
		t.Errorf("%d gemm kernels in the module, %d configured", len(have), want)
	}
}

// The split-K reduction is deterministic: the same bits however often it runs, and the
// same as the unsplit product would give only up to rounding.
func TestGemmSplitDeterministic(t *testing.T) {
	e := newEnv(t)
	n, in, out := 36, 320, 40
	xv, wv := e.floats(n*in, -1, 1), e.floats(in*out, -1, 1)
	x, w := e.mem(xv), e.mem(wv)
	for _, tf32 := range []bool{false, true} {
		d := gemmDevice(tf32)
		c := kernels.DefaultGemm(d, kernels.GemmProblem{Kind: "nn", M: n, N: out, K: in, LDA: in, LDB: out, TF32: tf32, Vec4: true})
		c.Split = 5
		d.Gemm = forced{c: c}
		var first []float32
		for i := 0; i < 3; i++ {
			y := e.poisoned(n * out)
			e.run(kernels.DenseForward(d, y.Addr(), x.Addr(), w.Addr(), 0, n, in, out, backend.Act{}, e.ws.Addr()))
			if first == nil {
				first = slices.Clone(y.F32())
				continue
			}
			backendtest.Bitwise(t, fmt.Sprintf("%v run %d", c, i), y.F32(), first)
		}
	}
}

// The epilogue's scalar path: C at an address that is not 16-byte aligned (a view), with
// and without split, in every configuration of gemm.cu, rows around it untouched.
func TestGemmEpilogueUnaligned(t *testing.T) {
	e := newEnv(t)
	n, in, out := 36, 96, 40
	xv, wv, bv := e.floats(n*in, -1, 1), e.floats(in*out, -0.5, 0.5), e.floats(out, -1, 1)
	x, w, b := e.mem(xv), e.mem(wv), e.mem(bv)
	for _, tf32 := range []bool{false, true} {
		d := gemmDevice(tf32)
		Y := e.tensor(n, out, make([]float32, n*out))
		e.cpu.DenseForward(Y, e.tensor(n, in, xv), e.tensor(in, out, wv), e.tensor(1, out, bv), acts[3])
		want := e.down(Y)
		p := kernels.GemmProblem{Kind: "nn", M: n, N: out, K: in, LDA: in, LDB: out, TF32: tf32, Vec4: true}
		for _, g := range kernels.GemmConfigs() {
			if g.Family != "tc" && g.Family != "simt" || (g.Family == "tc") != tf32 {
				continue
			}
			for _, split := range []int{1, 2} {
				c := kernels.GemmChoice{Config: g.Name(), Split: split}
				var seen kernels.GemmProblem
				d.Gemm = forced{c, &seen}
				y := e.poisoned(n*out + 2) // C starts one float in: 4-byte aligned only
				e.run(kernels.DenseForward(d, y.Addr()+4, x.Addr(), w.Addr(), b.Addr(), n, in, out, acts[3], e.ws.Addr()))
				name := fmt.Sprintf("%v %v", p, c)
				if seen != p {
					t.Fatalf("%s: the builder planned %v", name, seen)
				}
				got := y.F32()
				if !math.IsNaN(float64(got[0])) || !math.IsNaN(float64(got[n*out+1])) {
					t.Fatalf("%s: wrote outside C", name)
				}
				backendtest.Near(t, name, got[1:n*out+1], want, tol(d))
				e.countersZero(name)
			}
		}
	}
}

// maxoutShapes are n×in → units×pieces maxout layers for the fused epilogue: ragged
// against every tile and stride (the strides are multiples of lcm(4, pieces)), over
// several tiles of columns, deep enough for split-K (the last block's sums feed the
// maxout), and small enough for the shim under ThreadSanitizer.
var maxoutShapes = []struct{ n, in, units, pieces int }{
	{37, 52, 24, 5}, {64, 40, 48, 5}, {9, 100, 48, 5}, {33, 20, 14, 2}, {21, 36, 12, 3}, {16, 8, 32, 4},
}

// TestGemmMaxoutEpilogue runs DenseMaxout under every fused candidate: each gives y,
// arg and mask bit for bit as the same configuration and split unfused (the product
// into z, then maxout.cu's kernel, whose product TestGemmCandidates pins to the CPU);
// and y and mask match the CPU backend's DenseForward then MaxoutDropout
// (MaxoutForward without dropout). The fixed table's unfused choice is checked too.
func TestGemmMaxoutEpilogue(t *testing.T) {
	e := newEnv(t)
	for _, tf32 := range []bool{false, true} {
		for _, sh := range maxoutShapes {
			for _, dropout := range []bool{true, false} {
				n, in, units, pieces := sh.n, sh.in, sh.units, sh.pieces
				out := units * pieces
				xv, wv, bv := e.floats(n*in, -1, 1), e.floats(in*out, -0.5, 0.5), e.floats(out, -1, 1)
				X, W, B := e.tensor(n, in, xv), e.tensor(in, out, wv), e.tensor(1, out, bv)
				Z, Y, M := e.tensor(n, out, make([]float32, n*out)), e.tensor(n, units, make([]float32, n*units)), e.tensor(n, units, make([]float32, n*units))
				A := e.tensor(n, units, make([]int32, n*units))
				s := rng.Stream{Seed: uint64(n), Offset: 3}
				e.cpu.DenseForward(Z, X, W, B, backend.Act{})
				if dropout {
					e.cpu.MaxoutDropout(Y, A, M, Z, pieces, 0.5, s)
				} else {
					e.cpu.MaxoutForward(Y, A, Z, pieces)
				}
				wantY, wantM := e.down(Y), e.down(M)

				x, w, b := e.mem(xv), e.mem(wv), e.mem(bv)
				d := gemmDevice(tf32)
				p := kernels.GemmProblem{Kind: "nn", M: n, N: out, K: in, LDA: in, LDB: out, TF32: tf32, Pieces: pieces, Dropout: dropout}
				p.Vec4 = vec4(p)
				type result struct {
					y, mask []float32
					arg     []int32
				}
				run := func(c kernels.GemmChoice) result {
					var seen kernels.GemmProblem
					d.Gemm = forced{c, &seen}
					z, y, arg := e.poisoned(n*out), e.poisoned(n*units), e.poisoned(n*units)
					mask := uint64(0)
					var mk *Mem
					if dropout {
						mk = e.poisoned(n * units)
						mask = mk.Addr()
					}
					e.run(kernels.DenseMaxout(d, y.Addr(), arg.Addr(), mask, z.Addr(), x.Addr(), w.Addr(), b.Addr(), n, in, units, pieces, 0.5, s, e.ws.Addr()))
					if seen != p {
						t.Fatalf("%v: the builder planned %v", p, seen)
					}
					e.countersZero(fmt.Sprint(p, c))
					r := result{y: slices.Clone(y.F32()), arg: slices.Clone(arg.I32())}
					if mk != nil {
						r.mask = slices.Clone(mk.F32())
					}
					return r
				}
				cands := kernels.GemmCandidates(d, p)
				fused := 0
				for _, c := range append(cands, kernels.DefaultGemm(d, p)) {
					if !c.Fused && c != kernels.DefaultGemm(d, p) {
						continue
					}
					name := fmt.Sprintf("%v/%v", p, c)
					got := run(c)
					backendtest.Near(t, name+" y", got.y, wantY, tol(d))
					if dropout {
						backendtest.Bitwise(t, name+" mask", got.mask, wantM)
					}
					if !c.Fused {
						continue
					}
					fused++
					c.Fused = false
					want := run(c)
					backendtest.Bitwise(t, name+" y against unfused", got.y, want.y)
					backendtest.Bitwise(t, name+" arg against unfused", got.arg, want.arg)
					if dropout {
						backendtest.Bitwise(t, name+" mask against unfused", got.mask, want.mask)
					}
				}
				if p.Vec4 && fused == 0 {
					t.Errorf("%v: no fused candidate among %v", p, cands)
				}
			}
		}
	}
}
