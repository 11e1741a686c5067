package deploy

import (
	"bytes"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

var update = flag.Bool("update", false, "rewrite the generated PrometheusRule")

// kustomization is the part of kustomize's Kustomization (and Component) that the
// manifests use.
type kustomization struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Resources  []string `json:"resources"`
	Components []string `json:"components"`
	Patches    []struct {
		Path   string `json:"path"`
		Target struct {
			Kind string `json:"kind"`
		} `json:"target"`
	} `json:"patches"`
}

// manifests is every file under kubernetes/, decoded strictly: an unknown or
// misspelt field is an error.
type manifests struct {
	jobs     map[string]*batchv1.Job // base Jobs and overlay patches, by file
	pvcs     map[string]*corev1.PersistentVolumeClaim
	podMon   *monitoringv1.PodMonitor
	rule     *monitoringv1.PrometheusRule
	kustoms  map[string]*kustomization
	patchFor map[string]string // overlay patch file -> the kind it patches
}

func decodeAll(t *testing.T) manifests {
	t.Helper()
	m := manifests{jobs: map[string]*batchv1.Job{}, pvcs: map[string]*corev1.PersistentVolumeClaim{},
		kustoms: map[string]*kustomization{}, patchFor: map[string]string{}}
	err := filepath.WalkDir("kubernetes", func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".yaml") {
			return err
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		var head struct{ Kind string }
		if err := yaml.Unmarshal(raw, &head); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		var obj any
		switch head.Kind {
		case "Job":
			j := new(batchv1.Job)
			m.jobs[path], obj = j, j
		case "PersistentVolumeClaim":
			p := new(corev1.PersistentVolumeClaim)
			m.pvcs[path], obj = p, p
		case "PodMonitor":
			m.podMon = new(monitoringv1.PodMonitor)
			obj = m.podMon
		case "PrometheusRule":
			m.rule = new(monitoringv1.PrometheusRule)
			obj = m.rule
		case "Kustomization", "Component":
			k := new(kustomization)
			m.kustoms[path], obj = k, k
		default:
			return fmt.Errorf("%s: kind %q is not one the tests know", path, head.Kind)
		}
		if err := yaml.UnmarshalStrict(raw, obj); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for path, k := range m.kustoms {
		dir := filepath.Dir(path)
		for _, r := range append(k.Resources, k.Components...) {
			if _, err := os.Stat(filepath.Join(dir, r)); err != nil {
				t.Errorf("%s: %s: %v", path, r, err)
			}
		}
		for _, p := range k.Patches {
			m.patchFor[filepath.Join(dir, p.Path)] = p.Target.Kind
		}
	}
	if m.podMon == nil || m.rule == nil || len(m.jobs) == 0 || len(m.pvcs) == 0 {
		t.Fatalf("missing manifests: %d Jobs, %d claims, PodMonitor %v, PrometheusRule %v", len(m.jobs), len(m.pvcs), m.podMon != nil, m.rule != nil)
	}
	return m
}

// binDir holds the gantrain binary the tests build.
var binDir string

func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// buildGantrain builds the CPU build of gantrain from the module above, once.
var buildGantrain = sync.OnceValues(func() (string, error) {
	var err error
	if binDir, err = os.MkdirTemp("", "gantrain-deploy-test"); err != nil {
		return "", err
	}
	bin := filepath.Join(binDir, "gantrain")
	cmd := exec.Command("go", "build", "-tags", "nocuda", "-o", bin, "./cmd/gantrain")
	cmd.Dir = ".."
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/gantrain: %v\n%s", err, out)
	}
	return bin, nil
})

func gantrainBin(t *testing.T) string {
	t.Helper()
	bin, err := buildGantrain()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// trainFlags are the flags of `gantrain train --help`.
func trainFlags(t *testing.T) map[string]bool {
	out, _ := exec.Command(gantrainBin(t), "train", "--help").CombinedOutput()
	flags := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^\s+-([a-z0-9-]+)`).FindAllStringSubmatch(string(out), -1) {
		flags[m[1]] = true
	}
	if len(flags) < 10 {
		t.Fatalf("gantrain train --help lists %d flags:\n%s", len(flags), out)
	}
	return flags
}

// image is what Dockerfile.cuda says of the image: its port and its user.
func image(t *testing.T) (port, uid, gid int64) {
	raw, err := os.ReadFile("../Dockerfile.cuda")
	if err != nil {
		t.Fatal(err)
	}
	num := func(re string) int64 {
		m := regexp.MustCompile(re).FindSubmatch(raw)
		if m == nil {
			t.Fatalf("Dockerfile.cuda: nothing matches %s", re)
		}
		n, _ := strconv.ParseInt(string(m[1]), 10, 64)
		return n
	}
	return num(`(?m)^EXPOSE (\d+)$`), num(`useradd [^\n]*--uid (\d+)`), num(`useradd [^\n]*--gid (\d+)`)
}

// flagValue is the value after --name in args, "" if absent.
func flagValue(args []string, name string) string {
	for i, a := range args {
		if a == "--"+name && i+1 < len(args) {
			return args[i+1]
		}
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v
		}
	}
	return ""
}

func TestManifestsDecodeStrictly(t *testing.T) { decodeAll(t) }

// The Jobs run gantrain as the image does and as its service expects: flags that
// exist, --auto-resume into a run directory on the claimed volume, the image's port
// and user, probes on paths the server answers, a grace period for the last
// checkpoint, the control token from a Secret.
func TestJobsFitGantrain(t *testing.T) {
	m := decodeAll(t)
	flags := trainFlags(t)
	port, uid, gid := image(t)
	claims := map[string]bool{}
	for _, p := range m.pvcs {
		claims[p.Name] = true
	}
	bases := 0
	for path, job := range m.jobs {
		if m.patchFor[path] != "" {
			continue // a component's patch: TestOverlays
		}
		bases++
		t.Run(path, func(t *testing.T) {
			spec := job.Spec.Template.Spec
			if len(spec.Containers) != 1 {
				t.Fatalf("%d containers, want 1", len(spec.Containers))
			}
			c := spec.Containers[0]
			if len(c.Args) == 0 || c.Args[0] != "train" {
				t.Fatalf("args %q do not start with train", c.Args)
			}
			for _, a := range c.Args[1:] {
				if name, ok := strings.CutPrefix(a, "--"); ok {
					name, _, _ = strings.Cut(name, "=")
					if !flags[name] {
						t.Errorf("--%s is not a flag of gantrain train", name)
					}
				}
			}
			if !slices.Contains(c.Args, "--auto-resume") {
				t.Error("no --auto-resume: a replaced pod would refuse the run it should continue")
			}
			if listen := flagValue(c.Args, "listen"); listen != fmt.Sprintf("0.0.0.0:%d", port) {
				t.Errorf("--listen %q, want 0.0.0.0:%d (the image's port)", listen, port)
			}
			if len(c.Ports) != 1 || c.Ports[0].ContainerPort != int32(port) || c.Ports[0].Name != "http" {
				t.Errorf("ports %+v, want http on %d", c.Ports, port)
			}
			for probe, want := range map[*corev1.Probe]string{c.LivenessProbe: "/healthz", c.ReadinessProbe: "/readyz"} {
				if probe == nil || probe.HTTPGet == nil || probe.HTTPGet.Path != want || probe.HTTPGet.Port.String() != "http" {
					t.Errorf("probe %+v, want GET %s on port http", probe, want)
				}
			}
			out := flagValue(c.Args, "out")
			mounted := false
			for _, vm := range c.VolumeMounts {
				for _, v := range spec.Volumes {
					if v.Name == vm.Name && v.PersistentVolumeClaim != nil && claims[v.PersistentVolumeClaim.ClaimName] &&
						strings.HasPrefix(out, vm.MountPath+"/") {
						mounted = true
					}
				}
			}
			if !mounted {
				t.Errorf("--out %q is not on a volume of a claim defined here", out)
			}
			if g := spec.TerminationGracePeriodSeconds; g == nil || *g < 30 {
				t.Errorf("terminationGracePeriodSeconds %v: leave time for the final checkpoint", g)
			}
			if sc := spec.SecurityContext; sc == nil || sc.RunAsUser == nil || *sc.RunAsUser != uid ||
				sc.RunAsGroup == nil || *sc.RunAsGroup != gid || sc.FSGroup == nil || *sc.FSGroup != gid {
				t.Errorf("securityContext %+v, want the image's user %d:%d and fsGroup %d", sc, uid, gid, gid)
			}
			token := false
			for _, e := range c.Env {
				token = token || (e.Name == "GANTRAIN_CONTROL_TOKEN" && e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil)
			}
			if !token {
				t.Error("no GANTRAIN_CONTROL_TOKEN from a Secret")
			}
			if job.Spec.CompletionMode != nil && *job.Spec.CompletionMode == batchv1.IndexedCompletion {
				index := false
				for _, e := range c.Env {
					index = index || (e.Name == "JOB_COMPLETION_INDEX" && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil &&
						e.ValueFrom.FieldRef.FieldPath == "metadata.annotations['batch.kubernetes.io/job-completion-index']")
				}
				if !index {
					t.Error("indexed Job: JOB_COMPLETION_INDEX is not declared from the completion-index annotation")
				}
				for _, f := range []string{"seed", "out"} {
					if !strings.Contains(flagValue(c.Args, f), "$(JOB_COMPLETION_INDEX)") {
						t.Errorf("indexed Job: --%s does not use the completion index", f)
					}
				}
			}
		})
	}
	if bases < 2 {
		t.Errorf("%d Jobs; want the single run and the sweep", bases)
	}
}

// Each of gpu/run, gpu/sweep, cpu/run and cpu/sweep, built by kustomize, gives one Job
// that still fits gantrain, with the backend of its kind of node; on GPU nodes each pod
// reserves one GPU.
func TestOverlays(t *testing.T) {
	entrypoint, err := os.ReadFile("../docker/entrypoint.sh")
	if err != nil {
		t.Fatal(err)
	}
	overlays, err := filepath.Glob("kubernetes/[cg]pu/*")
	if err != nil || len(overlays) != 4 {
		t.Fatalf("overlays %v, %v; want run and sweep for GPU and CPU nodes", overlays, err)
	}
	for _, dir := range overlays {
		wantBackend := map[string]string{"gpu": "cuda", "cpu": "cpu"}[filepath.Base(filepath.Dir(dir))]
		t.Run(dir, func(t *testing.T) {
			res, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
			if err != nil {
				t.Fatalf("kustomize build %s: %v", dir, err)
			}
			jobs := 0
			for _, r := range res.Resources() {
				if r.GetKind() != "Job" {
					continue
				}
				raw, err := r.AsYAML()
				if err != nil {
					t.Fatal(err)
				}
				job := new(batchv1.Job)
				if err := yaml.UnmarshalStrict(raw, job); err != nil {
					t.Fatalf("%s: %v", r.GetName(), err)
				}
				jobs++
				cs := job.Spec.Template.Spec.Containers
				if len(cs) != 1 {
					t.Fatalf("%s: %d containers after the patch", job.Name, len(cs))
				}
				c := cs[0]
				backend := ""
				for _, e := range c.Env {
					if e.Name == "GANTRAIN_BACKEND" {
						backend = e.Value
					}
				}
				if backend != wantBackend || !bytes.Contains(entrypoint, []byte(backend+" | ")) && !bytes.Contains(entrypoint, []byte("| "+backend+")")) {
					t.Errorf("%s: GANTRAIN_BACKEND %q; want %q, which the entrypoint accepts", job.Name, backend, wantBackend)
				}
				gpus := c.Resources.Limits[corev1.ResourceName("nvidia.com/gpu")]
				if want := map[string]int64{"cuda": 1, "cpu": 0}[backend]; gpus.Value() != want {
					t.Errorf("%s: nvidia.com/gpu limit %v, want %d for backend %s", job.Name, gpus.String(), want, backend)
				}
				if len(c.Args) == 0 || c.Args[0] != "train" || c.LivenessProbe == nil || c.ReadinessProbe == nil {
					t.Errorf("%s: the patch lost the base's arguments or probes: %+v", job.Name, c)
				}
			}
			if jobs != 1 {
				t.Errorf("%d Jobs built; want one", jobs)
			}
		})
	}
}

// The PodMonitor scrapes the Jobs' pods on their http port at the path the server
// serves, as the job the rules select.
func TestPodMonitor(t *testing.T) {
	m := decodeAll(t)
	pm := m.podMon.Spec
	for path, job := range m.jobs {
		if m.patchFor[path] != "" {
			continue
		}
		for k, v := range pm.Selector.MatchLabels {
			if job.Spec.Template.Labels[k] != v {
				t.Errorf("the PodMonitor selects %s=%s; %s's pods are labelled %v", k, v, path, job.Spec.Template.Labels)
			}
		}
	}
	if len(pm.PodMetricsEndpoints) != 1 {
		t.Fatalf("%d endpoints", len(pm.PodMetricsEndpoints))
	}
	ep := pm.PodMetricsEndpoints[0]
	if ep.Port == nil || *ep.Port != "http" || ep.Path != "/metrics" {
		t.Errorf("endpoint port %v path %q, want http and /metrics", ep.Port, ep.Path)
	}
	rules, err := os.ReadFile(RulesFile)
	if err != nil {
		t.Fatal(err)
	}
	job := regexp.MustCompile(`up\{job="([^"]+)"\}`).FindSubmatch(rules)
	setsJob := false
	for _, r := range ep.RelabelConfigs {
		setsJob = setsJob || (r.TargetLabel == "job" && job != nil && r.Replacement != nil && *r.Replacement == string(job[1]))
	}
	if !setsJob {
		t.Errorf("the PodMonitor does not label its targets job=%q, the job the rules select", job)
	}
}

// The PrometheusRule is the rules file, generated; every metric the rules name is one
// gantrain registers.
func TestPrometheusRuleIsGenerated(t *testing.T) {
	rules, err := os.ReadFile(RulesFile)
	if err != nil {
		t.Fatal(err)
	}
	want, err := PrometheusRule(rules)
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile(PrometheusRuleFile, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(PrometheusRuleFile)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s is not what %s generates: run cd deploy && go generate ./...", PrometheusRuleFile, RulesFile)
	}
	m := decodeAll(t)
	var file struct {
		Groups []monitoringv1.RuleGroup `json:"groups"`
	}
	if err := yaml.UnmarshalStrict(rules, &file); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, g := range m.rule.Spec.Groups {
		n += len(g.Rules)
	}
	if n == 0 || len(file.Groups) != len(m.rule.Spec.Groups) {
		t.Errorf("the PrometheusRule has %d groups, %d rules; the file %d groups", len(m.rule.Spec.Groups), n, len(file.Groups))
	}

	src, err := os.ReadFile("../service/metrics.go")
	if err != nil {
		t.Fatal(err)
	}
	registered := map[string]bool{}
	for _, m := range regexp.MustCompile(`Name:\s*"(gantrain_[a-z_]+)"`).FindAllSubmatch(src, -1) {
		for _, suffix := range []string{"", "_bucket", "_sum", "_count"} {
			registered[string(m[1])+suffix] = true
		}
	}
	if len(registered) == 0 {
		t.Fatal("no metric names found in service/metrics.go")
	}
	for _, g := range m.rule.Spec.Groups {
		for _, r := range g.Rules {
			for _, name := range regexp.MustCompile(`\bgantrain_[a-z_]+`).FindAllString(r.Expr.String(), -1) {
				if !registered[name] {
					t.Errorf("rule %s%s names %s, which gantrain does not export", r.Record, r.Alert, name)
				}
			}
		}
	}
}

// The probe and metrics paths the manifests use answer on a running gantrain.
func TestServerAnswersProbePaths(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a training run")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cmd := exec.Command(gantrainBin(t), "train", "--preset", "ring", "--steps", "1000000", "--listen", addr,
		"--out", filepath.Join(t.TempDir(), "run"), "--progress", "plain")
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		<-exited
	}()
	paths := []string{"/healthz", "/readyz", "/metrics"}
	for _, p := range paths {
		deadline := time.Now().Add(60 * time.Second)
		for {
			resp, err := http.Get("http://" + addr + p)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					break
				}
			}
			select {
			case err := <-exited:
				exited <- err
				t.Fatalf("gantrain ended (%v) before GET %s answered; its log:\n%s", err, p, log.String())
			case <-time.After(200 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				t.Fatalf("GET %s: %v; gantrain's log:\n%s", p, err, log.String())
			}
		}
	}
}
