package kernels

import (
	_ "embed"
	"fmt"
)

//go:generate sh gen.sh

// The PTX modules, built from all.cu by gen.sh with Debian's nvcc 11.8.
var (
	//go:embed ptx/compute_80.ptx
	ptx80 string
	//go:embed ptx/compute_90.ptx
	ptx90 string
)

// PTX returns the PTX module for a device of compute capability major.minor: the
// compute_90 module for 9.0 and newer (Hopper), compute_80 for 8.x (Ampere, Ada).
// Older devices are refused: the kernels use sm_80 features (mma.sync tf32).
func PTX(major, minor int) (string, error) {
	switch {
	case major >= 9:
		return ptx90, nil
	case major == 8:
		return ptx80, nil
	}
	return "", fmt.Errorf("kernels: compute capability %d.%d: needs compute capability 8.0 or newer (Ampere)", major, minor)
}
