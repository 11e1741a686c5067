package eval

import (
	"bytes"
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gantrain/gantrain/checkpoint"
	"github.com/gantrain/gantrain/data"
	"github.com/gantrain/gantrain/model"
)

// blobs is a synthetic labelled set: n points of d features in [0, 1], class k a
// blob around a corner of its own.
func blobs(r *rand.Rand, name string, n, d, classes int) *data.Set {
	s := &data.Set{Name: name, N: n, Dim: d, X: make([]float32, n*d), Labels: make([]uint8, n)}
	for i := range n {
		k := i % classes
		s.Labels[i] = uint8(k)
		for j := range d {
			v := 0.2 + 0.1*r.NormFloat64()
			if j%classes == k {
				v += 0.6
			}
			s.X[i*d+j] = float32(min(max(v, 0), 1))
		}
	}
	return s
}

func tinyArch() ClassifierArch {
	return ClassifierArch{
		In: 8, Classes: 3,
		Features: []model.LayerSpec{{Type: model.Dense, Units: 16, Activation: "relu", InitRange: 0.5}},
		Head:     []model.LayerSpec{{Type: model.Dropout, Keep: 0.9}, {Type: model.Dense, Units: 3, Activation: "identity", InitRange: 0.5}},
	}
}

func tinySplits() *data.Splits {
	r := rand.New(rand.NewPCG(9, 9))
	return &data.Splits{Train: blobs(r, "train", 600, 8, 3), Valid: blobs(r, "valid", 150, 8, 3), Test: blobs(r, "test", 150, 8, 3)}
}

func trainTiny(t *testing.T) *Classifier {
	t.Helper()
	var epochs []EpochReport
	c, rep, err := TrainClassifier(context.Background(), newCPU(t), tinySplits(), TrainOptions{
		Arch: tinyArch(), Seed: 3, Epochs: 4, Batch: 20, LR: 1e-2,
		Progress: func(e EpochReport) { epochs = append(epochs, e) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(epochs) != 4 || rep.Epochs != 4 || rep.TestAccuracy < 0.95 || !(rep.FinalLoss < epochs[0].Loss) {
		t.Fatalf("tiny classifier: %+v after epochs %+v", rep, epochs)
	}
	return c
}

// Training learns separable blobs, and the weights file loads back to the same
// predictions.
func TestTrainSaveLoadClassifier(t *testing.T) {
	c := trainTiny(t)
	s := tinySplits().Test
	probs, feats, err := c.Infer(context.Background(), s.X, s.N)
	if err != nil {
		t.Fatal(err)
	}
	if len(feats) != s.N*16 {
		t.Fatalf("features: %d values", len(feats))
	}
	f, err := c.File(map[string]string{MetaClassifierSeed: "3"})
	if err != nil {
		t.Fatal(err)
	}
	if w, ok := f.Tensor("features.layers.0.weight"); !ok || w.Shape[0] != 16 || w.Shape[1] != 8 {
		t.Fatalf("weight not in PyTorch's [out, in] layout: %v", w)
	}
	var buf bytes.Buffer
	if err := checkpoint.Encode(&buf, f); err != nil {
		t.Fatal(err)
	}
	g, err := checkpoint.DecodeBytes(buf.Bytes(), checkpoint.DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c2, err := LoadClassifier(newCPU(t), g)
	if err != nil {
		t.Fatal(err)
	}
	if c2.Meta[MetaClassifierSeed] != "3" || c2.Arch.String() != c.Arch.String() {
		t.Errorf("loaded meta %v, arch %s", c2.Meta, c2.Arch)
	}
	probs2, feats2, err := c2.Infer(context.Background(), s.X, s.N)
	if err != nil {
		t.Fatal(err)
	}
	for i := range probs {
		if probs[i] != probs2[i] {
			t.Fatalf("probability %d: %g, reloaded %g", i, probs[i], probs2[i])
		}
	}
	for i := range feats {
		if feats[i] != feats2[i] {
			t.Fatalf("feature %d: %g, reloaded %g", i, feats[i], feats2[i])
		}
	}
	// A file of another architecture, or without one, is refused by name.
	bad := *g
	bad.Tensors = g.Tensors[1:]
	if _, err := LoadClassifier(newCPU(t), &bad); err == nil || !strings.Contains(err.Error(), "features.layers.0.weight") {
		t.Errorf("missing tensor: %v", err)
	}
	if _, err := LoadClassifier(newCPU(t), &checkpoint.File{Metadata: map[string]string{}}); err == nil || !strings.Contains(err.Error(), MetaClassifierArch) {
		t.Errorf("no architecture: %v", err)
	}
}

func TestTrainClassifierErrors(t *testing.T) {
	b := newCPU(t)
	sp := tinySplits()
	if _, _, err := TrainClassifier(context.Background(), b, sp, TrainOptions{Arch: tinyArch(), Epochs: 1, Batch: 601}); err == nil || !strings.Contains(err.Error(), "batch 601") {
		t.Errorf("batch larger than the set: %v", err)
	}
	arch := tinyArch()
	arch.In = 9
	if _, _, err := TrainClassifier(context.Background(), b, sp, TrainOptions{Arch: arch, Epochs: 1}); err == nil || !strings.Contains(err.Error(), "want 9 features") {
		t.Errorf("width mismatch: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := TrainClassifier(ctx, b, sp, TrainOptions{Arch: tinyArch(), Epochs: 1}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}

// The committed classifier loads from the embedded file, says how it was made, and
// (when MNIST is at hand) has the test accuracy it claims, at least 98%.
func TestEmbeddedClassifier(t *testing.T) {
	b := newCPU(t)
	c, err := LoadDefaultClassifier(b)
	if err != nil {
		t.Fatal(err)
	}
	if c.Arch.String() != MNISTClassifierArch().String() || c.NumFeatures() != 256 {
		t.Errorf("embedded architecture %s", c.Arch)
	}
	for _, k := range []string{MetaClassifierCmd, MetaClassifierSeed, MetaClassifierEps, MetaClassifierAcc} {
		if c.Meta[k] == "" {
			t.Errorf("embedded classifier lacks metadata %s", k)
		}
	}
	claimed, err := strconv.ParseFloat(c.Meta[MetaClassifierAcc], 64)
	if err != nil || claimed < 0.98 {
		t.Errorf("claimed test accuracy %q", c.Meta[MetaClassifierAcc])
	}
	splits := findMNIST(t)
	acc, err := c.SetAccuracy(context.Background(), splits.Test)
	if err != nil {
		t.Fatal(err)
	}
	if acc < 0.98 || math.Abs(acc-claimed) > 0.0006 {
		t.Errorf("test accuracy %.4f, claimed %.4f (≥ 0.98)", acc, claimed)
	}
}

var mnist struct {
	once   sync.Once
	splits *data.Splits
	err    error
}

// findMNIST loads MNIST from the module cache (once per test binary), or skips the test.
func findMNIST(t *testing.T) *data.Splits {
	t.Helper()
	mnist.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		dir, err := data.FindMNIST(ctx)
		if err != nil {
			mnist.err = err
			return
		}
		mnist.splits, mnist.err = data.LoadMNIST(dir)
	})
	if mnist.err != nil {
		t.Skipf("MNIST not available: %v", mnist.err)
	}
	return mnist.splits
}
