//go:build !nocuda

package main

import (
	"log/slog"

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

// openCUDA opens CUDA device dev.Ordinal. Autotuning is on only where the config asks
// for it ("on", train's default); the other commands leave it empty and use the fixed
// table.
func openCUDA(c config.Backend, dev config.DeviceSpec, log *slog.Logger) (backend.Backend, error) {
	opt := gpu.Options{Device: dev.Ordinal, TF32: c.Precision == "tf32", Graphs: c.Graphs, Log: log,
		Autotune: c.Autotune == "on"}
	if opt.Autotune {
		opt.TuneCache = c.AutotuneCache
		if opt.TuneCache == "" {
			path, err := gpu.DefaultTuneCache()
			if err != nil && log != nil {
				log.Warn("autotune: no cache file; choices are timed afresh in every run (--autotune-cache names one)", "err", err)
			}
			opt.TuneCache = path
		}
	}
	return gpu.New(opt)
}
