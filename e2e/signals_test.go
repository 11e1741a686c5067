//go:build linux

package e2e

import (
	"bytes"
	"net"
	"path/filepath"
	"regexp"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/gantrain/gantrain/checkpoint"
)

// ringArgs are the flags of a small, fast, deterministic ring run in dir.
func ringArgs(dir string, extra ...string) []string {
	return append([]string{"train", "--preset", "ring", "--seed", "7", "--out", dir, "--blas", "go",
		"--progress", "plain"}, extra...)
}

// SIGTERM during training: the run finishes its step, writes a checkpoint of it and
// exits 0 within 10 s; --resume then continues the run so that metrics.jsonl is one
// unbroken series with exactly the values an uninterrupted run writes.
func TestSIGTERMThenResume(t *testing.T) {
	tmp := t.TempDir()
	run, ref := filepath.Join(tmp, "run"), filepath.Join(tmp, "ref")
	const logEvery = 10

	p := gantrain(t, nil, ringArgs(run, "--steps", "1000000", "--log-every", strconv.Itoa(logEvery),
		"--checkpoint-every", "0", "--listen", "off")...)
	p.waitOutput(30*time.Second, regexp.MustCompile(`msg=step step=(1[5-9]\d|[2-9]\d\d|\d{4,}) `)) // step ≥ 150
	sent := time.Now()
	p.signal(syscall.SIGTERM)
	p.waitExit(10*time.Second, 0)
	t.Logf("SIGTERM → exit 0 in %v", time.Since(sent).Round(time.Millisecond))
	out := p.out.String()
	if !regexp.MustCompile(`msg="stopping on request" step=\d+`).MatchString(out) {
		t.Errorf("no 'stopping on request' log line:\n%s", tail(out, 2000))
	}
	m := regexp.MustCompile(`msg=done step=(\d+) `).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no 'done' log line:\n%s", tail(out, 2000))
	}
	stopped, _ := strconv.ParseInt(m[1], 10, 64)
	cd := listCheckpoints(t, run)
	if cd.newest != stopped {
		t.Fatalf("newest checkpoint is of step %d, want the final step %d (%v)", cd.newest, stopped, cd.steps)
	}
	if _, err := checkpoint.ReadFile(cd.steps[stopped], checkpoint.DecodeOptions{}); err != nil {
		t.Fatalf("final checkpoint: %v", err)
	}

	// Resume to a step past the stop, and run the same config uninterrupted to it.
	end := stopped + 150
	r := gantrain(t, nil, "train", "--resume", run, "--steps", strconv.FormatInt(end, 10), "--blas", "go",
		"--progress", "plain", "--listen", "off")
	u := gantrain(t, nil, ringArgs(ref, "--steps", strconv.FormatInt(end, 10), "--log-every", strconv.Itoa(logEvery),
		"--checkpoint-every", "0", "--listen", "off")...)
	r.waitExit(60*time.Second, 0)
	u.waitExit(60*time.Second, 0)
	if !regexp.MustCompile(`msg=resuming step=` + m[1] + ` `).MatchString(r.out.String()) {
		t.Errorf("resumed run did not start from step %d:\n%s", stopped, tail(r.out.String(), 2000))
	}

	got, want := readMetrics(t, run), readMetrics(t, ref)
	// One unbroken series across the two processes: every log step once, in order.
	for i, rec := range got {
		if wantStep := int64(logEvery * (i + 1)); rec.Step != wantStep {
			t.Fatalf("metrics.jsonl record %d has step %d, want %d (steps must be continuous, increasing, without duplicates)", i, rec.Step, wantStep)
		}
	}
	if n := int64(len(got)); n != end/logEvery {
		t.Fatalf("metrics.jsonl of the resumed run has %d records, want %d (steps %d…%d)", n, end/logEvery, logEvery, end)
	}
	if len(want) != len(got) {
		t.Fatalf("uninterrupted run logged %d records, the stopped and resumed one %d", len(want), len(got))
	}
	resumedRecords := 0
	for i := range got {
		if got[i].Step > stopped {
			resumedRecords++
		}
		for _, k := range []string{"step", "epoch", "d_loss", "g_loss", "d_real", "d_fake", "lr", "momentum"} {
			if !bytes.Equal(got[i].Values[k], want[i].Values[k]) {
				t.Errorf("step %d: %s = %s after stop and resume, %s uninterrupted", got[i].Step, k, got[i].Values[k], want[i].Values[k])
			}
		}
	}
	t.Logf("stopped at step %d, resumed to %d: %d records, %d of them after the resume, equal to the uninterrupted run's", stopped, end, len(got), resumedRecords)

	// The final parameters agree too.
	a, err := checkpoint.ReadFile(checkpointPath(run, end), checkpoint.DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := checkpoint.ReadFile(checkpointPath(ref, end), checkpoint.DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Tensors) != len(b.Tensors) {
		t.Fatalf("checkpoints hold %d and %d tensors", len(a.Tensors), len(b.Tensors))
	}
	for i := range a.Tensors {
		ta, tb := a.Tensors[i], b.Tensors[i]
		if ta.Name != tb.Name || len(ta.F32) != len(tb.F32) || len(ta.I32) != len(tb.I32) {
			t.Fatalf("tensor %d: %s/%s differ in name or size", i, ta.Name, tb.Name)
		}
		for j := range ta.F32 {
			if ta.F32[j] != tb.F32[j] {
				t.Errorf("tensor %s[%d]: %v after stop and resume, %v uninterrupted", ta.Name, j, ta.F32[j], tb.F32[j])
				break
			}
		}
		for j := range ta.I32 {
			if ta.I32[j] != tb.I32[j] {
				t.Errorf("tensor %s[%d]: %v after stop and resume, %v uninterrupted", ta.Name, j, ta.I32[j], tb.I32[j])
				break
			}
		}
	}
}

func checkpointPath(run string, step int64) string {
	return filepath.Join(run, "checkpoints", "step-"+pad9(step)+".safetensors")
}

func pad9(n int64) string {
	s := strconv.FormatInt(n, 10)
	for len(s) < 9 {
		s = "0" + s
	}
	return s
}

// A second signal while the process shuts down slowly ends it at once. The slow
// shutdown is made deterministic: a client connection that never sends a request
// holds the HTTP server's graceful shutdown for about 5 s (net/http waits for
// connections younger than 5 s that have not sent a header, up to the server's
// read-header timeout of 5 s), so after the first SIGTERM the run ends, logs "done"
// and the process then waits in the HTTP shutdown; the second SIGTERM must kill it.
func TestSecondSignalExitsAtOnce(t *testing.T) {
	run := filepath.Join(t.TempDir(), "run")
	p := gantrain(t, nil, ringArgs(run, "--steps", "1000000", "--log-every", "50", "--listen", "127.0.0.1:0")...)
	addr := p.addr()
	p.waitOutput(30*time.Second, regexp.MustCompile(`msg=step step=\d+`))
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	time.Sleep(100 * time.Millisecond) // let the server accept it
	p.signal(syscall.SIGTERM)
	p.waitOutput(10*time.Second, regexp.MustCompile(`msg=done step=\d+`))
	// The run is over; the process is held in the HTTP server's shutdown.
	if st := p.wait(time.Second); st != nil {
		t.Skipf("the shutdown was not slow (exited %v within 1 s of 'done'), so a second signal cannot be tested this way", st)
	}
	sent := time.Now()
	p.signal(syscall.SIGTERM)
	st := p.wait(2 * time.Second)
	if st == nil {
		t.Fatal("still running 2 s after the second SIGTERM")
	}
	ws, _ := st.Sys().(syscall.WaitStatus)
	if !ws.Signaled() || ws.Signal() != syscall.SIGTERM {
		t.Fatalf("after the second SIGTERM: %v; want killed by SIGTERM (a second signal exits at once)", st)
	}
	t.Logf("second SIGTERM → %v in %v", st, time.Since(sent).Round(time.Millisecond))
	// The first signal's work was done: the final checkpoint is on disk.
	cd := listCheckpoints(t, run)
	if cd.newest < 1 {
		t.Fatal("no checkpoint after the first SIGTERM")
	}
	if _, err := checkpoint.ReadFile(cd.steps[cd.newest], checkpoint.DecodeOptions{}); err != nil {
		t.Fatal(err)
	}
}
