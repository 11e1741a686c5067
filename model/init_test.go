package model

import (
	"math"
	"testing"

	"github.com/gantrain/gantrain/rng"
)

// bias_init data_mean sets an output bias to the pre-activation of the data's mean, as
// pylearn2's init_sigmoid_bias_from_marginals did for the paper's generator: the mean
// clipped to [1e-7, 1 − 1e-7] before the logit, so an always-black pixel starts at
// logit(1e-7) ≈ −16.12; an identity output takes the mean itself.
func TestInitialParamsDataMeanBias(t *testing.T) {
	b := newCPU(t)
	logit := func(p float64) float32 { return float32(math.Log(p / (1 - p))) }
	mean := []float32{0, 1e-9, 2e-7, 0.25, 1 - 1e-9, 1}
	for _, c := range []struct {
		act  string
		want []float32
	}{
		{"sigmoid", []float32{logit(1e-7), logit(1e-7), logit(float64(float32(2e-7))), logit(0.25), logit(1 - 1e-7), logit(1 - 1e-7)}},
		{"identity", mean},
	} {
		specs := []LayerSpec{
			{Type: Dense, Units: 3, Activation: "relu", InitRange: 0.5},
			{Type: Dense, Activation: c.act, InitRange: 0.5, BiasInit: BiasDataMean},
		}
		n, err := Build(b, "generator", specs, Flat(2), Flat(len(mean)), OutputHead)
		if err != nil {
			t.Fatal(err)
		}
		p, err := n.InitialParams(rng.Stream{Seed: 1}, mean)
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range n.ParamList() {
			if !q.IsBias {
				continue
			}
			for j := 0; j < q.Cols; j++ {
				got, want := p[q.Offset+j], float32(0)
				if q.Layer == 1 {
					want = c.want[j]
				}
				if math.Abs(float64(got-want)) > 1e-5*math.Max(1, math.Abs(float64(want))) {
					t.Errorf("%s output: %s[%d] = %v, want %v", c.act, q.Name, j, got, want)
				}
			}
		}
		if _, err := n.InitialParams(rng.Stream{Seed: 1}, mean[:2]); err == nil {
			t.Errorf("%s output: a data mean of the wrong length was accepted", c.act)
		}
	}
}
