package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/gantrain/gantrain/checkpoint"
	"github.com/gantrain/gantrain/config"
	"github.com/gantrain/gantrain/imageio"
	"github.com/gantrain/gantrain/trainer"
)

const sampleUsage = `Usage: gantrain sample --checkpoint FILE|RUN_DIR [flags]

Draws samples from the generator of a checkpoint and writes them as a PNG grid or as
a numpy .npy array of shape (n, H, W) for gray images, (n, H, W, C) for colour and
(n, D) for point data, values in the generator's output range ([0, 1] for images).

Flags:
`

func sampleCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("sample", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, sampleUsage); fs.PrintDefaults() }
	ckpt := fs.String("checkpoint", "", "checkpoint `file`, or a run directory (its newest checkpoint)")
	n := fs.Int("n", 64, "number of samples")
	out := fs.String("out", "samples.png", "output `file`")
	format := fs.String("format", "", "png or npy (default: from the --out extension, else png)")
	seed := fs.Uint64("seed", 1, "noise seed")
	cols := fs.Int("cols", 0, "grid columns (0: square)")
	raw := fs.Bool("raw-generator", false, "sample from G's parameters, not their moving average (checkpoints of runs with g_ema)")
	device := fs.String("device", "cpu", "cpu, cuda or cuda:N")
	blas := fs.String("blas", "auto", "CPU matrix multiply: auto, openblas or go")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *ckpt == "" {
		return usagef("--checkpoint is required")
	}
	if *n < 1 || *n > 1_000_000 {
		return usagef("--n must be in 1..1000000, got %d", *n)
	}
	if *format == "" {
		*format = "png"
		if strings.EqualFold(filepath.Ext(*out), ".npy") {
			*format = "npy"
		}
	}
	if *format != "png" && *format != "npy" {
		return usagef("unknown --format %q (want png or npy)", *format)
	}
	path, err := resolveCheckpoint(*ckpt)
	if err != nil {
		return usageError{err}
	}
	f, err := checkpoint.ReadFile(path, checkpoint.DecodeOptions{})
	if err != nil {
		return err
	}
	b, err := openBackend(config.Backend{Device: *device, BLAS: *blas}, nil)
	if err != nil {
		return err
	}
	defer b.Close()
	x, shape, err := trainer.Sample(b, f, *n, *seed, trainer.SampleOptions{Raw: *raw})
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if *format == "npy" {
		dims := []int{*n, len(x) / *n}
		if shape.IsImage() {
			dims = []int{*n, shape.H, shape.W}
			if shape.C > 1 {
				dims = append(dims, shape.C)
			}
		}
		fo, err := os.Create(*out)
		if err != nil {
			return err
		}
		if err := imageio.WriteNPY(fo, x, dims...); err != nil {
			fo.Close()
			return fmt.Errorf("write %s: %w", *out, err)
		}
		if err := fo.Close(); err != nil {
			return err
		}
	} else {
		if !shape.IsImage() {
			return usagef("the checkpoint's data are not images; use --format npy")
		}
		img, err := imageio.Grid(x, *n, shape.H, shape.W, shape.C, *cols)
		if err != nil {
			return usageError{err}
		}
		if err := imageio.WritePNG(*out, img); err != nil {
			return err
		}
	}
	fmt.Fprintf(stdout, "wrote %d samples from %s to %s\n", *n, path, *out)
	return nil
}

// resolveCheckpoint returns path itself for a file, or the newest checkpoint of a
// run directory (its checkpoints/ folder or the folder itself).
func resolveCheckpoint(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("checkpoint: %w", err)
	}
	if !fi.IsDir() {
		return path, nil
	}
	for _, dir := range []string{filepath.Join(path, "checkpoints"), path} {
		matches, _ := filepath.Glob(filepath.Join(dir, "*.safetensors"))
		if len(matches) > 0 {
			sort.Strings(matches) // step-%09d names sort by step
			return matches[len(matches)-1], nil
		}
	}
	return "", fmt.Errorf("checkpoint: no *.safetensors in %s or %s/checkpoints", path, path)
}
