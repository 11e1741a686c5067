package cpu_test

import (
	"errors"
	"math"
	"testing"

	"github.com/gantrain/gantrain/backend"
)

// TestSoftmaxCrossEntropy checks the loss against a float64 reference and the gradient
// against central finite differences of the loss.
func TestSoftmaxCrossEntropy(t *testing.T) {
	b := newBackend(t, "go")
	logitsV := []float32{1, 2, 3, -1, 0.5, 40, -30, 7, 0, 0, 0, 0}
	labelsV := []int32{2, 0, 1, 3}
	const n, c = 3, 4
	logits := tensorOf(t, b, n, c, logitsV[:n*c])
	labels, _ := b.Alloc(backend.I32, n, 1)
	if err := b.Upload(labels, labelsV[:n]); err != nil {
		t.Fatal(err)
	}
	d, _ := b.Alloc(backend.F32, n, c)
	out, _ := b.Alloc(backend.F32, 1, 2)
	scale := float32(1) / n
	b.SoftmaxCrossEntropy(d, logits, labels, scale, out, 1)
	got := make([]float32, 2)
	grad := make([]float32, n*c)
	if err := b.Download(got, out); err != nil {
		t.Fatal(err)
	}
	if err := b.Download(grad, d); err != nil {
		t.Fatal(err)
	}
	loss := func(v []float32) float64 {
		var s float64
		for i := 0; i < n; i++ {
			row := v[i*c : i*c+c]
			var z float64
			for _, x := range row {
				z += math.Exp(float64(x))
			}
			s += math.Log(z) - float64(row[labelsV[i]])
		}
		return s / n
	}
	if want := loss(logitsV[:n*c]); math.Abs(float64(got[1])-want) > 1e-5*math.Max(1, math.Abs(want)) {
		t.Errorf("loss %v, want %v", got[1], want)
	}
	for k := range grad {
		v := append([]float32(nil), logitsV[:n*c]...)
		h := float32(1e-2)
		v[k] += h
		up := loss(v)
		v[k] -= 2 * h
		fd := (up - loss(v)) / (2 * float64(h))
		if math.Abs(float64(grad[k])-fd) > 2e-3 {
			t.Errorf("dlogits[%d] = %v, finite difference %v", k, grad[k], fd)
		}
	}
}

func TestSoftmaxCrossEntropyBadLabel(t *testing.T) {
	b := newBackend(t, "go")
	logits := tensorOf(t, b, 2, 3, []float32{1, 2, 3, 4, 5, 6})
	labels, _ := b.Alloc(backend.I32, 2, 1)
	if err := b.Upload(labels, []int32{0, 3}); err != nil {
		t.Fatal(err)
	}
	out, _ := b.Alloc(backend.F32, 1, 1)
	b.SoftmaxCrossEntropy(nil, logits, labels, 1, out, 0)
	if err := b.Err(); !errors.Is(err, backend.ErrShape) {
		t.Fatalf("label 3 of 3 classes: err = %v, want ErrShape", err)
	}
}

func TestLogSumExpRows(t *testing.T) {
	b := newBackend(t, "go")
	inf := float32(math.Inf(-1))
	x := tensorOf(t, b, 3, 3, []float32{0, 0, 0, 1000, 999, inf, inf, inf, inf})
	out, _ := b.Alloc(backend.F32, 3, 1)
	b.LogSumExpRows(out, x)
	got := make([]float32, 3)
	if err := b.Download(got, out); err != nil {
		t.Fatal(err)
	}
	want := []float64{math.Log(3), 1000 + math.Log1p(math.Exp(-1)), math.Inf(-1)}
	for i := range want {
		if !(math.Abs(float64(got[i])-want[i]) <= 1e-5*math.Abs(want[i]) || float64(got[i]) == want[i]) {
			t.Errorf("row %d: %v, want %v", i, got[i], want[i])
		}
	}
}
