//go:build linux

package e2e

import (
	"context"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gantrain/gantrain/backend"
	"github.com/gantrain/gantrain/config"
	"github.com/gantrain/gantrain/service"
	"github.com/gantrain/gantrain/trainer"
)

// The page shows the device memory a GPU run reports. No GPU is needed: the service
// runs in this process and is fed the reports a GPU run's trainer would send.
func TestStatusPageShowsDeviceMemory(t *testing.T) {
	chromium := needTool(t, "chromium", "chromium")
	tmp := t.TempDir()
	const used, total = 3_500_000_000, 150_121_480_192 // an H200 with 3.3 GiB in use
	build := service.BuildInfo{Version: "test", Backend: "cuda"}
	reg := prometheus.NewRegistry()
	mon := service.NewMonitor(build, service.NewMetrics(reg, build))
	mon.RunStarted(trainer.RunInfo{
		Config: config.Default(), Dir: tmp, Backend: "cuda", Device: "NVIDIA H200 (cuda:0)",
		Accelerator:   backend.Accelerator{ID: "cuda:0", Name: "NVIDIA H200", Compute: "9.0", Memory: total},
		StepsPerEpoch: 500, ExamplesPerStep: 100,
	})
	for step := int64(1); step <= 3; step++ {
		mon.StepDone(trainer.StepReport{
			Stats:    trainer.Stats{Step: step, Epoch: float64(step) / 500, DLoss: 0.69, GLoss: 0.7, DReal: 0.5, DFake: 0.5},
			Observed: true, Duration: time.Millisecond, MemoryUsed: used, MemoryTotal: total,
		})
	}
	srv := service.New(mon, reg, service.Options{Addr: "127.0.0.1:0"})
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown(context.Background())

	dom := renderPage(t, chromium, "http://"+srv.Addr()+"/", filepath.Join(tmp, "page.png"), tmp)
	td, ok := parseElements(dom)["v-device_memory"]
	if !ok {
		t.Fatalf("the page has no device memory row:\n%s", tail(dom, 3000))
	}
	if td["data-value"] != "3500000000" {
		t.Errorf("td#v-device_memory data-value %q, want the bytes in use, 3500000000", td["data-value"])
	}
	m := regexp.MustCompile(`id="v-device_memory"[^>]*>([^<]*)<`).FindStringSubmatch(dom)
	if want := "3.3 GiB of 139.8 GiB (2 %)"; m == nil || m[1] != want {
		t.Errorf("device memory row reads %q, want %q", m, want)
	}
}
