// Package eval measures how well a generator models MNIST: the Gaussian Parzen-window
// log-likelihood of the 2014 adversarial-nets paper (Table 1), and two scores from an
// MNIST classifier that gantrain trains itself (committed and embedded): the
// classifier score exp(E KL(p(y|x) ‖ p(y))) and the Fréchet distance between the
// classifier's penultimate features of generated and of real test images.
//
// The heavy work runs through a backend.Backend, so it runs on the GPU when the
// trainer has one. A Suite holds everything that does not change between
// evaluations (the validation and test images in the backend, the classifier, the
// statistics of the real test features) and evaluates a set of samples in one call:
//
//	s, err := eval.NewSuite(b, splits, eval.Options{Parzen: true, Classifier: true})
//	res, err := s.Evaluate(ctx, samples) // samples: n×784 in [0, 1], n ≤ Options.Samples
//
// The package does not import trainer; the trainer and `gantrain eval` import it.
package eval

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/gantrain/gantrain/backend"
	"github.com/gantrain/gantrain/data"
)

// Options configure a Suite. The zero value of each field means its default.
type Options struct {
	Parzen     bool // the Parzen-window log-likelihood
	Classifier bool // the classifier score and Fréchet distance
	// Samples is the most samples Evaluate takes (default 10,000, the paper's).
	Samples int
	// ValidPoints is how many of the first validation images choose σ (default
	// 1,000); TestPoints how many of the first test images are evaluated, by the
	// Parzen window and as the Fréchet distance's real set (default all, 10,000).
	// Fewer than the defaults is for quick checks, not for numbers to report.
	ValidPoints, TestPoints int
	// Batch is the number of points per Parzen matrix product (default 500).
	Batch int
	// Sigmas are the Parzen candidates (default PaperSigmas).
	Sigmas []float64
	// Model is the classifier (default: the embedded MNIST classifier).
	Model *Classifier
}

// Suite evaluates sets of samples against fixed data. It is not safe for concurrent
// use (nor is a backend).
type Suite struct {
	b           backend.Backend
	opt         Options
	d           int
	parzen      *Parzen
	valid, test *Points
	clf         *Classifier
	real        *Gaussian // penultimate features of the real test images
	realScore   float64   // classifier score of the real test images
	realAcc     float64   // classifier accuracy on them
}

// Result is one evaluation. Parzen and Classifier are nil when not computed.
type Result struct {
	Samples    int               `json:"samples"`
	Parzen     *ParzenResult     `json:"parzen,omitempty"`
	Classifier *ClassifierResult `json:"classifier,omitempty"`
	Duration   time.Duration     `json:"-"`
	Seconds    float64           `json:"seconds"`
}

// ClassifierResult holds the classifier-based scores of a set of samples.
type ClassifierResult struct {
	// Score is exp(E_x KL(p(y|x) ‖ p(y))) over the samples (1 to 10; higher is better).
	Score float64 `json:"score"`
	// FrechetDistance compares the Gaussians fitted to the classifier's penultimate
	// features of the samples and of the real test images (lower is better).
	FrechetDistance float64 `json:"frechet_distance"`
	// ClassCounts is how many samples the classifier assigns to each class.
	ClassCounts []int         `json:"class_counts"`
	Duration    time.Duration `json:"-"`
	Seconds     float64       `json:"seconds"`
}

// Metrics flattens r for metrics logs and gauges: parzen_ll, parzen_se,
// parzen_sigma, classifier_score, frechet_distance (those computed) and eval_seconds.
func (r Result) Metrics() map[string]float64 {
	m := map[string]float64{"eval_seconds": r.Seconds}
	if p := r.Parzen; p != nil {
		m["parzen_ll"], m["parzen_se"], m["parzen_sigma"] = p.LL, p.SE, p.Sigma
	}
	if c := r.Classifier; c != nil {
		m["classifier_score"], m["frechet_distance"] = c.Score, c.FrechetDistance
	}
	return m
}

// NewSuite prepares the evaluations that opt enables, against splits.Valid (Parzen σ
// selection) and splits.Test: it uploads those images to b, loads the classifier
// and computes the statistics of the real test images' features.
func NewSuite(b backend.Backend, splits *data.Splits, opt Options) (*Suite, error) {
	opt, err := opt.resolve(splits)
	if err != nil {
		return nil, err
	}
	test := splits.Test
	s := &Suite{b: b, opt: opt, d: test.Dim}
	testX := test.X[:opt.TestPoints*test.Dim]
	if opt.Parzen {
		if err := s.prepareParzen(splits.Valid, test, testX); err != nil {
			return nil, err
		}
	}
	if opt.Classifier {
		if err := s.prepareClassifier(test, testX); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// resolve fills in the options left zero and checks them against splits.
func (opt Options) resolve(splits *data.Splits) (Options, error) {
	if !opt.Parzen && !opt.Classifier {
		return opt, errors.New("eval: nothing to evaluate (enable Parzen or Classifier)")
	}
	if opt.Samples == 0 {
		opt.Samples = 10000
	}
	if opt.ValidPoints == 0 {
		opt.ValidPoints = 1000
	}
	if opt.Batch == 0 {
		opt.Batch = 500
	}
	if opt.Sigmas == nil {
		opt.Sigmas = PaperSigmas()
	}
	if opt.Samples < 2 || opt.ValidPoints < 1 || opt.TestPoints < 0 || opt.Batch < 1 {
		return opt, fmt.Errorf("eval: samples %d, validation points %d, test points %d, batch %d: want ≥ 2, ≥ 1, ≥ 0 (0: all), ≥ 1",
			opt.Samples, opt.ValidPoints, opt.TestPoints, opt.Batch)
	}
	if splits == nil || splits.Test == nil || splits.Test.N == 0 || (opt.Parzen && (splits.Valid == nil || splits.Valid.N == 0)) {
		return opt, errors.New("eval: need the test split (and the validation split for the Parzen window)")
	}
	if opt.TestPoints == 0 || opt.TestPoints > splits.Test.N {
		opt.TestPoints = splits.Test.N
	}
	if opt.TestPoints < 2 {
		return opt, fmt.Errorf("eval: %d test points, need at least 2", opt.TestPoints)
	}
	return opt, nil
}

// prepareParzen puts the Parzen window's validation and test points (testX, the
// test set's first opt.TestPoints rows) on the backend.
func (s *Suite) prepareParzen(valid, test *data.Set, testX []float32) error {
	if valid.Dim != test.Dim {
		return fmt.Errorf("eval: validation images have %d features, test images %d", valid.Dim, test.Dim)
	}
	nv := min(s.opt.ValidPoints, valid.N)
	var err error
	if s.parzen, err = NewParzen(s.b, s.d, s.opt.Samples, s.opt.Batch); err != nil {
		return err
	}
	if s.valid, err = NewPoints(s.b, valid.Name, valid.X[:nv*valid.Dim], nv, valid.Dim); err != nil {
		return err
	}
	s.test, err = NewPoints(s.b, test.Name, testX, s.opt.TestPoints, test.Dim)
	return err
}

// prepareClassifier loads the classifier and computes what generated samples are
// compared with: the test points' (testX) feature Gaussian, classifier score and
// accuracy.
func (s *Suite) prepareClassifier(test *data.Set, testX []float32) error {
	s.clf = s.opt.Model
	if s.clf == nil {
		var err error
		if s.clf, err = LoadDefaultClassifier(s.b); err != nil {
			return err
		}
	}
	if s.clf.Arch.In != s.d {
		return fmt.Errorf("eval: the classifier takes %d features, the images have %d", s.clf.Arch.In, s.d)
	}
	n := s.opt.TestPoints
	probs, feats, err := s.clf.Infer(context.Background(), testX, n)
	if err != nil {
		return err
	}
	if s.real, err = FitGaussian(feats, n, s.clf.NumFeatures()); err != nil {
		return err
	}
	if s.realScore, err = ClassifierScore(probs, n, s.clf.Arch.Classes); err != nil {
		return err
	}
	s.realAcc = math.NaN()
	if len(test.Labels) >= n {
		s.realAcc = Accuracy(probs, s.clf.Arch.Classes, test.Labels[:n])
	}
	return nil
}

// Options returns the suite's options with the defaults filled in.
func (s *Suite) Options() Options { return s.opt }

// RealTest returns the classifier score of the real test images and the classifier's
// accuracy on them (NaN without labels); zero without the classifier.
func (s *Suite) RealTest() (score, accuracy float64) { return s.realScore, s.realAcc }

// Evaluate scores n samples (samples is n×784 row-major in [0, 1], 2 ≤ n ≤
// Options.Samples; the paper's Parzen procedure uses 10,000). It stops between
// batches when ctx is done.
func (s *Suite) Evaluate(ctx context.Context, samples []float32) (Result, error) {
	start := time.Now()
	var res Result
	if len(samples)%s.d != 0 {
		return res, fmt.Errorf("eval: %d sample values is not a whole number of %d-feature images", len(samples), s.d)
	}
	n := len(samples) / s.d
	if n < 2 || n > s.opt.Samples {
		return res, fmt.Errorf("eval: %d samples, want 2..%d", n, s.opt.Samples)
	}
	for i, v := range samples {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return res, fmt.Errorf("eval: sample %d feature %d is %g", i/s.d, i%s.d, v)
		}
	}
	res.Samples = n
	if s.opt.Parzen {
		p, err := s.parzen.Evaluate(ctx, samples, n, s.valid, s.test, s.opt.Sigmas)
		if err != nil {
			return res, err
		}
		res.Parzen = &p
	}
	if s.opt.Classifier {
		c, err := s.classify(ctx, samples, n)
		if err != nil {
			return res, err
		}
		res.Classifier = c
	}
	res.Duration = time.Since(start)
	res.Seconds = res.Duration.Seconds()
	return res, nil
}

func (s *Suite) classify(ctx context.Context, samples []float32, n int) (*ClassifierResult, error) {
	start := time.Now()
	probs, feats, err := s.clf.Infer(ctx, samples, n)
	if err != nil {
		return nil, err
	}
	C := s.clf.Arch.Classes
	r := &ClassifierResult{ClassCounts: make([]int, C)}
	if r.Score, err = ClassifierScore(probs, n, C); err != nil {
		return nil, err
	}
	for i := range n {
		row, best := probs[i*C:(i+1)*C], 0
		for j, p := range row {
			if p > row[best] {
				best = j
			}
		}
		r.ClassCounts[best]++
	}
	g, err := FitGaussian(feats, n, s.clf.NumFeatures())
	if err != nil {
		return nil, err
	}
	if r.FrechetDistance, err = FrechetDistance(s.real, g); err != nil {
		return nil, err
	}
	r.Duration = time.Since(start)
	r.Seconds = r.Duration.Seconds()
	return r, nil
}
