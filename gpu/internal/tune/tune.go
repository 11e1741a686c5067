// Package tune is the CUDA backend's autotuner, apart from the device: the first time a
// run needs a matrix product of some shape, it times every candidate configuration
// (kernels.GemmCandidates) on that product's real operands through a Timer and keeps the
// fastest for the rest of the run. Choices persist in a cache file per device, driver
// and kernel build (cache.go), and can be preset (from a checkpoint) so that a resumed
// run computes with the kernels it computed with before. Package gpu supplies the
// Timer (CUDA events); the tests here use a fake one.
package tune

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sort"
	"time"

	"github.com/gantrain/gantrain/kernels"
)

// Where a choice came from.
const (
	FromPreset = "checkpoint" // Preset
	FromCache  = "cache"      // the cache file
	FromTimed  = "timed"      // timed in this run
	FromTable  = "table"      // kernels.DefaultGemm
)

// Choice is the configuration chosen for one matrix product.
type Choice struct {
	Problem kernels.GemmProblem
	Choice  kernels.GemmChoice
	Source  string  // FromPreset, FromCache, FromTimed or FromTable
	Micros  float64 // the chosen candidate's time per product, where timed (now or when cached)
	Tried   int     // candidates timed (FromTimed)
}

// ErrFault is wrapped by a Timer's error when a launch failed on the device: the
// device is unusable, and tuning stops.
var ErrFault = errors.New("a kernel failed on the device")

// Timer runs launches on the device.
type Timer interface {
	// Begin is called before the candidates of a product are timed (the GPU backend
	// submits the launches it has recorded, so that the operands hold their values).
	Begin() error
	// Time returns the device time of one run of ls, in microseconds. An error
	// wrapping ErrFault ends the tuning; any other skips the candidate.
	Time(ls []kernels.Launch) (float64, error)
	// End is called after them.
	End()
}

// Tuner is a kernels.GemmChooser.
type Tuner struct {
	// Device is the plan device (its Gemm field is ignored).
	Device kernels.Target
	// Timing times the candidates of a product that neither a preset nor the cache
	// has a choice for; off, such products get kernels.DefaultGemm.
	Timing bool
	Timer  Timer
	Cache  *Cache // nil: none
	Log    *slog.Logger

	chosen      map[kernels.GemmProblem]*Choice // by the problem itself: no key formatted per step
	order       []kernels.GemmProblem
	preset      map[string]kernels.GemmChoice
	cacheFailed bool
}

func (t *Tuner) plain() kernels.Target {
	d := t.Device
	d.Gemm = nil
	return d
}

func (t *Tuner) log() *slog.Logger {
	if t.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return t.Log
}

// ChooseGemm implements kernels.GemmChooser: this run's earlier choice, else the
// preset one, else the cached one, else the fastest candidate (or the fixed table).
func (t *Tuner) ChooseGemm(p kernels.GemmProblem, build func(kernels.GemmChoice) []kernels.Launch) kernels.GemmChoice {
	if c, ok := t.chosen[p]; ok {
		return c.Choice
	}
	key := p.String() // the key of presets, the cache and checkpoints
	d := t.plain()
	c := &Choice{Problem: p}
	if pc, ok := t.preset[key]; ok && kernels.ValidGemm(d, p, pc) == nil {
		c.Choice, c.Source = pc, FromPreset
	} else if e, ok := t.Cache.Get(key); ok && kernels.ValidGemm(d, p, e.Choice) == nil {
		c.Choice, c.Source, c.Micros = e.Choice, FromCache, e.Micros
	} else if t.Timing && t.Timer != nil {
		start := time.Now()
		best, us, n, err := t.time(p, build)
		if err == nil {
			c.Choice, c.Source, c.Micros, c.Tried = best, FromTimed, us, n
			t.log().Info("autotune", "product", key, "kernel", best.String(), "us", round2(us),
				"tflops", round2(p.FLOPs()/us/1e6), "candidates", n, "took", time.Since(start).Round(time.Millisecond))
			if err := t.Cache.Put(key, Entry{Choice: best, Micros: us}); err != nil && !t.cacheFailed {
				t.cacheFailed = true // once: the next writes fail alike
				t.log().Warn("autotune: choices are not cached", "err", err)
			}
		} else {
			t.log().Warn("autotune failed; this product uses the fixed table", "product", key, "err", err)
		}
	}
	if c.Source == "" {
		c.Choice, c.Source = kernels.DefaultGemm(d, p), FromTable
	}
	if c.Source != FromTimed {
		t.log().Debug("kernel choice", "product", key, "kernel", c.Choice.String(), "source", c.Source)
	}
	if t.chosen == nil {
		t.chosen = map[kernels.GemmProblem]*Choice{}
	}
	t.chosen[p] = c
	t.order = append(t.order, p)
	return c.Choice
}

// time runs every candidate of p and returns the fastest, its time per product and how
// many candidates ran.
func (t *Tuner) time(p kernels.GemmProblem, build func(kernels.GemmChoice) []kernels.Launch) (kernels.GemmChoice, float64, int, error) {
	if err := t.Timer.Begin(); err != nil {
		return kernels.GemmChoice{}, 0, 0, err
	}
	defer t.Timer.End()
	best, bestUs, tried := kernels.GemmChoice{}, math.Inf(1), 0
	for _, c := range kernels.GemmCandidates(t.plain(), p) {
		us, err := t.Timer.Time(build(c))
		if errors.Is(err, ErrFault) {
			return kernels.GemmChoice{}, 0, tried, err
		}
		if err != nil { // a launch the device refused (resources): not a candidate here
			t.log().Debug("autotune: candidate skipped", "product", p.String(), "kernel", c.String(), "err", err)
			continue
		}
		tried++
		if us < bestUs {
			best, bestUs = c, us
		}
	}
	if tried == 0 {
		return kernels.GemmChoice{}, 0, 0, fmt.Errorf("no candidate of %v could run", p)
	}
	return best, bestUs, tried, nil
}

func round2(v float64) float64 { return math.Round(v*100) / 100 }

// Choices returns the choices made so far, in the order they were made.
func (t *Tuner) Choices() []Choice {
	out := make([]Choice, 0, len(t.order))
	for _, k := range t.order {
		out = append(out, *t.chosen[k])
	}
	return out
}

// ChoiceMap returns the choices as problem key → choice string (what a checkpoint
// stores).
func (t *Tuner) ChoiceMap() map[string]string {
	m := make(map[string]string, len(t.chosen))
	for p, c := range t.chosen {
		m[p.String()] = c.Choice.String()
	}
	return m
}

// Preset makes the tuner use the given choices (problem key → choice string, as
// ChoiceMap returns them) for those products, ahead of the cache and of timing. An
// entry that does not parse is an error; one this device cannot run is ignored when
// its product comes (and that product is chosen afresh).
func (t *Tuner) Preset(m map[string]string) error {
	preset := make(map[string]kernels.GemmChoice, len(m))
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		c, err := kernels.ParseGemmChoice(m[k])
		if err != nil {
			return fmt.Errorf("kernel choice for %q: %w", k, err)
		}
		preset[k] = c
	}
	t.preset = preset
	return nil
}
