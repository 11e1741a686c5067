package trainer

import "testing"

// D's targets are the real label on the real half and 0 on the fake half; the
// generator's targets stay 1 (non-saturating) or 0 (minimax) whatever the smoothing.
func TestTargets(t *testing.T) {
	for _, tc := range []struct {
		gLoss   string
		label   float32
		gTarget float32
	}{{"nonsaturating", 1, 1}, {"nonsaturating", 0.9, 1}, {"minimax", 0.8, 0}} {
		c := smallConfig()
		c.Train.GLoss, c.Train.RealLabel = tc.gLoss, float64(tc.label)
		b := newCPU(t)
		tr, err := New(c, b, randomImages(100), quietLog())
		if err != nil {
			t.Fatal(err)
		}
		m := c.Train.Batch
		d := make([]float32, 2*m)
		g := make([]float32, m)
		if err := b.Download(d, tr.dTargets); err != nil {
			t.Fatal(err)
		}
		if err := b.Download(g, tr.gTargets); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < m; i++ {
			if d[i] != tc.label || d[m+i] != 0 || g[i] != tc.gTarget {
				t.Fatalf("%s, real label %g: row %d: D targets %g (real) %g (fake), G target %g; want %g, 0, %g",
					tc.gLoss, tc.label, i, d[i], d[m+i], g[i], tc.label, tc.gTarget)
			}
		}
	}
}
