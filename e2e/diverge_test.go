//go:build linux

package e2e

import (
	"math"
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gantrain/gantrain/checkpoint"
)

// A diverging run (the ring with plain SGD at the largest learning rate the config
// allows: a loss is NaN or infinite within a few steps) stops with an error naming
// the loss and "diverged", /readyz fails saying so, gantrain_ready is 0, the status
// says diverged, the process exits 1, and the newest checkpoint is finite and loads.
func TestDivergenceStopsTheRun(t *testing.T) {
	run := filepath.Join(t.TempDir(), "run")
	p := gantrain(t, nil, ringArgs(run, "--steps", "3000", "--optimizer", "sgd", "--lr", "10", "--log-every", "1",
		"--checkpoint-every", "1", "--keep-checkpoints", "3", "--listen", "127.0.0.1:0", "--linger", "60s")...)
	base := "http://" + p.addr()
	p.waitOutput(30*time.Second, regexp.MustCompile(`run ended; still serving`))

	code, body := get(t, base+"/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(string(body), "diverged") {
		t.Errorf("/readyz after divergence: %d %q; want 503 mentioning diverged", code, body)
	}
	_, metrics := get(t, base+"/metrics")
	if !regexp.MustCompile(`(?m)^gantrain_ready 0$`).Match(metrics) {
		t.Errorf("/metrics lacks gantrain_ready 0:\n%s", grepLines(string(metrics), "gantrain_ready"))
	}
	var st status
	getJSON(t, base+"/v1/status", &st)
	lossOrParam := regexp.MustCompile(`(d_loss|g_loss|(generator|discriminator)\.[\w.]+\[\d+\]) is (NaN|[+-]Inf)`)
	if st.State != "diverged" {
		t.Errorf("/v1/status state %q, want diverged (error %q)", st.State, st.Error)
	}
	if !strings.Contains(st.Error, "diverged") || !lossOrParam.MatchString(st.Error) {
		t.Errorf("/v1/status error %q does not name the loss or parameter and 'diverged'", st.Error)
	}

	// The lingering process ends on SIGTERM with the run's error.
	p.signal(syscall.SIGTERM)
	p.waitExit(10*time.Second, 1)
	out := p.out.String()
	m := regexp.MustCompile(`gantrain train: step (\d+): .*diverged.*`).FindString(out)
	if m == "" || !lossOrParam.MatchString(m) {
		t.Errorf("no final error naming the loss or parameter and 'diverged':\n%s", tail(out, 2000))
	}
	t.Logf("error: %s", m)

	cd := listCheckpoints(t, run)
	if cd.newest < 1 {
		t.Fatalf("no checkpoint left after divergence")
	}
	f, err := checkpoint.ReadFile(cd.steps[cd.newest], checkpoint.DecodeOptions{})
	if err != nil {
		t.Fatalf("newest checkpoint after divergence: %v", err)
	}
	for _, ten := range f.Tensors {
		for i, v := range ten.F32 {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				t.Fatalf("newest checkpoint (step %d) holds %s[%d] = %v", cd.newest, ten.Name, i, v)
			}
		}
	}
	if !strings.Contains(m, "the last checkpoint, step "+strconv.FormatInt(cd.newest, 10)) {
		t.Errorf("the error should name the kept checkpoint, step %d: %s", cd.newest, m)
	}
}

// grepLines returns the lines of s containing sub.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
