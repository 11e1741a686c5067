package trainer

import (
	"context"
	"testing"

	"github.com/gantrain/gantrain/backend"
	"github.com/gantrain/gantrain/cpu"
)

// onDevice is a CPU backend that says it runs on an accelerator.
type onDevice struct {
	*cpu.Backend
}

func (onDevice) Accelerator() backend.Accelerator {
	return backend.Accelerator{ID: "cuda:3", Name: "Test GPU", Compute: "9.0", Memory: 1 << 30}
}

// startObserver keeps the RunInfo it is told about.
type startObserver struct {
	nopObserver
	info RunInfo
}

func (o *startObserver) RunStarted(info RunInfo) { o.info = info }

// The run tells its observer which accelerator it runs on, when the backend says.
func TestRunInfoNamesTheAccelerator(t *testing.T) {
	for _, tc := range []struct {
		name string
		b    backend.Backend
		want backend.Accelerator
	}{
		{"cpu", newCPU(t), backend.Accelerator{}},
		{"device", onDevice{newCPU(t)}, backend.Accelerator{ID: "cuda:3", Name: "Test GPU", Compute: "9.0", Memory: 1 << 30}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := smallConfig()
			c.Train.Steps, c.Train.Epochs = 2, 0
			c.Output.Dir = t.TempDir()
			tr, err := New(c, tc.b, randomImages(200), quietLog())
			if err != nil {
				t.Fatal(err)
			}
			obs := &startObserver{}
			if err := tr.Run(context.Background(), RunOptions{Dir: c.Output.Dir, Observer: obs}); err != nil {
				t.Fatal(err)
			}
			if obs.info.Accelerator != tc.want || obs.info.Backend != "cpu" {
				t.Errorf("RunInfo: backend %q, accelerator %+v; want cpu, %+v", obs.info.Backend, obs.info.Accelerator, tc.want)
			}
		})
	}
}
