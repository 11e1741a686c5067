package main

import (
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gantrain/gantrain/data"
	"github.com/gantrain/gantrain/imageio"
)

// writeFakeCIFAR10 writes a CIFAR-10 of two records per training batch file
// and two test records into dir, pixel bytes varying by channel.
func writeFakeCIFAR10(t *testing.T, dir string) {
	t.Helper()
	batch := func(seed int) []byte {
		var b []byte
		for rec := range 2 {
			b = append(b, byte((seed+rec)%10))
			for p := range 3 * 1024 {
				b = append(b, byte(seed*7+rec*13+p))
			}
		}
		return b
	}
	for i, name := range append(append([]string(nil), data.CIFAR10TrainFiles...), data.CIFAR10TestFile) {
		if err := os.WriteFile(filepath.Join(dir, name), batch(i), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// fakeCIFAR10Dir makes a temporary directory with writeFakeCIFAR10's files in its
// folder cifar.
func fakeCIFAR10Dir(t *testing.T) (dir, cifar string) {
	t.Helper()
	dir = t.TempDir()
	cifar = filepath.Join(dir, "cifar")
	if err := os.MkdirAll(cifar, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFakeCIFAR10(t, cifar)
	return dir, cifar
}

// smallNets is a config with small nets, so that a run on 32×32×3 data is quick.
const smallNets = `generator:
  - {type: dense, units: 16, activation: relu, init_range: 0.05}
  - {type: dense, activation: sigmoid, init_range: 0.05}
discriminator:
  - {type: dense, units: 8, activation: relu, init_range: 0.05}
  - {type: dense, units: 1, activation: identity, init_range: 0.05}
`

// A short CIFAR-10 run trains on 32×32 RGB images and draws its sample grids in
// colour; sample writes RGB grids and H×W×3 arrays from its checkpoint.
func TestTrainCIFAR10ThenSampleRGB(t *testing.T) {
	dir := t.TempDir()
	cifar := filepath.Join(dir, "cifar")
	os.MkdirAll(filepath.Join(cifar, data.CIFAR10Folder), 0o755)
	writeFakeCIFAR10(t, filepath.Join(cifar, data.CIFAR10Folder))
	cfg := filepath.Join(dir, "nets.yaml")
	if err := os.WriteFile(cfg, []byte(smallNets), 0o644); err != nil {
		t.Fatal(err)
	}
	run := filepath.Join(dir, "run")
	code, _, stderr := runCmd("train", "--dataset", "cifar10", "--data", cifar, "--config", cfg, "--batch", "5",
		"--steps", "3", "--samples", "4", "--sample-every", "2", "--out", run, "--progress", "plain", "--blas", "go", "--listen", "off")
	if code != 0 {
		t.Fatalf("train: exit %d: %s", code, stderr)
	}
	checkRGBGrid(t, filepath.Join(run, "samples", "latest.png"), 2, 2)

	grid := filepath.Join(dir, "s.png")
	if code, _, stderr := runCmd("sample", "--checkpoint", run, "--n", "6", "--cols", "3", "--out", grid); code != 0 {
		t.Fatalf("sample png: exit %d: %s", code, stderr)
	}
	checkRGBGrid(t, grid, 3, 2)
	npy := filepath.Join(dir, "s.npy")
	if code, _, stderr := runCmd("sample", "--checkpoint", run, "--n", "3", "--out", npy); code != 0 {
		t.Fatalf("sample npy: exit %d: %s", code, stderr)
	}
	fh, err := os.Open(npy)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	if _, shape, err := imageio.ReadNPY(fh); err != nil || fmt.Sprint(shape) != "[3 32 32 3]" {
		t.Errorf("samples shape %v (%v), want [3 32 32 3]", shape, err)
	}
}

// checkRGBGrid checks that path is a colour PNG grid of cols×rows 32×32 cells.
func checkRGBGrid(t *testing.T, path string, cols, rows int) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if img.ColorModel() == color.GrayModel {
		t.Errorf("%s is gray", path)
	}
	want := image.Rect(0, 0, cols*32+(cols-1)*imageio.GridGutter, rows*32+(rows-1)*imageio.GridGutter)
	if img.Bounds() != want {
		t.Errorf("%s is %v, want %v", path, img.Bounds(), want)
	}
}

func TestDataUsageErrors(t *testing.T) {
	dir := t.TempDir()
	mixed := filepath.Join(dir, "mixed") // 3 images of different sizes
	os.MkdirAll(mixed, 0o755)
	for i, size := range []image.Point{{4, 4}, {6, 3}, {2, 5}} {
		if err := imageio.WritePNG(filepath.Join(mixed, fmt.Sprintf("%d.png", i)), image.NewRGBA(image.Rectangle{Max: size})); err != nil {
			t.Fatal(err)
		}
	}
	out := func(name string) []string { return []string{"--listen", "off", "--out", filepath.Join(dir, name)} }
	tests := []struct {
		name string
		args []string
		code int
		want []string // in stderr
	}{
		{"cifar10 without a folder", append([]string{"train", "--dataset", "cifar10"}, out("r1")...), 2,
			[]string{"CIFAR-10 cannot be downloaded by gantrain", "--data DIR"}},
		{"cifar10 folder without the files", append([]string{"train", "--dataset", "cifar10", "--data", mixed}, out("r2")...), 1,
			[]string{"data_batch_1.bin", "missing from " + mixed}},
		{"image size on mnist", append([]string{"train", "--image-size", "8"}, out("r3")...), 2,
			[]string{"data.image_size: applies to the images data set only"}},
		{"images of different sizes", append([]string{"train", "--dataset", "images", "--data", mixed}, out("r4")...), 1,
			[]string{"all images must have one size"}},
		// Resized, the three images load: the run stops at the batch size instead.
		{"images resized", append([]string{"train", "--dataset", "images", "--data", mixed, "--image-size", "4", "--batch", "10"}, out("r5")...), 2,
			[]string{"larger than the training set (3 examples"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := runCmd(tc.args...)
			if code != tc.code {
				t.Errorf("exit %d, want %d: %s", code, tc.code, stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr)
				}
			}
		})
	}
}

// The convolutional CIFAR-10 preset trains, checkpoints its batchnorm statistics,
// resumes and samples in colour.
func TestTrainDCGANCIFAR10Resume(t *testing.T) {
	dir, cifar := fakeCIFAR10Dir(t)
	run := filepath.Join(dir, "run")
	code, _, stderr := runCmd("train", "--preset", "dcgan-cifar10", "--data", cifar, "--batch", "4",
		"--steps", "2", "--samples", "4", "--out", run, "--progress", "plain", "--blas", "go", "--listen", "off")
	if code != 0 {
		t.Fatalf("train: exit %d: %s", code, stderr)
	}
	checkRGBGrid(t, filepath.Join(run, "samples", "latest.png"), 2, 2)
	code, _, stderr = runCmd("train", "--resume", run, "--steps", "3", "--progress", "plain", "--blas", "go", "--listen", "off")
	if code != 0 {
		t.Fatalf("resume: exit %d: %s", code, stderr)
	}
	if !strings.Contains(stderr, "from_step=2") {
		t.Errorf("the resumed run did not continue from step 2:\n%s", stderr)
	}
	grid := filepath.Join(dir, "s.png")
	if code, _, stderr := runCmd("sample", "--checkpoint", run, "--n", "4", "--sample-batchnorm", "batch", "--out", grid); code != 0 {
		t.Fatalf("sample: exit %d: %s", code, stderr)
	}
	checkRGBGrid(t, grid, 2, 2)
}

// The paper's convolutional CIFAR-10 preset (maxout convolutions with dropout in D,
// a transposed convolution of stride 3 after two dense layers in G) trains,
// checkpoints and draws its sample grid in colour. (Its checkpoint, G's 65 million
// parameters with their velocities, takes most of the test's time.)
func TestTrainPaperCIFAR10Conv(t *testing.T) {
	dir, cifar := fakeCIFAR10Dir(t)
	run := filepath.Join(dir, "run")
	code, _, stderr := runCmd("train", "--preset", "paper-cifar10-conv", "--data", cifar, "--batch", "4",
		"--steps", "2", "--samples", "4", "--out", run, "--progress", "plain", "--blas", "go", "--listen", "off")
	if code != 0 {
		t.Fatalf("train: exit %d: %s", code, stderr)
	}
	if !strings.Contains(stderr, "msg=checkpoint step=2") {
		t.Errorf("no checkpoint at step 2:\n%s", stderr)
	}
	checkRGBGrid(t, filepath.Join(run, "samples", "latest.png"), 2, 2)
}
