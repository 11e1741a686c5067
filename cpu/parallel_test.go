package cpu

import (
	"testing"

	"github.com/gantrain/gantrain/backend"
	"github.com/gantrain/gantrain/rng"
)

// Elementwise operations split across goroutines on large tensors; the split must
// not change a single bit: compare with the element-by-element specification.
func TestParallelSplitMatchesSpec(t *testing.T) {
	b, err := New(Options{BLAS: "go"})
	if err != nil {
		t.Fatal(err)
	}
	const rows, cols = 7, 14287 // 100009 elements: above minParallel, not a multiple of 4
	alloc := func(v float32) backend.Tensor {
		x, err := b.Alloc(backend.F32, rows, cols)
		if err != nil {
			t.Fatal(err)
		}
		b.Fill(x, v)
		return x
	}
	x, y, mask := alloc(3), alloc(0), alloc(0)
	s := rng.Stream{Seed: 99, Offset: 5}
	b.Dropout(y, mask, x, 0.7, s)
	got := make([]float32, rows*cols)
	if err := b.Download(got, y); err != nil {
		t.Fatal(err)
	}
	for e, v := range got {
		want := float32(0)
		if rng.Keep(s.Word(uint64(e)), 0.7) {
			want = 3 * (1 / float32(0.7))
		}
		if v != want {
			t.Fatalf("dropout element %d = %g, want %g", e, v, want)
		}
	}
	b.Uniform(y, -2, 3, s)
	if err := b.Download(got, y); err != nil {
		t.Fatal(err)
	}
	for e, v := range got {
		if want := rng.ToUniform(s.Word(uint64(e)), -2, 3); v != want {
			t.Fatalf("uniform element %d = %g, want %g", e, v, want)
		}
	}
	p, g, vel := alloc(1), alloc(0.5), alloc(0.25)
	b.SGDMomentum(p, g, vel, 0.1, 0.9)
	if err := b.Download(got, p); err != nil {
		t.Fatal(err)
	}
	want := float32(1) + (float32(0.9)*0.25 - float32(0.1)*0.5)
	for e, v := range got {
		if v != want {
			t.Fatalf("SGD element %d = %g, want %g", e, v, want)
		}
	}
}

// BenchmarkPoolRun is the cost of handing out one job to two workers and waiting:
// what every split operation pays on top of its work.
func BenchmarkPoolRun(b *testing.B) {
	p := newPool(2)
	defer p.close()
	var sink [2]int
	for i := 0; i < b.N; i++ {
		p.run(2, func(part int) { sink[part]++ })
	}
}
