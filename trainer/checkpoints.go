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

// Refused is a checkpoint that could not be used, and why. ResumeLatest renames it
// to MovedTo (its path + ".refused").
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
// check (checksum, format, architecture, seed). Newer checkpoints that fail are
// listed in the report; the error names each one when none is usable.
func (t *Trainer) ResumeLatest(dir string) (ResumeReport, error) {
	var rep ResumeReport
	list, err := ListCheckpoints(dir)
	if err != nil {
		return rep, err
	}
	if len(list) == 0 {
		return rep, fmt.Errorf("resume: no checkpoints in %s", filepath.Join(dir, checkpointDir))
	}
	for _, c := range list {
		f, err := checkpoint.ReadFile(c.Path, checkpoint.DecodeOptions{})
		if err == nil {
			err = t.Restore(f)
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
	return rep, fmt.Errorf("resume: none of the %d checkpoints in %s is usable:%s", len(list), filepath.Join(dir, checkpointDir), b.String())
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
