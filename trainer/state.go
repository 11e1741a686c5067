package trainer

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"

	"github.com/gantrain/gantrain/backend"
	"github.com/gantrain/gantrain/checkpoint"
	"github.com/gantrain/gantrain/config"
	"github.com/gantrain/gantrain/model"
)

// Checkpoint metadata keys.
const (
	metaFormat       = "gantrain.format"
	metaConfig       = "gantrain.config"
	metaArchitecture = "gantrain.architecture"
	metaStep         = "gantrain.step"
	metaEpoch        = "gantrain.epoch"
	metaPos          = "gantrain.data_position"
	metaSeed         = "gantrain.seed"
	metaUpdatesG     = "gantrain.updates.generator"
	metaUpdatesD     = "gantrain.updates.discriminator"
	metaShape        = "gantrain.data_shape"
	metaLRScale      = "gantrain.lr_scale"
	metaRollbacks    = "gantrain.rollbacks"
	metaKernels      = "gantrain.kernels"
	// formatVersion 2 stores the features of flattened images (a dense layer's inputs
	// after a flatten, its outputs before a reshape) in PyTorch's C×H×W order; format
	// 1 stored them in gantrain's H×W×C order, and still loads.
	formatVersion = "2"
)

// Metadata keys that tools read from a checkpoint (gantrain eval, for one).
const (
	MetaStep    = metaStep    // iterations completed
	MetaEpoch   = metaEpoch   // epochs completed
	MetaKernels = metaKernels // the backend's kernel choices, on a backend that tunes them (JSON)
)

// ErrArchitecture is wrapped by the error of a checkpoint made for other nets.
var ErrArchitecture = errors.New("checkpoint architecture mismatch")

// architecture is what must match for a checkpoint's tensors to fit a net.
type architecture struct {
	Noise         int               `json:"noise_dim"`
	DataWidth     int               `json:"data_width"`
	Generator     []model.LayerSpec `json:"generator"`
	Discriminator []model.LayerSpec `json:"discriminator"`
	Optimizer     string            `json:"optimizer"`
	// GEMA: the checkpoint holds a moving average of G's parameters.
	GEMA bool `json:"g_ema,omitempty"`
}

func (t *Trainer) architecture() architecture {
	return architecture{Noise: t.cfg.Noise.Dim, DataWidth: t.D.In, Generator: t.cfg.Generator,
		Discriminator: t.cfg.Discriminator, Optimizer: t.cfg.Optimizer.Kind, GEMA: t.optG.avg != nil}
}

// Checkpoint gathers the run's complete state: both nets' parameters and optimiser
// state, stored per tensor as PyTorch lays them out (a weight as [out, in], as
// torch.nn.Linear holds it; a bias as [out]) under names like
// "generator.layers.0.weight", plus the progress counters and the effective config.
func (t *Trainer) Checkpoint() (*checkpoint.File, error) {
	f := &checkpoint.File{Metadata: map[string]string{}}
	for _, opt := range []*optimizer{t.optG, t.optD} {
		arenas, suffixes := opt.arenas()
		for k, arena := range arenas {
			host := make([]float32, opt.net.Size())
			if err := t.b.Download(host, arena); err != nil {
				return nil, fmt.Errorf("checkpoint %s: %w", opt.net.Name, err)
			}
			for _, p := range opt.net.ParamList() {
				f.Tensors = append(f.Tensors, exportParam(tensorName(opt.net, p, suffixes[k]), p, host))
			}
		}
		if st := opt.net.StateList(); len(st) > 0 {
			host := make([]float32, backend.Len(opt.net.State))
			if err := t.b.Download(host, opt.net.State); err != nil {
				return nil, fmt.Errorf("checkpoint %s batchnorm statistics: %w", opt.net.Name, err)
			}
			for _, p := range st {
				f.Tensors = append(f.Tensors, exportParam(tensorName(opt.net, p, ""), p, host))
			}
		}
	}
	cfgJSON, err := json.Marshal(t.cfg)
	if err != nil {
		return nil, fmt.Errorf("checkpoint config: %w", err)
	}
	archJSON, err := json.Marshal(t.architecture())
	if err != nil {
		return nil, fmt.Errorf("checkpoint architecture: %w", err)
	}
	f.Metadata[metaFormat] = formatVersion
	f.Metadata[metaConfig] = string(cfgJSON)
	f.Metadata[metaArchitecture] = string(archJSON)
	f.Metadata[metaStep] = strconv.FormatInt(t.step, 10)
	f.Metadata[metaEpoch] = strconv.Itoa(t.epoch)
	f.Metadata[metaPos] = strconv.Itoa(t.pos)
	f.Metadata[metaSeed] = strconv.FormatUint(t.seed, 10)
	f.Metadata[metaUpdatesG] = strconv.Itoa(t.optG.t)
	f.Metadata[metaUpdatesD] = strconv.Itoa(t.optD.t)
	f.Metadata[metaShape] = fmt.Sprintf("%d,%d,%d", t.shape.H, t.shape.W, t.shape.C)
	f.Metadata[metaLRScale] = strconv.FormatFloat(t.optG.scale, 'g', -1, 64)
	f.Metadata[metaRollbacks] = strconv.Itoa(t.rollbacks)
	if k, ok := t.kernelChoices(); ok {
		f.Metadata[metaKernels] = k
	}
	return f, nil
}

// kernelRecord is a checkpoint's record of the backend's kernel choices, valid on the
// device it names.
type kernelRecord struct {
	Device  string            `json:"device"`
	Choices map[string]string `json:"choices"`
}

// kernelChoices is the kernelRecord of a backend that tunes its kernels.
func (t *Trainer) kernelChoices() (string, bool) {
	kt, ok := t.b.(backend.KernelTuner)
	if !ok {
		return "", false
	}
	rec := kernelRecord{Choices: kt.KernelChoiceMap()}
	if dr, ok := t.b.(backend.AcceleratorReporter); ok {
		rec.Device = dr.Accelerator().Name
	}
	raw, err := json.Marshal(rec)
	return string(raw), err == nil
}

// presetKernels hands the checkpoint's kernel choices to a backend that tunes its
// kernels, when they were made on the same kind of device; a record that does not
// parse is an invalid checkpoint.
func (t *Trainer) presetKernels(f *checkpoint.File) error {
	raw, ok := f.Metadata[metaKernels]
	kt, tunes := t.b.(backend.KernelTuner)
	if !ok || !tunes {
		return nil
	}
	var rec kernelRecord
	if err := json.Unmarshal([]byte(raw), &rec); err != nil {
		return fmt.Errorf("%w: metadata %s: %v", checkpoint.ErrInvalid, metaKernels, err)
	}
	if dr, ok := t.b.(backend.AcceleratorReporter); !ok || dr.Accelerator().Name != rec.Device {
		return nil // chosen for another device: this one chooses its own
	}
	if err := kt.PresetKernelChoices(rec.Choices); err != nil {
		return fmt.Errorf("%w: metadata %s: %v", checkpoint.ErrInvalid, metaKernels, err)
	}
	return nil
}

// tensorName is the checkpoint name of parameter p of net, or of its optimiser
// state when suffix is not empty: "generator.layers.0.weight.velocity".
func tensorName(net *model.Net, p model.Param, suffix string) string {
	name := net.Name + "." + p.Name
	if suffix != "" {
		name += "." + suffix
	}
	return name
}

// importArena fills arena (net's parameters, or its optimiser state named by
// suffix) from the checkpoint's tensors.
func importArena(b backend.Backend, arena backend.Tensor, f *checkpoint.File, net *model.Net, suffix string) error {
	legacy, err := legacyOrder(f)
	if err != nil {
		return err
	}
	host := make([]float32, net.Size())
	for _, p := range net.ParamList() {
		name := tensorName(net, p, suffix)
		ct, ok := f.Tensor(name)
		if !ok {
			return fmt.Errorf("%w: no tensor %s", ErrArchitecture, name)
		}
		if err := importParam(ct, p, host, legacy); err != nil {
			return err
		}
	}
	if err := b.Upload(arena, host); err != nil {
		return fmt.Errorf("restore %s: %w", net.Name, err)
	}
	return nil
}

// exportParam copies parameter p out of a host copy of its arena in PyTorch's layout
// (a dense weight from gantrain's in×out to PyTorch's out×in).
func exportParam(name string, p model.Param, arena []float32) checkpoint.Tensor {
	return checkpoint.Tensor{Name: name, Shape: p.TorchShape(), F32: p.ToTorch(arena)}
}

// legacyOrder checks f's format and reports whether it is format 1, which stored the
// features of flattened images in H×W×C order.
func legacyOrder(f *checkpoint.File) (bool, error) {
	switch v := f.Metadata[metaFormat]; v {
	case "1":
		return true, nil
	case formatVersion:
		return false, nil
	default:
		return false, fmt.Errorf("%w: %s = %q (this gantrain reads formats 1 and %s)", checkpoint.ErrInvalid, metaFormat, v, formatVersion)
	}
}

// importParam is exportParam's inverse into a host arena; legacy reads format 1's
// order of flattened images' features.
func importParam(t *checkpoint.Tensor, p model.Param, arena []float32, legacy bool) error {
	if want := p.TorchShape(); t.F32 == nil || !reflect.DeepEqual(t.Shape, want) {
		return fmt.Errorf("%w: tensor %s has shape %v %s, want %v F32", ErrArchitecture, t.Name, t.Shape, t.DType(), want)
	}
	if legacy {
		p.InImage, p.OutImage = model.Shape{}, model.Shape{}
	}
	p.FromTorch(t.F32, arena)
	return nil
}

// importState fills net's batchnorm statistics from the checkpoint's tensors.
func importState(b backend.Backend, f *checkpoint.File, net *model.Net) error {
	st := net.StateList()
	if len(st) == 0 {
		return nil
	}
	legacy, err := legacyOrder(f)
	if err != nil {
		return err
	}
	host := make([]float32, backend.Len(net.State))
	for _, p := range st {
		name := tensorName(net, p, "")
		ct, ok := f.Tensor(name)
		if !ok {
			return fmt.Errorf("%w: no tensor %s", ErrArchitecture, name)
		}
		if err := importParam(ct, p, host, legacy); err != nil {
			return err
		}
	}
	if err := b.Upload(net.State, host); err != nil {
		return fmt.Errorf("restore %s batchnorm statistics: %w", net.Name, err)
	}
	return nil
}

// CheckpointConfig returns the effective config stored in a checkpoint.
func CheckpointConfig(f *checkpoint.File) (config.Config, error) {
	raw, ok := f.Metadata[metaConfig]
	if !ok {
		return config.Config{}, fmt.Errorf("%w: no %s metadata (not a gantrain checkpoint?)", checkpoint.ErrInvalid, metaConfig)
	}
	var c config.Config
	if err := json.Unmarshal([]byte(raw), &c); err != nil {
		return config.Config{}, fmt.Errorf("%w: %s: %v", checkpoint.ErrInvalid, metaConfig, err)
	}
	return c, nil
}

// Restore loads a checkpoint's parameters, optimiser state and progress into t. The
// checkpoint must be of the same architecture, seed and data set size; nothing is
// changed when it is not.
func (t *Trainer) Restore(f *checkpoint.File) error {
	var arch architecture
	if err := json.Unmarshal([]byte(f.Metadata[metaArchitecture]), &arch); err != nil {
		return fmt.Errorf("%w: %s: %v", checkpoint.ErrInvalid, metaArchitecture, err)
	}
	if want := t.architecture(); !reflect.DeepEqual(arch, want) {
		return fmt.Errorf("%w: %s", ErrArchitecture, archDiff(arch, want))
	}
	if seed := f.Metadata[metaSeed]; seed != strconv.FormatUint(t.seed, 10) {
		return fmt.Errorf("%w: checkpoint seed %s, this run %d", ErrArchitecture, seed, t.seed)
	}
	var step, epoch, pos, ug, ud int64
	for k, dst := range map[string]*int64{metaStep: &step, metaEpoch: &epoch, metaPos: &pos, metaUpdatesG: &ug, metaUpdatesD: &ud} {
		v, err := strconv.ParseInt(f.Metadata[k], 10, 64)
		if err != nil || v < 0 || v > math.MaxInt32*int64(1<<20) {
			return fmt.Errorf("%w: metadata %s = %q", checkpoint.ErrInvalid, k, f.Metadata[k])
		}
		*dst = v
	}
	if pos > int64(t.nTrain) {
		return fmt.Errorf("%w: the checkpoint's data position %d is beyond this run's %d training examples: it was made for another data set",
			ErrArchitecture, pos, t.nTrain)
	}
	// Older checkpoints have no rollback state: scale 1, none done.
	scale, rollbacks := 1.0, int64(0)
	if v, ok := f.Metadata[metaLRScale]; ok {
		var err error
		if scale, err = strconv.ParseFloat(v, 64); err != nil || !(scale > 0 && scale <= 1) {
			return fmt.Errorf("%w: metadata %s = %q", checkpoint.ErrInvalid, metaLRScale, v)
		}
	}
	if v, ok := f.Metadata[metaRollbacks]; ok {
		var err error
		if rollbacks, err = strconv.ParseInt(v, 10, 32); err != nil || rollbacks < 0 {
			return fmt.Errorf("%w: metadata %s = %q", checkpoint.ErrInvalid, metaRollbacks, v)
		}
	}
	if err := t.presetKernels(f); err != nil {
		return err
	}
	for _, opt := range []*optimizer{t.optG, t.optD} {
		arenas, suffixes := opt.arenas()
		for k, arena := range arenas {
			if err := importArena(t.b, arena, f, opt.net, suffixes[k]); err != nil {
				return err
			}
		}
		if err := importState(t.b, f, opt.net); err != nil {
			return err
		}
	}
	t.step, t.epoch, t.pos = step, int(epoch), int(pos)
	t.stander.forget() // a rollback comes back to its steps with other parameters
	t.optG.t, t.optD.t = int(ug), int(ud)
	t.optG.scale, t.optD.scale, t.rollbacks = scale, scale, int(rollbacks)
	return t.shuffle()
}

// archDiff names the fields in which a checkpoint's architecture (a) differs from
// this run's (b).
func archDiff(a, b architecture) string {
	var d []string
	field := func(name string, x, y any) {
		if !reflect.DeepEqual(x, y) {
			d = append(d, fmt.Sprintf("%s: checkpoint %v, this run %v", name, x, y))
		}
	}
	field("noise_dim", a.Noise, b.Noise)
	field("data width", a.DataWidth, b.DataWidth)
	layers := func(role string, x, y []model.LayerSpec) {
		if len(x) != len(y) {
			d = append(d, fmt.Sprintf("%s: checkpoint %d layers (%s), this run %d (%s)", role, len(x), model.DescribeLayers(x), len(y), model.DescribeLayers(y)))
			return
		}
		for i := range x {
			if !reflect.DeepEqual(x[i], y[i]) {
				d = append(d, fmt.Sprintf("%s[%d]: checkpoint %s, this run %s", role, i, model.DescribeLayers(x[i:i+1]), model.DescribeLayers(y[i:i+1])))
			}
		}
	}
	layers("generator", a.Generator, b.Generator)
	layers("discriminator", a.Discriminator, b.Discriminator)
	field("optimizer", a.Optimizer, b.Optimizer)
	if a.GEMA != b.GEMA {
		has := map[bool]string{false: "no average of G", true: "a moving average of G"}
		d = append(d, fmt.Sprintf("train.g_ema: the checkpoint has %s, this run %s", has[a.GEMA], has[b.GEMA]))
	}
	if len(d) == 0 {
		return fmt.Sprintf("checkpoint has %s, this run %s", describeArch(a), describeArch(b))
	}
	return strings.Join(d, "; ")
}

func describeArch(a architecture) string {
	ema := "no average of G"
	if a.GEMA {
		ema = "a moving average of G"
	}
	return fmt.Sprintf("noise %d, data width %d, G %s, D %s, optimiser %s, %s",
		a.Noise, a.DataWidth, model.DescribeLayers(a.Generator), model.DescribeLayers(a.Discriminator), a.Optimizer, ema)
}
