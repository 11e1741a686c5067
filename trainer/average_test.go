package trainer

import (
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/gantrain/gantrain/backend"
	"github.com/gantrain/gantrain/checkpoint"
	"github.com/gantrain/gantrain/config"
	"github.com/gantrain/gantrain/data"
	"github.com/gantrain/gantrain/model"
)

// With train.g_ema the checkpoint's ".ema" tensors are exactly the float32 recurrence
// avg ← d·avg + (1−d)·θ over G's parameters after every update, starting at the
// initial parameters; D keeps no average.
func TestGeneratorAverageFollowsRecurrence(t *testing.T) {
	for _, update := range []string{"alternating", "simultaneous", "simultaneous+warmup"} {
		c := smallConfig()
		c.Train.Update = strings.TrimSuffix(update, "+warmup")
		c.Train.GEMA = 0.9
		c.Train.GEMAWarmup = strings.HasSuffix(update, "+warmup")
		tr, err := New(c, newCPU(t), randomImages(100), quietLog())
		if err != nil {
			t.Fatal(err)
		}
		tensors := func() map[string][]float32 { return checkpointTensors(t, tr) }
		start := tensors()
		avg := map[string][]float32{}
		for name, v := range start {
			if strings.HasPrefix(name, "discriminator.") && strings.HasSuffix(name, ".ema") {
				t.Fatalf("%s: the discriminator has an average %s", update, name)
			}
			if strings.HasPrefix(name, "generator.") && !strings.Contains(name[len("generator.layers.0."):], ".") {
				if !reflect.DeepEqual(start[name+".ema"], v) {
					t.Fatalf("%s: %s.ema does not start at the parameters", update, name)
				}
				avg[name] = append([]float32(nil), v...)
			}
		}
		if len(avg) != 6 {
			t.Fatalf("%s: %d generator tensors, want 6", update, len(avg))
		}
		for step := 0; step < 7; step++ {
			d := float32(0.9)
			if c.Train.GEMAWarmup {
				// (1+t)/(10+t) for update t = step+1: 2/11 … 8/17, all below 0.9.
				d = float32(float64(step+2) / float64(step+11))
			}
			if _, err := tr.Step(false); err != nil {
				t.Fatal(err)
			}
			now := tensors()
			for name, a := range avg {
				for i, x := range now[name] {
					a[i] = float32(d*a[i]) + float32((1-d)*x)
				}
				if !reflect.DeepEqual(now[name+".ema"], a) {
					t.Fatalf("%s: step %d: %s.ema is not the recurrence", update, step+1, name)
				}
			}
		}
		if reflect.DeepEqual(avg["generator.layers.0.weight"], tensors()["generator.layers.0.weight"]) {
			t.Fatalf("%s: the average equals the parameters after 7 updates", update)
		}
	}
}

// Sample draws from the average of a checkpoint that has one: the same samples as a
// checkpoint whose parameters are that average, others than from the parameters.
func TestSampleUsesGeneratorAverage(t *testing.T) {
	c := smallConfig()
	c.Train.GEMA = 0.8
	tr, err := New(c, newCPU(t), randomImages(100), quietLog())
	if err != nil {
		t.Fatal(err)
	}
	losses(t, tr, 6)
	f, err := tr.Checkpoint()
	if err != nil {
		t.Fatal(err)
	}
	asPlain := func(suffix string) *checkpoint.File { return withoutAverage(t, f, suffix, nil, nil) }
	sample := func(f *checkpoint.File, raw bool) []float32 {
		x, _, err := Sample(newCPU(t), f, 5, 3, SampleOptions{Raw: raw})
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
	if !HasAverage(f) || HasAverage(asPlain("")) {
		t.Fatal("HasAverage does not tell a checkpoint with an average from one without")
	}
	got := sample(f, false)
	if want := sample(asPlain(".ema"), false); !reflect.DeepEqual(got, want) {
		t.Error("samples of a checkpoint with an average differ from those of its average")
	}
	raw := sample(f, true)
	if reflect.DeepEqual(got, raw) {
		t.Error("samples of a checkpoint with an average equal those of its parameters")
	}
	if want := sample(asPlain(""), false); !reflect.DeepEqual(raw, want) {
		t.Error("raw samples differ from those of a checkpoint without the average")
	}
}

// withoutAverage is f without an average, its generator's parameters taken from the
// tensors named name+suffix and its batchnorm statistics, when state is not nil, from
// state (a host copy of the State of net, a generator).
func withoutAverage(t *testing.T, f *checkpoint.File, suffix string, state []float32, net *model.Net) *checkpoint.File {
	t.Helper()
	g := &checkpoint.File{Metadata: map[string]string{}}
	for k, v := range f.Metadata {
		g.Metadata[k] = v
	}
	var arch map[string]any
	if err := json.Unmarshal([]byte(f.Metadata[metaArchitecture]), &arch); err != nil {
		t.Fatal(err)
	}
	if arch["g_ema"] != true {
		t.Fatalf("architecture %v does not record the average", arch)
	}
	delete(arch, "g_ema")
	raw, _ := json.Marshal(arch)
	g.Metadata[metaArchitecture] = string(raw)
	stats := map[string][]float32{}
	if state != nil {
		for _, p := range net.StateList() {
			stats[tensorName(net, p, "")] = p.ToTorch(state)
		}
	}
	for _, x := range f.Tensors {
		if strings.HasSuffix(x.Name, ".ema") {
			continue
		}
		if src, ok := f.Tensor(x.Name + suffix); ok && strings.HasPrefix(x.Name, "generator.") {
			x.F32 = src.F32
		}
		if st, ok := stats[x.Name]; ok {
			x.F32 = st
			delete(stats, x.Name)
		}
		g.Tensors = append(g.Tensors, x)
	}
	if len(stats) > 0 {
		t.Fatalf("the checkpoint lacks the statistics %v", stats)
	}
	return g
}

// With batchnorm in G and running statistics for sampling, the average is
// normalised by statistics of its own, stood on noise the run's seed fixes: Sample
// of a checkpoint reproduces the statistics the trainer stood for its sample grid,
// and they bring the samples far closer to those normalised by each batch's own
// statistics than G's running statistics do.
func TestAverageStandsItsBatchNormStatistics(t *testing.T) {
	c := smallConfig()
	c.Generator, c.Discriminator = model.DCGANGenerator(28, 28, 8, 2, 0), model.DCGANDiscriminator(4, 2, 0)
	c.Train.GEMA = 0.8
	tr, err := New(c, newCPU(t), randomImages(100), quietLog())
	if err != nil {
		t.Fatal(err)
	}
	losses(t, tr, 6)
	if _, err := tr.Samples(); err != nil {
		t.Fatal(err)
	}
	avg := tr.optG.averaged
	stood := make([]float32, backend.Len(avg.State))
	gStats := make([]float32, backend.Len(tr.G.State))
	if err := tr.b.Download(stood, avg.State); err != nil {
		t.Fatal(err)
	}
	if err := tr.b.Download(gStats, tr.G.State); err != nil {
		t.Fatal(err)
	}
	if reflect.DeepEqual(stood, gStats) || reflect.DeepEqual(stood, avg.InitialState()) {
		t.Fatal("the average's statistics are G's or the initial ones after a sample grid")
	}
	f, err := tr.Checkpoint()
	if err != nil {
		t.Fatal(err)
	}
	const n = 200
	sample := func(f *checkpoint.File, bn string) []float32 {
		x, _, err := Sample(newCPU(t), f, n, 3, SampleOptions{BatchNorm: bn})
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
	got := sample(f, "")
	if want := sample(withoutAverage(t, f, ".ema", stood, avg), ""); !reflect.DeepEqual(got, want) {
		t.Error("Sample stands other statistics than the trainer")
	}
	withG := sample(withoutAverage(t, f, ".ema", nil, nil), "")
	batch := sample(f, config.SampleBatchNormBatch)
	if want := sample(withoutAverage(t, f, ".ema", nil, nil), config.SampleBatchNormBatch); !reflect.DeepEqual(batch, want) {
		t.Error("with batch statistics the average's samples depend on running statistics")
	}
	dist := func(x, y []float32) float64 {
		var s float64
		for i := range x {
			s += math.Abs(float64(x[i] - y[i]))
		}
		return s / float64(len(x))
	}
	dStood, dG := dist(got, batch), dist(withG, batch)
	t.Logf("mean distance to the samples with batch statistics: %.4g with the stood statistics, %.4g with G's", dStood, dG)
	if !(dStood < dG/2) {
		t.Error("the stood statistics bring the samples no closer to those with batch statistics than half as far as G's")
	}
}

// A trainer restored from a checkpoint of the same step but other parameters (a
// rollback comes back to its steps with lower learning rates) stands its average's
// statistics again: its samples are those of the checkpoint's trainer.
func TestRestoreStandsAverageAgain(t *testing.T) {
	c := smallConfig()
	c.Generator, c.Discriminator = model.DCGANGenerator(28, 28, 8, 2, 0), model.DCGANDiscriminator(4, 2, 0)
	c.Train.GEMA = 0.8
	other := randomImages(100)
	for i := range other.X {
		other.X[i] = 1 - other.X[i]
	}
	trainers := make([]*Trainer, 2)
	grids := make([][]float32, 2)
	for i, set := range []*data.Set{randomImages(100), other} {
		tr, err := New(c, newCPU(t), set, quietLog())
		if err != nil {
			t.Fatal(err)
		}
		losses(t, tr, 4)
		if grids[i], err = tr.Samples(); err != nil {
			t.Fatal(err)
		}
		trainers[i] = tr
	}
	if reflect.DeepEqual(grids[0], grids[1]) {
		t.Fatal("trainers on different data draw the same samples")
	}
	f, err := trainers[1].Checkpoint()
	if err != nil {
		t.Fatal(err)
	}
	if err := trainers[0].Restore(f); err != nil {
		t.Fatal(err)
	}
	got, err := trainers[0].Samples()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, grids[1]) {
		t.Error("after Restore at the same step the samples differ from those of the checkpoint's trainer")
	}
}
