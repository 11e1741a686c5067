package trainer

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/gantrain/gantrain/checkpoint"
	"github.com/gantrain/gantrain/output"
)

// recorder is an Observer that keeps what the tests look at.
type recorder struct {
	nopObserver
	mu          sync.Mutex
	checkpoints []CheckpointReport
	failures    []OutputFailure
}

func (r *recorder) CheckpointWritten(c CheckpointReport) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.checkpoints = append(r.checkpoints, c)
}

func (r *recorder) OutputFailed(f OutputFailure) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failures = append(r.failures, f)
}

// fullDisk is metrics.jsonl on a disk that fills up for a while: writes number from..to
// (counted from 1) store half of their bytes and fail with ENOSPC.
type fullDisk struct {
	*os.File
	writes, from, to int
}

func (d *fullDisk) Write(p []byte) (int, error) {
	d.writes++
	if d.writes >= d.from && d.writes <= d.to {
		n, _ := d.File.Write(p[:len(p)/2])
		return n, &os.PathError{Op: "write", Path: d.Name(), Err: syscall.ENOSPC}
	}
	return d.File.Write(p)
}

// A full disk while metrics.jsonl is written neither ends the run nor leaves a partial
// line: each failure is logged and reported, the records wait and are written when
// there is room again, and the run ends with its checkpoint. A failed sample grid is
// reported the same way.
func TestRunOutlivesAFullDisk(t *testing.T) {
	c := smallConfig()
	c.Train.Steps, c.Output.LogEvery, c.Output.CheckpointEvery, c.Output.SampleEvery = 30, 1, 20, 10
	dir := t.TempDir()
	tr, err := New(c, newCPU(t), randomImages(200), quietLog())
	if err != nil {
		t.Fatal(err)
	}
	tr.openOutput = func(path string) (output.AppendFile, int64, error) {
		f, size, err := output.OpenAppend(path)
		if err != nil {
			return nil, 0, err
		}
		return &fullDisk{File: f.(*os.File), from: 10, to: 19}, size, nil
	}
	// samples/latest.png is a directory: every grid fails to be written.
	os.MkdirAll(filepath.Join(dir, "samples", "latest.png", "x"), 0o755)
	rec := &recorder{}
	if err := tr.Run(context.Background(), RunOptions{Dir: dir, Shape: tr.shape, Observer: rec}); err != nil {
		t.Fatalf("the run ended with %v", err)
	}
	metrics, samples := 0, 0
	for _, f := range rec.failures {
		switch f.File {
		case "metrics":
			metrics++
		case "samples":
			samples++
		}
	}
	// Grids at the start and at steps 10, 20 and 30, and the run's final one (step
	// 30's failed, so it is tried again).
	if metrics != 10 || samples != 5 {
		t.Fatalf("failures reported: %d of metrics.jsonl, %d of sample grids; want 10 and 5", metrics, samples)
	}
	steps := metricsSteps(t, dir) // fails on a line that is not whole JSON
	for i, s := range steps {
		if s != int64(i+1) {
			t.Fatalf("metrics.jsonl steps %v: want 1..30, each once, in order", steps)
		}
	}
	if len(steps) != 30 {
		t.Fatalf("metrics.jsonl has %d records, want 30", len(steps))
	}
	if list, _ := checkpoint.List(dir); len(list) == 0 || list[0].Step != 30 {
		t.Fatalf("checkpoints %v: want the final one of step 30", list)
	}
}

// When the last step is also a periodic checkpoint's, the run writes it once.
func TestFinalCheckpointOnce(t *testing.T) {
	c := smallConfig()
	c.Train.Steps, c.Output.CheckpointEvery = 40, 20
	tr, err := New(c, newCPU(t), randomImages(200), quietLog())
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	if err := tr.Run(context.Background(), RunOptions{Dir: t.TempDir(), Shape: tr.shape, Observer: rec}); err != nil {
		t.Fatal(err)
	}
	var steps []int64
	for _, c := range rec.checkpoints {
		steps = append(steps, c.Step)
	}
	if len(steps) != 2 || steps[0] != 20 || steps[1] != 40 {
		t.Fatalf("checkpoints written at steps %v, want [20 40]", steps)
	}
}

// The log's step lines give the learning rate to 6 significant digits and, for a
// bounded run, how far it is and the time left (what the bar shows on a terminal).
func TestStepLogLine(t *testing.T) {
	c := smallConfig()
	c.Train.Steps, c.Output.LogEvery = 20, 10
	var buf bytes.Buffer
	tr, err := New(c, newCPU(t), randomImages(200), slog.New(slog.NewJSONHandler(&buf, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.Run(context.Background(), RunOptions{Dir: t.TempDir(), Shape: tr.shape}); err != nil {
		t.Fatal(err)
	}
	var lines int
	for _, line := range strings.Split(buf.String(), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) != nil || rec["msg"] != "step" {
			continue
		}
		lines++
		lr := strconv.FormatFloat(rec["lr"].(float64), 'g', -1, 64)
		if digits := len(strings.TrimLeft(strings.ReplaceAll(lr, ".", ""), "0")); digits > 6 {
			t.Errorf("lr %s has %d significant digits", lr, digits)
		}
		if rec["progress"] == nil || rec["eta"] == nil {
			t.Errorf("step line without progress and eta: %s", line)
		}
		if lines == 2 && rec["progress"] != "100.0%" {
			t.Errorf("the last step line says %v", rec["progress"])
		}
	}
	if lines != 2 {
		t.Fatalf("%d step lines, want 2:\n%s", lines, buf.String())
	}
}

// A run's first sample grid is of its starting step: the status page shows one from
// the start.
func TestSampleGridAtTheStart(t *testing.T) {
	c := smallConfig()
	c.Train.Steps, c.Output.SampleEvery = 20, 10
	dir := t.TempDir()
	tr, err := New(c, newCPU(t), randomImages(200), quietLog())
	if err != nil {
		t.Fatal(err)
	}
	rec := &sampleRecorder{}
	if err := tr.Run(context.Background(), RunOptions{Dir: dir, Shape: tr.shape, Observer: rec}); err != nil {
		t.Fatal(err)
	}
	if len(rec.steps) == 0 || rec.steps[0] != 0 || rec.beforeFirstStep != 1 {
		t.Fatalf("sample grids at steps %v (%d before the first step); want the first at step 0, before any step", rec.steps, rec.beforeFirstStep)
	}
	if _, err := os.Stat(filepath.Join(dir, "samples", "step-000000000.png")); err != nil {
		t.Fatal(err)
	}
}

type sampleRecorder struct {
	nopObserver
	steps           []int64
	stepped         bool
	beforeFirstStep int
}

func (r *sampleRecorder) StepDone(StepReport) { r.stepped = true }
func (r *sampleRecorder) SamplesWritten(step int64, _ []byte) {
	r.steps = append(r.steps, step)
	if !r.stepped {
		r.beforeFirstStep++
	}
}
