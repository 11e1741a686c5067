package rundir

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// NotWritableError is Acquire's error when this process may not create or write the
// run directory: a directory owned by another user, typically a container's bind mount
// of a host folder that belongs to the host's user, not to the image's. It names the
// directory, its owner and this process's user, so the message can say what to do.
type NotWritableError struct {
	Dir          string      // the nearest existing directory on the way to the run directory
	Owner, Group int         // Dir's owner and group (-1 where the system does not say)
	Mode         fs.FileMode // Dir's mode
	UID, GID     int         // this process's effective user and group
	Err          error       // the refused operation
}

func (e *NotWritableError) Error() string {
	// Running as the owner is a fix to offer unless the owner is root.
	asOwner := ""
	if e.Owner > 0 {
		asOwner = fmt.Sprintf(", run gantrain as uid %d (docker run --user %d:%d)", e.Owner, e.Owner, e.Group)
	}
	return fmt.Sprintf("%v: %s belongs to uid %d gid %d (%v) and gantrain runs as uid %d gid %d. "+
		"Make it writable for uid %d (chown %d:%d %s; for a container's bind mount, chown the host directory)%s, "+
		"or choose another --out",
		e.Err, e.Dir, e.Owner, e.Group, e.Mode, e.UID, e.GID, e.UID, e.UID, e.GID, e.Dir, asOwner)
}

func (e *NotWritableError) Unwrap() error { return e.Err }

// explainDenied turns a permission error met while creating or locking a run directory
// into a NotWritableError about the nearest existing directory on the refused path.
// Other errors, and paths it cannot inspect, pass through unchanged.
func explainDenied(err error) error {
	var pe *fs.PathError
	if !errors.Is(err, fs.ErrPermission) || !errors.As(err, &pe) {
		return err
	}
	for dir := filepath.Clean(pe.Path); ; dir = filepath.Dir(dir) {
		fi, serr := os.Stat(dir)
		if serr == nil {
			if !fi.IsDir() {
				return err
			}
			owner, group := fileOwner(fi)
			return &NotWritableError{Dir: dir, Owner: owner, Group: group, Mode: fi.Mode(),
				UID: os.Geteuid(), GID: os.Getegid(), Err: err}
		}
		if dir == filepath.Dir(dir) {
			return err
		}
	}
}
