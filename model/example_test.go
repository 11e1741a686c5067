package model_test

import (
	"fmt"

	"github.com/gantrain/gantrain/backend"
	"github.com/gantrain/gantrain/cpu"
	"github.com/gantrain/gantrain/model"
	"github.com/gantrain/gantrain/rng"
)

// A generator for 2-D points: build it on the CPU backend, draw its initial
// parameters, and run it on a minibatch of noise.
func Example() {
	b, err := cpu.New(cpu.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer b.Close()
	specs := []model.LayerSpec{
		{Type: model.Dense, Units: 16, Activation: "relu", InitRange: 0.5},
		{Type: model.Dense, Activation: "tanh", InitRange: 0.5}, // units 0: the data's width
	}
	fmt.Println(model.DescribeLayers(specs))
	g, err := model.Build(b, "generator", specs, model.Flat(4), model.Flat(2), model.OutputHead)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, p := range g.ParamList() {
		fmt.Printf("%s %d×%d\n", p.Name, p.Rows, p.Cols)
	}
	initial, err := g.InitialParams(rng.Stream{Seed: 1}, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	z, _ := b.Alloc(backend.F32, 8, g.In)
	b.Uniform(z, -1, 1, rng.Stream{Seed: 1, Offset: 1})
	pass, err := g.NewPass(b, z, model.PassBuffers{})
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := b.Upload(g.Params, initial); err != nil {
		fmt.Println(err)
		return
	}
	pass.Forward(b, model.Infer, rng.Stream{})
	out := make([]float32, backend.Len(pass.Out))
	if err := b.Download(out, pass.Out); err != nil {
		fmt.Println(err)
		return
	}
	inRange := true
	for _, v := range out {
		inRange = inRange && v > -1 && v < 1
	}
	fmt.Printf("%d parameters; output %d×%d, in (−1, 1): %v\n", g.Size(), pass.Out.Rows(), pass.Out.Cols(), inRange)
	// Output:
	// dense(16 relu)→dense(0 tanh)
	// layers.0.weight 4×16
	// layers.0.bias 1×16
	// layers.1.weight 16×2
	// layers.1.bias 1×2
	// 114 parameters; output 8×2, in (−1, 1): true
}
