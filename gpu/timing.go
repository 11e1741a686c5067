//go:build !nocuda

package gpu

import (
	"errors"
	"fmt"
	"sort"

	"gorgonia.org/cu"
)

// KernelTime is the device time spent in one kernel while timing was on.
type KernelTime struct {
	Kernel   string
	Launches int
	Millis   float64 // total, from CUDA events around each launch
}

// timer records an event before and after every launch, from a pool made when timing
// is turned on; the pool is drained (synchronising the stream) when it fills up and
// when the times are read.
type timer struct {
	events []cu.Event // pairs: 2i before launch i, 2i+1 after
	names  []string   // kernel of each pending pair
	total  map[string]*KernelTime
	err    error
}

const timerPairs = 4096

// EnableTiming turns per-kernel timing on (a CUDA event pair around each launch,
// which slows launching; for benchmarks only) or off.
func (b *Backend) EnableTiming(on bool) error {
	b.flush()
	if b.graphs != nil {
		b.graphs.recording = false
	}
	defer leave()
	if err := b.enter(); err != nil {
		return err
	}
	if !on {
		if b.timer != nil {
			b.timer.destroy()
			b.timer = nil
		}
		return nil
	}
	if b.timer != nil {
		return nil
	}
	t := &timer{total: map[string]*KernelTime{}}
	for i := 0; i < 2*timerPairs; i++ {
		e, err := cu.MakeEvent(cu.DefaultEvent)
		if err != nil {
			t.destroy()
			return fmt.Errorf("%s: create timing events: %w", b.where(), err)
		}
		t.events = append(t.events, e)
	}
	b.timer = t
	return nil
}

// KernelTimes waits for queued work and returns the accumulated time per kernel since
// timing was turned on or last read, longest first, and resets it.
func (b *Backend) KernelTimes() ([]KernelTime, error) {
	if b.timer == nil {
		return nil, errors.New("cuda: kernel timing is off (EnableTiming)")
	}
	b.flush()
	defer leave()
	if err := b.enter(); err != nil {
		return nil, err
	}
	b.timer.drain(b)
	if err := errors.Join(b.Failed(), b.timer.err); err != nil {
		return nil, err
	}
	var out []KernelTime
	for _, k := range b.timer.total {
		out = append(out, *k)
	}
	clear(b.timer.total)
	sort.Slice(out, func(i, j int) bool { return out[i].Millis > out[j].Millis })
	return out, nil
}

// before records the start event of a launch of kernel; the caller holds the context.
func (t *timer) before(b *Backend, kernel string) {
	if len(t.names) == timerPairs {
		t.drain(b)
	}
	t.names = append(t.names, kernel)
	if err := t.events[2*(len(t.names)-1)].Record(b.stream); err != nil && t.err == nil {
		t.err = err
	}
}

// after records the end event of the launch begun by before.
func (t *timer) after(b *Backend) {
	if err := t.events[2*(len(t.names)-1)+1].Record(b.stream); err != nil && t.err == nil {
		t.err = err
	}
}

// drain waits for the stream and adds up the pending pairs.
func (t *timer) drain(b *Backend) {
	if len(t.names) == 0 {
		return
	}
	b.sync()
	for i, name := range t.names {
		ms, err := t.events[2*i].Elapsed(t.events[2*i+1])
		if err != nil {
			if t.err == nil {
				t.err = fmt.Errorf("kernel %s: event time: %w", name, err)
			}
			continue
		}
		k := t.total[name]
		if k == nil {
			k = &KernelTime{Kernel: name}
			t.total[name] = k
		}
		k.Launches++
		k.Millis += ms
	}
	t.names = t.names[:0]
}

func (t *timer) destroy() {
	for i := range t.events {
		cu.DestroyEvent(&t.events[i])
	}
	t.events = nil
}
