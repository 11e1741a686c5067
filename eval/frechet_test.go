package eval

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"gonum.org/v1/gonum/mat"
)

func TestFitGaussian(t *testing.T) {
	// Three 2-D points: mean (1, 2); covariance with n−1 = 2.
	x := []float64{0, 0, 1, 2, 2, 4}
	g, err := FitGaussian(x, 3, 2)
	if err != nil {
		t.Fatal(err)
	}
	if g.Mean[0] != 1 || g.Mean[1] != 2 {
		t.Errorf("mean %v, want [1 2]", g.Mean)
	}
	want := [][]float64{{1, 2}, {2, 4}}
	for i := range 2 {
		for j := range 2 {
			if math.Abs(g.Cov.At(i, j)-want[i][j]) > 1e-12 {
				t.Errorf("cov[%d][%d] = %g, want %g", i, j, g.Cov.At(i, j), want[i][j])
			}
		}
	}
	for _, tc := range []struct {
		x       []float64
		n, d    int
		wantErr string
	}{
		{[]float64{1, 2}, 1, 2, "at least 2"},
		{[]float64{1, 2, 3}, 2, 2, "3 values"},
		{[]float64{1, math.NaN(), 3, 4}, 2, 2, "vector 0 feature 1 is NaN"},
	} {
		if _, err := FitGaussian(tc.x, tc.n, tc.d); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("FitGaussian(%v): %v, want %q", tc.x, err, tc.wantErr)
		}
	}
}

func TestFrechetSelfIsZero(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	const n, d = 300, 20
	x := make([]float64, n*d)
	for i := range x {
		x[i] = r.NormFloat64() * float64(1+i%d) // features of different scales
	}
	a, _ := FitGaussian(x, n, d)
	b, _ := FitGaussian(x, n, d)
	fd, err := FrechetDistance(a, b)
	if err != nil {
		t.Fatal(err)
	}
	if fd > 1e-8*mat.Trace(a.Cov) {
		t.Errorf("FD of a set with itself = %g, want ≈ 0", fd)
	}
}

// Gaussians whose covariances share eigenvectors Q (diagonal when Q = I) have
// FD = ‖μa − μb‖² + Σ_i (√α_i − √β_i)².
func TestFrechetClosedForm(t *testing.T) {
	r := rand.New(rand.NewPCG(2, 2))
	const d = 6
	alpha := []float64{1, 4, 0.25, 9, 2, 0.01}
	beta := []float64{2, 1, 0.25, 16, 0.5, 3}
	muA := []float64{0, 1, 2, 3, 4, 5}
	muB := []float64{1, 1, 0, 3, 4, 7}
	want := 1.0 + 4 + 4 // ‖μa − μb‖²
	for i := range d {
		want += (math.Sqrt(alpha[i]) - math.Sqrt(beta[i])) * (math.Sqrt(alpha[i]) - math.Sqrt(beta[i]))
	}
	// A random orthogonal Q from the QR factorisation of a random matrix.
	raw := mat.NewDense(d, d, nil)
	raw.Apply(func(int, int, float64) float64 { return r.NormFloat64() }, raw)
	var qr mat.QR
	qr.Factorize(raw)
	var q mat.Dense
	qr.QTo(&q)
	for name, rot := range map[string]*mat.Dense{"diagonal": identity(d), "rotated": &q} {
		cov := func(ev []float64) *mat.SymDense {
			var m mat.Dense
			m.Mul(rot, mat.NewDiagDense(d, ev))
			var c mat.Dense
			c.Mul(&m, rot.T())
			s := mat.NewSymDense(d, nil)
			for i := range d {
				for j := i; j < d; j++ {
					s.SetSym(i, j, (c.At(i, j)+c.At(j, i))/2)
				}
			}
			return s
		}
		a := &Gaussian{Mean: muA, Cov: cov(alpha), N: 2}
		b := &Gaussian{Mean: muB, Cov: cov(beta), N: 2}
		got, err := FrechetDistance(a, b)
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(got-want) > 1e-9*want {
			t.Errorf("%s: FD %.12g, want %.12g", name, got, want)
		}
		// The distance is symmetric.
		back, _ := FrechetDistance(b, a)
		if math.Abs(back-want) > 1e-9*want {
			t.Errorf("%s: FD(b, a) %.12g, want %.12g", name, back, want)
		}
	}
	if _, err := FrechetDistance(&Gaussian{Mean: muA}, &Gaussian{Mean: muA[:3]}); err == nil {
		t.Error("FD of feature sets of different widths succeeded")
	}
}

func identity(d int) *mat.Dense {
	m := mat.NewDense(d, d, nil)
	for i := range d {
		m.Set(i, i, 1)
	}
	return m
}

func TestClassifierScore(t *testing.T) {
	const C = 10
	// One-hot predictions, classes equally frequent: KL = log C for every row.
	oneHot := make([]float64, 50*C)
	for i := range 50 {
		oneHot[i*C+i%C] = 1
	}
	if s, err := ClassifierScore(oneHot, 50, C); err != nil || math.Abs(s-C) > 1e-12 {
		t.Errorf("one-hot uniform: %g, %v; want %d", s, err, C)
	}
	// All rows the same: p(y|x) = p(y), KL = 0.
	same := make([]float64, 7*C)
	for i := range 7 {
		for j := range C {
			same[i*C+j] = float64(j+1) / 55
		}
	}
	if s, err := ClassifierScore(same, 7, C); err != nil || math.Abs(s-1) > 1e-12 {
		t.Errorf("constant predictions: %g, %v; want 1", s, err)
	}
	// Rows (1, 0) and (½, ½): p(y) = (¾, ¼); KL = log(4/3) and ½log(2/3) + ½log 2.
	want := math.Exp((math.Log(4.0/3) + 0.5*math.Log(2.0/3) + 0.5*math.Log(2)) / 2)
	if s, err := ClassifierScore([]float64{1, 0, 0.5, 0.5}, 2, 2); err != nil || math.Abs(s-want) > 1e-12 {
		t.Errorf("two rows: %g, %v; want %g", s, err, want)
	}
	if _, err := ClassifierScore([]float64{1, 0, 0.5}, 2, 2); err == nil {
		t.Error("wrong length accepted")
	}
	if _, err := ClassifierScore([]float64{1, 0, math.NaN(), 0.5}, 2, 2); err == nil || !strings.Contains(err.Error(), "not a probability") {
		t.Errorf("NaN probability: %v", err)
	}
}
