//go:build !nocuda

package gpu_test

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/gantrain/gantrain/backend"
	"github.com/gantrain/gantrain/backend/backendtest"
	"github.com/gantrain/gantrain/gpu"
	"github.com/gantrain/gantrain/rng"
)

// foreign is a tensor that no backend made.
type foreign struct{ rows, cols int }

func (f foreign) Rows() int            { return f.rows }
func (f foreign) Cols() int            { return f.cols }
func (f foreign) DType() backend.DType { return backend.F32 }

// TestShapeErrors makes the calls that the CPU backend refuses and checks that the GPU
// backend refuses them with the same message (so the op is named), stickily: later
// work is skipped and Sync and Download report the same error.
func TestShapeErrors(t *testing.T) {
	s := rng.Stream{Seed: 1}
	idAct := backend.Act{}
	type mk func(r, c int) backend.Tensor
	for _, tc := range []struct {
		op, name string
		call     func(b backend.Backend, f, i mk)
	}{
		{"Fill", "nil", func(b backend.Backend, f, i mk) { b.Fill(nil, 1) }},
		{"Fill", "i32", func(b backend.Backend, f, i mk) { b.Fill(i(2, 2), 1) }},
		{"Fill", "foreign", func(b backend.Backend, f, i mk) { b.Fill(foreign{2, 2}, 1) }},
		{"Copy", "transposed", func(b backend.Backend, f, i mk) { b.Copy(f(2, 3), f(3, 2)) }},
		{"Copy", "i32 src", func(b backend.Backend, f, i mk) { b.Copy(f(2, 2), i(2, 2)) }},
		{"Mul", "b", func(b backend.Backend, f, i mk) { b.Mul(f(2, 3), f(2, 3), f(3, 2)) }},
		{"Mul", "y", func(b backend.Backend, f, i mk) { b.Mul(f(1, 6), f(2, 3), f(2, 3)) }},
		{"DenseForward", "w rows", func(b backend.Backend, f, i mk) { b.DenseForward(f(4, 5), f(4, 3), f(2, 5), f(1, 5), idAct) }},
		{"DenseForward", "bias", func(b backend.Backend, f, i mk) { b.DenseForward(f(4, 5), f(4, 3), f(3, 5), f(1, 4), idAct) }},
		{"DenseForward", "y rows", func(b backend.Backend, f, i mk) { b.DenseForward(f(3, 5), f(4, 3), f(3, 5), f(1, 5), idAct) }},
		{"DenseForward", "no rows", func(b backend.Backend, f, i mk) { b.DenseForward(f(0, 5), f(0, 3), f(3, 5), f(1, 5), idAct) }},
		{"DenseForward", "nil bias", func(b backend.Backend, f, i mk) { b.DenseForward(f(4, 5), f(4, 3), f(3, 5), nil, idAct) }},
		{"DenseBackward", "y", func(b backend.Backend, f, i mk) {
			b.DenseBackward(f(4, 3), f(3, 5), f(1, 5), f(4, 4), f(4, 3), f(4, 4), f(3, 5), idAct)
		}},
		{"DenseBackward", "dx", func(b backend.Backend, f, i mk) {
			b.DenseBackward(f(3, 4), f(3, 5), f(1, 5), f(4, 5), f(4, 3), f(4, 5), f(3, 5), idAct)
		}},
		{"DenseBackward", "dw", func(b backend.Backend, f, i mk) {
			b.DenseBackward(f(4, 3), f(5, 3), f(1, 5), f(4, 5), f(4, 3), f(4, 5), f(3, 5), idAct)
		}},
		{"DenseBackward", "db", func(b backend.Backend, f, i mk) {
			b.DenseBackward(f(4, 3), f(3, 5), f(1, 4), f(4, 5), f(4, 3), f(4, 5), f(3, 5), idAct)
		}},
		{"DenseBackward", "i32 dw", func(b backend.Backend, f, i mk) {
			b.DenseBackward(nil, i(3, 5), nil, f(4, 5), f(4, 3), f(4, 5), f(3, 5), idAct)
		}},
		{"DenseBackward", "no outputs", func(b backend.Backend, f, i mk) {
			b.DenseBackward(f(3, 2), f(2, 0), f(1, 0), f(3, 0), f(3, 2), f(3, 0), f(2, 0), idAct)
		}},
		{"MaxoutForward", "zero pieces", func(b backend.Backend, f, i mk) { b.MaxoutForward(f(2, 3), i(2, 3), f(2, 6), 0) }},
		{"MaxoutForward", "z cols", func(b backend.Backend, f, i mk) { b.MaxoutForward(f(2, 3), i(2, 3), f(2, 7), 2) }},
		{"MaxoutForward", "f32 arg", func(b backend.Backend, f, i mk) { b.MaxoutForward(f(2, 3), f(2, 3), f(2, 6), 2) }},
		{"MaxoutBackward", "arg shape", func(b backend.Backend, f, i mk) { b.MaxoutBackward(f(2, 6), f(2, 3), i(1, 3), 2) }},
		{"MaxoutDropout", "mask shape", func(b backend.Backend, f, i mk) { b.MaxoutDropout(f(2, 3), i(2, 3), f(3, 2), f(2, 6), 2, 0.5, s) }},
		{"MaxoutDropoutBackward", "i32 mask", func(b backend.Backend, f, i mk) { b.MaxoutDropoutBackward(f(2, 6), f(2, 3), i(2, 3), i(2, 3), 2) }},
		{"Dropout", "mask", func(b backend.Backend, f, i mk) { b.Dropout(f(2, 3), f(2, 4), f(2, 3), 0.5, s) }},
		{"Dropout", "keep 0", func(b backend.Backend, f, i mk) { b.Dropout(f(2, 3), f(2, 3), f(2, 3), 0, s) }},
		{"Dropout", "keep NaN", func(b backend.Backend, f, i mk) { b.Dropout(f(2, 3), f(2, 3), f(2, 3), float32(math.NaN()), s) }},
		{"SigmoidCrossEntropy", "targets", func(b backend.Backend, f, i mk) { b.SigmoidCrossEntropy(nil, f(4, 1), f(3, 1), 1, f(1, 1), 0) }},
		{"SigmoidCrossEntropy", "slot = len", func(b backend.Backend, f, i mk) { b.SigmoidCrossEntropy(nil, f(4, 1), f(4, 1), 1, f(1, 2), 2) }},
		{"SigmoidCrossEntropy", "dlogits", func(b backend.Backend, f, i mk) { b.SigmoidCrossEntropy(f(1, 4), f(4, 1), f(4, 1), 1, f(1, 1), 0) }},
		{"MeanSigmoid", "no logits", func(b backend.Backend, f, i mk) { b.MeanSigmoid(f(0, 1), f(1, 3), 0) }},
		{"SoftmaxCrossEntropy", "labels rows", func(b backend.Backend, f, i mk) { b.SoftmaxCrossEntropy(nil, f(4, 3), i(3, 1), 1, f(1, 1), 0) }},
		{"SoftmaxCrossEntropy", "f32 labels", func(b backend.Backend, f, i mk) { b.SoftmaxCrossEntropy(nil, f(4, 3), f(4, 1), 1, f(1, 1), 0) }},
		{"LogSumExpRows", "out", func(b backend.Backend, f, i mk) { b.LogSumExpRows(f(3, 2), f(3, 4)) }},
		{"SGDMomentum", "v", func(b backend.Backend, f, i mk) { b.SGDMomentum(f(3, 4), f(3, 4), f(3, 5), 0.1, 0.9) }},
		{"MovingAverage", "decay", func(b backend.Backend, f, i mk) { b.MovingAverage(f(3, 4), f(3, 4), -0.5) }},
		{"Adam", "step 0", func(b backend.Backend, f, i mk) {
			b.Adam(f(3, 4), f(3, 4), f(3, 4), f(3, 4), 1e-3, 0.5, 0.999, 1e-8, 0)
		}},
		{"ClipColumnNorms", "max norm 0", func(b backend.Backend, f, i mk) { b.ClipColumnNorms(f(3, 4), 0) }},
		{"Uniform", "empty range", func(b backend.Backend, f, i mk) { b.Uniform(f(2, 2), 1, 1, s) }},
		{"Normal", "i32", func(b backend.Backend, f, i mk) { b.Normal(i(2, 2), 0, 1, s) }},
		{"GatherRows", "cols", func(b backend.Backend, f, i mk) { b.GatherRows(f(2, 3), f(5, 4), i(1, 4), 0) }},
		{"GatherRows", "past the indices", func(b backend.Backend, f, i mk) { b.GatherRows(f(2, 3), f(5, 3), i(1, 4), 3) }},
		{"GatherRows", "index out of range", func(b backend.Backend, f, i mk) {
			idx := i(1, 4)
			if err := b.Upload(idx, []int32{0, 4, 5, 1}); err != nil {
				panic(err)
			}
			b.GatherRows(f(2, 3), f(5, 3), idx, 1)
		}},
		{"GatherRows", "negative index", func(b backend.Backend, f, i mk) {
			idx := i(1, 4)
			if err := b.Upload(idx, []int32{0, 1, -1, 2}); err != nil {
				panic(err)
			}
			b.GatherRows(f(3, 3), f(5, 3), idx, 0)
		}},
		{"SoftmaxCrossEntropy", "label out of range", func(b backend.Backend, f, i mk) {
			labels := i(3, 1)
			if err := b.Upload(labels, []int32{0, 3, 1}); err != nil {
				panic(err)
			}
			b.SoftmaxCrossEntropy(nil, f(3, 3), labels, 1, f(1, 1), 0)
		}},
	} {
		t.Run(tc.op+"/"+tc.name, func(t *testing.T) {
			var msgs [2]string
			for k, b := range []backend.Backend{newCPU(t), newGPU(t, false)} {
				f := func(r, c int) backend.Tensor { x, _ := b.Alloc(backend.F32, r, c); return x }
				i := func(r, c int) backend.Tensor { x, _ := b.Alloc(backend.I32, r, c); return x }
				probe := f(1, 1)
				tc.call(b, f, i)
				err := b.Err()
				if !errors.Is(err, backend.ErrShape) || !strings.Contains(err.Error(), tc.op) {
					t.Fatalf("%s: Err() = %v, want an ErrShape error naming %s", b.Name(), err, tc.op)
				}
				b.Fill(probe, 1) // skipped: the error is sticky
				if got := b.Sync(); got != err {
					t.Errorf("%s: Sync() = %v, want %v", b.Name(), got, err)
				}
				if got := b.Download(make([]float32, 1), probe); got != err {
					t.Errorf("%s: Download() = %v, want %v", b.Name(), got, err)
				}
				msgs[k] = strings.ReplaceAll(err.Error(), "CUDA", "CPU")
			}
			if msgs[0] != msgs[1] {
				t.Errorf("messages differ:\n cpu %s\n gpu %s", msgs[0], msgs[1])
			}
		})
	}
}

func TestForeignTensors(t *testing.T) {
	g1, g2, c := newGPU(t, false), newGPU(t, false), newCPU(t)
	x1, _ := g1.Alloc(backend.F32, 2, 2)
	x2, _ := g2.Alloc(backend.F32, 2, 2)
	xc, _ := c.Alloc(backend.F32, 2, 2)
	g1.Copy(x1, x2)
	if err := g1.Err(); !errors.Is(err, backend.ErrShape) || !strings.Contains(err.Error(), "another CUDA backend") {
		t.Errorf("Copy from another GPU backend's tensor: %v", err)
	}
	g2.Copy(x2, xc)
	if err := g2.Err(); !errors.Is(err, backend.ErrShape) || !strings.Contains(err.Error(), "not made by the CUDA backend") {
		t.Errorf("Copy from a CPU tensor: %v", err)
	}
	if err := newGPU(t, false).Upload(x1, []float32{1, 2, 3, 4}); err == nil || !strings.Contains(err.Error(), "another CUDA backend") {
		t.Errorf("Upload into another backend's tensor: %v", err)
	}
	if _, err := g1.View(xc, 0, 1, 1); err == nil {
		t.Error("View of a CPU tensor: no error")
	}
	if err := c.Upload(x1, []float32{1, 2, 3, 4}); err == nil {
		t.Error("CPU Upload into a GPU tensor: no error")
	}
}

func TestMemory(t *testing.T) {
	b := newGPU(t, false)
	// Alloc zeroes; views share memory; Upload and Download check sizes.
	x, err := b.Alloc(backend.F32, 3, 5)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range backendtest.Download(t, b, x) {
		if v != 0 {
			t.Fatalf("fresh tensor element %d = %g, want 0", i, v)
		}
	}
	v, err := b.View(x, 5, 2, 5)
	if err != nil {
		t.Fatal(err)
	}
	b.Fill(v, 2)
	got := backendtest.Download(t, b, x)
	for i, g := range got {
		if want := float32(0); (i >= 5 && g != 2) || (i < 5 && g != want) {
			t.Fatalf("after Fill of rows 1..2: element %d = %g", i, g)
		}
	}
	for _, bad := range []struct {
		off, r, c int
	}{{-1, 1, 1}, {0, 4, 5}, {11, 1, 5}, {16, 0, 0}, {0, -1, 1}} {
		if _, err := b.View(x, bad.off, bad.r, bad.c); err == nil {
			t.Errorf("View(%d, %d, %d) of 3×5: no error", bad.off, bad.r, bad.c)
		}
	}
	if err := b.Upload(x, make([]float32, 14)); err == nil {
		t.Error("Upload of 14 values into 3×5: no error")
	}
	if err := b.Upload(x, make([]int32, 15)); err == nil {
		t.Error("Upload of int32 into f32: no error")
	}
	if err := b.Download(make([]float32, 16), x); err == nil {
		t.Error("Download of 3×5 into 16 values: no error")
	}
	if _, err := b.Alloc(backend.F32, -1, 2); err == nil {
		t.Error("Alloc(-1, 2): no error")
	}
	if _, err := b.Alloc(backend.F32, 1<<20, 1<<12); err == nil {
		t.Error("Alloc of 2^32 elements: no error")
	}
	empty, err := b.Alloc(backend.F32, 0, 7)
	if err != nil {
		t.Fatalf("Alloc(0, 7): %v", err)
	}
	b.Fill(empty, 1)
	if err := b.Sync(); err != nil {
		t.Fatalf("Fill of an empty tensor: %v", err)
	}
	used, total := b.Memory()
	if total <= 0 || used <= 0 || used > total || b.Allocated() <= 0 {
		t.Errorf("Memory() = %d, %d; Allocated() = %d", used, total, b.Allocated())
	}
	info := b.DeviceInfo()
	if info.Name == "" || info.SMs <= 0 || info.Major < 8 || info.TotalMemory <= 0 {
		t.Errorf("DeviceInfo() = %+v (Memory total %d)", info, total)
	}
	want := backend.Accelerator{ID: fmt.Sprintf("cuda:%d", info.Ordinal), Name: info.Name, Compute: fmt.Sprintf("%d.%d", info.Major, info.Minor), Memory: info.TotalMemory}
	if d := b.Accelerator(); d != want {
		t.Errorf("Accelerator() = %+v, want %+v", d, want)
	}
	t.Logf("%s", b.Describe())
}

func TestOutOfMemory(t *testing.T) {
	// A limit on the backend.
	b := newGPUWith(t, gpu.Options{Device: deviceOrdinal(t), MemoryLimit: 48 << 20, ChunkBytes: 1 << 20})
	if _, err := b.Alloc(backend.F32, 1000, 1000); err != nil {
		t.Fatalf("4 MB under a 48 MiB limit: %v", err)
	}
	_, err := b.Alloc(backend.F32, 50000, 784)
	if !errors.Is(err, gpu.ErrOutOfMemory) || !strings.Contains(err.Error(), "50000×784") ||
		!strings.Contains(err.Error(), "149.5 MiB") || !strings.Contains(err.Error(), "limit is 48.0 MiB") {
		t.Errorf("over the limit: %v", err)
	} else {
		t.Logf("over the limit: %v", err)
	}
	// The device itself: allocate 8 GiB tensors until it refuses.
	d := newGPU(t, false)
	var n int
	for n = 0; n < 64; n++ {
		if _, err = d.Alloc(backend.F32, 1<<16, 1<<15-1); err != nil {
			break
		}
	}
	if !errors.Is(err, gpu.ErrOutOfMemory) || !strings.Contains(err.Error(), "free of") {
		t.Fatalf("after %d 8 GiB tensors: %v", n, err)
	}
	t.Logf("after %d 8 GiB tensors: %v", n, err)
	if err := d.Sync(); err != nil {
		t.Errorf("the refused allocation broke the backend: %v", err)
	}
}

func TestOpenErrors(t *testing.T) {
	n, err := gpu.Devices()
	if err != nil {
		t.Fatal(err)
	}
	_, err = gpu.New(gpu.Options{Device: n})
	if err == nil || !strings.Contains(err.Error(), "this machine has") {
		t.Errorf("New(device %d of %d): %v", n, n, err)
	}
	_, err = gpu.New(gpu.Options{Device: -1})
	if err == nil {
		t.Error("New(device -1): no error")
	}
	t.Logf("%v", err)
}

func TestClose(t *testing.T) {
	b, err := gpu.New(gpu.Options{Device: deviceOrdinal(t)})
	if err != nil {
		t.Fatal(err)
	}
	x, _ := b.Alloc(backend.F32, 4, 4)
	b.Fill(x, 1)
	if err := b.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := b.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	b.Fill(x, 2)
	if err := b.Sync(); err == nil {
		t.Error("work after Close: no error")
	}
	if _, err := b.Alloc(backend.F32, 1, 1); err == nil {
		t.Error("Alloc after Close: no error")
	}
}
