//go:build !purego

package vec

import "golang.org/x/sys/cpu"

// hasAVX2 is read once: the CPU does not change under a running process.
var hasAVX2 = cpu.X86.HasAVX2

// bulk is how many leading elements of n the vector forms take: a multiple of their
// eight lanes, or none without AVX2.
func bulk(n int) int {
	if !hasAVX2 {
		return 0
	}
	return n &^ 7
}

// The vector forms (vec_amd64.s) take n > 0, a multiple of 8.

//go:noescape
func addAsm(dst, src *float32, n int)

//go:noescape
func biasReLUAsm(z, bias *float32, n int)

//go:noescape
func biasLeakyReLUAsm(z, bias *float32, n int, alpha float32)

//go:noescape
func gradReLUAsm(dy, y *float32, n int)

//go:noescape
func gradLeakyReLUAsm(dy, y *float32, n int, alpha float32)

//go:noescape
func gradSigmoidAsm(dy, y *float32, n int)

//go:noescape
func gradTanhAsm(dy, y *float32, n int)

//go:noescape
func accF64Asm(acc *float64, x *float32, n int)

//go:noescape
func accSqDevAsm(acc *float64, x *float32, mu *float64, n int)

//go:noescape
func normalizeAsm(y, x, mean, inv, gamma *float32, n int)

//go:noescape
func bnGradSumsAsm(sb, sg *float64, d, x, mean, inv *float32, n int)

//go:noescape
func bnGradInputAsm(dx, d, x, mean, inv, k, mb, mg *float32, n int)
