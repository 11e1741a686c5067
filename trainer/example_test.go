package trainer_test

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"os"

	"github.com/gantrain/gantrain/config"
	"github.com/gantrain/gantrain/cpu"
	"github.com/gantrain/gantrain/data"
	"github.com/gantrain/gantrain/trainer"
)

// ringConfig is the 8-Gaussian ring preset, shortened, writing to dir.
func ringConfig(dir string) config.Config {
	c := config.Default()
	config.RingDefaults(&c)
	c.Data.RingPoints = 2000
	c.Train.Steps = 100
	c.Output.Dir = dir
	c.Output.LogEvery, c.Output.SampleEvery, c.Output.CheckpointEvery = 50, 100, 100
	return c
}

func ringData(c config.Config) *data.Set {
	d := c.Data
	return data.Ring(d.RingPoints, d.RingModes, d.RingRadius, d.RingStd, c.Train.Seed)
}

// Algorithm 1 step by step on the CPU backend: each Step is k discriminator updates
// and one generator update; with observe set it reads the losses back.
func Example() {
	c := ringConfig("runs/ring") // Step writes nothing there
	b, err := cpu.New(cpu.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer b.Close()
	t, err := trainer.New(c, b, ringData(c), slog.New(slog.DiscardHandler))
	if err != nil {
		fmt.Println(err)
		return
	}
	for !t.Done() {
		st, err := t.Step(true)
		if err != nil {
			fmt.Println(err)
			return
		}
		if st.Step%50 == 0 {
			finite := !math.IsNaN(st.DLoss+st.GLoss) && !math.IsInf(st.DLoss+st.GLoss, 0)
			fmt.Printf("step %d, epoch %.2f, losses finite: %v\n", st.Step, st.Epoch, finite)
		}
	}
	// Output:
	// step 50, epoch 1.61, losses finite: true
	// step 100, epoch 3.22, losses finite: true
}

// Run drives the steps and writes the run directory: the effective config, the
// metrics log, sample grids (here scatter plots of the 2-D samples) and checkpoints.
func ExampleTrainer_Run() {
	dir, err := os.MkdirTemp("", "ring")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	c := ringConfig(dir)
	b, err := cpu.New(cpu.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer b.Close()
	t, err := trainer.New(c, b, ringData(c), slog.New(slog.DiscardHandler))
	if err != nil {
		fmt.Println(err)
		return
	}
	var marks []float32
	for _, m := range data.RingModes(c.Data.RingModes, c.Data.RingRadius) {
		marks = append(marks, float32(m[0]), float32(m[1]))
	}
	err = t.Run(context.Background(), trainer.RunOptions{Dir: dir, Marks: marks})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(trainer.InspectRun(dir))
	// Output:
	// config.yaml, 1 checkpoint(s), the newest of step 100, metrics.jsonl, 3 sample grid(s)
}
