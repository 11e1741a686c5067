// Package cpu is the CPU implementation of backend.Backend and the readable
// specification of every operation: the GPU kernels are tested against it.
//
// Matrix products go to package blas (OpenBLAS when installed, pure Go otherwise);
// everything else is plain loops in float32, with float64 accumulation for
// reductions. The backend is deterministic: the same calls give the same bits.
package cpu

import (
	"fmt"
	"math"
	"runtime"

	"github.com/gantrain/gantrain/backend"
	"github.com/gantrain/gantrain/blas"
)

// Options configure the CPU backend.
type Options struct {
	// BLAS chooses the matrix-multiply library: one of blas.Libraries().
	BLAS string
	// Threads is the number of threads the backend computes on, matrix products
	// included (0: one per CPU that Go may use, GOMAXPROCS).
	Threads int
}

// Backend is the CPU backend. It is not safe for concurrent use: like a device
// stream, one goroutine drives it.
type Backend struct {
	gemm  blas.Sgemm
	pool  *pool
	ops   backend.Operands[*tensor] // operand unwrapping and the first error
	acc   []float64                 // scratch for column sums, grown on first use (scratch64)
	acc32 []float32                 // scratch for per-channel values, grown on first use (scratch32)
}

var _ backend.Backend = (*Backend)(nil)

// New returns a CPU backend. Its worker goroutines end with Close (or when the
// backend is garbage).
func New(opt Options) (*Backend, error) {
	if opt.Threads < 0 {
		return nil, fmt.Errorf("cpu backend: threads must be ≥ 0, got %d", opt.Threads)
	}
	// The library computes on one thread: the backend splits each product between
	// its own workers (see gemm), so no BLAS thread pool competes with them.
	g, err := blas.Open(blas.Options{Library: opt.BLAS})
	if err != nil {
		return nil, fmt.Errorf("cpu backend: %w", err)
	}
	workers := opt.Threads
	if workers == 0 {
		workers = defaultWorkers()
	}
	b := &Backend{gemm: g, pool: newPool(workers)}
	b.ops.Own = own
	runtime.AddCleanup(b, func(p *pool) { p.close() }, b.pool)
	return b, nil
}

// tensor is the CPU tensor: a slice of its allocation.
type tensor struct {
	rows, cols int
	dt         backend.DType
	f          []float32
	i          []int32
}

func (t *tensor) Rows() int                { return t.rows }
func (t *tensor) Cols() int                { return t.cols }
func (t *tensor) DType() backend.DType     { return t.dt }
func (t *tensor) String() string           { return backend.ShapeString(t) }
func (t *tensor) len() int                 { return t.rows * t.cols }
func (t *tensor) row(r int) []float32      { return t.f[r*t.cols : (r+1)*t.cols] }
func (t *tensor) sameShape(u *tensor) bool { return t.rows == u.rows && t.cols == u.cols }

// Name implements backend.Backend.
func (b *Backend) Name() string { return "cpu" }

// Describe implements backend.Backend.
func (b *Backend) Describe() string {
	return fmt.Sprintf("CPU, %d threads, matrix products by %s", b.pool.n, b.gemm.Name())
}

// Err implements backend.Backend.
func (b *Backend) Err() error { return b.ops.First() }

// Sync implements backend.Backend; CPU work is never queued.
func (b *Backend) Sync() error { return b.ops.First() }

// Close implements backend.Backend: it ends the worker goroutines. The backend must
// not be used after.
func (b *Backend) Close() error {
	b.pool.close()
	return nil
}

// own unwraps a tensor made by a CPU backend.
func own(x backend.Tensor) (*tensor, error) {
	t, ok := x.(*tensor)
	if !ok || t == nil {
		return nil, fmt.Errorf("tensor %T was not made by the CPU backend", x)
	}
	return t, nil
}

// Alloc implements backend.Backend.
func (b *Backend) Alloc(dt backend.DType, rows, cols int) (backend.Tensor, error) {
	if rows < 0 || cols < 0 || (cols > 0 && rows > math.MaxInt32/cols) {
		return nil, fmt.Errorf("cpu alloc: bad shape %d×%d", rows, cols)
	}
	t := &tensor{rows: rows, cols: cols, dt: dt}
	switch dt {
	case backend.F32:
		t.f = make([]float32, rows*cols)
	case backend.I32:
		t.i = make([]int32, rows*cols)
	default:
		return nil, fmt.Errorf("cpu alloc: unknown dtype %s", dt)
	}
	return t, nil
}

// View implements backend.Backend.
func (b *Backend) View(x backend.Tensor, offset, rows, cols int) (backend.Tensor, error) {
	t, ok := x.(*tensor)
	if !ok {
		return nil, fmt.Errorf("cpu view: tensor %T was not made by the CPU backend", x)
	}
	if offset < 0 || rows < 0 || cols < 0 || offset > t.len() || (cols > 0 && rows > (t.len()-offset)/cols) {
		return nil, fmt.Errorf("cpu view: %d×%d at offset %d does not fit in %s", rows, cols, offset, t)
	}
	v := &tensor{rows: rows, cols: cols, dt: t.dt}
	n := rows * cols
	if t.dt == backend.F32 {
		v.f = t.f[offset : offset+n : offset+n]
	} else {
		v.i = t.i[offset : offset+n : offset+n]
	}
	return v, nil
}

// Upload implements backend.Backend.
func (b *Backend) Upload(dst backend.Tensor, src any) error {
	t, ok := dst.(*tensor)
	if !ok {
		return fmt.Errorf("cpu upload: tensor %T was not made by the CPU backend", dst)
	}
	switch s := src.(type) {
	case []float32:
		if t.dt != backend.F32 || len(s) != t.len() {
			return fmt.Errorf("cpu upload: %d float32 values into %s", len(s), t)
		}
		copy(t.f, s)
	case []int32:
		if t.dt != backend.I32 || len(s) != t.len() {
			return fmt.Errorf("cpu upload: %d int32 values into %s", len(s), t)
		}
		copy(t.i, s)
	default:
		return fmt.Errorf("cpu upload: unsupported source %T", src)
	}
	return nil
}

// Download implements backend.Backend.
func (b *Backend) Download(dst any, src backend.Tensor) error {
	if b.ops.First() != nil {
		return b.ops.First()
	}
	t, ok := src.(*tensor)
	if !ok {
		return fmt.Errorf("cpu download: tensor %T was not made by the CPU backend", src)
	}
	switch d := dst.(type) {
	case []float32:
		if t.dt != backend.F32 || len(d) != t.len() {
			return fmt.Errorf("cpu download: %s into %d float32 values", t, len(d))
		}
		copy(d, t.f)
	case []int32:
		if t.dt != backend.I32 || len(d) != t.len() {
			return fmt.Errorf("cpu download: %s into %d int32 values", t, len(d))
		}
		copy(d, t.i)
	default:
		return fmt.Errorf("cpu download: unsupported destination %T", dst)
	}
	return nil
}

// Fill implements backend.Backend.
func (b *Backend) Fill(x backend.Tensor, v float32) {
	ts, ok := b.ops.F32("Fill", x)
	if !ok {
		return
	}
	for i := range ts[0].f {
		ts[0].f[i] = v
	}
}

// Copy implements backend.Backend.
func (b *Backend) Copy(dst, src backend.Tensor) {
	ts, ok := b.ops.F32("Copy", dst, src)
	if !ok || !b.ops.Check(backend.CheckCopy(dst, src)) {
		return
	}
	copy(ts[0].f, ts[1].f)
}

// Mul implements backend.Backend.
func (b *Backend) Mul(y, a, c backend.Tensor) {
	ts, ok := b.ops.F32("Mul", y, a, c)
	if !ok || !b.ops.Check(backend.CheckMul(y, a, c)) {
		return
	}
	yf, af, cf := ts[0].f, ts[1].f[:len(ts[0].f)], ts[2].f[:len(ts[0].f)]
	for i := range yf {
		yf[i] = af[i] * cf[i]
	}
}
