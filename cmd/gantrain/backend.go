package main

import (
	"log/slog"

	"github.com/gantrain/gantrain/backend"
	"github.com/gantrain/gantrain/config"
	"github.com/gantrain/gantrain/cpu"
)

// openBackend opens the backend the config's device names: the CPU, or a CUDA device
// (backend_cuda.go in the default build, backend_nocuda.go with -tags nocuda). log
// (nil: discarded) receives the CUDA autotuner's choices.
func openBackend(c config.Backend, log *slog.Logger) (backend.Backend, error) {
	dev, err := config.ParseDevice(c.Device)
	if err != nil {
		return nil, usageError{err}
	}
	if dev.CUDA {
		return openCUDA(c, dev, log)
	}
	return cpu.New(cpu.Options{BLAS: c.BLAS, Threads: c.Threads})
}
