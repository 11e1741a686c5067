//go:build linux

package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// A real Prometheus server on loopback scrapes a training gantrain every second and
// sees gantrain_steps_total increase from one scrape to the next, with up == 1; and
// promtool finds nothing to report on a live /metrics scrape.
func TestPrometheusScrapesTraining(t *testing.T) {
	promBin := needTool(t, "prometheus", "prometheus")
	promtool := needTool(t, "promtool", "prometheus")
	tmp := t.TempDir()
	g := gantrain(t, nil, ringArgs(filepath.Join(tmp, "run"), "--steps", "1000000", "--log-every", "10",
		"--sample-every", "500", "--checkpoint-every", "0", "--listen", "127.0.0.1:0")...)
	target := g.addr()
	waitFor(t, 30*time.Second, "the first observed step", func() bool {
		var st status
		getJSON(t, "http://"+target+"/v1/status", &st)
		return st.ObservedStep > 0
	})

	t.Run("promtool", func(t *testing.T) {
		code, body := get(t, "http://"+target+"/metrics")
		if code != http.StatusOK {
			t.Fatalf("/metrics: %d", code)
		}
		cmd := exec.Command(promtool, "check", "metrics")
		cmd.Stdin = bytes.NewReader(body)
		out, err := cmd.CombinedOutput()
		if err != nil || len(out) > 0 {
			t.Errorf("promtool check metrics: %v\n%s", err, out)
		}
		for _, name := range []string{"gantrain_steps_total", "gantrain_loss", "gantrain_build_info", "go_goroutines", "process_cpu_seconds_total"} {
			if !bytes.Contains(body, []byte("\n"+name)) {
				t.Errorf("/metrics lacks %s", name)
			}
		}
	})

	rules, err := filepath.Abs("../docker/prometheus/gantrain.rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(tmp, "prometheus.yml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files:
  - %s
scrape_configs:
  - job_name: gantrain
    static_configs:
      - targets: ['%s']
`, rules, target)), 0o644); err != nil {
		t.Fatal(err)
	}
	var prom *proc
	var promURL string
	for try := 0; ; try++ {
		// The port is chosen free a moment before Prometheus binds it; on the rare
		// collision, choose again.
		port := freePort(t)
		promURL = "http://127.0.0.1:" + strconv.Itoa(port)
		prom = start(t, nil, promBin, "--config.file="+cfg, "--storage.tsdb.path="+filepath.Join(tmp, "tsdb"+strconv.Itoa(try)),
			"--web.listen-address=127.0.0.1:"+strconv.Itoa(port), "--log.level=warn")
		ready := false
		deadline := time.Now().Add(30 * time.Second)
		for !ready && !prom.exited() && time.Now().Before(deadline) {
			if resp, err := client.Get(promURL + "/-/ready"); err == nil {
				ready = resp.StatusCode == http.StatusOK
				resp.Body.Close()
			}
			if !ready {
				time.Sleep(100 * time.Millisecond)
			}
		}
		if ready {
			break
		}
		if !prom.exited() || try == 2 {
			t.Fatalf("prometheus not ready within 30 s:\n%s", tail(prom.out.String(), 3000))
		}
		prom.killGroup()
	}

	// Two scrapes in a row with a higher count the second time.
	var samples [][2]float64
	waitFor(t, 30*time.Second, "Prometheus to see gantrain_steps_total increase between two scrapes", func() bool {
		res := promQuery(t, promURL, `gantrain_steps_total{job="gantrain"}[30s]`)
		samples = nil
		for _, r := range res {
			for _, v := range r.Values {
				samples = append(samples, [2]float64{v.t, v.v})
			}
		}
		for i := 1; i < len(samples); i++ {
			if samples[i][1] > samples[i-1][1] {
				t.Logf("scrape at %.3f: %g, at %.3f: %g", samples[i-1][0], samples[i-1][1], samples[i][0], samples[i][1])
				return true
			}
		}
		return false
	})
	up := promQuery(t, promURL, `up{job="gantrain"}`)
	if len(up) != 1 || up[0].Value.v != 1 {
		t.Errorf("up{job=\"gantrain\"} = %+v, want one series of value 1", up)
	}
	if bi := promQuery(t, promURL, `gantrain_build_info{backend="cpu"}`); len(bi) != 1 {
		t.Errorf("gantrain_build_info{backend=\"cpu\"}: %d series, want 1", len(bi))
	}

	t.Run("rules", func(t *testing.T) {
		// The shipped rules load and evaluate without error on a live scrape, and the
		// step rate they record is positive.
		waitFor(t, 30*time.Second, "the gantrain rules to be evaluated", func() bool {
			var resp struct {
				Data struct {
					Groups []struct {
						Name  string `json:"name"`
						Rules []struct {
							Name      string `json:"name"`
							Health    string `json:"health"`
							LastError string `json:"lastError"`
						} `json:"rules"`
					} `json:"groups"`
				} `json:"data"`
			}
			getJSON(t, promURL+"/api/v1/rules", &resp)
			ok := 0
			for _, g := range resp.Data.Groups {
				for _, r := range g.Rules {
					if r.Health == "err" {
						t.Fatalf("rule %s/%s: %s", g.Name, r.Name, r.LastError)
					}
					if r.Health == "ok" {
						ok++
					}
				}
			}
			return ok == 9
		})
		waitFor(t, 30*time.Second, "gantrain:steps_per_second:rate5m > 0", func() bool {
			res := promQuery(t, promURL, `gantrain:steps_per_second:rate5m{job="gantrain"}`)
			return len(res) == 1 && res[0].Value.v > 0
		})
	})

	t.Run("dashboard", func(t *testing.T) {
		// Every query of the shipped Grafana dashboard runs, with its variables set as
		// Grafana would; those of metrics every run has return data.
		raw, err := os.ReadFile("../docker/grafana/gantrain-dashboard.json")
		if err != nil {
			t.Fatal(err)
		}
		var dash struct {
			Panels []struct {
				Title   string `json:"title"`
				Targets []struct {
					Expr string `json:"expr"`
				} `json:"targets"`
			} `json:"panels"`
		}
		if err := json.Unmarshal(raw, &dash); err != nil {
			t.Fatalf("gantrain-dashboard.json: %v", err)
		}
		everyRun := map[string]bool{"Training": true, "Epoch": true, "Iterations/s": true, "Losses": true,
			"Discriminator outputs": true, "Throughput": true, "Step duration": true, "Learning rate and momentum": true}
		vars := strings.NewReplacer(`"$job"`, `"gantrain"`, `"$instance"`, `".*"`)
		seen := 0
		for _, p := range dash.Panels {
			if len(p.Targets) == 0 {
				t.Errorf("panel %q has no query", p.Title)
			}
			data := false
			for _, tg := range p.Targets {
				if tg.Expr == "" {
					t.Errorf("panel %q: a target without an expression", p.Title)
					continue
				}
				data = data || len(promQuery(t, promURL, vars.Replace(tg.Expr))) > 0
			}
			if everyRun[p.Title] {
				seen++
				if !data {
					t.Errorf("panel %q: no data from a training run", p.Title)
				}
			}
		}
		if seen != len(everyRun) {
			t.Errorf("%d of the %d panels every run fills are in the dashboard", seen, len(everyRun))
		}
	})

	t.Run("rule-tests", func(t *testing.T) {
		cmd := exec.Command(promtool, "test", "rules", "gantrain.rules.test.yml")
		cmd.Dir = "../docker/prometheus"
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool test rules: %v\n%s", err, out)
		}
	})
}

// promSample is one [time, "value"] pair of the Prometheus API.
type promSample struct{ t, v float64 }

func (s *promSample) UnmarshalJSON(b []byte) error {
	var pair [2]any
	if err := json.Unmarshal(b, &pair); err != nil {
		return err
	}
	ts, ok1 := pair[0].(float64)
	vs, ok2 := pair[1].(string)
	if !ok1 || !ok2 {
		return fmt.Errorf("bad sample %s", b)
	}
	v, err := strconv.ParseFloat(vs, 64)
	s.t, s.v = ts, v
	return err
}

type promSeries struct {
	Metric map[string]string `json:"metric"`
	Value  promSample        `json:"value"`  // instant vectors
	Values []promSample      `json:"values"` // range vectors
}

// promQuery runs an instant query against Prometheus's HTTP API.
func promQuery(t *testing.T, base, q string) []promSeries {
	t.Helper()
	var resp struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string       `json:"resultType"`
			Result     []promSeries `json:"result"`
		} `json:"data"`
	}
	getJSON(t, base+"/api/v1/query?query="+url.QueryEscape(q), &resp)
	if resp.Status != "success" {
		t.Fatalf("query %s: %s %s", q, resp.Status, resp.Error)
	}
	return resp.Data.Result
}
