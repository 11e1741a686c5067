package blas

import (
	"errors"
	"fmt"
	"runtime"
	"strings"

	"github.com/ebitengine/purego"
)

// CBLAS enumerations.
const (
	cblasRowMajor = 101
	cblasNoTrans  = 111
	cblasTrans    = 112
)

// library is a shared library with a CBLAS interface, and how to make it compute on
// one thread (the CPU backend splits each product between its own workers).
type library struct {
	name  string   // as Options.Library names it
	title string   // for logs
	files []string // what to dlopen, in order
	// serial is called once after loading, before any product, to make the library
	// compute each call on the calling thread.
	serial func(lib uintptr) error
	// kernels, where the library can say, names the kernel set it chose for this CPU
	// ("zen3", "Haswell", "generic", …).
	kernels func(lib uintptr) string
}

// libraries are the loadable CBLAS libraries, in the order "auto" tries them.
var libraries = []library{
	{
		// Debian's libopenblas0-pthread (or -openmp, -serial) provides the first name.
		name: "openblas", title: "OpenBLAS",
		files: []string{"libopenblas.so.0", "libopenblas.so", "libopenblasp.so.0"},
		serial: func(lib uintptr) error {
			var set func(int32)
			if err := register(&set, lib, "openblas_set_num_threads"); err != nil {
				return err
			}
			set(1)
			return nil
		},
		kernels: func(lib uintptr) string {
			var core func() string
			if register(&core, lib, "openblas_get_corename") != nil {
				return ""
			}
			return core()
		},
	},
	{
		// Debian's libblis4-pthread (or -openmp, -serial).
		name: "blis", title: "BLIS",
		files: []string{"libblis.so.4", "libblis.so"},
		serial: func(lib uintptr) error {
			var set func(int64)
			if err := register(&set, lib, "bli_thread_set_num_threads"); err != nil {
				return err
			}
			set(1)
			return nil
		},
		kernels: func(lib uintptr) string {
			var (
				query func() int32
				name  func(int32) string
			)
			if register(&query, lib, "bli_arch_query_id") != nil || register(&name, lib, "bli_arch_string") != nil {
				return ""
			}
			return name(query())
		},
	},
	{
		// Intel MKL's single dynamic library (Debian's libmkl-rt, non-free). Its
		// sequential layer needs no OpenMP runtime.
		name: "mkl", title: "Intel MKL",
		files: []string{"libmkl_rt.so", "libmkl_rt.so.1", "libmkl_rt.so.2"},
		serial: func(lib uintptr) error {
			var layer func(int32) int32
			if err := register(&layer, lib, "MKL_Set_Threading_Layer"); err != nil {
				return err
			}
			const mklThreadingSequential = 1
			if got := layer(mklThreadingSequential); got != mklThreadingSequential {
				return fmt.Errorf("MKL_Set_Threading_Layer(SEQUENTIAL) left layer %d", got)
			}
			return nil
		},
	},
}

// register binds fn to the symbol sym of lib, or says that lib lacks it.
func register(fn any, lib uintptr, sym string) error {
	if _, err := purego.Dlsym(lib, sym); err != nil {
		return fmt.Errorf("no %s: %w", sym, err)
	}
	purego.RegisterLibFunc(fn, lib, sym)
	return nil
}

// cblas calls cblas_sgemm of a dynamically loaded library.
type cblas struct {
	title, file string
	kernels     string // the library's kernel set, "" where it cannot say
	sgemm       func(order, transA, transB, m, n, k int32, alpha float32, a *float32, lda int32, b *float32, ldb int32, beta float32, c *float32, ldc int32)
}

// load opens l (from path when it is not empty) and sets it to compute serially.
func (l library) load(path string) (*cblas, error) {
	if runtime.GOOS != "linux" && runtime.GOOS != "darwin" && runtime.GOOS != "freebsd" {
		return nil, fmt.Errorf("blas: loading %s is not supported on %s", l.title, runtime.GOOS)
	}
	files := l.files
	if path != "" {
		files = []string{path}
	}
	var errs []error
	for _, file := range files {
		lib, err := purego.Dlopen(file, purego.RTLD_NOW|purego.RTLD_GLOBAL)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		c := &cblas{title: l.title, file: file}
		if err := register(&c.sgemm, lib, "cblas_sgemm"); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", file, err))
			continue
		}
		if err := l.serial(lib); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", file, err))
			continue
		}
		if l.kernels != nil {
			c.kernels = l.kernels(lib)
		}
		return c, nil
	}
	return nil, fmt.Errorf("blas: load %s: %w", l.title, errors.Join(errs...))
}

// Name implements Sgemm.
func (c *cblas) Name() string {
	if c.kernels == "" {
		return c.title + " (" + c.file + ")"
	}
	return c.title + " (" + c.file + ", " + c.kernels + " kernels)"
}

// generic reports whether a library computes with kernels made for no CPU in
// particular: BLIS names them "generic" on a CPU newer than its configurations (BLIS
// 0.9 on AMD's Zen 5), where it runs its reference C kernels.
func (c *cblas) generic() bool {
	return strings.EqualFold(c.kernels, "generic") || strings.EqualFold(c.kernels, "unknown")
}

// Sgemm implements Sgemm.
func (c *cblas) Sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, cm []float32, ldc int) {
	if m == 0 || n == 0 {
		return
	}
	if k == 0 {
		// Some BLAS builds read a[0] even when k is 0; gonum handles the degenerate case.
		(&Go{}).Sgemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, cm, ldc)
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
	if len(a) < needA || len(b) < needB || len(cm) < (m-1)*ldc+n {
		panic(fmt.Sprintf("blas: sgemm operand too short: len(a)=%d need %d, len(b)=%d need %d, len(c)=%d need %d",
			len(a), needA, len(b), needB, len(cm), (m-1)*ldc+n))
	}
	c.sgemm(cblasRowMajor, ta, tb, int32(m), int32(n), int32(k), alpha, &a[0], int32(lda), &b[0], int32(ldb), beta, &cm[0], int32(ldc))
}

// extent is how many elements a row-major operand op(X) of r×c with leading dimension ld spans.
func extent(t bool, r, c, ld int) int {
	if t {
		r, c = c, r
	}
	return (r-1)*ld + c
}
