package trainer

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gantrain/gantrain/checkpoint"
)

// A sound checkpoint of another configuration is left alone, and the resume names what
// differs; only files that fail their own integrity are set aside as *.refused, and a
// resume that finds nothing else says so and how to restore them.
func TestResumeRefusesOnlyDamagedCheckpoints(t *testing.T) {
	c := smallConfig()
	set := randomImages(100)
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "checkpoints"), 0o755)
	tr, err := New(c, newCPU(t), set, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		losses(t, tr, 1)
		if _, err := tr.writeCheckpoint(dir, nopObserver{}); err != nil {
			t.Fatal(err)
		}
	}
	wider := c
	wider.Generator = append(wider.Generator[:0:0], c.Generator...)
	wider.Generator[1].Units = 40
	other, err := New(wider, newCPU(t), set, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	_, err = other.ResumeLatest(dir)
	if !errors.Is(err, ErrArchitecture) || !strings.Contains(err.Error(), "generator[1]") || !strings.Contains(err.Error(), "left as it is") {
		t.Fatalf("resume with another configuration: %v", err)
	}
	if got := InspectRun(dir); got.Checkpoints != 2 || got.Refused != 0 {
		t.Fatalf("after the refused resume: %+v; want both checkpoints in place, none set aside", got)
	}
	// Damage both: each is set aside, and the error says so.
	list, _ := checkpoint.List(dir)
	for _, e := range list {
		raw, _ := os.ReadFile(e.Path)
		os.WriteFile(e.Path, raw[:len(raw)/2], 0o644)
	}
	same, _ := New(c, newCPU(t), set, quietLog())
	rep, err := same.ResumeLatest(dir)
	if err == nil || len(rep.Refused) != 2 {
		t.Fatalf("resume from damaged checkpoints: %+v, %v", rep, err)
	}
	// The next resume finds only the refused files, and says how to restore them.
	_, err = same.ResumeLatest(dir)
	if err == nil || !strings.Contains(err.Error(), "2 were set aside") || !strings.Contains(err.Error(), "rename it back") {
		t.Fatalf("resume with only refused files: %v", err)
	}
}
