package model

import (
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/gantrain/gantrain/backend"
	"github.com/gantrain/gantrain/backend/backendtest"
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

// StandStatistics leaves a batchnorm layer's running statistics at the mean over the
// batches of each batch's mean and unbiased variance, with the dropout before it not
// dropping; a net over the same parameters made by WithParams stands statistics of
// its own and leaves the original's alone. No batches, or a pass of two groups, is
// refused.
func TestStandStatistics(t *testing.T) {
	b := newCPU(t)
	const rows, c, batches = 6, 4, 3
	specs := []LayerSpec{{Type: Dropout, Keep: 0.5}, {Type: BatchNorm, Activation: "identity"}}
	n, err := Build(b, "generator", specs, Flat(c), Flat(c), OutputHead)
	if err != nil {
		t.Fatal(err)
	}
	src := rand.New(rand.NewPCG(4, 5))
	upload(t, b, n.Params, backendtest.RandSlice(src, n.Size(), 0.5, 1.5))
	upload(t, b, n.State, n.InitialState())
	shadow, err := n.WithParams(b, n.Params)
	if err != nil {
		t.Fatal(err)
	}
	if shadow.State == n.State {
		t.Fatal("WithParams shares the batchnorm statistics")
	}
	xs := make([][]float32, batches)
	for k := range xs {
		xs[k] = backendtest.RandSlice(src, rows*c, -2, 3)
	}
	in := alloc(t, b, rows, c, xs[0])
	pass, err := shadow.NewPass(b, in, PassBuffers{})
	if err != nil {
		t.Fatal(err)
	}
	if err := pass.StandStatistics(b, batches, func(k int) { upload(t, b, in, xs[k]) }); err != nil {
		t.Fatal(err)
	}
	want := make([]float64, 2*c) // running mean, then running variance
	for _, x := range xs {
		for j := range c {
			var m, v float64
			for r := range rows {
				m += float64(x[r*c+j]) / rows
			}
			for r := range rows {
				d := float64(x[r*c+j]) - m
				v += d * d / (rows - 1)
			}
			want[j] += m / batches
			want[c+j] += v / batches
		}
	}
	got := make([]float32, 2*c)
	if err := b.Download(got, shadow.State); err != nil {
		t.Fatal(err)
	}
	for i := range want {
		if math.Abs(float64(got[i])-want[i]) > 1e-5*(1+math.Abs(want[i])) {
			t.Errorf("statistic %d: %g, want %g (all: %v, want %v)", i, got[i], want[i], got, want)
			break
		}
	}
	orig := make([]float32, 2*c)
	if err := b.Download(orig, n.State); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(orig, n.InitialState()) {
		t.Errorf("standing the other net changed the original's statistics to %v", orig)
	}
	if err := pass.StandStatistics(b, 0, func(int) {}); err == nil {
		t.Error("no batches: no error")
	}
	grouped, err := shadow.NewPass(b, in, PassBuffers{Groups: 2})
	if err != nil {
		t.Fatal(err)
	}
	if err := grouped.StandStatistics(b, 1, func(int) {}); err == nil || !strings.Contains(err.Error(), "2 groups") {
		t.Errorf("a pass of 2 groups: error %v", err)
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
