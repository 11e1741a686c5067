package cpu

import (
	"errors"
	"math"
	"testing"

	"github.com/gantrain/gantrain/backend"
)

func TestClipColumnNorms(t *testing.T) {
	b, err := New(Options{BLAS: "go"})
	if err != nil {
		t.Fatal(err)
	}
	// 3×4: column norms 5, 1, 13, 0.
	w0 := []float32{
		3, 1, 5, 0,
		4, 0, 12, 0,
		0, 0, 0, 0,
	}
	w, _ := b.Alloc(backend.F32, 3, 4)
	if err := b.Upload(w, w0); err != nil {
		t.Fatal(err)
	}
	b.ClipColumnNorms(w, 2)
	got := make([]float32, 12)
	if err := b.Download(got, w); err != nil {
		t.Fatal(err)
	}
	norms := make([]float64, 4)
	for i, v := range got {
		norms[i%4] += float64(v) * float64(v)
	}
	for j, want := range []float64{2, 1, 2, 0} {
		if n := math.Sqrt(norms[j]); math.Abs(n-want) > 1e-6 {
			t.Errorf("column %d norm %g, want %g", j, n, want)
		}
	}
	if got[1] != 1 || got[5] != 0 {
		t.Errorf("a column under the limit changed: %v", got)
	}
	if got[0] != float32(3*2.0/5) || got[4] != float32(4*2.0/5) {
		t.Errorf("column 0 = %g, %g, want 1.2, 1.6 (direction kept)", got[0], got[4])
	}
	b.ClipColumnNorms(w, 0)
	if err := b.Err(); !errors.Is(err, backend.ErrShape) {
		t.Errorf("max norm 0: err %v, want ErrShape", err)
	}
}
