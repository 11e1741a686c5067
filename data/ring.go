package data

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// ringStream is the second PCG seed word, fixed so that Ring depends on seed alone.
const ringStream = 0x52494e4744415441 // "RINGDATA"

// Ring returns the 2-D toy set: n points drawn from an equal-weight mixture
// of modes isotropic Gaussians with standard deviation std, whose centres
// (RingModes) are evenly spaced on a circle of the given radius. The draw is
// deterministic given seed (math/rand/v2's PCG). Dim is 2 and Shape is zero;
// when modes <= 256, Labels holds each point's mode index. A negative std is
// taken as its absolute value; n <= 0 or modes <= 0 gives an empty Set.
func Ring(n, modes int, radius, std float64, seed uint64) *Set {
	s := &Set{
		Name: fmt.Sprintf("ring%d", max(modes, 0)),
		Dim:  2,
	}
	centres := RingModes(modes, radius)
	if n <= 0 || len(centres) == 0 {
		s.X = []float32{}
		return s
	}
	std = math.Abs(std)
	rng := rand.New(rand.NewPCG(seed, ringStream))
	s.N = n
	s.X = make([]float32, 2*n)
	if modes <= 256 {
		s.Labels = make([]uint8, n)
	}
	for i := range n {
		k := rng.IntN(len(centres))
		c := centres[k]
		s.X[2*i] = float32(c[0] + std*rng.NormFloat64())
		s.X[2*i+1] = float32(c[1] + std*rng.NormFloat64())
		if s.Labels != nil {
			s.Labels[i] = uint8(k)
		}
	}
	return s
}

// RingModes returns the centres of Ring's Gaussians: modes points evenly
// spaced on a circle of the given radius around the origin, the first at
// (radius, 0) and the rest counter-clockwise. It returns nil for modes <= 0.
func RingModes(modes int, radius float64) [][2]float64 {
	if modes <= 0 {
		return nil
	}
	centres := make([][2]float64, modes)
	for k := range centres {
		a := 2 * math.Pi * float64(k) / float64(modes)
		centres[k] = [2]float64{radius * math.Cos(a), radius * math.Sin(a)}
	}
	return centres
}
