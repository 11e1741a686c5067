package checkpoint_test

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/gantrain/gantrain/checkpoint"
)

// Write a checkpoint into a run directory, list the run's checkpoints and read the
// newest back: the checksum Encode adds is verified on every read.
func Example() {
	runDir, err := os.MkdirTemp("", "run")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(runDir)
	if err := os.Mkdir(filepath.Join(runDir, checkpoint.Dir), 0o755); err != nil {
		fmt.Println(err)
		return
	}
	for _, step := range []int64{100, 200} {
		f := &checkpoint.File{
			Tensors: []checkpoint.Tensor{
				{Name: "generator.layers.0.weight", Shape: []int{2, 3}, F32: []float32{1, 2, 3, 4, 5, 6}},
				{Name: "step", I32: []int32{int32(step)}}, // no shape: a scalar
			},
			Metadata: map[string]string{"note": "example"},
		}
		if err := checkpoint.WriteFile(checkpoint.Path(runDir, step), f); err != nil {
			fmt.Println(err)
			return
		}
	}
	list, err := checkpoint.List(runDir)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, c := range list {
		fmt.Println(c.Step, filepath.Base(c.Path))
	}
	f, err := checkpoint.ReadFile(list[0].Path, checkpoint.DecodeOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	w, _ := f.Tensor("generator.layers.0.weight")
	step, _ := f.Tensor("step")
	fmt.Println(w.DType(), w.Shape, w.F32, step.I32, f.Metadata["note"], len(f.Metadata[checkpoint.ChecksumKey]))
	// Output:
	// 200 step-000000200.safetensors
	// 100 step-000000100.safetensors
	// F32 [2 3] [1 2 3 4 5 6] [200] example 64
}
