package data

import (
	"math"
	"slices"
	"testing"
)

func TestRingModes(t *testing.T) {
	tests := []struct {
		modes  int
		radius float64
		want   [][2]float64
	}{
		{4, 2, [][2]float64{{2, 0}, {0, 2}, {-2, 0}, {0, -2}}},
		{1, 3, [][2]float64{{3, 0}}},
		{2, 1, [][2]float64{{1, 0}, {-1, 0}}},
		{0, 1, nil},
		{-3, 1, nil},
	}
	for _, tt := range tests {
		got := RingModes(tt.modes, tt.radius)
		if len(got) != len(tt.want) || (got == nil) != (tt.want == nil) {
			t.Errorf("RingModes(%d, %v) = %v, want %v", tt.modes, tt.radius, got, tt.want)
			continue
		}
		for k := range got {
			if math.Abs(got[k][0]-tt.want[k][0]) > 1e-12 || math.Abs(got[k][1]-tt.want[k][1]) > 1e-12 {
				t.Errorf("RingModes(%d, %v)[%d] = %v, want %v", tt.modes, tt.radius, k, got[k], tt.want[k])
			}
		}
	}
	for k, c := range RingModes(8, 2) {
		if r := math.Hypot(c[0], c[1]); math.Abs(r-2) > 1e-12 {
			t.Errorf("RingModes(8, 2)[%d] = %v is at radius %v", k, c, r)
		}
	}
}

func TestRing(t *testing.T) {
	tests := []struct {
		n, modes    int
		radius, std float64
	}{
		{4000, 8, 2, 0.02},
		{1000, 1, 1, 0.1},
		{5000, 25, 10, 0.05},
		{300, 3, 1, 0},
		{2000, 6, 5, -0.1}, // negative std is taken as 0.1
	}
	for _, tt := range tests {
		s := Ring(tt.n, tt.modes, tt.radius, tt.std, 42)
		if s.N != tt.n || s.Dim != 2 || len(s.X) != 2*tt.n || s.Shape != (Shape{}) || len(s.Labels) != tt.n {
			t.Errorf("Ring(%d, %d): N %d Dim %d len(X) %d Shape %+v len(Labels) %d",
				tt.n, tt.modes, s.N, s.Dim, len(s.X), s.Shape, len(s.Labels))
			continue
		}
		centres := RingModes(tt.modes, tt.radius)
		std := math.Abs(tt.std)
		counts := make([]int, tt.modes)
		var sq float64 // sum of squared distances to the labelled centre
		for i := range s.N {
			p, k := s.Row(i), int(s.Labels[i])
			counts[k]++
			dx, dy := float64(p[0])-centres[k][0], float64(p[1])-centres[k][1]
			d := math.Hypot(dx, dy)
			sq += dx*dx + dy*dy
			if d > 6*std+1e-6 {
				t.Errorf("Ring(%d, %d): point %d %v is %.3f from its mode %d %v (std %v)", tt.n, tt.modes, i, p, d, k, centres[k], std)
				break
			}
			if nearest := nearestMode(p, centres); nearest != k {
				t.Errorf("Ring(%d, %d): point %d %v labelled %d is nearest mode %d", tt.n, tt.modes, i, p, k, nearest)
				break
			}
		}
		// The spread matches std: E|p-c|² = 2 std².
		if got := math.Sqrt(sq / float64(2*s.N)); math.Abs(got-std) > 0.1*std+1e-6 {
			t.Errorf("Ring(%d, %d, std %v): empirical std %.4f", tt.n, tt.modes, tt.std, got)
		}
		// Equal weights: every mode within 5 sigma of n/modes (binomial).
		p := 1 / float64(tt.modes)
		sigma := math.Sqrt(float64(tt.n) * p * (1 - p))
		for k, c := range counts {
			if math.Abs(float64(c)-float64(tt.n)*p) > 5*sigma+1 {
				t.Errorf("Ring(%d, %d): mode %d has %d points, want about %.0f", tt.n, tt.modes, k, c, float64(tt.n)*p)
			}
		}
	}
}

func nearestMode(p []float32, centres [][2]float64) int {
	best, bestD := -1, math.Inf(1)
	for k, c := range centres {
		if d := math.Hypot(float64(p[0])-c[0], float64(p[1])-c[1]); d < bestD {
			best, bestD = k, d
		}
	}
	return best
}

func TestRingDeterministic(t *testing.T) {
	a, b := Ring(100, 8, 2, 0.1, 7), Ring(100, 8, 2, 0.1, 7)
	if !slices.Equal(a.X, b.X) || !slices.Equal(a.Labels, b.Labels) {
		t.Error("Ring with the same seed gave different sets")
	}
	if c := Ring(100, 8, 2, 0.1, 8); slices.Equal(a.X, c.X) {
		t.Error("Ring with different seeds gave the same set")
	}
	if short := Ring(10, 8, 2, 0.1, 7); !slices.Equal(short.X, a.X[:20]) {
		t.Error("Ring(10) is not a prefix of Ring(100) with the same seed")
	}
}

func TestRingDegenerate(t *testing.T) {
	tests := []struct {
		n, modes int
		wantN    int
		labels   bool
	}{
		{0, 8, 0, false},
		{-5, 8, 0, false},
		{10, 0, 0, false},
		{10, -1, 0, false},
		{10, 300, 10, false}, // more modes than a uint8 label can name
		{10, 256, 10, true},
	}
	for _, tt := range tests {
		s := Ring(tt.n, tt.modes, 1, 0.1, 1)
		if s.N != tt.wantN || s.Dim != 2 || len(s.X) != 2*tt.wantN || s.X == nil {
			t.Errorf("Ring(%d, %d): N %d Dim %d len(X) %d (nil %v), want N %d", tt.n, tt.modes, s.N, s.Dim, len(s.X), s.X == nil, tt.wantN)
		}
		if (s.Labels != nil) != tt.labels {
			t.Errorf("Ring(%d, %d): Labels %v, want labels: %v", tt.n, tt.modes, s.Labels, tt.labels)
		}
	}
}
