package trainer

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"
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

// recordingObserver keeps the evaluations it is told about.
type recordingObserver struct {
	nopObserver
	evals map[int64]float64
}

func (o *recordingObserver) Evaluated(step int64, m map[string]float64) {
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
	best, err := readBest(c.Output.Dir)
	if err != nil || best == nil || best.Step != 20 || best.Score != 3 || best.Metric != "parzen_ll" {
		t.Fatalf("best = %+v, %v; want step 20, parzen_ll 3", best, err)
	}
	list, _ := ListCheckpoints(c.Output.Dir)
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
