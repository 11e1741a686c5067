//go:build !unix

package rundir

import "io/fs"

// fileOwner: no owner on systems without POSIX ownership.
func fileOwner(fs.FileInfo) (uid, gid int) { return -1, -1 }
