package trainer

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/gantrain/gantrain/checkpoint"
	"github.com/gantrain/gantrain/internal/atomicfile"
)

// A run directory keeps its checkpoints as checkpoints/step-NNNNNNNNN.safetensors.
const (
	checkpointDir    = "checkpoints"
	checkpointPrefix = "step-"
	checkpointExt    = ".safetensors"
	bestFile         = "best.json"
	refusedExt       = ".refused"
)

// CheckpointPath is the path of the checkpoint of step in run directory dir.
func CheckpointPath(dir string, step int64) string {
	return filepath.Join(dir, checkpointDir, fmt.Sprintf("%s%09d%s", checkpointPrefix, step, checkpointExt))
}

// CheckpointEntry is one checkpoint file of a run directory.
type CheckpointEntry struct {
	Step int64
	Path string
}

// ListCheckpoints returns the checkpoints of run directory dir, newest first. Files
// that do not follow the naming scheme (temporary files of interrupted writes among
// them) are ignored.
func ListCheckpoints(dir string) ([]CheckpointEntry, error) {
	ents, err := os.ReadDir(filepath.Join(dir, checkpointDir))
	if err != nil {
		return nil, fmt.Errorf("list checkpoints: %w", err)
	}
	var out []CheckpointEntry
	for _, e := range ents {
		name := e.Name()
		if !e.Type().IsRegular() || !strings.HasPrefix(name, checkpointPrefix) || !strings.HasSuffix(name, checkpointExt) {
			continue
		}
		step, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimPrefix(name, checkpointPrefix), checkpointExt), 10, 64)
		if err != nil || step < 0 {
			continue
		}
		out = append(out, CheckpointEntry{Step: step, Path: filepath.Join(dir, checkpointDir, name)})
	}
	slices.SortFunc(out, func(a, b CheckpointEntry) int { return -cmpInt64(a.Step, b.Step) })
	return out, nil
}

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

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
	if fi, err := os.Stat(filepath.Join(dir, "metrics.jsonl")); err == nil && fi.Size() > 0 {
		c.Metrics = true
	}
	if list, err := ListCheckpoints(dir); err == nil {
		c.Checkpoints = len(list)
		if len(list) > 0 {
			c.NewestStep = list[0].Step
		}
	}
	c.Refused = len(refusedFiles(dir))
	pngs, _ := filepath.Glob(filepath.Join(dir, "samples", "*.png"))
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
		parts = append(parts, "metrics.jsonl")
	}
	if c.Samples > 0 {
		parts = append(parts, fmt.Sprintf("%d sample grid(s)", c.Samples))
	}
	if len(parts) == 0 {
		return "nothing"
	}
	return strings.Join(parts, ", ")
}

// refusedFiles lists the checkpoints an earlier resume set aside, newest first.
func refusedFiles(dir string) []string {
	m, _ := filepath.Glob(filepath.Join(dir, checkpointDir, checkpointPrefix+"*"+checkpointExt+refusedExt))
	slices.Sort(m)
	slices.Reverse(m)
	return m
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
	list, err := ListCheckpoints(dir)
	if err != nil {
		return rep, err
	}
	ckdir := filepath.Join(dir, checkpointDir)
	if len(list) == 0 {
		if refused := refusedFiles(dir); len(refused) > 0 {
			return rep, fmt.Errorf("resume: no usable checkpoints in %s: %d were set aside as *%s by an earlier resume because they failed their integrity checks (the newest: %s); to try one again, rename it back without %q",
				ckdir, len(refused), refusedExt, refused[0], refusedExt)
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
			// Set aside, not deleted: it may be worth a look, and a resumed run that
			// reaches its step again must neither trip over it nor overwrite it.
			aside := c.Path + refusedExt
			if rerr := os.Rename(c.Path, aside); rerr != nil {
				aside = c.Path
			}
			rep.Refused = append(rep.Refused, Refused{Path: c.Path, MovedTo: aside, Err: err})
			continue
		}
		rep.Step, rep.Path = t.step, c.Path
		return rep, nil
	}
	var b strings.Builder
	for _, r := range rep.Refused {
		fmt.Fprintf(&b, "\n  %s: %v", r.Path, r.Err)
	}
	return rep, fmt.Errorf("resume: none of the %d checkpoints in %s is usable (each set aside as *%s):%s", len(list), ckdir, refusedExt, b.String())
}

// Best is the checkpoint with the best evaluation score of a run.
type Best struct {
	Step   int64   `json:"step"`
	Metric string  `json:"metric"`
	Score  float64 `json:"score"` // higher is better
}

// readBest reads checkpoints/best.json; a missing file is no best.
func readBest(dir string) (*Best, error) {
	raw, err := os.ReadFile(filepath.Join(dir, checkpointDir, bestFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var b Best
	if err := json.Unmarshal(raw, &b); err != nil {
		return nil, fmt.Errorf("%s: %w", bestFile, err)
	}
	return &b, nil
}

func writeBest(dir string, b Best) error {
	raw, err := json.Marshal(b)
	if err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(dir, checkpointDir, bestFile), func(w io.Writer) error {
		_, err := w.Write(append(raw, '\n'))
		return err
	})
}

// prune deletes all but the keep newest checkpoints of dir, sparing the best one
// and any newer than step (none normally exist). keep ≤ 0 keeps everything.
func prune(dir string, keep int, best *Best) ([]string, error) {
	if keep <= 0 {
		return nil, nil
	}
	list, err := ListCheckpoints(dir)
	if err != nil {
		return nil, err
	}
	var removed []string
	for i, c := range list {
		if i < keep || (best != nil && c.Step == best.Step) {
			continue
		}
		if err := os.Remove(c.Path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return removed, fmt.Errorf("prune checkpoints: %w", err)
		}
		removed = append(removed, c.Path)
	}
	return removed, nil
}

// removeStaleTemps deletes temporary files left by checkpoint writes that a crash
// interrupted (atomicfile names them ".<name>.<random>.tmp").
func removeStaleTemps(dir string) {
	matches, _ := filepath.Glob(filepath.Join(dir, checkpointDir, "."+checkpointPrefix+"*.tmp"))
	for _, m := range matches {
		os.Remove(m)
	}
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
