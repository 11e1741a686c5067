//go:build !nocuda

package gpu

// The autotuner's device half: the Timer of package tune, which times a candidate's
// launches with CUDA events; the choosing and the cache file live in gpu/internal/tune.

import (
	"fmt"
	"math"

	"gorgonia.org/cu"

	"github.com/gantrain/gantrain/gpu/internal/tune"
	"github.com/gantrain/gantrain/kernels"
)

// KernelChoice is the configuration chosen for one matrix product, and where the
// choice came from (its Source).
type KernelChoice = tune.Choice

// The sources of a KernelChoice.
const (
	FromTimed  = tune.FromTimed  // timed in this run
	FromCache  = tune.FromCache  // the cache file (Options.TuneCache)
	FromPreset = tune.FromPreset // PresetKernelChoices (a checkpoint's)
	FromTable  = tune.FromTable  // the fixed table (kernels.DefaultGemm)
)

// DefaultTuneCache is the autotuner's cache file under the user's cache directory.
func DefaultTuneCache() (string, error) { return tune.DefaultPath() }

// eventTimer is tune.Timer on the backend's stream.
type eventTimer struct {
	b      *Backend
	events [2]cu.Event
	made   bool
}

// Begin submits the launches recorded for a step graph, so that the operands hold
// what they will hold when the product runs (timing on zeros flatters some kernels),
// and takes the context for the timing launches.
func (t *eventTimer) Begin() error {
	b := t.b
	b.flush()
	if err := b.Failed(); err != nil {
		return err
	}
	if err := b.enter(); err != nil {
		leave()
		return err
	}
	if !t.made {
		for i := range t.events {
			e, err := cu.MakeEvent(cu.DefaultEvent)
			if err != nil {
				leave()
				return fmt.Errorf("%s: create timing events: %w", b.where(), err)
			}
			t.events[i] = e
		}
		t.made = true
	}
	return nil
}

func (t *eventTimer) End() { leave() }

// Time returns the device time per run of ls in microseconds: one run to warm up (and
// to find a fault before timing), then rounds of back-to-back runs queued behind a
// wait_ns launch that holds the stream while the host queues them, timed by events;
// the fastest round counts. The first round sizes the others to about 2 ms of work.
func (t *eventTimer) Time(ls []kernels.Launch) (float64, error) {
	b := t.b
	if err := b.launchNow(ls); err != nil {
		return 0, err
	}
	if err := b.stream.Synchronize(); err != nil {
		b.Fail(b.fault(err))
		return 0, fmt.Errorf("%w: %v", tune.ErrFault, err)
	}
	reps, best := 2, math.Inf(1)
	for round := 0; round < 4; round++ {
		// Long enough for the host to queue reps runs (a few µs per launch).
		hold := uint64(30_000 + 15_000*reps*len(ls))
		if err := b.launchNow(kernels.Wait(hold)); err != nil {
			return 0, err
		}
		if err := t.events[0].Record(b.stream); err != nil {
			return 0, err
		}
		for i := 0; i < reps; i++ {
			if err := b.launchNow(ls); err != nil {
				return 0, err
			}
		}
		if err := t.events[1].Record(b.stream); err != nil {
			return 0, err
		}
		if err := t.events[1].Synchronize(); err != nil {
			b.Fail(b.fault(err))
			return 0, fmt.Errorf("%w: %v", tune.ErrFault, err)
		}
		ms, err := t.events[0].Elapsed(t.events[1])
		if err != nil {
			return 0, err
		}
		us := float64(ms) * 1000 / float64(reps)
		best = min(best, us)
		if round == 0 {
			reps = int(min(max(2000/max(us, 1), 3), 30))
		}
	}
	return best, nil
}

func (t *eventTimer) destroy() {
	if t.made {
		for i := range t.events {
			cu.DestroyEvent(&t.events[i])
		}
		t.made = false
	}
}

// KernelChoices returns the matrix-product configurations this backend has chosen, in
// the order it chose them (empty with Options.Gemm, which chooses instead).
func (b *Backend) KernelChoices() []KernelChoice { return b.tune.Choices() }

// KernelChoiceMap returns the choices as problem key → choice string: what a
// checkpoint stores, and PresetKernelChoices takes.
func (b *Backend) KernelChoiceMap() map[string]string { return b.tune.ChoiceMap() }

// PresetKernelChoices makes the backend use the given choices for those products,
// ahead of its cache file and of timing, whatever Options.Autotune says: a resumed run
// computes with the kernels it computed with before. An entry that does not parse is
// an error; one this device cannot run is ignored, and its product chosen afresh.
func (b *Backend) PresetKernelChoices(m map[string]string) error { return b.tune.Preset(m) }
