package trainer

import (
	"encoding/json"
	"fmt"

	"github.com/gantrain/gantrain/backend"
	"github.com/gantrain/gantrain/checkpoint"
	"github.com/gantrain/gantrain/data"
	"github.com/gantrain/gantrain/model"
	"github.com/gantrain/gantrain/rng"
)

// streamSample is the noise stream of Sample (| its seed's draw index is the offset).
const streamSample = 1<<63 | 4

// SampleOptions choose what Sample draws from.
type SampleOptions struct {
	// Raw draws from G's parameters even when the checkpoint holds their moving
	// average (train.g_ema), which is used otherwise.
	Raw bool
	// BatchNorm, when set, overrides the run's train.sample_batchnorm: running or batch.
	BatchNorm string
}

// HasAverage reports whether checkpoint f holds a moving average of G's parameters.
func HasAverage(f *checkpoint.File) bool {
	var arch architecture
	return json.Unmarshal([]byte(f.Metadata[metaArchitecture]), &arch) == nil && arch.GEMA
}

// Sample loads the generator of checkpoint f into b and draws n samples from it with
// noise seed seed: from the moving average of its parameters when the run kept one
// (train.g_ema) and opts.Raw is not set, with batchnorm statistics of its own (see
// stander), else from its parameters. It returns the samples (n × data width) and the
// data's image shape (zero for point data).
func Sample(b backend.Backend, f *checkpoint.File, n int, seed uint64, opts SampleOptions) ([]float32, data.Shape, error) {
	cfg, err := CheckpointConfig(f)
	if err != nil {
		return nil, data.Shape{}, err
	}
	if n < 1 || n > 1_000_000 {
		return nil, data.Shape{}, fmt.Errorf("sample: n must be in 1..1000000, got %d", n)
	}
	var shape data.Shape
	if _, err := fmt.Sscanf(f.Metadata[metaShape], "%d,%d,%d", &shape.H, &shape.W, &shape.C); err != nil {
		return nil, data.Shape{}, fmt.Errorf("%w: metadata %s = %q", checkpoint.ErrInvalid, metaShape, f.Metadata[metaShape])
	}
	var arch architecture
	if err := json.Unmarshal([]byte(f.Metadata[metaArchitecture]), &arch); err != nil {
		return nil, data.Shape{}, fmt.Errorf("%w: %s: %v", checkpoint.ErrInvalid, metaArchitecture, err)
	}
	g, err := model.Build(b, "generator", cfg.Generator, model.Flat(cfg.Noise.Dim), dataShape(shape, arch.DataWidth), model.OutputHead)
	if err != nil {
		return nil, data.Shape{}, fmt.Errorf("sample: %w", err)
	}
	suffix := ""
	if arch.GEMA && !opts.Raw {
		suffix = suffixEMA
	}
	if err := importArena(b, g.Params, f, g, suffix); err != nil {
		return nil, data.Shape{}, fmt.Errorf("sample: %w", err)
	}
	if err := importState(b, f, g); err != nil {
		return nil, data.Shape{}, fmt.Errorf("sample: %w", err)
	}
	z, err := b.Alloc(backend.F32, n, cfg.Noise.Dim)
	if err != nil {
		return nil, data.Shape{}, fmt.Errorf("sample: %w", err)
	}
	if opts.BatchNorm != "" {
		cfg.Train.SampleBatchNorm = opts.BatchNorm
		if err := cfg.Validate(); err != nil {
			return nil, data.Shape{}, fmt.Errorf("sample: %w", err)
		}
	}
	if suffix == suffixEMA { // the average's own statistics, as the trainer sets them
		s, err := newStander(b, g, cfg)
		if err == nil {
			err = s.stand(b, 0)
		}
		if err != nil {
			return nil, data.Shape{}, fmt.Errorf("sample: %w", err)
		}
	}
	fillNoise(b, z, cfg.Noise.Dist, rng.Stream{Seed: seed, Offset: streamSample})
	out, err := generate(b, g, z, sampleMode(cfg))
	if err != nil {
		return nil, data.Shape{}, fmt.Errorf("sample: %w", err)
	}
	return out, shape, nil
}

// generate runs g on the rows of z in chunks of at most evalChunk rows, as the
// periodic evaluation does, so that a convolutional generator's activations stay
// small, and returns the outputs (z's rows × g.Out).
func generate(b backend.Backend, g *model.Net, z backend.Tensor, mode model.Mode) ([]float32, error) {
	n, dim := z.Rows(), z.Cols()
	out := make([]float32, n*g.Out)
	var pass *model.Pass
	for r0 := 0; r0 < n; r0 += evalChunk {
		rows := min(evalChunk, n-r0)
		in, err := b.View(z, r0*dim, rows, dim)
		if err != nil {
			return nil, err
		}
		if pass == nil || pass.N != rows { // the first chunk, and a shorter last one
			buf, err := b.Alloc(backend.F32, rows, dim)
			if err != nil {
				return nil, err
			}
			if pass, err = g.NewPass(b, buf, model.PassBuffers{}); err != nil {
				return nil, err
			}
		}
		b.Copy(pass.In, in)
		pass.Forward(b, mode, rng.Stream{})
		if err := b.Download(out[r0*g.Out:(r0+rows)*g.Out], pass.Out); err != nil {
			return nil, err
		}
	}
	return out, nil
}
