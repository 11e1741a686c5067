//go:build unix

package rundir

import (
	"bufio"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestAcquireIsExclusive(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "runs", "mnist")
	l, err := Acquire(dir)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Acquire(dir)
	if !errors.Is(err, ErrInUse) || !strings.Contains(err.Error(), "pid "+strconv.Itoa(os.Getpid())) {
		t.Fatalf("second Acquire: %v; want ErrInUse naming pid %d", err, os.Getpid())
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	if err := l.Release(); err != nil {
		t.Fatalf("second Release: %v", err)
	}
	l2, err := Acquire(dir)
	if err != nil {
		t.Fatalf("after Release: %v", err)
	}
	l2.Release()
}

// The kernel releases the lock of a process that dies, kill -9 included.
func TestLockDiesWithItsProcess(t *testing.T) {
	if os.Getenv("RUNDIR_HOLD") != "" {
		l, err := Acquire(os.Getenv("RUNDIR_HOLD"))
		if err != nil {
			os.Exit(3)
		}
		_ = l
		os.Stdout.WriteString("locked\n")
		time.Sleep(time.Minute)
		os.Exit(0)
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run", "^TestLockDiesWithItsProcess$")
	cmd.Env = append(os.Environ(), "RUNDIR_HOLD="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	if line, err := bufio.NewReader(out).ReadString('\n'); err != nil || line != "locked\n" {
		t.Fatalf("holder said %q, %v", line, err)
	}
	_, err = Acquire(dir)
	if !errors.Is(err, ErrInUse) || !strings.Contains(err.Error(), "pid "+strconv.Itoa(cmd.Process.Pid)) {
		t.Fatalf("while held: %v; want ErrInUse naming pid %d", err, cmd.Process.Pid)
	}
	cmd.Process.Signal(os.Kill)
	cmd.Wait()
	l, err := Acquire(dir)
	if err != nil {
		t.Fatalf("after kill -9 of the holder: %v", err)
	}
	l.Release()
}

func TestMoveAside(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	l, err := Acquire(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	os.WriteFile(filepath.Join(dir, "config.yaml"), []byte("old\n"), 0o644)
	now := time.Date(2026, 12, 4, 15, 4, 5, 0, time.UTC)
	aside, err := MoveAside(l, now)
	if err != nil {
		t.Fatal(err)
	}
	if want := dir + ".replaced-20261204T150405Z"; aside != want {
		t.Fatalf("moved to %s, want %s", aside, want)
	}
	if raw, err := os.ReadFile(filepath.Join(aside, "config.yaml")); err != nil || string(raw) != "old\n" {
		t.Fatalf("the old run's config: %q, %v", raw, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "config.yaml")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the new directory is not empty: %v", err)
	}
	if _, err := Acquire(dir); !errors.Is(err, ErrInUse) {
		t.Fatalf("the new directory is not held: %v", err)
	}
	// A second replacement in the same second gets its own name.
	aside2, err := MoveAside(l, now)
	if err != nil || aside2 != aside+"-2" {
		t.Fatalf("second move: %s, %v", aside2, err)
	}
}
