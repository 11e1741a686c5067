//go:build cgo

package shimtest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"testing"

	"github.com/gantrain/gantrain/backend"
	"github.com/gantrain/gantrain/backend/backendtest"
	"github.com/gantrain/gantrain/cpu"
	"github.com/gantrain/gantrain/kernels"
	"github.com/gantrain/gantrain/rng"
)

const (
	tolF32  = 1e-5 // relative error (max |got−want| / max |want|) of fp32 kernels
	tolTF32 = 3e-3 // of the tf32 tensor-core path
)

// devices are the plans every op is tested under: an H100-sized one (split-K and row
// splits kick in for small shapes), an unknown device (no splits), and tf32.
var devices = []kernels.Target{{SMs: 132}, {SMs: 0}, {SMs: 132, TF32: true}}

// env holds the CPU backend (the specification) and the shim's workspace.
type env struct {
	t   *testing.T
	cpu *cpu.Backend
	ws  *Mem
	rnd *rand.Rand
}

func newEnv(t *testing.T) *env {
	t.Helper()
	// One OS thread for the test's C calls: ThreadSanitizer (scripts/shim-tsan.sh) sees
	// the order of an allocation and a launch on one thread, not through Go's scheduler.
	runtime.LockOSThread()
	t.Cleanup(runtime.UnlockOSThread)
	b, err := cpu.New(cpu.Options{BLAS: "go"})
	if err != nil {
		t.Fatal(err)
	}
	ws := Alloc(kernels.WorkspaceBytes(kernels.Target{}) / 4)
	t.Cleanup(ws.Free)
	return &env{t: t, cpu: b, ws: ws, rnd: rand.New(rand.NewPCG(1, 2))}
}

// floats returns n values uniform in [lo, hi).
func (e *env) floats(n int, lo, hi float32) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = lo + (hi-lo)*e.rnd.Float32()
	}
	return v
}

// mem copies vals into shim memory; poisoned returns n NaN words.
func (e *env) mem(vals []float32) *Mem {
	m := Alloc(len(vals))
	copy(m.F32(), vals)
	e.t.Cleanup(m.Free)
	return m
}

func (e *env) imem(vals []int32) *Mem {
	m := Alloc(len(vals))
	copy(m.I32(), vals)
	e.t.Cleanup(m.Free)
	return m
}

func (e *env) poisoned(n int) *Mem {
	m := Alloc(n)
	for i := range m.F32() {
		m.F32()[i] = float32(math.NaN())
	}
	e.t.Cleanup(m.Free)
	return m
}

// run executes a launch list on the shim after poisoning the workspace's first 4 MiB
// (a partial read before it was written shows up as NaN).
func (e *env) run(ls []kernels.Launch) {
	e.t.Helper()
	ws := e.ws.I32()[:1<<20]
	for i := range ws {
		ws[i] = -1 // 0xffffffff: NaN as float32, and a NaN pair as float64
	}
	if err := Run(ls); err != nil {
		e.t.Fatal(err)
	}
}

// tensor makes a CPU tensor holding vals (float32 or int32).
func (e *env) tensor(rows, cols int, vals any) backend.Tensor {
	e.t.Helper()
	dt := backend.F32
	if _, ok := vals.([]int32); ok {
		dt = backend.I32
	}
	x, err := e.cpu.Alloc(dt, rows, cols)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.cpu.Upload(x, vals); err != nil {
		e.t.Fatal(err)
	}
	return x
}

func (e *env) down(x backend.Tensor) []float32 {
	e.t.Helper()
	if err := e.cpu.Sync(); err != nil {
		e.t.Fatal(err)
	}
	v := make([]float32, backend.Len(x))
	if err := e.cpu.Download(v, x); err != nil {
		e.t.Fatal(err)
	}
	return v
}

func (e *env) downI(x backend.Tensor) []int32 {
	e.t.Helper()
	v := make([]int32, backend.Len(x))
	if err := e.cpu.Download(v, x); err != nil {
		e.t.Fatal(err)
	}
	return v
}

func tol(d kernels.Target) float64 {
	if d.TF32 {
		return tolTF32
	}
	return tolF32
}

var acts = []backend.Act{
	{Kind: backend.Identity}, {Kind: backend.ReLU}, {Kind: backend.LeakyReLU, Alpha: 0.2},
	{Kind: backend.Sigmoid}, {Kind: backend.Tanh},
}

// actsFor is the activations a dense shape is tested with: all of them on the first
// shape, one each (in turn) on the others, to keep the shim tests fast.
func actsFor(s [3]int) []backend.Act {
	if s == denseShapes[0] {
		return acts
	}
	return acts[(s[0]+s[1]+s[2])%len(acts) : (s[0]+s[1]+s[2])%len(acts)+1]
}

// outputsFor is which of dx, dw, db DenseBackward computes: all three, and on the first
// shape with the identity the partial sets too.
func outputsFor(s [3]int, act int) []struct{ dx, dw, db bool } {
	if s == denseShapes[0] && act == 0 {
		return []struct{ dx, dw, db bool }{{true, true, true}, {false, true, true}, {true, false, false}, {false, false, true}}
	}
	return []struct{ dx, dw, db bool }{{true, true, true}}
}

// Shapes n×in→out: ragged (no multiple of any tile), a single row, and ones that
// make the H100 plan split K (forward: large in; dx: large out) and the rows of db.
var denseShapes = [][3]int{{37, 53, 29}, {1, 7, 3}, {5, 300, 70}, {70, 33, 150}, {130, 20, 9}}

func TestDenseForward(t *testing.T) {
	e := newEnv(t)
	for _, d := range devices {
		for _, s := range denseShapes {
			n, in, out := s[0], s[1], s[2]
			xv, wv, bv := e.floats(n*in, -1, 1), e.floats(in*out, -0.5, 0.5), e.floats(out, -1, 1)
			for _, act := range actsFor(s) {
				name := fmt.Sprintf("%+v/%dx%dx%d/%v", d, n, in, out, act.Kind)
				x, w, b := e.mem(xv), e.mem(wv), e.mem(bv)
				y := e.poisoned(n * out)
				e.run(kernels.DenseForward(d, y.Addr(), x.Addr(), w.Addr(), b.Addr(), n, in, out, act, e.ws.Addr()))
				Y := e.tensor(n, out, make([]float32, n*out))
				e.cpu.DenseForward(Y, e.tensor(n, in, xv), e.tensor(in, out, wv), e.tensor(1, out, bv), act)
				backendtest.Near(t, name+" y", y.F32(), e.down(Y), tol(d))
			}
		}
	}
}

func TestDenseBackward(t *testing.T) {
	e := newEnv(t)
	for _, d := range devices {
		for _, s := range denseShapes {
			n, in, out := s[0], s[1], s[2]
			xv, wv := e.floats(n*in, -1, 1), e.floats(in*out, -0.5, 0.5)
			dyv := e.floats(n*out, -1, 1)
			for ai, act := range actsFor(s) {
				// y as the forward pass would leave it.
				Y := e.tensor(n, out, make([]float32, n*out))
				e.cpu.DenseForward(Y, e.tensor(n, in, xv), e.tensor(in, out, wv), e.tensor(1, out, e.floats(out, -1, 1)), act)
				yv := e.down(Y)
				for _, want := range outputsFor(s, ai) {
					name := fmt.Sprintf("%+v/%dx%dx%d/%v/%+v", d, n, in, out, act.Kind, want)
					x, w, y, dy := e.mem(xv), e.mem(wv), e.mem(yv), e.mem(dyv)
					var dx, dw, db *Mem
					addr := func(m **Mem, on bool, words int) uint64 {
						if !on {
							return 0
						}
						*m = e.poisoned(words)
						return (*m).Addr()
					}
					e.run(kernels.DenseBackward(d, addr(&dx, want.dx, n*in), addr(&dw, want.dw, in*out), addr(&db, want.db, out),
						dy.Addr(), x.Addr(), y.Addr(), w.Addr(), n, in, out, act, e.ws.Addr()))
					DY, DX, DW, DB := e.tensor(n, out, dyv), e.tensor(n, in, make([]float32, n*in)),
						e.tensor(in, out, make([]float32, in*out)), e.tensor(1, out, make([]float32, out))
					opt := func(on bool, t backend.Tensor) backend.Tensor {
						if on {
							return t
						}
						return nil
					}
					e.cpu.DenseBackward(opt(want.dx, DX), opt(want.dw, DW), opt(want.db, DB), DY,
						e.tensor(n, in, xv), Y, e.tensor(in, out, wv), act)
					backendtest.Bitwise(t, name+" dZ", dy.F32(), e.down(DY)) // the same float32 operations
					if want.dx {
						backendtest.Near(t, name+" dx", dx.F32(), e.down(DX), tol(d))
					}
					if want.dw {
						backendtest.Near(t, name+" dw", dw.F32(), e.down(DW), tol(d))
					}
					if want.db {
						backendtest.Near(t, name+" db", db.F32(), e.down(DB), tolF32)
					}
				}
			}
		}
	}
}

func TestMaxout(t *testing.T) {
	e := newEnv(t)
	for _, s := range [][2]int{{37, 29}, {1, 1}, {3, 300}} {
		for pieces := 2; pieces <= 5; pieces++ {
			n, units := s[0], s[1]
			zv := e.floats(n*units*pieces, -2, 2)
			for i := range zv { // coarse values: ties, which the first piece must win
				zv[i] = float32(math.Round(float64(zv[i]) * 2))
			}
			d := devices[0]
			name := fmt.Sprintf("%dx%d/%d pieces", n, units, pieces)
			z, y, arg := e.mem(zv), e.poisoned(n*units), e.poisoned(n*units)
			e.run(kernels.MaxoutForward(d, y.Addr(), arg.Addr(), z.Addr(), n*units, pieces))
			Y, A := e.tensor(n, units, make([]float32, n*units)), e.tensor(n, units, make([]int32, n*units))
			e.cpu.MaxoutForward(Y, A, e.tensor(n, units*pieces, zv), pieces)
			backendtest.Bitwise(t, name+" y", y.F32(), e.down(Y))
			if !slices.Equal(arg.I32(), e.downI(A)) {
				t.Fatalf("%s: arg = %v, want %v", name, arg.I32(), e.downI(A))
			}
			dyv := e.floats(n*units, -1, 1)
			dy, dz := e.mem(dyv), e.poisoned(n*units*pieces)
			e.run(kernels.MaxoutBackward(d, dz.Addr(), dy.Addr(), arg.Addr(), n*units, pieces))
			DZ := e.tensor(n, units*pieces, make([]float32, n*units*pieces))
			e.cpu.MaxoutBackward(DZ, e.tensor(n, units, dyv), A, pieces)
			backendtest.Bitwise(t, name+" dz", dz.F32(), e.down(DZ))
		}
	}
}

var streams = []rng.Stream{{Seed: 42, Offset: 3}, {Seed: 0x0123456789abcdef, Offset: 0xfedcba9876543210}}

// The fused maxout and dropout kernels against the CPU's fused ops, which cpu's tests
// pin to MaxoutForward then Dropout, and Mul then MaxoutBackward.
func TestMaxoutDropout(t *testing.T) {
	e := newEnv(t)
	d := devices[0]
	for _, s := range [][3]int{{37, 29, 5}, {1, 1, 2}, {3, 301, 3}} {
		for _, keep := range []float32{0.5, 1} {
			n, units, pieces := s[0], s[1], s[2]
			st := streams[(n+units)%len(streams)]
			name := fmt.Sprintf("%dx%d/%d pieces keep=%g", n, units, pieces, keep)
			zv := e.floats(n*units*pieces, -2, 2)
			for i := range zv { // ties, which the first piece must win
				zv[i] = float32(math.Round(float64(zv[i]) * 2))
			}
			z, y, arg, mask := e.mem(zv), e.poisoned(n*units), e.poisoned(n*units), e.poisoned(n*units)
			e.run(kernels.MaxoutDropout(d, y.Addr(), arg.Addr(), mask.Addr(), z.Addr(), n*units, pieces, keep, st))
			Y, A, M := e.tensor(n, units, make([]float32, n*units)), e.tensor(n, units, make([]int32, n*units)),
				e.tensor(n, units, make([]float32, n*units))
			e.cpu.MaxoutDropout(Y, A, M, e.tensor(n, units*pieces, zv), pieces, keep, st)
			backendtest.Bitwise(t, name+" y", y.F32(), e.down(Y))
			backendtest.Bitwise(t, name+" mask", mask.F32(), e.down(M))
			if !slices.Equal(arg.I32(), e.downI(A)) {
				t.Fatalf("%s: arg = %v, want %v", name, arg.I32(), e.downI(A))
			}
			dyv := e.floats(n*units, -1, 1)
			dy, dz := e.mem(dyv), e.poisoned(n*units*pieces)
			e.run(kernels.MaxoutDropoutBackward(d, dz.Addr(), dy.Addr(), mask.Addr(), arg.Addr(), n*units, pieces))
			DZ := e.tensor(n, units*pieces, make([]float32, n*units*pieces))
			e.cpu.MaxoutDropoutBackward(DZ, e.tensor(n, units, dyv), M, A, pieces)
			backendtest.Bitwise(t, name+" dz", dz.F32(), e.down(DZ))
		}
	}
}

func TestDropout(t *testing.T) {
	e := newEnv(t)
	for _, n := range []int{1, 7, 1001} {
		for _, keep := range []float32{0.5, 0.8, 1} {
			for _, s := range streams {
				for _, alias := range []bool{false, true} {
					name := fmt.Sprintf("n=%d keep=%g %+v alias=%v", n, keep, s, alias)
					xv := e.floats(n, -1, 1)
					x, mask := e.mem(xv), e.poisoned(n)
					y := e.poisoned(n)
					if alias {
						y = x
					}
					e.run(kernels.Dropout(devices[0], y.Addr(), mask.Addr(), x.Addr(), n, keep, s))
					Y, M := e.tensor(1, n, make([]float32, n)), e.tensor(1, n, make([]float32, n))
					e.cpu.Dropout(Y, M, e.tensor(1, n, xv), keep, s)
					backendtest.Bitwise(t, name+" mask", mask.F32(), e.down(M))
					backendtest.Bitwise(t, name+" y", y.F32(), e.down(Y))
				}
			}
		}
	}
}

func TestNoise(t *testing.T) {
	e := newEnv(t)
	for _, n := range []int{1, 2, 3, 7, 1025} {
		for _, s := range streams {
			for _, r := range [][2]float32{{-1, 1}, {0, 1}, {2, 3}, {-float32(math.Sqrt(3)), float32(math.Sqrt(3))}} {
				name := fmt.Sprintf("uniform n=%d %+v [%g,%g)", n, s, r[0], r[1])
				u := e.poisoned(n)
				e.run(kernels.Uniform(devices[0], u.Addr(), n, r[0], r[1], s))
				U := e.tensor(1, n, make([]float32, n))
				e.cpu.Uniform(U, r[0], r[1], s)
				backendtest.Bitwise(t, name, u.F32(), e.down(U))
				name = fmt.Sprintf("normal n=%d %+v mean %g std %g", n, s, r[0], r[1])
				z := e.poisoned(n)
				e.run(kernels.Normal(devices[0], z.Addr(), n, r[0], r[1], s))
				Z := e.tensor(1, n, make([]float32, n))
				e.cpu.Normal(Z, r[0], r[1], s)
				backendtest.Bitwise(t, name, z.F32(), e.down(Z))
			}
		}
	}
}

// The ports of math.Log and math.Cos in philox.cuh agree with Go on every input that
// rng.ToNormal can give them (2^24 each), so normal_fill matches NormalAt bit for bit.
func TestGoMathPortsExhaustive(t *testing.T) {
	const chunk = 1 << 20
	xs := make([]float64, chunk)
	for lo := 0; lo < 1<<24; lo += chunk {
		for i := range xs {
			xs[i] = (float64(lo+i) + 1) * (1.0 / 16777216.0)
		}
		for i, y := range GoLog(xs) {
			if want := math.Log(xs[i]); math.Float64bits(y) != math.Float64bits(want) {
				t.Fatalf("gt_go_log(%v) = %v, want %v", xs[i], y, want)
			}
		}
		for i := range xs {
			xs[i] = 2 * math.Pi * (float64(lo+i) * (1.0 / 16777216.0))
		}
		for i, y := range GoCos(xs) {
			if want := math.Cos(xs[i]); math.Float64bits(y) != math.Float64bits(want) {
				t.Fatalf("gt_go_cos(%v) = %v, want %v", xs[i], y, want)
			}
		}
	}
}

func TestTF32Truncation(t *testing.T) {
	for _, c := range []struct{ in, want uint32 }{
		{0x3f800000, 0x3f800000}, // 1
		{0x3f801fff, 0x3f800000}, // the low 13 bits dropped, not rounded
		{0xbf801fff, 0xbf800000}, // toward zero for negatives too
		{0x3f803000, 0x3f802000}, // the 10 mantissa bits kept
		{0x7f7fffff, 0x7f7fe000}, // the largest float stays finite
		{0x7f800000, 0x7f800000}, // +Inf
		{0x7fffffff, 0x7fffe000}, // the device's NaN stays a NaN
		{0x00001fff, 0x00000000}, // a subnormal below tf32's resolution: +0
	} {
		if got := math.Float32bits(ToTF32(math.Float32frombits(c.in))); got != c.want {
			t.Errorf("gt_to_tf32(%08x) = %08x, want %08x", c.in, got, c.want)
		}
	}
}

func TestMulFillCopy(t *testing.T) {
	e := newEnv(t)
	d := devices[0]
	for _, n := range []int{1, 33, 3000} {
		av, bv := e.floats(n, -2, 2), e.floats(n, -2, 2)
		for _, alias := range []bool{false, true} {
			a, b, y := e.mem(av), e.mem(bv), e.poisoned(n)
			if alias {
				y = a
			}
			e.run(kernels.Mul(d, y.Addr(), a.Addr(), b.Addr(), n))
			Y := e.tensor(1, n, make([]float32, n))
			e.cpu.Mul(Y, e.tensor(1, n, av), e.tensor(1, n, bv))
			backendtest.Bitwise(t, fmt.Sprintf("mul n=%d alias=%v", n, alias), y.F32(), e.down(Y))
		}
		f := e.poisoned(n)
		e.run(kernels.Fill(d, f.Addr(), n, 0.25))
		for i, v := range f.F32() {
			if v != 0.25 {
				t.Fatalf("fill n=%d: [%d] = %g", n, i, v)
			}
		}
		src := e.imem(func() []int32 {
			v := make([]int32, n)
			for i := range v {
				v[i] = int32(e.rnd.Uint32()) // NaN payloads included: copied bit for bit
			}
			return v
		}())
		dst := e.poisoned(n)
		e.run(kernels.Copy(d, dst.Addr(), src.Addr(), n))
		if !slices.Equal(dst.I32(), src.I32()) {
			t.Fatalf("copy n=%d differs", n)
		}
	}
}

func TestSigmoidLosses(t *testing.T) {
	e := newEnv(t)
	for _, d := range devices[:2] {
		for _, n := range []int{1, 37, 2000} {
			lv := e.floats(n, -30, 30)
			tv := e.floats(n, 0, 1)
			for i := 0; i < n; i += 3 {
				tv[i] = float32(i / 3 % 2)
			}
			for _, grad := range []bool{true, false} {
				name := fmt.Sprintf("%+v n=%d grad=%v", d, n, grad)
				l, tg, out := e.mem(lv), e.mem(tv), e.poisoned(4)
				var dl *Mem
				var dla uint64
				if grad {
					dl = e.poisoned(n)
					dla = dl.Addr()
				}
				scale := float32(-1) / float32(n)
				e.run(kernels.SigmoidCrossEntropy(d, dla, l.Addr(), tg.Addr(), n, scale, out.Addr(), 2, e.ws.Addr()))
				e.run(kernels.MeanSigmoid(d, l.Addr(), n, out.Addr(), 1, e.ws.Addr()))
				L, T, O := e.tensor(n, 1, lv), e.tensor(n, 1, tv), e.tensor(1, 4, make([]float32, 4))
				DL := e.tensor(n, 1, make([]float32, n))
				if grad {
					e.cpu.SigmoidCrossEntropy(DL, L, T, scale, O, 2)
				} else {
					e.cpu.SigmoidCrossEntropy(nil, L, T, scale, O, 2)
				}
				e.cpu.MeanSigmoid(L, O, 1)
				o := e.down(O)
				backendtest.Near(t, name+" loss", out.F32()[2:3], o[2:3], tolF32)
				backendtest.Near(t, name+" mean σ", out.F32()[1:2], o[1:2], tolF32)
				if !math.IsNaN(float64(out.F32()[0])) || !math.IsNaN(float64(out.F32()[3])) {
					t.Fatalf("%s: wrote outside its slots: %v", name, out.F32())
				}
				if grad {
					backendtest.Near(t, name+" dlogits", dl.F32(), e.down(DL), tolF32)
				}
			}
		}
	}
}

func TestSoftmaxCrossEntropy(t *testing.T) {
	e := newEnv(t)
	for _, d := range devices[:2] {
		for _, s := range [][2]int{{1, 1}, {37, 10}, {9, 37}, {70, 40}} {
			n, c := s[0], s[1]
			lv := e.floats(n*c, -20, 20)
			labels := make([]int32, n)
			for i := range labels {
				labels[i] = int32(e.rnd.IntN(c))
			}
			for _, grad := range []bool{true, false} {
				name := fmt.Sprintf("%+v %dx%d grad=%v", d, n, c, grad)
				l, y, out := e.mem(lv), e.imem(labels), e.poisoned(2)
				var dl *Mem
				var dla uint64
				if grad {
					dl = e.poisoned(n * c)
					dla = dl.Addr()
				}
				scale := 1 / float32(n)
				e.run(kernels.SoftmaxCrossEntropy(d, dla, l.Addr(), y.Addr(), n, c, scale, out.Addr(), 1, e.ws.Addr()))
				L, O, DL := e.tensor(n, c, lv), e.tensor(1, 2, make([]float32, 2)), e.tensor(n, c, make([]float32, n*c))
				if grad {
					e.cpu.SoftmaxCrossEntropy(DL, L, e.tensor(n, 1, labels), scale, O, 1)
					backendtest.Near(t, name+" dlogits", dl.F32(), e.down(DL), tolF32)
				} else {
					e.cpu.SoftmaxCrossEntropy(nil, L, e.tensor(n, 1, labels), scale, O, 1)
				}
				backendtest.Near(t, name+" loss", out.F32()[1:], e.down(O)[1:], tolF32)
			}
		}
	}
	// A label out of range: NaN loss and a NaN dlogits row, the other rows intact.
	n, c := 5, 4
	lv := e.floats(n*c, -1, 1)
	l, y, out, dl := e.mem(lv), e.imem([]int32{0, 3, 4, 1, 2}), e.poisoned(1), e.poisoned(n*c)
	e.run(kernels.SoftmaxCrossEntropy(devices[0], dl.Addr(), l.Addr(), y.Addr(), n, c, 1, out.Addr(), 0, e.ws.Addr()))
	if !math.IsNaN(float64(out.F32()[0])) {
		t.Errorf("bad label: loss %g, want NaN", out.F32()[0])
	}
	for i, v := range dl.F32() {
		if math.IsNaN(float64(v)) != (i/c == 2) {
			t.Errorf("bad label in row 2: dlogits[%d] = %g", i, v)
		}
	}
}

func TestLogSumExpRows(t *testing.T) {
	e := newEnv(t)
	for _, s := range [][2]int{{1, 1}, {37, 10}, {9, 100}, {300, 3}} {
		n, m := s[0], s[1]
		xv := e.floats(n*m, -50, 50)
		for j := 0; j < m; j++ { // row 0 all −Inf
			xv[j] = float32(math.Inf(-1))
		}
		if n > 1 {
			xv[m] = float32(math.Inf(-1)) // one −Inf in row 1
		}
		x, out := e.mem(xv), e.poisoned(n)
		e.run(kernels.LogSumExpRows(devices[0], out.Addr(), x.Addr(), n, m))
		O := e.tensor(n, 1, make([]float32, n))
		e.cpu.LogSumExpRows(O, e.tensor(n, m, xv))
		backendtest.Near(t, fmt.Sprintf("lse %dx%d", n, m), out.F32(), e.down(O), tolF32)
	}
}

func TestOptimizers(t *testing.T) {
	e := newEnv(t)
	d := devices[0]
	for _, n := range []int{1, 37, 10000} {
		pv, gv, vv, mv := e.floats(n, -1, 1), e.floats(n, -1, 1), e.floats(n, -0.1, 0.1), e.floats(n, -0.1, 0.1)
		p, g, v := e.mem(pv), e.mem(gv), e.mem(vv)
		e.run(kernels.SGDMomentum(d, p.Addr(), g.Addr(), v.Addr(), n, 0.1, 0.5))
		P, V := e.tensor(1, n, pv), e.tensor(1, n, vv)
		e.cpu.SGDMomentum(P, e.tensor(1, n, gv), V, 0.1, 0.5)
		backendtest.Bitwise(t, fmt.Sprintf("sgd n=%d p", n), p.F32(), e.down(P))
		backendtest.Bitwise(t, fmt.Sprintf("sgd n=%d v", n), v.F32(), e.down(V))
		for _, step := range []int{1, 2, 1000} {
			v2 := make([]float32, n)
			for i := range v2 {
				v2[i] = vv[i] * vv[i]
			}
			p, g, m, v := e.mem(pv), e.mem(gv), e.mem(mv), e.mem(v2)
			e.run(kernels.Adam(d, p.Addr(), g.Addr(), m.Addr(), v.Addr(), n, 1e-3, 0.9, 0.999, 1e-8, step))
			P, M, V := e.tensor(1, n, pv), e.tensor(1, n, mv), e.tensor(1, n, v2)
			e.cpu.Adam(P, e.tensor(1, n, gv), M, V, 1e-3, 0.9, 0.999, 1e-8, step)
			name := fmt.Sprintf("adam n=%d t=%d", n, step)
			backendtest.Bitwise(t, name+" p", p.F32(), e.down(P))
			backendtest.Bitwise(t, name+" m", m.F32(), e.down(M))
			backendtest.Bitwise(t, name+" v", v.F32(), e.down(V))
		}
	}
}

func TestClipColumnNorms(t *testing.T) {
	e := newEnv(t)
	for _, d := range devices[:2] {
		for _, s := range [][2]int{{1, 1}, {53, 29}, {300, 40}, {7, 70}} {
			rows, cols := s[0], s[1]
			wv := e.floats(rows*cols, -1, 1)
			for c := 0; c < cols; c += 2 { // every other column well inside the limit
				for r := 0; r < rows; r++ {
					wv[r*cols+c] *= 0.01
				}
			}
			maxNorm := float32(0.5 * math.Sqrt(float64(rows)/3))
			w := e.mem(wv)
			e.run(kernels.ClipColumnNorms(d, w.Addr(), rows, cols, maxNorm, e.ws.Addr()))
			W := e.tensor(rows, cols, wv)
			e.cpu.ClipColumnNorms(W, maxNorm)
			backendtest.Near(t, fmt.Sprintf("%+v clip %dx%d", d, rows, cols), w.F32(), e.down(W), tolF32)
		}
	}
}

func TestGatherRows(t *testing.T) {
	e := newEnv(t)
	srcRows, cols, rows, offset := 50, 13, 17, 5
	sv := e.floats(srcRows*cols, -1, 1)
	idx := make([]int32, offset+rows+3)
	for i := range idx {
		idx[i] = int32(e.rnd.IntN(srcRows))
	}
	src, ix, dst := e.mem(sv), e.imem(idx), e.poisoned(rows*cols)
	e.run(kernels.GatherRows(devices[0], dst.Addr(), src.Addr(), ix.Addr(), rows, cols, srcRows, offset))
	D := e.tensor(rows, cols, make([]float32, rows*cols))
	e.cpu.GatherRows(D, e.tensor(srcRows, cols, sv), e.tensor(1, len(idx), idx), offset)
	backendtest.Bitwise(t, "gather", dst.F32(), e.down(D))
	// Out-of-range indices: NaN rows, nothing read out of bounds.
	ix.I32()[offset+1], ix.I32()[offset+4] = -1, int32(srcRows)
	e.run(kernels.GatherRows(devices[0], dst.Addr(), src.Addr(), ix.Addr(), rows, cols, srcRows, offset))
	for i, v := range dst.F32() {
		r := i / cols
		if math.IsNaN(float64(v)) != (r == 1 || r == 4) {
			t.Fatalf("bad index: dst[%d][%d] = %g", r, i%cols, v)
		}
	}
}

// Every kernel in the PTX modules is in the shim, and the shim was built from the
// kernel sources on disk (srchash.h, written by go generate).
func TestKernelsMatchPTX(t *testing.T) {
	entry := regexp.MustCompile(`(?m)^\.visible \.entry (\w+)\(`)
	shim := KernelNames()
	slices.Sort(shim)
	for _, cc := range [][2]int{{8, 0}, {8, 6}, {9, 0}, {10, 0}} {
		ptx, err := kernels.PTX(cc[0], cc[1])
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, m := range entry.FindAllStringSubmatch(ptx, -1) {
			names = append(names, m[1])
		}
		slices.Sort(names)
		if !slices.Equal(names, shim) {
			t.Errorf("PTX for %d.%d has kernels %v, the shim %v", cc[0], cc[1], names, shim)
		}
	}
	if _, err := kernels.PTX(7, 5); err == nil {
		t.Error("PTX(7, 5) gave no error")
	}
}

func TestShimBuiltFromSources(t *testing.T) {
	h := sha256.New()
	for _, pat := range []string{"../*.cu", "../*.cuh", "../shim/*.h"} {
		files, err := filepath.Glob(pat)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files { // Glob sorts, as LC_ALL=C sh does
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			h.Write(b)
		}
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != SourcesSHA256() {
		t.Fatalf("kernel sources hash %s, the shim was built from %s: run `go generate ./kernels`", got, SourcesSHA256())
	}
}
