package trainer

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/gantrain/gantrain/checkpoint"
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
		tensors := func() map[string][]float32 {
			f, err := tr.Checkpoint()
			if err != nil {
				t.Fatal(err)
			}
			m := map[string][]float32{}
			for _, x := range f.Tensors {
				m[x.Name] = x.F32
			}
			return m
		}
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
	// asPlain is f without an average, its generator's parameters taken from the
	// tensors named name+suffix.
	asPlain := func(suffix string) *checkpoint.File {
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
		for _, x := range f.Tensors {
			if strings.HasSuffix(x.Name, ".ema") {
				continue
			}
			if src, ok := f.Tensor(x.Name + suffix); ok && strings.HasPrefix(x.Name, "generator.") {
				x.F32 = src.F32
			}
			g.Tensors = append(g.Tensors, x)
		}
		return g
	}
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
