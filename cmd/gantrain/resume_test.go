package main

import (
	"bufio"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/gantrain/gantrain/checkpoint"
)

// ringArgs are the flags of a short, fast training run into dir.
func ringArgs(dir string, extra ...string) []string {
	return append([]string{"train", "--preset", "ring", "--out", dir, "--log-every", "10", "--progress", "plain",
		"--blas", "go", "--listen", "off"}, extra...)
}

// metricsRecords reads metrics.jsonl as step → record (without the wall-clock fields).
func metricsRecords(t *testing.T, dir string) (steps []int64, recs map[int64]map[string]any) {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, "metrics.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs = map[int64]map[string]any{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r map[string]any
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("metrics.jsonl line %q: %v", sc.Text(), err)
		}
		delete(r, "time")
		delete(r, "examples_per_s")
		s := int64(r["step"].(float64))
		steps = append(steps, s)
		recs[s] = r
	}
	return steps, recs
}

// A run stopped at step s and resumed with --resume reaches step 2s with exactly the
// losses and parameters of an uninterrupted run, and its metrics log continues
// without gaps or repeats.
func TestResumeIsExact(t *testing.T) {
	dir := t.TempDir()
	whole, split := filepath.Join(dir, "whole"), filepath.Join(dir, "split")
	if code, _, stderr := runCmd(ringArgs(whole, "--steps", "200")...); code != 0 {
		t.Fatalf("uninterrupted run: exit %d: %s", code, stderr)
	}
	if code, _, stderr := runCmd(ringArgs(split, "--steps", "100")...); code != 0 {
		t.Fatalf("first half: exit %d: %s", code, stderr)
	}
	code, _, stderr := runCmd("train", "--resume", split, "--steps", "200", "--progress", "plain", "--blas", "go", "--listen", "off")
	if code != 0 {
		t.Fatalf("resume: exit %d: %s", code, stderr)
	}
	if !strings.Contains(stderr, "msg=resuming step=100") {
		t.Errorf("resume did not say where it continues from: %s", stderr)
	}
	wantSteps, want := metricsRecords(t, whole)
	gotSteps, got := metricsRecords(t, split)
	if !reflect.DeepEqual(gotSteps, wantSteps) {
		t.Fatalf("resumed metrics steps %v, want %v", gotSteps, wantSteps)
	}
	for _, s := range wantSteps {
		if !reflect.DeepEqual(got[s], want[s]) {
			t.Errorf("step %d: resumed %v, uninterrupted %v", s, got[s], want[s])
		}
	}
	a, err := checkpoint.ReadFile(filepath.Join(whole, "checkpoints", "step-000000200.safetensors"), checkpoint.DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := checkpoint.ReadFile(filepath.Join(split, "checkpoints", "step-000000200.safetensors"), checkpoint.DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a.Tensors, b.Tensors) {
		t.Errorf("parameters or optimiser state at step 200 differ between the resumed and the uninterrupted run")
	}
}

// --resume refuses flags that would change the run, and directories that are not runs.
func TestResumeUsageErrors(t *testing.T) {
	dir := t.TempDir()
	run := filepath.Join(dir, "run")
	if code, _, stderr := runCmd(ringArgs(run, "--steps", "20")...); code != 0 {
		t.Fatalf("train: exit %d: %s", code, stderr)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--resume", run, "--lr", "0.5"}, "--lr cannot be combined with --resume"},
		{[]string{"--resume", run, "--preset", "ring"}, "--preset"},
		{[]string{"--resume", run, "--config", "x.yaml"}, "--config"},
		{[]string{"--resume", filepath.Join(dir, "nope")}, "not a gantrain run directory"},
	} {
		code, _, stderr := runCmd(append([]string{"train", "--listen", "off"}, tc.args...)...)
		if code != 2 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%q: exit %d, %q; want 2 and %q", tc.args, code, stderr, tc.want)
		}
	}
}

// A resumed run may be given a learning-rate anneal: its config.yaml records it, the
// rate of each later step follows it, and the run ends where it ends.
func TestResumeAnneals(t *testing.T) {
	run := filepath.Join(t.TempDir(), "run")
	if code, _, stderr := runCmd(ringArgs(run, "--steps", "100")...); code != 0 {
		t.Fatalf("train: exit %d: %s", code, stderr)
	}
	resume := []string{"train", "--resume", run, "--progress", "plain", "--blas", "go", "--listen", "off",
		"--lr-anneal-from", "0", "--lr-anneal-epochs", "1"}
	if code, _, stderr := runCmd(append(resume, "--steps", "200")...); code != 0 {
		t.Fatalf("resume with an anneal: exit %d: %s", code, stderr)
	}
	cfg, err := os.ReadFile(filepath.Join(run, "config.yaml"))
	if err != nil || !strings.Contains(string(cfg), "lr_anneal_epochs: 1") {
		t.Errorf("config.yaml does not record the anneal (%v):\n%s", err, cfg)
	}
	steps, recs := metricsRecords(t, run)
	if len(steps) != 20 {
		t.Fatalf("metrics steps %v, want 10..200", steps)
	}
	for _, s := range steps {
		lr, epoch := recs[s]["lr"].(float64), recs[s]["epoch"].(float64)
		want := 0.002
		if s > 100 {
			want *= 1 - epoch
		}
		if math.Abs(lr-want) > 1e-9 {
			t.Errorf("step %d (epoch %v): lr %v, want %v", s, epoch, lr, want)
		}
	}
	// Resumed again (the anneal now from config.yaml) for longer than the anneal: it
	// ends with it, at the end of the first epoch (781 minibatches of 64 of 50,000).
	code, _, stderr := runCmd("train", "--resume", run, "--steps", "5000", "--epochs", "3", "--progress", "plain", "--blas", "go", "--listen", "off")
	if code != 0 || !strings.Contains(stderr, "run_ends_at_epoch=1") || !strings.Contains(stderr, "msg=done step=781 epoch=1") {
		t.Errorf("run past the anneal: exit %d, want it done at step 781, epoch 1: %s", code, stderr)
	}
}

// A damaged newest checkpoint is set aside with a warning naming it, and the run
// resumes from the newest good one; with none good, the error lists each refusal.
func TestResumeFallsBack(t *testing.T) {
	dir := t.TempDir()
	run := filepath.Join(dir, "run")
	if code, _, stderr := runCmd(ringArgs(run, "--steps", "40", "--checkpoint-every", "20")...); code != 0 {
		t.Fatalf("train: exit %d: %s", code, stderr)
	}
	newest := filepath.Join(run, "checkpoints", "step-000000040.safetensors")
	raw, err := os.ReadFile(newest)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(newest, raw[:len(raw)/2], 0o644) // truncated, as by a full disk
	code, _, stderr := runCmd("train", "--resume", run, "--steps", "50", "--progress", "plain", "--blas", "go", "--listen", "off")
	if code != 0 {
		t.Fatalf("resume: exit %d: %s", code, stderr)
	}
	if !strings.Contains(stderr, "checkpoint refused") || !strings.Contains(stderr, "step-000000040.safetensors") ||
		!strings.Contains(stderr, "msg=resuming step=20") {
		t.Errorf("fallback not reported: %s", stderr)
	}
	if _, err := os.Stat(newest + ".refused"); err != nil {
		t.Errorf("the refused checkpoint was not set aside: %v", err)
	}
	if _, err := os.Stat(filepath.Join(run, "checkpoints", "step-000000050.safetensors")); err != nil {
		t.Errorf("the resumed run wrote no final checkpoint: %v", err)
	}
	// Every checkpoint damaged: a clear error naming each.
	ents, _ := filepath.Glob(filepath.Join(run, "checkpoints", "step-*.safetensors"))
	for _, p := range ents {
		os.WriteFile(p, []byte("not a checkpoint"), 0o644)
	}
	code, _, stderr = runCmd("train", "--resume", run, "--steps", "60", "--blas", "go", "--listen", "off")
	if code != 1 || !strings.Contains(stderr, "none of the") || !strings.Contains(stderr, "step-000000050.safetensors") {
		t.Errorf("no good checkpoint: exit %d, %s", code, stderr)
	}
}

// --auto-resume starts a fresh run, resumes it when started again (as a restarted
// container does), and refuses to continue it under a different configuration.
func TestAutoResume(t *testing.T) {
	run := filepath.Join(t.TempDir(), "run")
	code, _, stderr := runCmd(ringArgs(run, "--steps", "20", "--auto-resume")...)
	if code != 0 || strings.Contains(stderr, "resuming") {
		t.Fatalf("fresh run: exit %d: %s", code, stderr)
	}
	code, _, stderr = runCmd(ringArgs(run, "--steps", "40", "--auto-resume")...)
	if code != 0 || !strings.Contains(stderr, "msg=resuming step=20") {
		t.Fatalf("restart: exit %d: %s", code, stderr)
	}
	code, _, stderr = runCmd(ringArgs(run, "--steps", "60", "--auto-resume", "--lr", "0.5")...)
	if code != 2 || !strings.Contains(stderr, "another configuration") || !strings.Contains(stderr, "optimizer.lr: run 0.002, now 0.5") {
		t.Errorf("changed lr: exit %d: %s", code, stderr)
	}
	// An anneal given on a restart applies; a restart without one keeps the run's.
	code, _, stderr = runCmd(ringArgs(run, "--steps", "60", "--auto-resume", "--lr-anneal-from", "0", "--lr-anneal-epochs", "5")...)
	if code != 0 || !strings.Contains(stderr, "to_zero_at_epoch=5") {
		t.Fatalf("restart with an anneal: exit %d: %s", code, stderr)
	}
	code, _, stderr = runCmd(ringArgs(run, "--steps", "80", "--auto-resume")...)
	if code != 0 || !strings.Contains(stderr, "msg=resuming step=60") || !strings.Contains(stderr, "to_zero_at_epoch=5") {
		t.Errorf("restart without an anneal: exit %d, want the run's anneal kept: %s", code, stderr)
	}
}
