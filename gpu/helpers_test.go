//go:build !nocuda

package gpu_test

// These tests need an NVIDIA GPU (compute capability 8.0 or newer): gorgonia.org/cu
// ends a test binary at start on a machine without one. On a machine without a GPU,
// compile them (go test -c ./gpu/) and run the binary where there is one
// (scripts/gpu-check.sh). GANTRAIN_CUDA_DEVICE picks the device (default 0).

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/gantrain/gantrain/backend/backendtest"
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
	*backendtest.Pair
	dev *gpu.Backend // G, for what only the GPU backend has
}

// twin is one tensor on both backends.
type twin = backendtest.Twin

func newPair(t *testing.T, tf32 bool) *pair {
	t.Helper()
	return newPairWith(t, newGPU(t, tf32))
}

// newPairWith pairs g with a CPU backend.
func newPairWith(t *testing.T, g *gpu.Backend) *pair {
	t.Helper()
	return &pair{&backendtest.Pair{T: t, C: newCPU(t), G: g, R: newRand(t)}, g}
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
