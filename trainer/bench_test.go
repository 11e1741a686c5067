package trainer

import (
	"cmp"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gantrain/gantrain/backend"
	"github.com/gantrain/gantrain/config"
	"github.com/gantrain/gantrain/cpu"
	"github.com/gantrain/gantrain/data"
	"github.com/gantrain/gantrain/rng"
)

// randomImages is a stand-in training set of n 28×28 images in [0, 1].
func randomImages(n int) *data.Set {
	r := rand.New(rand.NewPCG(1, 1))
	x := make([]float32, n*784)
	for i := range x {
		x[i] = r.Float32()
	}
	return &data.Set{Name: "random", X: x, N: n, Dim: 784, Shape: data.Shape{H: 28, W: 28, C: 1}}
}

// BenchmarkIteration times one iteration of Algorithm 1 (one D step and one G step)
// of the paper's MNIST nets (or those of the preset GANTRAIN_PRESET names) on the CPU
// backend, and reports ms/iter and the products' GFLOP/s. GANTRAIN_BATCH sets the
// minibatch (default: the preset's),
// GANTRAIN_THREADS the backend's threads (default one per CPU), GANTRAIN_BLAS the
// library. bench/cpu.sh compares the result with PyTorch.
func BenchmarkIteration(b *testing.B) {
	tr, be, flops := benchTrainer(b, func(be backend.Backend) backend.Backend { return be })
	b.Logf("backend: %s; %.3f GFLOP an iteration", be.Describe(), flops/1e9)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := tr.Step(i == b.N-1); err != nil {
			b.Fatal(err)
		}
	}
	sec := b.Elapsed().Seconds() / float64(b.N)
	b.ReportMetric(sec*1e3, "ms/iter")
	b.ReportMetric(flops/sec/1e9, "GFLOP/s")
}

// benchTrainer makes a trainer of the paper's nets on the CPU backend named by the
// environment (see BenchmarkIteration), its backend seen through wrap, warmed up by
// three steps. flops is what one iteration's matrix products compute.
func benchTrainer(tb testing.TB, wrap func(backend.Backend) backend.Backend) (tr *Trainer, be *cpu.Backend, flops float64) {
	tb.Helper()
	threads, _ := strconv.Atoi(os.Getenv("GANTRAIN_THREADS"))
	be, err := cpu.New(cpu.Options{BLAS: cmp.Or(os.Getenv("GANTRAIN_BLAS"), "auto"), Threads: threads})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { be.Close() })
	cfg := config.Default()
	if err := config.ApplyPreset(&cfg, cmp.Or(os.Getenv("GANTRAIN_PRESET"), "paper")); err != nil {
		tb.Fatalf("GANTRAIN_PRESET: %v", err)
	}
	if v := os.Getenv("GANTRAIN_BATCH"); v != "" {
		if cfg.Train.Batch, err = strconv.Atoi(v); err != nil {
			tb.Fatalf("GANTRAIN_BATCH: %v", err)
		}
	}
	fc := &flopCounter{Backend: wrap(be)}
	tr, err = New(cfg, fc, randomImages(5000), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		tb.Fatal(err)
	}
	for i := 0; i < 3; i++ { // warm up; the last step is counted
		fc.flops = 0
		if _, err := tr.Step(false); err != nil {
			tb.Fatal(err)
		}
	}
	fc.off = true
	return tr, be, fc.flops
}

// flopCounter counts the floating-point operations of the matrix products (2 per
// multiply-add) until off is set.
type flopCounter struct {
	backend.Backend
	flops float64
	off   bool
}

// product counts one product of x's rows with the weights w.
func (f *flopCounter) product(x, w backend.Tensor) {
	if !f.off {
		f.flops += 2 * float64(x.Rows()*w.Rows()*w.Cols())
	}
}

func (f *flopCounter) DenseForward(y, x, w, b backend.Tensor, act backend.Act) {
	f.product(x, w)
	f.Backend.DenseForward(y, x, w, b, act)
}

func (f *flopCounter) DenseMaxout(y, arg, mask, z, x, w, b backend.Tensor, pieces int, keep float32, s rng.Stream) {
	f.product(x, w)
	f.Backend.DenseMaxout(y, arg, mask, z, x, w, b, pieces, keep, s)
}

func (f *flopCounter) ConvForward(y, cols, x, w, b backend.Tensor, g backend.ConvGeom, act backend.Act) {
	f.product(cols, w)
	f.Backend.ConvForward(y, cols, x, w, b, g, act)
}

func (f *flopCounter) ConvTransposeForward(y, cols, x, w, b backend.Tensor, g backend.ConvGeom, act backend.Act) {
	f.product(x, w)
	f.Backend.ConvTransposeForward(y, cols, x, w, b, g, act)
}

func (f *flopCounter) DenseBackward(dx, dw, db, dy, x, y, w backend.Tensor, act backend.Act) {
	f.backwardProducts(dx, dw, x, w)
	f.Backend.DenseBackward(dx, dw, db, dy, x, y, w, act)
}

func (f *flopCounter) ConvBackward(dx, dw, db, dcols, dy, cols, y, w backend.Tensor, g backend.ConvGeom, act backend.Act) {
	f.backwardProducts(dx, dw, cols, w)
	f.Backend.ConvBackward(dx, dw, db, dcols, dy, cols, y, w, g, act)
}

func (f *flopCounter) ConvTransposeBackward(dx, dw, cols, dy, x, w backend.Tensor, g backend.ConvGeom) {
	f.backwardProducts(dx, dw, x, w)
	f.Backend.ConvTransposeBackward(dx, dw, cols, dy, x, w, g)
}

// backwardProducts counts a dense layer's backward products: x's rows with w for each
// of dx and dw that is wanted.
func (f *flopCounter) backwardProducts(dx, dw, x, w backend.Tensor) {
	for _, out := range []backend.Tensor{dx, dw} {
		if out != nil {
			f.product(x, w)
		}
	}
}

// timedBackend times every operation of a synchronous backend, by operation and
// operand shape.
type timedBackend struct {
	backend.Backend
	total map[string]time.Duration
	calls map[string]int
}

func (t *timedBackend) time(key string, start time.Time) {
	t.total[key] += time.Since(start)
	t.calls[key]++
}

func dims(x backend.Tensor) string {
	if x == nil {
		return "-"
	}
	return fmt.Sprintf("%d×%d", x.Rows(), x.Cols())
}

func (t *timedBackend) DenseForward(y, x, w, b backend.Tensor, act backend.Act) {
	defer t.time(fmt.Sprintf("DenseForward %s·%s %s", dims(x), dims(w), act.Kind), time.Now())
	t.Backend.DenseForward(y, x, w, b, act)
}

func (t *timedBackend) ConvForward(y, cols, x, w, b backend.Tensor, g backend.ConvGeom, act backend.Act) {
	defer t.time(fmt.Sprintf("ConvForward %s·%s %v %s", dims(cols), dims(w), g, act.Kind), time.Now())
	t.Backend.ConvForward(y, cols, x, w, b, g, act)
}

func (t *timedBackend) ConvBackward(dx, dw, db, dcols, dy, cols, y, w backend.Tensor, g backend.ConvGeom, act backend.Act) {
	defer t.time(fmt.Sprintf("ConvBackward %s·%s %v %s dx=%v dw=%v", dims(cols), dims(w), g, act.Kind, dx != nil, dw != nil), time.Now())
	t.Backend.ConvBackward(dx, dw, db, dcols, dy, cols, y, w, g, act)
}

func (t *timedBackend) ConvTransposeBackward(dx, dw, cols, dy, x, w backend.Tensor, g backend.ConvGeom) {
	defer t.time(fmt.Sprintf("ConvTransposeBackward %s·%s %v dx=%v dw=%v", dims(cols), dims(w), g, dx != nil, dw != nil), time.Now())
	t.Backend.ConvTransposeBackward(dx, dw, cols, dy, x, w, g)
}

func (t *timedBackend) ConvTransposeForward(y, cols, x, w, b backend.Tensor, g backend.ConvGeom, act backend.Act) {
	defer t.time(fmt.Sprintf("ConvTransposeForward %s·%s %v %s", dims(x), dims(w), g, act.Kind), time.Now())
	t.Backend.ConvTransposeForward(y, cols, x, w, b, g, act)
}

func (t *timedBackend) DenseBackward(dx, dw, db, dy, x, y, w backend.Tensor, act backend.Act) {
	defer t.time(fmt.Sprintf("DenseBackward %s·%s %s dx=%v dw=%v", dims(x), dims(w), act.Kind, dx != nil, dw != nil), time.Now())
	t.Backend.DenseBackward(dx, dw, db, dy, x, y, w, act)
}

func (t *timedBackend) MaxoutDropout(y, arg, mask, z backend.Tensor, pieces int, keep float32, s rng.Stream) {
	defer t.time("MaxoutDropout "+dims(z), time.Now())
	t.Backend.MaxoutDropout(y, arg, mask, z, pieces, keep, s)
}

func (t *timedBackend) DenseMaxout(y, arg, mask, z, x, w, b backend.Tensor, pieces int, keep float32, s rng.Stream) {
	defer t.time(fmt.Sprintf("DenseMaxout %s·%s pieces=%d", dims(x), dims(w), pieces), time.Now())
	t.Backend.DenseMaxout(y, arg, mask, z, x, w, b, pieces, keep, s)
}

func (t *timedBackend) MaxoutDropoutBackward(dz, dy, mask, arg backend.Tensor, pieces int) {
	defer t.time("MaxoutDropoutBackward "+dims(dz), time.Now())
	t.Backend.MaxoutDropoutBackward(dz, dy, mask, arg, pieces)
}

func (t *timedBackend) Dropout(y, mask, x backend.Tensor, keep float32, s rng.Stream) {
	defer t.time("Dropout "+dims(x), time.Now())
	t.Backend.Dropout(y, mask, x, keep, s)
}

func (t *timedBackend) Mul(y, a, b backend.Tensor) {
	defer t.time("Mul "+dims(y), time.Now())
	t.Backend.Mul(y, a, b)
}

func (t *timedBackend) SGDMomentum(p, g, v backend.Tensor, lr, mu float32) {
	defer t.time("SGDMomentum "+dims(p), time.Now())
	t.Backend.SGDMomentum(p, g, v, lr, mu)
}

func (t *timedBackend) ClipColumnNorms(w backend.Tensor, maxNorm float32) {
	defer t.time("ClipColumnNorms "+dims(w), time.Now())
	t.Backend.ClipColumnNorms(w, maxNorm)
}

func (t *timedBackend) BatchNorm(y, mean, variance, x, gamma, beta, runMean, runVar backend.Tensor, groups int, eps, momentum float32, act backend.Act) {
	defer t.time(fmt.Sprintf("BatchNorm %s groups=%d %s", dims(x), groups, act.Kind), time.Now())
	t.Backend.BatchNorm(y, mean, variance, x, gamma, beta, runMean, runVar, groups, eps, momentum, act)
}

func (t *timedBackend) BatchNormBackward(dx, dgamma, dbeta, dy, x, y, gamma, mean, variance backend.Tensor, groups int, eps float32, act backend.Act) {
	defer t.time(fmt.Sprintf("BatchNormBackward %s groups=%d %s", dims(x), groups, act.Kind), time.Now())
	t.Backend.BatchNormBackward(dx, dgamma, dbeta, dy, x, y, gamma, mean, variance, groups, eps, act)
}

func (t *timedBackend) BiasActivation(y, b backend.Tensor, act backend.Act) {
	defer t.time(fmt.Sprintf("BiasActivation %s %s", dims(y), act.Kind), time.Now())
	t.Backend.BiasActivation(y, b, act)
}

func (t *timedBackend) BiasActivationBackward(db, dy, y backend.Tensor, act backend.Act) {
	defer t.time(fmt.Sprintf("BiasActivationBackward %s %s", dims(dy), act.Kind), time.Now())
	t.Backend.BiasActivationBackward(db, dy, y, act)
}

func (t *timedBackend) Adam(p, g, m, v backend.Tensor, lr, beta1, beta2, eps float32, step int) {
	defer t.time("Adam "+dims(p), time.Now())
	t.Backend.Adam(p, g, m, v, lr, beta1, beta2, eps, step)
}

func (t *timedBackend) MovingAverage(avg, x backend.Tensor, decay float32) {
	defer t.time("MovingAverage "+dims(avg), time.Now())
	t.Backend.MovingAverage(avg, x, decay)
}

func (t *timedBackend) Fill(x backend.Tensor, v float32) {
	defer t.time("Fill "+dims(x), time.Now())
	t.Backend.Fill(x, v)
}

func (t *timedBackend) Copy(dst, src backend.Tensor) {
	defer t.time("Copy "+dims(dst), time.Now())
	t.Backend.Copy(dst, src)
}

func (t *timedBackend) Normal(x backend.Tensor, mean, std float32, s rng.Stream) {
	defer t.time("Normal "+dims(x), time.Now())
	t.Backend.Normal(x, mean, std, s)
}

func (t *timedBackend) Uniform(x backend.Tensor, lo, hi float32, s rng.Stream) {
	defer t.time("Uniform "+dims(x), time.Now())
	t.Backend.Uniform(x, lo, hi, s)
}

func (t *timedBackend) GatherRows(dst, src, idx backend.Tensor, offset int) {
	defer t.time("GatherRows "+dims(dst), time.Now())
	t.Backend.GatherRows(dst, src, idx, offset)
}

func (t *timedBackend) SigmoidCrossEntropy(dlogits, logits, targets backend.Tensor, scale float32, out backend.Tensor, slot int) {
	defer t.time("SigmoidCrossEntropy "+dims(logits), time.Now())
	t.Backend.SigmoidCrossEntropy(dlogits, logits, targets, scale, out, slot)
}

// BenchmarkIterationOps is BenchmarkIteration with every backend operation timed:
// it logs the time of one iteration by operation and shape (run with -v).
func BenchmarkIterationOps(b *testing.B) {
	var tb *timedBackend
	tr, be, _ := benchTrainer(b, func(be backend.Backend) backend.Backend {
		tb = &timedBackend{Backend: be, total: map[string]time.Duration{}, calls: map[string]int{}}
		return tb
	})
	clear(tb.total)
	clear(tb.calls)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := tr.Step(i == b.N-1); err != nil {
			b.Fatal(err)
		}
	}
	elapsed := b.Elapsed()
	keys := slices.SortedFunc(maps.Keys(tb.total), func(x, y string) int { return cmp.Compare(tb.total[y], tb.total[x]) })
	var sum time.Duration
	var sb strings.Builder
	for _, k := range keys {
		sum += tb.total[k]
		fmt.Fprintf(&sb, "\n%8.3f ms %5.1f %%  ×%-3d %s", float64(tb.total[k].Microseconds())/1e3/float64(b.N),
			100*float64(tb.total[k])/float64(elapsed), tb.calls[k]/b.N, k)
	}
	b.Logf("backend: %s; one iteration %.2f ms, of which the operations above %.2f ms:%s",
		be.Describe(), float64(elapsed.Microseconds())/1e3/float64(b.N), float64(sum.Microseconds())/1e3/float64(b.N), sb.String())
	b.ReportMetric(float64(elapsed.Microseconds())/1e3/float64(b.N), "ms/iter")
}

// TestFlopCounter pins the count BenchmarkIteration reports to the products of one
// iteration, written out for the paper's nets and the convolutional presets': a
// product the counter missed (an operation it does not wrap) would make every GFLOP/s
// of bench/cpu.sh low.
func TestFlopCounter(t *testing.T) {
	// Multiply-adds per example of the layers' forward products: a dense layer's
	// weights once; a convolution's positions times its (patch × filters) weights; a
	// transposed convolution's input pixels times its (channels × kernel·filters).
	dcganG := []int{100 * 7 * 7 * 128, 7 * 7 * 128 * (4 * 4 * 64), 14 * 14 * 64 * (4 * 4 * 1)}
	dcganD := []int{14 * 14 * (4 * 4 * 1) * 64, 7 * 7 * (4 * 4 * 64) * 128, 7 * 7 * 128}
	// --preset best: a dense layer of 1,024 units in front of G and before D's logit.
	bestG := append([]int{100 * 1024, 1024 * 7 * 7 * 128}, dcganG[1:]...)
	bestD := append(dcganD[:2:2], 7*7*128*1024, 1024)
	for _, tc := range []struct {
		preset string
		batch  int
		g, d   []int // each layer's product, the first one's dx not computed
	}{
		{"paper", 20, []int{100 * 1200, 1200 * 1200, 1200 * 784}, []int{784 * 1200, 240 * 1200, 240}}, // maxout: 240 units of 5 pieces
		{"dcgan-mnist", 8, dcganG, dcganD},
		{"best", 8, bestG, bestD},
	} {
		t.Run(tc.preset, func(t *testing.T) {
			t.Setenv("GANTRAIN_PRESET", tc.preset)
			t.Setenv("GANTRAIN_BATCH", strconv.Itoa(tc.batch))
			t.Setenv("GANTRAIN_BLAS", "go")
			t.Setenv("GANTRAIN_THREADS", "1")
			_, _, got := benchTrainer(t, func(be backend.Backend) backend.Backend { return be })
			m := tc.batch
			g, d := sum(tc.g), sum(tc.d)
			dStep := m*g + 2*m*d + // G's forward, D's on the real and fake halves
				2*m*d + 2*m*(d-tc.d[0]) // D's backward: every dW, dx but for the first layer
			gStep := m*g + m*d + m*d + // G's forward, D's forward and its dx
				m*g + m*(g-tc.g[0]) // G's backward: every dW, dx but for the first layer
			if want := 2 * float64(dStep+gStep); got != want {
				t.Errorf("one iteration at batch %d counts %.0f FLOP; the nets make %.0f", m, got, want)
			}
		})
	}
}

func sum(xs []int) int {
	s := 0
	for _, x := range xs {
		s += x
	}
	return s
}
