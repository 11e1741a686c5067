package trainer

import (
	"fmt"
	"io"
	"log/slog"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/gantrain/gantrain/config"
	"github.com/gantrain/gantrain/cpu"
	"github.com/gantrain/gantrain/data"
	"github.com/gantrain/gantrain/model"
)

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newCPU(t testing.TB) *cpu.Backend {
	t.Helper()
	b, err := cpu.New(cpu.Options{BLAS: "go"})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// smallConfig is a fast MNIST-shaped config: the paper's layer types at small widths.
func smallConfig() config.Config {
	c := config.Default()
	c.Generator[0].Units, c.Generator[1].Units = 32, 32
	c.Discriminator[1].Units, c.Discriminator[3].Units = 16, 16
	c.Train.Batch = 20
	c.Noise.Dim = 10
	c.Output.Samples = 4
	return c
}

// checkpointTensors is the trainer's checkpoint as its tensors by name.
func checkpointTensors(t *testing.T, tr *Trainer) map[string][]float32 {
	t.Helper()
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

// losses runs n steps and returns each step's stats.
func losses(t *testing.T, tr *Trainer, n int) []Stats {
	t.Helper()
	var out []Stats
	for i := 0; i < n; i++ {
		st, err := tr.Step(true)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, st)
	}
	return out
}

func TestDeterministic(t *testing.T) {
	for _, update := range []string{"alternating", "simultaneous"} {
		for _, opt := range []string{"sgd", "adam"} {
			c := smallConfig()
			c.Train.Update, c.Optimizer.Kind = update, opt
			set := randomImages(200)
			run := func(seed uint64) []Stats {
				c.Train.Seed = seed
				tr, err := New(c, newCPU(t), set, quietLog())
				if err != nil {
					t.Fatal(err)
				}
				return losses(t, tr, 25) // crosses two epochs of 200/20
			}
			a, b, other := run(7), run(7), run(8)
			if !reflect.DeepEqual(a, b) {
				t.Errorf("%s/%s: same seed gave different losses:\n%v\n%v", update, opt, a, b)
			}
			if reflect.DeepEqual(a, other) {
				t.Errorf("%s/%s: different seeds gave the same losses", update, opt)
			}
			if a[0].DLoss < 0.69 || a[0].DLoss > 0.70 {
				t.Errorf("%s/%s: first D loss %g, want ≈ log 2 for a fresh D", update, opt, a[0].DLoss)
			}
		}
	}
}

// A run checkpointed at step s and resumed in a fresh trainer reaches step 2s with
// exactly the losses and parameters of an uninterrupted run.
func TestResumeExact(t *testing.T) {
	for _, v := range []struct {
		opt  string
		ema  float64
		conv bool // small DCGAN-style nets: batchnorm statistics in the checkpoint
	}{{"sgd", 0, false}, {"adam", 0, false}, {"sgd", 0.99, false}, {"adam", 0.99, true}} {
		opt := v.opt
		c := smallConfig()
		c.Optimizer.Kind = opt
		c.Train.GEMA = v.ema
		if v.conv {
			c.Generator, c.Discriminator = model.DCGANGenerator(28, 28, 8, 2, 0), model.DCGANDiscriminator(4, 2, 0)
			opt += " conv"
		}
		c.Train.K = 2
		set := randomImages(230) // not a multiple of the batch: epochs end mid-order
		const s = 9
		full, err := New(c, newCPU(t), set, quietLog())
		if err != nil {
			t.Fatal(err)
		}
		want := losses(t, full, 2*s)

		first, err := New(c, newCPU(t), set, quietLog())
		if err != nil {
			t.Fatal(err)
		}
		losses(t, first, s)
		f, err := first.Checkpoint()
		if err != nil {
			t.Fatal(err)
		}
		resumed, err := New(c, newCPU(t), set, quietLog())
		if err != nil {
			t.Fatal(err)
		}
		if err := resumed.Restore(f); err != nil {
			t.Fatal(err)
		}
		got := losses(t, resumed, s)
		if !reflect.DeepEqual(got, want[s:]) {
			t.Errorf("%s: resumed losses differ:\n got %v\nwant %v", opt, got, want[s:])
		}
		pf, _ := full.Checkpoint()
		pr, _ := resumed.Checkpoint()
		for i := range pf.Tensors {
			if !reflect.DeepEqual(pf.Tensors[i], pr.Tensors[i]) {
				t.Errorf("%s: tensor %s differs after resume", opt, pf.Tensors[i].Name)
			}
		}
	}
}

func TestRestoreRejectsOtherArchitecture(t *testing.T) {
	c := smallConfig()
	set := randomImages(100)
	tr, err := New(c, newCPU(t), set, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	f, err := tr.Checkpoint()
	if err != nil {
		t.Fatal(err)
	}
	wider, withAverage := c, c
	wider.Generator = append([]model.LayerSpec(nil), c.Generator...)
	wider.Generator[0].Units = 33
	withAverage.Train.GEMA = 0.999
	for name, oc := range map[string]config.Config{"wider G": wider, "G average": withAverage} {
		other, err := New(oc, newCPU(t), set, quietLog())
		if err != nil {
			t.Fatal(err)
		}
		if err := other.Restore(f); err == nil {
			t.Errorf("%s: restoring a checkpoint of other nets succeeded", name)
		} else if name == "G average" && !strings.Contains(err.Error(), "no average of G") {
			t.Errorf("%s: error %q does not say the checkpoint has no average", name, err)
		} else if name == "wider G" && !strings.Contains(err.Error(), "generator[0]: checkpoint dense(32 relu), this run dense(33 relu)") {
			t.Errorf("%s: error %q does not name the layer that differs", name, err)
		}
	}
}

// The generator learns the 8-Gaussian ring: for each of several seeds, every mode
// gets a fair share of the samples and almost no sample lies far from all modes.
func TestRingCoversAllModes(t *testing.T) {
	if testing.Short() {
		t.Skip("trains for a few seconds")
	}
	for seed := uint64(1); seed <= 4; seed++ {
		t.Run(fmt.Sprintf("seed%d", seed), func(t *testing.T) {
			t.Parallel()
			ringCoversAllModes(t, seed)
		})
	}
}

// ringCoversAllModes trains the ring preset with the given seed and checks its samples.
func ringCoversAllModes(t *testing.T, seed uint64) {
	c := config.Default()
	config.RingDefaults(&c)
	c.Train.Seed = seed
	d := c.Data
	set := data.Ring(d.RingPoints, d.RingModes, d.RingRadius, d.RingStd, c.Train.Seed)
	// The products are at most 128×64×64: one BLAS thread is fastest, and the
	// subtests run in parallel.
	b, err := cpu.New(cpu.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	c.Output.Samples = 2000
	tr, err := New(c, b, set, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	for !tr.Done() {
		if _, err := tr.Step(false); err != nil {
			t.Fatal(err)
		}
	}
	x, err := tr.Samples()
	if err != nil {
		t.Fatal(err)
	}
	modes := data.RingModes(d.RingModes, d.RingRadius)
	counts := make([]int, len(modes))
	far := 0
	n := len(x) / 2
	for i := 0; i < n; i++ {
		best, at := math.Inf(1), -1
		for k, m := range modes {
			dist := math.Hypot(float64(x[2*i])-m[0], float64(x[2*i+1])-m[1])
			if dist < best {
				best, at = dist, k
			}
		}
		if best > 4*d.RingStd {
			far++
			continue
		}
		counts[at]++
	}
	t.Logf("samples per mode %v, far from every mode %d of %d", counts, far, n)
	for k, cnt := range counts {
		if frac := float64(cnt) / float64(n); frac < 0.25/float64(len(modes)) {
			t.Errorf("mode %d (%.2f, %.2f) got %.1f%% of the samples, want ≥ %.1f%%", k, modes[k][0], modes[k][1], 100*frac, 25.0/float64(len(modes)))
		}
	}
	if frac := float64(far) / float64(n); frac > 0.2 {
		t.Errorf("%.1f%% of samples are far from every mode, want ≤ 20%%", 100*frac)
	}
}

// optimizer.d_lr gives D its own learning rate and leaves G's alone: after one
// simultaneous step (both gradients from the same nets), G is what lr alone gives and
// D what lr = d_lr gives, for either optimiser.
func TestDiscriminatorLearningRate(t *testing.T) {
	for _, opt := range []string{"sgd", "adam"} {
		c := smallConfig()
		c.Train.Update, c.Optimizer.Kind = "simultaneous", opt
		set := randomImages(100)
		step := func(lr, dlr float64) (map[string][]float32, Stats) {
			c := c
			c.Optimizer.LR, c.Optimizer.DLR = lr, dlr
			tr, err := New(c, newCPU(t), set, quietLog())
			if err != nil {
				t.Fatal(err)
			}
			st := losses(t, tr, 1)[0]
			return checkpointTensors(t, tr), st
		}
		lr, dlr := 0.01, 0.04
		if opt == "adam" {
			lr, dlr = 2e-4, 8e-4
		}
		both, st := step(lr, dlr)
		gOnly, _ := step(lr, 0)
		dOnly, _ := step(dlr, 0)
		if math.Abs(st.LR-lr) > 1e-5*lr || math.Abs(st.DLR/st.LR-dlr/lr) > 1e-12 { // SGD: decayed by one step
			t.Errorf("%s: stats report lr %g and d_lr %g, want about %g and %g", opt, st.LR, st.DLR, lr, dlr)
		}
		for name, v := range both {
			want, other := gOnly[name], dOnly[name]
			if strings.HasPrefix(name, "discriminator.") {
				want, other = other, want
			}
			if !reflect.DeepEqual(v, want) {
				t.Errorf("%s: %s is not what its own net's learning rate gives", opt, name)
			}
			if strings.HasSuffix(name, ".weight") && reflect.DeepEqual(v, other) {
				t.Errorf("%s: %s is the same under the other net's learning rate", opt, name)
			}
		}
	}
}
