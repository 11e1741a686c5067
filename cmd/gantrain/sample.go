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
	"github.com/gantrain/gantrain/data"
	"github.com/gantrain/gantrain/imageio"
	"github.com/gantrain/gantrain/trainer"
)

const sampleUsage = `Usage: gantrain sample --checkpoint FILE|RUN_DIR [flags]

Draws samples from the generator of a checkpoint and writes them as a PNG grid or as
a numpy .npy array of shape (n, H, W) for gray images, (n, H, W, C) for colour and
(n, D) for point data, values in the generator's output range ([0, 1] for images).

Flags:
`

// sampleFlags are the sample command's flags.
type sampleFlags struct {
	fs        *flag.FlagSet
	ckpt      string
	n         int
	out       string
	format    string
	seed      uint64
	cols      int
	raw       bool
	batchNorm string
	backend   config.Backend
}

// newSampleFlags defines the sample command's flags, with its usage text on stderr.
func newSampleFlags(stderr io.Writer) *sampleFlags {
	f := &sampleFlags{fs: flag.NewFlagSet("sample", flag.ContinueOnError), backend: config.Default().Backend}
	fs := f.fs
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, sampleUsage); fs.PrintDefaults() }
	fs.StringVar(&f.ckpt, "checkpoint", "", "checkpoint `file`, or a run directory (its newest checkpoint)")
	fs.IntVar(&f.n, "n", 64, "number of samples")
	fs.StringVar(&f.out, "out", "samples.png", "output `file`")
	fs.StringVar(&f.format, "format", "", "png or npy (default: from the --out extension, which must agree with it)")
	fs.Uint64Var(&f.seed, "seed", 1, "noise seed")
	fs.IntVar(&f.cols, "cols", 0, "grid columns (0: square)")
	fs.BoolVar(&f.raw, "raw-generator", false, "sample from G's parameters, not their moving average (checkpoints of runs with g_ema)")
	fs.StringVar(&f.batchNorm, "sample-batchnorm", "", "how G's batchnorm layers normalise the samples: running (the running averages) or batch (each 1,000 samples by their own statistics); default: the run's train.sample_batchnorm")
	bindBackendFlags(fs, &f.backend)
	return f
}

// validate returns the usage error of the first bad flag or combination of flags.
func (f *sampleFlags) validate() error {
	if err := checkBackend(f.backend); err != nil {
		return err
	}
	if f.ckpt == "" {
		return usagef("--checkpoint is required")
	}
	if f.n < 1 || f.n > 1_000_000 {
		return usagef("--n must be in 1..1000000, got %d", f.n)
	}
	if f.format != "" && f.format != "png" && f.format != "npy" {
		return usagef("unknown --format %q (want png or npy)", f.format)
	}
	// The format and the file name must agree: a PNG named .npy (or a file whose
	// name says neither) would be read wrongly by whatever opens it next.
	switch ext := f.outExt(); {
	case f.format == "" && ext != "png" && ext != "npy":
		return usagef("--out %s: cannot tell the format from the name; name it .png or .npy, or give --format", f.out)
	case f.format != "" && ext != f.format:
		return usagef("--format %s but --out %s: name the file .%s (or give the --format its name says)", f.format, f.out, f.format)
	}
	return nil
}

// outExt is the extension of --out in lower case, without the dot. Once validate has
// passed it is the format to write, --format or not.
func (f *sampleFlags) outExt() string {
	return strings.ToLower(strings.TrimPrefix(filepath.Ext(f.out), "."))
}

// sampleCmd runs gantrain sample: it checks the flags, draws the samples from the
// checkpoint and writes them as an .npy array or a PNG grid.
func sampleCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := newSampleFlags(stderr)
	if err := parseFlags(f.fs, args); err != nil {
		return err
	}
	if err := f.validate(); err != nil {
		return err
	}
	path, x, shape, err := f.draw(stderr)
	if err != nil {
		return err
	}
	if f.outExt() == "npy" {
		err = writeSamplesNPY(f.out, x, f.n, shape)
	} else {
		err = writeSamplesPNG(f.out, x, f.n, shape, f.cols)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %d samples from %s to %s\n", f.n, path, f.out)
	return nil
}

// draw reads the checkpoint and draws --n samples from its generator; it returns the
// checkpoint's path, the samples and their image shape (zero for point data).
func (f *sampleFlags) draw(stderr io.Writer) (string, []float32, data.Shape, error) {
	path, ck, err := loadCheckpoint(f.ckpt, stderr)
	if err != nil {
		return "", nil, data.Shape{}, err
	}
	b, err := openBackend(f.backend, nil)
	if err != nil {
		return "", nil, data.Shape{}, err
	}
	defer b.Close()
	x, shape, err := trainer.Sample(b, ck, f.n, f.seed, trainer.SampleOptions{Raw: f.raw, BatchNorm: f.batchNorm})
	if err != nil {
		return "", nil, data.Shape{}, fmt.Errorf("%s: %w", path, err)
	}
	return path, x, shape, nil
}

// writeSamplesNPY writes the n samples x to path as an .npy array of shape (n, H, W)
// for gray images, (n, H, W, C) for colour and (n, D) for point data.
func writeSamplesNPY(path string, x []float32, n int, shape data.Shape) error {
	dims := []int{n, len(x) / n}
	if shape.IsImage() {
		dims = []int{n, shape.H, shape.W}
		if shape.C > 1 {
			dims = append(dims, shape.C)
		}
	}
	fo, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := imageio.WriteNPY(fo, x, dims...); err != nil {
		fo.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return fo.Close()
}

// writeSamplesPNG writes the n images x to path as a PNG grid of cols columns (0:
// square); point data cannot be drawn so, a usage error.
func writeSamplesPNG(path string, x []float32, n int, shape data.Shape, cols int) error {
	if !shape.IsImage() {
		return usagef("the checkpoint's data are not images; use --format npy")
	}
	img, err := imageio.Grid(x, n, shape.H, shape.W, shape.C, cols)
	if err != nil {
		return usageError{err}
	}
	return imageio.WritePNG(path, img)
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
