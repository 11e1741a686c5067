package service

import (
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gantrain/gantrain/backend"
	"github.com/gantrain/gantrain/config"
	"github.com/gantrain/gantrain/trainer"
)

// Every gantrain_ metric that the shipped Prometheus rules and Grafana dashboard
// (docker/) name is one this package exports, so a renamed metric cannot leave them
// querying nothing. (e2e/prometheus_test.go runs their queries on a live Prometheus.)
func TestShippedRulesAndDashboardNameExportedMetrics(t *testing.T) {
	r, ts := newFakeRun(t, "")
	r.mon.RunStarted(trainer.RunInfo{Config: config.Default(), Dir: "/runs/x", Backend: "cuda", Device: "test GPU",
		Accelerator: backend.Accelerator{ID: "cuda:0", Name: "Test GPU", Compute: "9.0", Memory: 1 << 30}, StepsPerEpoch: 500, ExamplesPerStep: 100})
	r.mon.StepDone(trainer.StepReport{Stats: trainer.Stats{Step: 1}, Observed: true, MemoryUsed: 1 << 20, MemoryTotal: 1 << 30})
	r.mon.CheckpointWritten(trainer.CheckpointReport{Step: 1, Path: "/runs/x/c", Duration: time.Millisecond, Time: time.Now()})
	r.mon.Evaluated(1, map[string]float64{"parzen_ll": 1})
	r.mon.controlRequest("stop", 200)
	exported := map[string]bool{}
	for k := range scrape(t, ts.URL) {
		name := k
		if i := strings.IndexByte(name, '{'); i >= 0 {
			name = name[:i]
		}
		exported[name] = true
		exported[strings.TrimSuffix(name, "_count")+"_bucket"] = true
		exported[strings.TrimSuffix(name, "_count")+"_sum"] = true
	}
	names := regexp.MustCompile(`\bgantrain_[a-z_]+`)
	for _, file := range []string{"../docker/prometheus/gantrain.rules.yml", "../docker/prometheus/gantrain.rules.test.yml", "../docker/grafana/gantrain-dashboard.json"} {
		raw, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		found := names.FindAllString(string(raw), -1)
		if len(found) == 0 {
			t.Errorf("%s names no gantrain_ metric", file)
		}
		for _, n := range found {
			if !exported[n] {
				t.Errorf("%s queries %s, which gantrain does not export", file, n)
			}
		}
	}
}
