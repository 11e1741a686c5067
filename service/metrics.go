package service

import (
	"runtime"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Metrics are the Prometheus series of one training process. Names follow the
// Prometheus conventions: the gantrain_ prefix, base units (seconds, bytes),
// _total for counters.
type Metrics struct {
	steps, examples prometheus.Counter
	step            prometheus.Gauge
	epoch           prometheus.Gauge
	loss            *prometheus.GaugeVec // net = discriminator | generator
	dOutput         *prometheus.GaugeVec // input = real | fake
	stepDuration    prometheus.Histogram
	learningRate    prometheus.Gauge
	dLearningRate   prometheus.Gauge
	momentum        prometheus.Gauge
	stepLimit       prometheus.Gauge
	ckptDuration    prometheus.Histogram
	ckptLastSuccess prometheus.Gauge
	ckptFailures    prometheus.Counter
	outputFailures  *prometheus.CounterVec // file = metrics | samples
	ready           prometheus.Gauge
	eval            *prometheus.GaugeVec // metric = parzen_log_likelihood | ...
	deviceMemUsed   *prometheus.GaugeVec
	deviceMemTotal  *prometheus.GaugeVec
	deviceInfo      *prometheus.GaugeVec
	controlRequests *prometheus.CounterVec
}

// NewMetrics makes the series of a training process and registers them with reg,
// with gantrain_build_info for build and the Go runtime's and the process's
// collectors. A process registers them once; the registry's Gatherer serves them.
func NewMetrics(reg prometheus.Registerer, build BuildInfo) *Metrics {
	f := promauto.With(reg)
	m := &Metrics{
		steps: f.NewCounter(prometheus.CounterOpts{Name: "gantrain_steps_total",
			Help: "Iterations of Algorithm 1 (k discriminator steps and one generator step each) completed by this process."}),
		step: f.NewGauge(prometheus.GaugeOpts{Name: "gantrain_step",
			Help: "The run's current iteration, counting those done before a resume."}),
		examples: f.NewCounter(prometheus.CounterOpts{Name: "gantrain_examples_total",
			Help: "Real training examples shown to the discriminator by this process."}),
		epoch: f.NewGauge(prometheus.GaugeOpts{Name: "gantrain_epoch",
			Help: "Epochs completed (fractional)."}),
		loss: f.NewGaugeVec(prometheus.GaugeOpts{Name: "gantrain_loss",
			Help: "Latest minibatch loss of each net (discriminator: mean BCE on real and fake; generator: its configured loss)."}, []string{"net"}),
		dOutput: f.NewGaugeVec(prometheus.GaugeOpts{Name: "gantrain_discriminator_output",
			Help: "Mean discriminator output D(·) on the latest real minibatch (input=real) and generated minibatch (input=fake)."}, []string{"input"}),
		stepDuration: f.NewHistogram(prometheus.HistogramOpts{Name: "gantrain_step_duration_seconds",
			Help:    "Wall time of one iteration as the trainer launches it.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}),
		learningRate: f.NewGauge(prometheus.GaugeOpts{Name: "gantrain_learning_rate",
			Help: "Learning rate of the generator's latest update (the discriminator's too unless optimizer.d_lr is set)."}),
		dLearningRate: f.NewGauge(prometheus.GaugeOpts{Name: "gantrain_discriminator_learning_rate",
			Help: "Learning rate of the discriminator's latest update."}),
		momentum: f.NewGauge(prometheus.GaugeOpts{Name: "gantrain_momentum",
			Help: "Momentum of the latest SGD update (0 for Adam)."}),
		stepLimit: f.NewGauge(prometheus.GaugeOpts{Name: "gantrain_step_limit",
			Help: "Iterations the run is configured to reach (0: no limit)."}),
		ckptDuration: f.NewHistogram(prometheus.HistogramOpts{Name: "gantrain_checkpoint_duration_seconds",
			Help:    "Time to gather, verify and durably write one checkpoint.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 14)}),
		ckptLastSuccess: f.NewGauge(prometheus.GaugeOpts{Name: "gantrain_checkpoint_last_success_timestamp_seconds",
			Help: "Unix time of the latest checkpoint written successfully."}),
		ckptFailures: f.NewCounter(prometheus.CounterOpts{Name: "gantrain_checkpoint_failures_total",
			Help: "Checkpoint writes that failed."}),
		outputFailures: f.NewCounterVec(prometheus.CounterOpts{Name: "gantrain_output_write_failures_total",
			Help: "Failed writes to the run directory other than checkpoints, by file: metrics (metrics.jsonl; its records are written again later) or samples (a sample grid). The run goes on."}, []string{"file"}),
		ready: f.NewGauge(prometheus.GaugeOpts{Name: "gantrain_ready",
			Help: "1 while training runs and has not diverged, else 0 (as /readyz)."}),
		eval: f.NewGaugeVec(prometheus.GaugeOpts{Name: "gantrain_evaluation",
			Help: "Latest periodic evaluation, by metric: parzen_ll (mean Parzen-window log-likelihood of the test set, nats), parzen_se (its standard error), parzen_sigma, classifier_score, frechet_distance, eval_seconds; with eval.raw_generator the same of G's own parameters as raw_parzen_ll, …."}, []string{"metric"}),
		deviceMemUsed: f.NewGaugeVec(prometheus.GaugeOpts{Name: "gantrain_device_memory_used_bytes",
			Help: "Accelerator memory in use on the training device (by every process), by device as --device names it."}, []string{"device"}),
		deviceMemTotal: f.NewGaugeVec(prometheus.GaugeOpts{Name: "gantrain_device_memory_total_bytes",
			Help: "Accelerator memory of the training device, by device as --device names it."}, []string{"device"}),
		deviceInfo: f.NewGaugeVec(prometheus.GaugeOpts{Name: "gantrain_device_info",
			Help: "The accelerator the run trains on (value 1): device as --device names it, product name, compute capability."}, []string{"device", "name", "compute_capability"}),
		controlRequests: f.NewCounterVec(prometheus.CounterOpts{Name: "gantrain_control_requests_total",
			Help: "Control API requests, by action and HTTP status code."}, []string{"action", "code"}),
	}
	f.NewGaugeVec(prometheus.GaugeOpts{Name: "gantrain_build_info",
		Help: "Build of this gantrain process (value 1)."}, []string{"version", "backend", "goversion"}).
		WithLabelValues(build.Version, build.Backend, runtime.Version()).Set(1)
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}
