package vec

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// special are values each loop must treat as its Go form does: signed zeros,
// infinities, NaN, subnormals and values near the rounding edges.
var special = []float32{0, float32(math.Copysign(0, -1)), 1, -1, float32(math.Inf(1)), float32(math.Inf(-1)),
	float32(math.NaN()), math.SmallestNonzeroFloat32, -math.SmallestNonzeroFloat32, math.MaxFloat32, -math.MaxFloat32,
	1e-20, -1e-20, 0.5, 1 + 1.0/(1<<23)}

// fill returns n float32 values from r, one in four from special.
func fill(r *rand.Rand, n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		if r.IntN(4) == 0 {
			x[i] = special[r.IntN(len(special))]
		} else {
			x[i] = float32(r.NormFloat64() * 3)
		}
	}
	return x
}

func fill64(r *rand.Rand, n int) []float64 {
	x := make([]float64, n)
	for i, v := range fill(r, n) {
		x[i] = float64(v) * (1 + r.Float64()*1e-7) // not exactly a float32
	}
	return x
}

// same reports the first index where a and b differ in their bits (any NaN matches
// any NaN), or -1.
func same[T float32 | float64](a, b []T) int {
	for i := range a {
		x, y := float64(a[i]), float64(b[i])
		if math.IsNaN(x) && math.IsNaN(y) {
			continue
		}
		if math.Float64bits(x) != math.Float64bits(y) {
			return i
		}
	}
	return -1
}

func clone[T any](x []T) []T { return append([]T(nil), x...) }

// A loop case runs a loop's exported form (vector bulk, Go tail) and its Go form on
// copies of the same operands and returns the outputs of each.
type loopCase struct {
	name string
	run  func(r *rand.Rand, n, off int) (got, want [][]float64, gotF, wantF [][]float32)
}

// at returns x[off:off+n] of a fresh slice, so that the operands start at every
// alignment.
func at[T any](x []T, off, n int) []T { return x[off : off+n] }

func loops() []loopCase {
	f32 := func(name string, vec, ref func(a, b []float32)) loopCase {
		return loopCase{name, func(r *rand.Rand, n, off int) (_, _ [][]float64, g, w [][]float32) {
			a, b := fill(r, n+off), fill(r, n+off)
			a2 := clone(a)
			vec(at(a, off, n), at(b, off, n))
			ref(at(a2, off, n), at(b, off, n))
			return nil, nil, [][]float32{a}, [][]float32{a2}
		}}
	}
	return []loopCase{
		f32("Add", Add, addGo),
		f32("BiasReLU", BiasReLU, biasReLUGo),
		f32("BiasLeakyReLU", func(a, b []float32) { BiasLeakyReLU(a, b, 0.2) }, func(a, b []float32) { biasLeakyReLUGo(a, b, 0.2) }),
		f32("GradReLU", GradReLU, gradReLUGo),
		f32("GradLeakyReLU", func(a, b []float32) { GradLeakyReLU(a, b, 0.01) }, func(a, b []float32) { gradLeakyReLUGo(a, b, 0.01) }),
		f32("GradSigmoid", GradSigmoid, gradSigmoidGo),
		f32("GradTanh", GradTanh, gradTanhGo),
		{"AccF64", func(r *rand.Rand, n, off int) (g, w [][]float64, _, _ [][]float32) {
			acc, x := fill64(r, n+off), fill(r, n+off)
			acc2 := clone(acc)
			AccF64(at(acc, off, n), at(x, off, n))
			accF64Go(at(acc2, off, n), at(x, off, n))
			return [][]float64{acc}, [][]float64{acc2}, nil, nil
		}},
		{"AccSqDev", func(r *rand.Rand, n, off int) (g, w [][]float64, _, _ [][]float32) {
			acc, x, mu := fill64(r, n+off), fill(r, n+off), fill64(r, n+off)
			acc2 := clone(acc)
			AccSqDev(at(acc, off, n), at(x, off, n), at(mu, off, n))
			accSqDevGo(at(acc2, off, n), at(x, off, n), at(mu, off, n))
			return [][]float64{acc}, [][]float64{acc2}, nil, nil
		}},
		{"Normalize", func(r *rand.Rand, n, off int) (_, _ [][]float64, g, w [][]float32) {
			y, x, mean, inv, gamma := fill(r, n+off), fill(r, n+off), fill(r, n+off), fill(r, n+off), fill(r, n+off)
			y2 := clone(y)
			Normalize(at(y, off, n), at(x, off, n), at(mean, off, n), at(inv, off, n), at(gamma, off, n))
			normalizeGo(at(y2, off, n), at(x, off, n), at(mean, off, n), at(inv, off, n), at(gamma, off, n))
			return nil, nil, [][]float32{y}, [][]float32{y2}
		}},
		{"Normalize in place", func(r *rand.Rand, n, off int) (_, _ [][]float64, g, w [][]float32) {
			x, mean, inv, gamma := fill(r, n+off), fill(r, n+off), fill(r, n+off), fill(r, n+off)
			x2 := clone(x)
			Normalize(at(x, off, n), at(x, off, n), at(mean, off, n), at(inv, off, n), at(gamma, off, n))
			normalizeGo(at(x2, off, n), at(x2, off, n), at(mean, off, n), at(inv, off, n), at(gamma, off, n))
			return nil, nil, [][]float32{x}, [][]float32{x2}
		}},
		{"BNGradSums", func(r *rand.Rand, n, off int) (g, w [][]float64, _, _ [][]float32) {
			sb, sg := fill64(r, n+off), fill64(r, n+off)
			d, x, mean, inv := fill(r, n+off), fill(r, n+off), fill(r, n+off), fill(r, n+off)
			sb2, sg2 := clone(sb), clone(sg)
			BNGradSums(at(sb, off, n), at(sg, off, n), at(d, off, n), at(x, off, n), at(mean, off, n), at(inv, off, n))
			bnGradSumsGo(at(sb2, off, n), at(sg2, off, n), at(d, off, n), at(x, off, n), at(mean, off, n), at(inv, off, n))
			return [][]float64{sb, sg}, [][]float64{sb2, sg2}, nil, nil
		}},
		{"BNGradInput", func(r *rand.Rand, n, off int) (_, _ [][]float64, g, w [][]float32) {
			var ops [8][]float32
			for i := range ops {
				ops[i] = fill(r, n+off)
			}
			dx2 := clone(ops[0])
			s := func(i int) []float32 { return at(ops[i], off, n) }
			BNGradInput(s(0), s(1), s(2), s(3), s(4), s(5), s(6), s(7))
			bnGradInputGo(at(dx2, off, n), s(1), s(2), s(3), s(4), s(5), s(6), s(7))
			return nil, nil, [][]float32{ops[0]}, [][]float32{dx2}
		}},
	}
}

// TestSameBits pins each loop's vector form to its Go form: the exported function
// (the vector form over the bulk, the Go form over the tail) against the Go form
// alone, on every length to 70 at every alignment of a 32-byte vector.
func TestSameBits(t *testing.T) {
	if bulk(64) == 0 {
		t.Skip("no vector forms on this CPU or build: the exported functions are the Go forms")
	}
	for _, lc := range loops() {
		t.Run(lc.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(1, uint64(len(lc.name))))
			for n := 0; n <= 70; n++ {
				for off := range 8 {
					g64, w64, g32, w32 := lc.run(r, n, off)
					for i := range g64 {
						if j := same(g64[i], w64[i]); j >= 0 {
							t.Fatalf("n=%d off=%d output %d [%d]: vector %v (%#x), Go %v (%#x)", n, off, i, j,
								g64[i][j], math.Float64bits(g64[i][j]), w64[i][j], math.Float64bits(w64[i][j]))
						}
					}
					for i := range g32 {
						if j := same(g32[i], w32[i]); j >= 0 {
							t.Fatalf("n=%d off=%d output %d [%d]: vector %v (%#x), Go %v (%#x)", n, off, i, j,
								g32[i][j], math.Float32bits(g32[i][j]), w32[i][j], math.Float32bits(w32[i][j]))
						}
					}
				}
			}
		})
	}
}

// TestGoForms checks the Go forms against their definitions written out once more
// in float64, on values where float32 rounding cannot change the comparison.
func TestGoForms(t *testing.T) {
	z := []float32{-2, -0.5, 0, 0.5, 2, float32(math.Copysign(0, -1))}
	b := []float32{0, 0, 0, 0, 0, float32(math.Copysign(0, -1))}
	got := clone(z)
	biasReLUGo(got, b)
	if fmt.Sprint(got) != "[0 0 0 0.5 2 0]" || math.Signbit(float64(got[5])) {
		t.Errorf("biasReLUGo(%v) = %v, want [0 0 0 0.5 2 +0]", z, got)
	}
	got = clone(z)
	biasLeakyReLUGo(got[:5], b, 0.25)
	if fmt.Sprint(got[:5]) != "[-0.5 -0.125 0 0.5 2]" {
		t.Errorf("biasLeakyReLUGo(%v) = %v", z[:5], got[:5])
	}
	dy := []float32{1, 1, 1, 1, 1}
	gradLeakyReLUGo(dy, z[:5], 0.25)
	if fmt.Sprint(dy) != "[0.25 0.25 1 1 1]" {
		t.Errorf("gradLeakyReLUGo: %v", dy)
	}
	dy = []float32{1, 1, 1, 1, 1}
	gradReLUGo(dy, z[:5])
	if fmt.Sprint(dy) != "[0 0 0 1 1]" {
		t.Errorf("gradReLUGo: %v", dy)
	}
	dy = []float32{2, 2}
	gradTanhGo(dy, []float32{0.5, -0.5})
	gradSigmoidGo(dy, []float32{0.5, 0.25})
	if fmt.Sprint(dy) != "[0.375 0.28125]" { // 2·0.75·0.25, 2·0.75·0.1875
		t.Errorf("gradTanhGo then gradSigmoidGo: %v", dy)
	}
	sb, sg := []float64{1}, []float64{1}
	bnGradSumsGo(sb, sg, []float32{2}, []float32{3}, []float32{1}, []float32{0.5}) // x̂ = 1
	if sb[0] != 3 || sg[0] != 3 {
		t.Errorf("bnGradSumsGo: sb %v sg %v, want 3 3", sb, sg)
	}
	dx := []float32{0}
	bnGradInputGo(dx, []float32{2}, []float32{3}, []float32{1}, []float32{0.5}, []float32{4}, []float32{0.5}, []float32{0.25})
	if dx[0] != 5 { // 4·((2−0.5) − 1·0.25)
		t.Errorf("bnGradInputGo = %v, want 5", dx[0])
	}
	acc := []float64{1}
	accSqDevGo(acc, []float32{4}, []float64{1})
	accF64Go(acc, []float32{0.5})
	if acc[0] != 10.5 {
		t.Errorf("accSqDevGo then accF64Go = %v, want 10.5", acc[0])
	}
	y := []float32{0}
	normalizeGo(y, []float32{3}, []float32{1}, []float32{0.5}, []float32{-2})
	if y[0] != -2 {
		t.Errorf("normalizeGo = %v, want -2", y[0])
	}
}

// BenchmarkLoops times each loop's exported form against its Go form on a row of
// 1,024 elements, in ns an element.
func BenchmarkLoops(b *testing.B) {
	const n = 1024
	r := rand.New(rand.NewPCG(1, 2))
	x, y, z, w, v := fill(r, n), fill(r, n), fill(r, n), fill(r, n), fill(r, n)
	for i := range x { // finite operands: the timing of NaN arithmetic is not the point
		x[i], y[i], z[i], w[i], v[i] = float32(r.NormFloat64()), float32(r.NormFloat64()), float32(r.NormFloat64()), float32(r.NormFloat64()), float32(r.NormFloat64())
	}
	a, s := make([]float64, n), make([]float64, n)
	cases := []struct {
		name     string
		vec, ref func()
	}{
		{"Add", func() { Add(x, y) }, func() { addGo(x, y) }},
		{"BiasReLU", func() { BiasReLU(x, y) }, func() { biasReLUGo(x, y) }},
		{"BiasLeakyReLU", func() { BiasLeakyReLU(x, y, 0.2) }, func() { biasLeakyReLUGo(x, y, 0.2) }},
		{"GradReLU", func() { GradReLU(x, y) }, func() { gradReLUGo(x, y) }},
		{"GradLeakyReLU", func() { GradLeakyReLU(x, y, 0.2) }, func() { gradLeakyReLUGo(x, y, 0.2) }},
		{"GradTanh", func() { GradTanh(x, y) }, func() { gradTanhGo(x, y) }},
		{"AccF64", func() { AccF64(a, x) }, func() { accF64Go(a, x) }},
		{"AccSqDev", func() { AccSqDev(a, x, s) }, func() { accSqDevGo(a, x, s) }},
		{"Normalize", func() { Normalize(z, x, y, w, v) }, func() { normalizeGo(z, x, y, w, v) }},
		{"BNGradSums", func() { BNGradSums(a, s, x, y, z, w) }, func() { bnGradSumsGo(a, s, x, y, z, w) }},
		{"BNGradInput", func() { BNGradInput(v, x, y, z, w, x, y, z) }, func() { bnGradInputGo(v, x, y, z, w, x, y, z) }},
	}
	for _, c := range cases {
		for _, f := range []struct {
			form string
			run  func()
		}{{"vec", c.vec}, {"go", c.ref}} {
			b.Run(c.name+"/"+f.form, func(b *testing.B) {
				for b.Loop() {
					f.run()
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/elem")
			})
		}
	}
}
