// Package backendtest drives two backends side by side in tests: the CPU backend, the
// specification, and a backend under test (the GPU on a device, the GPU backend's
// operations on the kernels' CPU shim). Every kernel-against-CPU test of the project
// uses this one harness: twins of each tensor, poisoned outputs, and comparisons that
// report the worst element.
package backendtest

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/gantrain/gantrain/backend"
)

// Pair is the specification C and the backend under test G, with the random source
// of the inputs.
type Pair struct {
	T    testing.TB
	C, G backend.Backend
	R    *rand.Rand
}

// Twin is one tensor on both backends.
type Twin struct {
	C, G       backend.Tensor
	Rows, Cols int
	DT         backend.DType
}

// Alloc makes a rows×cols tensor on both sides.
func (p *Pair) Alloc(dt backend.DType, rows, cols int) Twin {
	p.T.Helper()
	c, err := p.C.Alloc(dt, rows, cols)
	if err != nil {
		p.T.Fatalf("%s Alloc(%s, %d, %d): %v", p.C.Name(), dt, rows, cols, err)
	}
	g, err := p.G.Alloc(dt, rows, cols)
	if err != nil {
		p.T.Fatalf("%s Alloc(%s, %d, %d): %v", p.G.Name(), dt, rows, cols, err)
	}
	return Twin{C: c, G: g, Rows: rows, Cols: cols, DT: dt}
}

// Set uploads v ([]float32 or []int32) to both sides.
func (p *Pair) Set(x Twin, v any) {
	p.T.Helper()
	if err := p.C.Upload(x.C, v); err != nil {
		p.T.Fatalf("%s Upload: %v", p.C.Name(), err)
	}
	if err := p.G.Upload(x.G, v); err != nil {
		p.T.Fatalf("%s Upload: %v", p.G.Name(), err)
	}
}

// Uniform makes a rows×cols tensor of values uniform in [lo, hi) on both sides.
func (p *Pair) Uniform(rows, cols int, lo, hi float32) Twin {
	p.T.Helper()
	x := p.Alloc(backend.F32, rows, cols)
	p.Set(x, RandSlice(p.R, rows*cols, lo, hi))
	return x
}

// Indices makes a rows×cols int32 tensor of values in [0, n).
func (p *Pair) Indices(rows, cols, n int) Twin {
	p.T.Helper()
	x := p.Alloc(backend.I32, rows, cols)
	v := make([]int32, rows*cols)
	for i := range v {
		v[i] = int32(p.R.IntN(n))
	}
	p.Set(x, v)
	return x
}

// Poison fills each x with NaN (int32: an implausible constant) on both sides, so
// that an element an operation should write and did not shows.
func (p *Pair) Poison(xs ...Twin) {
	p.T.Helper()
	for _, x := range xs {
		if x.DT == backend.I32 {
			v := make([]int32, x.Rows*x.Cols)
			for i := range v {
				v[i] = -0x5a5a5a5b
			}
			p.Set(x, v)
			continue
		}
		p.Set(x, ConstSlice(x.Rows*x.Cols, float32(math.NaN())))
	}
}

// Poisoned makes a rows×cols float32 tensor of NaN on both sides.
func (p *Pair) Poisoned(rows, cols int) Twin {
	p.T.Helper()
	x := p.Alloc(backend.F32, rows, cols)
	p.Poison(x)
	return x
}

// View makes the same view on both sides.
func (p *Pair) View(x Twin, offset, rows, cols int) Twin {
	p.T.Helper()
	c, err := p.C.View(x.C, offset, rows, cols)
	if err != nil {
		p.T.Fatal(err)
	}
	g, err := p.G.View(x.G, offset, rows, cols)
	if err != nil {
		p.T.Fatal(err)
	}
	return Twin{C: c, G: g, Rows: rows, Cols: cols, DT: x.DT}
}

// Both downloads float32 x from both sides.
func (p *Pair) Both(x Twin) (c, g []float32) {
	p.T.Helper()
	return Download(p.T, p.C, x.C), Download(p.T, p.G, x.G)
}

// NoErr fails the test on an error recorded by either backend.
func (p *Pair) NoErr() {
	p.T.Helper()
	if err := p.C.Sync(); err != nil {
		p.T.Fatalf("%s: %v", p.C.Name(), err)
	}
	if err := p.G.Sync(); err != nil {
		p.T.Fatalf("%s: %v", p.G.Name(), err)
	}
}

// Close checks float32 x on both sides within relative error tol (RelErr). It also
// fails on a NaN left on G where C has none: outputs are poisoned first, so that is
// an element the backend under test did not write.
func (p *Pair) Close(name string, x Twin, tol float64) {
	p.T.Helper()
	c, g := p.Both(x)
	if i := FirstNaN(g); i >= 0 && FirstNaN(c) < 0 {
		p.T.Errorf("%s: %s[%d] is NaN (unwritten?), %s %g; %d NaNs in all", name, p.G.Name(), i, p.C.Name(), c[i], CountNaN(g))
		return
	}
	if e := RelErr(g, c); !(e <= tol) {
		i := Worst(g, c)
		p.T.Errorf("%s: relative error %.3g > %.0e (worst element %d: %s %g, %s %g)", name, e, tol, i, p.G.Name(), g[i], p.C.Name(), c[i])
	}
}

// Same checks that x is bit-identical on both sides.
func (p *Pair) Same(name string, x Twin) {
	p.T.Helper()
	if x.DT == backend.I32 {
		Bitwise(p.T, name, DownloadI32(p.T, p.G, x.G), DownloadI32(p.T, p.C, x.C))
		return
	}
	g, c := p.Both(x)
	Bitwise(p.T, name, g, c)
}

// Untouched checks that elements [at, at+n) of x are still NaN on G: an operation
// writing into a view must leave the rest of its allocation alone.
func (p *Pair) Untouched(name string, x Twin, at, n int) {
	p.T.Helper()
	g := Download(p.T, p.G, x.G)
	for i := at; i < at+n; i++ {
		if g[i] == g[i] {
			p.T.Errorf("%s: element %d outside the output was written (%g)", name, i, g[i])
			return
		}
	}
}

// Bitwise checks got against want bit for bit; it reports the first element that
// differs and how many do, and whether none does.
func Bitwise[E float32 | int32](t testing.TB, what string, got, want []E) bool {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d elements, want %d", what, len(got), len(want))
		return false
	}
	g, w := bits(got), bits(want)
	n, first := 0, -1
	for i := range w {
		if g[i] != w[i] {
			if n == 0 {
				first = i
			}
			n++
		}
	}
	if n > 0 {
		_, isF32 := any(want).([]float32)
		show := func(b uint32) string {
			if isF32 {
				return fmt.Sprintf("%g (%08x)", math.Float32frombits(b), b)
			}
			return fmt.Sprint(int32(b))
		}
		t.Errorf("%s[%d] = %s, want %s bit for bit; %d of %d elements differ", what, first, show(g[first]), show(w[first]), n, len(w))
	}
	return n == 0
}

// bits returns the bit patterns of v's elements.
func bits[E float32 | int32](v []E) []uint32 {
	out := make([]uint32, len(v))
	switch s := any(v).(type) {
	case []float32:
		for i, x := range s {
			out[i] = math.Float32bits(x)
		}
	case []int32:
		for i, x := range s {
			out[i] = uint32(x)
		}
	}
	return out
}

// Near checks got against want on the largest element: every element written (NaN
// only where want is NaN, infinities equal) and max |got − want| ≤ tol·max |want|.
// Pair.Close measures the 2-norm instead, the right scale for a matrix product's
// rounding; Near suits elementwise results, where every element must be accurate.
func Near(t testing.TB, what string, got, want []float32, tol float64) bool {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d elements, want %d", what, len(got), len(want))
		return false
	}
	var maxErr, maxWant float64
	worst := 0
	for i := range want {
		g, w := float64(got[i]), float64(want[i])
		if math.IsNaN(w) || math.IsNaN(g) || math.IsInf(w, 0) || math.IsInf(g, 0) {
			if math.IsNaN(w) != math.IsNaN(g) || (!math.IsNaN(w) && g != w) {
				t.Errorf("%s[%d] = %g, want %g", what, i, g, w)
				return false
			}
			continue
		}
		maxWant = max(maxWant, math.Abs(w))
		if d := math.Abs(g - w); d > maxErr {
			maxErr, worst = d, i
		}
	}
	if maxErr > tol*max(maxWant, 1e-30) {
		t.Errorf("%s: relative error %.3g (max |want| %.3g) > %g; worst [%d] = %g, want %g",
			what, maxErr/max(maxWant, 1e-30), maxWant, tol, worst, got[worst], want[worst])
		return false
	}
	return true
}

// Download returns float32 x from b.
func Download(t testing.TB, b backend.Backend, x backend.Tensor) []float32 {
	t.Helper()
	return download[float32](t, b, x)
}

// DownloadI32 returns int32 x from b.
func DownloadI32(t testing.TB, b backend.Backend, x backend.Tensor) []int32 {
	t.Helper()
	return download[int32](t, b, x)
}

func download[E float32 | int32](t testing.TB, b backend.Backend, x backend.Tensor) []E {
	t.Helper()
	v := make([]E, backend.Len(x))
	if err := b.Download(v, x); err != nil {
		t.Fatalf("%s Download: %v", b.Name(), err)
	}
	return v
}

// RandSlice returns n values uniform in [lo, hi).
func RandSlice(r *rand.Rand, n int, lo, hi float32) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = lo + (hi-lo)*r.Float32()
	}
	return v
}

// ConstSlice returns n copies of v.
func ConstSlice(n int, v float32) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = v
	}
	return s
}

// RelErr is ‖got − want‖₂ / ‖want‖₂ (the absolute norm when want is zero), NaN when
// got has a NaN, or an infinity that want does not have at the same element.
func RelErr(got, want []float32) float64 {
	var d, w float64
	for i := range want {
		g, x := float64(got[i]), float64(want[i])
		if math.IsInf(x, 0) || math.IsInf(g, 0) {
			if g != x {
				return math.NaN()
			}
			continue
		}
		d += (g - x) * (g - x)
		w += x * x
	}
	if w == 0 {
		return math.Sqrt(d)
	}
	return math.Sqrt(d / w)
}

// FirstNaN is the index of v's first NaN, or −1.
func FirstNaN(v []float32) int {
	for i, x := range v {
		if x != x {
			return i
		}
	}
	return -1
}

// CountNaN is the number of NaNs in v.
func CountNaN(v []float32) int {
	n := 0
	for _, x := range v {
		if x != x {
			n++
		}
	}
	return n
}

// Worst is the index where got and want differ most (the first NaN, if any).
func Worst(got, want []float32) int {
	at, d := 0, -1.0
	for i := range want {
		if e := math.Abs(float64(got[i]) - float64(want[i])); e > d || e != e {
			at, d = i, e
			if e != e {
				break
			}
		}
	}
	return at
}

// Act64 is activation a in float64, the references' activation.
func Act64(z float64, a backend.Act) float64 {
	switch a.Kind {
	case backend.ReLU:
		return max(z, 0)
	case backend.LeakyReLU:
		if z < 0 {
			return float64(a.Alpha) * z
		}
		return z
	case backend.Sigmoid:
		return 1 / (1 + math.Exp(-z))
	case backend.Tanh:
		return math.Tanh(z)
	}
	return z
}
