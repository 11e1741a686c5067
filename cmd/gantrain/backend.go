package main

import (
	"github.com/gantrain/gantrain/backend"
	"github.com/gantrain/gantrain/config"
	"github.com/gantrain/gantrain/cpu"
)

// backendsBuilt lists the backends of this build.
const backendsBuilt = "cpu"

// openBackend opens the backend the config's device names.
func openBackend(c config.Backend) (backend.Backend, error) {
	dev, err := config.ParseDevice(c.Device)
	if err != nil {
		return nil, usageError{err}
	}
	if dev.CUDA {
		return nil, usagef("device %q: this build of gantrain has no CUDA backend (backends: %s)", c.Device, backendsBuilt)
	}
	return cpu.New(cpu.Options{BLAS: c.BLAS, Threads: c.Threads})
}
