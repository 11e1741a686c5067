//go:build !purego

#include "textflag.h"

// The AVX2 forms of the loops in generic.go, eight float32 lanes (or two times four
// float64 lanes) an iteration. Each takes n > 0, a multiple of 8, and indexes its
// operands with AX, counting elements. No fused multiply-adds: every operation is
// rounded as in the Go form. (Go's operand order: sources reversed, destination last;
// VSUBPS B, A, D is D = A − B.)

// NEXT_OR_RETURN advances AX by the eight elements of an iteration and goes back to
// label while elements remain; then it clears the upper halves of the vector
// registers (no AVX–SSE transition penalty in the caller) and returns.
#define NEXT_OR_RETURN(label) ADDQ $8, AX; CMPQ AX, CX; JLT label; VZEROUPPER; RET

DATA one<>+0(SB)/4, $0x3f800000 // 1.0
GLOBL one<>(SB), RODATA|NOPTR, $4

// func addAsm(dst, src *float32, n int)
TEXT ·addAsm(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	XORQ AX, AX
loop:
	VMOVUPS (DI)(AX*4), Y0
	VADDPS  (SI)(AX*4), Y0, Y0
	VMOVUPS Y0, (DI)(AX*4)
	NEXT_OR_RETURN(loop)

// func biasReLUAsm(z, bias *float32, n int)
// VMAXPS returns its second source when either is NaN or both are zero: with v as
// that source a NaN stays NaN, and adding +0 then turns a −0 into Go's +0.
TEXT ·biasReLUAsm(SB), NOSPLIT, $0-24
	MOVQ z+0(FP), DI
	MOVQ bias+8(FP), SI
	MOVQ n+16(FP), CX
	XORQ AX, AX
	VXORPS Y7, Y7, Y7
loop:
	VMOVUPS (DI)(AX*4), Y0
	VADDPS  (SI)(AX*4), Y0, Y0
	VMAXPS  Y0, Y7, Y0
	VADDPS  Y7, Y0, Y0
	VMOVUPS Y0, (DI)(AX*4)
	NEXT_OR_RETURN(loop)

// func biasLeakyReLUAsm(z, bias *float32, n int, alpha float32)
TEXT ·biasLeakyReLUAsm(SB), NOSPLIT, $0-28
	MOVQ z+0(FP), DI
	MOVQ bias+8(FP), SI
	MOVQ n+16(FP), CX
	VBROADCASTSS alpha+24(FP), Y6
	XORQ AX, AX
	VXORPS Y7, Y7, Y7
loop:
	VMOVUPS   (DI)(AX*4), Y0
	VADDPS    (SI)(AX*4), Y0, Y0 // v
	VMULPS    Y6, Y0, Y1         // v·alpha
	VCMPPS    $1, Y7, Y0, Y2     // v < 0 (LT_OS)
	VBLENDVPS Y2, Y1, Y0, Y0     // v < 0 ? v·alpha : v
	VMOVUPS   Y0, (DI)(AX*4)
	NEXT_OR_RETURN(loop)

// func gradReLUAsm(dy, y *float32, n int)
TEXT ·gradReLUAsm(SB), NOSPLIT, $0-24
	MOVQ dy+0(FP), DI
	MOVQ y+8(FP), SI
	MOVQ n+16(FP), CX
	XORQ AX, AX
	VXORPS Y7, Y7, Y7
loop:
	VMOVUPS (SI)(AX*4), Y1
	VCMPPS  $2, Y7, Y1, Y2     // y ≤ 0 (LE_OS; false for NaN)
	VANDNPS (DI)(AX*4), Y2, Y0 // dy where not
	VMOVUPS Y0, (DI)(AX*4)
	NEXT_OR_RETURN(loop)

// func gradLeakyReLUAsm(dy, y *float32, n int, alpha float32)
TEXT ·gradLeakyReLUAsm(SB), NOSPLIT, $0-28
	MOVQ dy+0(FP), DI
	MOVQ y+8(FP), SI
	MOVQ n+16(FP), CX
	VBROADCASTSS alpha+24(FP), Y6
	XORQ AX, AX
	VXORPS Y7, Y7, Y7
loop:
	VMOVUPS   (DI)(AX*4), Y0
	VMOVUPS   (SI)(AX*4), Y1
	VMULPS    Y6, Y0, Y3     // dy·alpha
	VCMPPS    $1, Y7, Y1, Y2 // y < 0
	VBLENDVPS Y2, Y3, Y0, Y0
	VMOVUPS   Y0, (DI)(AX*4)
	NEXT_OR_RETURN(loop)

// func gradSigmoidAsm(dy, y *float32, n int)
TEXT ·gradSigmoidAsm(SB), NOSPLIT, $0-24
	MOVQ dy+0(FP), DI
	MOVQ y+8(FP), SI
	MOVQ n+16(FP), CX
	VBROADCASTSS one<>(SB), Y6
	XORQ AX, AX
loop:
	VMOVUPS (SI)(AX*4), Y1
	VSUBPS  Y1, Y6, Y2         // 1 − y
	VMULPS  Y2, Y1, Y2         // y·(1 − y)
	VMULPS  (DI)(AX*4), Y2, Y2 // dy·…
	VMOVUPS Y2, (DI)(AX*4)
	NEXT_OR_RETURN(loop)

// func gradTanhAsm(dy, y *float32, n int)
TEXT ·gradTanhAsm(SB), NOSPLIT, $0-24
	MOVQ dy+0(FP), DI
	MOVQ y+8(FP), SI
	MOVQ n+16(FP), CX
	VBROADCASTSS one<>(SB), Y6
	XORQ AX, AX
loop:
	VMOVUPS (SI)(AX*4), Y1
	VMULPS  Y1, Y1, Y1         // y²
	VSUBPS  Y1, Y6, Y1         // 1 − y²
	VMULPS  (DI)(AX*4), Y1, Y1 // dy·…
	VMOVUPS Y1, (DI)(AX*4)
	NEXT_OR_RETURN(loop)

// func accF64Asm(acc *float64, x *float32, n int)
TEXT ·accF64Asm(SB), NOSPLIT, $0-24
	MOVQ acc+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ n+16(FP), CX
	XORQ AX, AX
loop:
	VCVTPS2PD (SI)(AX*4), Y0
	VCVTPS2PD 16(SI)(AX*4), Y1
	VADDPD    (DI)(AX*8), Y0, Y0
	VADDPD    32(DI)(AX*8), Y1, Y1
	VMOVUPD   Y0, (DI)(AX*8)
	VMOVUPD   Y1, 32(DI)(AX*8)
	NEXT_OR_RETURN(loop)

// func accSqDevAsm(acc *float64, x *float32, mu *float64, n int)
TEXT ·accSqDevAsm(SB), NOSPLIT, $0-32
	MOVQ acc+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ mu+16(FP), DX
	MOVQ n+24(FP), CX
	XORQ AX, AX
loop:
	VCVTPS2PD (SI)(AX*4), Y0
	VCVTPS2PD 16(SI)(AX*4), Y1
	VSUBPD    (DX)(AX*8), Y0, Y0 // d = x − mu
	VSUBPD    32(DX)(AX*8), Y1, Y1
	VMULPD    Y0, Y0, Y0         // d²
	VMULPD    Y1, Y1, Y1
	VADDPD    (DI)(AX*8), Y0, Y0
	VADDPD    32(DI)(AX*8), Y1, Y1
	VMOVUPD   Y0, (DI)(AX*8)
	VMOVUPD   Y1, 32(DI)(AX*8)
	NEXT_OR_RETURN(loop)

// func normalizeAsm(y, x, mean, inv, gamma *float32, n int)
TEXT ·normalizeAsm(SB), NOSPLIT, $0-48
	MOVQ y+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ mean+16(FP), DX
	MOVQ inv+24(FP), R8
	MOVQ gamma+32(FP), R9
	MOVQ n+40(FP), CX
	XORQ AX, AX
loop:
	VMOVUPS (SI)(AX*4), Y0
	VSUBPS  (DX)(AX*4), Y0, Y0 // x − mean
	VMULPS  (R8)(AX*4), Y0, Y0 // x̂
	VMULPS  (R9)(AX*4), Y0, Y0 // gamma·x̂
	VMOVUPS Y0, (DI)(AX*4)
	NEXT_OR_RETURN(loop)

// func bnGradSumsAsm(sb, sg *float64, d, x, mean, inv *float32, n int)
TEXT ·bnGradSumsAsm(SB), NOSPLIT, $0-56
	MOVQ sb+0(FP), DI
	MOVQ sg+8(FP), SI
	MOVQ d+16(FP), DX
	MOVQ x+24(FP), R8
	MOVQ mean+32(FP), R9
	MOVQ inv+40(FP), R10
	MOVQ n+48(FP), CX
	XORQ AX, AX
loop:
	VMOVUPS      (R8)(AX*4), Y0
	VSUBPS       (R9)(AX*4), Y0, Y0  // x − mean
	VMULPS       (R10)(AX*4), Y0, Y0 // x̂
	VCVTPS2PD    (DX)(AX*4), Y1      // d, low four
	VCVTPS2PD    16(DX)(AX*4), Y2    // d, high four
	VCVTPS2PD    X0, Y3              // x̂, low four
	VEXTRACTF128 $1, Y0, X4
	VCVTPS2PD    X4, Y4              // x̂, high four
	VMULPD       Y1, Y3, Y3          // d·x̂
	VMULPD       Y2, Y4, Y4
	VADDPD       (DI)(AX*8), Y1, Y1
	VADDPD       32(DI)(AX*8), Y2, Y2
	VADDPD       (SI)(AX*8), Y3, Y3
	VADDPD       32(SI)(AX*8), Y4, Y4
	VMOVUPD      Y1, (DI)(AX*8)
	VMOVUPD      Y2, 32(DI)(AX*8)
	VMOVUPD      Y3, (SI)(AX*8)
	VMOVUPD      Y4, 32(SI)(AX*8)
	NEXT_OR_RETURN(loop)

// func bnGradInputAsm(dx, d, x, mean, inv, k, mb, mg *float32, n int)
TEXT ·bnGradInputAsm(SB), NOSPLIT, $0-72
	MOVQ dx+0(FP), DI
	MOVQ d+8(FP), SI
	MOVQ x+16(FP), DX
	MOVQ mean+24(FP), R8
	MOVQ inv+32(FP), R9
	MOVQ k+40(FP), R10
	MOVQ mb+48(FP), R11
	MOVQ mg+56(FP), R12
	MOVQ n+64(FP), CX
	XORQ AX, AX
loop:
	VMOVUPS (DX)(AX*4), Y0
	VSUBPS  (R8)(AX*4), Y0, Y0  // x − mean
	VMULPS  (R9)(AX*4), Y0, Y0  // x̂
	VMULPS  (R12)(AX*4), Y0, Y0 // x̂·mg
	VMOVUPS (SI)(AX*4), Y1
	VSUBPS  (R11)(AX*4), Y1, Y1 // d − mb
	VSUBPS  Y0, Y1, Y1          // (d − mb) − x̂·mg
	VMULPS  (R10)(AX*4), Y1, Y1 // k·…
	VMOVUPS Y1, (DI)(AX*4)
	NEXT_OR_RETURN(loop)
