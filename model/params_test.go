package model

import (
	"reflect"
	"strings"
	"testing"

	"github.com/gantrain/gantrain/backend"
	"github.com/gantrain/gantrain/cpu"
	"github.com/gantrain/gantrain/rng"
)

// A net over another parameter arena computes with that arena's values, and leaves
// the original's alone; an arena of the wrong shape is refused.
func TestWithParams(t *testing.T) {
	b := newCPU(t)
	specs := []LayerSpec{
		{Type: Dense, Units: 9, Activation: "relu", InitRange: 0.5},
		{Type: Dense, Units: 4, Activation: "sigmoid", InitRange: 0.5},
	}
	n, err := Build(b, "generator", specs, Flat(5), Flat(4), OutputHead)
	if err != nil {
		t.Fatal(err)
	}
	other, err := Build(b, "generator", specs, Flat(5), Flat(4), OutputHead)
	if err != nil {
		t.Fatal(err)
	}
	upload := func(net *Net, seed uint64) {
		p, err := net.InitialParams(rng.Stream{Seed: seed}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Upload(net.Params, p); err != nil {
			t.Fatal(err)
		}
	}
	upload(n, 1)
	upload(other, 2)
	x, _ := b.Alloc(backend.F32, 3, 5)
	b.Uniform(x, -1, 1, rng.Stream{Seed: 3})
	out := func(net *Net) []float32 {
		p, err := net.NewPass(b, x, PassBuffers{})
		if err != nil {
			t.Fatal(err)
		}
		p.Forward(b, Infer, rng.Stream{})
		v := make([]float32, 12)
		if err := b.Download(v, p.Out); err != nil {
			t.Fatal(err)
		}
		return v
	}
	shadow, err := n.WithParams(b, other.Params)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := out(shadow), out(other); !reflect.DeepEqual(got, want) {
		t.Errorf("net over the other arena computes %v, want %v", got, want)
	}
	if reflect.DeepEqual(out(n), out(other)) {
		t.Error("the original net computes with the other arena too")
	}
	bad, _ := b.Alloc(backend.F32, 1, n.Size()-1)
	if _, err := n.WithParams(b, bad); err == nil || !strings.Contains(err.Error(), "arena") {
		t.Errorf("an arena one element short: error %v", err)
	}
}

// newCPU is a CPU backend with the pure-Go BLAS (the same on every machine).
func newCPU(t testing.TB) *cpu.Backend {
	t.Helper()
	b, err := cpu.New(cpu.Options{BLAS: "go"})
	if err != nil {
		t.Fatal(err)
	}
	return b
}
