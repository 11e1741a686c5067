//go:build linux

package e2e

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gantrain/gantrain/data"
)

// scripts/gpu-train.sh runs only on a GPU machine, where a broken script costs
// GPU time. Here it runs on the CPU (GPU_TRAIN_DEVICE=cpu) through a whole cycle:
// a run that brings its checkpoint back in parts, then a second run that is given the
// parts and continues the training from them. The first run packs its small files into
// train.tar.gz (GPU_TRAIN_PACK=1), and the second resumes from that archive.
func TestGPUTrainScriptStartsAndResumes(t *testing.T) {
	if testing.Short() {
		t.Skip("trains twice and evaluates twice")
	}
	bash := needTool(t, "bash", "bash")
	mnist, err := data.FindMNIST(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, target := range map[string]string{"gantrain": gantrainBin(t), "mnist": mnist} {
		if err := os.Symlink(target, filepath.Join(bin, name)); err != nil {
			t.Fatal(err)
		}
	}
	script, err := filepath.Abs("../scripts/gpu-train.sh")
	if err != nil {
		t.Fatal(err)
	}
	call := func(out string, env []string, args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, bash, append([]string{script}, args...)...)
		cmd.Env = append(os.Environ(), append([]string{"GPU_CHECK_BIN=" + bin, "GPU_TRAIN_DEVICE=cpu", "OUT=" + out,
			"GPU_TRAIN_RUN=" + filepath.Join(tmp, "run")}, env...)...)
		b, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("gpu-train.sh %s: %v\n%s", strings.Join(args, " "), err, tail(string(b), 3000))
		}
		log, err := os.ReadFile(filepath.Join(out, "train.log"))
		if os.IsNotExist(err) { // GPU_TRAIN_PACK=1
			log, err = fileInTarGz(filepath.Join(out, "train.tar.gz"), "train.log")
		}
		if err != nil {
			t.Fatal(err)
		}
		return string(log)
	}

	// The first run packs its small files (as beside gpu-check.sh, where few files may
	// come back): the parts and train.tar.gz come back, nothing else.
	first := filepath.Join(tmp, "out1")
	log := call(first, []string{"GPU_TRAIN_PACK=1"}, "120", "--preset", "published", "--steps", "30")
	if !strings.Contains(log, "msg=done step=30 ") {
		t.Fatalf("the first call did not train 30 steps:\n%s", tail(log, 3000))
	}
	if !strings.Contains(log, "log-likelihood") {
		t.Errorf("the first call's checkpoint was not evaluated:\n%s", tail(log, 3000))
	}
	parts, _ := filepath.Glob(filepath.Join(first, "checkpoint.part-*"))
	if len(parts) != 2 {
		t.Fatalf("%d checkpoint parts, want 2 of at most 15 MiB for --preset published: %v", len(parts), parts)
	}
	for _, p := range parts {
		if st, err := os.Stat(p); err != nil || st.Size() > 15<<20 {
			t.Errorf("%s: %v, want at most 15 MiB (a file that comes back from the GPU machine is at most 16 MiB)", p, err)
		}
	}
	if got, _ := filepath.Glob(filepath.Join(first, "*")); len(got) != 3 {
		t.Errorf("GPU_TRAIN_PACK=1 left %d files, want the 2 parts and train.tar.gz: %v", len(got), names(got))
	}

	// The second run is given what the first brought back, as the script's comment says.
	resume := filepath.Join(tmp, "gpu-resume")
	if err := os.MkdirAll(resume, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range append([]string{"train.tar.gz"}, names(parts)...) {
		b, err := os.ReadFile(filepath.Join(first, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(resume, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	second := filepath.Join(tmp, "out2")
	log = call(second, []string{"GPU_TRAIN_RESUME=" + resume}, "120", "--steps", "60")
	if !regexp.MustCompile(`msg=resuming step=30 checkpoint=\S+step-000000030\.safetensors`).MatchString(log) {
		t.Errorf("the second call did not resume from step 30:\n%s", tail(log, 3000))
	}
	if !strings.Contains(log, "msg=done step=60 ") {
		t.Errorf("the second call did not continue to step 60:\n%s", tail(log, 3000))
	}
	if name, err := os.ReadFile(filepath.Join(second, "checkpoint.name")); err != nil || strings.TrimSpace(string(name)) != "step-000000060.safetensors" {
		t.Errorf("the second call brought back checkpoint %q (%v), want step-000000060.safetensors", name, err)
	}
}

// fileInTarGz returns the file called name in the gzipped tar archive at path.
func fileInTarGz(path, name string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	r := tar.NewReader(z)
	for {
		h, err := r.Next()
		if err != nil {
			return nil, fmt.Errorf("%s: no %s: %w", path, name, err)
		}
		if filepath.Clean(h.Name) == name {
			return io.ReadAll(r)
		}
	}
}

func names(paths []string) []string {
	out := make([]string, len(paths))
	for i, p := range paths {
		out[i] = filepath.Base(p)
	}
	return out
}
