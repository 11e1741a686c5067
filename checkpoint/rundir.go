package checkpoint

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/gantrain/gantrain/internal/atomicfile"
)

// A run directory keeps its checkpoints as checkpoints/step-NNNNNNNNN.safetensors,
// the record of the best one as checkpoints/best.json, and those a resume set aside
// as checkpoints/step-NNNNNNNNN.safetensors.refused.
const (
	// Dir is the folder of a run directory that holds its checkpoints.
	Dir = "checkpoints"
	// RefusedExt is appended to the name of a checkpoint a resume set aside.
	RefusedExt = ".refused"

	prefix   = "step-"
	ext      = ".safetensors"
	bestFile = "best.json"
)

// Path is the path of the checkpoint of step in run directory runDir.
func Path(runDir string, step int64) string {
	return filepath.Join(runDir, Dir, fmt.Sprintf("%s%09d%s", prefix, step, ext))
}

// Entry is one checkpoint file of a run directory.
type Entry struct {
	Step int64
	Path string
}

// List returns the checkpoints of run directory runDir, newest first. Files that do
// not follow the naming scheme (temporary files of interrupted writes among them)
// are ignored.
func List(runDir string) ([]Entry, error) {
	ents, err := os.ReadDir(filepath.Join(runDir, Dir))
	if err != nil {
		return nil, fmt.Errorf("list checkpoints: %w", err)
	}
	var out []Entry
	for _, e := range ents {
		name := e.Name()
		if !e.Type().IsRegular() || !strings.HasPrefix(name, prefix) || !strings.HasSuffix(name, ext) {
			continue
		}
		step, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimPrefix(name, prefix), ext), 10, 64)
		if err != nil || step < 0 {
			continue
		}
		out = append(out, Entry{Step: step, Path: filepath.Join(runDir, Dir, name)})
	}
	slices.SortFunc(out, func(a, b Entry) int { return cmp.Compare(b.Step, a.Step) })
	return out, nil
}

// ListRefused lists the checkpoints of runDir that a resume set aside, newest first.
func ListRefused(runDir string) []string {
	m, _ := filepath.Glob(filepath.Join(runDir, Dir, prefix+"*"+ext+RefusedExt))
	slices.Sort(m)
	slices.Reverse(m)
	return m
}

// SetAside renames the checkpoint at path to path+RefusedExt and returns where it now
// is (path itself when the rename failed). A checkpoint that failed its checks is set
// aside, not deleted: it may be worth a look, and a resumed run that reaches its step
// again must neither trip over it nor overwrite it.
func SetAside(path string) string {
	aside := path + RefusedExt
	if err := os.Rename(path, aside); err != nil {
		return path
	}
	return aside
}

// Best is the checkpoint with the best evaluation score of a run.
type Best struct {
	Step   int64   `json:"step"`
	Metric string  `json:"metric"`
	Score  float64 `json:"score"` // higher is better
}

// ReadBest reads the best checkpoint's record of runDir; a missing record is no best
// (nil).
func ReadBest(runDir string) (*Best, error) {
	raw, err := os.ReadFile(filepath.Join(runDir, Dir, bestFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", bestFile, err)
	}
	var b Best
	if err := json.Unmarshal(raw, &b); err != nil {
		return nil, fmt.Errorf("%s: %w", bestFile, err)
	}
	return &b, nil
}

// WriteBest replaces the best checkpoint's record of runDir.
func WriteBest(runDir string, b Best) error {
	raw, err := json.Marshal(b)
	if err != nil {
		return fmt.Errorf("%s: %w", bestFile, err)
	}
	return atomicfile.Write(filepath.Join(runDir, Dir, bestFile), func(w io.Writer) error {
		_, err := w.Write(append(raw, '\n'))
		return err
	})
}

// Prune deletes all but the keep newest checkpoints of runDir, sparing best (when not
// nil), and returns the paths it deleted. keep ≤ 0 keeps everything.
func Prune(runDir string, keep int, best *Best) ([]string, error) {
	if keep <= 0 {
		return nil, nil
	}
	list, err := List(runDir)
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

// RemoveStaleTemps deletes the temporary files of checkpoint writes that a crash
// interrupted (atomicfile names them ".<name>.<random>.tmp").
func RemoveStaleTemps(runDir string) {
	matches, _ := filepath.Glob(filepath.Join(runDir, Dir, "."+prefix+"*.tmp"))
	for _, m := range matches {
		os.Remove(m)
	}
}
