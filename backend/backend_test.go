package backend

import "testing"

// queued is a Backend that says whether it queues its operations.
type queued struct {
	Backend
	q bool
}

func (b queued) Queued() bool { return b.q }

func TestReadbackIsCheap(t *testing.T) {
	for _, tc := range []struct {
		name string
		b    Backend
		want bool
	}{
		{"no queue reported", struct{ Backend }{}, true},
		{"not queued", queued{q: false}, true},
		{"queued", queued{q: true}, false},
	} {
		if got := ReadbackIsCheap(tc.b); got != tc.want {
			t.Errorf("%s: ReadbackIsCheap = %v, want %v", tc.name, got, tc.want)
		}
	}
}
