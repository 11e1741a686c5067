package trainer

import (
	"errors"
	"maps"
	"testing"

	"github.com/gantrain/gantrain/backend"
	"github.com/gantrain/gantrain/checkpoint"
	"github.com/gantrain/gantrain/cpu"
)

// tuningCPU is the CPU backend dressed as a device backend that tunes its kernels.
type tuningCPU struct {
	*cpu.Backend
	device  string
	choices map[string]string
	preset  map[string]string
}

func (b *tuningCPU) KernelChoiceMap() map[string]string { return maps.Clone(b.choices) }
func (b *tuningCPU) PresetKernelChoices(m map[string]string) error {
	b.preset = m
	return nil
}
func (b *tuningCPU) Accelerator() backend.Accelerator { return backend.Accelerator{Name: b.device} }

// A checkpoint carries the backend's kernel choices; a run resumed from it on the same
// kind of device presets them, on another device does not, and a corrupt record is an
// invalid checkpoint.
func TestCheckpointCarriesKernelChoices(t *testing.T) {
	c := smallConfig()
	set := randomImages(100)
	choices := map[string]string{"tf32 nn 20x32x10 lda=10 ldb=32": "tc_32x64x32_w32x32_s4/split1"}
	first := &tuningCPU{Backend: newCPU(t), device: "NVIDIA H200", choices: choices}
	tr, err := New(c, first, set, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	losses(t, tr, 2)
	f, err := tr.Checkpoint()
	if err != nil {
		t.Fatal(err)
	}
	if f.Metadata[metaKernels] == "" {
		t.Fatal("no kernel record in the checkpoint")
	}
	restore := func(device string, f *checkpoint.File) (*tuningCPU, error) {
		b := &tuningCPU{Backend: newCPU(t), device: device}
		r, err := New(c, b, set, quietLog())
		if err != nil {
			t.Fatal(err)
		}
		return b, r.Restore(f)
	}
	same, err := restore("NVIDIA H200", f)
	if err != nil || !maps.Equal(same.preset, choices) {
		t.Fatalf("same device: preset %v, err %v; want %v", same.preset, err, choices)
	}
	other, err := restore("NVIDIA A100-SXM4-80GB", f)
	if err != nil || other.preset != nil {
		t.Fatalf("other device: preset %v, err %v; want none", other.preset, err)
	}
	f.Metadata[metaKernels] = "{not json"
	if _, err := restore("NVIDIA H200", f); !errors.Is(err, checkpoint.ErrInvalid) {
		t.Fatalf("corrupt record: err %v, want ErrInvalid", err)
	}
	// The CPU backend tunes nothing: no record.
	plain, _ := New(c, newCPU(t), set, quietLog())
	if g, _ := plain.Checkpoint(); g.Metadata[metaKernels] != "" {
		t.Fatalf("a CPU checkpoint has a kernel record: %s", g.Metadata[metaKernels])
	}
}
