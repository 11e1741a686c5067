// Package blas gives the CPU backend its matrix multiply: a CBLAS library (OpenBLAS,
// BLIS or Intel MKL) when one is installed, loaded at run time so that the binary
// needs no cgo and no library to build or start, and gonum's pure-Go BLAS otherwise.
package blas

import (
	"fmt"
	"os"
	"strings"
	"sync"

	gblas "gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// Sgemm computes C = alpha·op(A)·op(B) + beta·C on row-major float32 matrices, where
// op(A) is m×k, op(B) is k×n and C is m×n.
type Sgemm interface {
	Sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int)
	// Name says which library computes it.
	Name() string
}

// Options choose the implementation.
type Options struct {
	// Library is "auto" (the first library of autoOrder that loads and has kernels
	// for this CPU; else the first that loads; else pure Go), "openblas", "blis" or
	// "mkl" (fail if it does not load) or "go".
	Library string
}

// Libraries returns the names Options.Library accepts.
func Libraries() []string {
	names := []string{"auto"}
	for _, l := range libraries {
		names = append(names, l.name)
	}
	return append(names, "go")
}

// Open returns the implementation the options ask for. A loaded library computes
// each call on the calling thread. The environment variable GANTRAIN_BLAS_PATH may
// name the shared library file of a named library.
func Open(opt Options) (Sgemm, error) {
	switch opt.Library {
	case "go":
		return &Go{}, nil
	case "", "auto":
		return pickAuto(autoOrder(cpuVendor()), func(name string) (*cblas, error) {
			return libraryNamed(name).load("")
		}), nil
	}
	if l := libraryNamed(opt.Library); l.name != "" {
		return l.load(os.Getenv("GANTRAIN_BLAS_PATH"))
	}
	return nil, fmt.Errorf("blas: unknown library %q (want one of %s)", opt.Library, strings.Join(Libraries(), ", "))
}

// Go is gonum's pure-Go BLAS. gonum computes A·Bᵀ with dot products, an order of
// magnitude slower than its A·B kernel, so Go transposes B into a scratch buffer
// first. A Go value is safe for concurrent use.
type Go struct {
	scratch sync.Pool // of *[]float32
}

// Name implements Sgemm.
func (*Go) Name() string { return "gonum (pure Go)" }

// Sgemm implements Sgemm.
func (g *Go) Sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if transB && !transA && m > 1 && n > 1 && k > 1 {
		// B is stored n×k; write Bᵀ (k×n) to scratch.
		buf, _ := g.scratch.Get().(*[]float32)
		if buf == nil {
			buf = new([]float32)
		}
		if cap(*buf) < k*n {
			*buf = make([]float32, k*n)
		}
		defer g.scratch.Put(buf)
		bt := (*buf)[:k*n]
		transpose(bt, b, n, k, ldb)
		b, ldb, transB = bt, n, false
	}
	gonum.Implementation{}.Sgemm(trans(transA), trans(transB), m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// transpose writes the r×c matrix src (leading dimension ld) into dst as c×r, in
// cache-sized tiles.
func transpose(dst, src []float32, r, c, ld int) {
	const tile = 32
	for i0 := 0; i0 < r; i0 += tile {
		i1 := min(i0+tile, r)
		for j0 := 0; j0 < c; j0 += tile {
			j1 := min(j0+tile, c)
			for i := i0; i < i1; i++ {
				row := src[i*ld : i*ld+c]
				for j := j0; j < j1; j++ {
					dst[j*r+i] = row[j]
				}
			}
		}
	}
}

func trans(t bool) gblas.Transpose {
	if t {
		return gblas.Trans
	}
	return gblas.NoTrans
}

// autoOrder is the order in which "auto" tries the libraries on a CPU of the given
// vendor (as /proc/cpuinfo names it), a rule from measurement on the paper's
// products (docs/PERFORMANCE.md, "CPU"): on an Intel Xeon, MKL's sequential layer
// was the fastest by far and BLIS the slowest; on an AMD EPYC, BLIS gave the fastest
// iterations with the backend's split products, then OpenBLAS.
func autoOrder(vendor string) []string {
	if vendor == "GenuineIntel" {
		return []string{"mkl", "openblas", "blis"}
	}
	return []string{"blis", "openblas", "mkl"}
}

// pickAuto loads the libraries of order in turn and returns the first whose kernels
// are made for this CPU. One with generic kernels is kept for when no other loads:
// on a Zen 5 EPYC, BLIS 0.9's reference kernels make an iteration several times
// slower than OpenBLAS's, though still faster than pure Go
// (docs/PERFORMANCE.md, "CPU"). A library passed over stays loaded; the chosen one
// is called through its own handle, and TestSgemm checks its products with the
// other loaded before it.
func pickAuto(order []string, load func(name string) (*cblas, error)) Sgemm {
	var fallback *cblas
	for _, name := range order {
		c, err := load(name)
		if err != nil {
			continue
		}
		if !c.generic() {
			return c
		}
		if fallback == nil {
			fallback = c
		}
	}
	if fallback != nil {
		return fallback
	}
	return &Go{}
}

// libraryNamed is the library of that name, or the zero library.
func libraryNamed(name string) library {
	for _, l := range libraries {
		if l.name == name {
			return l
		}
	}
	return library{}
}

// cpuVendor is the vendor_id of /proc/cpuinfo ("GenuineIntel", "AuthenticAMD"), or
// "" where there is none.
func cpuVendor() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	for line := range strings.Lines(string(b)) {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "vendor_id" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
