//go:build !nocuda

package gpu

// Driver calls that gorgonia.org/cu v0.9.6 does not wrap. cu's handle types are
// structs holding exactly the C handle (unexported); the assertions below make the
// build fail if that ever changes, instead of the conversions reading garbage.

/*
#cgo LDFLAGS: -lcuda
#include <cuda.h>

static CUresult gantrainSetMaxDynamicShared(CUfunction f, int bytes) {
	return cuFuncSetAttribute(f, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, bytes);
}
*/
import "C"

import (
	"fmt"
	"unsafe"

	"gorgonia.org/cu"
)

// defaultSharedLimit is the dynamic shared memory a launch may use without opting in.
const defaultSharedLimit = 48 << 10

// attrMaxSharedOptin is the most shared memory a block may have after opting in
// (cu does not name this attribute).
const attrMaxSharedOptin = cu.DeviceAttribute(C.CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN)

// cu.Function and cu.Stream are one C pointer each.
var (
	_ [unsafe.Sizeof(cu.Function{}) - unsafe.Sizeof(C.CUfunction(nil))]struct{}
	_ [unsafe.Sizeof(C.CUfunction(nil)) - unsafe.Sizeof(cu.Function{})]struct{}
	_ [unsafe.Sizeof(cu.Stream{}) - unsafe.Sizeof(C.CUstream(nil))]struct{}
	_ [unsafe.Sizeof(C.CUstream(nil)) - unsafe.Sizeof(cu.Stream{})]struct{}
)

func cFunction(f cu.Function) C.CUfunction { return *(*C.CUfunction)(unsafe.Pointer(&f)) }
func cStream(s cu.Stream) C.CUstream       { return *(*C.CUstream)(unsafe.Pointer(&s)) }

// driverError is a CUresult that cu's own error type does not cover here.
type driverError C.CUresult

func (e driverError) Error() string {
	var name, desc *C.char
	C.cuGetErrorName(C.CUresult(e), &name)
	C.cuGetErrorString(C.CUresult(e), &desc)
	if name == nil {
		return fmt.Sprintf("CUDA error %d", int(e))
	}
	if desc == nil {
		return C.GoString(name)
	}
	return C.GoString(name) + ": " + C.GoString(desc)
}

func check(r C.CUresult) error {
	if r == C.CUDA_SUCCESS {
		return nil
	}
	return driverError(r)
}

// setMaxDynamicShared lets f launch with up to bytes of dynamic shared memory (over
// 48 KiB needs this opt-in on sm_80+).
func setMaxDynamicShared(f cu.Function, bytes int) error {
	return check(C.gantrainSetMaxDynamicShared(cFunction(f), C.int(bytes)))
}
