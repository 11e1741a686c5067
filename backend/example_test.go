package backend_test

import (
	"errors"
	"fmt"

	"github.com/gantrain/gantrain/backend"
	"github.com/gantrain/gantrain/cpu"
)

// A dense layer, y = relu(x·w + b), on the CPU backend: tensors are handles that
// live in the backend; only Download brings values back.
func Example() {
	b, err := cpu.New(cpu.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer b.Close()
	x, _ := b.Alloc(backend.F32, 2, 3)
	w, _ := b.Alloc(backend.F32, 3, 2)
	bias, _ := b.Alloc(backend.F32, 1, 2)
	y, _ := b.Alloc(backend.F32, 2, 2)
	b.Upload(x, []float32{1, 2, 3, 4, 5, 6})
	b.Upload(w, []float32{1, -1, 0, 1, 1, -1})
	b.Upload(bias, []float32{0.5, 0})
	b.DenseForward(y, x, w, bias, backend.Act{Kind: backend.ReLU})
	out := make([]float32, 4)
	if err := b.Download(out, y); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(out)
	// Output: [4.5 0 10.5 0]
}

// Operations record the first error, as a device stream does, and the backend refuses
// further work: the error names the operation.
func Example_firstError() {
	b, err := cpu.New(cpu.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer b.Close()
	x, _ := b.Alloc(backend.F32, 2, 3)
	w, _ := b.Alloc(backend.F32, 4, 2) // x has 3 columns: w needs 3 rows
	bias, _ := b.Alloc(backend.F32, 1, 2)
	y, _ := b.Alloc(backend.F32, 2, 2)
	b.DenseForward(y, x, w, bias, backend.Act{})
	b.Fill(y, 1) // not run: the backend has failed
	err = b.Sync()
	fmt.Println(errors.Is(err, backend.ErrShape))
	fmt.Println(err)
	// Output:
	// true
	// DenseForward: shape mismatch: y 2×2 f32 = x 2×3 f32 · w 4×2 f32 + b 1×2 f32
}
