package config

import (
	"reflect"
	"strings"
	"testing"
)

func TestDefaultIsValid(t *testing.T) {
	published, publishedEMA, best := Default(), Default(), Default()
	PublishedDefaults(&published)
	PublishedEMADefaults(&publishedEMA)
	BestDefaults(&best)
	for name, c := range map[string]Config{"paper": Default(), "published": published, "published-ema": publishedEMA, "best": best, "ring": ring()} {
		if err := c.Validate(); err != nil {
			t.Errorf("%s defaults invalid: %v", name, err)
		}
	}
}

func ring() Config {
	c := Default()
	RingDefaults(&c)
	return c
}

// The effective config written to a run reads back to the same config.
func TestYAMLRoundTrip(t *testing.T) {
	for _, c := range []Config{Default(), ring()} {
		raw, err := c.YAML()
		if err != nil {
			t.Fatal(err)
		}
		got, err := Parse(raw, "roundtrip", Config{})
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, c) {
			t.Errorf("round trip changed the config:\n%s", raw)
		}
	}
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name, doc string
		check     func(Config) bool
		wantErr   string
	}{
		{"empty keeps base", "", func(c Config) bool { return reflect.DeepEqual(c, Default()) }, ""},
		{"yaml override", "train:\n  batch: 64\n", func(c Config) bool { return c.Train.Batch == 64 && c.Train.K == 1 }, ""},
		{"json", `{"optimizer": {"kind": "adam", "lr": 0.0002}}`, func(c Config) bool { return c.Optimizer.Kind == "adam" && c.Optimizer.LR == 0.0002 }, ""},
		{"layers replace", "generator:\n  - {type: dense, activation: sigmoid}\n", func(c Config) bool { return len(c.Generator) == 1 }, ""},
		{"unknown field", "train:\n  batchsize: 3\n", nil, `train.batchsize (line 2, column 3): unknown field "batchsize"`},
		{"unknown layer field", "generator:\n  - {type: dense, unit: 3}\n", nil, `generator[0].unit (line 2, column 19): unknown field "unit"; the fields here are activation,`},
		{"wrong type", "train:\n  batch: many\n", nil, `train.batch (line 2, column 10): want a whole number, got "many"`},
		{"wrong layer type", "discriminator:\n  - type: dropout\n  - type: maxout\n    pieces: [5]\n", nil, "discriminator[1].pieces (line 4, column 13): want a whole number, got a list"},
		{"every mistake listed", "train:\n  batch: x\n  kk: 1\n", nil, "train.batch (line 2, column 10): want a whole number, got \"x\"\n  train.kk (line 3"},
		{"not a mapping", "train: 5\n", nil, `train (line 1, column 8): want a mapping of fields, got "5"`},
		{"syntax", "train: [\n", nil, "cfg.yaml"},
		{"syntax: line and column", "train:\n  batch: 10\n   k: 2\n", nil, "line 3, column 5: mapping values are not allowed in this context\n    3 |    k: 2\n            ^"},
		{"syntax: a line the decoder does not name", "a: b: c\n", nil, "line 1, column 5: mapping values are not allowed"},
		{"syntax: a tab", "train:\n\tbatch: 1\n", nil, "line 2, column 1: found character that cannot start any token"},
		{"eval", "eval:\n  every_epochs: 5\n  parzen: false\n", func(c Config) bool {
			return c.Eval == Eval{EveryEpochs: 5, Parzen: false, Classifier: true, Samples: 10000}
		}, ""},
		{"unknown eval field", "eval:\n  every: 5\n", nil, "every"},
		{"cifar10", "data: {set: cifar10, dir: /d}\n", func(c Config) bool { return c.Data.Set == CIFAR10 && c.Data.Dir == "/d" }, ""},
		{"image size", "data: {set: images, dir: /d, image_size: 64}\n", func(c Config) bool { return c.Data.ImageSize == 64 }, ""},
		{"step graphs on by default", "", func(c Config) bool { return c.Backend.Graphs }, ""},
		{"step graphs off", "backend:\n  cuda_graphs: false\n", func(c Config) bool { return !c.Backend.Graphs }, ""},
	} {
		c, err := Parse([]byte(tc.doc), "cfg.yaml", Default())
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%s: err %v, want one mentioning %q", tc.name, err, tc.wantErr)
			}
			continue
		}
		if err != nil || !tc.check(c) {
			t.Errorf("%s: err %v, config %+v", tc.name, err, c.Train)
		}
	}
}

func TestValidateNamesTheField(t *testing.T) {
	for _, tc := range []struct {
		edit func(*Config)
		want string
	}{
		{func(c *Config) { c.Data.Set = "cifar" }, "data.set"},
		{func(c *Config) { c.Data.Set = Images }, "data.dir"},
		{func(c *Config) { c.Data.Set = CIFAR10 }, "data.dir: CIFAR-10 cannot be downloaded by gantrain; pass --data DIR"},
		{func(c *Config) { c.Data.ImageSize = 64 }, "data.image_size: applies to the images data set only"},
		{func(c *Config) { c.Data.Set, c.Data.Dir, c.Data.ImageSize = Images, "x", -1 }, "data.image_size: must be in 1..1024"},
		{func(c *Config) { c.Data.Set, c.Data.Dir, c.Data.ImageSize = Images, "x", 2000 }, "data.image_size"},
		{func(c *Config) { c.Noise.Dim = 0 }, "noise.dim"},
		{func(c *Config) { c.Noise.Dist = "cauchy" }, "noise.dist"},
		{func(c *Config) { c.Train.Batch = -1 }, "train.batch"},
		{func(c *Config) { c.Train.K = 2; c.Train.Update = UpdateSimultaneous }, "train.k"},
		{func(c *Config) { c.Train.GLoss = "wasserstein" }, "train.g_loss"},
		{func(c *Config) { c.Train.GEMA = 1 }, "train.g_ema"},
		{func(c *Config) { c.Train.GEMA = 0.3 }, "train.g_ema"},
		{func(c *Config) { c.Train.GEMA = -0.999 }, "train.g_ema"},
		{func(c *Config) { c.Train.GEMAWarmup = true }, "train.g_ema_warmup"},
		{func(c *Config) { c.Optimizer.LR = 0 }, "optimizer.lr"},
		{func(c *Config) { c.Optimizer.MomentumEnd = 1.5 }, "optimizer.momentum_end"},
		{func(c *Config) { c.Optimizer.AnnealFrom, c.Optimizer.AnnealEpochs = -1, 5 }, "optimizer.lr_anneal_from"},
		{func(c *Config) { c.Optimizer.AnnealFrom = 5 }, "optimizer.lr_anneal_epochs: must be > 0 to anneal from epoch 5"},
		{func(c *Config) { c.Optimizer.DLR = -1e-4 }, "optimizer.d_lr: must be in (0, 10], or 0 for optimizer.lr, got -0.0001"},
		{func(c *Config) { c.Optimizer.Kind = OptimizerAdam; c.Optimizer.Beta1 = 1 }, "optimizer.beta1"},
		{func(c *Config) { c.Output.Samples = 0 }, "output.samples"},
		{func(c *Config) { c.Backend.Device = "cuda:x" }, "backend.device"},
		{func(c *Config) { c.Backend.BLAS = "atlas" }, "backend.blas"},
		{func(c *Config) { c.Eval.EveryEpochs = -1 }, "eval.every_epochs"},
		{func(c *Config) { c.Eval.Samples = 1 }, "eval.samples"},
		{func(c *Config) { c.Eval.EveryEpochs = 1; c.Eval.Samples = 0 }, "eval.samples"},
		{func(c *Config) { c.Eval.EveryEpochs = 1; c.Eval.Parzen, c.Eval.Classifier = false, false }, "eval.parzen"},
		{func(c *Config) { RingDefaults(c); c.Eval.EveryEpochs = 1 }, "eval.every_epochs"},
		{func(c *Config) { c.Eval.RawGenerator = true }, "eval.raw_generator"},
		{func(c *Config) { c.Discriminator = c.Discriminator[:5] }, "discriminator"},
		{func(c *Config) { c.Generator[0].Activation = "swish" }, "swish"},
		{func(c *Config) { c.Discriminator[0].Keep = 0 }, "keep"},
		{func(c *Config) { c.Discriminator[1].Pieces = 0 }, "pieces"},
	} {
		c := Default()
		tc.edit(&c)
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("got %v, want an error naming %q", err, tc.want)
		}
	}
}

// A value that is none of a field's choices is named with the choices.
func TestValidateListsTheChoices(t *testing.T) {
	for _, tc := range []struct {
		edit func(*Config)
		want string
	}{
		{func(c *Config) { c.Data.Set = "cifar" }, `data.set: unknown data set "cifar" (want mnist, cifar10, ring or images)`},
		{func(c *Config) { c.Noise.Dist = "cauchy" }, `noise.dist: unknown distribution "cauchy" (want uniform or normal)`},
		{func(c *Config) { c.Train.Update = "lazy" }, `train.update: unknown update "lazy" (want alternating or simultaneous)`},
		{func(c *Config) { c.Train.GLoss = "wasserstein" }, `train.g_loss: unknown generator loss "wasserstein" (want nonsaturating or minimax)`},
		{func(c *Config) { c.Train.OnDivergence = "retry" }, `train.on_divergence: unknown action "retry" (want stop or rollback)`},
		{func(c *Config) { c.Optimizer.Kind = "rmsprop" }, `optimizer.kind: unknown optimizer "rmsprop" (want sgd or adam)`},
		{func(c *Config) { c.Output.Progress = "dots" }, `output.progress: unknown mode "dots" (want auto, bar or plain)`},
		{func(c *Config) { c.Backend.Precision = "fp16" }, `backend.precision: unknown precision "fp16" (want fp32 or tf32)`},
		{func(c *Config) { c.Backend.Autotune = "yes" }, `backend.autotune: unknown mode "yes" (want on or off)`},
		{func(c *Config) { c.Backend.BLAS = "atlas" }, `backend.blas: unknown library "atlas" (want auto, openblas, blis, mkl or go)`},
		{func(c *Config) { c.Optimizer.LRDecay = 3 }, `optimizer.lr_decay: must be in [1, 2], got 3`},
	} {
		c := Default()
		tc.edit(&c)
		if err := c.Validate(); err == nil || err.Error() != tc.want {
			t.Errorf("got %v, want %s", err, tc.want)
		}
	}
}

// Every wrong field is reported, not only the first.
func TestValidateReportsEveryField(t *testing.T) {
	c := Default()
	c.Noise.Dim, c.Train.Batch, c.Output.Dir, c.Backend.Threads = 0, 0, "", -1
	err := c.Validate()
	for _, field := range []string{"noise.dim", "train.batch", "output.dir", "backend.threads"} {
		if err == nil || !strings.Contains(err.Error(), field+":") {
			t.Errorf("got %v, want an error naming %s", err, field)
		}
	}
}

func TestParseDevice(t *testing.T) {
	for s, want := range map[string]DeviceSpec{"cpu": {}, "cuda": {CUDA: true}, "cuda:3": {CUDA: true, Ordinal: 3}} {
		if got, err := ParseDevice(s); err != nil || got != want {
			t.Errorf("ParseDevice(%q) = %v, %v; want %v", s, got, err, want)
		}
	}
	for _, s := range []string{"", "gpu", "cuda:", "cuda:-1", "cuda:1x", "cuda:01"} {
		if _, err := ParseDevice(s); err == nil {
			t.Errorf("ParseDevice(%q) succeeded", s)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("train:\n  batch: 64\n"))
	f.Add([]byte(`{"generator": [{"type": "dense", "units": 3}]}`))
	f.Add([]byte("discriminator:\n  - {type: maxout, units: 2, pieces: 3}\n"))
	f.Fuzz(func(t *testing.T, doc []byte) {
		c, err := Parse(doc, "fuzz", Default())
		if err == nil {
			_ = c.Validate() // must not panic
		}
	})
}

// Evaluation is off by default, and a config written before the eval section
// (all zero) is still valid.
func TestEvalDefaults(t *testing.T) {
	c := Default()
	if c.Eval.EveryEpochs != 0 || !c.Eval.Parzen || !c.Eval.Classifier || c.Eval.Samples != 10000 {
		t.Errorf("eval defaults %+v", c.Eval)
	}
	c.Eval = Eval{}
	if err := c.Validate(); err != nil {
		t.Errorf("a config without the eval section: %v", err)
	}
	c.Eval = Eval{EveryEpochs: 10, Classifier: true, Samples: 2000}
	if err := c.Validate(); err != nil {
		t.Errorf("periodic classifier evaluation: %v", err)
	}
}

// Diff names each differing field by its path with both values, a field only one side
// has as not set, and nothing for equal configurations, however the YAML's lines shift.
func TestDiff(t *testing.T) {
	a := Default()
	if d, err := Diff(&a, &a); err != nil || len(d) != 0 {
		t.Fatalf("a config against itself: %v, %v", d, err)
	}
	b := Default()
	b.Optimizer.LR = 0.5
	b.Generator = append(b.Generator[:1:1], b.Generator...) // a layer inserted: every later line shifts
	b.Optimizer.AnnealFrom, b.Optimizer.AnnealEpochs = 85, 40
	d, err := Diff(&a, &b)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][2]string{}
	for _, x := range d {
		got[x.Field] = [2]string{x.A, x.B}
	}
	for field, want := range map[string][2]string{
		"optimizer.lr":               {"0.1", "0.5"},
		"optimizer.lr_anneal_from":   {NotSet, "85"},
		"optimizer.lr_anneal_epochs": {NotSet, "40"},
		"generator[3].type":          {NotSet, "dense"},
		"generator[2].activation":    {"sigmoid", "relu"},
	} {
		if got[field] != want {
			t.Errorf("%s: got %q, want %q", field, got[field], want)
		}
	}
	for _, x := range d {
		if x.Field == "discriminator[0].keep" || x.Field == "train.batch" {
			t.Errorf("unchanged field %s listed: %+v", x.Field, x)
		}
	}
}
