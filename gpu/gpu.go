//go:build !nocuda

// Package gpu is the CUDA implementation of backend.Backend, through the driver API
// (gorgonia.org/cu) and the kernels of package kernels.
//
// One backend is one CUDA context (the device's primary context), one stream, and one
// module loaded from the PTX that package kernels embeds. Every tensor lives in device
// memory carved from a few large allocations made at setup (Alloc); operations check
// shapes exactly as the CPU backend does, then queue kernel launches on the stream and
// return. The first failure (a shape error, a launch error, a fault reported by the
// stream) is recorded and ends all further work; Download, Sync and Err report it.
//
// A CUDA context is current on an OS thread, not on a goroutine: every method locks
// its goroutine to its thread and makes the context current for the length of the
// call, so the backend may be driven from any one goroutine at a time (it is not safe
// for concurrent use, like the CPU backend).
//
// Importing this package links gorgonia.org/cu, whose package initialisation calls
// cuInit and exits the process when no driver or no device is present: a binary with
// this package runs only on a machine with an NVIDIA GPU. Build with -tags nocuda for
// a binary without it.
package gpu

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strings"

	"gorgonia.org/cu"

	"github.com/gantrain/gantrain/backend"
	"github.com/gantrain/gantrain/gpu/internal/ops"
	"github.com/gantrain/gantrain/gpu/internal/tune"
	"github.com/gantrain/gantrain/kernels"
)

// Options configure the CUDA backend.
type Options struct {
	// Device is the CUDA device ordinal (cuda:N).
	Device int
	// TF32 lets the dense layers' matrix products use the tensor cores' TF32 mode
	// (10-bit mantissa inputs, float32 accumulation). Off: exact float32 products.
	TF32 bool
	// ChunkBytes is the size of the device allocations tensors are carved from
	// (0: 64 MiB). A tensor larger than a chunk gets an allocation of its own.
	ChunkBytes int64
	// MemoryLimit caps the device memory the backend allocates, in bytes (0: no cap
	// beyond what the device has free).
	MemoryLimit int64
	// Graphs lets BeginStep/EndStep replay a step's launches as a CUDA graph
	// (graph.go). Off, BeginStep and EndStep do nothing.
	Graphs bool
	// Autotune times the candidate kernel configurations of each matrix product the
	// first time it is needed and keeps the fastest (gpu/internal/tune); off, products
	// use the fixed table (kernels.DefaultGemm) unless TuneCache or
	// PresetKernelChoices has a choice for them.
	Autotune bool
	// TuneCache is the file the autotuner's choices persist in ("": none; see
	// DefaultTuneCache).
	TuneCache string
	// Gemm, if set, chooses every matrix product's configuration instead (tests,
	// experiments); it must return choices kernels.ValidGemm accepts.
	Gemm kernels.GemmChooser
	// Log receives the autotuner's choices (nil: discarded).
	Log *slog.Logger
}

// ErrOutOfMemory is wrapped by the error of an allocation the device (or
// Options.MemoryLimit) cannot satisfy.
var ErrOutOfMemory = errors.New("out of device memory")

// MinComputeCapability is the oldest architecture the kernels are built for (Ampere).
const MinComputeCapability = 80 // major*10 + minor

// DeviceInfo describes the device a backend runs on.
type DeviceInfo struct {
	Ordinal     int    // CUDA device ordinal
	Name        string // e.g. "NVIDIA H100 80GB HBM3"
	Major       int    // compute capability
	Minor       int    //
	SMs         int    // multiprocessors
	TotalMemory int64  // bytes of device memory
	Driver      int    // driver API version, e.g. 12080
	Precision   string // "fp32" or "tf32": the dense layers' matrix products
	MaxShared   int    // bytes of shared memory a block may have (opted in)
	ClockKHz    int    // the multiprocessors' peak clock
}

// ComputeCapability formats the compute capability as "9.0".
func (d DeviceInfo) ComputeCapability() string { return fmt.Sprintf("%d.%d", d.Major, d.Minor) }

// PeakTFLOPs is the device's datasheet rate for dense matrix products in TFLOP/s at its
// peak clock: fp32 FMAs (128 per multiprocessor per clock), or tf32 on the tensor cores
// (512 FMAs per multiprocessor per clock on Ampere and Ada, 1024 on Hopper, whose
// rate needs its warpgroup instructions; mma.sync, which gantrain's kernels use,
// reaches a part of it there).
func (d DeviceInfo) PeakTFLOPs(tf32 bool) float64 {
	fma := 128
	if tf32 {
		fma = 512
		if d.Major >= 9 {
			fma = 1024
		}
	}
	return 2 * float64(fma) * float64(d.SMs) * float64(d.ClockKHz) * 1e3 / 1e12
}

// Backend is the CUDA backend. It is not safe for concurrent use.
type Backend struct {
	ops.Core // the operations (gpu/internal/ops), launched by run

	info   DeviceInfo
	dev    cu.Device
	ctx    cu.CUContext
	stream cu.Stream
	mod    cu.Module
	fns    map[string]cu.Function
	// sharedOptIn is the dynamic shared memory each kernel was allowed beyond 48 KiB.
	sharedOptIn map[string]uint32

	mem    arena
	open   bool
	args   argBuffer
	timer  *timer      // per-kernel timing, when enabled (EnableTiming)
	graphs *graphs     // step graphs, with Options.Graphs
	tune   *tune.Tuner // the matrix products' kernel choices (tune.go)
	tuneT  eventTimer
}

var (
	_ backend.Backend             = (*Backend)(nil)
	_ backend.MemoryReporter      = (*Backend)(nil)
	_ backend.StepGrouper         = (*Backend)(nil)
	_ backend.AcceleratorReporter = (*Backend)(nil)
	_ backend.Queued              = (*Backend)(nil)
)

// New opens device opt.Device: its primary context, a stream, the kernels' module for
// its compute capability, and the kernels' workspace.
func New(opt Options) (*Backend, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	dev, info, err := openDevice(opt.Device)
	if err != nil {
		return nil, err
	}
	if opt.TF32 {
		info.Precision = "tf32"
	}
	ptx, err := kernels.PTX(info.Major, info.Minor)
	if err != nil {
		return nil, fmt.Errorf("cuda:%d (%s): %w", opt.Device, info.Name, err)
	}
	ctx, err := dev.RetainPrimaryCtx()
	if err != nil {
		return nil, fmt.Errorf("cuda:%d (%s): retain context: %w", opt.Device, info.Name, err)
	}
	b := &Backend{info: info, dev: dev, ctx: ctx, open: true,
		fns: map[string]cu.Function{}, sharedOptIn: map[string]uint32{},
	}
	b.initTuner(opt, ptx)
	b.mem = arena{chunk: opt.ChunkBytes, limit: opt.MemoryLimit}
	if b.mem.chunk <= 0 {
		b.mem.chunk = 64 << 20
	}
	b.args.init()
	if opt.Graphs {
		b.graphs = newGraphs()
	}
	if err := b.setup(ptx); err != nil {
		b.release()
		return nil, err
	}
	return b, nil
}

// openDevice finds CUDA device ordinal and reads what gantrain needs to know of it,
// refusing a device older than the kernels' MinComputeCapability.
func openDevice(ordinal int) (cu.Device, DeviceInfo, error) {
	var dev cu.Device
	n, err := cu.NumDevices()
	if err != nil {
		return dev, DeviceInfo{}, fmt.Errorf("cuda: count devices: %w", err)
	}
	if ordinal < 0 || ordinal >= n {
		return dev, DeviceInfo{}, fmt.Errorf("cuda: no device cuda:%d: this machine has %s", ordinal, plural(n, "CUDA device"))
	}
	if dev, err = cu.GetDevice(ordinal); err != nil {
		return dev, DeviceInfo{}, fmt.Errorf("cuda:%d: %w", ordinal, err)
	}
	info := DeviceInfo{Ordinal: ordinal, Driver: cu.Version(), Precision: "fp32"}
	if info.Name, err = dev.Name(); err != nil {
		return dev, info, fmt.Errorf("cuda:%d: device name: %w", ordinal, err)
	}
	for _, a := range []struct {
		attr cu.DeviceAttribute
		dst  *int
	}{
		{cu.ComputeCapabilityMajor, &info.Major},
		{cu.ComputeCapabilityMinor, &info.Minor},
		{cu.MultiprocessorCount, &info.SMs},
		{attrMaxSharedOptin, &info.MaxShared},
		{cu.ClockRate, &info.ClockKHz},
	} {
		if *a.dst, err = dev.Attribute(a.attr); err != nil {
			return dev, info, fmt.Errorf("cuda:%d (%s): device attribute: %w", ordinal, info.Name, err)
		}
	}
	if info.TotalMemory, err = dev.TotalMem(); err != nil {
		return dev, info, fmt.Errorf("cuda:%d (%s): total memory: %w", ordinal, info.Name, err)
	}
	if cc := info.Major*10 + info.Minor; cc < MinComputeCapability {
		return dev, info, fmt.Errorf("cuda:%d (%s) has compute capability %s; gantrain's kernels need %d.%d or newer (Ampere, Ada, Hopper)",
			ordinal, info.Name, info.ComputeCapability(), MinComputeCapability/10, MinComputeCapability%10)
	}
	return dev, info, nil
}

// initTuner sets up the matrix products' kernel choices (the autotuner, its cache
// file, or opt.Gemm) and the operations that launch through them.
func (b *Backend) initTuner(opt Options, ptx string) {
	b.tuneT.b = b
	b.tune = &tune.Tuner{Timing: opt.Autotune, Timer: &b.tuneT, Log: opt.Log,
		Device: kernels.Target{SMs: b.info.SMs, TF32: opt.TF32, MaxSharedBytes: b.info.MaxShared}}
	kd := b.tune.Device
	kd.Gemm = b.tune
	if opt.Gemm != nil {
		kd.Gemm = opt.Gemm
	}
	b.Core = ops.Core{Kind: "CUDA", Target: kd, Launch: b.run}
	if opt.TuneCache != "" {
		c, err := tune.OpenCache(opt.TuneCache, tune.Identity(b.info.Name, b.info.ComputeCapability(), b.info.Driver, ptx))
		if err != nil && opt.Log != nil {
			opt.Log.Warn("autotune cache unusable", "err", err)
		}
		b.tune.Cache = c
	}
}

// setup makes the context current, then creates the stream, loads the module and
// allocates the workspace. The caller holds the OS thread.
func (b *Backend) setup(ptx string) error {
	if err := cu.SetCurrentContext(b.ctx); err != nil {
		return fmt.Errorf("%s: set context: %w", b.where(), err)
	}
	var err error
	if b.stream, err = cu.MakeStream(cu.NonBlocking); err != nil {
		return fmt.Errorf("%s: create stream: %w", b.where(), err)
	}
	jitLog := &cu.JITErrorLogBuffer{Buffer: make([]byte, 16<<10)}
	if b.mod, err = cu.LoadDataEx(ptx, jitLog); err != nil {
		msg := strings.TrimSpace(string(bytes.TrimRight(jitLog.Buffer, "\x00")))
		return fmt.Errorf("%s: load the kernels' PTX (compute %s): %w\n%s", b.where(), b.info.ComputeCapability(), err, msg)
	}
	// Resolve every kernel of the module now, so that a launch never looks one up.
	for _, name := range entries(ptx) {
		if _, err := b.function(name); err != nil {
			return fmt.Errorf("%s: %w", b.where(), err)
		}
	}
	if n := kernels.WorkspaceBytes(b.Target); n > 0 {
		p, err := b.mem.alloc(b, int64(n), "the kernels' workspace")
		if err != nil {
			return err
		}
		b.Workspace = p
		// The split-K tile counters start at zero; every kernel leaves them so.
		off, bytes := kernels.CounterRegion()
		if err := cu.MemsetD32(cu.DevicePtr(p+uint64(off)), 0, int64(bytes/4)); err != nil {
			return fmt.Errorf("%s: zero the workspace's counters: %w", b.where(), err)
		}
	}
	return nil
}

// where names the device in errors: "cuda:0 (NVIDIA H100 80GB HBM3)".
func (b *Backend) where() string { return fmt.Sprintf("cuda:%d (%s)", b.info.Ordinal, b.info.Name) }

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// errClosed is the error of a call after Close.
var errClosed = errors.New("cuda: the backend is closed")

// enter locks the calling goroutine to its OS thread and makes the backend's context
// current there. The caller must call leave (runtime.UnlockOSThread) when done, also
// when enter fails.
func (b *Backend) enter() error {
	runtime.LockOSThread()
	if !b.open {
		return errClosed
	}
	if err := cu.SetCurrentContext(b.ctx); err != nil {
		return fmt.Errorf("%s: set context: %w", b.where(), err)
	}
	return nil
}

func leave() { runtime.UnlockOSThread() }

// Name implements backend.Backend.
func (b *Backend) Name() string { return "cuda" }

// Describe implements backend.Backend.
func (b *Backend) Describe() string {
	i := b.info
	return fmt.Sprintf("CUDA %s: %s, compute %s, %d SMs, %.1f GiB, %s matrix products, driver %d.%d",
		fmt.Sprintf("cuda:%d", i.Ordinal), i.Name, i.ComputeCapability(), i.SMs,
		float64(i.TotalMemory)/(1<<30), i.Precision, i.Driver/1000, i.Driver%1000/10)
}

// DeviceInfo returns what the backend runs on (for logs and metrics).
func (b *Backend) DeviceInfo() DeviceInfo { return b.info }

// Accelerator implements backend.AcceleratorReporter.
func (b *Backend) Accelerator() backend.Accelerator {
	i := b.info
	return backend.Accelerator{ID: fmt.Sprintf("cuda:%d", i.Ordinal), Name: i.Name, Compute: i.ComputeCapability(), Memory: i.TotalMemory}
}

// Queued implements backend.Queued: operations run on the backend's stream, and a
// Download waits for what was queued before it.
func (b *Backend) Queued() bool { return true }

// Memory returns the device memory in use (by every process) and the device's total,
// in bytes, from cuMemGetInfo.
func (b *Backend) Memory() (used, total int64) {
	if !b.open {
		return 0, b.info.TotalMemory
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if cu.SetCurrentContext(b.ctx) != nil {
		return 0, b.info.TotalMemory
	}
	free, total, err := cu.MemInfo()
	if err != nil {
		return 0, b.info.TotalMemory
	}
	return total - free, total
}

// Allocated returns the device memory this backend holds, in bytes.
func (b *Backend) Allocated() int64 { return b.mem.held }

// Err implements backend.Backend. It also picks up a fault the stream has reported
// (without waiting for queued work).
func (b *Backend) Err() error {
	if b.Failed() != nil || !b.open {
		return b.Failed()
	}
	defer leave()
	if err := b.enter(); err != nil {
		b.Fail(err)
	} else if err := b.stream.Query(); err != nil && !errors.Is(err, cu.NotReady) {
		b.Fail(b.fault(err))
	}
	return b.Failed()
}

// Sync implements backend.Backend.
func (b *Backend) Sync() error {
	b.flush()
	defer leave()
	if err := b.enter(); err != nil {
		b.Fail(err)
	} else if b.Failed() == nil {
		b.sync()
	}
	return b.Failed()
}

// sync waits for the stream, recording a fault; the caller is inside enter.
func (b *Backend) sync() {
	if err := b.stream.Synchronize(); err != nil {
		b.Fail(b.fault(err))
	}
}

// fault wraps an error the stream reported: a kernel failed after its launch.
func (b *Backend) fault(err error) error {
	return fmt.Errorf("%s: a queued kernel failed: %w (compute-sanitizer --tool memcheck finds which)", b.where(), err)
}

// Close implements backend.Backend: it waits for queued work, then frees every
// allocation, the module and the stream, and releases the context. The backend is
// unusable afterwards; Close again does nothing.
func (b *Backend) Close() error {
	if !b.open {
		return nil
	}
	b.flush()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var errs []error
	if err := cu.SetCurrentContext(b.ctx); err != nil {
		errs = append(errs, err)
	} else if err := b.stream.Synchronize(); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, b.release())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%s: close: %w", b.where(), err)
	}
	return nil
}

// release frees what setup made, in reverse; the caller holds the OS thread.
func (b *Backend) release() error {
	b.open = false
	var errs []error
	if err := cu.SetCurrentContext(b.ctx); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, b.mem.free())
	if b.timer != nil {
		b.timer.destroy()
		b.timer = nil
	}
	if b.graphs != nil {
		b.graphs.free()
		b.graphs = nil
	}
	b.tuneT.destroy()
	var zeroMod cu.Module
	if b.mod != zeroMod {
		errs = append(errs, b.mod.Unload())
		b.mod = zeroMod
	}
	var zeroStream cu.Stream
	if b.stream != zeroStream {
		errs = append(errs, b.stream.Destroy())
	}
	errs = append(errs, b.dev.ReleasePrimaryCtx())
	clear(b.fns)
	return errors.Join(errs...)
}

// function returns the kernel name of the module, looked up once.
func (b *Backend) function(name string) (cu.Function, error) {
	if f, ok := b.fns[name]; ok {
		return f, nil
	}
	f, err := b.mod.Function(name)
	if err != nil {
		return f, fmt.Errorf("kernel %s not in the module: %w", name, err)
	}
	b.fns[name] = f
	return f, nil
}

// entries lists the kernels (".entry name(") a PTX module defines.
func entries(ptx string) []string {
	var names []string
	for _, line := range strings.Split(ptx, "\n") {
		f := strings.Fields(line)
		for i := 0; i+1 < len(f); i++ {
			if f[i] == ".entry" {
				name, _, _ := strings.Cut(f[i+1], "(")
				names = append(names, name)
				break
			}
		}
	}
	return names
}

// Devices returns the number of CUDA devices.
func Devices() (int, error) { return cu.NumDevices() }
