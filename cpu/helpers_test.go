package cpu_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/gantrain/gantrain/backend"
	"github.com/gantrain/gantrain/backend/backendtest"
	"github.com/gantrain/gantrain/cpu"
)

// blasNames are the matrix-multiply libraries every BLAS-dependent test runs under
// (those that are not installed are skipped).
var blasNames = []string{"go", "openblas", "blis", "mkl"}

// newBackend returns a CPU backend using the named BLAS, skipping the test when a
// library does not load. The backend closes with the test.
func newBackend(t *testing.T, blas string) *cpu.Backend {
	t.Helper()
	b, err := cpu.New(cpu.Options{BLAS: blas})
	if err != nil {
		if blas != "go" {
			t.Logf("%s variant not tested: %v", blas, err)
			t.SkipNow()
		}
		t.Fatalf("cpu.New(%q): %v", blas, err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// eachBLAS runs f as one subtest per BLAS library.
func eachBLAS(t *testing.T, f func(t *testing.T, blas string)) {
	t.Helper()
	for _, name := range blasNames {
		t.Run(name, func(t *testing.T) { f(t, name) })
	}
}

// acts are the activations of the backend contract, LeakyReLU with slope 0.2.
var acts = []backend.Act{
	{Kind: backend.Identity},
	{Kind: backend.ReLU},
	{Kind: backend.LeakyReLU, Alpha: 0.2},
	{Kind: backend.Sigmoid},
	{Kind: backend.Tanh},
}

func alloc(t *testing.T, b backend.Backend, dt backend.DType, rows, cols int) backend.Tensor {
	t.Helper()
	x, err := b.Alloc(dt, rows, cols)
	if err != nil {
		t.Fatalf("Alloc(%s, %d, %d): %v", dt, rows, cols, err)
	}
	return x
}

// tensorOf allocates a rows×cols float32 tensor holding v.
func tensorOf(t *testing.T, b backend.Backend, rows, cols int, v []float32) backend.Tensor {
	t.Helper()
	x := alloc(t, b, backend.F32, rows, cols)
	if err := b.Upload(x, v); err != nil {
		t.Fatalf("Upload: %v", err)
	}
	return x
}

// indexTensorOf allocates a rows×cols int32 tensor holding v.
func indexTensorOf(t *testing.T, b backend.Backend, rows, cols int, v []int32) backend.Tensor {
	t.Helper()
	x := alloc(t, b, backend.I32, rows, cols)
	if err := b.Upload(x, v); err != nil {
		t.Fatalf("Upload: %v", err)
	}
	return x
}

// filled allocates a rows×cols float32 tensor with every element v.
func filled(t *testing.T, b backend.Backend, rows, cols int, v float32) backend.Tensor {
	t.Helper()
	return tensorOf(t, b, rows, cols, backendtest.ConstSlice(rows*cols, v))
}

// uniform returns n float32 values drawn uniformly from [lo, hi).
func uniform(r *rand.Rand, n int, lo, hi float64) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(lo + (hi-lo)*r.Float64())
	}
	return s
}

func to64(s []float32) []float64 {
	d := make([]float64, len(s))
	for i, v := range s {
		d[i] = float64(v)
	}
	return d
}

func maxAbs(s []float64) float64 {
	m := 0.0
	for _, v := range s {
		m = max(m, math.Abs(v))
	}
	return m
}

func sigmoid64(z float64) float64 { return 1 / (1 + math.Exp(-z)) }

// dense64 computes z = x·w + b and y = act(z) in float64 (x n×in, w in×out, b out).
func dense64(x, w, b []float64, n, in, out int, a backend.Act) (z, y []float64) {
	z = make([]float64, n*out)
	y = make([]float64, n*out)
	for r := 0; r < n; r++ {
		for j := 0; j < out; j++ {
			s := b[j]
			for k := 0; k < in; k++ {
				s += x[r*in+k] * w[k*out+j]
			}
			z[r*out+j] = s
			y[r*out+j] = backendtest.Act64(s, a)
		}
	}
	return z, y
}

// denseMag is Σ_k |x_rk·w_kj| + |b_j|, the scale of the rounding error of z_rj.
func denseMag(x, w, b []float64, n, in, out int) []float64 {
	m := make([]float64, n*out)
	for r := 0; r < n; r++ {
		for j := 0; j < out; j++ {
			s := math.Abs(b[j])
			for k := 0; k < in; k++ {
				s += math.Abs(x[r*in+k] * w[k*out+j])
			}
			m[r*out+j] = s
		}
	}
	return m
}

// dot64 is Σ c_i·y_i.
func dot64(c, y []float64) float64 {
	s := 0.0
	for i := range c {
		s += c[i] * y[i]
	}
	return s
}

// centralDiff estimates ∂f/∂v_i for every i by central differences, restoring v.
func centralDiff(v []float64, f func() float64) []float64 {
	g := make([]float64, len(v))
	for i := range v {
		v0 := v[i]
		h := 1e-6 * max(1, math.Abs(v0))
		v[i] = v0 + h
		fp := f()
		v[i] = v0 - h
		fm := f()
		v[i] = v0
		g[i] = (fp - fm) / (2 * h)
	}
	return g
}

// checkGrad compares a float32 gradient with a float64 reference: every element must
// be within rtol of the reference, relative to the element or, for elements much
// smaller than the largest, to a tenth of the largest.
func checkGrad(t *testing.T, name string, got []float32, want []float64, rtol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: got %d values, want %d", name, len(got), len(want))
	}
	floor := 0.1 * maxAbs(want)
	bad := 0
	for i := range got {
		g := float64(got[i])
		if math.Abs(g-want[i]) > rtol*max(math.Abs(want[i]), floor) || math.IsNaN(g) {
			if bad++; bad <= 5 {
				t.Errorf("%s[%d]: got %g, want %g", name, i, got[i], want[i])
			}
		}
	}
	if bad > 5 {
		t.Errorf("%s: %d of %d values wrong", name, bad, len(got))
	}
}

// checkClose requires |got_i − want_i| ≤ tol_i for every i.
func checkClose(t *testing.T, name string, got []float32, want, tol []float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: got %d values, want %d", name, len(got), len(want))
	}
	bad := 0
	for i := range got {
		g := float64(got[i])
		if !(math.Abs(g-want[i]) <= tol[i]) {
			if bad++; bad <= 5 {
				t.Errorf("%s[%d]: got %g, want %g (±%.3g)", name, i, got[i], want[i], tol[i])
			}
		}
	}
	if bad > 5 {
		t.Errorf("%s: %d of %d values wrong", name, bad, len(got))
	}
}

// checkBits requires got and want to be identical bit for bit.
func checkBits(t *testing.T, name string, got, want []float32) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: got %d values, want %d", name, len(got), len(want))
	}
	bad := 0
	for i := range got {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			if bad++; bad <= 5 {
				t.Errorf("%s[%d]: got %g (%#08x), want %g (%#08x)", name, i,
					got[i], math.Float32bits(got[i]), want[i], math.Float32bits(want[i]))
			}
		}
	}
	if bad > 5 {
		t.Errorf("%s: %d of %d values differ", name, bad, len(got))
	}
}

func checkNoErr(t *testing.T, b backend.Backend) {
	t.Helper()
	if err := b.Err(); err != nil {
		t.Fatalf("Err() = %v, want nil", err)
	}
}
