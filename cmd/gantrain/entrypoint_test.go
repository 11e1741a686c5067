package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The container's entrypoint (docker/entrypoint.sh) picks the binary: run here with
// stand-in binaries that print their command line, and a stand-in /dev.
func TestContainerEntrypoint(t *testing.T) {
	if _, err := exec.LookPath("timeout"); err != nil {
		t.Skip("no timeout(1) on PATH")
	}
	script, err := filepath.Abs(filepath.Join("..", "..", "docker", "entrypoint.sh"))
	if err != nil {
		t.Fatal(err)
	}
	bindir := t.TempDir()
	// gantrain-cuda's start-up fails the way the probe sees it when FAKE_CUDA_FAILS is set.
	for name, body := range map[string]string{
		"gantrain-cpu":  "echo \"gantrain-cpu $*\"\n",
		"gantrain-cuda": "if [ -n \"${FAKE_CUDA_FAILS:-}\" ]; then echo 'cuInit: CUDA_ERROR_SYSTEM_DRIVER_MISMATCH' >&2; exit 1; fi\necho \"gantrain-cuda $*\"\n",
	} {
		if err := os.WriteFile(filepath.Join(bindir, name), []byte("#!/bin/sh\n"+body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	noGPU := t.TempDir()
	gpu := t.TempDir()
	for _, n := range []string{"nvidiactl", "nvidia0"} {
		if err := os.WriteFile(filepath.Join(gpu, n), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	const defaultCmd = "train --auto-resume --out /runs/mnist"
	tests := []struct {
		name       string
		dev        string
		env        []string // GANTRAIN_BACKEND, FAKE_CUDA_FAILS
		args       string
		wantCode   int
		wantStdout string // the command line the chosen binary got
		wantStderr string
	}{
		{"no GPU: the CPU build", noGPU, nil, defaultCmd, 0,
			"gantrain-cpu train --device cpu --auto-resume --out /runs/mnist", "using gantrain-cpu"},
		{"a leading gantrain is dropped", noGPU, nil, "gantrain " + defaultCmd, 0,
			"gantrain-cpu train --device cpu --auto-resume --out /runs/mnist", "using gantrain-cpu"},
		{"a working GPU: the CUDA build", gpu, nil, defaultCmd, 0,
			"gantrain-cuda train --device cuda --auto-resume --out /runs/mnist", "using gantrain-cuda"},
		{"GPU visible, driver broken: CPU with a warning", gpu, []string{"FAKE_CUDA_FAILS=1"}, defaultCmd, 0,
			"gantrain-cpu train --device cpu --auto-resume --out /runs/mnist", "TRAINING ON THE CPU INSTEAD"},
		{"the warning quotes the probe", gpu, []string{"FAKE_CUDA_FAILS=1"}, defaultCmd, 0,
			"gantrain-cpu train", "DRIVER_MISMATCH"},
		{"GANTRAIN_BACKEND=cuda, driver broken: exit 1", gpu, []string{"FAKE_CUDA_FAILS=1", "GANTRAIN_BACKEND=cuda"}, defaultCmd, 1,
			"", "the GPU does not start"},
		{"GANTRAIN_BACKEND=cuda, no GPU: exit 1", noGPU, []string{"GANTRAIN_BACKEND=cuda"}, defaultCmd, 1,
			"", "no NVIDIA GPU is visible"},
		{"GANTRAIN_BACKEND=cuda, working GPU", gpu, []string{"GANTRAIN_BACKEND=cuda"}, defaultCmd, 0,
			"gantrain-cuda train --device cuda", "using gantrain-cuda"},
		{"GANTRAIN_BACKEND=cpu skips the GPU", gpu, []string{"GANTRAIN_BACKEND=cpu"}, defaultCmd, 0,
			"gantrain-cpu train --device cpu", "using gantrain-cpu"},
		{"bad GANTRAIN_BACKEND: exit 2", noGPU, []string{"GANTRAIN_BACKEND=gpu"}, defaultCmd, 2,
			"", "want auto, cpu or cuda"},
		{"--device given: left alone", gpu, nil, "train --device cuda:1 --steps 5", 0,
			"gantrain-cuda train --device cuda:1 --steps 5", ""},
		{"--resume: left alone", noGPU, nil, "gantrain train --resume /runs/mnist", 0,
			"gantrain-cpu train --resume /runs/mnist", ""},
		{"other commands pass through", noGPU, nil, "gantrain sample --checkpoint /runs/mnist", 0,
			"gantrain-cpu sample --checkpoint /runs/mnist", ""},
		{"no arguments", noGPU, nil, "", 0, "gantrain-cpu", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command("sh", append([]string{script}, strings.Fields(tt.args)...)...)
			cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "GANTRAIN_BINDIR=" + bindir, "GANTRAIN_DEVDIR=" + tt.dev}, tt.env...)
			var stdout, stderr strings.Builder
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			code := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tt.wantCode {
				t.Errorf("exit status %d, want %d (stderr %q)", code, tt.wantCode, stderr.String())
			}
			if got := strings.TrimSpace(stdout.String()); !strings.HasPrefix(got, tt.wantStdout) || (tt.wantStdout == "" && got != "") {
				t.Errorf("ran %q, want %q", got, tt.wantStdout)
			}
			if !strings.Contains(stderr.String(), tt.wantStderr) {
				t.Errorf("stderr %q lacks %q", stderr.String(), tt.wantStderr)
			}
		})
	}
}
