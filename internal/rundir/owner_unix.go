//go:build unix

package rundir

import (
	"io/fs"
	"syscall"
)

// fileOwner is fi's owner and group.
func fileOwner(fi fs.FileInfo) (uid, gid int) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int(st.Uid), int(st.Gid)
	}
	return -1, -1
}
