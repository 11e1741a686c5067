package service

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/gantrain/gantrain/backend"
	"github.com/gantrain/gantrain/config"
	"github.com/gantrain/gantrain/trainer"
)

// fakeRun plays a training run against a monitor: it serves commands like
// trainer.Run does, between "steps".
type fakeRun struct {
	mon      *Monitor
	commands chan trainer.Command
}

// newMonitor returns the monitor of a test build and the registry of its metrics.
func newMonitor() (*Monitor, *prometheus.Registry) {
	reg := prometheus.NewRegistry()
	info := BuildInfo{Version: "test", Backend: "cpu"}
	return NewMonitor(info, NewMetrics(reg, info)), reg
}

func newFakeRun(t *testing.T, token string) (*fakeRun, *httptest.Server) {
	t.Helper()
	mon, reg := newMonitor()
	r := &fakeRun{mon: mon, commands: make(chan trainer.Command, 1)}
	srv := New(mon, reg, Options{Addr: "127.0.0.1:0", Token: token, Commands: r.commands})
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	return r, ts
}

func (r *fakeRun) start(limit int64) {
	r.mon.RunStarted(trainer.RunInfo{Config: config.Default(), Dir: "/runs/x", Backend: "cpu", Device: "test CPU",
		StepLimit: limit, StepsPerEpoch: 500, ExamplesPerStep: 100})
}

func (r *fakeRun) step(n int64, observed bool) {
	st := trainer.Stats{Step: n, Epoch: float64(n) / 500, DLoss: 1 / float64(n+1), GLoss: 2 + 1/float64(n+1),
		DReal: 0.6, DFake: 0.4, LR: 0.1, DLR: 0.3, Mom: 0.5}
	r.mon.StepDone(trainer.StepReport{Stats: st, Observed: observed, Duration: time.Millisecond})
}

func get(t *testing.T, url string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, body
}

func post(t *testing.T, url, token string, body io.Reader) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, body)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

func TestHealthAndReadiness(t *testing.T) {
	r, ts := newFakeRun(t, "")
	if resp, _ := get(t, ts.URL+"/healthz"); resp.StatusCode != 200 {
		t.Errorf("/healthz: %d", resp.StatusCode)
	}
	steps := []struct {
		name  string
		do    func()
		code  int
		want  string
		ready float64
	}{
		{"starting", func() {}, 503, "starting", 0},
		{"training", func() { r.start(0) }, 200, "training", 1},
		{"diverged", func() {
			r.mon.RunEnded(7, false, fmt.Errorf("step 7: d_loss is NaN: %w", trainer.ErrDiverged))
		}, 503, "diverged: step 7: d_loss is NaN", 0},
		{"restarted", func() { r.start(0) }, 200, "training", 1},
		{"stopped", func() { r.mon.RunEnded(9, true, nil) }, 503, "stopped", 0},
		{"failed after the run ended keeps the run's state", func() { r.mon.Fail(errors.New("no data")) }, 503, "stopped", 0},
		{"restarted again", func() { r.start(0) }, 200, "training", 1},
		{"failed", func() { r.mon.Fail(errors.New("no data")) }, 503, "failed: no data", 0},
	}
	for _, s := range steps {
		s.do()
		resp, body := get(t, ts.URL+"/readyz")
		if resp.StatusCode != s.code || !strings.Contains(string(body), s.want) {
			t.Errorf("%s: /readyz %d %q, want %d containing %q", s.name, resp.StatusCode, body, s.code, s.want)
		}
		if got := scrape(t, ts.URL)["gantrain_ready"]; got != s.ready {
			t.Errorf("%s: gantrain_ready %v, want %v", s.name, got, s.ready)
		}
	}
}

// scrape parses /metrics into name{labels} → value.
func scrape(t *testing.T, url string) map[string]float64 {
	t.Helper()
	resp, body := get(t, url+"/metrics")
	if resp.StatusCode != 200 {
		t.Fatalf("/metrics: %d", resp.StatusCode)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("/metrics does not parse: %v", err)
	}
	out := map[string]float64{}
	for name, f := range fams {
		for _, m := range f.Metric {
			key := name
			for _, l := range m.Label {
				key += fmt.Sprintf("{%s=%s}", l.GetName(), l.GetValue())
			}
			switch {
			case m.Counter != nil:
				out[key] = m.Counter.GetValue()
			case m.Gauge != nil:
				out[key] = m.Gauge.GetValue()
			case m.Histogram != nil:
				out[key+"_count"] = float64(m.Histogram.GetSampleCount())
			}
		}
	}
	return out
}

func TestMetricsFollowTheRun(t *testing.T) {
	r, ts := newFakeRun(t, "")
	r.start(1000)
	for i := int64(1); i <= 10; i++ {
		r.step(i, i%5 == 0)
	}
	r.mon.CheckpointWritten(trainer.CheckpointReport{Step: 10, Path: "/runs/x/c", Duration: 20 * time.Millisecond, Time: time.Unix(1700000000, 0)})
	r.mon.CheckpointWritten(trainer.CheckpointReport{Step: 10, Err: errors.New("disk full")})
	r.mon.Evaluated(10, map[string]float64{"parzen_ll": 225.5})
	m := scrape(t, ts.URL)
	want := map[string]float64{
		"gantrain_steps_total":                               10,
		"gantrain_step":                                      10,
		"gantrain_examples_total":                            1000,
		"gantrain_epoch":                                     0.02,
		"gantrain_loss{net=discriminator}":                   1.0 / 11,
		"gantrain_loss{net=generator}":                       2 + 1.0/11,
		"gantrain_discriminator_output{input=real}":          0.6,
		"gantrain_discriminator_output{input=fake}":          0.4,
		"gantrain_learning_rate":                             0.1,
		"gantrain_discriminator_learning_rate":               0.3,
		"gantrain_momentum":                                  0.5,
		"gantrain_step_limit":                                1000,
		"gantrain_step_duration_seconds_count":               10,
		"gantrain_checkpoint_duration_seconds_count":         2,
		"gantrain_checkpoint_failures_total":                 1,
		"gantrain_checkpoint_last_success_timestamp_seconds": 1700000000,
		"gantrain_evaluation{metric=parzen_ll}":              225.5,
		"gantrain_ready":                                     1,
	}
	for k, v := range want {
		if got, ok := m[k]; !ok || got != v {
			t.Errorf("%s = %v (present %v), want %v", k, got, ok, v)
		}
	}
	var build bool
	for k, v := range m {
		if strings.HasPrefix(k, "gantrain_build_info{backend=cpu}{goversion=go") && strings.HasSuffix(k, "{version=test}") && v == 1 {
			build = true
		}
	}
	if !build {
		t.Errorf("no gantrain_build_info{backend=cpu,goversion,version=test} 1 in %v", m)
	}
	for _, k := range []string{"go_goroutines", "process_cpu_seconds_total"} {
		if _, ok := m[k]; !ok {
			t.Errorf("the Go and process collectors are missing %s", k)
		}
	}
}

// A run on an accelerator exports gantrain_device_info and labels the memory gauges
// with the device as --device names it; a CPU run exports neither.
func TestDeviceMetrics(t *testing.T) {
	r, ts := newFakeRun(t, "")
	r.start(0)
	r.step(1, true)
	for k := range scrape(t, ts.URL) {
		if strings.HasPrefix(k, "gantrain_device_") {
			t.Errorf("a CPU run exports %s", k)
		}
	}

	info := trainer.RunInfo{Config: config.Default(), Dir: "/runs/x", Backend: "cuda",
		Device:        "CUDA cuda:1: NVIDIA H200, compute 9.0, 132 SMs, 139.8 GiB, fp32 matrix products, driver 13.0",
		Accelerator:   backend.Accelerator{ID: "cuda:1", Name: "NVIDIA H200", Compute: "9.0", Memory: 150 << 30},
		StepsPerEpoch: 500, ExamplesPerStep: 100}
	r.mon.RunStarted(info)
	m := scrape(t, ts.URL)
	want := map[string]float64{
		"gantrain_device_info{compute_capability=9.0}{device=cuda:1}{name=NVIDIA H200}": 1,
		"gantrain_device_memory_total_bytes{device=cuda:1}":                             150 << 30,
	}
	for k, v := range want {
		if got, ok := m[k]; !ok || got != v {
			t.Errorf("before the first step: %s = %v (present %v), want %v", k, got, ok, v)
		}
	}
	r.mon.StepDone(trainer.StepReport{Stats: trainer.Stats{Step: 2}, Observed: true, MemoryUsed: 3 << 30, MemoryTotal: 140 << 30})
	m = scrape(t, ts.URL)
	want["gantrain_device_memory_used_bytes{device=cuda:1}"] = 3 << 30
	want["gantrain_device_memory_total_bytes{device=cuda:1}"] = 140 << 30
	for k, v := range want {
		if got, ok := m[k]; !ok || got != v {
			t.Errorf("after a step: %s = %v (present %v), want %v", k, got, ok, v)
		}
	}
	n := 0
	for k := range m {
		if strings.HasPrefix(k, "gantrain_device_") {
			n++
		}
	}
	if n != len(want) {
		t.Errorf("%d gantrain_device_ series, want %d: %v", n, len(want), m)
	}
}

func TestStatusAndHistory(t *testing.T) {
	r, ts := newFakeRun(t, "")
	if _, body := get(t, ts.URL+"/v1/status"); !strings.Contains(string(body), `"state":"starting"`) {
		t.Errorf("status before the run: %s", body)
	}
	r.start(1000)
	for i := int64(1); i <= 20; i++ {
		r.step(i, i%10 == 0)
		time.Sleep(2 * time.Millisecond)
	}
	r.mon.SamplesWritten(20, []byte("png"))
	_, body := get(t, ts.URL+"/v1/status")
	var st Status
	if err := json.Unmarshal(body, &st); err != nil {
		t.Fatal(err)
	}
	if st.State != StateTraining || st.Step != 20 || st.ObservedStep != 20 || st.DLoss != 1.0/21 || st.StepLimit != 1000 ||
		st.SampleStep != 20 || st.Config == nil || st.Config.Train.Batch != 100 || st.RunDir != "/runs/x" {
		t.Errorf("status %+v", st)
	}
	if st.StepsPerSecond <= 0 || st.ExamplesPerSecond != 100*st.StepsPerSecond || st.ETASeconds == nil || *st.ETASeconds <= 0 {
		t.Errorf("rates/ETA: %v steps/s, %v examples/s, eta %v", st.StepsPerSecond, st.ExamplesPerSecond, st.ETASeconds)
	}
	_, body = get(t, ts.URL+"/v1/history")
	var h struct {
		Step  []int64   `json:"step"`
		DLoss []float64 `json:"d_loss"`
	}
	if err := json.Unmarshal(body, &h); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(h.Step) != "[10 20]" || h.DLoss[1] != st.DLoss {
		t.Errorf("history %s", body)
	}
}

// A long run's history stays bounded, evenly thinned, and always ends at the newest
// observed step.
func TestHistoryThinning(t *testing.T) {
	r, _ := newFakeRun(t, "")
	r.start(0)
	const n = 3*maxHistory + 7
	for i := int64(1); i <= n; i++ {
		r.step(i, true)
		if i%97 != 0 && i < maxHistory-2 {
			continue
		}
		h := r.mon.History()
		if len(h) > maxHistory || h[len(h)-1].Step != i {
			t.Fatalf("after %d steps: %d points ending at %d", i, len(h), h[len(h)-1].Step)
		}
	}
	h := r.mon.History()
	if len(h) < maxHistory/4 {
		t.Errorf("only %d points kept of %d", len(h), n)
	}
	gap := h[1].Step - h[0].Step
	for i := 1; i < len(h)-1; i++ {
		if h[i].Step-h[i-1].Step != gap {
			t.Fatalf("uneven thinning at %d: %d after %d (stride %d)", i, h[i].Step, h[i-1].Step, gap)
		}
	}
}

func TestLatestSample(t *testing.T) {
	r, ts := newFakeRun(t, "")
	if resp, _ := get(t, ts.URL+"/samples/latest.png"); resp.StatusCode != 404 {
		t.Errorf("before any sample: %d, want 404", resp.StatusCode)
	}
	png := []byte("\x89PNG fake")
	r.mon.SamplesWritten(500, png)
	png[0] = 0 // the monitor must have copied it
	resp, body := get(t, ts.URL+"/samples/latest.png")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/png" || string(body) != "\x89PNG fake" {
		t.Fatalf("latest.png: %d %q %q", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	if resp, _ := get(t, ts.URL+"/samples/latest.png", "If-None-Match", resp.Header.Get("ETag")); resp.StatusCode != 304 {
		t.Errorf("same ETag: %d, want 304", resp.StatusCode)
	}
}

func TestPage(t *testing.T) {
	_, ts := newFakeRun(t, "")
	resp, body := get(t, ts.URL+"/")
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("/: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	// Offline: nothing but this origin.
	for _, bad := range []string{"http://", "https://", "//cdn", "@import", "<link"} {
		if i := strings.Index(string(body), bad); i >= 0 && !strings.Contains(string(body[i:min(i+40, len(body))]), "www.w3.org/2000/svg") {
			t.Errorf("page references %q: %s", bad, body[i:min(i+60, len(body))])
		}
	}
	if resp, _ := get(t, ts.URL+"/nope"); resp.StatusCode != 404 {
		t.Errorf("/nope: %d", resp.StatusCode)
	}
}

func TestControl(t *testing.T) {
	// Control is off without a token.
	r0, ts0 := newFakeRun(t, "")
	r0.start(0)
	if code, m := post(t, ts0.URL+"/v1/checkpoint", "anything", nil); code != 403 || !strings.Contains(fmt.Sprint(m["error"]), "off") {
		t.Errorf("no token configured: %d %v", code, m)
	}

	r, ts := newFakeRun(t, "s3cret")
	if code, _ := post(t, ts.URL+"/v1/checkpoint", "s3cret", nil); code != 409 {
		t.Errorf("before the run starts: %d, want 409", code)
	}
	r.start(0)
	for _, tok := range []string{"", "wrong", "s3cre", "s3cret2"} {
		if code, _ := post(t, ts.URL+"/v1/checkpoint", tok, nil); code != 401 {
			t.Errorf("token %q: %d, want 401", tok, code)
		}
	}
	if resp, _ := get(t, ts.URL+"/v1/stop", "Authorization", "Bearer s3cret"); resp.StatusCode != 405 {
		t.Errorf("GET /v1/stop: %d, want 405", resp.StatusCode)
	}
	if code, _ := post(t, ts.URL+"/v1/checkpoint", "s3cret", strings.NewReader(strings.Repeat("x", maxBodyBytes+1))); code != 413 {
		t.Errorf("large body: %d, want 413", code)
	}
	if len(r.commands) != 0 {
		t.Fatalf("refused requests queued %d commands", len(r.commands))
	}

	// The run serves one command: the reply carries the checkpoint.
	go func() {
		cmd := <-r.commands
		cmd.Reply <- trainer.CommandResult{Step: 42, Path: "/runs/x/checkpoints/step-000000042.safetensors"}
	}()
	code, m := post(t, ts.URL+"/v1/checkpoint", "s3cret", nil)
	if code != 200 || m["step"] != 42.0 || !strings.HasSuffix(fmt.Sprint(m["checkpoint"]), "step-000000042.safetensors") {
		t.Errorf("checkpoint: %d %v", code, m)
	}
	// A failed command is a 500 naming the error.
	go func() {
		cmd := <-r.commands
		cmd.Reply <- trainer.CommandResult{Step: 43, Err: errors.New("disk full")}
	}()
	if code, m := post(t, ts.URL+"/v1/stop", "s3cret", nil); code != 500 || !strings.Contains(fmt.Sprint(m["error"]), "disk full") {
		t.Errorf("failed stop: %d %v", code, m)
	}
	// While one command is pending (the run is inside a long step), another is refused.
	r.commands <- trainer.Command{Kind: trainer.CheckpointNow}
	if code, _ := post(t, ts.URL+"/v1/checkpoint", "s3cret", nil); code != 429 {
		t.Errorf("second pending command: %d, want 429", code)
	}
	m2 := scrape(t, ts.URL)
	if m2["gantrain_control_requests_total{action=checkpoint}{code=401}"] != 4 || m2["gantrain_control_requests_total{action=checkpoint}{code=200}"] != 1 {
		t.Errorf("control request counters: %v", m2)
	}
}

func TestServerLifecycle(t *testing.T) {
	mon, reg := newMonitor()
	s := New(mon, reg, Options{Addr: "127.0.0.1:0"})
	if s.srv.ReadHeaderTimeout == 0 || s.srv.ReadTimeout == 0 || s.srv.WriteTimeout == 0 || s.srv.IdleTimeout == 0 || s.srv.MaxHeaderBytes == 0 {
		t.Errorf("server limits unset: %+v", s.srv)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	resp, _ := get(t, "http://"+s.Addr()+"/healthz")
	if resp.StatusCode != 200 {
		t.Errorf("healthz %d", resp.StatusCode)
	}
	// A second server on the same port fails with an error naming the address.
	s2 := New(mon, reg, Options{Addr: s.Addr()})
	if err := s2.Start(); err == nil || !strings.Contains(err.Error(), s.Addr()) {
		t.Errorf("second listen: %v", err)
	}
	if err := s.Shutdown(t.Context()); err != nil {
		t.Errorf("shutdown: %v", err)
	}
}

// Requests beyond the rate limit wait their turn (none fails); the probes do not.
func TestRateLimit(t *testing.T) {
	mon, reg := newMonitor()
	s := New(mon, reg, Options{RateLimit: 20, RateBurst: 1})
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	start := time.Now()
	for i := 0; i < 6; i++ {
		if resp, _ := get(t, ts.URL+"/v1/status"); resp.StatusCode != 200 {
			t.Fatalf("request %d: %d", i, resp.StatusCode)
		}
	}
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Errorf("6 requests at 20/s (burst 1) took %v, want ≥ 250 ms", d)
	}
	start = time.Now()
	for i := 0; i < 50; i++ {
		if resp, _ := get(t, ts.URL+"/healthz"); resp.StatusCode != 200 {
			t.Fatalf("healthz %d: %d", i, resp.StatusCode)
		}
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("50 probes took %v: probes must not be held", d)
	}
}

// A flood of requests to the page and the API does not hold up a scrape of /metrics,
// which has a budget of its own.
func TestScrapesOutlastAFlood(t *testing.T) {
	mon, reg := newMonitor()
	s := New(mon, reg, Options{RateLimit: 20, RateBurst: 1})
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	for i := 0; i < 100; i++ { // 100 requests at 20/s: a queue of 5 s
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, ts.URL+"/v1/status", nil)
			if resp, err := http.DefaultClient.Do(req); err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}()
	}
	time.Sleep(200 * time.Millisecond) // the flood is queued
	start := time.Now()
	for i := 0; i < 3; i++ {
		if resp, _ := get(t, ts.URL+"/metrics"); resp.StatusCode != 200 {
			t.Fatalf("scrape %d: %d", i, resp.StatusCode)
		}
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("3 scrapes behind a flood of 100 requests took %v", d)
	}
	cancel()
	wg.Wait()
}

// Scrapes within the cache's time share one gathering; later ones gather anew.
func TestMetricsCache(t *testing.T) {
	mon, reg := newMonitor()
	now := time.Unix(0, 0)
	c := &cachedGatherer{g: reg, ttl: time.Second, now: func() time.Time { return now }}
	read := func() float64 {
		mfs, err := c.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range mfs {
			if f.GetName() == "gantrain_steps_total" {
				return f.Metric[0].Counter.GetValue()
			}
		}
		t.Fatal("no gantrain_steps_total")
		return 0
	}
	if v := read(); v != 0 {
		t.Fatalf("steps %v", v)
	}
	mon.StepDone(trainer.StepReport{Stats: trainer.Stats{Step: 1}})
	if v := read(); v != 0 {
		t.Errorf("within the TTL: %v, want the cached 0", v)
	}
	now = now.Add(time.Second)
	if v := read(); v != 1 {
		t.Errorf("after the TTL: %v, want 1", v)
	}
}

// A resumed run's history starts with the records of its metrics log up to the
// resumed step, and its last evaluation.
func TestResumedHistory(t *testing.T) {
	dir := t.TempDir()
	log := `{"step":10,"epoch":0.1,"d_loss":0.5,"g_loss":1,"d_real":0.6,"d_fake":0.4}
{"step":20,"epoch":0.2,"d_loss":0.4,"g_loss":1.1,"d_real":0.7,"d_fake":0.3}
{"step":20,"epoch":0.2,"eval":{"parzen_ll":12.5}}
torn line
{"step":30,"epoch":0.3,"d_loss":9,"g_loss":9,"d_real":0.9,"d_fake":0.1}
`
	if err := os.WriteFile(filepath.Join(dir, "metrics.jsonl"), []byte(log), 0o644); err != nil {
		t.Fatal(err)
	}
	mon, _ := newMonitor()
	mon.RunStarted(trainer.RunInfo{Config: config.Default(), Dir: dir, StartStep: 20})
	h := mon.History()
	if len(h) != 2 || h[1].Step != 20 || h[1].GLoss != 1.1 || h[1].DFake != 0.3 {
		t.Errorf("history %+v", h)
	}
	if st := mon.Status(); st.Evaluation["parzen_ll"] != 12.5 || st.EvaluationStep != 20 {
		t.Errorf("evaluation %v at %d", st.Evaluation, st.EvaluationStep)
	}
}

// Refused control requests are logged, not only counted, and a flood of them is logged
// in a few lines that say how many they stand for.
func TestControlAuthFailuresLogged(t *testing.T) {
	var buf syncBuffer
	mon, reg := newMonitor()
	commands := make(chan trainer.Command, 1)
	srv := New(mon, reg, Options{Addr: "127.0.0.1:0", Token: "s3cret", Commands: commands,
		Log: slog.New(slog.NewTextHandler(&buf, nil))})
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	for i := 0; i < 50; i++ {
		if code, _ := post(t, ts.URL+"/v1/stop", "wrong", nil); code != 401 {
			t.Fatalf("wrong token: %d, want 401", code)
		}
	}
	lines := strings.Count(buf.String(), "control request refused")
	if lines < 1 || lines > authLogBurst {
		t.Fatalf("%d log lines for 50 refused requests, want 1..%d:\n%s", lines, authLogBurst, buf.String())
	}
	if !strings.Contains(buf.String(), "action=stop") || !strings.Contains(buf.String(), "remote=127.0.0.1") {
		t.Fatalf("the log does not say what was refused, from where:\n%s", buf.String())
	}
}

// syncBuffer is a bytes.Buffer safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// While an evaluation runs, /v1/status says evaluating and the run stays ready; the
// results (or, after a failed evaluation, the next step) bring it back to training.
func TestStatusEvaluating(t *testing.T) {
	r, ts := newFakeRun(t, "")
	r.start(0)
	r.step(100, true)
	state := func() string {
		var st Status
		_, body := get(t, ts.URL+"/v1/status")
		if err := json.Unmarshal(body, &st); err != nil {
			t.Fatal(err)
		}
		return st.State
	}
	r.mon.EvaluationStarted(100)
	if s := state(); s != StateEvaluating {
		t.Fatalf("during an evaluation: state %q", s)
	}
	if resp, _ := get(t, ts.URL+"/readyz"); resp.StatusCode != 200 {
		t.Fatalf("/readyz during an evaluation: %d", resp.StatusCode)
	}
	r.mon.Evaluated(100, map[string]float64{"parzen_ll": 200})
	if s := state(); s != StateTraining {
		t.Fatalf("after the evaluation: state %q", s)
	}
	r.mon.EvaluationStarted(200)
	r.step(201, false)
	if s := state(); s != StateTraining {
		t.Fatalf("after a failed evaluation and a step: state %q", s)
	}
}
