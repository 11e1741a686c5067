//go:build unix

package rundir

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// A permission error on the way to a run directory names the nearest existing
// directory, its owner and this process's user, and says what to do; other errors
// pass through. (Root is never refused, so the errors are made up; the directories and
// their owners are real.)
func TestExplainDenied(t *testing.T) {
	root := t.TempDir()
	file := filepath.Join(root, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	denied := func(op, path string) error { return &fs.PathError{Op: op, Path: path, Err: syscall.EACCES} }
	tests := []struct {
		name    string
		err     error
		wantDir string // "" when the error must pass through unchanged
	}{
		{"mkdir below an existing dir", denied("mkdir", filepath.Join(root, "mnist")), root},
		{"mkdir two levels down", denied("mkdir", filepath.Join(root, "a", "b")), root},
		{"lock file in the run dir", denied("open", filepath.Join(root, LockName)), root},
		{"EPERM counts too", &fs.PathError{Op: "mkdir", Path: filepath.Join(root, "x"), Err: syscall.EPERM}, root},
		{"wrapped", fmt.Errorf("run directory: %w", denied("mkdir", filepath.Join(root, "m"))), root},
		{"not a permission error", &fs.PathError{Op: "mkdir", Path: filepath.Join(root, "m"), Err: syscall.ENOSPC}, ""},
		{"no path", fs.ErrPermission, ""},
		{"a file in the way", denied("mkdir", filepath.Join(file, "m")), ""},
	}
	st, err := os.Stat(root)
	if err != nil {
		t.Fatal(err)
	}
	owner, group := fileOwner(st)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := explainDenied(tt.err)
			var nw *NotWritableError
			if tt.wantDir == "" {
				if got != tt.err {
					t.Fatalf("got %v, want the error unchanged", got)
				}
				return
			}
			if !errors.As(got, &nw) {
				t.Fatalf("got %T %v, want a *NotWritableError", got, got)
			}
			if nw.Dir != tt.wantDir || nw.Owner != owner || nw.Group != group || nw.UID != os.Geteuid() || nw.GID != os.Getegid() {
				t.Errorf("got %+v; want dir %s owned by %d:%d, process %d:%d", nw, tt.wantDir, owner, group, os.Geteuid(), os.Getegid())
			}
			if !errors.Is(got, fs.ErrPermission) {
				t.Error("the explanation no longer wraps fs.ErrPermission")
			}
			msg := got.Error()
			for _, want := range []string{
				tt.wantDir + " belongs to uid " + fmt.Sprint(owner),
				fmt.Sprintf("gantrain runs as uid %d gid %d", os.Geteuid(), os.Getegid()),
				fmt.Sprintf("chown %d:%d %s", os.Geteuid(), os.Getegid(), tt.wantDir),
				"choose another --out",
			} {
				if !strings.Contains(msg, want) {
					t.Errorf("message %q lacks %q", msg, want)
				}
			}
		})
	}
}

// Where the process is not root, a real read-only parent is refused with the
// explanation, by Acquire itself.
func TestAcquireNotWritable(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root may write anywhere; TestExplainDenied covers the message")
	}
	parent := filepath.Join(t.TempDir(), "runs")
	if err := os.Mkdir(parent, 0o555); err != nil {
		t.Fatal(err)
	}
	_, err := Acquire(filepath.Join(parent, "mnist"))
	var nw *NotWritableError
	if !errors.As(err, &nw) || nw.Dir != parent {
		t.Fatalf("Acquire under a read-only dir: %v; want a NotWritableError about %s", err, parent)
	}
}

// The message offers running as the directory's owner, unless that is root.
func TestNotWritableMessage(t *testing.T) {
	denied := &fs.PathError{Op: "mkdir", Path: "/runs/mnist", Err: syscall.EACCES}
	tests := []struct {
		owner, group  int
		want, wantNot string
	}{
		{0, 0, "belongs to uid 0 gid 0", "--user"},
		{1000, 1000, "run gantrain as uid 1000 (docker run --user 1000:1000)", ""},
	}
	for _, tt := range tests {
		e := &NotWritableError{Dir: "/runs", Owner: tt.owner, Group: tt.group, Mode: fs.ModeDir | 0o755, UID: 10001, GID: 10001, Err: denied}
		msg := e.Error()
		for _, want := range []string{tt.want, "mkdir /runs/mnist: permission denied: /runs", "chown 10001:10001 /runs", "or choose another --out"} {
			if !strings.Contains(msg, want) {
				t.Errorf("owner %d: message %q lacks %q", tt.owner, msg, want)
			}
		}
		if tt.wantNot != "" && strings.Contains(msg, tt.wantNot) {
			t.Errorf("owner %d: message %q offers %q", tt.owner, msg, tt.wantNot)
		}
	}
}
