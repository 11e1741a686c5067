package backend

import "fmt"

// FirstError is the sticky error of a backend: it keeps the first failure recorded and
// makes every later operation refuse to run (see the package comment). Both backends
// keep one, so that the rule lives in one place.
type FirstError struct{ err error }

// Fail records err unless an error is recorded already; a nil err records nothing.
func (e *FirstError) Fail(err error) {
	if e.err == nil && err != nil {
		e.err = err
	}
}

// First returns the first recorded error, or nil.
func (e *FirstError) First() error { return e.err }

// Check records the verdict of a shape rule (the Check* functions) and reports whether
// the operation may run: no earlier error and none now.
func (e *FirstError) Check(err error) bool {
	if e.err != nil {
		return false
	}
	e.Fail(err)
	return err == nil
}

// OK reports whether op may run, recording a shape error unless cond holds.
func (e *FirstError) OK(cond bool, op, format string, args ...any) bool {
	if e.err != nil {
		return false
	}
	if cond {
		return true
	}
	e.Fail(Check(false, op, format, args...))
	return false
}

// Operands unwraps a backend's tensors for its operations. T is the backend's own
// tensor type; a tensor made by another backend (or another instance) is a shape error
// naming the operation, recorded in the embedded FirstError.
type Operands[T Tensor] struct {
	FirstError
	// Own converts a non-nil tensor to the backend's type, or says why it is not one of
	// the backend's ("tensor *gpu.Tensor was not made by the CPU backend").
	Own func(x Tensor) (T, error)
}

// unwrap converts x; present is false for a nil x and for a foreign one (recorded).
func (o *Operands[T]) unwrap(op string, x Tensor) (t T, present bool) {
	if x == nil {
		return t, false
	}
	t, err := o.Own(x)
	if err != nil {
		o.Fail(fmt.Errorf("%s: %w: %v", op, ErrShape, err))
		return t, false
	}
	return t, true
}

// F32 unwraps up to four tensors that must be present and float32, and reports whether
// op may run. It returns an array, not a slice, so that an operation allocates nothing.
func (o *Operands[T]) F32(op string, xs ...Tensor) (out [4]T, ok bool) {
	for k, x := range xs {
		t, present := o.unwrap(op, x)
		if !present {
			o.Fail(fmt.Errorf("%s: %w: operand %d is nil or foreign", op, ErrShape, k))
			return out, false
		}
		if x.DType() != F32 {
			o.Fail(fmt.Errorf("%s: %w: operand %d is %s, want f32", op, ErrShape, k, ShapeString(x)))
			return out, false
		}
		out[k] = t
	}
	return out, o.err == nil
}

// OptionalF32 unwraps an operand that may be absent (nil, giving T's zero value) or
// must be float32, and reports whether op may run.
func (o *Operands[T]) OptionalF32(op string, x Tensor) (t T, ok bool) {
	if x == nil {
		return t, o.err == nil
	}
	ts, ok := o.F32(op, x)
	return ts[0], ok
}

// I32 unwraps an int32 tensor that must be present, and reports whether op may run.
func (o *Operands[T]) I32(op string, x Tensor) (t T, ok bool) {
	t, present := o.unwrap(op, x)
	if !present || x.DType() != I32 {
		what := "<nil>"
		if x != nil {
			what = ShapeString(x)
		}
		o.Fail(Check(false, op, "index operand %s, want i32", what))
		return t, false
	}
	return t, o.err == nil
}
