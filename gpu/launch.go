//go:build !nocuda

package gpu

import (
	"fmt"
	"unsafe"

	"gorgonia.org/cu"

	"github.com/gantrain/gantrain/kernels"
)

// maxArgs bounds a kernel's parameter count.
const maxArgs = 32

// argBuffer holds one launch's kernel parameters: vals[i] is parameter i's bits (a
// device address, or an int32/float32 in the low 32 bits, which is where a 4-byte
// parameter sits in little-endian memory) and ptrs[i] points at vals[i], the array
// cuLaunchKernel takes. It lives inside the Backend, so a launch allocates nothing
// for its parameters.
type argBuffer struct {
	vals [maxArgs]uint64
	ptrs [maxArgs]unsafe.Pointer
}

func (a *argBuffer) init() {
	for i := range a.ptrs {
		a.ptrs[i] = unsafe.Pointer(&a.vals[i])
	}
}

// run queues the launches of op on the stream, in order. It does nothing after an
// error, and records the first launch error.
func (b *Backend) run(op string, ls []kernels.Launch) {
	if b.Failed() != nil || len(ls) == 0 {
		return
	}
	defer leave()
	if err := b.enter(); err != nil {
		b.Fail(fmt.Errorf("%s: %w", op, err))
		return
	}
	for i := range ls {
		if err := b.launch(&ls[i]); err != nil {
			b.Fail(fmt.Errorf("%s: kernel %s (grid %v, block %v, %d B shared): %w",
				op, ls[i].Kernel, ls[i].Grid, ls[i].Block, ls[i].SharedBytes, err))
			return
		}
	}
}

// launch queues one kernel (or records it for a step graph); the caller holds the
// context.
func (b *Backend) launch(l *kernels.Launch) error {
	if l.Grid[0] == 0 || l.Grid[1] == 0 || l.Grid[2] == 0 {
		return nil // nothing to compute (an empty tensor)
	}
	fn, err := b.prepare(l)
	if err != nil {
		return err
	}
	if b.graphs != nil && b.graphs.recording {
		b.graphs.record(fn, l)
		return nil
	}
	if b.timer != nil {
		b.timer.before(b, l.Kernel)
	}
	err = b.launchFn(fn, l)
	if b.timer != nil {
		b.timer.after(b)
	}
	return err
}

// prepare resolves l's kernel and lets it have l's dynamic shared memory (over 48 KiB
// needs an opt-in per kernel, made once).
func (b *Backend) prepare(l *kernels.Launch) (cu.Function, error) {
	if len(l.Args) > maxArgs {
		return cu.Function{}, fmt.Errorf("%d parameters, more than %d", len(l.Args), maxArgs)
	}
	fn, err := b.function(l.Kernel)
	if err != nil {
		return fn, err
	}
	if l.SharedBytes > b.sharedOptIn[l.Kernel] && l.SharedBytes > defaultSharedLimit {
		if err := setMaxDynamicShared(fn, int(l.SharedBytes)); err != nil {
			return fn, fmt.Errorf("allow %d B of dynamic shared memory: %w", l.SharedBytes, err)
		}
		b.sharedOptIn[l.Kernel] = l.SharedBytes
	}
	return fn, nil
}

// launchFn queues one launch of fn on the stream; the caller holds the context.
func (b *Backend) launchFn(fn cu.Function, l *kernels.Launch) error {
	for i, a := range l.Args {
		b.args.vals[i] = a.Bits
	}
	return fn.Launch(int(l.Grid[0]), int(l.Grid[1]), int(l.Grid[2]),
		int(l.Block[0]), int(l.Block[1]), int(l.Block[2]),
		int(l.SharedBytes), b.stream, b.args.ptrs[:len(l.Args)])
}

// launchNow queues ls on the stream at once, neither recorded for a step graph nor
// timed kernel by kernel (the autotuner's own launches); the caller holds the context.
func (b *Backend) launchNow(ls []kernels.Launch) error {
	for i := range ls {
		fn, err := b.prepare(&ls[i])
		if err == nil {
			err = b.launchFn(fn, &ls[i])
		}
		if err != nil {
			return fmt.Errorf("kernel %s: %w", ls[i].Kernel, err)
		}
	}
	return nil
}
