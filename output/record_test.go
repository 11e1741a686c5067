package output

import (
	"encoding/json"
	"testing"
	"time"
)

// The records keep the form the log has always had: what a map of the same fields
// gives (keys sorted, times in RFC 3339 with nanoseconds, UTC).
func TestRecordsKeepTheirForm(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 30, 5, 123456789, time.UTC)
	for _, tc := range []struct {
		name string
		rec  any
		want map[string]any
	}{
		{"step", StepRecord{Time: at, Step: 1200, Epoch: 2.4, DLoss: 0.6931471805599453, GLoss: 1.25, DReal: 0.51, DFake: 0.49,
			LR: 0.09999600015999361, Momentum: 0.5, ExamplesPerS: 12345.678},
			map[string]any{"time": at.Format(time.RFC3339Nano), "step": int64(1200), "epoch": 2.4, "d_loss": 0.6931471805599453,
				"g_loss": 1.25, "d_real": 0.51, "d_fake": 0.49, "lr": 0.09999600015999361, "momentum": 0.5, "examples_per_s": 12345.678}},
		{"step of zeros", StepRecord{Time: at},
			map[string]any{"time": at.Format(time.RFC3339Nano), "step": int64(0), "epoch": 0.0, "d_loss": 0.0,
				"g_loss": 0.0, "d_real": 0.0, "d_fake": 0.0, "lr": 0.0, "momentum": 0.0, "examples_per_s": 0.0}},
		{"evaluation", EvalRecord{Time: at, Step: 5000, Epoch: 10, Eval: map[string]float64{"parzen_ll": 225.1, "classifier_score": 9.2}},
			map[string]any{"time": at.Format(time.RFC3339Nano), "step": int64(5000), "epoch": 10.0,
				"eval": map[string]float64{"parzen_ll": 225.1, "classifier_score": 9.2}}},
	} {
		got, err := json.Marshal(tc.rec)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		want, err := json.Marshal(tc.want)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Errorf("%s record:\n got %s\nwant %s", tc.name, got, want)
		}
	}
}
