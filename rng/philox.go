// Package rng is gantrain's counter-based random number generator: Philox4x32-10
// (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011).
//
// Every random number in a training step (noise, dropout masks) is a pure function of
// (seed, stream, element index), so the CPU and GPU backends draw the same values for
// the same element without sharing any state, and a resumed run draws exactly what an
// uninterrupted one would have. The functions here are the specification that the CUDA
// kernels in kernels/ reproduce bit for bit.
package rng

import "math"

// Philox4x32-10 constants.
const (
	m0 = 0xD2511F53
	m1 = 0xCD9E8D57
	w0 = 0x9E3779B9
	w1 = 0xBB67AE85
)

// Philox4x32 runs the ten rounds of Philox4x32-10 on counter ctr with key key.
func Philox4x32(ctr [4]uint32, key [2]uint32) [4]uint32 {
	c0, c1, c2, c3 := philox(ctr[0], ctr[1], ctr[2], ctr[3], key[0], key[1])
	return [4]uint32{c0, c1, c2, c3}
}

// philox is Philox4x32-10 on scalars, which stay in registers.
func philox(c0, c1, c2, c3, k0, k1 uint32) (uint32, uint32, uint32, uint32) {
	for i := 0; i < 10; i++ {
		p0 := uint64(m0) * uint64(c0)
		p1 := uint64(m1) * uint64(c2)
		c0, c1, c2, c3 = uint32(p1>>32)^c1^k0, uint32(p1), uint32(p0>>32)^c3^k1, uint32(p0)
		k0 += w0
		k1 += w1
	}
	return c0, c1, c2, c3
}

// Stream names one sequence of random words: Seed is the run's seed and Offset
// separates the draws of different call sites and steps (see trainer's stream layout).
type Stream struct {
	Seed   uint64
	Offset uint64
}

// Block returns the four words of block b of the stream: counter (b, offset), key seed.
func (s Stream) Block(b uint64) [4]uint32 {
	c0, c1, c2, c3 := philox(uint32(b), uint32(b>>32), uint32(s.Offset), uint32(s.Offset>>32), uint32(s.Seed), uint32(s.Seed>>32))
	return [4]uint32{c0, c1, c2, c3}
}

// Block2 returns blocks b and b+1 of the stream. It computes the two side by side,
// which keeps more of the CPU's multipliers busy than two calls of Block.
func (s Stream) Block2(b uint64) (x, y [4]uint32) {
	x0, x1, x2, x3 := uint32(b), uint32(b>>32), uint32(s.Offset), uint32(s.Offset>>32)
	y0, y1, y2, y3 := uint32(b+1), uint32((b+1)>>32), x2, x3
	k0, k1 := uint32(s.Seed), uint32(s.Seed>>32)
	for i := 0; i < 10; i++ {
		p0, p1 := uint64(m0)*uint64(x0), uint64(m1)*uint64(x2)
		q0, q1 := uint64(m0)*uint64(y0), uint64(m1)*uint64(y2)
		x0, x1, x2, x3 = uint32(p1>>32)^x1^k0, uint32(p1), uint32(p0>>32)^x3^k1, uint32(p0)
		y0, y1, y2, y3 = uint32(q1>>32)^y1^k0, uint32(q1), uint32(q0>>32)^y3^k1, uint32(q0)
		k0 += w0
		k1 += w1
	}
	return [4]uint32{x0, x1, x2, x3}, [4]uint32{y0, y1, y2, y3}
}

// Word returns word i of the stream (word i%4 of block i/4).
func (s Stream) Word(i uint64) uint32 {
	return s.Block(i / 4)[i%4]
}

// ToUnit maps a random word to a float32 in [0, 1) with 24 random bits; exact.
func ToUnit(x uint32) float32 {
	return float32(x>>8) * (1.0 / 16777216.0)
}

// ToUniform maps a random word to [lo, hi). Each float32 operation is rounded on its
// own (no fused multiply-add) so that the CUDA twin (__fmul_rn, __fadd_rn) agrees bit
// for bit. Rounding lo + width·u can reach hi when the range is not centred on zero;
// such a value becomes the largest float32 below hi.
func ToUniform(x uint32, lo, hi float32) float32 {
	width := hi - lo
	scaled := float32(width * ToUnit(x))
	v := float32(scaled + lo)
	if v >= hi {
		v = math.Nextafter32(hi, lo)
	}
	return v
}

// Keep reports whether a dropout unit whose word is x is kept with probability keep.
func Keep(x uint32, keep float32) bool {
	return ToUnit(x) < keep
}

// KeepThreshold is Keep as an integer comparison: for keep in (0, 1], Keep(x, keep)
// is x>>8 < KeepThreshold(keep). (ToUnit(x) is exactly (x>>8)/2²⁴, and keep·2²⁴ is
// exact in float64, so x>>8 < keep·2²⁴ is x>>8 < ⌈keep·2²⁴⌉.)
func KeepThreshold(keep float32) uint32 {
	return uint32(math.Ceil(float64(keep) * (1 << 24)))
}

// ToNormal maps two random words to one standard normal value by the Box–Muller
// transform, computed in float64 and rounded once.
func ToNormal(x0, x1 uint32) float32 {
	u1 := (float64(x0>>8) + 1) * (1.0 / 16777216.0) // (0, 1]: log is finite
	u2 := float64(x1>>8) * (1.0 / 16777216.0)
	return float32(math.Sqrt(-2*math.Log(u1)) * math.Cos(2*math.Pi*u2))
}

// NormalAt returns normal element e of the stream: it uses words 2(e%2) and 2(e%2)+1 of block e/2.
func (s Stream) NormalAt(e uint64) float32 {
	blk := s.Block(e / 2)
	j := 2 * (e % 2)
	return ToNormal(blk[j], blk[j+1])
}

// Permutation fills perm with a permutation of 0, 1, …, len(perm)−1 drawn from the
// stream: a Fisher–Yates shuffle in which step i (from the top down) takes word i.
// It depends only on the stream and the length, so every run, backend and resumed run
// draws the same order. Lemire's multiply-shift maps a word to [0, i]; its bias is
// below 2^-8 for lengths under 2^24 and does not matter for a shuffle.
func (s Stream) Permutation(perm []int32) {
	for i := range perm {
		perm[i] = int32(i)
	}
	for i := len(perm) - 1; i > 0; i-- {
		j := int((uint64(s.Word(uint64(i))) * uint64(i+1)) >> 32)
		perm[i], perm[j] = perm[j], perm[i]
	}
}
