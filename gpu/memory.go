//go:build !nocuda

package gpu

import (
	"errors"
	"fmt"
	"unsafe"

	"gorgonia.org/cu"

	"github.com/gantrain/gantrain/backend"
	"github.com/gantrain/gantrain/gpu/internal/ops"
)

// align is the alignment of every allocation carved from a chunk, in bytes: what
// cuMemAlloc guarantees, so that a tensor's start suits any vector load.
const align = 256

// arena hands out device memory carved from large allocations. Nothing is ever
// returned to it before Close: the trainer allocates everything once, at setup.
type arena struct {
	chunk  int64 // size of a shared chunk
	limit  int64 // cap on held (0: none)
	held   int64 // bytes allocated from the device
	blocks []cu.DevicePtr
	next   uint64 // free range of the current chunk: [next, next+left)
	left   int64
}

// alloc returns n bytes of device memory, 256-byte aligned; what names the request in
// an out-of-memory error. The caller holds the context.
func (a *arena) alloc(b *Backend, n int64, what string) (uint64, error) {
	n = (n + align - 1) / align * align
	if n == 0 {
		n = align
	}
	if n <= a.left {
		p := a.next
		a.next += uint64(n)
		a.left -= n
		return p, nil
	}
	// A new chunk, unless the request is large (then it gets its own allocation) or a
	// chunk no longer fits where the request alone would.
	size := a.chunk
	if n > size/2 {
		size = n
	}
	free, total, err := cu.MemInfo()
	if err != nil {
		return 0, fmt.Errorf("%s: allocate %s: memory info: %w", b.where(), what, err)
	}
	if size != n && (size > free || (a.limit > 0 && a.held+size > a.limit)) {
		size = n
	}
	if a.limit > 0 && a.held+size > a.limit {
		return 0, fmt.Errorf("%s: %w: %s needs %s; the backend's memory limit is %s and it holds %s",
			b.where(), ErrOutOfMemory, what, bytesString(n), bytesString(a.limit), bytesString(a.held))
	}
	if size > free {
		return 0, fmt.Errorf("%s: %w: %s needs %s; %s free of %s (this backend holds %s)",
			b.where(), ErrOutOfMemory, what, bytesString(n), bytesString(free), bytesString(total), bytesString(a.held))
	}
	p, err := cu.MemAlloc(size)
	if err != nil {
		if errors.Is(err, cu.OutOfMemory) {
			return 0, fmt.Errorf("%s: %w: %s needs %s; %s free of %s (this backend holds %s)",
				b.where(), ErrOutOfMemory, what, bytesString(n), bytesString(free), bytesString(total), bytesString(a.held))
		}
		return 0, fmt.Errorf("%s: allocate %s for %s: %w", b.where(), bytesString(size), what, err)
	}
	a.blocks = append(a.blocks, p)
	a.held += size
	if size > n {
		a.next, a.left = uint64(p)+uint64(n), size-n
	}
	return uint64(p), nil
}

// free returns every allocation to the device; the caller holds the context.
func (a *arena) free() error {
	var errs []error
	for _, p := range a.blocks {
		errs = append(errs, cu.MemFree(p))
	}
	a.blocks, a.held, a.next, a.left = nil, 0, 0, 0
	return errors.Join(errs...)
}

func bytesString(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// Alloc implements backend.Backend: the tensor is carved from the backend's chunks and
// zeroed on the stream.
func (b *Backend) Alloc(dt backend.DType, rows, cols int) (backend.Tensor, error) {
	if !ops.CheckShape(rows, cols) {
		return nil, fmt.Errorf("cuda alloc: bad shape %d×%d", rows, cols)
	}
	if dt != backend.F32 && dt != backend.I32 {
		return nil, fmt.Errorf("cuda alloc: unknown dtype %s", dt)
	}
	b.flush()
	defer leave()
	if err := b.enter(); err != nil {
		return nil, fmt.Errorf("cuda alloc: %w", err)
	}
	p, err := b.mem.alloc(b, int64(rows)*int64(cols)*4, fmt.Sprintf("a %d×%d %s tensor", rows, cols, dt))
	if err != nil {
		return nil, err
	}
	t := b.NewTensor(dt, rows, cols, p)
	if n := t.Len(); n > 0 {
		if err := cu.MemsetD32Async(cu.DevicePtr(p), 0, int64(n), b.stream); err != nil {
			return nil, fmt.Errorf("%s: zero a %d×%d tensor: %w", b.where(), rows, cols, err)
		}
	}
	return t, nil
}

// Upload implements backend.Backend. The copy is queued on the stream after all
// queued work and waited for, so src may be reused at once.
func (b *Backend) Upload(dst backend.Tensor, src any) error {
	t, err := b.Own(dst, "upload")
	if err != nil {
		return err
	}
	var host unsafe.Pointer
	switch s := src.(type) {
	case []float32:
		if t.DType() != backend.F32 || len(s) != t.Len() {
			return fmt.Errorf("cuda upload: %d float32 values into %s", len(s), t)
		}
		if len(s) > 0 {
			host = unsafe.Pointer(&s[0])
		}
	case []int32:
		if t.DType() != backend.I32 || len(s) != t.Len() {
			return fmt.Errorf("cuda upload: %d int32 values into %s", len(s), t)
		}
		if len(s) > 0 {
			host = unsafe.Pointer(&s[0])
			t.Uploaded(s)
		}
	default:
		return fmt.Errorf("cuda upload: unsupported source %T", src)
	}
	if host == nil {
		return nil
	}
	b.flush()
	defer leave()
	if err := b.enter(); err != nil {
		return fmt.Errorf("cuda upload: %w", err)
	}
	if err := cu.MemcpyHtoDAsync(cu.DevicePtr(t.Ptr()), host, t.Bytes(), b.stream); err != nil {
		err = fmt.Errorf("%s: upload %s: %w", b.where(), t, err)
		b.Fail(err)
		return err
	}
	if err := b.stream.Synchronize(); err != nil {
		err = b.fault(err)
		b.Fail(err)
		return err
	}
	return nil
}

// Download implements backend.Backend: it returns the first recorded error, else
// waits for queued work and copies.
func (b *Backend) Download(dst any, src backend.Tensor) error {
	if b.Failed() != nil {
		return b.Failed()
	}
	t, err := b.Own(src, "download")
	if err != nil {
		return err
	}
	var host unsafe.Pointer
	switch d := dst.(type) {
	case []float32:
		if t.DType() != backend.F32 || len(d) != t.Len() {
			return fmt.Errorf("cuda download: %s into %d float32 values", t, len(d))
		}
		if len(d) > 0 {
			host = unsafe.Pointer(&d[0])
		}
	case []int32:
		if t.DType() != backend.I32 || len(d) != t.Len() {
			return fmt.Errorf("cuda download: %s into %d int32 values", t, len(d))
		}
		if len(d) > 0 {
			host = unsafe.Pointer(&d[0])
		}
	default:
		return fmt.Errorf("cuda download: unsupported destination %T", dst)
	}
	b.flush()
	defer leave()
	if err := b.enter(); err != nil {
		return fmt.Errorf("cuda download: %w", err)
	}
	if host != nil {
		if err := cu.MemcpyDtoHAsync(host, cu.DevicePtr(t.Ptr()), t.Bytes(), b.stream); err != nil {
			b.Fail(fmt.Errorf("%s: download %s: %w", b.where(), t, err))
		}
	}
	b.sync()
	return b.Failed()
}
