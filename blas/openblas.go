package blas

import (
	"errors"
	"fmt"
	"runtime"

	"github.com/ebitengine/purego"
)

// CBLAS enumerations.
const (
	cblasRowMajor = 101
	cblasNoTrans  = 111
	cblasTrans    = 112
)

// openBLAS calls cblas_sgemm of a dynamically loaded OpenBLAS.
type openBLAS struct {
	name  string
	sgemm func(order, transA, transB, m, n, k int32, alpha float32, a *float32, lda int32, b *float32, ldb int32, beta float32, c *float32, ldc int32)
}

// Debian's libopenblas0-pthread (or -openmp, -serial) provides the first name.
var openBLASNames = []string{"libopenblas.so.0", "libopenblas.so", "libopenblasp.so.0"}

func openOpenBLAS(path string, threads int) (*openBLAS, error) {
	if runtime.GOOS != "linux" && runtime.GOOS != "darwin" && runtime.GOOS != "freebsd" {
		return nil, fmt.Errorf("blas: OpenBLAS loading is not supported on %s", runtime.GOOS)
	}
	names := openBLASNames
	if path != "" {
		names = []string{path}
	}
	var errs []error
	for _, name := range names {
		lib, err := purego.Dlopen(name, purego.RTLD_NOW|purego.RTLD_GLOBAL)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		ob := &openBLAS{name: name}
		if _, err := purego.Dlsym(lib, "cblas_sgemm"); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
			continue
		}
		purego.RegisterLibFunc(&ob.sgemm, lib, "cblas_sgemm")
		if threads > 0 {
			if _, err := purego.Dlsym(lib, "openblas_set_num_threads"); err == nil {
				var set func(int32)
				purego.RegisterLibFunc(&set, lib, "openblas_set_num_threads")
				set(int32(threads))
			}
		}
		return ob, nil
	}
	return nil, fmt.Errorf("blas: load OpenBLAS: %w", errors.Join(errs...))
}

func (o *openBLAS) Name() string { return "OpenBLAS (" + o.name + ")" }

func (o *openBLAS) Sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if m == 0 || n == 0 {
		return
	}
	if k == 0 {
		// Some BLAS builds read a[0] even when k is 0; gonum handles the degenerate case.
		(&Go{}).Sgemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		return
	}
	ta, tb := int32(cblasNoTrans), int32(cblasNoTrans)
	if transA {
		ta = cblasTrans
	}
	if transB {
		tb = cblasTrans
	}
	// Bounds are the caller's contract (the CPU backend checks shapes); check the
	// extents once more here since C does not.
	needA, needB := extent(transA, m, k, lda), extent(transB, k, n, ldb)
	if len(a) < needA || len(b) < needB || len(c) < (m-1)*ldc+n {
		panic(fmt.Sprintf("blas: sgemm operand too short: len(a)=%d need %d, len(b)=%d need %d, len(c)=%d need %d",
			len(a), needA, len(b), needB, len(c), (m-1)*ldc+n))
	}
	o.sgemm(cblasRowMajor, ta, tb, int32(m), int32(n), int32(k), alpha, &a[0], int32(lda), &b[0], int32(ldb), beta, &c[0], int32(ldc))
}

// extent is how many elements a row-major operand op(X) of r×c with leading dimension ld spans.
func extent(t bool, r, c, ld int) int {
	if t {
		r, c = c, r
	}
	return (r-1)*ld + c
}
