package trainer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/gantrain/gantrain/backend"
	"github.com/gantrain/gantrain/checkpoint"
	"github.com/gantrain/gantrain/config"
	"github.com/gantrain/gantrain/data"
	"github.com/gantrain/gantrain/internal/atomicfile"
	"github.com/gantrain/gantrain/output"
)

// RunOptions say how Run reports and how it is controlled.
type RunOptions struct {
	// Dir is the run directory: config.yaml, metrics.jsonl, samples/, checkpoints/.
	Dir string
	// Shape is the data's image shape, for sample grids; zero for 2-D point data,
	// which is drawn as a scatter plot with Marks (pairs) as reference points.
	Shape data.Shape
	Marks []float32
	// Progress receives the progress bar (when Bar) or nothing.
	Progress io.Writer
	Bar      bool
	// Observer, when not nil, is told about every step, sample grid and checkpoint.
	Observer Observer
	// Commands, when not nil, delivers requests (checkpoint now, stop) that Run
	// serves between steps.
	Commands <-chan Command
	// Evaluator, when not nil and the config's eval.every_epochs is set, scores
	// eval.samples samples of G after every that many epochs; the best-scoring
	// checkpoint is kept (checkpoints/best.json names it).
	Evaluator Evaluator
}

// Run trains until the step or epoch limit, until ctx is cancelled or until a StopNow
// command, writing the run directory as it goes (a sample grid of the starting step
// first); unless training diverged, it ends with a checkpoint and a sample grid of the
// last step.
func (t *Trainer) Run(ctx context.Context, opt RunOptions) (err error) {
	r := &run{t: t, ctx: ctx, opt: opt, obs: opt.Observer, lastCkpt: -1, lastSample: -1}
	if r.obs == nil {
		r.obs = nopObserver{}
	}
	defer func() { r.obs.RunEnded(t.step, r.stopped, err) }()
	if err := r.prepareDir(); err != nil {
		return err
	}
	var bar io.Writer
	if opt.Bar {
		bar = opt.Progress
	}
	r.bar = output.NewProgress(bar, t.totalSteps(), t.step)
	if r.metrics, err = output.OpenMetricsLog(r.metricsPath(), t.step, t.openOutput); err != nil {
		return err
	}
	defer r.closeMetrics()
	if err := r.start(); err != nil {
		return err
	}
	if err := r.loop(); err != nil {
		return err
	}
	return r.finish()
}

// run is one call of Trainer.Run: what its loop keeps between steps.
type run struct {
	t       *Trainer
	ctx     context.Context
	opt     RunOptions
	obs     Observer
	bar     *output.Progress
	metrics *output.MetricsLog
	ev      *evaluation

	// cheapScalars: reading a step's scalars back costs nothing, so every step is read.
	cheapScalars bool
	// The examples/s of a log line are counted from the previous one.
	lastLogTime time.Time
	lastLogStep int64
	// The steps of the newest checkpoint and sample grid this run wrote (-1: none).
	lastCkpt, lastSample int64

	stopped bool     // stopped on request (a signal, StopNow)
	stopCmd *Command // the StopNow to answer when the run has ended
}

// prepareDir makes the run directory and its folders, removes what interrupted
// checkpoint writes left and writes the effective config.
func (r *run) prepareDir() error {
	dir := r.opt.Dir
	for _, d := range []string{dir, filepath.Join(dir, output.SamplesDir), filepath.Join(dir, checkpoint.Dir)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("run directory: %w", err)
		}
	}
	checkpoint.RemoveStaleTemps(dir)
	cfgYAML, err := r.t.cfg.YAML()
	if err != nil {
		return err
	}
	if err := atomicfile.Write(filepath.Join(dir, "config.yaml"), func(w io.Writer) error {
		_, err := w.Write(cfgYAML)
		return err
	}); err != nil {
		return fmt.Errorf("write effective config: %w", err)
	}
	return nil
}

func (r *run) metricsPath() string { return filepath.Join(r.opt.Dir, output.MetricsFile) }

// closeMetrics writes what waits in the metrics log and closes it.
func (r *run) closeMetrics() {
	if r.metrics == nil {
		return
	}
	if err := r.metrics.Close(); err != nil {
		r.t.log.Error("metrics log: records could not be written", "err", err)
	}
}

// start announces the run, sets up its evaluation and writes what the run has from
// its first step: a sample grid and, for a run that may roll back, a checkpoint.
func (r *run) start() error {
	t := r.t
	t.log.Info("training", "backend", t.b.Describe(), "generator_params", t.G.Size(),
		"discriminator_params", t.D.Size(), "train_examples", t.nTrain, "batch", t.cfg.Train.Batch,
		"k", t.cfg.Train.K, "update", t.cfg.Train.Update, "from_step", t.step, "dir", r.opt.Dir)
	if o := t.cfg.Optimizer; o.AnnealEpochs > 0 {
		t.log.Info("learning-rate anneal", "from_epoch", o.AnnealFrom, "to_zero_at_epoch", o.AnnealFrom+o.AnnealEpochs,
			"run_ends_at_epoch", t.epochLimit())
	}
	var accel backend.Accelerator
	if d, ok := t.b.(backend.AcceleratorReporter); ok {
		accel = d.Accelerator()
	}
	r.obs.RunStarted(RunInfo{Config: t.cfg, Dir: r.opt.Dir, Backend: t.b.Name(), Device: t.b.Describe(),
		Accelerator: accel, StartStep: t.step, StepLimit: r.bar.Total(), StepsPerEpoch: t.stepsPerEpoch(),
		ExamplesPerStep: t.cfg.Train.Batch * t.cfg.Train.K})
	var err error
	if r.ev, err = t.newEvaluation(r.opt.Evaluator); err != nil {
		return err
	}
	r.lastLogTime, r.lastLogStep = time.Now(), t.step
	// A grid of the starting generator, so that the status page and the API have one
	// from the start rather than from the first sample_every step.
	if err := r.samples(); err != nil {
		return err
	}
	r.cheapScalars = backend.ReadbackIsCheap(t.b)
	if t.cfg.Train.OnDivergence == config.OnDivergenceRollback && t.lastCheckpointStep(r.opt.Dir) < 0 {
		// A rollback needs a checkpoint to return to, even before the first period.
		if _, err := t.writeCheckpoint(r.opt.Dir, r.obs); err != nil {
			return err
		}
		r.lastCkpt = t.step
	}
	return nil
}

// loop runs steps until the run is done, stopped or failed.
func (r *run) loop() error {
	t := r.t
	for !t.Done() {
		if r.ctx.Err() != nil {
			r.bar.Clear()
			t.log.Info("stopping on request", "step", t.step)
			r.stopped = true
			return nil
		}
		switch next, err := r.serveCommand(); {
		case err != nil:
			return err
		case next == stopRun:
			return nil
		case next == startOver:
			continue
		}
		if err := r.iterate(); err != nil {
			return err
		}
	}
	return nil
}

// afterCommand is what the loop does after serving a command.
type afterCommand uint8

const (
	goOn      afterCommand = iota // run the step
	startOver                     // the run rolled back: begin the iteration again
	stopRun                       // end the run
)

// serveCommand serves a command that waits, if any.
func (r *run) serveCommand() (afterCommand, error) {
	t := r.t
	var cmd Command
	select {
	case cmd = <-r.opt.Commands:
	default:
		return goOn, nil
	}
	switch cmd.Kind {
	case CheckpointNow:
		r.bar.Clear()
		path, err := t.writeCheckpoint(r.opt.Dir, r.obs)
		if err == nil {
			r.lastCkpt = t.step
		}
		reply(cmd, CommandResult{Step: t.step, Path: path, Err: err})
		if errors.Is(err, ErrDiverged) {
			return startOver, r.diverged(err)
		}
	case StopNow:
		r.bar.Clear()
		t.log.Info("stopping on request", "step", t.step, "by", "control API")
		r.stopped, r.stopCmd = true, &cmd
		return stopRun, nil
	default:
		reply(cmd, CommandResult{Step: t.step, Err: fmt.Errorf("unknown command %d", cmd.Kind)})
	}
	return goOn, nil
}

// iterate runs one step and writes what falls due after it.
func (r *run) iterate() error {
	t := r.t
	observe := r.observes(t.step + 1)
	start := time.Now()
	st, err := t.Step(observe)
	if err != nil {
		r.bar.Clear()
		return err
	}
	if observe {
		if bad := firstNonFinite(st); bad != "" {
			return r.diverged(fmt.Errorf("step %d: %s is %v: %w (the last checkpoint, step %d, is kept)",
				st.Step, bad, st.value(bad), ErrDiverged, t.lastCheckpointStep(r.opt.Dir)))
		}
		if st.Step%10 == 0 {
			r.bar.Update(stepRecord(st))
		}
	}
	rep := StepReport{Stats: st, Observed: observe, Duration: time.Since(start)}
	if mr, ok := t.b.(backend.MemoryReporter); ok && observe {
		rep.MemoryUsed, rep.MemoryTotal = mr.Memory()
	}
	r.obs.StepDone(rep)
	out := t.cfg.Output
	if r.due(out.LogEvery) {
		r.logStep(st)
	}
	if r.due(out.SampleEvery) {
		if err := r.samples(); err != nil {
			return err
		}
	}
	if r.due(out.CheckpointEvery) {
		if rolledBack, err := r.periodicCheckpoint(); rolledBack || err != nil {
			return err
		}
	}
	if r.ev.due(t) {
		return r.evaluate()
	}
	return nil
}

// observes reports whether step reads its scalars back: on steps that report them,
// and on every step where that costs nothing, so that a NaN stops the run at once.
func (r *run) observes(step int64) bool {
	return (r.t.cfg.Output.LogEvery > 0 && step%int64(r.t.cfg.Output.LogEvery) == 0) ||
		(r.bar.On() && step%10 == 0) || r.cheapScalars
}

// due reports whether an output every n steps (0: never) falls on the current step.
func (r *run) due(n int) bool { return n > 0 && r.t.step%int64(n) == 0 }

// logStep logs the step and appends its record to metrics.jsonl.
func (r *run) logStep(st Stats) {
	t := r.t
	now := time.Now()
	exPerS := float64((t.step-r.lastLogStep)*int64(t.cfg.Train.Batch*t.cfg.Train.K)) / now.Sub(r.lastLogTime).Seconds()
	r.lastLogTime, r.lastLogStep = now, t.step
	r.bar.Clear()
	args := []any{"step", st.Step, "epoch", round(st.Epoch, 3), "d_loss", round(st.DLoss, 4),
		"g_loss", round(st.GLoss, 4), "d_real", round(st.DReal, 4), "d_fake", round(st.DFake, 4),
		"lr", roundSig(st.LR, 6)}
	if t.cfg.Optimizer.DLR > 0 {
		args = append(args, "d_lr", roundSig(st.DLR, 6))
	}
	args = append(args, "momentum", round(st.Mom, 4), "examples_per_s", math.Round(exPerS))
	if pct, eta, ok := r.bar.Estimate(st.Step); ok { // where no bar is drawn, the log says how far
		args = append(args, "progress", fmt.Sprintf("%.1f%%", pct), "eta", eta.String())
	}
	t.log.Info("step", args...)
	rec := stepRecord(st)
	if t.cfg.Optimizer.DLR > 0 {
		rec.DLR = st.DLR
	}
	rec.Time, rec.ExamplesPerS = now.UTC(), exPerS
	r.writeMetrics(rec)
	r.bar.Draw()
}

// stepRecord is st as metrics.jsonl and the progress bar take it.
func stepRecord(st Stats) output.StepRecord {
	return output.StepRecord{Step: st.Step, Epoch: st.Epoch, DLoss: st.DLoss, GLoss: st.GLoss,
		DReal: st.DReal, DFake: st.DFake, LR: st.LR, Momentum: st.Mom}
}

// writeMetrics appends rec to metrics.jsonl; a failure is reported and the run goes on.
func (r *run) writeMetrics(rec any) {
	if err := r.metrics.Write(rec); err != nil {
		r.outputFailed(OutputMetrics, err)
	}
}

// outputFailed logs a failed write of metrics.jsonl or a sample grid and counts it:
// like a failed periodic checkpoint, it does not end the run.
func (r *run) outputFailed(file string, err error) {
	r.bar.Clear()
	r.t.log.Error("writing the run directory failed; training continues", "file", file, "step", r.t.step, "err", err)
	r.obs.OutputFailed(OutputFailure{Step: r.t.step, File: file, Err: err})
}

// samples writes a grid of the current step; only a failed backend makes its failure
// end the run.
func (r *run) samples() error {
	err := r.t.writeSamples(r.opt, r.obs)
	switch {
	case err == nil:
		r.lastSample = r.t.step
	case r.t.b.Err() != nil:
		return err
	default:
		r.outputFailed(OutputSamples, err)
	}
	return nil
}

// periodicCheckpoint writes the checkpoint of a checkpoint_every step. A failed write
// (a full disk, say) is logged and counted, and training goes on: the previous
// checkpoints are intact and the next period retries. Divergence found in the
// parameters rolls the run back (rolledBack) or ends it.
func (r *run) periodicCheckpoint() (rolledBack bool, err error) {
	t := r.t
	_, err = t.writeCheckpoint(r.opt.Dir, r.obs)
	switch {
	case err == nil:
		r.lastCkpt = t.step
	case errors.Is(err, ErrDiverged):
		return true, r.diverged(err)
	default:
		r.bar.Clear()
		t.log.Error("checkpoint failed; training continues", "step", t.step, "err", err)
	}
	return false, nil
}

// evaluate runs the evaluation that is due; only a failed backend or divergence
// makes its failure end the run.
func (r *run) evaluate() error {
	t := r.t
	r.bar.Clear()
	wrote, err := t.evaluate(r.ctx, r.ev, r.opt.Dir, r.writeMetrics, r.obs, r.lastCkpt == t.step)
	if wrote {
		r.lastCkpt = t.step
	}
	if err != nil {
		if t.b.Err() != nil || errors.Is(err, ErrDiverged) {
			return err
		}
		t.log.Error("evaluation failed; training continues", "step", t.step, "err", err)
	}
	return nil
}

// diverged rolls the run back (when configured and allowed) and reopens the metrics
// log cut back to the restored step; otherwise it returns cause.
func (r *run) diverged(cause error) error {
	t := r.t
	r.bar.Clear()
	if err := t.rollback(r.opt.Dir, cause); err != nil {
		return err
	}
	if err := r.metrics.Close(); err != nil {
		r.outputFailed(OutputMetrics, err)
	}
	r.metrics = nil
	var err error
	if r.metrics, err = output.OpenMetricsLog(r.metricsPath(), t.step, t.openOutput); err != nil {
		return err
	}
	r.lastCkpt, r.lastSample, r.lastLogStep, r.lastLogTime = t.step, -1, t.step, time.Now()
	return nil
}

// finish ends the run with samples and a checkpoint of its last step, unless they
// were just written, and answers a StopNow. A sample grid that cannot be written does
// not keep the checkpoint from being tried.
func (r *run) finish() error {
	t := r.t
	r.bar.Clear()
	if r.lastSample != t.step {
		if err := r.samples(); err != nil {
			return err
		}
	}
	path := checkpoint.Path(r.opt.Dir, t.step)
	if r.lastCkpt != t.step {
		var err error
		if path, err = t.writeCheckpoint(r.opt.Dir, r.obs); err != nil {
			if r.stopCmd != nil {
				reply(*r.stopCmd, CommandResult{Step: t.step, Err: err})
			}
			return err
		}
	}
	if r.stopCmd != nil {
		reply(*r.stopCmd, CommandResult{Step: t.step, Path: path})
	}
	t.log.Info("done", "step", t.step, "epoch", round(t.Epoch(), 3), "elapsed", r.bar.Elapsed().Round(time.Second).String())
	return nil
}

// reply delivers a command's result without ever blocking the run.
func reply(cmd Command, r CommandResult) {
	if cmd.Reply == nil {
		return
	}
	select {
	case cmd.Reply <- r:
	default:
	}
}

// lastCheckpointStep is the step of the newest checkpoint on disk, or -1.
func (t *Trainer) lastCheckpointStep(dir string) int64 {
	list, err := checkpoint.List(dir)
	if err != nil || len(list) == 0 {
		return -1
	}
	return list[0].Step
}

// stepsPerEpoch is the number of iterations in one pass over the training set.
func (t *Trainer) stepsPerEpoch() int64 {
	return int64(t.nTrain / (t.cfg.Train.Batch * t.cfg.Train.K))
}

// rollback answers a divergence (err): with on_divergence rollback and rollbacks
// left, it restores the newest good checkpoint, multiplies the learning rates by
// rollback_lr_factor and returns nil; otherwise it returns err.
func (t *Trainer) rollback(dir string, err error) error {
	c := t.cfg.Train
	if c.OnDivergence != config.OnDivergenceRollback {
		return err
	}
	if t.rollbacks >= c.MaxRollbacks {
		return fmt.Errorf("%w; giving up after %d rollbacks (train.max_rollbacks)", err, t.rollbacks)
	}
	scale, n, from := t.optG.scale*c.RollbackLRFactor, t.rollbacks+1, t.step
	rep, rerr := t.ResumeLatest(dir)
	if rerr != nil {
		return fmt.Errorf("%w; rollback failed: %v", err, rerr)
	}
	t.optG.scale, t.optD.scale, t.rollbacks = scale, scale, n
	t.log.Warn("training diverged; rolled back to the newest checkpoint with lower learning rates",
		"at_step", from, "to_step", rep.Step, "lr_scale", scale, "rollback", n, "max", c.MaxRollbacks, "cause", err)
	return nil
}

func round(x float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(x*p) / p
}

// roundSig rounds x to digits significant digits (a decayed learning rate such as
// 0.09999600015999361 logs as 0.099996).
func roundSig(x float64, digits int) float64 {
	if x == 0 || math.IsNaN(x) || math.IsInf(x, 0) {
		return x
	}
	v, _ := strconv.ParseFloat(strconv.FormatFloat(x, 'g', digits, 64), 64)
	return v
}

// firstNonFinite names the first loss that is NaN or infinite.
func firstNonFinite(st Stats) string {
	for _, name := range []string{"d_loss", "g_loss"} {
		if v := st.value(name); math.IsNaN(v) || math.IsInf(v, 0) {
			return name
		}
	}
	return ""
}

func (st Stats) value(name string) float64 {
	if name == "d_loss" {
		return st.DLoss
	}
	return st.GLoss
}

// totalSteps is the run's length in iterations when it is bounded, else 0.
func (t *Trainer) totalSteps() int64 {
	c, epochs := t.cfg.Train, t.epochLimit()
	perEpoch := int64(t.nTrain / (c.Batch * c.K))
	var total int64
	if epochs > 0 && perEpoch > 0 {
		total = int64(epochs) * perEpoch
	}
	if c.Steps > 0 && (total == 0 || c.Steps < total) {
		total = c.Steps
	}
	return total
}

// writeSamples writes the grid of the fixed-noise samples of the current step and
// tells obs.
func (t *Trainer) writeSamples(opt RunOptions, obs Observer) error {
	x, err := t.Samples()
	if err != nil {
		return err
	}
	png, err := output.SampleGrid(x, t.cfg.Output.Samples, opt.Shape, t.G.Out, opt.Marks)
	if err != nil || png == nil {
		return err
	}
	if err := output.WriteSamples(opt.Dir, t.step, png); err != nil {
		return err
	}
	obs.SamplesWritten(t.step, png)
	return nil
}

// writeCheckpoint saves the full state as checkpoints/step-N.safetensors, after
// checking that every parameter is finite, then prunes old checkpoints.
func (t *Trainer) writeCheckpoint(dir string, obs Observer) (string, error) {
	start := time.Now()
	path := checkpoint.Path(dir, t.step)
	f, err := t.Checkpoint()
	if err == nil {
		if err = checkFinite(f); err != nil {
			err = fmt.Errorf("step %d: %w (checkpoint not written; the last one, step %d, is kept)", t.step, err, t.lastCheckpointStep(dir))
		}
	}
	if err == nil {
		if err = checkpoint.WriteFile(path, f); err != nil {
			err = fmt.Errorf("write checkpoint: %w", err)
		}
	}
	obs.CheckpointWritten(CheckpointReport{Step: t.step, Path: path, Duration: time.Since(start), Time: time.Now(), Err: err})
	if err != nil {
		return "", err
	}
	t.log.Info("checkpoint", "step", t.step, "path", path, "seconds", round(time.Since(start).Seconds(), 3))
	best, err := checkpoint.ReadBest(dir)
	if err != nil {
		t.log.Warn("best checkpoint record unreadable; pruning spares nothing extra", "err", err)
	}
	if _, err := checkpoint.Prune(dir, t.cfg.Output.KeepCheckpoints, best); err != nil {
		t.log.Warn("pruning old checkpoints failed", "err", err)
	}
	return path, nil
}
