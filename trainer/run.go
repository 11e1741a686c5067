package trainer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/gantrain/gantrain/backend"
	"github.com/gantrain/gantrain/checkpoint"
	"github.com/gantrain/gantrain/data"
	"github.com/gantrain/gantrain/imageio"
	"github.com/gantrain/gantrain/internal/atomicfile"
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
	obs := opt.Observer
	if obs == nil {
		obs = nopObserver{}
	}
	stopped := false
	defer func() { obs.RunEnded(t.step, stopped, err) }()
	for _, d := range []string{opt.Dir, filepath.Join(opt.Dir, "samples"), filepath.Join(opt.Dir, checkpointDir)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("run directory: %w", err)
		}
	}
	removeStaleTemps(opt.Dir)
	cfgYAML, err := t.cfg.YAML()
	if err != nil {
		return err
	}
	if err := atomicfile.Write(filepath.Join(opt.Dir, "config.yaml"), func(w io.Writer) error {
		_, err := w.Write(cfgYAML)
		return err
	}); err != nil {
		return fmt.Errorf("write effective config: %w", err)
	}
	bar := &progress{w: opt.Progress, on: opt.Bar, total: t.totalSteps(), start: time.Now(), startStep: t.step}
	metricsPath := filepath.Join(opt.Dir, "metrics.jsonl")
	openFile := t.openOutput
	if openFile == nil {
		openFile = openAppend
	}
	metrics, err := openMetricsLog(metricsPath, t.step, openFile)
	if err != nil {
		return err
	}
	defer func() {
		if err := metrics.Close(); err != nil {
			t.log.Error("metrics log: records could not be written", "err", err)
		}
	}()
	// outputFailed logs a failed write of metrics.jsonl or a sample grid and counts
	// it: like a failed periodic checkpoint, it does not end the run.
	outputFailed := func(file string, err error) {
		bar.clear()
		t.log.Error("writing the run directory failed; training continues", "file", file, "step", t.step, "err", err)
		obs.OutputFailed(OutputFailure{Step: t.step, File: file, Err: err})
	}

	out := t.cfg.Output
	every := func(n int) bool { return n > 0 && t.step%int64(n) == 0 }
	t.log.Info("training", "backend", t.b.Describe(), "generator_params", t.G.Size(),
		"discriminator_params", t.D.Size(), "train_examples", t.nTrain, "batch", t.cfg.Train.Batch,
		"k", t.cfg.Train.K, "update", t.cfg.Train.Update, "from_step", t.step, "dir", opt.Dir)
	var accel backend.Device
	if d, ok := t.b.(backend.DeviceReporter); ok {
		accel = d.Device()
	}
	obs.RunStarted(RunInfo{Config: t.cfg, Dir: opt.Dir, Backend: t.b.Name(), Device: t.b.Describe(),
		Accelerator: accel, StartStep: t.step, StepLimit: bar.total, StepsPerEpoch: t.stepsPerEpoch(),
		ExamplesPerStep: t.cfg.Train.Batch * t.cfg.Train.K})
	ev, err := t.newEvaluation(opt.Evaluator)
	if err != nil {
		return err
	}
	lastT, lastStep := time.Now(), t.step
	lastCkpt, lastSample := int64(-1), int64(-1)
	// samples writes a grid of the current step; only a failed backend makes its
	// failure end the run.
	samples := func() error {
		err := t.writeSamples(opt, obs)
		switch {
		case err == nil:
			lastSample = t.step
		case t.b.Err() != nil:
			return err
		default:
			outputFailed("samples", err)
		}
		return nil
	}
	// A grid of the starting generator, so that the status page and the API have one
	// from the start rather than from the first sample_every step.
	if err := samples(); err != nil {
		return err
	}
	cheapScalars := backend.ReadbackIsCheap(t.b)
	var stopCmd *Command
	if t.cfg.Train.OnDivergence == "rollback" && t.lastCheckpointStep(opt.Dir) < 0 {
		// A rollback needs a checkpoint to return to, even before the first period.
		if _, err := t.writeCheckpoint(opt.Dir, obs); err != nil {
			return err
		}
		lastCkpt = t.step
	}
	// diverged rolls back (when configured and allowed) and reopens the metrics log
	// truncated to the restored step; otherwise it returns err.
	diverged := func(err error) error {
		bar.clear()
		if err := t.rollback(opt.Dir, err); err != nil {
			return err
		}
		if err := metrics.Close(); err != nil {
			outputFailed("metrics", err)
		}
		if metrics, err = openMetricsLog(metricsPath, t.step, openFile); err != nil {
			return err
		}
		lastCkpt, lastSample, lastStep, lastT = t.step, -1, t.step, time.Now()
		return nil
	}
loop:
	for !t.Done() {
		if ctx.Err() != nil {
			bar.clear()
			t.log.Info("stopping on request", "step", t.step)
			stopped = true
			break
		}
		select {
		case cmd := <-opt.Commands:
			switch cmd.Kind {
			case CheckpointNow:
				bar.clear()
				path, err := t.writeCheckpoint(opt.Dir, obs)
				if err == nil {
					lastCkpt = t.step
				}
				reply(cmd, CommandResult{Step: t.step, Path: path, Err: err})
				if errors.Is(err, ErrDiverged) {
					if err := diverged(err); err != nil {
						return err
					}
					continue
				}
			case StopNow:
				bar.clear()
				t.log.Info("stopping on request", "step", t.step, "by", "control API")
				stopped, stopCmd = true, &cmd
				break loop
			default:
				reply(cmd, CommandResult{Step: t.step, Err: fmt.Errorf("unknown command %d", cmd.Kind)})
			}
		default:
		}
		// Read the scalars back only on steps that report them.
		next := t.step + 1
		// Where reading them costs nothing (no device queue to wait for), every step
		// is read, so a NaN stops the run at once.
		observe := (out.LogEvery > 0 && next%int64(out.LogEvery) == 0) || (bar.on && next%10 == 0) || cheapScalars
		start := time.Now()
		st, err := t.Step(observe)
		if err != nil {
			bar.clear()
			return err
		}
		if observe {
			if bad := firstNonFinite(st); bad != "" {
				err := fmt.Errorf("step %d: %s is %v: %w (the last checkpoint, step %d, is kept)", st.Step, bad, st.value(bad), ErrDiverged, t.lastCheckpointStep(opt.Dir))
				if err := diverged(err); err != nil {
					return err
				}
				continue
			}
			if st.Step%10 == 0 {
				bar.update(st)
			}
		}
		rep := StepReport{Stats: st, Observed: observe, Duration: time.Since(start)}
		if mr, ok := t.b.(backend.MemoryReporter); ok && observe {
			rep.MemoryUsed, rep.MemoryTotal = mr.Memory()
		}
		obs.StepDone(rep)
		if every(out.LogEvery) {
			now := time.Now()
			exPerS := float64((t.step-lastStep)*int64(t.cfg.Train.Batch*t.cfg.Train.K)) / now.Sub(lastT).Seconds()
			lastT, lastStep = now, t.step
			bar.clear()
			args := []any{"step", st.Step, "epoch", round(st.Epoch, 3), "d_loss", round(st.DLoss, 4),
				"g_loss", round(st.GLoss, 4), "d_real", round(st.DReal, 4), "d_fake", round(st.DFake, 4),
				"lr", roundSig(st.LR, 6), "momentum", round(st.Mom, 4), "examples_per_s", math.Round(exPerS)}
			if pct, eta, ok := bar.estimate(st.Step); ok { // where no bar is drawn, the log says how far
				args = append(args, "progress", fmt.Sprintf("%.1f%%", pct), "eta", eta.String())
			}
			t.log.Info("step", args...)
			rec, _ := json.Marshal(map[string]any{"time": now.UTC().Format(time.RFC3339Nano), "step": st.Step,
				"epoch": st.Epoch, "d_loss": st.DLoss, "g_loss": st.GLoss, "d_real": st.DReal, "d_fake": st.DFake,
				"lr": st.LR, "momentum": st.Mom, "examples_per_s": exPerS})
			if err := metrics.write(append(rec, '\n')); err != nil {
				outputFailed("metrics", err)
			}
			bar.draw()
		}
		if every(out.SampleEvery) {
			if err := samples(); err != nil {
				return err
			}
		}
		if every(out.CheckpointEvery) {
			// A failed periodic write (a full disk, say) is logged and counted, and
			// training goes on: the previous checkpoints are intact and the next
			// period retries. Divergence found in the parameters ends the run.
			if _, err := t.writeCheckpoint(opt.Dir, obs); err == nil {
				lastCkpt = t.step
			} else if errors.Is(err, ErrDiverged) {
				if err := diverged(err); err != nil {
					return err
				}
				continue
			} else {
				bar.clear()
				t.log.Error("checkpoint failed; training continues", "step", t.step, "err", err)
			}
		}
		if ev.due(t) {
			bar.clear()
			record := func(rec []byte) {
				if err := metrics.write(rec); err != nil {
					outputFailed("metrics", err)
				}
			}
			wrote, err := t.evaluate(ctx, ev, opt.Dir, record, obs, lastCkpt == t.step)
			if wrote {
				lastCkpt = t.step
			}
			if err != nil {
				if t.b.Err() != nil || errors.Is(err, ErrDiverged) {
					return err
				}
				t.log.Error("evaluation failed; training continues", "step", t.step, "err", err)
			}
		}
	}
	bar.clear()
	// The run ends with samples and a checkpoint of its last step, unless they were
	// just written. A sample grid that cannot be written does not keep the checkpoint
	// from being tried.
	if lastSample != t.step {
		if err := samples(); err != nil {
			return err
		}
	}
	var path string
	if lastCkpt != t.step {
		if path, err = t.writeCheckpoint(opt.Dir, obs); err != nil {
			if stopCmd != nil {
				reply(*stopCmd, CommandResult{Step: t.step, Err: err})
			}
			return err
		}
	} else {
		path = CheckpointPath(opt.Dir, t.step)
	}
	if stopCmd != nil {
		reply(*stopCmd, CommandResult{Step: t.step, Path: path})
	}
	t.log.Info("done", "step", t.step, "epoch", round(t.Epoch(), 3), "elapsed", time.Since(bar.start).Round(time.Second).String())
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
	list, err := ListCheckpoints(dir)
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
	if c.OnDivergence != "rollback" {
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

// truncateMetrics drops the records of metrics.jsonl past step: a run resumed from
// a checkpoint repeats those steps and writes them again.
func truncateMetrics(path string, step int64) error {
	raw, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("metrics log: %w", err)
	}
	var keep []byte
	cut := false
	for _, line := range bytes.SplitAfter(raw, []byte("\n")) {
		var rec struct {
			Step *int64 `json:"step"`
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		// A torn last line (a crash mid-write) or a record past step goes.
		if json.Unmarshal(line, &rec) != nil || rec.Step == nil || *rec.Step > step || line[len(line)-1] != '\n' {
			cut = true
			continue
		}
		keep = append(keep, line...)
	}
	if !cut {
		return nil
	}
	if err := atomicfile.Write(path, func(w io.Writer) error {
		_, err := w.Write(keep)
		return err
	}); err != nil {
		return fmt.Errorf("metrics log: %w", err)
	}
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
	c := t.cfg.Train
	perEpoch := int64(t.nTrain / (c.Batch * c.K))
	var total int64
	if c.Epochs > 0 && perEpoch > 0 {
		total = int64(c.Epochs) * perEpoch
	}
	if c.Steps > 0 && (total == 0 || c.Steps < total) {
		total = c.Steps
	}
	return total
}

// writeSamples writes the fixed-noise samples as samples/step-N.png and latest.png.
func (t *Trainer) writeSamples(opt RunOptions, obs Observer) error {
	x, err := t.Samples()
	if err != nil {
		return err
	}
	n := t.cfg.Output.Samples
	var img image.Image
	if opt.Shape.IsImage() {
		img, err = imageio.Grid(x, n, opt.Shape.H, opt.Shape.W, opt.Shape.C, 0)
	} else if t.G.Out == 2 {
		img, err = imageio.Scatter(x, opt.Marks, scatterExtent(opt.Marks), 512)
	} else {
		return nil // nothing to draw for other point data
	}
	if err != nil {
		return fmt.Errorf("sample grid: %w", err)
	}
	var png bytes.Buffer
	if err := imageio.EncodePNG(&png, img); err != nil {
		return fmt.Errorf("sample grid: %w", err)
	}
	dir := filepath.Join(opt.Dir, "samples")
	for _, name := range []string{fmt.Sprintf("step-%09d.png", t.step), "latest.png"} {
		if err := atomicfile.Write(filepath.Join(dir, name), func(w io.Writer) error {
			_, err := w.Write(png.Bytes())
			return err
		}); err != nil {
			return fmt.Errorf("sample grid: %w", err)
		}
	}
	obs.SamplesWritten(t.step, png.Bytes())
	return nil
}

func scatterExtent(marks []float32) float64 {
	r := 1.0
	for _, m := range marks {
		r = math.Max(r, math.Abs(float64(m)))
	}
	return 1.5 * r
}

// writeCheckpoint saves the full state as checkpoints/step-N.safetensors, after
// checking that every parameter is finite, then prunes old checkpoints.
func (t *Trainer) writeCheckpoint(dir string, obs Observer) (string, error) {
	start := time.Now()
	path := CheckpointPath(dir, t.step)
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
	best, err := readBest(dir)
	if err != nil {
		t.log.Warn("best checkpoint record unreadable; pruning spares nothing extra", "err", err)
	}
	if _, err := prune(dir, t.cfg.Output.KeepCheckpoints, best); err != nil {
		t.log.Warn("pruning old checkpoints failed", "err", err)
	}
	return path, nil
}

// progress draws a one-line progress bar on a terminal.
type progress struct {
	w         io.Writer
	on        bool
	total     int64
	start     time.Time
	startStep int64
	line      string
}

// estimate returns how far a bounded run is at step (per cent of its steps) and the
// time left at the rate since this process started; ok is false for an unbounded run
// or before any step was timed.
func (p *progress) estimate(step int64) (pct float64, eta time.Duration, ok bool) {
	done := step - p.startStep
	if p.total <= 0 || done <= 0 {
		return 0, 0, false
	}
	pct = 100 * math.Min(float64(step)/float64(p.total), 1)
	perStep := time.Since(p.start) / time.Duration(done)
	eta = (time.Duration(max(p.total-step, 0)) * perStep).Round(time.Second)
	return pct, eta, true
}

func (p *progress) update(st Stats) {
	if !p.on {
		return
	}
	elapsed := time.Since(p.start).Seconds()
	rate := float64(st.Step-p.startStep) / math.Max(elapsed, 1e-9)
	var b strings.Builder
	if p.total > 0 {
		frac := math.Min(float64(st.Step)/float64(p.total), 1)
		const width = 24
		full := int(frac * width)
		fmt.Fprintf(&b, "%d/%d [%s%s] %5.1f%% ", st.Step, p.total, strings.Repeat("=", full), strings.Repeat(" ", width-full), 100*frac)
		if rate > 0 {
			eta := time.Duration(float64(p.total-st.Step) / rate * float64(time.Second))
			fmt.Fprintf(&b, "ETA %s ", eta.Round(time.Second))
		}
	} else {
		fmt.Fprintf(&b, "step %d ", st.Step)
	}
	fmt.Fprintf(&b, "| epoch %.2f | D %.3f G %.3f | D(x) %.2f D(G(z)) %.2f | %.1f it/s", st.Epoch, st.DLoss, st.GLoss, st.DReal, st.DFake, rate)
	p.line = b.String()
	p.draw()
}

func (p *progress) draw() {
	if p.on && p.line != "" {
		fmt.Fprintf(p.w, "\r\x1b[K%s", p.line)
	}
}

func (p *progress) clear() {
	if p.on && p.line != "" {
		fmt.Fprint(p.w, "\r\x1b[K")
	}
}
