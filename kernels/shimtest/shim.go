//go:build cgo

// Package shimtest runs the CUDA kernels of package kernels on CPU threads, through the
// C++ shim (kernels/shim/cuda_shim.h), and checks every builder's launch list against
// the CPU backend. It exists for its tests; Run and the memory helpers are exported
// for them.
package shimtest

/*
#cgo CXXFLAGS: -std=c++20 -O2 -pthread -Wall -Wno-unknown-pragmas
#cgo LDFLAGS: -pthread -lm
#include <stdint.h>
#include <stdlib.h>
int gt_run_kernel(const char* name, const unsigned int* grid, const unsigned int* block, unsigned int shared,
                  int nargs, const uint8_t* kinds, const uint64_t* bits, char* err, int errlen);
int gt_kernel_count(void);
const char* gt_kernel_name(int i);
const char* gt_sources_sha256(void);
void gt_go_log_batch(const double* x, double* y, int n);
void gt_go_cos_batch(const double* x, double* y, int n);
float gt_to_tf32_host(float x);
void gt_set_cp_async_eager(int eager);
*/
import "C"

import (
	"fmt"
	"unsafe"

	"github.com/gantrain/gantrain/kernels"
)

// Run executes the launches in order on the shim; pointers are host addresses.
func Run(ls []kernels.Launch) error {
	for _, l := range ls {
		if l.SharedBytes > maxSharedBytes {
			return fmt.Errorf("%v: %d B of dynamic shared memory, more than a block may have (%d)", l, l.SharedBytes, maxSharedBytes)
		}
		for i, g := range l.Grid {
			if g == 0 || (i > 0 && g > 65535) || g > 1<<31-1 {
				return fmt.Errorf("%v: grid dimension %d out of range", l, i)
			}
		}
		if t := l.Block[0] * l.Block[1] * l.Block[2]; t == 0 || t > 1024 || t%32 != 0 {
			return fmt.Errorf("%v: %d threads per block (want a multiple of 32, at most 1024)", l, t)
		}
		n := len(l.Args)
		kinds := (*C.uint8_t)(C.malloc(C.size_t(n + 1)))
		bits := (*C.uint64_t)(C.malloc(C.size_t(8 * (n + 1))))
		ks := unsafe.Slice((*uint8)(unsafe.Pointer(kinds)), n+1)
		bs := unsafe.Slice((*uint64)(unsafe.Pointer(bits)), n+1)
		for i, a := range l.Args {
			ks[i], bs[i] = uint8(a.Kind), a.Bits
		}
		name := C.CString(l.Kernel)
		grid := (*C.uint)(C.malloc(3 * 4))
		block := (*C.uint)(C.malloc(3 * 4))
		copy(unsafe.Slice((*uint32)(unsafe.Pointer(grid)), 3), l.Grid[:])
		copy(unsafe.Slice((*uint32)(unsafe.Pointer(block)), 3), l.Block[:])
		errbuf := (*C.char)(C.malloc(512))
		rc := C.gt_run_kernel(name, grid, block, C.uint(l.SharedBytes), C.int(n), kinds, bits, errbuf, 512)
		msg := C.GoString(errbuf)
		for _, p := range []unsafe.Pointer{unsafe.Pointer(kinds), unsafe.Pointer(bits), unsafe.Pointer(name),
			unsafe.Pointer(grid), unsafe.Pointer(block), unsafe.Pointer(errbuf)} {
			C.free(p)
		}
		if rc != 0 {
			return fmt.Errorf("%v: %s", l, msg)
		}
	}
	return nil
}

// maxSharedBytes is the most shared memory a block may have on the devices the kernels
// are built for (sm_90's 227 KiB; sm_80 allows 163 KiB).
const maxSharedBytes = 227 << 10

// SetCopyMode chooses when the shim's cp.async copies land: at the wait that covers
// them (eager false, the default) or at their issue (eager true). A kernel must be
// right in both; see cuda_shim.h.
func SetCopyMode(eager bool) {
	e := 0
	if eager {
		e = 1
	}
	C.gt_set_cp_async_eager(C.int(e))
}

// KernelNames lists the kernels the shim was built with.
func KernelNames() []string {
	n := int(C.gt_kernel_count())
	names := make([]string, n)
	for i := range names {
		names[i] = C.GoString(C.gt_kernel_name(C.int(i)))
	}
	return names
}

// SourcesSHA256 is the hash of the kernel sources the shim was built from (srchash.h).
func SourcesSHA256() string { return C.GoString(C.gt_sources_sha256()) }

// Mem is host memory outside Go's heap, so that its address can be a kernel argument.
type Mem struct {
	p     unsafe.Pointer
	words int
}

// Alloc returns n 4-byte words of C memory (plus one guard word), zeroed.
func Alloc(n int) *Mem {
	p := C.calloc(C.size_t(n+1), 4)
	return &Mem{p: p, words: n}
}

// Free releases m.
func (m *Mem) Free() { C.free(m.p) }

// Addr is m's address as a kernel pointer argument.
func (m *Mem) Addr() uint64 { return uint64(uintptr(m.p)) }

// F32 is m as float32s.
func (m *Mem) F32() []float32 { return unsafe.Slice((*float32)(m.p), m.words) }

// I32 is m as int32s.
func (m *Mem) I32() []int32 { return unsafe.Slice((*int32)(m.p), m.words) }

// GoLog and GoCos run the shim's ports of Go's math.Log and math.Cos (philox.cuh) on xs.
func GoLog(xs []float64) []float64 { return batch(xs, true) }

// GoCos: see GoLog.
func GoCos(xs []float64) []float64 { return batch(xs, false) }

func batch(xs []float64, log bool) []float64 {
	n := len(xs)
	in := C.malloc(C.size_t(8 * max(n, 1)))
	out := C.malloc(C.size_t(8 * max(n, 1)))
	defer C.free(in)
	defer C.free(out)
	copy(unsafe.Slice((*float64)(in), n), xs)
	if log {
		C.gt_go_log_batch((*C.double)(in), (*C.double)(out), C.int(n))
	} else {
		C.gt_go_cos_batch((*C.double)(in), (*C.double)(out), C.int(n))
	}
	return append([]float64(nil), unsafe.Slice((*float64)(out), n)...)
}

// ToTF32 is common.cuh's gt_to_tf32: x as the tensor cores read it in tf32 mode.
func ToTF32(x float32) float32 { return float32(C.gt_to_tf32_host(C.float(x))) }
