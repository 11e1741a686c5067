package service

import (
	"bufio"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/gantrain/gantrain/config"
	"github.com/gantrain/gantrain/output"
	"github.com/gantrain/gantrain/trainer"
)

// Run states, as /v1/status reports them.
const (
	StateStarting   = "starting" // loading data, building the nets
	StateTraining   = "training"
	StateEvaluating = "evaluating" // a periodic evaluation of G runs; the run is ready as when training
	StateDone       = "done"       // reached its step or epoch limit
	StateStopped    = "stopped"    // stopped on request (signal or control API), checkpoint written
	StateDiverged   = "diverged"   // a loss or parameter became NaN or infinite
	StateFailed     = "failed"     // any other error
)

// maxHistory bounds the loss history the status page plots: when it is full, every
// other point is dropped, so a long run keeps an evenly thinned curve.
const maxHistory = 4096

// Point is one observed step of the loss history.
type Point struct {
	Step  int64   `json:"step"`
	Epoch float64 `json:"epoch"`
	DLoss float64 `json:"d_loss"`
	GLoss float64 `json:"g_loss"`
	DReal float64 `json:"d_real"`
	DFake float64 `json:"d_fake"`
}

// CheckpointInfo describes the newest checkpoint written.
type CheckpointInfo struct {
	Step            int64     `json:"step"`
	Path            string    `json:"path"`
	Time            time.Time `json:"time"`
	DurationSeconds float64   `json:"duration_seconds"`
}

// Status is the JSON of /v1/status.
type Status struct {
	State   string `json:"state"`
	Error   string `json:"error,omitempty"`
	Version string `json:"version"`
	Backend string `json:"backend"`
	Device  string `json:"device,omitempty"`
	RunDir  string `json:"run_dir,omitempty"`

	Step          int64   `json:"step"`
	Epoch         float64 `json:"epoch"`
	StepLimit     int64   `json:"step_limit,omitempty"`
	StepsPerEpoch int64   `json:"steps_per_epoch,omitempty"`
	// The losses and mean D outputs of the latest observed step (ObservedStep).
	ObservedStep int64   `json:"observed_step"`
	DLoss        float64 `json:"d_loss"`
	GLoss        float64 `json:"g_loss"`
	DReal        float64 `json:"d_real"`
	DFake        float64 `json:"d_fake"`
	LR           float64 `json:"learning_rate"`
	Momentum     float64 `json:"momentum"`

	StepsPerSecond    float64    `json:"steps_per_second"`
	ExamplesPerSecond float64    `json:"examples_per_second"`
	StartedAt         time.Time  `json:"started_at"`
	ElapsedSeconds    float64    `json:"elapsed_seconds"`
	ETASeconds        *float64   `json:"eta_seconds,omitempty"`
	ETA               *time.Time `json:"eta,omitempty"`

	LastCheckpoint *CheckpointInfo    `json:"last_checkpoint,omitempty"`
	SampleStep     int64              `json:"sample_step"`
	Evaluation     map[string]float64 `json:"evaluation,omitempty"`
	EvaluationStep int64              `json:"evaluation_step,omitempty"`

	DeviceMemoryUsed  int64 `json:"device_memory_used_bytes,omitempty"`
	DeviceMemoryTotal int64 `json:"device_memory_total_bytes,omitempty"`

	Config *config.Config `json:"config,omitempty"`
}

// BuildInfo names this build for /metrics and /v1/status.
type BuildInfo struct {
	Version string
	Backend string // cpu or cuda: the backend of the run
}

// Monitor collects what a training run reports (it is the run's trainer.Observer)
// and serves it: Prometheus metrics, status, history, the newest sample grid. The
// run's goroutine writes; HTTP handlers read snapshots under a mutex, so no request
// ever waits on a training step or touches the backend.
type Monitor struct {
	m   *Metrics
	now func() time.Time

	mu         sync.Mutex
	st         Status
	cfg        config.Config
	examplesPS int
	history    []Point
	stride     int64 // history keeps observed steps that are multiples of stride
	png        []byte
	rate       rateWindow
	deviceID   string // the memory gauges' device label: "cuda:0", else the backend's description
}

// NewMonitor returns a monitor in the starting state that reports through m.
func NewMonitor(info BuildInfo, m *Metrics) *Monitor {
	mon := &Monitor{m: m, now: time.Now, stride: 1}
	mon.st = Status{State: StateStarting, Version: info.Version, Backend: info.Backend, StartedAt: mon.now()}
	return mon
}

// Fail records an error that ended the process before or outside a run (a bad data
// set, a backend that would not start).
func (mon *Monitor) Fail(err error) {
	mon.mu.Lock()
	defer mon.mu.Unlock()
	if mon.st.State != StateStarting && mon.st.State != StateTraining && mon.st.State != StateEvaluating {
		return // the run's end already said what happened (diverged, failed, stopped)
	}
	mon.st.State, mon.st.Error = StateFailed, err.Error()
	mon.m.ready.Set(0)
}

// controlRequest counts a control API request by action and the HTTP status it was
// answered with.
func (mon *Monitor) controlRequest(action string, code int) {
	mon.m.controlRequests.WithLabelValues(action, strconv.Itoa(code)).Inc()
}

// RunStarted implements trainer.Observer.
func (mon *Monitor) RunStarted(info trainer.RunInfo) {
	mon.mu.Lock()
	defer mon.mu.Unlock()
	mon.cfg = info.Config
	mon.st.State, mon.st.Error = StateTraining, ""
	mon.st.Backend, mon.st.Device, mon.st.RunDir = info.Backend, info.Device, info.Dir
	mon.deviceID = info.Device
	if a := info.Accelerator; a.ID != "" {
		mon.deviceID = a.ID
		mon.m.deviceInfo.Reset()
		mon.m.deviceInfo.WithLabelValues(a.ID, a.Name, a.Compute).Set(1)
		if a.Memory > 0 {
			mon.m.deviceMemTotal.WithLabelValues(a.ID).Set(float64(a.Memory))
		}
	}
	mon.st.Step, mon.st.StepLimit, mon.st.StepsPerEpoch = info.StartStep, info.StepLimit, info.StepsPerEpoch
	mon.st.StartedAt = mon.now()
	mon.examplesPS = info.ExamplesPerStep
	mon.rate = rateWindow{}
	mon.rate.add(mon.now(), info.StartStep)
	mon.m.step.Set(float64(info.StartStep))
	mon.m.stepLimit.Set(float64(info.StepLimit))
	mon.m.ready.Set(1)
	if info.StartStep > 0 && len(mon.history) == 0 {
		mon.loadHistory(filepath.Join(info.Dir, output.MetricsFile), info.StartStep)
	}
}

// loadHistory seeds the history (and the latest evaluation) of a resumed run from
// its metrics log, so that the page's curves cover the whole run. A log that cannot
// be read only leaves the history empty.
func (mon *Monitor) loadHistory(path string, upTo int64) {
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		var r struct {
			Step  *int64             `json:"step"`
			Epoch float64            `json:"epoch"`
			DLoss *float64           `json:"d_loss"`
			GLoss float64            `json:"g_loss"`
			DReal float64            `json:"d_real"`
			DFake float64            `json:"d_fake"`
			Eval  map[string]float64 `json:"eval"`
		}
		if json.Unmarshal(sc.Bytes(), &r) != nil || r.Step == nil || *r.Step > upTo {
			continue
		}
		if r.Eval != nil {
			mon.st.Evaluation, mon.st.EvaluationStep = r.Eval, *r.Step
			continue
		}
		if r.DLoss != nil {
			mon.addPoint(Point{Step: *r.Step, Epoch: r.Epoch, DLoss: *r.DLoss, GLoss: r.GLoss, DReal: r.DReal, DFake: r.DFake})
		}
	}
}

// StepDone implements trainer.Observer.
func (mon *Monitor) StepDone(r trainer.StepReport) {
	mon.mu.Lock()
	defer mon.mu.Unlock()
	mon.m.steps.Inc()
	mon.m.step.Set(float64(r.Step))
	mon.m.examples.Add(float64(mon.examplesPS))
	mon.m.stepDuration.Observe(r.Duration.Seconds())
	mon.m.epoch.Set(r.Epoch)
	mon.m.learningRate.Set(r.LR)
	mon.m.dLearningRate.Set(r.DLR)
	mon.m.momentum.Set(r.Mom)
	mon.st.Step, mon.st.Epoch, mon.st.LR, mon.st.Momentum = r.Step, r.Epoch, r.LR, r.Mom
	if mon.st.State == StateEvaluating { // an evaluation that failed ends with the next step
		mon.st.State = StateTraining
	}
	mon.rate.add(mon.now(), r.Step)
	if !r.Observed {
		return
	}
	mon.m.loss.WithLabelValues("discriminator").Set(r.DLoss)
	mon.m.loss.WithLabelValues("generator").Set(r.GLoss)
	mon.m.dOutput.WithLabelValues("real").Set(r.DReal)
	mon.m.dOutput.WithLabelValues("fake").Set(r.DFake)
	if r.MemoryTotal > 0 {
		mon.m.deviceMemUsed.WithLabelValues(mon.deviceID).Set(float64(r.MemoryUsed))
		mon.m.deviceMemTotal.WithLabelValues(mon.deviceID).Set(float64(r.MemoryTotal))
		mon.st.DeviceMemoryUsed, mon.st.DeviceMemoryTotal = r.MemoryUsed, r.MemoryTotal
	}
	mon.st.ObservedStep = r.Step
	mon.st.DLoss, mon.st.GLoss, mon.st.DReal, mon.st.DFake = r.DLoss, r.GLoss, r.DReal, r.DFake
	mon.addPoint(Point{Step: r.Step, Epoch: r.Epoch, DLoss: r.DLoss, GLoss: r.GLoss, DReal: r.DReal, DFake: r.DFake})
}

// addPoint appends to the history, thinning it to every other point when full.
// The newest point is always kept, so the curve ends at the status values.
func (mon *Monitor) addPoint(p Point) {
	// After a divergence rollback the run repeats steps: the abandoned ones go.
	for len(mon.history) > 0 && mon.history[len(mon.history)-1].Step >= p.Step {
		mon.history = mon.history[:len(mon.history)-1]
	}
	n := len(mon.history)
	if n > 0 && mon.history[n-1].Step%mon.stride != 0 {
		mon.history = mon.history[:n-1] // the previous newest was kept only for being newest
	}
	mon.history = append(mon.history, p)
	if len(mon.history) < maxHistory {
		return
	}
	mon.stride *= 2
	kept := mon.history[:0]
	for i, q := range mon.history {
		if q.Step%mon.stride == 0 || i == len(mon.history)-1 {
			kept = append(kept, q)
		}
	}
	mon.history = kept
}

// SamplesWritten implements trainer.Observer.
func (mon *Monitor) SamplesWritten(step int64, png []byte) {
	mon.mu.Lock()
	defer mon.mu.Unlock()
	mon.png = append(mon.png[:0:0], png...)
	mon.st.SampleStep = step
}

// CheckpointWritten implements trainer.Observer.
func (mon *Monitor) CheckpointWritten(r trainer.CheckpointReport) {
	mon.m.ckptDuration.Observe(r.Duration.Seconds())
	if r.Err != nil {
		mon.m.ckptFailures.Inc()
		return
	}
	mon.m.ckptLastSuccess.Set(float64(r.Time.UnixNano()) / 1e9)
	mon.mu.Lock()
	defer mon.mu.Unlock()
	mon.st.LastCheckpoint = &CheckpointInfo{Step: r.Step, Path: r.Path, Time: r.Time.UTC(), DurationSeconds: r.Duration.Seconds()}
}

// OutputFailed implements trainer.Observer.
func (mon *Monitor) OutputFailed(f trainer.OutputFailure) {
	mon.m.outputFailures.WithLabelValues(f.File).Inc()
}

// EvaluationStarted implements trainer.Observer.
func (mon *Monitor) EvaluationStarted(step int64) {
	mon.mu.Lock()
	defer mon.mu.Unlock()
	if mon.st.State == StateTraining {
		mon.st.State = StateEvaluating
	}
}

// Evaluated records evaluation results (metric name → value) of a step.
func (mon *Monitor) Evaluated(step int64, results map[string]float64) {
	for k, v := range results {
		mon.m.eval.WithLabelValues(k).Set(v)
	}
	mon.mu.Lock()
	defer mon.mu.Unlock()
	mon.st.Evaluation = make(map[string]float64, len(results))
	for k, v := range results {
		mon.st.Evaluation[k] = v
	}
	mon.st.EvaluationStep = step
	if mon.st.State == StateEvaluating {
		mon.st.State = StateTraining
	}
}

// RunEnded implements trainer.Observer.
func (mon *Monitor) RunEnded(step int64, stopped bool, err error) {
	mon.m.ready.Set(0)
	mon.mu.Lock()
	defer mon.mu.Unlock()
	mon.st.Step = step
	switch {
	case errors.Is(err, trainer.ErrDiverged):
		mon.st.State, mon.st.Error = StateDiverged, err.Error()
	case err != nil:
		mon.st.State, mon.st.Error = StateFailed, err.Error()
	case stopped:
		mon.st.State = StateStopped
	default:
		mon.st.State = StateDone
	}
}

// Ready reports whether training is running and has not diverged, and the state.
func (mon *Monitor) Ready() (bool, string, string) {
	mon.mu.Lock()
	defer mon.mu.Unlock()
	return mon.st.State == StateTraining || mon.st.State == StateEvaluating, mon.st.State, mon.st.Error
}

// Status returns a snapshot of the run's status.
func (mon *Monitor) Status() Status {
	mon.mu.Lock()
	defer mon.mu.Unlock()
	s := mon.st
	now := mon.now()
	s.ElapsedSeconds = now.Sub(s.StartedAt).Seconds()
	if s.State == StateTraining || s.State == StateEvaluating {
		s.StepsPerSecond = mon.rate.perSecond()
	}
	s.ExamplesPerSecond = s.StepsPerSecond * float64(mon.examplesPS)
	if s.State == StateTraining && s.StepLimit > 0 && s.StepsPerSecond > 0 {
		eta := math.Max(float64(s.StepLimit-s.Step), 0) / s.StepsPerSecond
		at := now.Add(time.Duration(eta * float64(time.Second))).UTC()
		s.ETASeconds, s.ETA = &eta, &at
	}
	if s.State != StateStarting {
		cfg := mon.cfg
		s.Config = &cfg
	}
	if s.Evaluation != nil {
		s.Evaluation = make(map[string]float64, len(mon.st.Evaluation))
		for k, v := range mon.st.Evaluation {
			s.Evaluation[k] = v
		}
	}
	return s
}

// History returns the observed steps so far (thinned evenly on long runs).
func (mon *Monitor) History() []Point {
	mon.mu.Lock()
	defer mon.mu.Unlock()
	return append([]Point(nil), mon.history...)
}

// SamplePNG returns the newest sample grid and its step; nil before the first.
func (mon *Monitor) SamplePNG() ([]byte, int64) {
	mon.mu.Lock()
	defer mon.mu.Unlock()
	return mon.png, mon.st.SampleStep
}

// rateWindow measures steps per second over the last rateSpan of wall time.
type rateWindow struct {
	t    []time.Time
	step []int64
}

const rateSpan = 10 * time.Second

func (w *rateWindow) add(t time.Time, step int64) {
	// Keep at most one sample per 100 ms, and samples back to rateSpan ago.
	if n := len(w.t); n > 1 && t.Sub(w.t[n-2]) < 100*time.Millisecond {
		w.t[n-1], w.step[n-1] = t, step
	} else {
		w.t, w.step = append(w.t, t), append(w.step, step)
	}
	i := 0
	for i < len(w.t)-2 && t.Sub(w.t[i+1]) > rateSpan {
		i++
	}
	if i > 0 {
		w.t, w.step = append(w.t[:0], w.t[i:]...), append(w.step[:0], w.step[i:]...)
	}
}

func (w *rateWindow) perSecond() float64 {
	n := len(w.t)
	if n < 2 {
		return 0
	}
	dt := w.t[n-1].Sub(w.t[0]).Seconds()
	if dt <= 0 {
		return 0
	}
	return float64(w.step[n-1]-w.step[0]) / dt
}
