//go:build !nocuda

package gpu_test

// These tests need an NVIDIA GPU (compute capability 8.0 or newer): gorgonia.org/cu
// ends a test binary at start on a machine without one. On a machine without a GPU,
// compile them (go test -c ./gpu/) and run the binary where there is one
// (scripts/gpu-check.sh). GANTRAIN_CUDA_DEVICE picks the device (default 0).

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/gantrain/gantrain/backend"
	"github.com/gantrain/gantrain/cpu"
	"github.com/gantrain/gantrain/gpu"
)

// Tolerances of the GPU against the CPU backend, ‖gpu − cpu‖₂ / ‖cpu‖₂ per tensor.
const (
	tolFP32 = 1e-5
	tolTF32 = 3e-3
)

// TestMain holds one backend open for the whole run: it keeps the device's primary
// context alive, so that the many short-lived backends of the tests do not each create
// and destroy it.
func TestMain(m *testing.M) {
	n := 0
	if s := os.Getenv("GANTRAIN_CUDA_DEVICE"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	keep, err := gpu.New(gpu.Options{Device: n})
	if err != nil {
		fmt.Fprintln(os.Stderr, "gpu tests:", err)
		os.Exit(1)
	}
	fmt.Fprintln(os.Stderr, "gpu tests on", keep.Describe())
	code := m.Run()
	keep.Close()
	os.Exit(code)
}

func deviceOrdinal(t testing.TB) int {
	s := os.Getenv("GANTRAIN_CUDA_DEVICE")
	if s == "" {
		return 0
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("GANTRAIN_CUDA_DEVICE=%q: %v", s, err)
	}
	return n
}

// newGPU opens the test device, closed when the test ends.
func newGPU(t testing.TB, tf32 bool) *gpu.Backend {
	t.Helper()
	return newGPUWith(t, gpu.Options{Device: deviceOrdinal(t), TF32: tf32})
}

func newGPUWith(t testing.TB, opt gpu.Options) *gpu.Backend {
	t.Helper()
	b, err := gpu.New(opt)
	if err != nil {
		t.Fatalf("gpu.New(%+v): %v", opt, err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return b
}

func newCPU(t testing.TB) *cpu.Backend {
	t.Helper()
	b, err := cpu.New(cpu.Options{BLAS: "go"})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// newRand returns a generator seeded from the clock: every run draws fresh inputs.
// The seed is logged, and GANTRAIN_TEST_SEED replays one.
func newRand(t testing.TB) *rand.Rand {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("GANTRAIN_TEST_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("GANTRAIN_TEST_SEED=%q: %v", s, err)
		}
	}
	t.Logf("input seed %d (GANTRAIN_TEST_SEED replays it)", seed)
	return rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
}

// pair drives the CPU backend (the specification) and a GPU backend side by side.
type pair struct {
	t *testing.T
	c *cpu.Backend
	g *gpu.Backend
	r *rand.Rand
}

func newPair(t *testing.T, tf32 bool) *pair {
	t.Helper()
	return &pair{t: t, c: newCPU(t), g: newGPU(t, tf32), r: newRand(t)}
}

// twin is one tensor on both backends.
type twin struct {
	c, g       backend.Tensor
	rows, cols int
	dt         backend.DType
}

func (p *pair) alloc(dt backend.DType, rows, cols int) twin {
	p.t.Helper()
	c, err := p.c.Alloc(dt, rows, cols)
	if err != nil {
		p.t.Fatalf("cpu Alloc(%s, %d, %d): %v", dt, rows, cols, err)
	}
	g, err := p.g.Alloc(dt, rows, cols)
	if err != nil {
		p.t.Fatalf("gpu Alloc(%s, %d, %d): %v", dt, rows, cols, err)
	}
	return twin{c: c, g: g, rows: rows, cols: cols, dt: dt}
}

// set uploads v to both sides.
func (p *pair) set(x twin, v any) {
	p.t.Helper()
	if err := p.c.Upload(x.c, v); err != nil {
		p.t.Fatalf("cpu Upload: %v", err)
	}
	if err := p.g.Upload(x.g, v); err != nil {
		p.t.Fatalf("gpu Upload: %v", err)
	}
}

// uniform makes a rows×cols tensor of values uniform in [lo, hi) on both sides.
func (p *pair) uniform(rows, cols int, lo, hi float32) twin {
	p.t.Helper()
	x := p.alloc(backend.F32, rows, cols)
	p.set(x, randSlice(p.r, rows*cols, lo, hi))
	return x
}

// indices makes a rows×cols I32 tensor of values in [0, n).
func (p *pair) indices(rows, cols, n int) twin {
	p.t.Helper()
	x := p.alloc(backend.I32, rows, cols)
	v := make([]int32, rows*cols)
	for i := range v {
		v[i] = int32(p.r.IntN(n))
	}
	p.set(x, v)
	return x
}

// poison fills x with NaN on both sides (the CPU must overwrite it too).
func (p *pair) poison(xs ...twin) {
	p.t.Helper()
	for _, x := range xs {
		if x.dt == backend.I32 {
			v := make([]int32, x.rows*x.cols)
			for i := range v {
				v[i] = -0x5a5a5a5b
			}
			p.set(x, v)
			continue
		}
		p.set(x, constSlice(x.rows*x.cols, float32(math.NaN())))
	}
}

func randSlice(r *rand.Rand, n int, lo, hi float32) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = lo + (hi-lo)*r.Float32()
	}
	return v
}

func constSlice(n int, v float32) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = v
	}
	return s
}

func download(t testing.TB, b backend.Backend, x backend.Tensor) []float32 {
	t.Helper()
	v := make([]float32, backend.Len(x))
	if err := b.Download(v, x); err != nil {
		t.Fatalf("%s Download: %v", b.Name(), err)
	}
	return v
}

func downloadI32(t testing.TB, b backend.Backend, x backend.Tensor) []int32 {
	t.Helper()
	v := make([]int32, backend.Len(x))
	if err := b.Download(v, x); err != nil {
		t.Fatalf("%s Download: %v", b.Name(), err)
	}
	return v
}

// both downloads x from both sides.
func (p *pair) both(x twin) (c, g []float32) {
	p.t.Helper()
	return download(p.t, p.c, x.c), download(p.t, p.g, x.g)
}

// relErr is ‖got − want‖₂ / ‖want‖₂ (the absolute norm when want is zero), NaN when
// got has a NaN, an Inf or an element whose infinity differs from want's.
func relErr(got, want []float32) float64 {
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

// close checks x on both sides within tol; it also fails on any NaN left on the GPU
// (an element the kernels did not write, since outputs are poisoned).
func (p *pair) close(name string, x twin, tol float64) {
	p.t.Helper()
	c, g := p.both(x)
	if i := firstNaN(g); i >= 0 && firstNaN(c) < 0 {
		p.t.Errorf("%s: gpu[%d] is NaN (unwritten?), cpu %g; %d NaNs in all", name, i, c[i], countNaN(g))
		return
	}
	if e := relErr(g, c); !(e <= tol) {
		i := worst(g, c)
		p.t.Errorf("%s: relative error %.3g > %.0e (worst element %d: gpu %g, cpu %g)", name, e, tol, i, g[i], c[i])
	}
}

// same checks that x is bit-identical on both sides.
func (p *pair) same(name string, x twin) {
	p.t.Helper()
	if x.dt == backend.I32 {
		c, g := downloadI32(p.t, p.c, x.c), downloadI32(p.t, p.g, x.g)
		n := 0
		for i := range c {
			if c[i] != g[i] {
				if n == 0 {
					p.t.Errorf("%s: element %d: gpu %d, cpu %d", name, i, g[i], c[i])
				}
				n++
			}
		}
		if n > 0 {
			p.t.Errorf("%s: %d of %d elements differ", name, n, len(c))
		}
		return
	}
	c, g := p.both(x)
	n := 0
	for i := range c {
		if math.Float32bits(c[i]) != math.Float32bits(g[i]) {
			if n == 0 {
				p.t.Errorf("%s: element %d: gpu %g (%08x), cpu %g (%08x)", name, i, g[i], math.Float32bits(g[i]), c[i], math.Float32bits(c[i]))
			}
			n++
		}
	}
	if n > 0 {
		p.t.Errorf("%s: %d of %d elements differ in their bits", name, n, len(c))
	}
}

// noErr fails the test on an error recorded by either backend.
func (p *pair) noErr() {
	p.t.Helper()
	if err := p.c.Sync(); err != nil {
		p.t.Fatalf("cpu: %v", err)
	}
	if err := p.g.Sync(); err != nil {
		p.t.Fatalf("gpu: %v", err)
	}
}

func firstNaN(v []float32) int {
	for i, x := range v {
		if x != x {
			return i
		}
	}
	return -1
}

func countNaN(v []float32) int {
	n := 0
	for _, x := range v {
		if x != x {
			n++
		}
	}
	return n
}

func worst(got, want []float32) int {
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

// shape names a subtest.
func shape(dims ...int) string {
	s := ""
	for i, d := range dims {
		if i > 0 {
			s += "x"
		}
		s += fmt.Sprint(d)
	}
	return s
}
