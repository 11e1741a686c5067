package main

import (
	"bytes"
	"fmt"
	"image"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gantrain/gantrain/imageio"
)

func runCmd(args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = run(args, &o, &e)
	return code, o.String(), e.String()
}

func TestUsageErrors(t *testing.T) {
	dir := t.TempDir()
	badCfg := filepath.Join(dir, "bad.yaml")
	os.WriteFile(badCfg, []byte("train:\n  batchsize: 10\n"), 0o644)
	badVal := filepath.Join(dir, "badval.yaml")
	os.WriteFile(badVal, []byte("optimizer:\n  kind: rmsprop\ntrain:\n  k: 0\n"), 0o644)
	archive := filepath.Join(dir, "cifar-10-binary.tar.gz") // as downloaded, not unpacked
	os.WriteFile(archive, []byte{0x1f, 0x8b}, 0o644)
	pngs := filepath.Join(dir, "pngs") // a data set of 3 images
	os.MkdirAll(pngs, 0o755)
	for i := 0; i < 3; i++ {
		if err := imageio.WritePNG(filepath.Join(pngs, fmt.Sprintf("%d.png", i)), image.NewGray(image.Rect(0, 0, 4, 4))); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		args []string
		want string // in stderr
	}{
		{nil, "Usage"},
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"train", "--no-such-flag"}, "no-such-flag"},
		{[]string{"train", "--batch", "x"}, "invalid value"},
		{[]string{"train", "--batch", "0"}, "train.batch"},
		{[]string{"train", "--update", "sideways"}, "train.update"},
		{[]string{"train", "--preset", "nope"}, "--preset"},
		{[]string{"train", "--device", "tpu"}, "backend.device"},
		{[]string{"train", "--config", badCfg}, "batchsize"},
		{[]string{"train", "--config", badVal}, "optimizer.kind"},
		{[]string{"train", "--config", filepath.Join(dir, "missing.yaml")}, "missing.yaml"},
		{[]string{"train", "extra"}, "unexpected arguments"},
		{[]string{"sample"}, "--checkpoint is required"},
		{[]string{"sample", "--checkpoint", dir, "--format", "gif"}, "--format"},
		{[]string{"sample", "--checkpoint", dir}, "no *.safetensors"},
		{[]string{"sample", "--checkpoint", dir, "--out", "x.bin"}, "cannot tell the format"},
		{[]string{"sample", "--checkpoint", dir, "--precision", "fp16"}, "backend.precision"},
		{[]string{"train", "--data", filepath.Join(dir, "nowhere"), "--listen", "off", "--out", filepath.Join(dir, "r1")}, "nowhere: no such directory"},
		{[]string{"train", "--data", badCfg, "--listen", "off", "--out", filepath.Join(dir, "r2")}, "is a file"},
		{[]string{"train", "--preset", "dcgan-cifar10", "--data", archive, "--listen", "off", "--out", filepath.Join(dir, "r3")}, "is an archive; unpack it"},
		{[]string{"eval", "--npy", filepath.Join(dir, "x.npy"), "--data", archive}, "is an archive; unpack it"},
		{[]string{"classifier", "train", "--data", filepath.Join(dir, "nowhere"), "--out", filepath.Join(dir, "c.safetensors")}, "nowhere: no such directory"},
		{[]string{"sample", "--checkpoint", dir, "--format", "npy", "--out", "x.png"}, "--format npy but --out x.png"},
		{[]string{"train", "--dataset", "images", "--data", pngs, "--batch", "10", "--listen", "off", "--out", filepath.Join(dir, "big")}, "larger than the training set"},
	} {
		code, _, stderr := runCmd(tc.args...)
		if code != 2 || !strings.Contains(stderr, tc.want) {
			t.Errorf("gantrain %q: exit %d, stderr %q; want exit 2 and %q", tc.args, code, stderr, tc.want)
		}
	}
	// The bad-value config names both wrong fields.
	if _, _, stderr := runCmd("train", "--config", badVal); !strings.Contains(stderr, "train.k") {
		t.Errorf("config errors should all be listed, got %q", stderr)
	}
}

func TestHelpListsEveryFlag(t *testing.T) {
	// Every subcommand lists its flags, the backend flags (one definition) among them.
	backendFlags := []string{"device", "blas", "threads", "precision", "cuda-graphs", "autotune", "autotune-cache"}
	for _, cmd := range []string{"train", "sample", "eval", "classifier"} {
		code, _, stderr := runCmd(cmd, "--help")
		if code != 0 {
			t.Errorf("%s --help: exit %d", cmd, code)
		}
		if !strings.Contains(stderr, "Usage: gantrain "+cmd) {
			t.Errorf("%s --help lacks a usage line: %q", cmd, stderr)
		}
		for _, name := range backendFlags {
			if !strings.Contains(stderr, "  -"+name+" ") && !strings.Contains(stderr, "  -"+name+"\n") {
				t.Errorf("%s --help does not document -%s", cmd, name)
			}
		}
	}
	if _, _, stderr := runCmd("classifier", "--help"); !strings.Contains(stderr, "  -epochs ") {
		t.Errorf("classifier --help does not list its own flags:\n%s", stderr)
	}
	f := newTrainFlags(&bytes.Buffer{})
	var buf bytes.Buffer
	f.fs.SetOutput(&buf)
	f.fs.PrintDefaults()
	for _, name := range []string{"preset", "config", "dataset", "data", "image-size", "out", "seed", "epochs", "steps", "batch", "k",
		"update", "g-loss", "optimizer", "lr", "noise", "log-every", "sample-every", "checkpoint-every", "device", "blas", "threads"} {
		if !strings.Contains(buf.String(), "-"+name+" ") && !strings.Contains(buf.String(), "-"+name+"\n") {
			t.Errorf("train --help does not document -%s", name)
		}
	}
}

// Flags override the config file, which overrides the preset.
func TestConfigPrecedence(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "c.yaml")
	os.WriteFile(cfg, []byte("train:\n  batch: 50\n  k: 3\noptimizer:\n  kind: adam\n"), 0o644)
	f := newTrainFlags(&bytes.Buffer{})
	if err := f.fs.Parse([]string{"--preset", "ring", "--config", cfg, "--k", "2"}); err != nil {
		t.Fatal(err)
	}
	c, err := f.config()
	if err != nil {
		t.Fatal(err)
	}
	if c.Data.Set != "ring" || c.Train.Batch != 50 || c.Train.K != 2 || c.Optimizer.Kind != "adam" {
		t.Errorf("got data %s batch %d k %d optimizer %s; want ring, 50 (file), 2 (flag), adam", c.Data.Set, c.Train.Batch, c.Train.K, c.Optimizer.Kind)
	}
}

// A short ring run writes its run directory, and sample reads its checkpoint.
func TestTrainThenSample(t *testing.T) {
	dir := t.TempDir()
	run := filepath.Join(dir, "run")
	code, _, stderr := runCmd("train", "--preset", "ring", "--steps", "30", "--log-every", "10",
		"--sample-every", "20", "--checkpoint-every", "20", "--out", run, "--progress", "plain", "--blas", "go", "--listen", "off")
	if code != 0 {
		t.Fatalf("train: exit %d: %s", code, stderr)
	}
	for _, p := range []string{"config.yaml", "metrics.jsonl", "samples/latest.png", "samples/step-000000020.png",
		"checkpoints/step-000000020.safetensors", "checkpoints/step-000000030.safetensors"} {
		if _, err := os.Stat(filepath.Join(run, p)); err != nil {
			t.Errorf("run directory lacks %s", p)
		}
	}
	if !strings.Contains(stderr, "d_loss=") || !strings.Contains(stderr, "examples_per_s=") {
		t.Errorf("log lacks the step line: %s", stderr)
	}
	npy := filepath.Join(dir, "s.npy")
	code, stdout, stderr := runCmd("sample", "--checkpoint", run, "--n", "16", "--out", npy)
	if code != 0 {
		t.Fatalf("sample: exit %d: %s", code, stderr)
	}
	if !strings.Contains(stdout, "step-000000030") {
		t.Errorf("sample did not pick the newest checkpoint: %s", stdout)
	}
	fh, err := os.Open(npy)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	x, shape, err := imageio.ReadNPY(fh)
	if err != nil {
		t.Fatal(err)
	}
	if len(shape) != 2 || shape[0] != 16 || shape[1] != 2 || len(x) != 32 {
		t.Errorf("samples shape %v, want [16 2]", shape)
	}
	// Point data cannot be drawn as an image grid.
	if code, _, stderr := runCmd("sample", "--checkpoint", run, "--out", filepath.Join(dir, "s.png")); code != 2 {
		t.Errorf("png of point data: exit %d (%s), want 2", code, stderr)
	}
	// A corrupted checkpoint is refused with an error naming the problem.
	ck := filepath.Join(run, "checkpoints", "step-000000030.safetensors")
	raw, _ := os.ReadFile(ck)
	raw[len(raw)-1] ^= 0xff
	os.WriteFile(ck, raw, 0o644)
	if code, _, stderr := runCmd("sample", "--checkpoint", ck, "--out", npy); code != 1 || !strings.Contains(stderr, "checksum") {
		t.Errorf("corrupt checkpoint: exit %d, %q; want exit 1 and a checksum error", code, stderr)
	}
}
