package eval

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/gantrain/gantrain/backend"
)

// PaperSigmas are the candidate window widths of the 2014 paper's Parzen evaluation:
// 10 values spaced logarithmically in [0.1, 1] (numpy.logspace(-1, 0, 10)).
func PaperSigmas() []float64 {
	s := make([]float64, 10)
	for i := range s {
		s[i] = math.Pow(10, -1+float64(i)/9)
	}
	return s
}

// Parzen computes log-likelihoods under a Gaussian Parzen window (an isotropic
// Gaussian of width σ on each of m samples s_j):
//
//	log p(x) = logsumexp_j(−‖x − s_j‖² / (2σ²)) − log m − (d/2)·log(2πσ²)
//
// through a backend, as one large matrix product per batch of points:
// −‖x − s_j‖²/(2σ²) = x·s_j/σ² − ‖s_j‖²/(2σ²) − ‖x‖²/(2σ²). DenseForward with
// w = Sᵀ/σ² (d×m) and bias b_j = −‖s_j‖²/(2σ²) gives the first two terms for a batch
// of points, LogSumExpRows reduces each row, and the host subtracts ‖x‖²/(2σ²) (in
// float64) and the normaliser. Only the row results (batch×1) come back to the host.
//
// Memory, allocated once by NewParzen: in the backend d×maxSamples (w) +
// batch×maxSamples (the batch's exponents) + maxSamples + batch float32 — for the
// paper's setting (d 784, 10,000 samples, batch 500) 31.4 MB + 20 MB + 42 kB; on the
// host Sᵀ and its scaled copy, 2·d·maxSamples float32 (62.7 MB), and ‖s_j‖² in
// float64. The points themselves live in the backend (see NewPoints).
//
// A Parzen is not safe for concurrent use.
type Parzen struct {
	b                 backend.Backend
	d, maxM, batch    int
	w, bias, y, lse   backend.Tensor // full-capacity allocations
	m                 int            // samples set by SetSamples (0: none)
	wm, biasm         backend.Tensor // views of w and bias for m samples
	sT, wHost         []float32      // d×m: Sᵀ, and Sᵀ/σ² as uploaded
	sq                []float64      // ‖s_j‖²
	biasHost, lseHost []float32
	sigma             float64 // the σ that w and bias hold (0: none)
}

// NewParzen allocates a Parzen evaluator for points of d features, at most maxSamples
// window centres, and batch points per matrix product.
func NewParzen(b backend.Backend, d, maxSamples, batch int) (*Parzen, error) {
	if d < 1 || maxSamples < 1 || batch < 1 {
		return nil, fmt.Errorf("parzen: dimension %d, samples %d and batch %d must be positive", d, maxSamples, batch)
	}
	if d*maxSamples > math.MaxInt32 || batch*maxSamples > math.MaxInt32 {
		return nil, fmt.Errorf("parzen: %d samples of %d features (batch %d) is too many for one tensor", maxSamples, d, batch)
	}
	p := &Parzen{b: b, d: d, maxM: maxSamples, batch: batch}
	var err error
	alloc := func(rows, cols int) backend.Tensor {
		t, e := b.Alloc(backend.F32, rows, cols)
		if e != nil && err == nil {
			err = e
		}
		return t
	}
	p.w, p.bias, p.y, p.lse = alloc(d, maxSamples), alloc(1, maxSamples), alloc(batch, maxSamples), alloc(batch, 1)
	if err != nil {
		return nil, fmt.Errorf("parzen: %w", err)
	}
	p.sT = make([]float32, d*maxSamples)
	p.wHost = make([]float32, d*maxSamples)
	p.sq = make([]float64, maxSamples)
	p.biasHost = make([]float32, maxSamples)
	p.lseHost = make([]float32, batch)
	return p, nil
}

// Points is a set of n points of d features resident in a backend, with their
// squared norms (float64, on the host), ready to be evaluated under Parzen windows.
type Points struct {
	N, D int
	x    backend.Tensor
	sq   []float64
}

// NewPoints uploads the n points of x (n×d, row-major) for evaluation. name labels errors.
func NewPoints(b backend.Backend, name string, x []float32, n, d int) (*Points, error) {
	if n < 1 || d < 1 {
		return nil, fmt.Errorf("parzen: %s is empty (%d points of %d features)", name, n, d)
	}
	if len(x) != n*d {
		return nil, fmt.Errorf("parzen: %s has %d values, want %d points × %d features", name, len(x), n, d)
	}
	pts := &Points{N: n, D: d, sq: make([]float64, n)}
	for i := range n {
		var s float64
		for k, v := range x[i*d : (i+1)*d] {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return nil, fmt.Errorf("parzen: %s point %d feature %d is %g", name, i, k, v)
			}
			s += float64(v) * float64(v)
		}
		pts.sq[i] = s
	}
	var err error
	if pts.x, err = b.Alloc(backend.F32, n, d); err != nil {
		return nil, fmt.Errorf("parzen: %s: %w", name, err)
	}
	if err := b.Upload(pts.x, x); err != nil {
		return nil, fmt.Errorf("parzen: %s: %w", name, err)
	}
	return pts, nil
}

// SetSamples makes the m rows of s (m×d, row-major) the window centres. It checks
// them, transposes them on the host once, and computes their squared norms; the
// weights go to the backend when a σ is first used.
func (p *Parzen) SetSamples(s []float32, m int) error {
	switch {
	case m < 1:
		return fmt.Errorf("parzen: no samples (m = %d)", m)
	case m > p.maxM:
		return fmt.Errorf("parzen: %d samples, but this evaluator holds at most %d", m, p.maxM)
	case len(s) != m*p.d:
		return fmt.Errorf("parzen: samples have %d values, want %d samples × %d features (dimension mismatch?)", len(s), m, p.d)
	}
	d := p.d
	for j := range m {
		row := s[j*d : (j+1)*d]
		var sq float64
		for k, v := range row {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return fmt.Errorf("parzen: sample %d feature %d is %g", j, k, v)
			}
			sq += float64(v) * float64(v)
			p.sT[k*m+j] = v
		}
		p.sq[j] = sq
	}
	var err error
	if p.wm, err = p.b.View(p.w, 0, d, m); err != nil {
		return fmt.Errorf("parzen: %w", err)
	}
	if p.biasm, err = p.b.View(p.bias, 0, 1, m); err != nil {
		return fmt.Errorf("parzen: %w", err)
	}
	p.m, p.sigma = m, 0
	return nil
}

// setSigma uploads w = Sᵀ/σ² and b_j = −‖s_j‖²/(2σ²) unless they hold σ already.
func (p *Parzen) setSigma(sigma float64) error {
	if sigma == p.sigma {
		return nil
	}
	inv := 1 / (sigma * sigma)
	n := p.d * p.m
	f := float32(inv)
	for i, v := range p.sT[:n] {
		p.wHost[i] = v * f
	}
	for j, sq := range p.sq[:p.m] {
		p.biasHost[j] = float32(-sq * inv / 2)
	}
	if err := p.b.Upload(p.wm, p.wHost[:n]); err != nil {
		return fmt.Errorf("parzen: %w", err)
	}
	if err := p.b.Upload(p.biasm, p.biasHost[:p.m]); err != nil {
		return fmt.Errorf("parzen: %w", err)
	}
	p.sigma = sigma
	return nil
}

// LogLikelihoods writes log p(x_i) under the window of width sigma on the current
// samples into out (len pts.N), in batches; it stops between batches when ctx is done.
func (p *Parzen) LogLikelihoods(ctx context.Context, pts *Points, sigma float64, out []float64) error {
	switch {
	case p.m == 0:
		return errors.New("parzen: no samples set")
	case pts == nil || pts.N < 1:
		return errors.New("parzen: no points to evaluate")
	case pts.D != p.d:
		return fmt.Errorf("parzen: points have %d features but the samples %d (dimension mismatch)", pts.D, p.d)
	case len(out) != pts.N:
		return fmt.Errorf("parzen: output of %d values for %d points", len(out), pts.N)
	case !(sigma > 0) || math.IsInf(sigma, 0):
		return fmt.Errorf("parzen: σ must be positive and finite, got %g", sigma)
	}
	if err := p.setSigma(sigma); err != nil {
		return err
	}
	norm := math.Log(float64(p.m)) + float64(p.d)/2*math.Log(2*math.Pi*sigma*sigma)
	half := 1 / (2 * sigma * sigma)
	for r0 := 0; r0 < pts.N; r0 += p.batch {
		if err := ctx.Err(); err != nil {
			return err
		}
		r := min(p.batch, pts.N-r0)
		x, err1 := p.b.View(pts.x, r0*p.d, r, p.d)
		y, err2 := p.b.View(p.y, 0, r, p.m)
		lse, err3 := p.b.View(p.lse, 0, r, 1)
		if err := errors.Join(err1, err2, err3); err != nil {
			return fmt.Errorf("parzen: %w", err)
		}
		p.b.DenseForward(y, x, p.wm, p.biasm, backend.Act{})
		p.b.LogSumExpRows(lse, y)
		if err := p.b.Download(p.lseHost[:r], lse); err != nil {
			return fmt.Errorf("parzen: %w", err)
		}
		for i, v := range p.lseHost[:r] {
			out[r0+i] = float64(v) - pts.sq[r0+i]*half - norm
		}
	}
	return nil
}

// ParzenResult is the outcome of the paper's Parzen-window evaluation.
type ParzenResult struct {
	// LL is the mean log-likelihood of the test points, SE its standard error
	// (population standard deviation / √n, as numpy's std() in the authors' code).
	LL    float64 `json:"ll"`
	SE    float64 `json:"se"`
	Sigma float64 `json:"sigma"` // the width chosen on the validation points
	// Sigmas are the candidates, ValidLL the mean validation log-likelihood of each.
	Sigmas   []float64     `json:"sigmas"`
	ValidLL  []float64     `json:"valid_ll"`
	Samples  int           `json:"samples"`
	Valid    int           `json:"valid_points"`
	Test     int           `json:"test_points"`
	Duration time.Duration `json:"-"`
	Seconds  float64       `json:"seconds"`
}

// Evaluate runs the paper's procedure: the m samples (m×d) are the window centres; σ
// is the candidate with the highest mean log-likelihood of the valid points; the
// result is the mean log-likelihood of the test points at that σ ± its standard
// error. A candidate whose validation mean is not a number is an error.
func (p *Parzen) Evaluate(ctx context.Context, samples []float32, m int, valid, test *Points, sigmas []float64) (ParzenResult, error) {
	start := time.Now()
	var res ParzenResult
	if len(sigmas) == 0 {
		return res, errors.New("parzen: no candidate σ")
	}
	for _, s := range sigmas {
		if !(s > 0) || math.IsInf(s, 0) {
			return res, fmt.Errorf("parzen: candidate σ %g is not positive and finite", s)
		}
	}
	if valid == nil || test == nil {
		return res, errors.New("parzen: need validation and test points")
	}
	if err := p.SetSamples(samples, m); err != nil {
		return res, err
	}
	vll := make([]float64, valid.N)
	res.Sigmas = append([]float64(nil), sigmas...)
	best := -1
	for k, s := range sigmas {
		if err := p.LogLikelihoods(ctx, valid, s, vll); err != nil {
			return res, err
		}
		mean, _ := meanSE(vll)
		if math.IsNaN(mean) {
			return res, fmt.Errorf("parzen: the validation log-likelihood at σ = %g is NaN", s)
		}
		res.ValidLL = append(res.ValidLL, mean)
		if best < 0 || mean > res.ValidLL[best] {
			best = k
		}
	}
	res.Sigma = sigmas[best]
	tll := make([]float64, test.N)
	if err := p.LogLikelihoods(ctx, test, res.Sigma, tll); err != nil {
		return res, err
	}
	res.LL, res.SE = meanSE(tll)
	res.Samples, res.Valid, res.Test = m, valid.N, test.N
	res.Duration = time.Since(start)
	res.Seconds = res.Duration.Seconds()
	return res, nil
}

// meanSE is the mean of x and its standard error std(x)/√n with the population
// standard deviation (ddof 0), both accumulated in float64.
func meanSE(x []float64) (mean, se float64) {
	n := float64(len(x))
	for _, v := range x {
		mean += v
	}
	mean /= n
	var ss float64
	for _, v := range x {
		ss += (v - mean) * (v - mean)
	}
	return mean, math.Sqrt(ss/n) / math.Sqrt(n)
}
