package service

import (
	"runtime"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are the Prometheus series of one training process. Names follow the
// Prometheus conventions: the gantrain_ prefix, base units (seconds, bytes),
// _total for counters.
type metrics struct {
	reg *prometheus.Registry

	steps, examples prometheus.Counter
	step            prometheus.Gauge
	epoch           prometheus.Gauge
	loss            *prometheus.GaugeVec // net = discriminator | generator
	dOutput         *prometheus.GaugeVec // input = real | fake
	stepDuration    prometheus.Histogram
	learningRate    prometheus.Gauge
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

func newMetrics(info BuildInfo) *metrics {
	reg := prometheus.NewRegistry()
	m := &metrics{reg: reg}
	f := func(c prometheus.Collector) { reg.MustRegister(c) }

	m.steps = prometheus.NewCounter(prometheus.CounterOpts{Name: "gantrain_steps_total",
		Help: "Iterations of Algorithm 1 (k discriminator steps and one generator step each) completed by this process."})
	m.step = prometheus.NewGauge(prometheus.GaugeOpts{Name: "gantrain_step",
		Help: "The run's current iteration, counting those done before a resume."})
	m.examples = prometheus.NewCounter(prometheus.CounterOpts{Name: "gantrain_examples_total",
		Help: "Real training examples shown to the discriminator by this process."})
	m.epoch = prometheus.NewGauge(prometheus.GaugeOpts{Name: "gantrain_epoch",
		Help: "Epochs completed (fractional)."})
	m.loss = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "gantrain_loss",
		Help: "Latest minibatch loss of each net (discriminator: mean BCE on real and fake; generator: its configured loss)."}, []string{"net"})
	m.dOutput = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "gantrain_discriminator_output",
		Help: "Mean discriminator output D(·) on the latest real minibatch (input=real) and generated minibatch (input=fake)."}, []string{"input"})
	m.stepDuration = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "gantrain_step_duration_seconds",
		Help:    "Wall time of one iteration as the trainer launches it.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)})
	m.learningRate = prometheus.NewGauge(prometheus.GaugeOpts{Name: "gantrain_learning_rate",
		Help: "Learning rate of the latest update."})
	m.momentum = prometheus.NewGauge(prometheus.GaugeOpts{Name: "gantrain_momentum",
		Help: "Momentum of the latest SGD update (0 for Adam)."})
	m.stepLimit = prometheus.NewGauge(prometheus.GaugeOpts{Name: "gantrain_step_limit",
		Help: "Iterations the run is configured to reach (0: no limit)."})
	m.ckptDuration = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "gantrain_checkpoint_duration_seconds",
		Help:    "Time to gather, verify and durably write one checkpoint.",
		Buckets: prometheus.ExponentialBuckets(0.01, 2, 14)})
	m.ckptLastSuccess = prometheus.NewGauge(prometheus.GaugeOpts{Name: "gantrain_checkpoint_last_success_timestamp_seconds",
		Help: "Unix time of the latest checkpoint written successfully."})
	m.ckptFailures = prometheus.NewCounter(prometheus.CounterOpts{Name: "gantrain_checkpoint_failures_total",
		Help: "Checkpoint writes that failed."})
	m.outputFailures = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gantrain_output_write_failures_total",
		Help: "Failed writes to the run directory other than checkpoints, by file: metrics (metrics.jsonl; its records are written again later) or samples (a sample grid). The run goes on."}, []string{"file"})
	m.ready = prometheus.NewGauge(prometheus.GaugeOpts{Name: "gantrain_ready",
		Help: "1 while training runs and has not diverged, else 0 (as /readyz)."})
	m.eval = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "gantrain_evaluation",
		Help: "Latest periodic evaluation, by metric: parzen_ll (mean Parzen-window log-likelihood of the test set, nats), parzen_se (its standard error), parzen_sigma, classifier_score, frechet_distance, eval_seconds; with eval.raw_generator the same of G's own parameters as raw_parzen_ll, …."}, []string{"metric"})
	m.deviceMemUsed = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "gantrain_device_memory_used_bytes",
		Help: "Accelerator memory in use on the training device (by every process), by device as --device names it."}, []string{"device"})
	m.deviceMemTotal = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "gantrain_device_memory_total_bytes",
		Help: "Accelerator memory of the training device, by device as --device names it."}, []string{"device"})
	m.deviceInfo = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "gantrain_device_info",
		Help: "The accelerator the run trains on (value 1): device as --device names it, product name, compute capability."}, []string{"device", "name", "compute_capability"})
	m.controlRequests = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gantrain_control_requests_total",
		Help: "Control API requests, by action and HTTP status code."}, []string{"action", "code"})
	build := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "gantrain_build_info",
		Help: "Build of this gantrain process (value 1)."}, []string{"version", "backend", "goversion"})
	build.WithLabelValues(info.Version, info.Backend, runtime.Version()).Set(1)

	for _, c := range []prometheus.Collector{m.steps, m.step, m.examples, m.epoch, m.loss, m.dOutput, m.stepDuration,
		m.learningRate, m.momentum, m.stepLimit, m.ckptDuration, m.ckptLastSuccess, m.ckptFailures, m.outputFailures, m.ready,
		m.eval, m.deviceMemUsed, m.deviceMemTotal, m.deviceInfo, m.controlRequests, build,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})} {
		f(c)
	}
	return m
}
