package trainer

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/gantrain/gantrain/checkpoint"
)

// scriptedEvaluator returns the next of its scores as parzen_ll and keeps what it saw.
type scriptedEvaluator struct {
	scores []float64
	seen   [][]float32
}

func (e *scriptedEvaluator) Evaluate(_ context.Context, x []float32) (map[string]float64, error) {
	e.seen = append(e.seen, append([]float32(nil), x...))
	v := e.scores[0]
	e.scores = e.scores[1:]
	return map[string]float64{"parzen_ll": v, "eval_seconds": 0.1}, nil
}

// recordingObserver keeps the evaluations it is told about, and checks that each was
// announced first.
type recordingObserver struct {
	nopObserver
	evals   map[int64]float64
	started []int64
}

func (o *recordingObserver) EvaluationStarted(step int64) { o.started = append(o.started, step) }

func (o *recordingObserver) Evaluated(step int64, m map[string]float64) {
	if len(o.started) == 0 || o.started[len(o.started)-1] != step {
		panic("an evaluation reported without EvaluationStarted")
	}
	o.evals[step] = m["parzen_ll"]
}

// Periodic evaluation runs after every eval.every_epochs epochs on samples from
// fixed noise, is logged and reported, and the best-scoring checkpoint is kept
// however few checkpoints the run keeps.
func TestPeriodicEvaluationKeepsBest(t *testing.T) {
	c := smallConfig()
	c.Eval.EveryEpochs, c.Eval.Parzen, c.Eval.Samples = 1, true, 1500 // two generator chunks
	c.Train.Epochs = 4
	c.Output.LogEvery, c.Output.SampleEvery, c.Output.CheckpointEvery, c.Output.KeepCheckpoints = 5, 0, 3, 1
	c.Output.Dir = t.TempDir()
	set := randomImages(200) // 10 steps per epoch
	tr, err := New(c, newCPU(t), set, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	ev := &scriptedEvaluator{scores: []float64{1, 3, 2, 2.5}}
	obs := &recordingObserver{evals: map[int64]float64{}}
	if err := tr.Run(context.Background(), RunOptions{Dir: c.Output.Dir, Evaluator: ev, Observer: obs}); err != nil {
		t.Fatal(err)
	}
	if len(ev.seen) != 4 || len(ev.seen[0]) != 1500*784 {
		t.Fatalf("%d evaluations (want 4: after epochs 1 to 4), first of %d values", len(ev.seen), len(ev.seen[0]))
	}
	if !reflect.DeepEqual(obs.evals, map[int64]float64{10: 1, 20: 3, 30: 2, 40: 2.5}) {
		t.Errorf("observer saw %v", obs.evals)
	}
	// Same noise each time: the samples differ only because G trained.
	if reflect.DeepEqual(ev.seen[0], ev.seen[1]) {
		t.Error("G's samples did not change between evaluations")
	}
	best, err := checkpoint.ReadBest(c.Output.Dir)
	if err != nil || best == nil || best.Step != 20 || best.Score != 3 || best.Metric != "parzen_ll" {
		t.Fatalf("best = %+v, %v; want step 20, parzen_ll 3", best, err)
	}
	list, _ := checkpoint.List(c.Output.Dir)
	var steps []int64
	for _, e := range list {
		steps = append(steps, e.Step)
	}
	if !reflect.DeepEqual(steps, []int64{40, 20}) {
		t.Errorf("checkpoints kept: %v, want the newest (40) and the best (20)", steps)
	}
	// The evaluations are in metrics.jsonl.
	f, _ := os.Open(filepath.Join(c.Output.Dir, "metrics.jsonl"))
	defer f.Close()
	var evalSteps []int64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r struct {
			Step int64
			Eval map[string]float64
		}
		json.Unmarshal(sc.Bytes(), &r)
		if r.Eval != nil {
			evalSteps = append(evalSteps, r.Step)
		}
	}
	if !reflect.DeepEqual(evalSteps, []int64{10, 20, 30, 40}) {
		t.Errorf("evaluation records at steps %v", evalSteps)
	}
}

// With a moving average of G and eval.raw_generator, each evaluation scores the
// average, then G's own parameters: the second samples are bit for bit those a run
// without the average evaluates (the average does not change training), their
// results are reported as raw_<metric>, and the best checkpoint follows the average.
func TestEvaluationOfRawGenerator(t *testing.T) {
	run := func(ema bool, scores []float64) (*scriptedEvaluator, *checkpoint.Best, []map[string]float64) {
		c := smallConfig()
		c.Eval.EveryEpochs, c.Eval.Parzen, c.Eval.Samples = 1, true, 300
		if ema {
			c.Train.GEMA, c.Eval.RawGenerator = 0.9, true
		}
		c.Train.Epochs = 2
		c.Output.LogEvery, c.Output.SampleEvery, c.Output.CheckpointEvery = 0, 0, 0
		c.Output.Dir = t.TempDir()
		tr, err := New(c, newCPU(t), randomImages(200), quietLog())
		if err != nil {
			t.Fatal(err)
		}
		ev := &scriptedEvaluator{scores: scores}
		if err := tr.Run(context.Background(), RunOptions{Dir: c.Output.Dir, Evaluator: ev}); err != nil {
			t.Fatal(err)
		}
		best, err := checkpoint.ReadBest(c.Output.Dir)
		if err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(filepath.Join(c.Output.Dir, "metrics.jsonl"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		var recs []map[string]float64
		for sc := bufio.NewScanner(f); sc.Scan(); {
			var r struct{ Eval map[string]float64 }
			json.Unmarshal(sc.Bytes(), &r)
			if r.Eval != nil {
				recs = append(recs, r.Eval)
			}
		}
		return ev, best, recs
	}
	// Scores: average, raw after epoch 1; average, raw after epoch 2. The raw ones
	// are higher at epoch 1 but must not choose the best checkpoint.
	avg, best, recs := run(true, []float64{1, 50, 2, 10})
	plain, _, _ := run(false, []float64{1, 1})
	if len(avg.seen) != 4 || len(plain.seen) != 2 {
		t.Fatalf("%d and %d sample sets evaluated, want 4 (average, raw per epoch) and 2", len(avg.seen), len(plain.seen))
	}
	for i := range plain.seen {
		if !reflect.DeepEqual(avg.seen[2*i+1], plain.seen[i]) {
			t.Errorf("evaluation %d: G's own samples differ from those of the run without an average", i+1)
		}
		if reflect.DeepEqual(avg.seen[2*i], plain.seen[i]) {
			t.Errorf("evaluation %d: the average's samples are G's own", i+1)
		}
	}
	want := []map[string]float64{
		{"parzen_ll": 1, "eval_seconds": 0.1, "raw_parzen_ll": 50, "raw_eval_seconds": 0.1},
		{"parzen_ll": 2, "eval_seconds": 0.1, "raw_parzen_ll": 10, "raw_eval_seconds": 0.1},
	}
	if !reflect.DeepEqual(recs, want) {
		t.Errorf("metrics.jsonl evaluations %v, want %v", recs, want)
	}
	if best == nil || best.Step != 20 || best.Score != 2 || best.Metric != "parzen_ll" {
		t.Errorf("best = %+v; want step 20 by the average's parzen_ll 2", best)
	}
}
