//go:build !nocuda

package gpu_test

import (
	"fmt"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/gantrain/gantrain/internal/gpucheck"
)

// The GPU check's thresholds on what the gantrain binary writes on a GPU. The tests
// below read what the check's steps wrote in GANTRAIN_GPU_CHECK_DIR (scripts/gpu-test.sh
// sets it for them): the train step's run in run-train/, the train-conv step's in
// run-train-conv/, the cli step's files (scripts/gpu-cli-check.sh) in cli/. Without it
// they skip.
const (
	// minParzenAfter25Epochs: `--preset published-ema` trained 25 epochs must have learnt; a
	// broken gradient gives a negative log-likelihood.
	minParzenAfter25Epochs = 130
	// minConvScoreAfter1Epoch: `--preset dcgan-mnist` trained 1 epoch must draw several
	// digits. The classifier score is 1 where the classifier gives every sample the same
	// class probabilities (a generator collapsed to one image) and 10 at most; one epoch
	// on the CPU backend (seed 1) scored 7.10, with Parzen 21.9 and Fréchet distance 85.0.
	minConvScoreAfter1Epoch = 4
	// Parzen log-likelihood and standard error on the GPU against the CPU, in nats; σ
	// must be the same.
	parzenTolerance = 0.01
	// Classifier score and Fréchet distance on the GPU against the CPU, relative.
	scoreTolerance = 1e-3
	// Samples of one checkpoint and noise on the GPU against the CPU.
	sampleTolerance = 1e-4
	// One epoch of `gantrain classifier train` on the GPU, test accuracy in percent.
	minClassifierAccuracy = 90
)

// checkFile returns the file NAME of the folder GANTRAIN_GPU_CHECK_DIR, and skips the
// test when that is not set.
func checkFile(t *testing.T, name string) string {
	t.Helper()
	dir := os.Getenv("GANTRAIN_GPU_CHECK_DIR")
	if dir == "" {
		t.Skip("GANTRAIN_GPU_CHECK_DIR is not set: the GPU check sets it (scripts/gpu-test.sh)")
	}
	return filepath.Join(dir, name)
}

func TestTrainedRunLearnt(t *testing.T) {
	rec, err := gpucheck.LastEval(checkFile(t, "run-train/metrics.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	ll, ok := rec.Eval["parzen_ll"]
	t.Logf("epoch %g parzen_ll %g frechet_distance %g", rec.Epoch, ll, rec.Eval["frechet_distance"])
	if !ok || ll < minParzenAfter25Epochs {
		t.Errorf("Parzen log-likelihood %g at epoch %g, want at least %d", ll, rec.Epoch, minParzenAfter25Epochs)
	}
}

func TestConvRunLearnt(t *testing.T) {
	rec, err := gpucheck.LastEval(checkFile(t, "run-train-conv/metrics.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	score, ok := rec.Eval["classifier_score"]
	t.Logf("epoch %g classifier_score %g parzen_ll %g frechet_distance %g", rec.Epoch, score, rec.Eval["parzen_ll"], rec.Eval["frechet_distance"])
	if rec.Epoch < 1 {
		t.Errorf("the last evaluation is of epoch %g, want 1", rec.Epoch)
	}
	if !ok || score < minConvScoreAfter1Epoch {
		t.Errorf("classifier score %g at epoch %g, want at least %d", score, rec.Epoch, minConvScoreAfter1Epoch)
	}
	grid := checkFile(t, fmt.Sprintf("run-train-conv/samples/step-%09d.png", rec.Step))
	f, err := os.Open(grid)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := png.DecodeConfig(f); err != nil {
		t.Errorf("the last sample grid: %s: %v", grid, err)
	}
}

func TestEvalMatchesCPU(t *testing.T) {
	gpu, err := gpucheck.ReadScores(checkFile(t, "cli/eval-cuda.json"))
	if err != nil {
		t.Fatal(err)
	}
	cpu, err := gpucheck.ReadScores(checkFile(t, "cli/eval-cpu.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name          string
		gpu, cpu, abs float64
		rel           float64
	}{
		{"parzen sigma", gpu.Sigma, cpu.Sigma, 0, 0},
		{"parzen ll", gpu.LL, cpu.LL, parzenTolerance, 0},
		{"parzen se", gpu.SE, cpu.SE, parzenTolerance, 0},
		{"classifier score", gpu.ClassifierScore, cpu.ClassifierScore, 0, scoreTolerance},
		{"frechet distance", gpu.FrechetDistance, cpu.FrechetDistance, 0, scoreTolerance},
	} {
		t.Logf("%-17s gpu %.6f  cpu %.6f", c.name, c.gpu, c.cpu)
		if math.Abs(c.gpu-c.cpu) > c.abs+c.rel*math.Abs(c.cpu) {
			t.Errorf("%s: gpu %.6f, cpu %.6f: DIFFERENT", c.name, c.gpu, c.cpu)
		}
	}
	t.Logf("parzen seconds: gpu %.2f, cpu %.2f", gpu.ParzenSeconds, cpu.ParzenSeconds)
}

func TestSamplesMatchCPU(t *testing.T) {
	d, err := gpucheck.LargestDifference(checkFile(t, "cli/sample-cuda.npy"), checkFile(t, "cli/sample-cpu.npy"))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("largest difference %.2e", d)
	if d > sampleTolerance {
		t.Errorf("samples differ by up to %.2e, want at most %g", d, sampleTolerance)
	}
}

func TestClassifierLearns(t *testing.T) {
	acc, err := gpucheck.ClassifierAccuracy(checkFile(t, "cli/classifier.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("test accuracy after 1 epoch: %.2f%%", acc)
	if acc < minClassifierAccuracy {
		t.Errorf("test accuracy %.2f%%, want at least %d%%", acc, minClassifierAccuracy)
	}
}
