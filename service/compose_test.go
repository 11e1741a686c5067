package service

import (
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// loadYAML decodes a file of docker/ into v.
func loadYAML(t *testing.T, name string, v any) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "docker", name))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(raw, v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

type composeService struct {
	Command []string `yaml:"command"`
	Ports   []string `yaml:"ports"`
	Volumes []string `yaml:"volumes"`
	Deploy  struct {
		Resources struct {
			Reservations struct {
				Devices []struct {
					Driver       string   `yaml:"driver"`
					Count        int      `yaml:"count"`
					Capabilities []string `yaml:"capabilities"`
				} `yaml:"devices"`
			} `yaml:"reservations"`
		} `yaml:"resources"`
	} `yaml:"deploy"`
}

// mount is the source of the bind mount (relative to docker/) or volume that svc
// mounts at target, "" if none.
func (s composeService) mount(target string) string {
	for _, v := range s.Volumes {
		parts := strings.Split(v, ":")
		if len(parts) >= 2 && parts[1] == target {
			return parts[0]
		}
	}
	return ""
}

// The compose stack is wired together: Prometheus scrapes the gantrain service on the
// port the image serves, as the job the rules select, with the rules file mounted
// where its config loads it; Grafana's provisioning names that Prometheus and loads
// the dashboard from where it is mounted; every file mounted exists. (Grafana's image
// is not run in the tests; scripts/container-check.sh runs gantrain and Prometheus.)
func TestComposeStackIsWired(t *testing.T) {
	var compose struct {
		Services map[string]composeService `yaml:"services"`
		Volumes  map[string]any            `yaml:"volumes"`
	}
	loadYAML(t, "compose.yaml", &compose)
	g, p, gr := compose.Services["gantrain"], compose.Services["prometheus"], compose.Services["grafana"]
	for name, s := range compose.Services {
		for _, v := range s.Volumes {
			src := strings.Split(v, ":")[0]
			if strings.HasPrefix(src, ".") {
				if _, err := os.Stat(filepath.Join("..", "docker", src)); err != nil {
					t.Errorf("service %s mounts %s: %v", name, src, err)
				}
			} else if _, ok := compose.Volumes[src]; !ok {
				t.Errorf("service %s mounts volume %s, which compose.yaml does not declare", name, src)
			}
		}
	}
	// The port the image serves: its EXPOSE and its default command's --listen.
	dockerfile, err := os.ReadFile("../Dockerfile.cuda")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^EXPOSE (\d+)$`).FindSubmatch(dockerfile)
	if m == nil || !strings.Contains(string(dockerfile), `"--listen", "0.0.0.0:`+string(m[1])+`"`) {
		t.Fatalf("Dockerfile.cuda: no EXPOSE matching the default command's --listen")
	}
	port := string(m[1])
	if !slices.ContainsFunc(g.Ports, func(p string) bool { return strings.HasSuffix(p, ":"+port) }) {
		t.Errorf("gantrain publishes %v, not the image's port %s", g.Ports, port)
	}
	if g.mount("/runs") == "" {
		t.Error("gantrain has no volume at /runs")
	}

	var prom struct {
		RuleFiles     []string `yaml:"rule_files"`
		ScrapeConfigs []struct {
			JobName       string `yaml:"job_name"`
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	loadYAML(t, "prometheus/prometheus.yml", &prom)
	configFile := ""
	for _, a := range p.Command {
		if v, ok := strings.CutPrefix(a, "--config.file="); ok {
			configFile = v
		}
	}
	if src := p.mount(configFile); src != "./prometheus/prometheus.yml" {
		t.Errorf("prometheus reads %q, where %q is mounted, not prometheus/prometheus.yml", configFile, src)
	}
	if len(prom.RuleFiles) != 1 || p.mount(prom.RuleFiles[0]) != "./prometheus/gantrain.rules.yml" {
		t.Errorf("prometheus loads rule files %v; want the one where gantrain.rules.yml is mounted", prom.RuleFiles)
	}
	if p.mount("/prometheus") == "" {
		t.Error("prometheus has no volume for its data")
	}
	if len(prom.ScrapeConfigs) != 1 || prom.ScrapeConfigs[0].JobName != "gantrain" ||
		len(prom.ScrapeConfigs[0].StaticConfigs) != 1 ||
		!slices.Equal(prom.ScrapeConfigs[0].StaticConfigs[0].Targets, []string{"gantrain:" + port}) {
		t.Errorf("prometheus scrapes %+v; want job gantrain, target gantrain:%s", prom.ScrapeConfigs, port)
	}

	provisioning := gr.mount("/etc/grafana/provisioning")
	if provisioning != "./grafana/provisioning" {
		t.Fatalf("grafana's provisioning comes from %q", provisioning)
	}
	var ds struct {
		APIVersion  int `yaml:"apiVersion"`
		Datasources []struct {
			Type, URL string
			IsDefault bool `yaml:"isDefault"`
		} `yaml:"datasources"`
	}
	loadYAML(t, "grafana/provisioning/datasources/prometheus.yaml", &ds)
	// The container's side of "${PROMETHEUS_PORT:-9091}:9090".
	promPort := p.Ports[0][strings.LastIndexByte(p.Ports[0], ':')+1:]
	if ds.APIVersion != 1 || len(ds.Datasources) != 1 || ds.Datasources[0].Type != "prometheus" ||
		ds.Datasources[0].URL != "http://prometheus:"+promPort || !ds.Datasources[0].IsDefault {
		t.Errorf("grafana data sources %+v; want the default, prometheus at http://prometheus:%s", ds, promPort)
	}
	var dash struct {
		APIVersion int `yaml:"apiVersion"`
		Providers  []struct {
			Type    string
			Options struct{ Path string }
		}
	}
	loadYAML(t, "grafana/provisioning/dashboards/gantrain.yaml", &dash)
	const dashboard = "./grafana/gantrain-dashboard.json"
	target := ""
	for _, v := range gr.Volumes {
		if parts := strings.Split(v, ":"); parts[0] == dashboard {
			target = parts[1]
		}
	}
	if dash.APIVersion != 1 || len(dash.Providers) != 1 || dash.Providers[0].Type != "file" ||
		target == "" || dash.Providers[0].Options.Path != path.Dir(target) {
		t.Errorf("grafana dashboard providers %+v; want a file provider reading %s (where the dashboard is mounted)", dash, path.Dir(target))
	}

	var gpu struct {
		Services map[string]composeService `yaml:"services"`
	}
	loadYAML(t, "compose.gpu.yaml", &gpu)
	dev := gpu.Services["gantrain"].Deploy.Resources.Reservations.Devices
	if len(gpu.Services) != 1 || len(dev) != 1 || dev[0].Driver != "nvidia" || dev[0].Count != 1 || !slices.Contains(dev[0].Capabilities, "gpu") {
		t.Errorf("compose.gpu.yaml: %+v; want gantrain to reserve one NVIDIA GPU", gpu.Services)
	}
}
