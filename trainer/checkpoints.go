package trainer

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/gantrain/gantrain/checkpoint"
	"github.com/gantrain/gantrain/output"
)

// RunContents is what a run directory holds.
type RunContents struct {
	Config      bool  // config.yaml
	Metrics     bool  // metrics.jsonl, not empty
	Checkpoints int   // checkpoints/step-N.safetensors
	NewestStep  int64 // the newest checkpoint's step (-1: none)
	Refused     int   // checkpoints set aside as *.refused
	Samples     int   // samples/*.png
}

// InspectRun says what run directory dir holds; a directory that does not exist holds
// nothing.
func InspectRun(dir string) RunContents {
	c := RunContents{NewestStep: -1}
	if _, err := os.Stat(filepath.Join(dir, "config.yaml")); err == nil {
		c.Config = true
	}
	if fi, err := os.Stat(filepath.Join(dir, output.MetricsFile)); err == nil && fi.Size() > 0 {
		c.Metrics = true
	}
	if list, err := checkpoint.List(dir); err == nil {
		c.Checkpoints = len(list)
		if len(list) > 0 {
			c.NewestStep = list[0].Step
		}
	}
	c.Refused = len(checkpoint.ListRefused(dir))
	pngs, _ := filepath.Glob(filepath.Join(dir, output.SamplesDir, "*.png"))
	c.Samples = len(pngs)
	return c
}

// Empty reports whether the directory holds nothing of a run.
func (c RunContents) Empty() bool {
	return !c.Config && !c.Metrics && c.Checkpoints == 0 && c.Refused == 0 && c.Samples == 0
}

func (c RunContents) String() string {
	var parts []string
	if c.Config {
		parts = append(parts, "config.yaml")
	}
	if c.Checkpoints > 0 {
		parts = append(parts, fmt.Sprintf("%d checkpoint(s), the newest of step %d", c.Checkpoints, c.NewestStep))
	}
	if c.Refused > 0 {
		parts = append(parts, fmt.Sprintf("%d refused checkpoint(s)", c.Refused))
	}
	if c.Metrics {
		parts = append(parts, output.MetricsFile)
	}
	if c.Samples > 0 {
		parts = append(parts, fmt.Sprintf("%d sample grid(s)", c.Samples))
	}
	if len(parts) == 0 {
		return "nothing"
	}
	return strings.Join(parts, ", ")
}

// Refused is a checkpoint that could not be used, and why. ResumeLatest renames one
// that fails its own integrity checks to MovedTo (its path + ".refused").
type Refused struct {
	Path    string
	MovedTo string
	Err     error
}

// ResumeReport says which checkpoint a resumed run continues from.
type ResumeReport struct {
	Step    int64
	Path    string
	Refused []Refused // newer checkpoints that failed their checks, newest first
}

// ResumeLatest restores the newest checkpoint of run directory dir that passes every
// check. A checkpoint that fails its own integrity (checksum, truncation, format,
// metadata) is set aside as *.refused and the next older one is tried; those are
// listed in the report. A sound checkpoint made for another run (architecture, seed,
// data set: ErrArchitecture) is left alone and the resume fails, naming what differs:
// older checkpoints of the same directory would not fit either, and this is a
// mistake in the configuration, not in the files.
func (t *Trainer) ResumeLatest(dir string) (ResumeReport, error) {
	var rep ResumeReport
	list, err := checkpoint.List(dir)
	if err != nil {
		return rep, err
	}
	ckdir := filepath.Join(dir, checkpoint.Dir)
	if len(list) == 0 {
		if refused := checkpoint.ListRefused(dir); len(refused) > 0 {
			return rep, fmt.Errorf("resume: no usable checkpoints in %s: %d were set aside as *%s by an earlier resume because they failed their integrity checks (the newest: %s); to try one again, rename it back without %q",
				ckdir, len(refused), checkpoint.RefusedExt, refused[0], checkpoint.RefusedExt)
		}
		return rep, fmt.Errorf("resume: no checkpoints in %s", ckdir)
	}
	for _, c := range list {
		f, err := checkpoint.ReadFile(c.Path, checkpoint.DecodeOptions{})
		if err == nil {
			err = t.Restore(f)
			if errors.Is(err, ErrArchitecture) {
				return rep, fmt.Errorf("resume: %s does not fit this run: %w (the checkpoint is sound and left as it is: resume with the configuration it was written with, or start the new run in another directory)", c.Path, err)
			}
		}
		if err != nil {
			rep.Refused = append(rep.Refused, Refused{Path: c.Path, MovedTo: checkpoint.SetAside(c.Path), Err: err})
			continue
		}
		rep.Step, rep.Path = t.step, c.Path
		return rep, nil
	}
	var b strings.Builder
	for _, r := range rep.Refused {
		fmt.Fprintf(&b, "\n  %s: %v", r.Path, r.Err)
	}
	return rep, fmt.Errorf("resume: none of the %d checkpoints in %s is usable (each set aside as *%s):%s", len(list), ckdir, checkpoint.RefusedExt, b.String())
}

// checkFinite names the first tensor of f holding a NaN or an infinity.
func checkFinite(f *checkpoint.File) error {
	for _, t := range f.Tensors {
		for i, v := range t.F32 {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return fmt.Errorf("%w: %s[%d] is %v", ErrDiverged, t.Name, i, v)
			}
		}
	}
	return nil
}
