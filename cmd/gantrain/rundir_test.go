package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/gantrain/gantrain/internal/rundir"
)

// snapshot reads every file of a run directory (but its lock file).
func snapshot(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && d.Name() != rundir.LockName {
			raw, rerr := os.ReadFile(p)
			if rerr != nil {
				t.Fatal(rerr)
			}
			rel, _ := filepath.Rel(dir, p)
			files[rel] = raw
		}
		return nil
	})
	return files
}

func sameFiles(a, b map[string][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !bytes.Equal(v, b[k]) {
			return false
		}
	}
	return true
}

// A new run into a directory that holds one is refused (exit 2) and changes nothing;
// --overwrite moves the old run aside, whole, and starts the new one.
func TestTrainRefusesAnOldRun(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	if code, _, stderr := runCmd(ringArgs(dir, "--steps", "40", "--checkpoint-every", "20")...); code != 0 {
		t.Fatalf("first run: exit %d: %s", code, stderr)
	}
	before := snapshot(t, dir)
	code, _, stderr := runCmd(ringArgs(dir, "--steps", "20", "--seed", "7")...)
	if code != 2 || !strings.Contains(stderr, "already holds a run") || !strings.Contains(stderr, "--resume "+dir) ||
		!strings.Contains(stderr, "--overwrite") || !strings.Contains(stderr, "the newest of step 40") {
		t.Fatalf("second run into the same directory: exit %d, stderr:\n%s", code, stderr)
	}
	if !sameFiles(before, snapshot(t, dir)) {
		t.Fatal("the refused run changed the run directory")
	}
	code, _, stderr = runCmd(ringArgs(dir, "--steps", "20", "--seed", "7", "--overwrite")...)
	if code != 0 || !strings.Contains(stderr, "moved aside") {
		t.Fatalf("--overwrite: exit %d: %s", code, stderr)
	}
	asides, _ := filepath.Glob(dir + ".replaced-*")
	if len(asides) != 1 || !sameFiles(before, snapshot(t, asides[0])) {
		t.Fatalf("the old run is not whole beside the new one: %v", asides)
	}
	if steps, _ := metricsRecords(t, dir); len(steps) != 2 || steps[1] != 20 {
		t.Fatalf("the new run's metrics: steps %v", steps)
	}
	// --overwrite with --resume is a contradiction.
	if code, _, stderr := runCmd(append(ringArgs(dir, "--overwrite"), "--auto-resume")...); code != 2 || !strings.Contains(stderr, "--overwrite") {
		t.Fatalf("--overwrite --auto-resume: exit %d: %s", code, stderr)
	}
}

// A run directory takes one trainer: another process holding it is named, and every
// way of training there is refused at once.
func TestTrainRefusesAHeldRunDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	if code, _, stderr := runCmd(ringArgs(dir, "--steps", "20")...); code != 0 {
		t.Fatalf("first run: exit %d: %s", code, stderr)
	}
	l, err := rundir.Acquire(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	pid := "pid " + strconv.Itoa(os.Getpid())
	for _, args := range [][]string{
		ringArgs(dir, "--steps", "40", "--overwrite"),
		ringArgs(dir, "--steps", "40", "--auto-resume"),
		{"train", "--resume", dir, "--steps", "40", "--blas", "go", "--listen", "off"},
	} {
		code, _, stderr := runCmd(args...)
		if code != 2 || !strings.Contains(stderr, pid) {
			t.Errorf("%v while the directory is held: exit %d, stderr:\n%s", args, code, stderr)
		}
	}
	l.Release()
	if code, _, stderr := runCmd("train", "--resume", dir, "--steps", "40", "--blas", "go", "--listen", "off", "--progress", "plain"); code != 0 {
		t.Fatalf("resume after release: exit %d: %s", code, stderr)
	}
}

// --auto-resume of a run that stopped before its first checkpoint starts it over when
// the configuration is the same, and refuses another configuration.
func TestAutoResumeWithoutCheckpoints(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	os.MkdirAll(filepath.Join(dir, "checkpoints"), 0o755)
	// What a run killed before its first checkpoint leaves.
	if code, _, stderr := runCmd(ringArgs(dir, "--steps", "20")...); code != 0 {
		t.Fatalf("run: exit %d: %s", code, stderr)
	}
	list, _ := filepath.Glob(filepath.Join(dir, "checkpoints", "*.safetensors"))
	for _, p := range list {
		os.Remove(p)
	}
	if code, _, stderr := runCmd(ringArgs(dir, "--steps", "20", "--seed", "9", "--auto-resume")...); code != 2 || !strings.Contains(stderr, "another configuration") {
		t.Fatalf("--auto-resume with another seed: exit %d: %s", code, stderr)
	}
	if code, _, stderr := runCmd(ringArgs(dir, "--steps", "20", "--auto-resume")...); code != 0 || !strings.Contains(stderr, "starting it over") {
		t.Fatalf("--auto-resume with the same configuration: exit %d: %s", code, stderr)
	}
}

// sample (and eval, through the same loader) on a run directory skip a damaged newest
// checkpoint for the newest good one, as --resume does, and rename nothing.
func TestSampleFallsBackToAGoodCheckpoint(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	if code, _, stderr := runCmd(ringArgs(dir, "--steps", "40", "--checkpoint-every", "20")...); code != 0 {
		t.Fatalf("run: exit %d: %s", code, stderr)
	}
	newest := filepath.Join(dir, "checkpoints", "step-000000040.safetensors")
	raw, err := os.ReadFile(newest)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(newest, raw[:len(raw)-100], 0o644)
	out := filepath.Join(t.TempDir(), "s.npy")
	code, stdout, stderr := runCmd("sample", "--checkpoint", dir, "--n", "8", "--out", out, "--blas", "go")
	if code != 0 || !strings.Contains(stderr, "skipping "+newest) || !strings.Contains(stdout, "step-000000020.safetensors") {
		t.Fatalf("sample from a run whose newest checkpoint is damaged: exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	if _, err := os.Stat(newest); err != nil {
		t.Fatalf("sample renamed or removed the damaged checkpoint: %v", err)
	}
	// A damaged file named directly is an error, not a fallback.
	if code, _, stderr := runCmd("sample", "--checkpoint", newest, "--n", "8", "--out", out, "--blas", "go"); code == 0 {
		t.Fatalf("sample from the damaged file itself succeeded: %s", stderr)
	}
}
