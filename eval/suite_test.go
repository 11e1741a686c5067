package eval

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
)

func TestSuite(t *testing.T) {
	c := trainTiny(t)
	b := c.b
	sp := tinySplits()
	s, err := NewSuite(b, sp, Options{Parzen: true, Classifier: true, Samples: 200, ValidPoints: 40, Batch: 16, Model: c})
	if err != nil {
		t.Fatal(err)
	}
	samples := sp.Train.X[:120*8]
	res, err := s.Evaluate(context.Background(), samples)
	if err != nil {
		t.Fatal(err)
	}
	if res.Samples != 120 || res.Parzen == nil || res.Classifier == nil || res.Duration <= 0 {
		t.Fatalf("result %+v", res)
	}
	// The Parzen part is the standalone procedure on the first 40 validation points
	// and every test point.
	p, _ := NewParzen(b, 8, 120, 7)
	valid, _ := NewPoints(b, "v", sp.Valid.X[:40*8], 40, 8)
	test, _ := NewPoints(b, "t", sp.Test.X, sp.Test.N, 8)
	want, err := p.Evaluate(context.Background(), samples, 120, valid, test, PaperSigmas())
	if err != nil {
		t.Fatal(err)
	}
	if !near(res.Parzen.LL, want.LL, 1e-5) || res.Parzen.Sigma != want.Sigma || res.Parzen.Valid != 40 || res.Parzen.Test != 150 {
		t.Errorf("suite Parzen %+v, standalone %+v", *res.Parzen, want)
	}
	// The classifier part: the score of the samples' predictions, the FD against the
	// test images' features.
	probs, feats, _ := c.Infer(context.Background(), samples, 120)
	score, _ := ClassifierScore(probs, 120, 3)
	g, _ := FitGaussian(feats, 120, 16)
	_, tf, _ := c.Infer(context.Background(), sp.Test.X, sp.Test.N)
	real, _ := FitGaussian(tf, sp.Test.N, 16)
	fd, _ := FrechetDistance(real, g)
	if !near(res.Classifier.Score, score, 1e-12) || !near(res.Classifier.FrechetDistance, fd, 1e-9) {
		t.Errorf("classifier %+v, want score %g FD %g", *res.Classifier, score, fd)
	}
	total := 0
	for _, k := range res.Classifier.ClassCounts {
		total += k
	}
	if total != 120 {
		t.Errorf("class counts %v", res.Classifier.ClassCounts)
	}
	// Real test images against themselves: FD 0.
	self, err := s.Evaluate(context.Background(), sp.Test.X[:150*8])
	if err != nil {
		t.Fatal(err)
	}
	if self.Classifier.FrechetDistance > 1e-9 {
		t.Errorf("FD of the test images against themselves: %g", self.Classifier.FrechetDistance)
	}
	if sc, acc := s.RealTest(); !near(sc, self.Classifier.Score, 1e-12) || acc < 0.95 {
		t.Errorf("real test score %g (evaluated %g), accuracy %g", sc, self.Classifier.Score, acc)
	}
	m := res.Metrics()
	for _, k := range []string{"parzen_ll", "parzen_se", "parzen_sigma", "classifier_score", "frechet_distance", "eval_seconds"} {
		if _, ok := m[k]; !ok {
			t.Errorf("metrics lack %s: %v", k, m)
		}
	}
	raw, _ := json.Marshal(res)
	for _, k := range []string{`"parzen":{"ll":`, `"sigma":`, `"classifier":{"score":`, `"frechet_distance":`} {
		if !strings.Contains(string(raw), k) {
			t.Errorf("JSON lacks %s: %s", k, raw)
		}
	}

	// Only one part when asked.
	onlyP, err := NewSuite(b, sp, Options{Parzen: true, Samples: 200, Model: c})
	if err != nil {
		t.Fatal(err)
	}
	r, err := onlyP.Evaluate(context.Background(), samples)
	if err != nil || r.Classifier != nil || r.Parzen == nil {
		t.Errorf("Parzen only: %+v, %v", r, err)
	}
	if _, ok := r.Metrics()["frechet_distance"]; ok {
		t.Error("metrics report a Fréchet distance that was not computed")
	}

	// Bad input names the problem; a cancelled context stops the evaluation.
	nan := append([]float32(nil), samples...)
	nan[8*5+2] = float32(math.NaN())
	for _, tc := range []struct {
		x    []float32
		want string
	}{
		{samples[:8*120+3], "whole number"},
		{samples[:8], "1 samples, want 2..200"},
		{sp.Train.X[:201*8], "201 samples"},
		{nan, "sample 5 feature 2 is NaN"},
	} {
		if _, err := s.Evaluate(context.Background(), tc.x); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("got %v, want an error with %q", err, tc.want)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Evaluate(ctx, samples); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
	for _, tc := range []struct {
		opt  Options
		want string
	}{
		{Options{}, "nothing to evaluate"},
		{Options{Parzen: true, Samples: 1}, "samples 1"},
		{Options{Classifier: true, Model: &Classifier{Arch: ClassifierArch{In: 5}}}, "takes 5 features"},
	} {
		if _, err := NewSuite(b, sp, tc.opt); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("NewSuite(%+v): %v, want %q", tc.opt, err, tc.want)
		}
	}
	if _, err := NewSuite(b, nil, Options{Parzen: true}); err == nil || !strings.Contains(err.Error(), "test split") {
		t.Errorf("no data: %v", err)
	}
}
