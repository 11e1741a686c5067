package rng

import (
	"math"
	"slices"
	"testing"
)

// Known-answer vectors of the Random123 distribution (kat_vectors), Philox4x32-10:
// counter[4] key[2] → output[4].
func TestPhilox4x32KnownAnswers(t *testing.T) {
	for _, tc := range []struct {
		ctr  [4]uint32
		key  [2]uint32
		want [4]uint32
	}{
		{[4]uint32{0, 0, 0, 0}, [2]uint32{0, 0}, [4]uint32{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
		{[4]uint32{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}, [2]uint32{0xffffffff, 0xffffffff},
			[4]uint32{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
		{[4]uint32{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}, [2]uint32{0xa4093822, 0x299f31d0},
			[4]uint32{0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
	} {
		if got := Philox4x32(tc.ctr, tc.key); got != tc.want {
			t.Errorf("Philox4x32(%08x, %08x) = %08x, want %08x", tc.ctr, tc.key, got, tc.want)
		}
	}
}

func TestStreamLayout(t *testing.T) {
	s := Stream{Seed: 0x0123456789abcdef, Offset: 0xfedcba9876543210}
	blk := Philox4x32([4]uint32{7, 0, 0x76543210, 0xfedcba98}, [2]uint32{0x89abcdef, 0x01234567})
	for j := uint64(0); j < 4; j++ {
		if got := s.Word(28 + j); got != blk[j] {
			t.Errorf("Word(%d) = %08x, want %08x", 28+j, got, blk[j])
		}
	}
	if s.Word(0) == (Stream{Seed: s.Seed, Offset: s.Offset + 1}).Word(0) {
		t.Error("different offsets gave the same word")
	}
}

func TestUnitAndUniformRanges(t *testing.T) {
	for _, x := range []uint32{0, 1, 255, 256, 0x7fffffff, 0xffffffff} {
		u := ToUnit(x)
		if u < 0 || u >= 1 {
			t.Errorf("ToUnit(%#x) = %g, outside [0,1)", x, u)
		}
		lo, hi := float32(-math.Sqrt(3)), float32(math.Sqrt(3))
		if v := ToUniform(x, lo, hi); v < lo || v >= hi {
			t.Errorf("ToUniform(%#x) = %g, outside [%g,%g)", x, v, lo, hi)
		}
		if n := ToNormal(x, x); math.IsInf(float64(n), 0) || math.IsNaN(float64(n)) {
			t.Errorf("ToNormal(%#x) = %g", x, n)
		}
	}
	if ToUnit(0xffffffff) != 1-1.0/16777216 {
		t.Errorf("ToUnit(max) = %g", ToUnit(0xffffffff))
	}
}

// The moments of many draws match the distributions they claim.
func TestMoments(t *testing.T) {
	s := Stream{Seed: 42, Offset: 3}
	const n = 200000
	var su, su2, sn, sn2, kept float64
	for e := uint64(0); e < n; e++ {
		u := float64(ToUniform(s.Word(e), -1, 1))
		su += u
		su2 += u * u
		z := float64(s.NormalAt(e))
		sn += z
		sn2 += z * z
		if Keep(s.Word(e), 0.8) {
			kept++
		}
	}
	check := func(name string, got, want, tol float64) {
		if math.Abs(got-want) > tol {
			t.Errorf("%s = %.4f, want %.4f ± %.4f", name, got, want, tol)
		}
	}
	check("uniform mean", su/n, 0, 0.01)
	check("uniform variance", su2/n, 1.0/3, 0.01)
	check("normal mean", sn/n, 0, 0.01)
	check("normal variance", sn2/n, 1, 0.02)
	check("keep fraction", kept/n, 0.8, 0.005)
}

func TestBlock2(t *testing.T) {
	for _, s := range []Stream{{Seed: 1, Offset: 2}, {Seed: 1 << 40, Offset: 7<<33 + 5}} {
		for _, b := range []uint64{0, 1, 1<<32 - 1, 1 << 35} {
			x, y := s.Block2(b)
			if x != s.Block(b) || y != s.Block(b+1) {
				t.Errorf("%+v Block2(%d) = %v, %v; Block gives %v, %v", s, b, x, y, s.Block(b), s.Block(b+1))
			}
		}
	}
}

// KeepThreshold must decide exactly as Keep: check every word class x>>8 around the
// threshold, and a sample of all of them, for keeps of every kind (dyadic or not,
// tiny, one).
func TestKeepThreshold(t *testing.T) {
	for _, keep := range []float32{1, 0.5, 0.8, 0.2, 0.75, 1.0 / 3, 0.9999999, 1e-7, math.Nextafter32(0.5, 1)} {
		th := KeepThreshold(keep)
		check := func(i uint32) {
			x := i<<8 | i&0xff
			if got, want := i < th, Keep(x, keep); got != want {
				t.Fatalf("keep %v, word %#x: threshold %d says %v, Keep says %v", keep, x, th, got, want)
			}
		}
		for d := int64(-3); d <= 3; d++ {
			if i := int64(th) + d; i >= 0 && i < 1<<24 {
				check(uint32(i))
			}
		}
		for i := uint32(0); i < 1<<24; i += 997 {
			check(i)
		}
	}
}

// The orders are pinned: training data order and a resumed run's order depend on them.
func TestPermutation(t *testing.T) {
	s := Stream{Seed: 42, Offset: 1<<62 | 3}
	for _, tc := range []struct {
		n    int
		want []int32
	}{
		{0, []int32{}},
		{1, []int32{0}},
		{2, []int32{1, 0}},
		{5, []int32{3, 0, 1, 4, 2}},
		{10, []int32{3, 6, 1, 5, 7, 4, 8, 2, 9, 0}},
	} {
		got := make([]int32, tc.n)
		for i := range got {
			got[i] = -1 // the previous contents must not matter
		}
		s.Permutation(got)
		if !slices.Equal(got, tc.want) {
			t.Errorf("Permutation of %d = %v, want %v", tc.n, got, tc.want)
		}
	}
	p := make([]int32, 1000)
	s.Permutation(p)
	seen := make([]bool, len(p))
	for _, v := range p {
		if v < 0 || int(v) >= len(p) || seen[v] {
			t.Fatalf("Permutation of %d repeats or leaves out %d", len(p), v)
		}
		seen[v] = true
	}
}
