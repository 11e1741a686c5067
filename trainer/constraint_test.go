package trainer

import (
	"math"
	"testing"
)

// worstColumnNorm is the largest weight-column norm of D's layer.
func worstColumnNorm(t *testing.T, tr *Trainer, layer int) float64 {
	t.Helper()
	params := make([]float32, tr.D.Size())
	if err := tr.b.Download(params, tr.D.Params); err != nil {
		t.Fatal(err)
	}
	worst := 0.0
	for _, p := range tr.D.ParamList() {
		if p.IsBias || p.Layer != layer {
			continue
		}
		for j := 0; j < p.Cols; j++ {
			var s float64
			for i := 0; i < p.Rows; i++ {
				v := float64(params[p.Offset+i*p.Cols+j])
				s += v * v
			}
			worst = math.Max(worst, math.Sqrt(s))
		}
	}
	return worst
}

// A layer with max_col_norm leaves every update with no weight column above it,
// where the same run without the constraint grows past it.
func TestMaxColNormAppliedAfterUpdates(t *testing.T) {
	const limit = 0.05
	for _, opt := range []string{"sgd", "adam"} {
		for _, constrained := range []bool{false, true} {
			c := smallConfig()
			c.Optimizer.Kind = opt
			c.Optimizer.LR = 0.5 // large steps: columns outgrow the limit
			if constrained {
				c.Discriminator[1].MaxColNorm = limit
			}
			tr, err := New(c, newCPU(t), randomImages(100), quietLog())
			if err != nil {
				t.Fatal(err)
			}
			losses(t, tr, 3)
			worst := worstColumnNorm(t, tr, 1)
			if constrained && worst > limit*(1+1e-5) {
				t.Errorf("%s: a column of norm %g, limit %g", opt, worst, limit)
			}
			if !constrained && worst <= limit {
				t.Fatalf("%s: without the constraint the largest column norm is %g: the test shows nothing", opt, worst)
			}
		}
	}
}
