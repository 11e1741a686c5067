// Package data loads the data sets that gantrain trains on: MNIST from its
// original idx files (Goodfellow et al. 2014 use the 50,000/10,000/10,000
// train/validation/test split), CIFAR-10 from its binary batch files, a 2-D
// ring of Gaussians for quick experiments, and folders of PNG/JPEG images.
//
// Every loader returns a Set: N examples of Dim float32 features stored
// row-major in one slice, ready to be uploaded to a backend in a single copy.
// Image pixels are scaled to [0,1].
package data

// Shape is the layout of one example when it is an image: H rows, W columns,
// C channels (1 gray, 3 RGB), stored row-major HWC (interleaved channels).
// The zero Shape means the data is not an image (for example 2-D points).
type Shape struct{ H, W, C int }

// IsImage reports whether s describes an image, that is whether all of its
// dimensions are positive.
func (s Shape) IsImage() bool { return s.H > 0 && s.W > 0 && s.C > 0 }

// Size returns the number of values in one image, H*W*C.
func (s Shape) Size() int { return s.H * s.W * s.C }

// Set is an in-memory data set: N examples of Dim float32 features, row-major
// in X (len N*Dim). Image pixels are scaled to [0,1]. Labels is optional (nil
// when absent); when present it has length N. Shape is the zero Shape unless
// the examples are images, in which case Shape.Size() == Dim.
type Set struct {
	Name   string
	X      []float32
	N, Dim int
	Labels []uint8
	Shape  Shape
}

// Row returns example i, a slice of length Dim that shares memory with s.X.
// It returns nil when i is out of range.
func (s *Set) Row(i int) []float32 {
	if s == nil || i < 0 || i >= s.N || (i+1)*s.Dim > len(s.X) {
		return nil
	}
	return s.X[i*s.Dim : (i+1)*s.Dim : (i+1)*s.Dim]
}

// Slice returns the examples [from, to) as a new Set called name that shares
// memory with s (X and Labels are subslices; appending to them never
// overwrites s). Bounds are clamped to [0, N]; from >= to gives an empty Set.
func (s *Set) Slice(from, to int, name string) *Set {
	if s == nil {
		return &Set{Name: name}
	}
	n := s.N
	if s.Dim > 0 {
		n = min(n, len(s.X)/s.Dim) // never slice past X, even in a malformed Set
	}
	if s.Labels != nil {
		n = min(n, len(s.Labels))
	}
	n = max(n, 0)
	from = min(max(from, 0), n)
	to = min(max(to, from), n)
	out := &Set{
		Name:  name,
		X:     s.X[from*s.Dim : to*s.Dim : to*s.Dim],
		N:     to - from,
		Dim:   s.Dim,
		Shape: s.Shape,
	}
	if s.Labels != nil {
		out.Labels = s.Labels[from:to:to]
	}
	return out
}

// Mean returns the per-feature mean over all examples, accumulated in float64.
// An empty Set gives Dim zeros.
func (s *Set) Mean() []float32 {
	if s == nil || s.Dim <= 0 {
		return nil
	}
	acc := make([]float64, s.Dim)
	n := 0
	for i := 0; i < s.N; i++ {
		row := s.Row(i)
		if row == nil {
			break
		}
		for j, v := range row {
			acc[j] += float64(v)
		}
		n++
	}
	mean := make([]float32, s.Dim)
	if n == 0 {
		return mean
	}
	for j, a := range acc {
		mean[j] = float32(a / float64(n))
	}
	return mean
}

// Splits is the paper's train/validation/test split of a data set.
type Splits struct{ Train, Valid, Test *Set }
