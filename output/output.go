// Package output writes what a training run leaves in its directory besides its
// checkpoints and config: the metrics log (metrics.jsonl, one JSON record a line),
// the sample grids (samples/step-N.png and samples/latest.png), and the progress bar
// drawn on a terminal.
//
// A failed write here never loses what was written before: the metrics log cuts a
// failed append back to its last whole line and keeps the records for the next
// write, and sample grids are replaced atomically.
package output

// Names inside a run directory.
const (
	// MetricsFile is the metrics log.
	MetricsFile = "metrics.jsonl"
	// SamplesDir holds the sample grids.
	SamplesDir = "samples"
	// LatestSamples is the newest sample grid, in SamplesDir.
	LatestSamples = "latest.png"
)
