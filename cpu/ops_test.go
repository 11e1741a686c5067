package cpu_test

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/gantrain/gantrain/backend"
	"github.com/gantrain/gantrain/backend/backendtest"
	"github.com/gantrain/gantrain/cpu"
	"github.com/gantrain/gantrain/rng"
)

// maxout64 is the reference maxout: the maximum of each group of `pieces` adjacent
// values and the index of its first occurrence.
func maxout64(z []float32, pieces int) (y []float32, arg []int32) {
	units := len(z) / pieces
	y, arg = make([]float32, units), make([]int32, units)
	for u := 0; u < units; u++ {
		best, at := z[u*pieces], 0
		for p := 1; p < pieces; p++ {
			if v := z[u*pieces+p]; v > best {
				best, at = v, p
			}
		}
		y[u], arg[u] = best, int32(at)
	}
	return y, arg
}

func TestMaxoutForward(t *testing.T) {
	b := newBackend(t, "go")
	r := rand.New(rand.NewPCG(1, 1))
	for _, tc := range []struct {
		name          string
		n, units, pcs int
		z             []float32 // nil: random
		wantArg       []int32   // nil: from the reference
	}{
		{name: "random 5x7x3", n: 5, units: 7, pcs: 3},
		{name: "random 1x1x4", n: 1, units: 1, pcs: 4},
		{name: "random 3x11x2", n: 3, units: 11, pcs: 2},
		{name: "one piece", n: 2, units: 3, pcs: 1},
		{
			name: "ties", n: 2, units: 3, pcs: 3,
			z: []float32{
				1, 3, 3, // tie between pieces 1 and 2 → 1
				5, 5, 5, // all equal → 0
				-2, -1, -1, // negative tie → 1
				0, 2, 2, // → 1
				-7, -7, -8, // → 0
				4, 1, 4, // first and last tie → 0
			},
			wantArg: []int32{1, 0, 1, 1, 0, 0},
		},
		{
			name: "signed zero", n: 1, units: 2, pcs: 2,
			z:       []float32{float32(math.Copysign(0, -1)), 0, 0, float32(math.Copysign(0, -1))},
			wantArg: []int32{0, 0},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			z := tc.z
			if z == nil {
				z = uniform(r, tc.n*tc.units*tc.pcs, -3, 3)
			}
			wantY, wantArg := maxout64(z, tc.pcs)
			if tc.wantArg != nil {
				wantArg = tc.wantArg
			}
			zt := tensorOf(t, b, tc.n, tc.units*tc.pcs, z)
			y := filled(t, b, tc.n, tc.units, float32(math.NaN()))
			arg := indexTensorOf(t, b, tc.n, tc.units, constInt(tc.n*tc.units, -1))
			b.MaxoutForward(y, arg, zt, tc.pcs)
			checkNoErr(t, b)
			checkBits(t, "y", backendtest.Download(t, b, y), wantY)
			gotArg := backendtest.DownloadI32(t, b, arg)
			for i := range gotArg {
				if gotArg[i] != wantArg[i] {
					t.Errorf("arg[%d] = %d, want %d (group %v)", i, gotArg[i], wantArg[i], z[i*tc.pcs:(i+1)*tc.pcs])
				}
			}
		})
	}
}

func constInt(n int, v int32) []int32 {
	s := make([]int32, n)
	for i := range s {
		s[i] = v
	}
	return s
}

func TestMaxoutBackward(t *testing.T) {
	b := newBackend(t, "go")
	r := rand.New(rand.NewPCG(2, 2))
	for _, tc := range []struct {
		n, units, pcs int
	}{{4, 5, 3}, {1, 1, 1}, {2, 3, 4}} {
		t.Run(fmt.Sprintf("%dx%dx%d", tc.n, tc.units, tc.pcs), func(t *testing.T) {
			m := tc.n * tc.units
			args := make([]int32, m)
			for i := range args {
				args[i] = int32(r.IntN(tc.pcs))
			}
			dys := uniform(r, m, -1, 1)
			dz := filled(t, b, tc.n, tc.units*tc.pcs, 9) // stale values must be cleared
			b.MaxoutBackward(dz, tensorOf(t, b, tc.n, tc.units, dys), indexTensorOf(t, b, tc.n, tc.units, args), tc.pcs)
			checkNoErr(t, b)
			want := make([]float32, m*tc.pcs)
			for i, a := range args {
				want[i*tc.pcs+int(a)] = dys[i]
			}
			checkBits(t, "dz", backendtest.Download(t, b, dz), want)
		})
	}
}

// TestMaxoutDropout pins the fused ops to the ops they fuse, bit for bit: MaxoutDropout
// to MaxoutForward then Dropout, MaxoutDropoutBackward to Mul then MaxoutBackward
// (ragged lengths, so that the last Philox block is partial; ties in z).
func TestMaxoutDropout(t *testing.T) {
	b := newBackend(t, "go")
	r := rand.New(rand.NewPCG(5, 5))
	for _, tc := range []struct {
		n, units, pcs int
		keep          float32
	}{{4, 5, 3, 0.5}, {1, 1, 1, 0.8}, {3, 7, 5, 1}, {33, 41, 5, 0.5}} {
		t.Run(fmt.Sprintf("%dx%dx%d/keep=%g", tc.n, tc.units, tc.pcs, tc.keep), func(t *testing.T) {
			s := rng.Stream{Seed: r.Uint64(), Offset: r.Uint64()}
			zs := uniform(r, tc.n*tc.units*tc.pcs, -2, 2)
			for i := range zs {
				zs[i] = float32(math.Round(float64(zs[i]) * 2))
			}
			z := tensorOf(t, b, tc.n, tc.units*tc.pcs, zs)
			ym, argWant := alloc(t, b, backend.F32, tc.n, tc.units), alloc(t, b, backend.I32, tc.n, tc.units)
			yWant, maskWant := alloc(t, b, backend.F32, tc.n, tc.units), alloc(t, b, backend.F32, tc.n, tc.units)
			b.MaxoutForward(ym, argWant, z, tc.pcs)
			b.Dropout(yWant, maskWant, ym, tc.keep, s)
			y, arg := filled(t, b, tc.n, tc.units, 9), alloc(t, b, backend.I32, tc.n, tc.units)
			mask := filled(t, b, tc.n, tc.units, 9)
			b.MaxoutDropout(y, arg, mask, z, tc.pcs, tc.keep, s)
			checkNoErr(t, b)
			checkBits(t, "y", backendtest.Download(t, b, y), backendtest.Download(t, b, yWant))
			checkBits(t, "mask", backendtest.Download(t, b, mask), backendtest.Download(t, b, maskWant))
			if got, want := backendtest.DownloadI32(t, b, arg), backendtest.DownloadI32(t, b, argWant); !slices.Equal(got, want) {
				t.Fatalf("arg %v, want %v", got, want)
			}

			dy := tensorOf(t, b, tc.n, tc.units, uniform(r, tc.n*tc.units, -1, 1))
			masked := alloc(t, b, backend.F32, tc.n, tc.units)
			dzWant := alloc(t, b, backend.F32, tc.n, tc.units*tc.pcs)
			b.Mul(masked, dy, mask)
			b.MaxoutBackward(dzWant, masked, arg, tc.pcs)
			dz := filled(t, b, tc.n, tc.units*tc.pcs, 9) // stale values must be cleared
			b.MaxoutDropoutBackward(dz, dy, mask, arg, tc.pcs)
			checkNoErr(t, b)
			checkBits(t, "dz", backendtest.Download(t, b, dz), backendtest.Download(t, b, dzWant))
		})
	}
}

// TestDenseMaxout pins DenseMaxout to DenseForward then MaxoutDropout (MaxoutForward
// without a mask), bit for bit.
func TestDenseMaxout(t *testing.T) {
	b := newBackend(t, "go")
	r := rand.New(rand.NewPCG(6, 6))
	for _, tc := range []struct{ n, in, units, pcs int }{{4, 3, 5, 3}, {1, 1, 1, 1}, {33, 17, 41, 5}} {
		for _, dropout := range []bool{true, false} {
			t.Run(fmt.Sprintf("%dx%dx%dx%d/dropout=%v", tc.n, tc.in, tc.units, tc.pcs, dropout), func(t *testing.T) {
				s := rng.Stream{Seed: r.Uint64(), Offset: r.Uint64()}
				out := tc.units * tc.pcs
				x := tensorOf(t, b, tc.n, tc.in, uniform(r, tc.n*tc.in, -1, 1))
				w := tensorOf(t, b, tc.in, out, uniform(r, tc.in*out, -1, 1))
				bias := tensorOf(t, b, 1, out, uniform(r, out, -1, 1))
				z := alloc(t, b, backend.F32, tc.n, out)
				yWant, argWant, maskWant := alloc(t, b, backend.F32, tc.n, tc.units), alloc(t, b, backend.I32, tc.n, tc.units), alloc(t, b, backend.F32, tc.n, tc.units)
				b.DenseForward(z, x, w, bias, backend.Act{})
				y, arg := filled(t, b, tc.n, tc.units, 9), alloc(t, b, backend.I32, tc.n, tc.units)
				var mask backend.Tensor
				if dropout {
					b.MaxoutDropout(yWant, argWant, maskWant, z, tc.pcs, 0.5, s)
					mask = filled(t, b, tc.n, tc.units, 9)
				} else {
					b.MaxoutForward(yWant, argWant, z, tc.pcs)
				}
				b.DenseMaxout(y, arg, mask, filled(t, b, tc.n, out, 7), x, w, bias, tc.pcs, 0.5, s)
				checkNoErr(t, b)
				checkBits(t, "y", backendtest.Download(t, b, y), backendtest.Download(t, b, yWant))
				if dropout {
					checkBits(t, "mask", backendtest.Download(t, b, mask), backendtest.Download(t, b, maskWant))
				}
				if got, want := backendtest.DownloadI32(t, b, arg), backendtest.DownloadI32(t, b, argWant); !slices.Equal(got, want) {
					t.Fatalf("arg %v, want %v", got, want)
				}
			})
		}
	}
}

// TestMaxoutDenseFiniteDifferences checks the gradient of L = Σ c ⊙ maxout(x·w + b)
// through MaxoutBackward and DenseBackward against central differences.
func TestMaxoutDenseFiniteDifferences(t *testing.T) {
	const n, in, units, pcs = 4, 6, 3, 3
	const margin = 1e-3 // minimum gap between a group's two largest pieces
	sh := denseShape{n, in, units * pcs}
	eachBLAS(t, func(t *testing.T, blas string) {
		b := newBackend(t, blas)
		var d denseData
		for seed := uint64(0); ; seed++ {
			if seed == 100 {
				t.Fatal("no draw keeps maxout groups away from ties")
			}
			d = newDenseData(t, sh, 1000+seed, 0)
			z, _ := dense64(to64(d.x), to64(d.w), to64(d.b), n, in, units*pcs, backend.Act{})
			if minGap(z, pcs) >= margin {
				break
			}
		}
		cs := d.c[:n*units]
		act := backend.Act{Kind: backend.Identity}
		run := d.forward(t, b, act) // run.y is z
		y := alloc(t, b, backend.F32, n, units)
		arg := alloc(t, b, backend.I32, n, units)
		b.MaxoutForward(y, arg, run.y, pcs)
		dz := alloc(t, b, backend.F32, n, units*pcs)
		b.MaxoutBackward(dz, tensorOf(t, b, n, units, cs), arg, pcs)
		dx := alloc(t, b, backend.F32, n, in)
		dw := alloc(t, b, backend.F32, in, units*pcs)
		db := alloc(t, b, backend.F32, 1, units*pcs)
		b.DenseBackward(dx, dw, db, dz, run.x, run.y, run.w, act)
		checkNoErr(t, b)

		x64, w64, b64, c64 := to64(d.x), to64(d.w), to64(d.b), to64(cs)
		loss := func() float64 {
			z, _ := dense64(x64, w64, b64, n, in, units*pcs, act)
			s := 0.0
			for u := range c64 {
				m := math.Inf(-1)
				for p := 0; p < pcs; p++ {
					m = max(m, z[u*pcs+p])
				}
				s += c64[u] * m
			}
			return s
		}
		checkGrad(t, "dx", backendtest.Download(t, b, dx), centralDiff(x64, loss), 1e-3)
		checkGrad(t, "dw", backendtest.Download(t, b, dw), centralDiff(w64, loss), 1e-3)
		checkGrad(t, "db", backendtest.Download(t, b, db), centralDiff(b64, loss), 1e-3)
	})
}

// minGap is the smallest gap between the largest and second largest piece of a group.
func minGap(z []float64, pieces int) float64 {
	gap := math.Inf(1)
	for g := 0; g+pieces <= len(z); g += pieces {
		a, c := math.Inf(-1), math.Inf(-1)
		for _, v := range z[g : g+pieces] {
			if v > a {
				a, c = v, a
			} else if v > c {
				c = v
			}
		}
		gap = min(gap, a-c)
	}
	return gap
}

func TestDropout(t *testing.T) {
	b := newBackend(t, "go")
	const rows, cols = 31, 33 // 1023 elements: the last Philox block is partial
	r := rand.New(rand.NewPCG(3, 3))
	xs := uniform(r, rows*cols, -2, 2)
	x := tensorOf(t, b, rows, cols, xs)
	for _, tc := range []struct {
		keep float32
		s    rng.Stream
	}{
		{0.5, rng.Stream{Seed: 1, Offset: 0}},
		{0.8, rng.Stream{Seed: 0xfeedface12345678, Offset: 1 << 40}},
		{0.3, rng.Stream{Seed: 7, Offset: 3}},
		{1, rng.Stream{Seed: 7, Offset: 3}},
	} {
		t.Run(fmt.Sprintf("keep=%g/%d/%d", tc.keep, tc.s.Seed, tc.s.Offset), func(t *testing.T) {
			y := filled(t, b, rows, cols, float32(math.NaN()))
			mask := filled(t, b, rows, cols, float32(math.NaN()))
			b.Dropout(y, mask, x, tc.keep, tc.s)
			checkNoErr(t, b)
			scale := 1 / tc.keep
			wantMask, wantY := make([]float32, rows*cols), make([]float32, rows*cols)
			for e := range wantMask {
				if rng.Keep(tc.s.Word(uint64(e)), tc.keep) {
					wantMask[e] = scale
				}
				wantY[e] = xs[e] * wantMask[e]
			}
			gotMask := backendtest.Download(t, b, mask)
			for e, m := range gotMask {
				if m != 0 && m != scale {
					t.Fatalf("mask[%d] = %g, want 0 or 1/keep = %g", e, m, scale)
				}
			}
			checkBits(t, "mask", gotMask, wantMask)
			checkBits(t, "y", backendtest.Download(t, b, y), wantY)
			if tc.keep == 1 {
				checkBits(t, "y (keep=1)", backendtest.Download(t, b, y), xs)
			}
		})
	}
}

func TestDropoutStreams(t *testing.T) {
	b := newBackend(t, "go")
	const n = 257
	x := filled(t, b, 1, n, 1)
	draw := func(s rng.Stream) []float32 {
		t.Helper()
		y, mask := alloc(t, b, backend.F32, 1, n), alloc(t, b, backend.F32, 1, n)
		b.Dropout(y, mask, x, 0.5, s)
		checkNoErr(t, b)
		return backendtest.Download(t, b, mask)
	}
	s := rng.Stream{Seed: 11, Offset: 5}
	a := draw(s)
	checkBits(t, "same stream", draw(s), a)
	for _, other := range []rng.Stream{{Seed: 11, Offset: 6}, {Seed: 12, Offset: 5}, {Seed: 11, Offset: 5 + 1<<32}} {
		c := draw(other)
		same := 0
		for i := range a {
			if a[i] == c[i] {
				same++
			}
		}
		if same == n {
			t.Errorf("stream %+v gave the same mask as %+v", other, s)
		}
	}
}

func TestDropoutKeptFraction(t *testing.T) {
	b := newBackend(t, "go")
	const n = 1 << 16
	x := filled(t, b, 256, n/256, 1)
	for _, keep := range []float32{0.1, 0.5, 0.7, 0.95} {
		y, mask := alloc(t, b, backend.F32, 256, n/256), alloc(t, b, backend.F32, 256, n/256)
		b.Dropout(y, mask, x, keep, rng.Stream{Seed: 99, Offset: uint64(keep * 100)})
		checkNoErr(t, b)
		kept := 0
		for _, m := range backendtest.Download(t, b, mask) {
			if m != 0 {
				kept++
			}
		}
		// The standard deviation of the fraction is at most 0.5/√n ≈ 0.002.
		if got := float64(kept) / n; math.Abs(got-float64(keep)) > 0.01 {
			t.Errorf("keep %g: kept fraction %.4f, want %g ± 0.01", keep, got, keep)
		}
	}
}

// TestDropoutInPlace runs Dropout with y aliasing x; the result must equal the
// out-of-place result.
func TestDropoutInPlace(t *testing.T) {
	b := newBackend(t, "go")
	r := rand.New(rand.NewPCG(4, 4))
	xs := uniform(r, 99, -1, 1)
	s := rng.Stream{Seed: 5, Offset: 9}
	x := tensorOf(t, b, 9, 11, xs)
	y, mask := alloc(t, b, backend.F32, 9, 11), alloc(t, b, backend.F32, 9, 11)
	b.Dropout(y, mask, x, 0.6, s)
	xy, mask2 := tensorOf(t, b, 9, 11, xs), alloc(t, b, backend.F32, 9, 11)
	b.Dropout(xy, mask2, xy, 0.6, s)
	checkNoErr(t, b)
	checkBits(t, "in-place y", backendtest.Download(t, b, xy), backendtest.Download(t, b, y))
	checkBits(t, "in-place mask", backendtest.Download(t, b, mask2), backendtest.Download(t, b, mask))
}

// TestMulDropoutBackward uses Mul as the dropout backward dx = dy ⊙ mask, out of
// place and in place (y aliasing a).
func TestMulDropoutBackward(t *testing.T) {
	b := newBackend(t, "go")
	r := rand.New(rand.NewPCG(5, 5))
	const rows, cols = 6, 7
	x := tensorOf(t, b, rows, cols, uniform(r, rows*cols, -1, 1))
	y, mask := alloc(t, b, backend.F32, rows, cols), alloc(t, b, backend.F32, rows, cols)
	b.Dropout(y, mask, x, 0.75, rng.Stream{Seed: 1, Offset: 2})
	dys := uniform(r, rows*cols, -1, 1)
	ms := backendtest.Download(t, b, mask)
	want := make([]float32, len(dys))
	for i := range want {
		want[i] = dys[i] * ms[i]
	}

	dy := tensorOf(t, b, rows, cols, dys)
	dx := filled(t, b, rows, cols, float32(math.NaN()))
	b.Mul(dx, dy, mask)
	checkNoErr(t, b)
	checkBits(t, "dx", backendtest.Download(t, b, dx), want)
	checkBits(t, "dy unchanged", backendtest.Download(t, b, dy), dys)

	b.Mul(dy, dy, mask)
	checkNoErr(t, b)
	checkBits(t, "dx in place", backendtest.Download(t, b, dy), want)
}

// bce64 is the binary cross-entropy −t·log σ(l) − (1−t)·log(1−σ(l)), for moderate l.
func bce64(l, t float64) float64 {
	s := sigmoid64(l)
	return -t*math.Log(s) - (1-t)*math.Log(1-s)
}

func TestSigmoidCrossEntropy(t *testing.T) {
	b := newBackend(t, "go")
	r := rand.New(rand.NewPCG(6, 6))
	const n = 12
	ls := uniform(r, n, -6, 6)
	ls[0], ls[1] = 0, -0.25
	ts := make([]float32, n)
	for i := range ts {
		ts[i] = []float32{0, 1, 0.3}[i%3]
	}
	logits, targets := tensorOf(t, b, n, 1, ls), tensorOf(t, b, n, 1, ts)
	for _, scale := range []float32{1, 1.0 / n, -1.0 / n, -2.5} {
		t.Run(fmt.Sprint("scale=", scale), func(t *testing.T) {
			out := filled(t, b, 1, 3, -9)
			dl := filled(t, b, n, 1, float32(math.NaN()))
			b.SigmoidCrossEntropy(dl, logits, targets, scale, out, 1)
			checkNoErr(t, b)

			l64, t64 := to64(ls), to64(ts)
			loss := func() float64 {
				s := 0.0
				for i := range l64 {
					s += bce64(l64[i], t64[i])
				}
				return float64(scale) * s
			}
			o := backendtest.Download(t, b, out)
			if want := loss(); math.Abs(float64(o[1])-want) > 1e-6*math.Abs(want) {
				t.Errorf("loss: got %g, want %g", o[1], want)
			}
			if o[0] != -9 || o[2] != -9 {
				t.Errorf("out = %v, want only slot 1 written (others -9)", o)
			}
			gotD := backendtest.Download(t, b, dl)
			want, tol := make([]float64, n), make([]float64, n)
			for i := range want {
				want[i] = float64(scale) * (sigmoid64(l64[i]) - t64[i])
				tol[i] = 1e-6 * math.Abs(float64(scale))
			}
			checkClose(t, "dlogits", gotD, want, tol)
			checkGrad(t, "dlogits vs finite differences", gotD, centralDiff(l64, loss), 1e-4)

			// Without dlogits the loss is the same.
			out2 := alloc(t, b, backend.F32, 1, 3)
			b.SigmoidCrossEntropy(nil, logits, targets, scale, out2, 1)
			checkNoErr(t, b)
			checkBits(t, "loss without dlogits", backendtest.Download(t, b, out2)[1:2], o[1:2])
		})
	}
}

// TestSigmoidCrossEntropyNegatedScale checks that ascending (scale < 0) is exactly
// the negation of descending.
func TestSigmoidCrossEntropyNegatedScale(t *testing.T) {
	b := newBackend(t, "go")
	r := rand.New(rand.NewPCG(7, 7))
	const n = 9
	logits := tensorOf(t, b, n, 1, uniform(r, n, -5, 5))
	targets := tensorOf(t, b, n, 1, uniform(r, n, 0, 1))
	run := func(scale float32) (loss float32, d []float32) {
		out, dl := alloc(t, b, backend.F32, 1, 1), alloc(t, b, backend.F32, n, 1)
		b.SigmoidCrossEntropy(dl, logits, targets, scale, out, 0)
		checkNoErr(t, b)
		return backendtest.Download(t, b, out)[0], backendtest.Download(t, b, dl)
	}
	lp, dp := run(1.0 / n)
	ln, dn := run(-1.0 / n)
	if ln != -lp || lp <= 0 {
		t.Errorf("loss with scale −1/n: got %g, want −%g (and %g > 0)", ln, lp, lp)
	}
	for i := range dp {
		dn[i] = -dn[i]
	}
	checkBits(t, "−dlogits(−1/n)", dn, dp)
}

// softplus64 is log(1+eˡ) for any l.
func softplus64(l float64) float64 {
	if l > 0 {
		return l + math.Log1p(math.Exp(-l))
	}
	return math.Log1p(math.Exp(l))
}

func TestSigmoidCrossEntropyExtremeLogits(t *testing.T) {
	b := newBackend(t, "go")
	for _, l := range []float32{1e4, -1e4, 1e30, -1e30, 88, -88, 89, -89, 1e-8, -1e-8, math.MaxFloat32, -math.MaxFloat32} {
		for _, target := range []float32{0, 1} {
			for _, scale := range []float32{1, 0.25, -0.5} {
				name := fmt.Sprintf("logit=%g/target=%g/scale=%g", l, target, scale)
				out, dl := alloc(t, b, backend.F32, 1, 1), alloc(t, b, backend.F32, 1, 1)
				b.SigmoidCrossEntropy(dl, tensorOf(t, b, 1, 1, []float32{l}), tensorOf(t, b, 1, 1, []float32{target}), scale, out, 0)
				checkNoErr(t, b)
				loss, d := backendtest.Download(t, b, out)[0], backendtest.Download(t, b, dl)[0]

				// bce(σ(l), 0) = softplus(l), bce(σ(l), 1) = softplus(−l).
				l64 := float64(l)
				if target == 1 {
					l64 = -l64
				}
				want := float64(scale) * softplus64(l64)
				if math.IsInf(float64(loss), 0) || math.IsNaN(float64(loss)) || loss*float32(math.Copysign(1, float64(scale))) < 0 {
					t.Errorf("%s: loss %g, want finite with the sign of scale", name, loss)
				} else if want := float32(want); math.Abs(float64(loss-want)) > 1e-6*math.Abs(float64(want)) && !(math.Abs(float64(want)) < 1e-30 && math.Abs(float64(loss)) < 1e-30) {
					t.Errorf("%s: loss %g, want %g", name, loss, want)
				}
				wantD := float64(scale) * (sigmoid64(float64(l)) - float64(target))
				if math.IsNaN(float64(d)) || math.Abs(float64(d)) > math.Abs(float64(scale)) || math.Abs(float64(d)-wantD) > 1e-6*math.Abs(float64(scale)) {
					t.Errorf("%s: dlogit %g, want %g (finite, within ±|scale|)", name, d, wantD)
				}
			}
		}
	}
	// Exact values the formula must give.
	for _, tc := range []struct {
		l, target, scale, want float32
	}{
		{1e4, 0, 1, 1e4},
		{1e4, 0, 0.5, 5e3},
		{-1e4, 1, 1, 1e4},
		{-1e4, 0, 1, 0},
		{1e4, 1, 1, 0},
		{1e30, 0, 1, 1e30},
		{0, 0, 1, float32(math.Ln2)},
	} {
		out := alloc(t, b, backend.F32, 1, 1)
		b.SigmoidCrossEntropy(nil, tensorOf(t, b, 1, 1, []float32{tc.l}), tensorOf(t, b, 1, 1, []float32{tc.target}), tc.scale, out, 0)
		checkNoErr(t, b)
		if got := backendtest.Download(t, b, out)[0]; got != tc.want {
			t.Errorf("loss(logit %g, target %g, scale %g): got %g, want %g", tc.l, tc.target, tc.scale, got, tc.want)
		}
	}
}

func TestMeanSigmoid(t *testing.T) {
	b := newBackend(t, "go")
	r := rand.New(rand.NewPCG(8, 8))
	moderate := uniform(r, 17, -5, 5)
	wantModerate := 0.0
	for _, v := range moderate {
		wantModerate += sigmoid64(float64(v)) / 17
	}
	for _, tc := range []struct {
		name   string
		logits []float32
		want   float64
		tol    float64
	}{
		{"moderate", moderate, wantModerate, 1e-6},
		{"zero", []float32{0, 0, 0}, 0.5, 0},
		{"+1e30", []float32{1e30, 1e30}, 1, 0},
		{"-1e30", []float32{-1e30, -1e30}, 0, 0},
		{"±1e30", []float32{1e30, -1e30}, 0.5, 0},
		{"±89", []float32{89, -89, 88, -88}, 0.5, 1e-7},
		{"+1e4", []float32{1e4}, 1, 0},
		{"-1e4", []float32{-1e4}, 0, 0},
		{"max", []float32{math.MaxFloat32, -math.MaxFloat32, math.MaxFloat32}, 2.0 / 3, 1e-7},
	} {
		out := filled(t, b, 2, 2, -1)
		b.MeanSigmoid(tensorOf(t, b, len(tc.logits), 1, tc.logits), out, 3)
		checkNoErr(t, b)
		o := backendtest.Download(t, b, out)
		if got := float64(o[3]); !(got >= 0 && got <= 1) || math.Abs(got-tc.want) > tc.tol {
			t.Errorf("%s: got %g, want %g in [0, 1]", tc.name, got, tc.want)
		}
		if o[0] != -1 || o[1] != -1 || o[2] != -1 {
			t.Errorf("%s: out = %v, want only slot 3 written", tc.name, o)
		}
	}
}

func TestSGDMomentum(t *testing.T) {
	b := newBackend(t, "go")
	r := rand.New(rand.NewPCG(9, 9))
	const rows, cols = 3, 5
	const lr, mu = 0.05, 0.9
	ps, vs := uniform(r, rows*cols, -1, 1), uniform(r, rows*cols, -0.1, 0.1)
	p, v := tensorOf(t, b, rows, cols, ps), tensorOf(t, b, rows, cols, vs)
	p64, v64 := to64(ps), to64(vs)
	for step := 1; step <= 3; step++ {
		gs := uniform(r, rows*cols, -2, 2)
		b.SGDMomentum(p, tensorOf(t, b, rows, cols, gs), v, lr, mu)
		checkNoErr(t, b)
		for i, g := range gs {
			v64[i] = mu*v64[i] - lr*float64(g)
			p64[i] += v64[i]
		}
		tolP, tolV := make([]float64, len(p64)), make([]float64, len(v64))
		for i := range tolP {
			tolP[i] = 1e-6 * (math.Abs(p64[i]) + 1)
			tolV[i] = 1e-6 * (math.Abs(v64[i]) + 0.01)
		}
		checkClose(t, fmt.Sprintf("step %d: p", step), backendtest.Download(t, b, p), p64, tolP)
		checkClose(t, fmt.Sprintf("step %d: v", step), backendtest.Download(t, b, v), v64, tolV)
	}
}

func TestMovingAverage(t *testing.T) {
	b := newBackend(t, "go")
	r := rand.New(rand.NewPCG(11, 11))
	const rows, cols = 3, 7
	for _, decay := range []float32{0, 0.5, 0.999, 1} {
		as := uniform(r, rows*cols, -1, 1)
		avg := tensorOf(t, b, rows, cols, as)
		a64 := to64(as)
		rest := float64(1 - decay)
		for step := 1; step <= 3; step++ {
			xs := uniform(r, rows*cols, -2, 2)
			b.MovingAverage(avg, tensorOf(t, b, rows, cols, xs), decay)
			checkNoErr(t, b)
			tol := make([]float64, len(a64))
			for i, x := range xs {
				a64[i] = float64(decay)*a64[i] + rest*float64(x)
				tol[i] = 1e-6 * (math.Abs(a64[i]) + 1)
			}
			checkClose(t, fmt.Sprintf("decay %g step %d", decay, step), backendtest.Download(t, b, avg), a64, tol)
		}
	}
}

func TestAdam(t *testing.T) {
	b := newBackend(t, "go")
	r := rand.New(rand.NewPCG(10, 10))
	const rows, cols = 4, 4
	const lr, beta1, beta2, eps = 0.01, 0.5, 0.999, 1e-8
	ps := uniform(r, rows*cols, -0.1, 0.1)
	p, m, v := tensorOf(t, b, rows, cols, ps), alloc(t, b, backend.F32, rows, cols), alloc(t, b, backend.F32, rows, cols)
	p64, m64, v64 := to64(ps), make([]float64, rows*cols), make([]float64, rows*cols)
	b1, b2 := float64(float32(beta1)), float64(float32(beta2))
	for step := 1; step <= 3; step++ {
		gs := uniform(r, rows*cols, -1, 1)
		gs[0], gs[1], gs[2] = 1e-6, -3e-6, 0 // small gradients pin where ε is added
		b.Adam(p, tensorOf(t, b, rows, cols, gs), m, v, lr, beta1, beta2, eps, step)
		checkNoErr(t, b)
		for i, g32 := range gs {
			g := float64(g32)
			m64[i] = b1*m64[i] + (1-b1)*g
			v64[i] = b2*v64[i] + (1-b2)*g*g
			mHat := m64[i] / (1 - math.Pow(b1, float64(step)))
			vHat := v64[i] / (1 - math.Pow(b2, float64(step)))
			p64[i] -= float64(float32(lr)) * mHat / (math.Sqrt(vHat) + float64(float32(eps)))
		}
		tolP, tolM, tolV := make([]float64, len(p64)), make([]float64, len(p64)), make([]float64, len(p64))
		for i := range tolP {
			tolP[i] = 1e-7 + 1e-4*lr
			tolM[i] = 1e-6 * math.Abs(m64[i])
			tolV[i] = 1e-5 * math.Abs(v64[i])
		}
		checkClose(t, fmt.Sprintf("step %d: p", step), backendtest.Download(t, b, p), p64, tolP)
		checkClose(t, fmt.Sprintf("step %d: m", step), backendtest.Download(t, b, m), m64, tolM)
		checkClose(t, fmt.Sprintf("step %d: v", step), backendtest.Download(t, b, v), v64, tolV)
	}
}

func TestUniform(t *testing.T) {
	b := newBackend(t, "go")
	const rows, cols = 31, 33
	for _, tc := range []struct {
		lo, hi float32
		s      rng.Stream
	}{
		{-1, 1, rng.Stream{Seed: 1, Offset: 2}},
		{0, 1, rng.Stream{Seed: 3, Offset: 4}},
		{-0.05, 0.05, rng.Stream{Seed: 5, Offset: 1 << 33}},
		{2, 5, rng.Stream{Seed: 1 << 60, Offset: 0}},
		{-3, -2.5, rng.Stream{Seed: 8, Offset: 8}},
	} {
		x := filled(t, b, rows, cols, float32(math.NaN()))
		b.Uniform(x, tc.lo, tc.hi, tc.s)
		checkNoErr(t, b)
		got := backendtest.Download(t, b, x)
		want := make([]float32, len(got))
		for e := range want {
			want[e] = rng.ToUniform(tc.s.Word(uint64(e)), tc.lo, tc.hi)
		}
		name := fmt.Sprintf("[%g, %g) %+v", tc.lo, tc.hi, tc.s)
		checkBits(t, name, got, want)
		lo, hi := float32(math.Inf(1)), float32(math.Inf(-1))
		for e, v := range got {
			if !(v >= tc.lo && v < tc.hi) {
				t.Errorf("%s: element %d = %g, want in [%g, %g)", name, e, v, tc.lo, tc.hi)
			}
			lo, hi = min(lo, v), max(hi, v)
		}
		// 1023 draws cover most of the range.
		if w := tc.hi - tc.lo; lo > tc.lo+0.01*w || hi < tc.hi-0.01*w {
			t.Errorf("%s: values span [%g, %g], want nearly all of [%g, %g)", name, lo, hi, tc.lo, tc.hi)
		}
	}
}

// TestUniformTopWord draws Uniform at a stream element whose word is as large as
// ToUnit can see (ToUnit = 1 − 2⁻²⁴): the value must still be below hi.
func TestUniformTopWord(t *testing.T) {
	const top = 0xffffff00 // every word ≥ top has ToUnit = 1 − 2⁻²⁴
	var s rng.Stream
	e := -1
	for off := uint64(0); e < 0; off++ {
		if off == 1<<24 {
			t.Fatal("no word ≥ 0xffffff00 in block 0 of 2²⁴ streams")
		}
		s = rng.Stream{Seed: 1, Offset: off}
		for j, w := range s.Block(0) {
			if w >= top {
				e = j
				break
			}
		}
	}
	b := newBackend(t, "go")
	for _, r := range [][2]float32{{1, 2}, {2, 3}, {-3, -2}, {0.5, 1}, {0, 1}, {-1, 1}} {
		x := alloc(t, b, backend.F32, 1, 4)
		b.Uniform(x, r[0], r[1], s)
		checkNoErr(t, b)
		if got := backendtest.Download(t, b, x)[e]; !(got >= r[0] && got < r[1]) {
			t.Errorf("Uniform [%g, %g) at word %#08x: got %g, want < %g", r[0], r[1], s.Word(uint64(e)), got, r[1])
		}
	}
}

// TestNormal: element e is mean + std·NormalAt(e) bit for bit, on one worker and on
// three (which split the odd-sized tensor between them, a Philox block a pair).
func TestNormal(t *testing.T) {
	const rows, cols = 33, 31
	for _, tc := range []struct {
		threads   int
		mean, std float32
		s         rng.Stream
	}{
		{1, 0, 1, rng.Stream{Seed: 1, Offset: 1}},
		{3, 0, 1, rng.Stream{Seed: 1, Offset: 1}},
		{3, 0.5, 0.02, rng.Stream{Seed: 2, Offset: 1 << 40}},
		{3, -3, 2, rng.Stream{Seed: 0xffffffffffffffff, Offset: 7}},
	} {
		b, err := cpu.New(cpu.Options{BLAS: "go", Threads: tc.threads})
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		x := filled(t, b, rows, cols, float32(math.NaN()))
		b.Normal(x, tc.mean, tc.std, tc.s)
		checkNoErr(t, b)
		got := backendtest.Download(t, b, x)
		want := make([]float32, len(got))
		sum := 0.0
		for e := range want {
			want[e] = tc.mean + tc.std*tc.s.NormalAt(uint64(e))
			sum += float64(got[e])
		}
		checkBits(t, fmt.Sprintf("N(%g, %g²) %+v, %d threads", tc.mean, tc.std, tc.s, tc.threads), got, want)
		// The sample mean of 1023 draws is within 5 standard errors.
		if mean := sum / float64(len(got)); math.Abs(mean-float64(tc.mean)) > 5*float64(tc.std)/math.Sqrt(float64(len(got))) {
			t.Errorf("N(%g, %g²): sample mean %g", tc.mean, tc.std, mean)
		}
	}
}

func TestGatherRows(t *testing.T) {
	b := newBackend(t, "go")
	const srcRows, cols = 6, 3
	srcVals := make([]float32, srcRows*cols)
	for i := range srcVals {
		srcVals[i] = float32(10*(i/cols) + i%cols) // row r holds 10r, 10r+1, 10r+2
	}
	src := tensorOf(t, b, srcRows, cols, srcVals)
	idxVals := []int32{5, 0, 2, 2, 4, 1, 3, 5}
	idx := indexTensorOf(t, b, 1, len(idxVals), idxVals)
	for _, tc := range []struct{ rows, offset int }{{3, 2}, {8, 0}, {1, 7}, {4, 4}, {0, 8}} {
		dst := filled(t, b, tc.rows, cols, -1)
		b.GatherRows(dst, src, idx, tc.offset)
		checkNoErr(t, b)
		want := make([]float32, 0, tc.rows*cols)
		for r := 0; r < tc.rows; r++ {
			k := int(idxVals[tc.offset+r])
			want = append(want, srcVals[k*cols:(k+1)*cols]...)
		}
		checkBits(t, fmt.Sprintf("%d rows at offset %d", tc.rows, tc.offset), backendtest.Download(t, b, dst), want)
	}
}

func TestGatherRowsBadIndexIsSticky(t *testing.T) {
	for _, bad := range []int32{6, -1, math.MaxInt32, math.MinInt32} {
		t.Run(fmt.Sprint(bad), func(t *testing.T) {
			b := newBackend(t, "go")
			src := filled(t, b, 6, 2, 1)
			idx := indexTensorOf(t, b, 1, 4, []int32{0, 1, bad, 3})
			dst := alloc(t, b, backend.F32, 3, 2)
			b.GatherRows(dst, src, idx, 1)
			err := b.Err()
			if !errors.Is(err, backend.ErrShape) {
				t.Fatalf("Err() = %v, want an error wrapping ErrShape", err)
			}
			if got := b.Sync(); got != err {
				t.Errorf("Sync() = %v, want %v", got, err)
			}

			// Further work is refused, and the first error is kept.
			b.Fill(dst, 3)
			b.Copy(dst, alloc(t, b, backend.F32, 5, 5)) // would be a second error
			b.GatherRows(dst, src, indexTensorOf(t, b, 1, 3, []int32{0, 0, 0}), 0)
			if got := b.Err(); got != err {
				t.Errorf("Err() after more ops = %v, want the first error %v", got, err)
			}
			out := make([]float32, 6)
			if got := b.Download(out, dst); got != err {
				t.Errorf("Download() = %v, want %v", got, err)
			}
			for i, v := range out {
				if v != 0 {
					t.Errorf("Download wrote out[%d] = %g after an error, want nothing written", i, v)
				}
			}
		})
	}
}

// TestDeterminism runs one training-like sequence twice on fresh backends and
// requires identical bits.
func TestDeterminism(t *testing.T) {
	eachBLAS(t, func(t *testing.T, blas string) {
		run := func() [][]float32 {
			b := newBackend(t, blas)
			const n, in, hid, pcs = 16, 24, 8, 2
			x, w1, b1 := alloc(t, b, backend.F32, n, in), alloc(t, b, backend.F32, in, hid*pcs), alloc(t, b, backend.F32, 1, hid*pcs)
			w2, b2 := alloc(t, b, backend.F32, hid, 1), alloc(t, b, backend.F32, 1, 1)
			b.Normal(x, 0, 1, rng.Stream{Seed: 3, Offset: 0})
			b.Uniform(w1, -0.3, 0.3, rng.Stream{Seed: 3, Offset: 1})
			b.Uniform(w2, -0.3, 0.3, rng.Stream{Seed: 3, Offset: 2})
			b.Fill(b1, 0.01)
			z1, h, arg := alloc(t, b, backend.F32, n, hid*pcs), alloc(t, b, backend.F32, n, hid), alloc(t, b, backend.I32, n, hid)
			hd, mask := alloc(t, b, backend.F32, n, hid), alloc(t, b, backend.F32, n, hid)
			logit, target, out := alloc(t, b, backend.F32, n, 1), alloc(t, b, backend.F32, n, 1), alloc(t, b, backend.F32, 1, 2)
			b.Fill(target, 1)
			b.DenseForward(z1, x, w1, b1, backend.Act{Kind: backend.Identity})
			b.MaxoutForward(h, arg, z1, pcs)
			b.Dropout(hd, mask, h, 0.8, rng.Stream{Seed: 3, Offset: 4})
			b.DenseForward(logit, hd, w2, b2, backend.Act{Kind: backend.Identity})
			dl := alloc(t, b, backend.F32, n, 1)
			b.SigmoidCrossEntropy(dl, logit, target, 1.0/n, out, 0)
			b.MeanSigmoid(logit, out, 1)
			dh, dw2, db2 := alloc(t, b, backend.F32, n, hid), alloc(t, b, backend.F32, hid, 1), alloc(t, b, backend.F32, 1, 1)
			b.DenseBackward(dh, dw2, db2, dl, hd, logit, w2, backend.Act{Kind: backend.Identity})
			b.Mul(dh, dh, mask)
			dz1, dw1, db1 := alloc(t, b, backend.F32, n, hid*pcs), alloc(t, b, backend.F32, in, hid*pcs), alloc(t, b, backend.F32, 1, hid*pcs)
			b.MaxoutBackward(dz1, dh, arg, pcs)
			b.DenseBackward(nil, dw1, db1, dz1, x, z1, w1, backend.Act{Kind: backend.Identity})
			m1, v1 := alloc(t, b, backend.F32, in, hid*pcs), alloc(t, b, backend.F32, in, hid*pcs)
			b.Adam(w1, dw1, m1, v1, 1e-3, 0.5, 0.999, 1e-8, 1)
			vel := alloc(t, b, backend.F32, hid, 1)
			b.SGDMomentum(w2, dw2, vel, 0.1, 0.5)
			checkNoErr(t, b)
			var res [][]float32
			for _, x := range []backend.Tensor{out, dl, w1, w2, m1, v1, vel, dw1, db1} {
				res = append(res, backendtest.Download(t, b, x))
			}
			return res
		}
		a, c := run(), run()
		for i := range a {
			checkBits(t, fmt.Sprintf("output %d", i), c[i], a[i])
		}
	})
}

func TestFillCopy(t *testing.T) {
	b := newBackend(t, "go")
	if got := b.Name(); got != "cpu" {
		t.Errorf("Name() = %q, want %q", got, "cpu")
	}
	x := filled(t, b, 3, 5, float32(math.NaN()))
	b.Fill(x, -2.5)
	checkNoErr(t, b)
	checkBits(t, "Fill", backendtest.Download(t, b, x), backendtest.ConstSlice(15, -2.5))

	vals := uniform(rand.New(rand.NewPCG(11, 11)), 15, -1, 1)
	src := tensorOf(t, b, 3, 5, vals)
	b.Copy(x, src)
	checkNoErr(t, b)
	checkBits(t, "Copy", backendtest.Download(t, b, x), vals)
	checkBits(t, "Copy source", backendtest.Download(t, b, src), vals)
}
