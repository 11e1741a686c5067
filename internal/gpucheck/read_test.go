package gpucheck

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gantrain/gantrain/imageio"
)

func write(t *testing.T, name, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLastEval(t *testing.T) {
	p := write(t, "metrics.jsonl", `{"d_loss":0.6,"epoch":1,"step":500}
{"epoch":1,"eval":{"parzen_ll":-20.5},"step":500}
{"d_loss":0.5,"epoch":2,"step":1000}
{"epoch":2,"eval":{"frechet_distance":40,"parzen_ll":131.25},"step":1000}
{"d_loss":0.5,"epoch":2.5,"step":1250}
`)
	rec, err := LastEval(p)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Epoch != 2 || rec.Eval["parzen_ll"] != 131.25 || rec.Eval["frechet_distance"] != 40 {
		t.Errorf("got %+v, want epoch 2's evaluation", rec)
	}
	if _, err := LastEval(write(t, "m.jsonl", `{"d_loss":0.6,"epoch":1,"step":500}`+"\n")); err == nil || !strings.Contains(err.Error(), "no evaluation") {
		t.Errorf("a log without evaluations: %v", err)
	}
}

func TestReadScores(t *testing.T) {
	p := write(t, "eval.json", `{"samples_from":"train","backend":"cpu","result":{"samples":10000,
		"parzen":{"ll":200.5,"se":2.25,"sigma":0.2,"seconds":9},
		"classifier":{"score":9.5,"frechet_distance":3.5,"class_counts":[1,2]},"seconds":9}}`)
	s, err := ReadScores(p)
	if err != nil {
		t.Fatal(err)
	}
	if want := (Scores{Sigma: 0.2, LL: 200.5, SE: 2.25, ClassifierScore: 9.5, FrechetDistance: 3.5, ParzenSeconds: 9}); s != want {
		t.Errorf("got %+v, want %+v", s, want)
	}
	if _, err := ReadScores(write(t, "p.json", `{"result":{"parzen":{"ll":1}}}`)); err == nil {
		t.Error("a report without the classifier's result was accepted")
	}
}

func TestLargestDifference(t *testing.T) {
	npy := func(name string, x []float32, shape ...int) string {
		p := filepath.Join(t.TempDir(), name)
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := imageio.WriteNPY(f, x, shape...); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		return p
	}
	a := npy("a.npy", []float32{0, 0.5, 1, 0.25}, 2, 2)
	b := npy("b.npy", []float32{0, 0.5, 0.75, 0.25}, 2, 2)
	if d, err := LargestDifference(a, b); err != nil || d != 0.25 {
		t.Errorf("got %g, %v; want 0.25", d, err)
	}
	if _, err := LargestDifference(a, npy("c.npy", []float32{0, 0.5, 1, 0.25}, 4)); err == nil {
		t.Error("arrays of different shapes compared")
	}
}

func TestClassifierAccuracy(t *testing.T) {
	p := write(t, "classifier.log", "epoch 1/1 ...\ntest accuracy 97.42%, valid accuracy 97.80%, 1 epochs in 12s; wrote c.safetensors\n")
	if acc, err := ClassifierAccuracy(p); err != nil || acc != 97.42 {
		t.Errorf("got %g, %v; want 97.42", acc, err)
	}
	if _, err := ClassifierAccuracy(write(t, "empty.log", "no numbers\n")); err == nil {
		t.Error("a log without an accuracy was read")
	}
}
