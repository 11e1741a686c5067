package eval

import (
	"errors"
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"
)

// Gaussian is the mean and covariance of a set of feature vectors, in float64: the
// Gaussian that the Fréchet distance fits to a set.
type Gaussian struct {
	Mean []float64
	Cov  *mat.SymDense // sample covariance, normalised by n − 1 (numpy.cov's default)
	N    int

	sqrt *mat.SymDense // Cov^{1/2}, made on first use
}

// FitGaussian fits a Gaussian to the n rows of x (n×d, row-major), n ≥ 2.
func FitGaussian(x []float64, n, d int) (*Gaussian, error) {
	if n < 2 || d < 1 || len(x) != n*d {
		return nil, fmt.Errorf("frechet: need at least 2 vectors of ≥ 1 features, got %d values for %d×%d", len(x), n, d)
	}
	g := &Gaussian{Mean: make([]float64, d), N: n}
	for i := range n {
		for k, v := range x[i*d : (i+1)*d] {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return nil, fmt.Errorf("frechet: vector %d feature %d is %g", i, k, v)
			}
			g.Mean[k] += v
		}
	}
	for k := range g.Mean {
		g.Mean[k] /= float64(n)
	}
	// Centred and transposed (d×n), so that Cov = xc·xcᵀ/(n−1) is one rank-n update.
	xc := mat.NewDense(d, n, nil)
	for i := range n {
		for k, v := range x[i*d : (i+1)*d] {
			xc.Set(k, i, v-g.Mean[k])
		}
	}
	g.Cov = mat.NewSymDense(d, nil)
	g.Cov.SymOuterK(1/float64(n-1), xc)
	return g, nil
}

// sqrtm returns the symmetric positive semi-definite square root of the symmetric
// matrix a, V·diag(√max(λ, 0))·Vᵀ from its eigendecomposition.
func sqrtm(a mat.Symmetric) (*mat.SymDense, error) {
	root, _, err := eigenSqrt(a, true)
	return root, err
}

// traceSqrtm returns the trace of sqrtm(a): the sum of the square roots of a's
// eigenvalues (no eigenvectors needed).
func traceSqrtm(a mat.Symmetric) (float64, error) {
	_, trace, err := eigenSqrt(a, false)
	return trace, err
}

// eigenSqrt returns sqrtm(a), when wantMatrix, and its trace.
func eigenSqrt(a mat.Symmetric, wantMatrix bool) (*mat.SymDense, float64, error) {
	var eig mat.EigenSym
	if !eig.Factorize(a, wantMatrix) {
		return nil, 0, errors.New("frechet: the eigendecomposition did not converge")
	}
	vals := eig.Values(nil)
	var trace float64
	for i, l := range vals {
		vals[i] = math.Sqrt(max(l, 0)) // rounding can leave tiny negative eigenvalues
		trace += vals[i]
	}
	if !wantMatrix {
		return nil, trace, nil
	}
	var v mat.Dense
	eig.VectorsTo(&v)
	n := len(vals)
	vs := mat.NewDense(n, n, nil)
	vs.Apply(func(i, j int, x float64) float64 { return x * vals[j] }, &v)
	var r mat.Dense
	r.Mul(vs, v.T())
	out := mat.NewSymDense(n, nil)
	for i := range n {
		for j := i; j < n; j++ {
			out.SetSym(i, j, (r.At(i, j)+r.At(j, i))/2)
		}
	}
	return out, trace, nil
}

// FrechetDistance is the Fréchet (2-Wasserstein) distance between the Gaussians a
// and b: ‖μa − μb‖² + Tr Σa + Tr Σb − 2 Tr √(Σa^{1/2} Σb Σa^{1/2}), the matrix square
// roots from symmetric eigendecompositions. It is a squared distance; the rounding
// of a set against itself (≈ 1e-12) is clamped at 0.
func FrechetDistance(a, b *Gaussian) (float64, error) {
	if a == nil || b == nil || len(a.Mean) != len(b.Mean) {
		return 0, errors.New("frechet: the two feature sets have different widths")
	}
	if a.sqrt == nil {
		var err error
		if a.sqrt, err = sqrtm(a.Cov); err != nil {
			return 0, err
		}
	}
	var d2 float64
	for k, m := range a.Mean {
		d2 += (m - b.Mean[k]) * (m - b.Mean[k])
	}
	n := len(a.Mean)
	var t mat.Dense
	t.Mul(a.sqrt, b.Cov)
	var m mat.Dense
	m.Mul(&t, a.sqrt)
	ms := mat.NewSymDense(n, nil)
	for i := range n {
		for j := i; j < n; j++ {
			ms.SetSym(i, j, (m.At(i, j)+m.At(j, i))/2)
		}
	}
	trRoot, err := traceSqrtm(ms)
	if err != nil {
		return 0, err
	}
	fd := d2 + mat.Trace(a.Cov) + mat.Trace(b.Cov) - 2*trRoot
	return max(fd, 0), nil
}

// ClassifierScore is exp(E_x KL(p(y|x) ‖ p(y))) over the n rows of probs (n×classes,
// each a distribution), with p(y) the mean of the rows: the Inception score with an
// MNIST classifier (TF-GAN's MNIST score). It is 1 when every row is the same and
// the number of classes when the rows are one-hot and the classes equally frequent.
func ClassifierScore(probs []float64, n, classes int) (float64, error) {
	if n < 1 || classes < 1 || len(probs) != n*classes {
		return 0, fmt.Errorf("classifier score: %d values for %d rows of %d classes", len(probs), n, classes)
	}
	py := make([]float64, classes)
	for i := range n {
		for j, p := range probs[i*classes : (i+1)*classes] {
			if !(p >= 0 && p <= 1) {
				return 0, fmt.Errorf("classifier score: p(y=%d|x_%d) = %g is not a probability", j, i, p)
			}
			py[j] += p
		}
	}
	for j := range py {
		py[j] /= float64(n)
	}
	var kl float64
	for i := range n {
		for j, p := range probs[i*classes : (i+1)*classes] {
			if p > 0 {
				kl += p * (math.Log(p) - math.Log(py[j]))
			}
		}
	}
	return math.Exp(kl / float64(n)), nil
}
