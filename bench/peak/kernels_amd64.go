package main

import "golang.org/x/sys/cpu"

func fmaAVX512(n int64)
func fmaAVX2(n int64)

// kernels are the FMA loops this CPU can run, widest first.
func kernels() []kernel {
	var ks []kernel
	if cpu.X86.HasAVX512F {
		ks = append(ks, kernel{"AVX-512", 384, fmaAVX512})
	}
	if cpu.X86.HasAVX2 && cpu.X86.HasFMA {
		ks = append(ks, kernel{"AVX2+FMA", 192, fmaAVX2})
	}
	return ks
}
