// Package rundir guards a run directory against being shared: an exclusive lock that
// one process holds while it writes the run (a lock file under flock, which the kernel
// releases when the process ends, a kill -9 included, so a crash never leaves a stale
// lock), and moving an old run aside, with nothing deleted, to start a new one in its
// place.
package rundir

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// LockName is the lock file's name in a run directory. It holds the PID of the process
// that holds the lock, for the error another process gets.
const LockName = ".gantrain.lock"

// ErrInUse is wrapped by Acquire's error when another process holds the directory.
var ErrInUse = errors.New("run directory in use")

// Lock is a held run directory.
type Lock struct {
	dir string
	f   *os.File
}

// Acquire creates dir if need be and takes its lock, without waiting: when another
// process holds it, the error wraps ErrInUse and names that process's PID; when this
// process may not write there, it is a *NotWritableError saying what to do. Both are
// checked before a run loads anything, so a wrong volume fails at once.
func Acquire(dir string) (*Lock, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("run directory: %w", explainDenied(err))
	}
	path := filepath.Join(dir, LockName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("run directory lock: %w", explainDenied(err))
	}
	if err := lockFile(f); err != nil {
		holder := "unknown"
		if raw, rerr := os.ReadFile(path); rerr == nil && strings.TrimSpace(string(raw)) != "" {
			holder = strings.TrimSpace(string(raw))
		}
		f.Close()
		if errors.Is(err, errLocked) {
			return nil, fmt.Errorf("%w: %s is being written by another gantrain process (pid %s); a run directory takes one trainer at a time: wait for it, stop it, or choose another --out",
				ErrInUse, dir, holder)
		}
		return nil, fmt.Errorf("run directory lock %s: %w", path, err)
	}
	// The holder's PID, for the next process that finds the directory taken.
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(fmt.Sprintf("%d\n", os.Getpid())), 0)
	}
	return &Lock{dir: dir, f: f}, nil
}

// Dir is the locked directory.
func (l *Lock) Dir() string { return l.dir }

// Release gives the directory up. Releasing twice does nothing.
func (l *Lock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := unlockFile(l.f)
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	l.f = nil
	return err
}

// MoveAside renames the run directory dir, which l holds, to
// dir.replaced-YYYYMMDDTHHMMSSZ (with -2, -3, … if that exists), creates an empty dir
// and takes its lock in l's place. It returns where the old run went.
func MoveAside(l *Lock, now time.Time) (string, error) {
	dir := filepath.Clean(l.dir)
	base := dir + ".replaced-" + now.UTC().Format("20060102T150405Z")
	aside := base
	for i := 2; ; i++ {
		if _, err := os.Lstat(aside); errors.Is(err, os.ErrNotExist) {
			break
		}
		aside = fmt.Sprintf("%s-%d", base, i)
	}
	if err := os.Rename(dir, aside); err != nil {
		return "", fmt.Errorf("move the old run aside: %w", err)
	}
	// The lock moved with the directory; the new one is taken before it is released,
	// so no other process can slip in between.
	nl, err := Acquire(dir)
	if err != nil {
		return aside, err
	}
	l.Release()
	*l = *nl
	return aside, nil
}
