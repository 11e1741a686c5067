package main

import (
	"flag"
	"fmt"
	"log/slog"
	"strings"

	"github.com/gantrain/gantrain/backend"
	"github.com/gantrain/gantrain/config"
	"github.com/gantrain/gantrain/cpu"
)

// openBackend opens the backend the config's device names: the CPU, or a CUDA device
// (backend_cuda.go in the default build, backend_nocuda.go with -tags nocuda). log
// (nil: discarded) receives the CUDA autotuner's choices.
func openBackend(c config.Backend, log *slog.Logger) (backend.Backend, error) {
	if err := checkBackend(c); err != nil {
		return nil, err
	}
	dev, err := config.ParseDevice(c.Device)
	if err != nil {
		return nil, usageError{err}
	}
	if dev.CUDA {
		return openCUDA(c, dev, log)
	}
	return cpu.New(cpu.Options{BLAS: c.BLAS, Threads: c.Threads})
}

// bindBackendFlags defines the flags that choose and tune the compute backend, bound to
// c: one definition for every subcommand.
func bindBackendFlags(fs *flag.FlagSet, c *config.Backend) {
	fs.StringVar(&c.Device, "device", c.Device, "cpu, cuda or cuda:N")
	fs.StringVar(&c.BLAS, "blas", c.BLAS, "CPU matrix multiply: auto (by CPU vendor, of those installed: MKL on Intel, else BLIS, then OpenBLAS, passing over one with no kernels for this CPU; else pure Go), openblas, blis, mkl or go")
	fs.IntVar(&c.Threads, "threads", c.Threads, "CPU backend threads, matrix products included (0: one per CPU)")
	fs.BoolVar(&c.Graphs, "cuda-graphs", c.Graphs, "submit each training step to the GPU as one CUDA graph (bit-identical results; --cuda-graphs=false launches kernel by kernel)")
	fs.StringVar(&c.Precision, "precision", c.Precision, "CUDA matrix products: fp32, or tf32 (tensor cores, about 3 significant digits per input)")
	fs.StringVar(&c.Autotune, "autotune", c.Autotune, "CUDA matrix-product kernels: on (time the candidates on this run's shapes at first use, cached per device) or off (a fixed table); a resumed run keeps its checkpoint's kernels")
	fs.StringVar(&c.AutotuneCache, "autotune-cache", c.AutotuneCache, "the autotuner's cache file (default: gantrain/autotune.json in the user's cache directory)")
}

// checkBackend applies the config's rules for the backend fields (one home for them)
// to flags given outside a run's config: a usage error naming the bad ones.
func checkBackend(c config.Backend) error {
	check := config.Default()
	check.Backend = c
	if err := check.Validate(); err != nil {
		return usageError{fmt.Errorf("invalid backend flags:\n  %s", strings.ReplaceAll(err.Error(), "\n", "\n  "))}
	}
	return nil
}
