// Package kernels holds gantrain's CUDA kernels (the .cu files beside this one), their
// PTX for compute_80 and compute_90 (ptx/, embedded; rebuilt by `go generate ./kernels`)
// and, for every backend operation, a builder that turns device addresses and sizes
// into the list of kernel launches that computes it. The launch geometry lives here,
// beside the kernel code, so that the shim tests (kernels/shimtest), which run the same
// .cu sources on CPU threads, exercise exactly the launches a GPU gets.
//
// The package is pure Go: it knows nothing of the driver. The GPU backend (package gpu)
// loads the module returned by PTX, resolves each Launch.Kernel once, and launches the
// lists the builders return, in order, on one stream.
//
// Conventions shared by every builder:
//   - Tensors are row-major and contiguous; addresses are device pointers (uint64).
//     A zero address means "nil" where an argument is documented as optional.
//   - Shapes were validated by the backend; builders do not check them again. Sizes are
//     element counts and must fit in an int32 (a builder panics otherwise).
//   - ws is the address of the workspace: one scratch buffer of WorkspaceBytes(d) bytes,
//     allocated once, aligned to 256 bytes. A launch list may use all of it; consecutive
//     lists may reuse it because one stream serialises them.
//   - Only gemm.cu's kernels use dynamic shared memory (Launch.SharedBytes) and atomics
//     (one counter per tile of a split product, to find the block that finishes it):
//     every result, reductions included, is deterministic for a given Target and
//     matrix-product choice.
package kernels

import (
	"fmt"
	"math"
)

// ArgKind is the C type of one kernel parameter.
type ArgKind uint8

// Argument kinds. The kernel parameter is, in C:
const (
	ArgPtr   ArgKind = iota // a device pointer (8 bytes); Bits is the address
	ArgInt                  // int (int32, 4 bytes); Bits holds the value's 32 bits
	ArgFloat                // float (4 bytes); Bits holds math.Float32bits of the value
	ArgU64                  // unsigned long long (8 bytes); Bits is the value
)

func (k ArgKind) String() string {
	switch k {
	case ArgPtr:
		return "ptr"
	case ArgInt:
		return "int"
	case ArgFloat:
		return "float"
	case ArgU64:
		return "u64"
	}
	return fmt.Sprintf("argkind(%d)", uint8(k))
}

// Arg is one kernel parameter. To launch, store it in memory of its kind's C size
// (uint64 for ArgPtr and ArgU64, uint32 for ArgInt and ArgFloat) and pass that
// memory's address in the kernel parameter array.
type Arg struct {
	Kind ArgKind
	Bits uint64
}

// Ptr is a device-pointer argument.
func Ptr(p uint64) Arg { return Arg{ArgPtr, p} }

// Int is an int32 argument.
func Int(v int32) Arg { return Arg{ArgInt, uint64(uint32(v))} }

// Float is a float32 argument.
func Float(f float32) Arg { return Arg{ArgFloat, uint64(math.Float32bits(f))} }

// U64 is an unsigned 64-bit argument (random stream seeds and offsets).
func U64(v uint64) Arg { return Arg{ArgU64, v} }

// Int32 returns v as a uint32 word (what to store for an ArgInt or ArgFloat).
func (a Arg) Int32() uint32 { return uint32(a.Bits) }

// Launch is one kernel launch: the kernel's name in the PTX module (an extern "C"
// symbol), its grid and block dimensions, the dynamic shared memory and its
// parameters in order.
type Launch struct {
	Kernel      string
	Grid, Block [3]uint32
	SharedBytes uint32
	Args        []Arg
}

func (l Launch) String() string {
	return fmt.Sprintf("%s<<<(%d,%d,%d),(%d,%d,%d)>>>(%d args)", l.Kernel,
		l.Grid[0], l.Grid[1], l.Grid[2], l.Block[0], l.Block[1], l.Block[2], len(l.Args))
}

// Target is the device a launch plan is built for.
type Target struct {
	// SMs is the number of streaming multiprocessors; split-K and grid sizes are chosen
	// to give every one of them work. Zero means "unknown" and plans for one.
	SMs int
	// TF32 selects the tensor-core path (mma.sync m16n8k8 tf32, sm_80+) for the dense
	// layers' matrix products; false is plain fp32.
	TF32 bool
	// MaxSharedBytes is the shared memory a block may have (after opting in); 0:
	// unknown, no limit is applied.
	MaxSharedBytes int
	// Gemm chooses each matrix product's kernel configuration (gemm.go); nil:
	// DefaultGemm.
	Gemm GemmChooser
}

// WorkspaceBytes is the size of the one scratch buffer the backend allocates at start
// for the builders (split-K partial products, per-block partial sums of reductions,
// column norms, and the split-K tile counters of CounterRegion, which must start
// zero). Every builder's plan fits in it.
func WorkspaceBytes(d Target) int {
	return partialBytes + 4*counterWords
}

// i32 converts a size to a kernel int argument.
func i32(v int) Arg {
	if v < math.MinInt32 || v > math.MaxInt32 {
		panic(fmt.Sprintf("kernels: size %d does not fit in an int32", v))
	}
	return Int(int32(v))
}

// cdiv is ⌈a/b⌉ for positive b.
func cdiv(a, b int) int { return (a + b - 1) / b }

// dim is a [3]uint32 grid or block dimension.
func dim(x, y, z int) [3]uint32 { return [3]uint32{uint32(x), uint32(y), uint32(z)} }
