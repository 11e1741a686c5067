package trainer

import (
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/gantrain/gantrain/backend"
	"github.com/gantrain/gantrain/checkpoint"
	"github.com/gantrain/gantrain/model"
	"github.com/gantrain/gantrain/output"
	"github.com/gantrain/gantrain/rng"
)

// streamEval is the noise of the samples evaluations score (| chunk index): the
// same noise at every evaluation, so that scores over a run compare generators,
// not draws.
const streamEval = 1<<63 | 1<<40

// evalChunk is how many samples one generator pass of an evaluation makes.
const evalChunk = 1000

// Evaluator scores samples of the generator (package eval's Suite, adapted by the
// command). Metric names follow eval.Result.Metrics: parzen_ll, frechet_distance, …
type Evaluator interface {
	Evaluate(ctx context.Context, samples []float32) (map[string]float64, error)
}

// evaluation is the state of periodic evaluation in a run.
type evaluation struct {
	ev        Evaluator
	every     int // epochs
	n         int // samples
	z         backend.Tensor
	pass      *model.Pass
	raw       *model.Pass // G's own parameters, with eval.raw_generator and an average
	host      []float32
	lastEpoch int
}

// newEvaluation allocates the generator pass evaluations sample with.
func (t *Trainer) newEvaluation(ev Evaluator) (*evaluation, error) {
	c := t.cfg.Eval
	if ev == nil || c.EveryEpochs <= 0 {
		return nil, nil
	}
	e := &evaluation{ev: ev, every: c.EveryEpochs, n: c.Samples, lastEpoch: t.epoch, host: make([]float32, c.Samples*t.G.Out)}
	rows := min(evalChunk, c.Samples)
	var err error
	if e.z, err = t.b.Alloc(backend.F32, rows, t.cfg.Noise.Dim); err != nil {
		return nil, fmt.Errorf("evaluation noise: %w", err)
	}
	if e.pass, err = t.optG.sampler().NewPass(t.b, e.z, model.PassBuffers{}); err != nil {
		return nil, fmt.Errorf("evaluation pass: %w", err)
	}
	if c.RawGenerator && t.optG.sampler() != t.G {
		if e.raw, err = t.G.NewPass(t.b, e.z, model.PassBuffers{}); err != nil {
			return nil, fmt.Errorf("evaluation pass of G's own parameters: %w", err)
		}
	}
	return e, nil
}

// due reports whether an evaluation falls at the current step: the first step of
// every every-th epoch.
func (e *evaluation) due(t *Trainer) bool {
	return e != nil && t.epoch > e.lastEpoch && t.epoch%e.every == 0
}

// generate draws the evaluation's samples from the generator of pass, chunk by chunk.
func (e *evaluation) generate(t *Trainer, pass *model.Pass) ([]float32, error) {
	rows, w := e.z.Rows(), t.G.Out
	chunk := make([]float32, rows*w)
	for c, done := 0, 0; done < e.n; c, done = c+1, done+rows {
		t.noise(e.z, rng.Stream{Seed: t.seed, Offset: streamEval | uint64(c)})
		pass.Forward(t.b, sampleMode(t.cfg), rng.Stream{})
		if err := t.b.Download(chunk, pass.Out); err != nil {
			return nil, fmt.Errorf("evaluation samples: %w", err)
		}
		copy(e.host[done*w:], chunk[:min(rows, e.n-done)*w])
	}
	return e.host, nil
}

// rank is the number that orders checkpoints by quality, higher better: the
// Parzen log-likelihood when computed, else minus the Fréchet distance, else the
// classifier score.
func rank(m map[string]float64) (string, float64, bool) {
	for _, k := range []string{"parzen_ll", "frechet_distance", "classifier_score"} {
		v, ok := m[k]
		if !ok || math.IsNaN(v) || math.IsInf(v, 0) {
			continue
		}
		if k == "frechet_distance" {
			v = -v
		}
		return k, v, true
	}
	return "", 0, false
}

// evaluate runs an evaluation at the current step, logs and reports it (record
// appends its record to metrics.jsonl), writes a checkpoint of the step (unless one was
// just written) and records it as the best when it ranks above the previous best.
func (t *Trainer) evaluate(ctx context.Context, e *evaluation, dir string, record func(any), obs Observer, haveCkpt bool) (wroteCkpt bool, err error) {
	e.lastEpoch = t.epoch
	obs.EvaluationStarted(t.step)
	start := time.Now()
	err = t.stander.stand(t.b, t.step)
	var m map[string]float64
	if err == nil {
		m, err = e.score(ctx, t, e.pass)
	}
	if err == nil && e.raw != nil {
		var raw map[string]float64
		if raw, err = e.score(ctx, t, e.raw); err == nil {
			for k, v := range raw {
				m["raw_"+k] = v
			}
		}
	}
	if err != nil {
		if ctx.Err() != nil {
			return false, nil // stopping: the evaluation is abandoned, not failed
		}
		return false, fmt.Errorf("evaluation at step %d: %w", t.step, err)
	}
	args := []any{"step", t.step, "epoch", t.epoch, "seconds", round(time.Since(start).Seconds(), 1)}
	for _, k := range sortedKeys(m) {
		args = append(args, k, round(m[k], 4))
	}
	t.log.Info("evaluation", args...)
	record(output.EvalRecord{Time: time.Now().UTC(), Step: t.step, Epoch: t.Epoch(), Eval: finiteOnly(m)})
	obs.Evaluated(t.step, m)
	name, score, ok := rank(m)
	if !ok {
		return false, nil
	}
	best, err := checkpoint.ReadBest(dir)
	if err != nil {
		t.log.Warn("best checkpoint record unreadable; replacing it", "err", err)
		best = nil
	}
	if best != nil && best.Metric == name && best.Score >= score {
		return false, nil
	}
	if !haveCkpt {
		if _, err := t.writeCheckpoint(dir, obs); err != nil {
			return false, err
		}
		wroteCkpt = true
	}
	if err := checkpoint.WriteBest(dir, checkpoint.Best{Step: t.step, Metric: name, Score: score}); err != nil {
		return wroteCkpt, fmt.Errorf("record best checkpoint: %w", err)
	}
	t.log.Info("best checkpoint so far", "step", t.step, "metric", name, "score", round(score, 4))
	return wroteCkpt, nil
}

// score draws the samples of pass's generator and evaluates them.
func (e *evaluation) score(ctx context.Context, t *Trainer, pass *model.Pass) (map[string]float64, error) {
	x, err := e.generate(t, pass)
	if err != nil {
		return nil, err
	}
	return e.ev.Evaluate(ctx, x)
}

func sortedKeys(m map[string]float64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func finiteOnly(m map[string]float64) map[string]float64 {
	out := make(map[string]float64, len(m))
	for k, v := range m {
		if !math.IsNaN(v) && !math.IsInf(v, 0) {
			out[k] = v
		}
	}
	return out
}
