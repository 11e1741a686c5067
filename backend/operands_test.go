package backend_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/gantrain/gantrain/backend"
)

// mine is the tensor type of a test backend; theirs is another backend's.
type mine struct {
	rows, cols int
	dt         backend.DType
}

func (t *mine) Rows() int            { return t.rows }
func (t *mine) Cols() int            { return t.cols }
func (t *mine) DType() backend.DType { return t.dt }

type theirs struct{ mine }

func newOperands() *backend.Operands[*mine] {
	return &backend.Operands[*mine]{Own: func(x backend.Tensor) (*mine, error) {
		t, ok := x.(*mine)
		if !ok || t == nil {
			return nil, fmt.Errorf("tensor %T was not made by the test backend", x)
		}
		return t, nil
	}}
}

func TestFirstErrorKeepsTheFirst(t *testing.T) {
	var e backend.FirstError
	if !e.Check(nil) || !e.OK(true, "Op", "unused") || e.First() != nil {
		t.Fatal("a fresh FirstError refuses work")
	}
	e.Fail(nil)
	if e.First() != nil {
		t.Fatal("Fail(nil) recorded an error")
	}
	if e.OK(false, "Op", "width %d", 3) {
		t.Fatal("OK(false) let the operation run")
	}
	first := e.First()
	if !errors.Is(first, backend.ErrShape) || !strings.Contains(first.Error(), "Op") || !strings.Contains(first.Error(), "width 3") {
		t.Fatalf("OK(false) recorded %v", first)
	}
	e.Fail(errors.New("second"))
	if e.Check(nil) || e.OK(true, "Op", "") || e.First() != first {
		t.Fatalf("after an error: Check/OK let work run or the first error changed (%v)", e.First())
	}
}

func TestOperands(t *testing.T) {
	f := &mine{rows: 2, cols: 3, dt: backend.F32}
	i := &mine{rows: 2, cols: 3, dt: backend.I32}
	foreign := &theirs{mine{rows: 2, cols: 3, dt: backend.F32}}
	tests := []struct {
		name string
		call func(o *backend.Operands[*mine]) bool
		want string // "" when the call must succeed
	}{
		{"f32", func(o *backend.Operands[*mine]) bool {
			ts, ok := o.F32("Op", f, f)
			return ok && ts[0] == f && ts[1] == f
		}, ""},
		{"f32 nil", func(o *backend.Operands[*mine]) bool { _, ok := o.F32("Op", f, nil); return ok }, "Op: shape mismatch: operand 1 is nil or foreign"},
		{"f32 foreign", func(o *backend.Operands[*mine]) bool { _, ok := o.F32("Op", foreign); return ok }, "Op: shape mismatch: tensor *backend_test.theirs was not made by the test backend"},
		{"f32 typed nil", func(o *backend.Operands[*mine]) bool { _, ok := o.F32("Op", (*mine)(nil)); return ok }, "not made by the test backend"},
		{"f32 given i32", func(o *backend.Operands[*mine]) bool { _, ok := o.F32("Op", f, i); return ok }, "Op: shape mismatch: operand 1 is 2×3 i32, want f32"},
		{"optional absent", func(o *backend.Operands[*mine]) bool { x, ok := o.OptionalF32("Op dx", nil); return ok && x == nil }, ""},
		{"optional present", func(o *backend.Operands[*mine]) bool { x, ok := o.OptionalF32("Op dx", f); return ok && x == f }, ""},
		{"optional i32", func(o *backend.Operands[*mine]) bool { _, ok := o.OptionalF32("Op dx", i); return ok }, "Op dx: shape mismatch: operand 0 is 2×3 i32"},
		{"i32", func(o *backend.Operands[*mine]) bool { x, ok := o.I32("Op", i); return ok && x == i }, ""},
		{"i32 given f32", func(o *backend.Operands[*mine]) bool { _, ok := o.I32("Op", f); return ok }, "Op: shape mismatch: index operand 2×3 f32, want i32"},
		{"i32 nil", func(o *backend.Operands[*mine]) bool { _, ok := o.I32("Op", nil); return ok }, "Op: shape mismatch: index operand <nil>, want i32"},
	}
	for _, tc := range tests {
		o := newOperands()
		ok := tc.call(o)
		switch err := o.First(); {
		case tc.want == "" && (!ok || err != nil):
			t.Errorf("%s: ok %v, error %v; want success", tc.name, ok, err)
		case tc.want != "" && (ok || err == nil || !errors.Is(err, backend.ErrShape) || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: ok %v, error %v; want an ErrShape error with %q", tc.name, ok, err, tc.want)
		}

		// After an earlier error nothing may run, even with good operands, and the
		// first error stays.
		o = newOperands()
		first := errors.New("earlier")
		o.Fail(first)
		if tc.call(o) || o.First() != first {
			t.Errorf("%s after an earlier error: the operation may run or the error changed (%v)", tc.name, o.First())
		}
	}
}

func TestOperandsAllocateNothing(t *testing.T) {
	o := newOperands()
	x := &mine{rows: 4, cols: 5, dt: backend.F32}
	ix := &mine{rows: 4, cols: 5, dt: backend.I32}
	n := testing.AllocsPerRun(100, func() {
		_, ok := o.F32("Op", x, x, x, x)
		_, oki := o.I32("Op", ix)
		_, okd := o.OptionalF32("Op", nil)
		if !ok || !oki || !okd {
			t.Fatal(o.First())
		}
	})
	if n != 0 {
		t.Errorf("unwrapping operands allocates %v times, want 0", n)
	}
}
