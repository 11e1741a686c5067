package cpu_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/gantrain/gantrain/backend"
	"github.com/gantrain/gantrain/backend/backendtest"
	"github.com/gantrain/gantrain/cpu"
)

type denseShape struct{ n, in, out int }

func (s denseShape) String() string { return fmt.Sprintf("%dx%dx%d", s.n, s.in, s.out) }

func TestDenseForward(t *testing.T) {
	shapes := []denseShape{{7, 13, 5}, {1, 13, 5}, {1, 1, 1}, {5, 1, 9}, {37, 53, 29}}
	eachBLAS(t, func(t *testing.T, blas string) {
		b := newBackend(t, blas)
		for _, sh := range shapes {
			for _, act := range acts {
				t.Run(fmt.Sprintf("%v/%v", sh, act.Kind), func(t *testing.T) {
					r := rand.New(rand.NewPCG(uint64(sh.n*1000+sh.in), uint64(sh.out)))
					xs := uniform(r, sh.n*sh.in, -1, 1)
					ws := uniform(r, sh.in*sh.out, -1, 1)
					bs := uniform(r, sh.out, -0.5, 0.5)
					x := tensorOf(t, b, sh.n, sh.in, xs)
					w := tensorOf(t, b, sh.in, sh.out, ws)
					bias := tensorOf(t, b, 1, sh.out, bs)
					// y starts as NaN: every element must be written, not accumulated.
					y := filled(t, b, sh.n, sh.out, float32(math.NaN()))
					b.DenseForward(y, x, w, bias, act)
					checkNoErr(t, b)

					x64, w64, b64 := to64(xs), to64(ws), to64(bs)
					_, want := dense64(x64, w64, b64, sh.n, sh.in, sh.out, act)
					tol := denseMag(x64, w64, b64, sh.n, sh.in, sh.out)
					for i := range tol {
						tol[i] = 1e-5 * (tol[i] + 1)
					}
					checkClose(t, "y", backendtest.Download(t, b, y), want, tol)
				})
			}
		}
	})
}

// TestDenseForwardViews runs a dense layer on views at odd offsets of larger
// allocations; the result must match the same layer on plain allocations.
func TestDenseForwardViews(t *testing.T) {
	eachBLAS(t, func(t *testing.T, blas string) {
		b := newBackend(t, blas)
		const n, in, out = 3, 4, 5
		r := rand.New(rand.NewPCG(3, 4))
		xs := uniform(r, n*in, -1, 1)
		ws := uniform(r, in*out, -1, 1)
		bs := uniform(r, out, -1, 1)
		act := backend.Act{Kind: backend.Tanh}

		want := alloc(t, b, backend.F32, n, out)
		b.DenseForward(want, tensorOf(t, b, n, in, xs), tensorOf(t, b, in, out, ws), tensorOf(t, b, 1, out, bs), act)

		// One pool holds all four operands, each at an odd offset, with guards between.
		pool := filled(t, b, 1, 200, 7)
		view := func(off, rows, cols int) backend.Tensor {
			v, err := b.View(pool, off, rows, cols)
			if err != nil {
				t.Fatalf("View(%d, %d, %d): %v", off, rows, cols, err)
			}
			return v
		}
		x, w, bias, y := view(1, n, in), view(17, in, out), view(41, out, 1), view(53, n, out)
		if err := b.Upload(x, xs); err != nil {
			t.Fatal(err)
		}
		if err := b.Upload(w, ws); err != nil {
			t.Fatal(err)
		}
		if err := b.Upload(bias, bs); err != nil {
			t.Fatal(err)
		}
		b.DenseForward(y, x, w, bias, act)
		checkNoErr(t, b)
		checkBits(t, "y (views)", backendtest.Download(t, b, y), backendtest.Download(t, b, want))

		// Elements outside the views are untouched.
		all := backendtest.Download(t, b, pool)
		for _, i := range []int{0, 13, 14, 15, 16, 37, 38, 39, 40, 46, 47, 48, 49, 50, 51, 52, 68, 199} {
			if all[i] != 7 {
				t.Errorf("pool[%d] = %g, want 7 (outside every view)", i, all[i])
			}
		}
	})
}

// dActFromY is act'(z) written in terms of y = act(z), in float64.
func dActFromY(y float64, a backend.Act) float64 {
	switch a.Kind {
	case backend.ReLU:
		if y > 0 {
			return 1
		}
		return 0
	case backend.LeakyReLU:
		if y < 0 {
			return float64(a.Alpha)
		}
		return 1
	case backend.Sigmoid:
		return y * (1 - y)
	case backend.Tanh:
		return 1 - y*y
	}
	return 1
}

// denseData is a dense layer's inputs, with a fixed cotangent c defining L = Σ c ⊙ y.
type denseData struct {
	sh         denseShape
	x, w, b, c []float32
}

// newDenseData draws a layer whose pre-activations all lie at least margin away
// from zero, so that finite differences of ReLU and LeakyReLU never cross the kink.
func newDenseData(t *testing.T, sh denseShape, seed uint64, margin float64) denseData {
	t.Helper()
	for try := uint64(0); try < 100; try++ {
		r := rand.New(rand.NewPCG(seed, try))
		d := denseData{
			sh: sh,
			x:  uniform(r, sh.n*sh.in, -1, 1),
			w:  uniform(r, sh.in*sh.out, -1, 1),
			b:  uniform(r, sh.out, -0.5, 0.5),
			c:  uniform(r, sh.n*sh.out, -1, 1),
		}
		z, _ := dense64(to64(d.x), to64(d.w), to64(d.b), sh.n, sh.in, sh.out, backend.Act{})
		ok := true
		for _, v := range z {
			ok = ok && math.Abs(v) >= margin
		}
		if ok {
			return d
		}
	}
	t.Fatalf("no draw of %v keeps pre-activations %g away from 0", sh, margin)
	return denseData{}
}

// denseRun holds a layer's tensors on a backend after a forward pass.
type denseRun struct {
	x, w, bias, y backend.Tensor
}

func (d denseData) forward(t *testing.T, b backend.Backend, act backend.Act) denseRun {
	t.Helper()
	sh := d.sh
	run := denseRun{
		x:    tensorOf(t, b, sh.n, sh.in, d.x),
		w:    tensorOf(t, b, sh.in, sh.out, d.w),
		bias: tensorOf(t, b, 1, sh.out, d.b),
		y:    alloc(t, b, backend.F32, sh.n, sh.out),
	}
	b.DenseForward(run.y, run.x, run.w, run.bias, act)
	checkNoErr(t, b)
	return run
}

func TestDenseBackwardFiniteDifferences(t *testing.T) {
	shapes := []denseShape{{7, 13, 5}, {1, 4, 3}, {3, 1, 2}, {2, 3, 1}}
	eachBLAS(t, func(t *testing.T, blas string) {
		b := newBackend(t, blas)
		for si, sh := range shapes {
			d := newDenseData(t, sh, uint64(si)+10, 1e-3)
			for _, act := range acts {
				t.Run(fmt.Sprintf("%v/%v", sh, act.Kind), func(t *testing.T) {
					run := d.forward(t, b, act)
					dy := tensorOf(t, b, sh.n, sh.out, d.c)
					dx := filled(t, b, sh.n, sh.in, float32(math.NaN()))
					dw := filled(t, b, sh.in, sh.out, float32(math.NaN()))
					db := filled(t, b, 1, sh.out, float32(math.NaN()))
					b.DenseBackward(dx, dw, db, dy, run.x, run.y, run.w, act)
					checkNoErr(t, b)

					x64, w64, b64, c64 := to64(d.x), to64(d.w), to64(d.b), to64(d.c)
					loss := func() float64 {
						_, y := dense64(x64, w64, b64, sh.n, sh.in, sh.out, act)
						return dot64(c64, y)
					}
					checkGrad(t, "dx", backendtest.Download(t, b, dx), centralDiff(x64, loss), 1e-3)
					checkGrad(t, "dw", backendtest.Download(t, b, dw), centralDiff(w64, loss), 1e-3)
					checkGrad(t, "db", backendtest.Download(t, b, db), centralDiff(b64, loss), 1e-3)

					// dy is overwritten with dZ = c ⊙ act'(z).
					z, _ := dense64(x64, w64, b64, sh.n, sh.in, sh.out, backend.Act{})
					dz := make([]float64, len(z))
					for i, zi := range z {
						v := []float64{zi}
						dz[i] = c64[i] * centralDiff(v, func() float64 { return backendtest.Act64(v[0], act) })[0]
					}
					checkGrad(t, "dZ (dy on return)", backendtest.Download(t, b, dy), dz, 1e-3)
				})
			}
		}
	})
}

// TestDenseBackwardLarge checks a large ragged layer against float64 products of
// the backend's own dZ rule (act' from y, as the contract states).
func TestDenseBackwardLarge(t *testing.T) {
	sh := denseShape{37, 53, 29}
	eachBLAS(t, func(t *testing.T, blas string) {
		b := newBackend(t, blas)
		d := newDenseData(t, sh, 99, 0)
		for _, act := range acts {
			t.Run(act.Kind.String(), func(t *testing.T) {
				run := d.forward(t, b, act)
				dy := tensorOf(t, b, sh.n, sh.out, d.c)
				dx := alloc(t, b, backend.F32, sh.n, sh.in)
				dw := alloc(t, b, backend.F32, sh.in, sh.out)
				db := alloc(t, b, backend.F32, 1, sh.out)
				b.DenseBackward(dx, dw, db, dy, run.x, run.y, run.w, act)
				checkNoErr(t, b)

				y := to64(backendtest.Download(t, b, run.y))
				dz := make([]float64, len(y))
				for i := range y {
					dz[i] = float64(d.c[i]) * dActFromY(y[i], act)
				}
				// act' is computed in float32, where 1−y² loses absolute accuracy
				// ~ulp(1) as |y| → 1.
				tol := make([]float64, len(dz))
				for i := range tol {
					tol[i] = 1e-6*math.Abs(dz[i]) + 3e-7*math.Abs(float64(d.c[i]))
				}
				checkClose(t, "dZ", backendtest.Download(t, b, dy), dz, tol)

				x64, w64 := to64(d.x), to64(d.w)
				wantDx, tolDx := make([]float64, sh.n*sh.in), make([]float64, sh.n*sh.in)
				for r := 0; r < sh.n; r++ {
					for k := 0; k < sh.in; k++ {
						for j := 0; j < sh.out; j++ {
							p := dz[r*sh.out+j] * w64[k*sh.out+j]
							wantDx[r*sh.in+k] += p
							tolDx[r*sh.in+k] += math.Abs(p)
						}
					}
				}
				wantDw, tolDw := make([]float64, sh.in*sh.out), make([]float64, sh.in*sh.out)
				wantDb, tolDb := make([]float64, sh.out), make([]float64, sh.out)
				for r := 0; r < sh.n; r++ {
					for j := 0; j < sh.out; j++ {
						g := dz[r*sh.out+j]
						wantDb[j] += g
						tolDb[j] += math.Abs(g)
						for k := 0; k < sh.in; k++ {
							p := x64[r*sh.in+k] * g
							wantDw[k*sh.out+j] += p
							tolDw[k*sh.out+j] += math.Abs(p)
						}
					}
				}
				for _, tol := range [][]float64{tolDx, tolDw, tolDb} {
					for i := range tol {
						tol[i] = 1e-5*tol[i] + 1e-7
					}
				}
				checkClose(t, "dx", backendtest.Download(t, b, dx), wantDx, tolDx)
				checkClose(t, "dw", backendtest.Download(t, b, dw), wantDw, tolDw)
				checkClose(t, "db", backendtest.Download(t, b, db), wantDb, tolDb)
			})
		}
	})
}

// TestDenseBackwardNilOutputs skips each combination of dx, dw and db: the outputs
// still asked for, and dZ in dy, must be bit-identical to a run that asks for all.
func TestDenseBackwardNilOutputs(t *testing.T) {
	sh := denseShape{7, 13, 5}
	eachBLAS(t, func(t *testing.T, blas string) {
		b := newBackend(t, blas)
		d := newDenseData(t, sh, 5, 0)
		for _, act := range acts {
			t.Run(act.Kind.String(), func(t *testing.T) {
				run := d.forward(t, b, act)
				backward := func(wantDx, wantDw, wantDb bool) (dy, dx, dw, db []float32) {
					t.Helper()
					dyT := tensorOf(t, b, sh.n, sh.out, d.c)
					var dxT, dwT, dbT backend.Tensor
					if wantDx {
						dxT = filled(t, b, sh.n, sh.in, -3)
					}
					if wantDw {
						dwT = filled(t, b, sh.in, sh.out, -3)
					}
					if wantDb {
						dbT = filled(t, b, 1, sh.out, -3)
					}
					b.DenseBackward(dxT, dwT, dbT, dyT, run.x, run.y, run.w, act)
					checkNoErr(t, b)
					dy = backendtest.Download(t, b, dyT)
					if wantDx {
						dx = backendtest.Download(t, b, dxT)
					}
					if wantDw {
						dw = backendtest.Download(t, b, dwT)
					}
					if wantDb {
						db = backendtest.Download(t, b, dbT)
					}
					return dy, dx, dw, db
				}
				dy0, dx0, dw0, db0 := backward(true, true, true)
				for mask := 0; mask < 7; mask++ {
					hasDx, hasDw, hasDb := mask&1 != 0, mask&2 != 0, mask&4 != 0
					name := fmt.Sprintf("dx=%v,dw=%v,db=%v", hasDx, hasDw, hasDb)
					dy, dx, dw, db := backward(hasDx, hasDw, hasDb)
					checkBits(t, name+": dZ", dy, dy0)
					if hasDx {
						checkBits(t, name+": dx", dx, dx0)
					}
					if hasDw {
						checkBits(t, name+": dw", dw, dw0)
					}
					if hasDb {
						checkBits(t, name+": db", db, db0)
					}
				}
			})
		}
	})
}

// TestDenseBackwardSplit: with several workers dZ is split by rows, the weight
// gradient by rows when it is taller than wide and by columns otherwise; either way
// every output must have the bits of one worker's, with a library that computes a
// row or column alike in a narrower call (pure Go).
func TestDenseBackwardSplit(t *testing.T) {
	act := backend.Act{Kind: backend.LeakyReLU, Alpha: 0.2}
	for _, sh := range []denseShape{{300, 1200, 128}, {300, 128, 1200}} {
		t.Run(sh.String(), func(t *testing.T) {
			d := newDenseData(t, sh, 9, 0)
			var outs [2][4][]float32 // one worker, three: dZ, dx, dw, db
			for i, threads := range []int{1, 3} {
				b, err := cpu.New(cpu.Options{BLAS: "go", Threads: threads})
				if err != nil {
					t.Fatal(err)
				}
				defer b.Close()
				run := d.forward(t, b, act)
				dy := tensorOf(t, b, sh.n, sh.out, d.c)
				dx, dw, db := filled(t, b, sh.n, sh.in, -3), filled(t, b, sh.in, sh.out, -3), filled(t, b, 1, sh.out, -3)
				b.DenseBackward(dx, dw, db, dy, run.x, run.y, run.w, act)
				checkNoErr(t, b)
				for j, x := range []backend.Tensor{dy, dx, dw, db} {
					outs[i][j] = backendtest.Download(t, b, x)
				}
			}
			for j, name := range []string{"dZ", "dx", "dw", "db"} {
				checkBits(t, name, outs[1][j], outs[0][j])
			}
			// And dw is xᵀ·dZ: the split computes all of it.
			dz := outs[0][0]
			want, tol := make([]float64, sh.in*sh.out), make([]float64, sh.in*sh.out)
			for r := range sh.n {
				for i := range sh.in {
					for o := range sh.out {
						p := float64(d.x[r*sh.in+i]) * float64(dz[r*sh.out+o])
						want[i*sh.out+o] += p
						tol[i*sh.out+o] += 1e-5 * math.Abs(p)
					}
				}
			}
			checkClose(t, "dw against xᵀ·dZ", outs[1][2], want, tol)
		})
	}
}
