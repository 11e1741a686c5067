package trainer

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/gantrain/gantrain/checkpoint"
	"github.com/gantrain/gantrain/config"
	"github.com/gantrain/gantrain/model"
)

// formatTestConfig has nets that flatten images into a dense layer (D) and reshape a
// dense layer's output into an image through batchnorm (G), with a moving average.
func formatTestConfig() config.Config {
	c := smallConfig()
	c.Generator, c.Discriminator = model.DCGANGenerator(28, 28, 8, 2, 16), model.DCGANDiscriminator(4, 2, 16)
	c.Optimizer.Kind = config.OptimizerAdam
	c.Train.GEMA = 0.99
	return c
}

// toFormat1 rewrites f's tensors as format 1 stored them: the features of flattened
// images in H×W×C order.
func toFormat1(t *testing.T, tr *Trainer, f *checkpoint.File) *checkpoint.File {
	t.Helper()
	old := &checkpoint.File{Metadata: map[string]string{}}
	for k, v := range f.Metadata {
		old.Metadata[k] = v
	}
	old.Metadata[metaFormat] = "1"
	params := map[string]model.Param{}
	for _, opt := range []*optimizer{tr.optG, tr.optD} {
		_, suffixes := opt.arenas()
		for _, s := range suffixes {
			for _, p := range opt.net.ParamList() {
				params[tensorName(opt.net, p, s)] = p
			}
		}
		for _, p := range opt.net.StateList() {
			params[tensorName(opt.net, p, "")] = p
		}
	}
	for _, x := range f.Tensors {
		p, ok := params[x.Name]
		if !ok {
			t.Fatalf("no parameter for tensor %s", x.Name)
		}
		arena := make([]float32, p.Offset+p.Rows*p.Cols)
		p.FromTorch(x.F32, arena)
		p.InImage, p.OutImage = model.Shape{}, model.Shape{}
		x.F32 = p.ToTorch(arena)
		old.Tensors = append(old.Tensors, x)
	}
	return old
}

// A checkpoint of format 1 restores to the same parameters, optimiser state and
// batchnorm statistics as the current format's of the same state; a format this
// gantrain does not know is refused.
func TestRestoreFormat1(t *testing.T) {
	c := formatTestConfig()
	set := randomImages(60)
	tr, err := New(c, newCPU(t), set, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	losses(t, tr, 3)
	f, err := tr.Checkpoint()
	if err != nil {
		t.Fatal(err)
	}
	if f.Metadata[metaFormat] != formatVersion {
		t.Fatalf("checkpoint format %q, want %s", f.Metadata[metaFormat], formatVersion)
	}
	old := toFormat1(t, tr, f)
	var reordered []string
	for i := range f.Tensors {
		if !slices.Equal(f.Tensors[i].F32, old.Tensors[i].F32) {
			reordered = append(reordered, f.Tensors[i].Name)
		}
	}
	// D's first dense layer reads a flattened 7×7×8 image; G's second dense layer and
	// its batchnorm become one; their optimiser state and G's average likewise.
	for _, name := range []string{"discriminator.layers.4.weight", "generator.layers.2.weight", "generator.layers.2.bias",
		"generator.layers.3.weight", "generator.layers.3.running_var", "generator.layers.2.weight.ema"} {
		if !slices.Contains(reordered, name) {
			t.Errorf("%s is stored in the same order in both formats; reordered: %v", name, reordered)
		}
	}

	restored, err := New(c, newCPU(t), set, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	if err := restored.Restore(old); err != nil {
		t.Fatal(err)
	}
	back, err := restored.Checkpoint()
	if err != nil {
		t.Fatal(err)
	}
	for i := range f.Tensors {
		if !reflect.DeepEqual(back.Tensors[i], f.Tensors[i]) {
			t.Errorf("tensor %s differs after a restore from format 1", f.Tensors[i].Name)
		}
	}

	old.Metadata[metaFormat] = "3"
	other, _ := New(c, newCPU(t), set, quietLog())
	if err := other.Restore(old); !errors.Is(err, checkpoint.ErrInvalid) || !strings.Contains(err.Error(), `gantrain.format = "3"`) {
		t.Errorf("restore of format 3: %v, want an error naming gantrain.format", err)
	}
}
