package checkpoint

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// versionFile returns a checkpoint of about 4*n bytes whose content identifies v.
func versionFile(v string, n int) *File {
	data := make([]float32, n)
	for i := range data {
		data[i] = float32(len(v)*1000 + i%1000)
	}
	return &File{
		Tensors: []Tensor{
			{Name: "w", Shape: []int{n}, F32: data},
			{Name: "step", Shape: []int{}, I32: []int32{int32(len(v))}},
		},
		Metadata: map[string]string{"version": v},
	}
}

// tempFiles returns the names in dir that look like WriteFile's temporary files.
func tempFiles(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") && strings.HasSuffix(e.Name(), ".tmp") {
			names = append(names, e.Name())
		}
	}
	return names
}

func TestWriteFileReadFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ckpt.safetensors")
	want := sampleFile()
	if err := WriteFile(path, want); err != nil {
		t.Fatalf("WriteFile: %v", err)
	}
	got, err := ReadFile(path, DecodeOptions{})
	if err != nil {
		t.Fatalf("ReadFile: %v", err)
	}
	if err := sameFile(got, want); err != nil {
		t.Error(err)
	}
	if tmp := tempFiles(t, dir); len(tmp) != 0 {
		t.Errorf("temporary files left behind: %v", tmp)
	}
	if runtime.GOOS != "windows" {
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o644 {
			t.Errorf("new file has mode %v, want 0644", st.Mode().Perm())
		}
	}

	// Overwriting replaces the content and keeps the old permission bits.
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	want = versionFile("second", 10)
	if err := WriteFile(path, want); err != nil {
		t.Fatalf("WriteFile over existing file: %v", err)
	}
	if got, err = ReadFile(path, DecodeOptions{}); err != nil {
		t.Fatalf("ReadFile: %v", err)
	}
	if err := sameFile(got, want); err != nil {
		t.Error(err)
	}
	if runtime.GOOS != "windows" {
		if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("overwritten file: stat %v, %v; want mode 0600", st.Mode().Perm(), err)
		}
	}
	if tmp := tempFiles(t, dir); len(tmp) != 0 {
		t.Errorf("temporary files left behind: %v", tmp)
	}
}

func TestWriteFileError(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ckpt.safetensors")
	old := versionFile("old", 10)
	if err := WriteFile(path, old); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		path    string
		file    *File
		wantErr error
	}{
		{"invalid file", path, &File{Tensors: []Tensor{{Name: "a", Shape: []int{2}, F32: []float32{1}}}}, ErrInvalid},
		{"nil file", path, nil, ErrInvalid},
		{"missing directory", filepath.Join(dir, "no", "such", "dir", "x"), versionFile("new", 1), fs.ErrNotExist},
		{"path is a directory", dir, versionFile("new", 1), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := WriteFile(tt.path, tt.file)
			if err == nil {
				t.Fatal("WriteFile succeeded")
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("err = %v, want %v", err, tt.wantErr)
			}
			if !strings.Contains(err.Error(), filepath.Base(tt.path)) {
				t.Errorf("error %q does not name the file", err)
			}
			got, err := ReadFile(path, DecodeOptions{})
			if err != nil {
				t.Fatalf("old file no longer readable: %v", err)
			}
			if err := sameFile(got, old); err != nil {
				t.Errorf("old file changed: %v", err)
			}
			if tmp := tempFiles(t, dir); len(tmp) != 0 {
				t.Errorf("temporary files left behind: %v", tmp)
			}
		})
	}
}

func TestReadFileErrors(t *testing.T) {
	dir := t.TempDir()
	good := encode(t, sampleFile())
	corrupt := append([]byte(nil), good[:len(good)-1]...)
	tampered := append([]byte(nil), good...)
	tampered[len(tampered)-1] ^= 1
	foreign := raw(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, make([]byte, 4))
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name    string
		path    string
		opt     DecodeOptions
		wantErr error // nil: any error
	}{
		{"missing", filepath.Join(dir, "missing.safetensors"), DecodeOptions{}, fs.ErrNotExist},
		{"directory", dir, DecodeOptions{}, nil},
		{"empty", write("empty.safetensors", nil), DecodeOptions{}, ErrCorrupt},
		{"truncated", write("truncated.safetensors", corrupt), DecodeOptions{}, ErrCorrupt},
		{"tampered", write("tampered.safetensors", tampered), DecodeOptions{AllowUnchecked: true}, ErrChecksum},
		{"foreign", write("foreign.safetensors", foreign), DecodeOptions{}, ErrNoChecksum},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ReadFile(tt.path, tt.opt)
			if err == nil {
				t.Fatal("ReadFile succeeded")
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("err = %v, want %v", err, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.path) {
				t.Errorf("error %q does not name the file", err)
			}
		})
	}
	if _, err := ReadFile(write("foreign2.safetensors", foreign), DecodeOptions{AllowUnchecked: true}); err != nil {
		t.Errorf("foreign file with AllowUnchecked: %v", err)
	}
}

// checkVersion reads path and reports an error unless it is one of the complete
// versions in want.
func checkVersion(path string, want map[string]*File) error {
	got, err := ReadFile(path, DecodeOptions{})
	if err != nil {
		return err
	}
	v := got.Metadata["version"]
	w, ok := want[v]
	if !ok {
		return fmt.Errorf("unexpected version %q", v)
	}
	return sameFile(got, w)
}

// TestWriteFileConcurrentReaders rewrites a file repeatedly while readers check that
// it is always one complete version or the other.
func TestWriteFileConcurrentReaders(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ckpt.safetensors")
	versions := map[string]*File{"a": versionFile("a", 50000), "bb": versionFile("bb", 70000)}
	if err := WriteFile(path, versions["a"]); err != nil {
		t.Fatal(err)
	}
	var done atomic.Bool
	var reads atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, 4)
	for range 4 {
		wg.Go(func() {
			for !done.Load() {
				if err := checkVersion(path, versions); err != nil {
					errc <- err
					return
				}
				reads.Add(1)
			}
		})
	}
	for i := range 60 {
		v := "a"
		if i%2 == 0 {
			v = "bb"
		}
		if err := WriteFile(path, versions[v]); err != nil {
			t.Errorf("WriteFile %d: %v", i, err)
			break
		}
	}
	done.Store(true)
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Errorf("reader saw an incomplete file: %v", err)
	}
	if tmp := tempFiles(t, dir); len(tmp) != 0 {
		t.Errorf("temporary files left behind: %v", tmp)
	}
	t.Logf("%d concurrent reads", reads.Load())
}

// crashEnv names the environment variable that makes TestWriteFileCrashHelper run.
const crashEnv = "GANTRAIN_CHECKPOINT_CRASH_PATH"

// TestWriteFileCrashHelper is not a test: run by TestWriteFileCrash in a child process,
// it rewrites the file named by $GANTRAIN_CHECKPOINT_CRASH_PATH until killed.
func TestWriteFileCrashHelper(t *testing.T) {
	path := os.Getenv(crashEnv)
	if path == "" {
		t.Skip("helper process for TestWriteFileCrash")
	}
	versions := []*File{versionFile("a", 200000), versionFile("bb", 300000)}
	for i := 0; ; i++ {
		if err := WriteFile(path, versions[i%2]); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Println("wrote")
	}
}

// TestWriteFileCrash kills a process that is rewriting a file at random moments and
// checks that the file is always one complete version.
func TestWriteFileCrash(t *testing.T) {
	switch runtime.GOOS {
	case "js", "wasip1", "ios", "android":
		t.Skipf("cannot run child processes on %s", runtime.GOOS)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "ckpt.safetensors")
	versions := map[string]*File{"a": versionFile("a", 200000), "bb": versionFile("bb", 300000)}
	if err := WriteFile(path, versions["a"]); err != nil {
		t.Fatal(err)
	}
	rounds := 20
	if testing.Short() {
		rounds = 5
	}
	seen := map[string]int{}
	for i := range rounds {
		cmd := exec.Command(os.Args[0], "-test.run=^TestWriteFileCrashHelper$")
		cmd.Env = append(os.Environ(), crashEnv+"="+path)
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Let it complete one write, then kill it at a random moment.
		line, err := bufio.NewReader(stdout).ReadString('\n')
		if line != "wrote\n" {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("round %d: helper printed %q, %v; want \"wrote\"", i, line, err)
		}
		go io.Copy(io.Discard, stdout)
		time.Sleep(time.Duration(rand.IntN(50)) * time.Millisecond)
		if err := cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		if err := cmd.Wait(); err == nil {
			t.Fatalf("round %d: helper exited cleanly; want killed", i)
		}
		got, err := ReadFile(path, DecodeOptions{})
		if err != nil {
			t.Fatalf("round %d: after a crash: %v", i, err)
		}
		want, ok := versions[got.Metadata["version"]]
		if !ok {
			t.Fatalf("round %d: after a crash: unexpected version %q", i, got.Metadata["version"])
		}
		if err := sameFile(got, want); err != nil {
			t.Fatalf("round %d: after a crash: %v", i, err)
		}
		seen[got.Metadata["version"]]++
	}
	// A crash may leave a temporary file behind, never a partial checkpoint.
	t.Logf("versions found after %d crashes: %v; %d temporary files left", rounds, seen, len(tempFiles(t, dir)))
}
