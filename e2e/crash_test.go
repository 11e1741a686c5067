//go:build linux

package e2e

import (
	"math/rand/v2"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gantrain/gantrain/checkpoint"
)

// kill -9 at random moments of a run that writes a checkpoint after every step (so
// it is nearly always in the middle of one) never leaves the run without a loadable
// newest checkpoint: after every kill the newest step-*.safetensors decodes with its
// checksum, nothing is refused on resume, temporary files of interrupted writes are
// ignored and cleaned up by the next run, and a final --resume completes.
func TestKill9DuringCheckpointWrites(t *testing.T) {
	rounds, budget := 25, 20*time.Second
	if testing.Short() {
		rounds, budget = 4, 5*time.Second
	}
	const seed = 20261127
	rng := rand.New(rand.NewPCG(seed, 3))
	run := filepath.Join(t.TempDir(), "run")
	common := []string{"--blas", "go", "--progress", "plain", "--listen", "off"}
	startAt := time.Now()
	tempsSeen, killedMidWrite := 0, 0
	done := 0
	var prevTemps []string
	for round := 0; round < rounds && (round < 3 || time.Since(startAt) < budget); round++ {
		var p *proc
		if round == 0 {
			p = gantrain(t, nil, ringArgs(run, "--steps", "1000000", "--checkpoint-every", "1",
				"--keep-checkpoints", "3", "--log-every", "25", "--sample-every", "0", "--listen", "off")...)
			// Kill only once there is something to lose.
			waitFor(t, 30*time.Second, "the first checkpoint", func() bool { return listCheckpoints(t, run).newest >= 1 })
		} else {
			p = gantrain(t, nil, append([]string{"train", "--resume", run, "--steps", "1000000"}, common...)...)
		}
		delay := time.Duration(50+rng.IntN(351)) * time.Millisecond
		time.Sleep(delay)
		if p.exited() {
			t.Fatalf("round %d: gantrain exited (%v) before the kill:\n%s", round, p.state, tail(p.out.String(), 3000))
		}
		if err := syscall.Kill(p.cmd.Process.Pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		if st := p.wait(10 * time.Second); st == nil {
			t.Fatalf("round %d: not dead 10 s after SIGKILL", round)
		}
		out := p.out.String()
		if strings.Contains(out, "refused") || strings.Contains(out, "level=ERROR") {
			t.Errorf("round %d: the run refused a checkpoint or logged an error:\n%s", round, tail(out, 3000))
		}
		cd := listCheckpoints(t, run)
		if cd.newest < 0 {
			t.Fatalf("round %d (killed after %v): no checkpoint left", round, delay)
		}
		if len(cd.refused) > 0 || len(cd.other) > 0 {
			t.Errorf("round %d: unexpected files in checkpoints/: refused %v, other %v", round, cd.refused, cd.other)
		}
		f, err := checkpoint.ReadFile(cd.steps[cd.newest], checkpoint.DecodeOptions{})
		if err != nil {
			t.Fatalf("round %d (killed after %v): the newest checkpoint does not load: %v", round, delay, err)
		}
		if s := f.Metadata["gantrain.step"]; s != strconv.FormatInt(cd.newest, 10) {
			t.Errorf("round %d: %s holds step %s", round, cd.steps[cd.newest], s)
		}
		// The temp files the previous kill left are gone once this run got going.
		if strings.Contains(out, "msg=training") {
			for _, name := range prevTemps {
				if slices.Contains(cd.temps, name) {
					t.Errorf("round %d: temp file %s of an earlier interrupted write was not cleaned up", round, name)
				}
			}
		}
		prevTemps = cd.temps
		if len(cd.temps) > 0 {
			tempsSeen += len(cd.temps)
			killedMidWrite++
		}
		t.Logf("round %d: killed after %v at checkpoint step %d (%d checkpoints, %d temp files)", round, delay, cd.newest, len(cd.steps), len(cd.temps))
		done++
	}
	if killedMidWrite == 0 {
		t.Logf("no kill landed inside a checkpoint write this time (no temp files seen)")
	}

	// A final resume starts from the newest checkpoint, removes the leftovers and runs
	// to its end.
	before := listCheckpoints(t, run)
	end := before.newest + 10
	p := gantrain(t, nil, append([]string{"train", "--resume", run, "--steps", strconv.FormatInt(end, 10)}, common...)...)
	p.waitExit(60*time.Second, 0)
	if !regexp.MustCompile(`msg=resuming step=` + strconv.FormatInt(before.newest, 10) + ` .*skipped=0`).MatchString(p.out.String()) {
		t.Errorf("final resume did not start from the newest checkpoint (step %d) without skipping:\n%s", before.newest, tail(p.out.String(), 3000))
	}
	after := listCheckpoints(t, run)
	if len(after.temps) > 0 || len(after.refused) > 0 {
		t.Errorf("after a completed run checkpoints/ still holds temp files %v, refused %v", after.temps, after.refused)
	}
	if after.newest != end || len(after.steps) != 3 {
		t.Errorf("after the final run: newest checkpoint step %d, %d kept; want step %d and 3 kept", after.newest, len(after.steps), end)
	}
	if _, err := checkpoint.ReadFile(after.steps[end], checkpoint.DecodeOptions{}); err != nil {
		t.Fatal(err)
	}
	// metrics.jsonl went through every kill too: whole records, each log step once.
	recs := readMetrics(t, run)
	for i, rec := range recs {
		if rec.Step != int64(25*(i+1)) {
			t.Fatalf("metrics.jsonl record %d has step %d, want %d", i, rec.Step, 25*(i+1))
		}
	}
	if want := end / 25; int64(len(recs)) != want {
		t.Errorf("metrics.jsonl has %d records, want %d", len(recs), want)
	}
	t.Logf("%d kills in %v, %d of them left temp files (%d in all); final resume from step %d to %d ok",
		done, time.Since(startAt).Round(time.Millisecond), killedMidWrite, tempsSeen, before.newest, end)
}
