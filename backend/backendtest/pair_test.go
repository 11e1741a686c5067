package backendtest_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/gantrain/gantrain/backend"
	"github.com/gantrain/gantrain/backend/backendtest"
	"github.com/gantrain/gantrain/cpu"
)

// recorder is a testing.TB that keeps the failures the harness reports.
type recorder struct {
	testing.TB
	errs []string
}

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

// pair is two CPU backends: G stands in for a backend under test, and the test
// writes into G's tensors to make it wrong in a chosen way.
func pair(t *testing.T) (*backendtest.Pair, *recorder) {
	var bs [2]*cpu.Backend
	for i := range bs {
		b, err := cpu.New(cpu.Options{BLAS: "go", Threads: 1})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		bs[i] = b
	}
	r := &recorder{TB: t}
	return &backendtest.Pair{T: r, C: bs[0], G: bs[1], R: rand.New(rand.NewPCG(1, 2))}, r
}

func TestPairFindsWhatDiffers(t *testing.T) {
	tests := []struct {
		name  string
		spoil func(v []float32) // nil: G agrees with C
		check func(p *backendtest.Pair, x backendtest.Twin)
		want  string // "" when the check must pass
	}{
		{"same", nil, func(p *backendtest.Pair, x backendtest.Twin) { p.Same("x", x) }, ""},
		{"close", nil, func(p *backendtest.Pair, x backendtest.Twin) { p.Close("x", x, 0) }, ""},
		{"one bit", func(v []float32) { v[7] = math.Nextafter32(v[7], 2) }, func(p *backendtest.Pair, x backendtest.Twin) { p.Same("x", x) }, "x[7] = "},
		{"one bit within tolerance", func(v []float32) { v[7] = math.Nextafter32(v[7], 2) }, func(p *backendtest.Pair, x backendtest.Twin) { p.Close("x", x, 1e-6) }, ""},
		{"beyond tolerance", func(v []float32) { v[3] += 0.5 }, func(p *backendtest.Pair, x backendtest.Twin) { p.Close("x", x, 1e-3) }, "worst element 3"},
		{"unwritten", func(v []float32) { v[5] = float32(math.NaN()) }, func(p *backendtest.Pair, x backendtest.Twin) { p.Close("x", x, 1) }, "x: cpu[5] is NaN (unwritten?)"},
		{"infinity", func(v []float32) { v[2] = float32(math.Inf(1)) }, func(p *backendtest.Pair, x backendtest.Twin) { p.Close("x", x, 1) }, "relative error NaN"},
	}
	for _, tc := range tests {
		p, r := pair(t)
		x := p.Uniform(4, 5, -1, 1)
		if tc.spoil != nil {
			v := backendtest.Download(t, p.G, x.G)
			tc.spoil(v)
			if err := p.G.Upload(x.G, v); err != nil {
				t.Fatal(err)
			}
		}
		tc.check(p, x)
		got := strings.Join(r.errs, "; ")
		if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
			t.Errorf("%s: harness reported %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestPairIndicesAndViews(t *testing.T) {
	p, r := pair(t)
	idx := p.Indices(2, 3, 4)
	p.Same("indices", idx)
	v := backendtest.DownloadI32(t, p.G, idx.G)
	v[4]++
	if err := p.G.Upload(idx.G, v); err != nil {
		t.Fatal(err)
	}
	p.Same("indices", idx)
	if len(r.errs) == 0 || !strings.Contains(r.errs[0], "indices[4] = 1, want 0") {
		t.Errorf("int32 difference reported as %q", r.errs)
	}

	p, r = pair(t)
	parent := p.Poisoned(3, 4)
	mid := p.View(parent, 4, 1, 4)
	p.G.Fill(mid.G, 1)
	p.Untouched("parent", parent, 0, 4)
	p.Untouched("parent", parent, 8, 4)
	if len(r.errs) != 0 {
		t.Errorf("writing a view's rows reported as outside it: %q", r.errs)
	}
	p.Untouched("parent", parent, 2, 4)
	if len(r.errs) != 1 || !strings.Contains(r.errs[0], "element 4 outside the output") {
		t.Errorf("writing outside the checked range reported as %q", r.errs)
	}
	if mid.Rows != 1 || mid.Cols != 4 || mid.DT != backend.F32 {
		t.Errorf("view twin is %d×%d %s", mid.Rows, mid.Cols, mid.DT)
	}
}

func TestNear(t *testing.T) {
	nan, inf := float32(math.NaN()), float32(math.Inf(1))
	tests := []struct {
		name      string
		got, want []float32
		tol       float64
		fail      string // "" when Near must pass
	}{
		{"equal", []float32{1, -2, 3}, []float32{1, -2, 3}, 0, ""},
		{"within", []float32{1, -2, 3.002}, []float32{1, -2, 3}, 1e-3, ""},
		{"beyond", []float32{1, -2.01, 3}, []float32{1, -2, 3}, 1e-3, "worst [1] = -2.01, want -2"},
		{"nan where wanted", []float32{nan, 2}, []float32{nan, 2}, 0, ""},
		{"nan unwanted", []float32{1, nan}, []float32{1, 2}, 1, "[1] = NaN, want 2"},
		{"nan missing", []float32{1, 2}, []float32{1, nan}, 1, "[1] = 2, want NaN"},
		{"infinity", []float32{inf, 2}, []float32{inf, 2}, 0, ""},
		{"wrong infinity", []float32{-inf, 2}, []float32{inf, 2}, 1, "[0] = -Inf, want +Inf"},
		{"length", []float32{1}, []float32{1, 2}, 1, "1 elements, want 2"},
	}
	for _, tc := range tests {
		r := &recorder{TB: t}
		ok := backendtest.Near(r, "v", tc.got, tc.want, tc.tol)
		got := strings.Join(r.errs, "; ")
		if ok != (tc.fail == "") || !strings.Contains(got, tc.fail) {
			t.Errorf("%s: Near reported %v %q, want %q", tc.name, ok, got, tc.fail)
		}
	}
}
