//go:build nocuda

package main

import (
	"log/slog"

	"github.com/gantrain/gantrain/backend"
	"github.com/gantrain/gantrain/config"
)

// backendsBuilt lists the backends of this build.
const backendsBuilt = "cpu"

// openCUDA refuses: this build has no CUDA backend.
func openCUDA(c config.Backend, dev config.DeviceSpec, _ *slog.Logger) (backend.Backend, error) {
	return nil, usagef("device %q: this binary was built with -tags nocuda; use the default build on a machine with an NVIDIA GPU (backends here: %s)", c.Device, backendsBuilt)
}
