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
	format := fs.String("format", "", "png or npy (default: from the --out extension, which must agree with it)")
	seed := fs.Uint64("seed", 1, "noise seed")
	cols := fs.Int("cols", 0, "grid columns (0: square)")
	raw := fs.Bool("raw-generator", false, "sample from G's parameters, not their moving average (checkpoints of runs with g_ema)")
	batchNorm := fs.String("sample-batchnorm", "", "how G's batchnorm layers normalise the samples: running (the running averages) or batch (each 1,000 samples by their own statistics); default: the run's train.sample_batchnorm")
	bk := config.Default().Backend
	bindBackendFlags(fs, &bk)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := checkBackend(bk); err != nil {
		return err
	}
	if *ckpt == "" {
		return usagef("--checkpoint is required")
	}
	if *n < 1 || *n > 1_000_000 {
		return usagef("--n must be in 1..1000000, got %d", *n)
	}
	if *format != "" && *format != "png" && *format != "npy" {
		return usagef("unknown --format %q (want png or npy)", *format)
	}
	// The format and the file name must agree: a PNG named .npy (or a file whose
	// name says neither) would be read wrongly by whatever opens it next.
	ext := strings.ToLower(strings.TrimPrefix(filepath.Ext(*out), "."))
	switch {
	case *format == "" && (ext == "png" || ext == "npy"):
		*format = ext
	case *format == "":
		return usagef("--out %s: cannot tell the format from the name; name it .png or .npy, or give --format", *out)
	case ext != *format:
		return usagef("--format %s but --out %s: name the file .%s (or give the --format its name says)", *format, *out, *format)
	}
	path, f, err := loadCheckpoint(*ckpt, stderr)
	if err != nil {
		return err
	}
	b, err := openBackend(bk, nil)
	if err != nil {
		return err
	}
	defer b.Close()
	x, shape, err := trainer.Sample(b, f, *n, *seed, trainer.SampleOptions{Raw: *raw, BatchNorm: *batchNorm})
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

// loadCheckpoint reads the checkpoint at path, or, for a run directory (its checkpoints/
// folder, or the folder itself), its newest good one: like --resume, a checkpoint that
// fails its checks is skipped with a note on stderr, and the next older one read. It
// only reads: nothing is renamed. A missing path is a usage error.
func loadCheckpoint(path string, stderr io.Writer) (string, *checkpoint.File, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", nil, usageError{fmt.Errorf("checkpoint: %w", err)}
	}
	if !fi.IsDir() {
		f, err := checkpoint.ReadFile(path, checkpoint.DecodeOptions{})
		return path, f, err
	}
	var candidates []string
	if list, err := checkpoint.List(path); err == nil {
		for _, c := range list {
			candidates = append(candidates, c.Path)
		}
	} else {
		candidates, _ = filepath.Glob(filepath.Join(path, "*.safetensors"))
		sort.Sort(sort.Reverse(sort.StringSlice(candidates))) // step-%09d names: newest first
	}
	if len(candidates) == 0 {
		return "", nil, usagef("checkpoint: no *.safetensors in %s or %s", path, filepath.Join(path, "checkpoints"))
	}
	var failed []string
	for _, c := range candidates {
		f, err := checkpoint.ReadFile(c, checkpoint.DecodeOptions{})
		if err == nil {
			return c, f, nil
		}
		fmt.Fprintf(stderr, "gantrain: skipping %s: %v\n", c, err)
		failed = append(failed, fmt.Sprintf("  %s: %v", c, err))
	}
	return "", nil, fmt.Errorf("checkpoint: none of the %d checkpoints of %s can be read:\n%s", len(candidates), path, strings.Join(failed, "\n"))
}
