package output

import "time"

// The records of metrics.jsonl. encoding/json writes a struct's fields in their
// order; these are in alphabetical order of their names, as the log has always been
// written, so that a log's lines do not change form across versions.

// StepRecord is a training step's line of metrics.jsonl.
type StepRecord struct {
	DFake        float64   `json:"d_fake"` // mean D(G(z)) over the last fake minibatch
	DLoss        float64   `json:"d_loss"`
	DReal        float64   `json:"d_real"` // mean D(x) over the last real minibatch
	Epoch        float64   `json:"epoch"`  // epochs completed, fractional
	ExamplesPerS float64   `json:"examples_per_s"`
	GLoss        float64   `json:"g_loss"`
	LR           float64   `json:"lr"`             // G's, and D's unless d_lr is given
	DLR          float64   `json:"d_lr,omitempty"` // D's, where optimizer.d_lr sets it apart
	Momentum     float64   `json:"momentum"`
	Step         int64     `json:"step"` // iterations completed
	Time         time.Time `json:"time"` // UTC
}

// EvalRecord is an evaluation's line of metrics.jsonl.
type EvalRecord struct {
	Epoch float64            `json:"epoch"`
	Eval  map[string]float64 `json:"eval"` // the finite metrics, by name
	Step  int64              `json:"step"`
	Time  time.Time          `json:"time"` // UTC
}
