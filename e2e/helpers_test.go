//go:build linux

package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The gantrain binary, built once per test process by gantrainBin.
var (
	buildOnce sync.Once
	buildDir  string
	binPath   string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// gantrainBin builds cmd/gantrain (with -tags nocuda, as the tests run) on first use
// and returns the binary's path.
func gantrainBin(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		goTool, err := exec.LookPath("go")
		if err != nil {
			if root := os.Getenv("GOROOT"); root != "" {
				goTool, err = filepath.Join(root, "bin", "go"), nil
			}
		}
		if err != nil {
			buildErr = fmt.Errorf("the go command is needed to build gantrain: %w", err)
			return
		}
		if buildDir, buildErr = os.MkdirTemp("", "gantrain-e2e-"); buildErr != nil {
			return
		}
		binPath = filepath.Join(buildDir, "gantrain")
		cmd := exec.Command(goTool, "build", "-tags", "nocuda", "-o", binPath, "github.com/gantrain/gantrain/cmd/gantrain")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build gantrain: %v\n%s", err, out)
		}
		statSources()
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// statSources stats the source files of the module. go test caches a passing result keyed
// on the files the test itself opened or stat'ed, and knows nothing of what the go
// build above read; stat'ing the sources ties the cached result to them, so a change
// to cmd/gantrain, trainer or service/page.html reruns these tests.
func statSources() {
	root, err := filepath.Abs("..")
	if err != nil {
		return
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		return
	}
	filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.IsDir() {
			if name := d.Name(); path != root && (strings.HasPrefix(name, ".") || name == "runs" || name == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		switch filepath.Ext(path) {
		case ".go", ".mod", ".sum", ".html", ".yaml": // sources, embedded files, configs
			os.Stat(path)
		}
		return nil
	})
}

// needTool returns the path of an external program the test needs. A missing one
// skips the test, or fails it when GANTRAIN_E2E=1 (CI installs every tool).
func needTool(t *testing.T, name, debianPackage string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv("GANTRAIN_E2E") == "1" {
		t.Fatalf("GANTRAIN_E2E=1 but %s is not installed (Debian package %s): %v", name, debianPackage, err)
	}
	t.Skipf("skipped: %s is not installed (apt-get install %s); set GANTRAIN_E2E=1 to make a missing tool a failure", name, debianPackage)
	return ""
}

// syncBuffer collects a process's output while the test reads it.
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

// proc is a child process in its own process group, killed (group and all) when the
// test ends if it is still running.
type proc struct {
	t      *testing.T
	name   string
	cmd    *exec.Cmd
	out    *syncBuffer // stdout and stderr together
	done   chan struct{}
	state  *os.ProcessState
	waitEr error
}

// start runs name args in a new process group with extra environment entries.
func start(t *testing.T, env []string, name string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p := &proc{t: t, name: filepath.Base(name), cmd: cmd, out: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.waitEr = cmd.Wait()
		p.state = cmd.ProcessState
		close(p.done)
	}()
	t.Cleanup(func() {
		p.killGroup()
		if t.Failed() {
			t.Logf("%s output (last 4 KiB):\n%s", p.name, tail(p.out.String(), 4096))
		}
	})
	return p
}

// gantrain starts the gantrain binary with args.
func gantrain(t *testing.T, env []string, args ...string) *proc {
	t.Helper()
	return start(t, env, gantrainBin(t), args...)
}

// killGroup SIGKILLs the process group and waits for the leader.
func (p *proc) killGroup() {
	// The whole group: chromium, for one, leaves helper processes behind. While any
	// member lives its group id cannot be reused, so this reaches only our processes.
	syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		p.t.Errorf("%s (pid %d) did not die after SIGKILL", p.name, p.cmd.Process.Pid)
	}
}

// signal sends sig to the process (not its group).
func (p *proc) signal(sig syscall.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("signal %v to %s: %v", sig, p.name, err)
	}
}

// wait waits up to d for the process to exit and returns its state, or nil on timeout.
func (p *proc) wait(d time.Duration) *os.ProcessState {
	select {
	case <-p.done:
		return p.state
	case <-time.After(d):
		return nil
	}
}

// exited reports whether the process has ended.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// waitExit waits up to d and fails the test unless the process exited with code.
func (p *proc) waitExit(d time.Duration, code int) {
	p.t.Helper()
	st := p.wait(d)
	if st == nil {
		p.t.Fatalf("%s still running after %v\n%s", p.name, d, tail(p.out.String(), 4096))
	}
	if st.ExitCode() != code {
		p.t.Fatalf("%s: %v, want exit status %d\n%s", p.name, st, code, tail(p.out.String(), 4096))
	}
}

// waitOutput polls the process output until re matches it (returning the submatches)
// or d passes (failing the test).
func (p *proc) waitOutput(d time.Duration, re *regexp.Regexp) []string {
	p.t.Helper()
	deadline := time.Now().Add(d)
	for {
		if m := re.FindStringSubmatch(p.out.String()); m != nil {
			return m
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("%s: no output matching %q within %v\n%s", p.name, re, d, tail(p.out.String(), 4096))
		}
		if p.exited() {
			// One last look: the output may have arrived with the exit.
			if m := re.FindStringSubmatch(p.out.String()); m != nil {
				return m
			}
			p.t.Fatalf("%s exited (%v) before printing %q\n%s", p.name, p.state, re, tail(p.out.String(), 4096))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var servingRE = regexp.MustCompile(`msg=serving url=http://([0-9.:]+)/`)

// addr waits for gantrain's "serving" log line and returns its host:port.
func (p *proc) addr() string {
	p.t.Helper()
	return p.waitOutput(15*time.Second, servingRE)[1]
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

var client = &http.Client{Timeout: 10 * time.Second}

// get fetches url and returns the status code and body.
func get(t *testing.T, url string) (int, []byte) {
	t.Helper()
	resp, err := client.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp.StatusCode, body
}

// getJSON fetches url, expects 200, and decodes the body into v.
func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	code, body := get(t, url)
	if code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", url, code, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("GET %s: %v in %s", url, err, body)
	}
}

// waitFor polls cond every interval until it holds or d passes (failing the test
// with what).
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// status is the part of /v1/status the tests read.
type status struct {
	State          string  `json:"state"`
	Error          string  `json:"error"`
	Step           int64   `json:"step"`
	ObservedStep   int64   `json:"observed_step"`
	DLoss          float64 `json:"d_loss"`
	GLoss          float64 `json:"g_loss"`
	DReal          float64 `json:"d_real"`
	DFake          float64 `json:"d_fake"`
	SampleStep     int64   `json:"sample_step"`
	StepsPerSecond float64 `json:"steps_per_second"`
	// Zero on the CPU.
	DeviceMemoryUsed  int64 `json:"device_memory_used_bytes"`
	DeviceMemoryTotal int64 `json:"device_memory_total_bytes"`
}

// history is /v1/history.
type history struct {
	Step  []int64   `json:"step"`
	DLoss []float64 `json:"d_loss"`
	GLoss []float64 `json:"g_loss"`
	DReal []float64 `json:"d_real"`
	DFake []float64 `json:"d_fake"`
}

// metricsRecord is one line of metrics.jsonl; the values are kept as the JSON text
// so that comparisons are exact.
type metricsRecord struct {
	Step   int64
	Values map[string]json.RawMessage
}

// readMetrics reads a run directory's metrics.jsonl.
func readMetrics(t *testing.T, dir string) []metricsRecord {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, "metrics.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []metricsRecord
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var rec metricsRecord
		if err := json.Unmarshal(sc.Bytes(), &rec.Values); err != nil {
			t.Fatalf("metrics.jsonl line %d: %v: %q", len(out)+1, err, sc.Text())
		}
		if err := json.Unmarshal(rec.Values["step"], &rec.Step); err != nil {
			t.Fatalf("metrics.jsonl line %d: step: %v", len(out)+1, err)
		}
		out = append(out, rec)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// checkpointDir is what checkpoints/ of a run directory holds: the checkpoint files
// by step, the newest step (-1 when none), and the other files by kind.
type checkpointDir struct {
	steps   map[int64]string
	newest  int64
	temps   []string // ".step-*.tmp": interrupted writes
	refused []string // "*.refused": set aside by a resume
	other   []string
}

var ckptNameRE = regexp.MustCompile(`^step-(\d{9,})\.safetensors$`)

func listCheckpoints(t *testing.T, run string) checkpointDir {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(run, "checkpoints"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	cd := checkpointDir{steps: map[int64]string{}, newest: -1}
	for _, e := range ents {
		name := e.Name()
		switch m := ckptNameRE.FindStringSubmatch(name); {
		case m != nil:
			step, err := strconv.ParseInt(m[1], 10, 64)
			if err != nil {
				t.Fatalf("checkpoint name %s: %v", name, err)
			}
			cd.steps[step] = filepath.Join(run, "checkpoints", name)
			cd.newest = max(cd.newest, step)
		case strings.HasPrefix(name, ".step-") && strings.HasSuffix(name, ".tmp"):
			cd.temps = append(cd.temps, name)
		case strings.HasSuffix(name, ".refused"):
			cd.refused = append(cd.refused, name)
		default:
			cd.other = append(cd.other, name)
		}
	}
	return cd
}
