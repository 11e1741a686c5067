package data

import (
	"slices"
	"testing"
)

func TestShape(t *testing.T) {
	tests := []struct {
		s       Shape
		isImage bool
		size    int
	}{
		{Shape{}, false, 0},
		{Shape{28, 28, 1}, true, 784},
		{Shape{32, 16, 3}, true, 1536},
		{Shape{28, 28, 0}, false, 0},
		{Shape{-1, 28, 1}, false, -28},
	}
	for _, tt := range tests {
		if got := tt.s.IsImage(); got != tt.isImage {
			t.Errorf("%+v.IsImage() = %v, want %v", tt.s, got, tt.isImage)
		}
		if got := tt.s.Size(); got != tt.size {
			t.Errorf("%+v.Size() = %d, want %d", tt.s, got, tt.size)
		}
	}
}

// testSet is 4 examples of 3 features, X = 0..11, Labels 10..13.
func testSet() *Set {
	x := make([]float32, 12)
	for i := range x {
		x[i] = float32(i)
	}
	return &Set{Name: "t", X: x, N: 4, Dim: 3, Labels: []uint8{10, 11, 12, 13}, Shape: Shape{1, 3, 1}}
}

func TestRow(t *testing.T) {
	s := testSet()
	tests := []struct {
		i    int
		want []float32
	}{
		{0, []float32{0, 1, 2}},
		{3, []float32{9, 10, 11}},
		{-1, nil},
		{4, nil},
	}
	for _, tt := range tests {
		if got := s.Row(tt.i); !slices.Equal(got, tt.want) || (got == nil) != (tt.want == nil) {
			t.Errorf("Row(%d) = %v, want %v", tt.i, got, tt.want)
		}
	}
	r := s.Row(1)
	r[0] = 42
	if s.X[3] != 42 {
		t.Error("Row does not share memory with X")
	}
	if _ = append(r, 7); s.X[6] != 6 {
		t.Error("appending to a Row overwrote the next row")
	}
	var nilSet *Set
	if nilSet.Row(0) != nil {
		t.Error("nil Set's Row is not nil")
	}
}

func TestSlice(t *testing.T) {
	tests := []struct {
		from, to   int
		wantN      int
		wantFirst  float32
		wantLabels []uint8
	}{
		{0, 4, 4, 0, []uint8{10, 11, 12, 13}},
		{1, 3, 2, 3, []uint8{11, 12}},
		{3, 4, 1, 9, []uint8{13}},
		{2, 2, 0, 0, []uint8{}},
		{-5, 2, 2, 0, []uint8{10, 11}},
		{2, 99, 2, 6, []uint8{12, 13}},
		{3, 1, 0, 0, []uint8{}},
		{9, 12, 0, 0, []uint8{}},
	}
	for _, tt := range tests {
		s := testSet()
		sub := s.Slice(tt.from, tt.to, "sub")
		if sub.N != tt.wantN || sub.Dim != 3 || len(sub.X) != sub.N*3 || sub.Name != "sub" || sub.Shape != s.Shape {
			t.Errorf("Slice(%d, %d) = N %d Dim %d len(X) %d Name %q Shape %+v", tt.from, tt.to, sub.N, sub.Dim, len(sub.X), sub.Name, sub.Shape)
			continue
		}
		if !slices.Equal(sub.Labels, tt.wantLabels) {
			t.Errorf("Slice(%d, %d).Labels = %v, want %v", tt.from, tt.to, sub.Labels, tt.wantLabels)
		}
		if sub.N > 0 {
			if sub.X[0] != tt.wantFirst {
				t.Errorf("Slice(%d, %d).X[0] = %v, want %v", tt.from, tt.to, sub.X[0], tt.wantFirst)
			}
			sub.X[0] = -1
			if s.Row(min(max(tt.from, 0), 4))[0] != -1 {
				t.Errorf("Slice(%d, %d) does not share memory", tt.from, tt.to)
			}
		}
		_ = append(sub.X, 99) // must not write into s beyond the slice
		if sub.N < 4 && tt.to < 4 && tt.to > 0 && s.X[tt.to*3] == 99 {
			t.Errorf("appending to Slice(%d, %d).X overwrote the parent", tt.from, tt.to)
		}
	}
	noLabels := &Set{X: []float32{1, 2}, N: 2, Dim: 1}
	if got := noLabels.Slice(0, 1, "x"); got.Labels != nil {
		t.Errorf("Slice of an unlabelled set has Labels %v", got.Labels)
	}
}

func TestMean(t *testing.T) {
	tests := []struct {
		name string
		s    *Set
		want []float32
	}{
		{"four rows", testSet(), []float32{4.5, 5.5, 6.5}},
		{"empty", &Set{Dim: 2}, []float32{0, 0}},
		{"no features", &Set{}, nil},
		{"nil", nil, nil},
		{"one row", &Set{X: []float32{0.25, 1}, N: 1, Dim: 2}, []float32{0.25, 1}},
	}
	for _, tt := range tests {
		if got := tt.s.Mean(); !slices.Equal(got, tt.want) {
			t.Errorf("%s: Mean() = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestMalformedSetDoesNotPanic(t *testing.T) {
	bad := []*Set{
		{X: []float32{1, 2, 3}, N: 5, Dim: 2},
		{X: []float32{1, 2, 3, 4}, N: 2, Dim: 2, Labels: []uint8{1}},
		{X: nil, N: 3, Dim: 0},
		{X: []float32{1}, N: -2, Dim: -1},
	}
	for i, s := range bad {
		for from := -1; from <= 6; from++ {
			for to := -1; to <= 6; to++ {
				sub := s.Slice(from, to, "sub")
				if sub.N < 0 || (sub.Dim > 0 && len(sub.X) != sub.N*sub.Dim) {
					t.Errorf("set %d: Slice(%d, %d) gave N %d len(X) %d", i, from, to, sub.N, len(sub.X))
				}
			}
			_ = s.Row(from)
		}
		_ = s.Mean()
	}
}
