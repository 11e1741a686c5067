package trainer

import (
	"encoding/json"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gantrain/gantrain/backend"
	"github.com/gantrain/gantrain/backend/backendtest"
	"github.com/gantrain/gantrain/checkpoint"
	"github.com/gantrain/gantrain/config"
	"github.com/gantrain/gantrain/model"
)

// inferRows runs net's inference forward on rows of v (generate, as sampling does) and
// returns its output.
func inferRows(t *testing.T, b backend.Backend, net *model.Net, rows int, v []float32) []float32 {
	t.Helper()
	in, err := b.Alloc(backend.F32, rows, net.In)
	if err == nil {
		err = b.Upload(in, v)
	}
	var out []float32
	if err == nil {
		out, err = generate(b, net, in, model.Infer)
	}
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestCheckpointInPyTorch loads a checkpoint of --preset best into the PyTorch twins
// of its nets (bench/torch_load_checkpoint.py, bench/gan_nets.py) and compares their
// eval-mode outputs with our inference forward on the same noise and images: D
// flattens a 7×7×128 image into a dense layer, and G reshapes a dense layer's output,
// batchnorm between, into one. It needs a python3 that imports torch and numpy.
func TestCheckpointInPyTorch(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping the PyTorch check in short mode")
	}
	py := ""
	for _, c := range []string{"/usr/bin/python3", "python3"} { // Debian's python3-torch is the system's
		if exec.Command(c, "-c", "import torch, numpy").Run() == nil {
			py = c
			break
		}
	}
	if py == "" {
		t.Skip("skipping: no python3 that imports torch and numpy")
	}
	c := config.Default()
	config.BestDefaults(&c)
	c.Train.Batch = 8
	b := newCPU(t)
	tr, err := New(c, b, randomImages(64), quietLog())
	if err != nil {
		t.Fatal(err)
	}
	losses(t, tr, 3) // parameters and running statistics away from their start
	f, err := tr.Checkpoint()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "best.safetensors")
	if err := checkpoint.WriteFile(path, f); err != nil {
		t.Fatal(err)
	}
	const n = 5
	src := rand.New(rand.NewPCG(7, 7))
	z, x := backendtest.RandSlice(src, n*tr.G.In, -2, 2), backendtest.RandSlice(src, n*tr.D.In, 0, 1)
	raw, err := json.Marshal(map[string][]float32{"z": z, "x": x,
		"g": inferRows(t, b, tr.G, n, z), "d": inferRows(t, b, tr.D, n, x)})
	if err != nil {
		t.Fatal(err)
	}
	cas := filepath.Join(dir, "case.json")
	if err := os.WriteFile(cas, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.CommandContext(t.Context(), py, "../bench/torch_load_checkpoint.py", "--net", "best", path, "--check", cas).CombinedOutput()
	t.Logf("%s", out)
	if err != nil || !strings.Contains(string(out), "OK") {
		t.Fatalf("PyTorch's nets with the checkpoint's tensors: %v", err)
	}
}
