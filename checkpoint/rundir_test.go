package checkpoint

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// touch makes empty files under dir.
func touch(t *testing.T, dir string, names ...string) {
	t.Helper()
	for _, n := range names {
		if err := os.WriteFile(filepath.Join(dir, n), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func steps(t *testing.T, runDir string) []int64 {
	t.Helper()
	list, err := List(runDir)
	if err != nil {
		t.Fatal(err)
	}
	var s []int64
	for _, e := range list {
		if e.Path != Path(runDir, e.Step) {
			t.Errorf("step %d listed at %s, want %s", e.Step, e.Path, Path(runDir, e.Step))
		}
		s = append(s, e.Step)
	}
	return s
}

func TestListAndPrune(t *testing.T) {
	for _, tc := range []struct {
		name  string
		keep  int
		best  *Best
		after []int64
	}{
		{"keep everything", 0, nil, []int64{300, 200, 100, 5}},
		{"keep two", 2, nil, []int64{300, 200}},
		{"keep two and the best", 2, &Best{Step: 5}, []int64{300, 200, 5}},
		{"the best among the newest", 2, &Best{Step: 300}, []int64{300, 200}},
		{"keep more than there are", 9, nil, []int64{300, 200, 100, 5}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			runDir := t.TempDir()
			dir := filepath.Join(runDir, Dir)
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			touch(t, dir, "step-000000100.safetensors", "step-000000005.safetensors", "step-000000300.safetensors",
				"step-000000200.safetensors", "step-000000400.safetensors.refused", ".step-000000500.safetensors.123.tmp",
				"step-x.safetensors", "best.json")
			if got := steps(t, runDir); !slices.Equal(got, []int64{300, 200, 100, 5}) {
				t.Fatalf("List: steps %v, want [300 200 100 5], newest first", got)
			}
			if _, err := Prune(runDir, tc.keep, tc.best); err != nil {
				t.Fatal(err)
			}
			if got := steps(t, runDir); !slices.Equal(got, tc.after) {
				t.Errorf("after Prune(%d, %v): steps %v, want %v", tc.keep, tc.best, got, tc.after)
			}
			RemoveStaleTemps(runDir)
			if m, _ := filepath.Glob(filepath.Join(dir, ".*.tmp")); len(m) != 0 {
				t.Errorf("RemoveStaleTemps left %v", m)
			}
			if got := ListRefused(runDir); len(got) != 1 {
				t.Errorf("ListRefused = %v, want the one refused checkpoint", got)
			}
		})
	}
}

func TestSetAsideAndBest(t *testing.T) {
	runDir := t.TempDir()
	if err := os.Mkdir(filepath.Join(runDir, Dir), 0o755); err != nil {
		t.Fatal(err)
	}
	if b, err := ReadBest(runDir); b != nil || err != nil {
		t.Fatalf("ReadBest of a run without one = %v, %v; want nil, nil", b, err)
	}
	want := Best{Step: 40, Metric: "parzen_ll", Score: 212.5}
	if err := WriteBest(runDir, want); err != nil {
		t.Fatal(err)
	}
	if b, err := ReadBest(runDir); err != nil || *b != want {
		t.Fatalf("ReadBest = %v, %v; want %v", b, err, want)
	}
	p := Path(runDir, 7)
	touch(t, filepath.Dir(p), filepath.Base(p))
	if got := SetAside(p); got != p+RefusedExt {
		t.Fatalf("SetAside moved %s to %s", p, got)
	}
	if got := SetAside(p); got != p {
		t.Fatalf("SetAside of a missing file says %s, want the path itself", got)
	}
	if got := steps(t, runDir); len(got) != 0 {
		t.Fatalf("a checkpoint set aside is still listed: %v", got)
	}
}
