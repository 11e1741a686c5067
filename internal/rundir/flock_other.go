//go:build !unix

package rundir

import (
	"errors"
	"os"
)

var errLocked = errors.New("locked")

// lockFile: systems without flock get no lock (gantrain's targets are Linux machines
// and containers; this keeps the package building elsewhere).
func lockFile(f *os.File) error { return nil }

func unlockFile(f *os.File) error { return nil }
