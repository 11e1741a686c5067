package eval

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/gantrain/gantrain/backend"
	"github.com/gantrain/gantrain/cpu"
)

func newCPU(t testing.TB) backend.Backend {
	t.Helper()
	b, err := cpu.New(cpu.Options{BLAS: "auto"})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func randUnit(r *rand.Rand, n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = r.Float32()
	}
	return x
}

// slowParzen is the direct float64 definition: an explicit double loop and a
// log-sum-exp around the maximum.
func slowParzen(x, s []float32, n, m, d int, sigma float64) []float64 {
	out := make([]float64, n)
	e := make([]float64, m)
	for i := range n {
		mx := math.Inf(-1)
		for j := range m {
			var d2 float64
			for k := range d {
				diff := float64(x[i*d+k]) - float64(s[j*d+k])
				d2 += diff * diff
			}
			e[j] = -d2 / (2 * sigma * sigma)
			mx = max(mx, e[j])
		}
		var z float64
		for _, v := range e {
			z += math.Exp(v - mx)
		}
		out[i] = mx + math.Log(z) - math.Log(float64(m)) - float64(d)/2*math.Log(2*math.Pi*sigma*sigma)
	}
	return out
}

func parzenLL(t *testing.T, b backend.Backend, x, s []float32, n, m, d, batch int, sigma float64) []float64 {
	t.Helper()
	p, err := NewParzen(b, d, m+3, batch) // spare capacity: the views must work for any m
	if err != nil {
		t.Fatal(err)
	}
	if err := p.SetSamples(s, m); err != nil {
		t.Fatal(err)
	}
	pts, err := NewPoints(b, "points", x, n, d)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]float64, n)
	if err := p.LogLikelihoods(context.Background(), pts, sigma, out); err != nil {
		t.Fatal(err)
	}
	return out
}

func near(got, want, rel float64) bool {
	return math.Abs(got-want) <= rel*max(1, math.Abs(want))
}

// Samples all at one point make the window a single Gaussian N(μ, σ²I); two distinct
// points make an equal mixture of two. Both densities are exact in float64.
func TestParzenClosedForm(t *testing.T) {
	b := newCPU(t)
	r := rand.New(rand.NewPCG(1, 2))
	const d, n = 29, 11
	mu := randUnit(r, d)
	nu := randUnit(r, d)
	x := randUnit(r, n*d)
	logN := func(x, mu []float32, sigma float64) float64 {
		var d2 float64
		for k := range x {
			diff := float64(x[k]) - float64(mu[k])
			d2 += diff * diff
		}
		return -d2/(2*sigma*sigma) - float64(len(x))/2*math.Log(2*math.Pi*sigma*sigma)
	}
	for _, sigma := range []float64{0.1, 0.3, 1, 2.5} {
		// m copies of μ.
		const m = 7
		var s []float32
		for range m {
			s = append(s, mu...)
		}
		got := parzenLL(t, b, x, s, n, m, d, 4, sigma)
		for i := range n {
			want := logN(x[i*d:(i+1)*d], mu, sigma)
			if !near(got[i], want, 1e-4) {
				t.Errorf("σ %g, point %d: one-point window %g, want %g", sigma, i, got[i], want)
			}
		}
		// μ and ν: log(½N(x; μ) + ½N(x; ν)).
		s2 := append(append([]float32(nil), mu...), nu...)
		got = parzenLL(t, b, x, s2, n, 2, d, 5, sigma)
		for i := range n {
			a, c := logN(x[i*d:(i+1)*d], mu, sigma), logN(x[i*d:(i+1)*d], nu, sigma)
			hi := max(a, c)
			want := hi + math.Log(0.5*math.Exp(a-hi)+0.5*math.Exp(c-hi))
			if !near(got[i], want, 1e-4) {
				t.Errorf("σ %g, point %d: two-point window %g, want %g", sigma, i, got[i], want)
			}
		}
	}
}

func TestParzenMatchesSlowFloat64(t *testing.T) {
	b := newCPU(t)
	r := rand.New(rand.NewPCG(3, 4))
	const n, m, d = 37, 53, 29
	x, s := randUnit(r, n*d), randUnit(r, m*d)
	for _, sigma := range append(PaperSigmas(), 3) {
		for _, batch := range []int{1, 10, 37, 100} {
			got := parzenLL(t, b, x, s, n, m, d, batch, sigma)
			want := slowParzen(x, s, n, m, d, sigma)
			for i := range n {
				if !near(got[i], want[i], 1e-5) {
					t.Fatalf("σ %g batch %d point %d: %g, slow float64 %g", sigma, batch, i, got[i], want[i])
				}
			}
		}
	}
}

func TestParzenSampleOrderInvariance(t *testing.T) {
	b := newCPU(t)
	r := rand.New(rand.NewPCG(5, 6))
	const n, m, d = 23, 64, 16
	x, s := randUnit(r, n*d), randUnit(r, m*d)
	perm := r.Perm(m)
	ps := make([]float32, len(s))
	for j, k := range perm {
		copy(ps[j*d:(j+1)*d], s[k*d:(k+1)*d])
	}
	for _, sigma := range []float64{0.1, 0.2, 0.7} {
		a := parzenLL(t, b, x, s, n, m, d, 8, sigma)
		c := parzenLL(t, b, x, ps, n, m, d, 8, sigma)
		for i := range n {
			if !near(a[i], c[i], 1e-6) {
				t.Errorf("σ %g point %d: %g, permuted samples %g", sigma, i, a[i], c[i])
			}
		}
	}
}

// Evaluate picks the σ with the highest mean validation log-likelihood and reports the
// test mean and its standard error, all as the slow float64 definition gives them.
func TestParzenEvaluateSelectsArgmax(t *testing.T) {
	b := newCPU(t)
	r := rand.New(rand.NewPCG(7, 8))
	const m, d, nv, nt = 40, 12, 19, 31
	s := randUnit(r, m*d)
	vx, tx := randUnit(r, nv*d), randUnit(r, nt*d)
	p, err := NewParzen(b, d, 100, 7)
	if err != nil {
		t.Fatal(err)
	}
	valid, err := NewPoints(b, "valid", vx, nv, d)
	if err != nil {
		t.Fatal(err)
	}
	test, err := NewPoints(b, "test", tx, nt, d)
	if err != nil {
		t.Fatal(err)
	}
	sigmas := PaperSigmas()
	res, err := p.Evaluate(context.Background(), s, m, valid, test, sigmas)
	if err != nil {
		t.Fatal(err)
	}
	best, bestLL := 0, math.Inf(-1)
	for k, sg := range sigmas {
		want, _ := meanSE(slowParzen(vx, s, nv, m, d, sg))
		if !near(res.ValidLL[k], want, 1e-5) {
			t.Errorf("σ %g: validation mean %g, slow %g", sg, res.ValidLL[k], want)
		}
		if want > bestLL {
			best, bestLL = k, want
		}
	}
	if res.Sigma != sigmas[best] {
		t.Errorf("chose σ %g, the validation argmax is %g (%v)", res.Sigma, sigmas[best], res.ValidLL)
	}
	ll := slowParzen(tx, s, nt, m, d, res.Sigma)
	mean := 0.0
	for _, v := range ll {
		mean += v
	}
	mean /= nt
	var ss float64
	for _, v := range ll {
		ss += (v - mean) * (v - mean)
	}
	se := math.Sqrt(ss/nt) / math.Sqrt(nt)
	if !near(res.LL, mean, 1e-5) || !near(res.SE, se, 1e-3) {
		t.Errorf("test %g ± %g, slow %g ± %g", res.LL, res.SE, mean, se)
	}
	if res.Samples != m || res.Valid != nv || res.Test != nt {
		t.Errorf("counts %d/%d/%d", res.Samples, res.Valid, res.Test)
	}

	// A known optimum: samples at the origin, validation points at distance ρ, so
	// the mean log-likelihood −ρ²/(2σ²) − (d/2)log(2πσ²) peaks at σ² = ρ²/d. Put the
	// peak on candidate 6.
	zero := make([]float32, 3*d)
	rho := sigmas[6] * math.Sqrt(d)
	ring := make([]float32, 5*d)
	for i := range 5 {
		ring[i*d+i] = float32(rho)
	}
	valid2, err := NewPoints(b, "ring", ring, 5, d)
	if err != nil {
		t.Fatal(err)
	}
	res, err = p.Evaluate(context.Background(), zero, 3, valid2, test, sigmas)
	if err != nil {
		t.Fatal(err)
	}
	if res.Sigma != sigmas[6] {
		t.Errorf("chose σ %g, the optimum is %g (%v)", res.Sigma, sigmas[6], res.ValidLL)
	}
}

func TestPaperSigmas(t *testing.T) {
	// numpy.logspace(-1, 0, 10)
	want := []float64{0.1, 0.12915497, 0.16681005, 0.21544347, 0.27825594, 0.35938137, 0.46415888, 0.59948425, 0.77426368, 1}
	for i, s := range PaperSigmas() {
		if math.Abs(s-want[i]) > 1e-8 {
			t.Errorf("σ[%d] = %.9g, want %.9g", i, s, want[i])
		}
	}
}

func TestParzenErrors(t *testing.T) {
	b := newCPU(t)
	const d = 4
	p, err := NewParzen(b, d, 10, 3)
	if err != nil {
		t.Fatal(err)
	}
	good := make([]float32, 2*d)
	pts, _ := NewPoints(b, "pts", good, 2, d)
	out := make([]float64, 2)
	if err := p.LogLikelihoods(context.Background(), pts, 0.5, out); err == nil || !strings.Contains(err.Error(), "no samples") {
		t.Errorf("no samples set: %v", err)
	}
	nan := append([]float32(nil), good...)
	nan[5] = float32(math.NaN())
	for _, tc := range []struct {
		err  error
		want string
	}{
		{p.SetSamples(nil, 0), "no samples"},
		{p.SetSamples(make([]float32, 11*d), 11), "at most 10"},
		{p.SetSamples(make([]float32, 2*d+1), 2), "dimension mismatch"},
		{p.SetSamples(nan, 2), "sample 1 feature 1 is NaN"},
		{func() error { _, err := NewPoints(b, "test", nil, 0, d); return err }(), "test is empty"},
		{func() error { _, err := NewPoints(b, "test", good, 3, d); return err }(), "test has 8 values"},
		{func() error { _, err := NewPoints(b, "test", nan, 2, d); return err }(), "test point 1 feature 1 is NaN"},
		{func() error { _, err := NewParzen(b, 0, 10, 3); return err }(), "must be positive"},
	} {
		if tc.err == nil || !strings.Contains(tc.err.Error(), tc.want) {
			t.Errorf("got %v, want an error with %q", tc.err, tc.want)
		}
	}
	if err := p.SetSamples(good, 2); err != nil {
		t.Fatal(err)
	}
	other, _ := NewPoints(b, "other", make([]float32, 2*5), 2, 5)
	for _, tc := range []struct {
		err  error
		want string
	}{
		{p.LogLikelihoods(context.Background(), other, 0.5, out), "dimension mismatch"},
		{p.LogLikelihoods(context.Background(), pts, 0, out), "σ must be positive"},
		{p.LogLikelihoods(context.Background(), pts, math.NaN(), out), "σ must be positive"},
		{p.LogLikelihoods(context.Background(), pts, 0.5, out[:1]), "output of 1"},
		{func() error { _, err := p.Evaluate(context.Background(), good, 2, pts, pts, nil); return err }(), "no candidate"},
		{func() error {
			_, err := p.Evaluate(context.Background(), good, 2, pts, pts, []float64{0.1, -1})
			return err
		}(), "-1"},
		{func() error {
			_, err := p.Evaluate(context.Background(), good, 2, nil, pts, []float64{0.1})
			return err
		}(), "validation and test"},
	} {
		if tc.err == nil || !strings.Contains(tc.err.Error(), tc.want) {
			t.Errorf("got %v, want an error with %q", tc.err, tc.want)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := p.LogLikelihoods(ctx, pts, 0.5, out); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}

// On real MNIST (pixels in [0, 1], d = 784) the float32 exponents stay close to the
// float64 definition at every candidate σ, σ = 0.1 included where they reach 10⁴.
func TestParzenMNISTPrecision(t *testing.T) {
	sp := findMNIST(t)
	b := newCPU(t)
	const n, m, d = 60, 500, 784
	x, s := sp.Test.X[:n*d], sp.Train.X[:m*d]
	worst := 0.0
	for _, sigma := range PaperSigmas() {
		got := parzenLL(t, b, x, s, n, m, d, 25, sigma)
		want := slowParzen(x, s, n, m, d, sigma)
		for i := range n {
			worst = max(worst, math.Abs(got[i]-want[i]))
			if math.Abs(got[i]-want[i]) > 0.02 {
				t.Errorf("σ %g test image %d: %g, float64 %g", sigma, i, got[i], want[i])
			}
		}
	}
	t.Logf("largest difference from float64: %.2g nats", worst)
}
