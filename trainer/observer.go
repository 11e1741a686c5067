package trainer

import (
	"errors"
	"time"

	"github.com/gantrain/gantrain/backend"
	"github.com/gantrain/gantrain/config"
)

// ErrDiverged is wrapped by the error of a run stopped because a loss or a
// parameter became NaN or infinite.
var ErrDiverged = errors.New("training diverged")

// Observer is told what a run does, from the run's goroutine. The service package
// implements it to serve metrics and status; every method must return quickly.
type Observer interface {
	// RunStarted is called once, before the first step.
	RunStarted(RunInfo)
	// StepDone is called after every iteration. Losses are set only on steps
	// that read them back (Observed).
	StepDone(StepReport)
	// SamplesWritten gets the PNG of the newest sample grid.
	SamplesWritten(step int64, png []byte)
	// CheckpointWritten reports a checkpoint attempt; Err is set when it failed.
	CheckpointWritten(CheckpointReport)
	// OutputFailed reports a failed write to the run directory other than a
	// checkpoint (metrics.jsonl, a sample grid): the run logs it and goes on.
	OutputFailed(OutputFailure)
	// EvaluationStarted says a periodic evaluation of the generator at step begins
	// (it can take a while; Evaluated, or the next step, ends it).
	EvaluationStarted(step int64)
	// Evaluated reports the metrics of a periodic evaluation at step.
	Evaluated(step int64, metrics map[string]float64)
	// RunEnded is called once when Run returns, with its error (nil when the run
	// reached its limit or was stopped on request).
	RunEnded(step int64, stopped bool, err error)
}

// RunInfo describes a run as it starts.
type RunInfo struct {
	Config          config.Config
	Dir             string
	Backend         string              // backend name: cpu or cuda
	Device          string              // what the backend runs on
	Accelerator     backend.Accelerator // the device, for backends that run on one (zero on the CPU)
	StartStep       int64               // iterations done before this process (resumed runs)
	StepLimit       int64               // the run's length in iterations, 0 when unbounded
	StepsPerEpoch   int64
	ExamplesPerStep int // real examples D sees per iteration (batch·k)
}

// StepReport is one iteration as the run saw it.
type StepReport struct {
	Stats
	Observed bool          // Stats' losses and D outputs were read back on this step
	Duration time.Duration // wall time of the iteration as launched (on a device, queueing hides part of it)
	// Device memory in use and in all, read on observed steps from backends that
	// have their own memory (zero otherwise).
	MemoryUsed, MemoryTotal int64
}

// CheckpointReport is one checkpoint write.
type CheckpointReport struct {
	Step     int64
	Path     string
	Duration time.Duration
	Time     time.Time
	Err      error
}

// OutputFailure is a failed write of one of a run's outputs.
type OutputFailure struct {
	Step int64
	File string // OutputMetrics or OutputSamples
	Err  error
}

// What an OutputFailure failed to write.
const (
	OutputMetrics = "metrics" // a record of metrics.jsonl
	OutputSamples = "samples" // a sample grid
)

// Command asks a running Run to do something between two steps.
type Command struct {
	Kind CommandKind
	// Reply, when not nil, receives the outcome (buffered by the sender: Run never
	// blocks on it).
	Reply chan<- CommandResult
}

// CommandKind is what a Command asks for.
type CommandKind uint8

// Commands.
const (
	// CheckpointNow writes a checkpoint after the current step.
	CheckpointNow CommandKind = iota + 1
	// StopNow writes a checkpoint and ends the run, as a signal does.
	StopNow
)

// CommandResult is the outcome of a Command.
type CommandResult struct {
	Step int64
	Path string // the checkpoint written
	Err  error
}

// nopObserver is the Observer of runs nobody watches.
type nopObserver struct{}

func (nopObserver) RunStarted(RunInfo)                  {}
func (nopObserver) StepDone(StepReport)                 {}
func (nopObserver) SamplesWritten(int64, []byte)        {}
func (nopObserver) CheckpointWritten(CheckpointReport)  {}
func (nopObserver) OutputFailed(OutputFailure)          {}
func (nopObserver) RunEnded(int64, bool, error)         {}
func (nopObserver) Evaluated(int64, map[string]float64) {}
func (nopObserver) EvaluationStarted(int64)             {}
