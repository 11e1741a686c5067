//go:build linux

package e2e

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// The stand-ins of the GPU check's binaries and tools: each prints what the check's
// scripts read from the real one. FAKE_FAIL names a step whose command fails.
var gpuCheckFakes = map[string]string{
	"bin/gpu.test": `case " $* " in
*BenchmarkConvIteration*)
	for b in 64 512; do for p in fp32 tf32; do
		echo "BenchmarkConvIteration/net=dcgan-mnist/batch=$b/$p/graph-16 200 1000 ns/op 500.0 it/s"
	done; done ;;
*" -test.bench "*)
	for b in 100 1024 4096; do for p in fp32 tf32; do
		echo "    bench_test.go:1: device time per iteration 0.5 ms in 60 launches"
		echo "BenchmarkIteration/batch=$b/$p-16 300 1000 ns/op 1000.0 it/s"
		echo "BenchmarkIteration/batch=$b/$p/graph-16 300 1000 ns/op 2000.0 it/s"
		echo "BenchmarkIteration/batch=$b/$p/graph/table-16 300 1000 ns/op 1800.0 it/s"
	done; done ;;
*" -test.skip "*)
	echo "--- PASS: TestKernels (0.00s)"
	[[ ${FAKE_FAIL:-} != ops ]] || { echo "--- FAIL: TestBroken (0.00s)"; exit 1; } ;;
*Learnt*|*MatchesCPU*)
	[[ -n ${GANTRAIN_GPU_CHECK_DIR:-} ]] && echo "    checkfiles_test.go:1: value 1.5"
	echo "--- PASS: TestFake (0.00s)" ;;
*) echo "--- PASS: TestFake (0.00s)" ;;
esac`,
	"bin/gantrain": `case $1 in
train) while (($#)); do [[ $1 == --out ]] && mkdir -p "$2"; shift; done; echo "msg=done" ;;
eval) echo '{"result":{}}' ;;
sample) while (($#)); do [[ $1 == --out ]] && : >"$2"; shift; done ;;
classifier) echo "test accuracy 95.00%" ;;
esac`,
	"path/nvidia-smi":        `echo "NVIDIA Stand-in, 1.0"`,
	"path/compute-sanitizer": `[[ $1 == --version ]] || echo "========= ERROR SUMMARY: 0 errors"`,
	"path/ncu":               `echo "==PROF== stand-in"`,
	"path/torch-python": `case $1 in
*torch_step_cuda.py) for b in 100 1024 4096; do for p in fp32 tf32; do for g in 0 1; do
	echo "torch-cuda batch=$b precision=$p graph=$g ms=1 it_per_s=1600.0"; done; done; done ;;
*torch_dcgan.py) for b in 64 512; do for p in fp32 tf32; do for g in 0 1; do
	echo "torch-cuda net=dcgan-mnist batch=$b precision=$p graph=$g ms_per_iter=2 it_per_s=$((300 + 100 * g)).0"; done; done; done ;;
esac`,
}

// gpuCheck runs `scripts/gpu-check.sh run` on the stand-ins and returns its output,
// $OUT and its exit error.
func gpuCheck(t *testing.T, env ...string) (log, out string, err error) {
	t.Helper()
	bash := needTool(t, "bash", "bash")
	needTool(t, "python3", "python3") // scripts/gpu-bench-table.py
	tmp := t.TempDir()
	for name, body := range gpuCheckFakes {
		p := filepath.Join(tmp, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("#!/usr/bin/env bash\n"+body+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(tmp, "bin/mnist"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tmp, "bin/mnist/train-images-idx3-ubyte.gz"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	out = filepath.Join(tmp, "out")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bash, "../scripts/gpu-check.sh", "run")
	cmd.Env = append(os.Environ(), append([]string{"GPU_CHECK_BIN=" + filepath.Join(tmp, "bin"), "OUT=" + out,
		"PATH=" + filepath.Join(tmp, "path") + ":" + os.Getenv("PATH"), "PYTHON=" + filepath.Join(tmp, "path/torch-python"),
		"CUDA_CACHE_PATH=" + filepath.Join(tmp, "cuda-cache")}, env...)...)
	b, err := cmd.CombinedOutput()
	return string(b), out, err
}

// summaryRows returns the status of each step in summary.txt.
func summaryRows(t *testing.T, out string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(out, "summary.txt"))
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]string{}
	lines := strings.Split(string(b), "\n")
	for _, l := range lines[2:] {
		f := strings.Fields(l)
		if len(f) < 2 {
			break
		}
		rows[f[0]] = f[1]
	}
	return rows
}

func outFiles(t *testing.T, out string) []string {
	t.Helper()
	entries, err := os.ReadDir(out)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	sort.Strings(got)
	return got
}

// The GPU check runs only on a GPU machine; here its scripts run on stand-ins of the
// binaries and tools, so that a broken script is found before it costs GPU time.
func TestGPUCheckScriptsOnStandIns(t *testing.T) {
	steps := []string{"info", "oom", "ops", "checkpoint", "memcheck", "memcheck-conv", "cli", "train-conv", "racecheck",
		"memcheck-tf32", "racecheck-tf32", "initcheck", "memcheck-gemm", "racecheck-gemm", "synccheck-gemm", "train",
		"track", "bench", "bench-conv", "torch", "torch-conv", "profile"}

	t.Run("all pass", func(t *testing.T) {
		log, out, err := gpuCheck(t)
		if err != nil {
			t.Fatalf("gpu-check.sh run: %v\n%s", err, tail(log, 3000))
		}
		rows := summaryRows(t, out)
		for _, s := range steps {
			if rows[s] != "ok" {
				t.Errorf("step %s: %q, want ok\n%s", s, rows[s], tail(log, 3000))
			}
		}
		if len(rows) != len(steps) {
			t.Errorf("%d rows, want %d: %v", len(rows), len(steps), rows)
		}
		want := "bench.json bench.log logs.tar.gz ops.log other.log summary.txt torch.log track.log"
		if got := strings.Join(outFiles(t, out), " "); got != want {
			t.Errorf("$OUT holds %s, want %s", got, want)
		}
		// The paper's nets (6 rows), then dcgan-mnist's (4 rows).
		var bench struct {
			Rows []struct {
				Net         string   `json:"net"`
				Batch       int      `json:"batch"`
				Precision   string   `json:"precision"`
				GantrainIts *float64 `json:"gantrain_its"`
				TorchEager  *float64 `json:"torch_eager_its"`
				TorchGraphs *float64 `json:"torch_graphs_its"`
			} `json:"rows"`
		}
		b, err := os.ReadFile(filepath.Join(out, "bench.json"))
		if err == nil {
			err = json.Unmarshal(b, &bench)
		}
		if err != nil || len(bench.Rows) != 10 {
			t.Fatalf("bench.json: %v, want 10 rows\n%s", err, b)
		}
		if r := bench.Rows[0]; r.Net != "paper" || r.GantrainIts == nil || *r.GantrainIts != 2000 || r.TorchGraphs == nil || *r.TorchGraphs != 1600 {
			t.Errorf("bench.json's first row: %+v\n%s", r, b)
		}
		if r := bench.Rows[9]; r.Net != "dcgan-mnist" || r.Batch != 512 || r.Precision != "tf32" || r.GantrainIts == nil || *r.GantrainIts != 500 ||
			r.TorchEager == nil || *r.TorchEager != 300 || r.TorchGraphs == nil || *r.TorchGraphs != 400 {
			t.Errorf("bench.json's last row: %+v\n%s", r, b)
		}
		if sum, _ := os.ReadFile(filepath.Join(out, "summary.txt")); !strings.Contains(string(sum), "RESULT: all steps passed") ||
			!strings.Contains(string(sum), "1.25x") || !strings.Contains(string(sum), "dcgan-mnist nets") ||
			strings.Count(string(sum), "1 passed, 0 failed: value 1.5") != 3 {
			t.Errorf("summary.txt lacks the result, the ratio 2000/1600, the dcgan-mnist table or the values the cli, train-conv and train steps' tests logged:\n%s", sum)
		}
	})

	t.Run("a failing step", func(t *testing.T) {
		log, out, err := gpuCheck(t, "FAKE_FAIL=ops", "SKIP=track racecheck racecheck-tf32 racecheck-gemm")
		if err == nil {
			t.Fatalf("gpu-check.sh run passed with a failing step:\n%s", tail(log, 3000))
		}
		rows := summaryRows(t, out)
		if rows["ops"] != "FAIL(1)" || rows["track"] != "skipped" || rows["checkpoint"] != "ok" {
			t.Errorf("rows %v, want ops FAIL(1), track skipped, checkpoint ok", rows)
		}
		if sum, _ := os.ReadFile(filepath.Join(out, "summary.txt")); !strings.Contains(string(sum), "1 passed, 1 failed") ||
			!strings.Contains(string(sum), "RESULT: FAILURES") {
			t.Errorf("summary.txt:\n%s", sum)
		}
	})

	t.Run("alongside", func(t *testing.T) {
		log, out, err := gpuCheck(t, `GPU_CHECK_ALONGSIDE=echo started; sleep 1; echo "trained in $OUT" > "$OUT/done"; echo trained`)
		if err != nil {
			t.Fatalf("gpu-check.sh run: %v\n%s", err, tail(log, 3000))
		}
		if rows := summaryRows(t, out); rows["alongside"] != "ok" || len(rows) != len(steps)+1 {
			t.Errorf("rows %v, want every step and alongside ok", rows)
		}
		if got := strings.Join(outFiles(t, out), " "); got != "alongside bench.json logs.tar.gz summary.txt" {
			t.Errorf("beside an alongside command $OUT holds %s", got)
		}
		if _, err := os.Stat(filepath.Join(out, "alongside/done")); err != nil {
			t.Errorf("the alongside command's OUT: %v", err)
		}
		if !strings.Contains(log, "alongside: SIGSTOP to ") || !strings.Contains(log, "alongside: SIGCONT to ") {
			t.Errorf("the alongside command was not paused for the timings:\n%s", tail(log, 3000))
		}
	})

	t.Run("dry run", func(t *testing.T) {
		log, out, err := gpuCheck(t, "GPU_CHECK_DRY_RUN=1", "FAKE_FAIL=ops")
		if err != nil {
			t.Fatalf("gpu-check.sh run: %v\n%s", err, tail(log, 3000))
		}
		if rows := summaryRows(t, out); rows["ops"] != "ok" || !strings.Contains(log, "== ops (timeout 180s") {
			t.Errorf("a dry run ran ops or did not print it: %v\n%s", rows, tail(log, 3000))
		}
	})
}
