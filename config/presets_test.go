package config

import (
	"testing"

	"github.com/gantrain/gantrain/cpu"
	"github.com/gantrain/gantrain/model"
)

// TestPresetsBuild checks that every preset validates and that its nets build on its
// data's shape.
func TestPresetsBuild(t *testing.T) {
	b, err := cpu.New(cpu.Options{BLAS: "go"})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	shapes := map[string]model.Shape{MNIST: {H: 28, W: 28, C: 1}, CIFAR10: {H: 32, W: 32, C: 3}, Ring: model.Flat(2)}
	for _, name := range PresetNames() {
		t.Run(name, func(t *testing.T) {
			c := Default()
			if err := ApplyPreset(&c, name); err != nil {
				t.Fatal(err)
			}
			if c.Data.Set == CIFAR10 {
				c.Data.Dir = "cifar-10-batches-bin"
			}
			if err := c.Validate(); err != nil {
				t.Fatal(err)
			}
			shape, ok := shapes[c.Data.Set]
			if !ok {
				t.Fatalf("no shape for data set %s", c.Data.Set)
			}
			if _, err := model.Build(b, "generator", c.Generator, model.Flat(c.Noise.Dim), shape, model.OutputHead); err != nil {
				t.Error(err)
			}
			if _, err := model.Build(b, "discriminator", c.Discriminator, shape, model.Shape{}, model.LogitHead); err != nil {
				t.Error(err)
			}
		})
	}
	c := Default()
	if err := ApplyPreset(&c, "nope"); err == nil {
		t.Error("an unknown preset was accepted")
	}
}
