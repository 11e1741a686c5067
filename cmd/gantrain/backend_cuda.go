//go:build !nocuda

package main

import (
	"github.com/gantrain/gantrain/backend"
	"github.com/gantrain/gantrain/config"
	"github.com/gantrain/gantrain/gpu"
)

// backendsBuilt lists the backends of this build.
//
// This build links gorgonia.org/cu, whose package initialisation calls cuInit and
// ends the process (status 1, with cu's own message) on a machine without an NVIDIA
// driver and device, before main runs: on such a machine use a -tags nocuda build.
const backendsBuilt = "cpu, cuda"

// openCUDA opens CUDA device dev.Ordinal.
func openCUDA(c config.Backend, dev config.Device) (backend.Backend, error) {
	return gpu.New(gpu.Options{Device: dev.Ordinal, TF32: c.Precision == "tf32", Graphs: c.Graphs})
}
