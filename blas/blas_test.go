package blas

import (
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
)

// naive is the reference: C = alpha·op(A)·op(B) + beta·C in float64.
func naive(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) []float32 {
	out := make([]float32, len(c))
	copy(out, c)
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s float64
			for p := 0; p < k; p++ {
				var av, bv float32
				if transA {
					av = a[p*lda+i]
				} else {
					av = a[i*lda+p]
				}
				if transB {
					bv = b[j*ldb+p]
				} else {
					bv = b[p*ldb+j]
				}
				s += float64(av) * float64(bv)
			}
			out[i*ldc+j] = float32(float64(alpha)*s + float64(beta)*float64(c[i*ldc+j]))
		}
	}
	return out
}

// loaded are the implementations that open here: pure Go and each library installed.
func loaded(tb testing.TB) []Sgemm {
	impls := []Sgemm{&Go{}}
	for _, l := range libraries {
		if c, err := Open(Options{Library: l.name}); err == nil {
			impls = append(impls, c)
		} else {
			tb.Logf("%s not tested: %v", l.title, err)
		}
	}
	return impls
}

// TestSgemm checks each implementation against naive. "auto" opens first, before any
// library is loaded, in its own order: where it passes over a library (BLIS with
// generic kernels), that one stays loaded, and the one chosen must still compute its
// own products.
func TestSgemm(t *testing.T) {
	auto, err := Open(Options{Library: "auto"})
	if err != nil {
		t.Fatalf("auto: %v", err)
	}
	t.Logf("auto: %s", auto.Name())
	impls := append([]Sgemm{auto}, loaded(t)...)
	r := rand.New(rand.NewPCG(1, 2))
	rnd := func(n int) []float32 {
		x := make([]float32, n)
		for i := range x {
			x[i] = r.Float32()*2 - 1
		}
		return x
	}
	for _, impl := range impls {
		for _, tc := range []struct {
			m, n, k    int
			tA, tB     bool
			alpha, bet float32
		}{
			{37, 53, 29, false, false, 1, 0},
			{37, 53, 29, true, false, 0.5, 1},
			{37, 53, 29, false, true, 1, -2},
			{1, 1, 1, true, true, 2, 0},
			{64, 33, 17, false, true, 1, 0},
		} {
			lda, ldb := max(tc.k, 1), tc.n
			if tc.tA {
				lda = tc.m
			}
			if tc.tB {
				ldb = tc.k
			}
			a, b, c := rnd(tc.m*tc.k+1), rnd(tc.k*tc.n+1), rnd(tc.m*tc.n)
			want := naive(tc.tA, tc.tB, tc.m, tc.n, tc.k, tc.alpha, a, lda, b, ldb, tc.bet, c, tc.n)
			impl.Sgemm(tc.tA, tc.tB, tc.m, tc.n, tc.k, tc.alpha, a, lda, b, ldb, tc.bet, c, tc.n)
			for i := range c {
				if math.Abs(float64(c[i]-want[i])) > 1e-4*(1+math.Abs(float64(want[i]))) {
					t.Fatalf("%s %+v: c[%d] = %g, want %g", impl.Name(), tc, i, c[i], want[i])
				}
			}
		}
	}
}

func BenchmarkSgemm100x1200x1200(b *testing.B) {
	for _, impl := range loaded(b) {
		x, w, y := make([]float32, 100*1200), make([]float32, 1200*1200), make([]float32, 100*1200)
		b.Run(libName(impl), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				impl.Sgemm(false, false, 100, 1200, 1200, 1, x, 1200, w, 1200, 0, y, 1200)
			}
			b.ReportMetric(2*100*1200*1200*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}

func BenchmarkShapes(b *testing.B) {
	type shape struct {
		name    string
		tA, tB  bool
		m, n, k int
	}
	shapes := []shape{
		{"fwd_100x1200x1200", false, false, 100, 1200, 1200},
		{"fwd_200x1200x784", false, false, 200, 1200, 784},
		{"fwd_200x1200x240", false, false, 200, 1200, 240},
		{"fwd_100x784x1200", false, false, 100, 784, 1200},
		{"fwd_100x1200x100", false, false, 100, 1200, 100},
		{"dW_1200x1200x100", true, false, 1200, 1200, 100},
		{"dX_100x1200x1200", false, true, 100, 1200, 1200},
	}
	for _, impl := range loaded(b) {
		lib := libName(impl)
		for _, s := range shapes {
			// Random operands: gonum skips zero elements of A, so zeros would flatter it.
			r := rand.New(rand.NewPCG(1, 2))
			a, bb, c := centred(r, s.m*s.k), centred(r, s.k*s.n), make([]float32, s.m*s.n)
			lda, ldb := s.k, s.n
			if s.tA {
				lda = s.m
			}
			if s.tB {
				ldb = s.k
			}
			b.Run(lib+"/"+s.name, func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					impl.Sgemm(s.tA, s.tB, s.m, s.n, s.k, 1, a, lda, bb, ldb, 0, c, s.n)
				}
				b.ReportMetric(2*float64(s.m*s.n*s.k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}

// libName is the first word of an implementation's name, for sub-benchmark names.
func libName(impl Sgemm) string { return strings.Fields(impl.Name())[0] }

// TestOpen checks the library names: each library opens or says why not, "auto"
// always opens, an unknown name is refused with the list of known ones. With
// GANTRAIN_BLAS set to a library, that one must load (bench/cpu.sh asks this way
// which libraries it can time).
func TestOpen(t *testing.T) {
	for _, name := range Libraries() {
		impl, err := Open(Options{Library: name})
		switch {
		case err == nil:
			t.Logf("%s: %s", name, impl.Name())
		case name == "auto" || name == "go":
			t.Errorf("%s: %v", name, err)
		default:
			t.Logf("%s: %v", name, err)
		}
		if want := os.Getenv("GANTRAIN_BLAS"); want == name && err != nil {
			t.Errorf("GANTRAIN_BLAS=%s does not load: %v", name, err)
		}
	}
	if _, err := Open(Options{Library: "atlas"}); err == nil || !strings.Contains(err.Error(), "openblas, blis, mkl") {
		t.Errorf("Open(atlas) = %v, want an error listing the libraries", err)
	}
}

// "auto" prefers MKL on Intel CPUs and BLIS elsewhere, and tries every library.
func TestAutoOrder(t *testing.T) {
	for vendor, first := range map[string]string{"GenuineIntel": "mkl", "AuthenticAMD": "blis", "": "blis"} {
		order := autoOrder(vendor)
		if order[0] != first || len(order) != len(libraries) {
			t.Errorf("autoOrder(%q) = %v, want %s first and every library", vendor, order, first)
		}
		for _, name := range order {
			if libraryNamed(name).name != name {
				t.Errorf("autoOrder(%q) names %q, which is no library", vendor, name)
			}
		}
	}
	t.Logf("this CPU: %q", cpuVendor())
}

// "auto" takes the first library in its order with kernels for this CPU, one with
// generic kernels only when no other loads, and pure Go when none loads.
func TestPickAuto(t *testing.T) {
	order := []string{"blis", "openblas", "mkl"}
	for _, tc := range []struct {
		name    string
		kernels map[string]string // of the libraries that load
		want    string            // the chosen one's title, "go" for pure Go
	}{
		{"first loads", map[string]string{"blis": "zen3", "openblas": "Haswell"}, "blis"},
		{"first generic", map[string]string{"blis": "generic", "openblas": "Haswell"}, "openblas"},
		{"generic, next absent", map[string]string{"blis": "generic", "mkl": ""}, "mkl"},
		{"all generic", map[string]string{"blis": "generic", "openblas": "GENERIC"}, "blis"},
		{"first absent", map[string]string{"openblas": "Haswell"}, "openblas"},
		{"kernels unknown to it", map[string]string{"blis": "", "openblas": "Haswell"}, "blis"},
		{"openblas generic", map[string]string{"openblas": "unknown", "mkl": ""}, "mkl"},
		{"none", nil, "go"},
	} {
		got := pickAuto(order, func(name string) (*cblas, error) {
			k, ok := tc.kernels[name]
			if !ok {
				return nil, os.ErrNotExist
			}
			return &cblas{title: name, file: "lib" + name + ".so", kernels: k}, nil
		})
		name := "go"
		if c, ok := got.(*cblas); ok {
			name = c.title
		}
		if name != tc.want {
			t.Errorf("%s: auto chose %s (%s), want %s", tc.name, name, got.Name(), tc.want)
		}
	}
}

// BenchmarkConcurrentHalves times the way the CPU backend uses two cores on one of the
// paper's products at batch 500 (C = A·B, 500×1200 by 1200×1200): the product in
// one call, its two column halves one after the other, and the two halves at once on
// two goroutines, each library call single-threaded. GFLOP/s counts the whole product,
// so "at once" over "one call" is what the split gains; on two cores it would be 2.
func BenchmarkConcurrentHalves(b *testing.B) {
	const m, n, k, h = 500, 1200, 1200, 600
	r := rand.New(rand.NewPCG(3, 4))
	a, w, c := centred(r, m*k), centred(r, k*n), make([]float32, m*n)
	for _, impl := range loaded(b) {
		if _, pure := impl.(*Go); pure {
			continue
		}
		half := func(p int) { impl.Sgemm(false, false, m, h, k, 1, a, k, w[p*h:], n, 0, c[p*h:], n) }
		for _, run := range []struct {
			name string
			f    func()
		}{
			{"one_call", func() { impl.Sgemm(false, false, m, n, k, 1, a, k, w, n, 0, c, n) }},
			{"halves_in_turn", func() { half(0); half(1) }},
			{"halves_at_once", func() {
				done := make(chan struct{})
				go func() { half(1); close(done) }()
				half(0)
				<-done
			}},
		} {
			b.Run(libName(impl)+"/"+run.name, func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					run.f()
				}
				b.ReportMetric(2*m*n*k*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}

// centred returns n uniform random floats in [−0.5, 0.5).
func centred(r *rand.Rand, n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = r.Float32() - 0.5
	}
	return x
}
