package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gantrain/gantrain/data"
	"github.com/gantrain/gantrain/imageio"
)

func TestEvalUsageErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"eval"}, "--checkpoint (or --npy, or --real) is required"},
		{[]string{"eval", "--npy", "x.npy", "--real", "train"}, "exclude each other"},
		{[]string{"eval", "--npy", filepath.Join(dir, "missing.npy")}, "missing.npy"},
		{[]string{"eval", "--checkpoint", dir, "--real", "train"}, "exclude each other"},
		{[]string{"eval", "--real", "train", "--raw-generator"}, "--raw-generator"},
		{[]string{"eval", "--real", "test"}, "unknown --real split"},
		{[]string{"eval", "--real", "train", "--samples", "1"}, "--samples must be in 2..60000"},
		{[]string{"eval", "--real", "train", "--samples", "50001"}, "fewer than --samples 50001"},
		{[]string{"eval", "--real", "valid", "--samples", "10001"}, "fewer than --samples 10001"},
		{[]string{"eval", "--real", "train", "--test-points", "1"}, "--test-points"},
		{[]string{"eval", "--real", "train", "--valid-points", "0"}, "--valid-points"},
		{[]string{"eval", "--checkpoint", dir}, "no *.safetensors"},
		{[]string{"eval", "--real", "train", "--device", "tpu"}, "tpu"},
		{[]string{"eval", "--bogus"}, "bogus"},
		{[]string{"eval", "extra"}, "unexpected arguments"},
		{[]string{"classifier"}, "classifier train"},
		{[]string{"classifier", "train"}, "--out is required"},
		{[]string{"classifier", "train", "--out", "x", "--epochs", "0"}, "--epochs"},
	} {
		code, _, stderr := runCmd(tc.args...)
		if code != 2 || !strings.Contains(stderr, tc.want) {
			t.Errorf("gantrain %q: exit %d, stderr %q; want exit 2 and %q", tc.args, code, stderr, tc.want)
		}
	}
	for _, cmd := range [][]string{{"eval", "--help"}, {"classifier", "train", "--help"}} {
		code, _, stderr := runCmd(cmd...)
		if code != 0 || !strings.Contains(stderr, "Usage: gantrain "+cmd[0]) {
			t.Errorf("%q: exit %d, %q", cmd, code, stderr)
		}
	}
}

// A ring checkpoint is not an MNIST generator: a usage error that says so.
func TestEvalRefusesRing(t *testing.T) {
	run := filepath.Join(t.TempDir(), "run")
	if code, _, stderr := runCmd("train", "--preset", "ring", "--steps", "3", "--log-every", "0", "--out", run, "--progress", "plain", "--listen", "off"); code != 0 {
		t.Fatalf("train: exit %d: %s", code, stderr)
	}
	code, _, stderr := runCmd("eval", "--checkpoint", run)
	if code != 2 || !strings.Contains(stderr, "trained on the ring data set") {
		t.Errorf("eval of a ring checkpoint: exit %d, %q", code, stderr)
	}
}

// A one-step MNIST run, evaluated on few points: every number comes out, as a table
// and as JSON.
func TestEvalMNISTCheckpoint(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := data.FindMNIST(ctx); err != nil {
		t.Skipf("MNIST not available: %v", err)
	}
	run := filepath.Join(t.TempDir(), "run")
	if code, _, stderr := runCmd("train", "--steps", "1", "--batch", "10", "--log-every", "0", "--sample-every", "0",
		"--checkpoint-every", "0", "--out", run, "--progress", "plain", "--listen", "off"); code != 0 {
		t.Fatalf("train: exit %d: %s", code, stderr)
	}
	quick := []string{"eval", "--checkpoint", run, "--samples", "300", "--valid-points", "50", "--test-points", "400"}
	code, stdout, stderr := runCmd(append(quick, "--json")...)
	if code != 0 {
		t.Fatalf("eval: exit %d: %s", code, stderr)
	}
	var rep evalReport
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("eval --json: %v\n%s", err, stdout)
	}
	p, c := rep.Result.Parzen, rep.Result.Classifier
	if rep.SamplesFrom != "generator" || rep.Step != "1" || p == nil || c == nil || rep.RealTest == nil {
		t.Fatalf("report %s", stdout)
	}
	if p.Samples != 300 || p.Valid != 50 || p.Test != 400 || len(p.ValidLL) != 10 || !(p.SE > 0) {
		t.Errorf("Parzen %+v", *p)
	}
	// After one step G draws near the mean digit: a poor model on both scores.
	if !(c.Score >= 1 && c.Score < rep.RealTest.ClassifierScore) || !(c.FrechetDistance > 0) || rep.RealTest.Accuracy < 0.98 {
		t.Errorf("classifier %+v, real test %+v", *c, *rep.RealTest)
	}
	// The same samples saved by `gantrain sample` and evaluated with --npy score the same.
	npy := filepath.Join(t.TempDir(), "s.npy")
	if code, _, stderr := runCmd("sample", "--checkpoint", run, "--n", "300", "--out", npy); code != 0 {
		t.Fatalf("sample: exit %d: %s", code, stderr)
	}
	code, stdout, stderr = runCmd("eval", "--npy", npy, "--valid-points", "50", "--test-points", "400", "--json")
	var fromNPY evalReport
	if code != 0 || json.Unmarshal([]byte(stdout), &fromNPY) != nil {
		t.Fatalf("eval --npy: exit %d: %s%s", code, stdout, stderr)
	}
	if q := fromNPY.Result.Parzen; q == nil || q.LL != p.LL || q.Sigma != p.Sigma || fromNPY.Result.Classifier.FrechetDistance != c.FrechetDistance {
		t.Errorf("--npy of the same samples: %+v, want Parzen %v σ %v", fromNPY.Result, p.LL, p.Sigma)
	}
	bad := filepath.Join(t.TempDir(), "bad.npy")
	fh, _ := os.Create(bad)
	imageio.WriteNPY(fh, []float32{0, 0.5, 2, 0}, 2, 2)
	fh.Close()
	if code, _, stderr := runCmd("eval", "--npy", bad); code != 2 || !strings.Contains(stderr, "want (n, 784)") {
		t.Errorf("2×2 npy: exit %d, %s", code, stderr)
	}
	code, stdout, stderr = runCmd(append(quick, "--parzen")...)
	if code != 0 || !strings.Contains(stdout, "log-likelihood") || strings.Contains(stdout, "Fréchet") {
		t.Errorf("eval --parzen: exit %d, %s%s", code, stdout, stderr)
	}
}
