package tune

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gantrain/gantrain/backend"
	"github.com/gantrain/gantrain/kernels"
	"github.com/gantrain/gantrain/rng"
)

// fakeTimer times a candidate by a table of kernel names and grid depths (the split),
// and records what it was asked.
type fakeTimer struct {
	us     func(l kernels.Launch) (float64, error)
	timed  int
	begins int
	open   int
	begin  error
}

func (f *fakeTimer) Begin() error {
	if f.begin != nil {
		return f.begin
	}
	f.begins++
	f.open++
	return nil
}
func (f *fakeTimer) End() { f.open-- }
func (f *fakeTimer) Time(ls []kernels.Launch) (float64, error) {
	f.timed++
	total := 0.0
	for _, l := range ls {
		us, err := f.us(l)
		if err != nil {
			return 0, err
		}
		total += us
	}
	return total, nil
}

// h100 is the plan device of the tests.
var h100 = kernels.Target{SMs: 132, TF32: true, MaxSharedBytes: 227 << 10}

var paperProduct = kernels.GemmProblem{Kind: "nn", M: 100, N: 1200, K: 1200, LDA: 1200, LDB: 1200, TF32: true, Vec4: true}

// build returns a product's launches as the kernels package plans them (no device:
// only the names and grids matter to the fake timer).
func build(p kernels.GemmProblem) func(kernels.GemmChoice) []kernels.Launch {
	return func(c kernels.GemmChoice) []kernels.Launch {
		d := h100
		d.Gemm = fixed{c}
		return kernels.DenseForward(d, 256, 512, 768, 0, p.M, p.K, p.N, backend.Act{}, 1<<20)
	}
}

type fixed struct{ c kernels.GemmChoice }

func (f fixed) ChooseGemm(kernels.GemmProblem, func(kernels.GemmChoice) []kernels.Launch) kernels.GemmChoice {
	return f.c
}

// fastest makes one configuration with one split the fastest.
func fastest(kernel string, split uint32) func(l kernels.Launch) (float64, error) {
	return func(l kernels.Launch) (float64, error) {
		if strings.Contains(l.Kernel, kernel) && l.Grid[2] == split {
			return 5, nil
		}
		return 10 + float64(len(l.Kernel)%7), nil
	}
}

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

func TestTunerPicksTheFastestAndCachesIt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "autotune.json")
	id := Identity("NVIDIA H200", "9.0", 13000, "ptx")
	cache, err := OpenCache(path, id)
	if err != nil {
		t.Fatal(err)
	}
	ft := &fakeTimer{us: fastest("tc_nn_64x64x32", 4)}
	tu := &Tuner{Device: h100, Timing: true, Timer: ft, Cache: cache, Log: quiet()}
	want := kernels.GemmChoice{Config: "tc_64x64x32_w32x32_s4", Split: 4}
	if got := tu.ChooseGemm(paperProduct, build(paperProduct)); got != want {
		t.Fatalf("chose %v, want %v", got, want)
	}
	n := len(kernels.GemmCandidates(h100, paperProduct))
	if ft.timed != n || ft.begins != 1 || ft.open != 0 {
		t.Fatalf("timed %d of %d candidates, %d begins, %d open", ft.timed, n, ft.begins, ft.open)
	}
	// The same product again: no timing.
	tu.ChooseGemm(paperProduct, build(paperProduct))
	if ft.timed != n {
		t.Fatalf("a second request timed again")
	}
	cs := tu.Choices()
	if len(cs) != 1 || cs[0].Source != FromTimed || cs[0].Micros != 5 || cs[0].Tried != n {
		t.Fatalf("choices %+v", cs)
	}
	// A new tuner on the same file and device uses the cached choice without timing.
	cache2, err := OpenCache(path, id)
	if err != nil {
		t.Fatal(err)
	}
	ft2 := &fakeTimer{us: fastest("simt", 1)}
	tu2 := &Tuner{Device: h100, Timing: true, Timer: ft2, Cache: cache2, Log: quiet()}
	if got := tu2.ChooseGemm(paperProduct, build(paperProduct)); got != want || ft2.timed != 0 {
		t.Fatalf("second run chose %v after %d timings, want %v from the cache", got, ft2.timed, want)
	}
	if s := tu2.Choices()[0].Source; s != FromCache {
		t.Fatalf("source %q", s)
	}
	// Another kernel build (or device, or driver) times afresh, and both are kept.
	cache3, _ := OpenCache(path, Identity("NVIDIA H200", "9.0", 13000, "other ptx"))
	ft3 := &fakeTimer{us: fastest("tc_nn_128x64x32", 1)}
	tu3 := &Tuner{Device: h100, Timing: true, Timer: ft3, Cache: cache3, Log: quiet()}
	if got := tu3.ChooseGemm(paperProduct, build(paperProduct)); got.Config != "tc_128x64x32_w64x32_s3" || ft3.timed == 0 {
		t.Fatalf("other build chose %v after %d timings", got, ft3.timed)
	}
	var f file
	data, _ := os.ReadFile(path)
	if err := json.Unmarshal(data, &f); err != nil || len(f.Devices) != 2 {
		t.Fatalf("cache file has %d devices (%v):\n%s", len(f.Devices), err, data)
	}
}

func TestTunerPresetAndTable(t *testing.T) {
	ft := &fakeTimer{us: fastest("tc_nn_64x64x32", 4)}
	tu := &Tuner{Device: h100, Timing: true, Timer: ft, Log: quiet()}
	preset := kernels.GemmChoice{Config: "tc_128x128x32_w64x32_s3", Split: 1}
	other := kernels.GemmProblem{Kind: "tn", M: 1200, N: 1200, K: 100, LDA: 1200, LDB: 1200, TF32: true, Vec4: true}
	if err := tu.Preset(map[string]string{paperProduct.String(): preset.String(),
		other.String(): "no_such_kernel/split1"}); err != nil {
		t.Fatal(err)
	}
	if got := tu.ChooseGemm(paperProduct, build(paperProduct)); got != preset || ft.timed != 0 {
		t.Fatalf("chose %v after %d timings, want the preset %v", got, ft.timed, preset)
	}
	// A preset this device cannot run is ignored: the product is timed.
	tu.ChooseGemm(other, build(other))
	if ft.timed == 0 || tu.Choices()[1].Source != FromTimed {
		t.Fatalf("an unusable preset was used: %+v", tu.Choices()[1])
	}
	if err := tu.Preset(map[string]string{"x": "garbage"}); err == nil {
		t.Fatal("a malformed preset was accepted")
	}
	m := tu.ChoiceMap()
	if m[paperProduct.String()] != preset.String() || len(m) != 2 {
		t.Fatalf("choice map %v", m)
	}

	// Timing off: the fixed table, no timing.
	ft2 := &fakeTimer{us: fastest("simt", 1)}
	off := &Tuner{Device: h100, Timer: ft2, Log: quiet()}
	if got, want := off.ChooseGemm(paperProduct, build(paperProduct)), kernels.DefaultGemm(h100, paperProduct); got != want || ft2.timed != 0 {
		t.Fatalf("off: chose %v after %d timings, want the table's %v", got, ft2.timed, want)
	}
}

func TestTunerFaultsAndRefusals(t *testing.T) {
	var logBuf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logBuf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	// Candidates the device refuses are skipped; the fastest of the rest wins.
	refuse := func(l kernels.Launch) (float64, error) {
		if strings.Contains(l.Kernel, "128x128") {
			return 0, errors.New("too many resources requested for launch")
		}
		return fastest("tc_nn_128x64x32", 1)(l)
	}
	ft := &fakeTimer{us: refuse}
	tu := &Tuner{Device: h100, Timing: true, Timer: ft, Log: log}
	if got := tu.ChooseGemm(paperProduct, build(paperProduct)); got.Config != "tc_128x64x32_w64x32_s3" {
		t.Fatalf("chose %v", got)
	}
	if !strings.Contains(logBuf.String(), "candidate skipped") {
		t.Fatalf("no log of the skipped candidate:\n%s", logBuf.String())
	}
	// A fault ends the tuning at once: the table's choice, a warning, no more timing.
	calls := 0
	fault := func(l kernels.Launch) (float64, error) {
		calls++
		return 0, fmt.Errorf("%w: illegal address", ErrFault)
	}
	ft2 := &fakeTimer{us: fault}
	tu2 := &Tuner{Device: h100, Timing: true, Timer: ft2, Log: log}
	if got := tu2.ChooseGemm(paperProduct, build(paperProduct)); got != kernels.DefaultGemm(h100, paperProduct) || calls != 1 || ft2.open != 0 {
		t.Fatalf("after a fault: chose %v, %d timings, %d open", got, calls, ft2.open)
	}
	if !strings.Contains(logBuf.String(), "autotune failed") {
		t.Fatalf("no warning:\n%s", logBuf.String())
	}
	// Begin failing (the backend already failed): the table.
	ft3 := &fakeTimer{us: fault, begin: errors.New("backend failed")}
	tu3 := &Tuner{Device: h100, Timing: true, Timer: ft3, Log: log}
	if got := tu3.ChooseGemm(paperProduct, build(paperProduct)); got != kernels.DefaultGemm(h100, paperProduct) {
		t.Fatalf("chose %v", got)
	}
}

func TestCacheFileErrors(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "autotune.json")
	if err := os.WriteFile(path, []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := OpenCache(path, "dev")
	if err == nil || !strings.Contains(err.Error(), "rewritten") {
		t.Fatalf("corrupt file: err %v", err)
	}
	if _, ok := c.Get("k"); ok {
		t.Fatal("entry from a corrupt file")
	}
	if err := c.Put("k", Entry{Choice: kernels.GemmChoice{Config: "tc_64x64x32_w32x32_s4", Split: 2}, Micros: 3}); err != nil {
		t.Fatal(err)
	}
	c2, err := OpenCache(path, "dev")
	if err != nil {
		t.Fatal(err)
	}
	if e, ok := c2.Get("k"); !ok || e.Choice.Split != 2 || e.Micros != 3 {
		t.Fatalf("rewritten file: %+v %v", e, ok)
	}
	// An entry that does not parse (another version's) is dropped, the rest kept.
	data, _ := os.ReadFile(path)
	data = bytes.Replace(data, []byte(`"devices": {`), []byte(`"devices": {"dev2": {"x": {"kernel": "?", "us": 1}},`), 1)
	os.WriteFile(path, data, 0o644)
	c3, err := OpenCache(path, "dev2")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := c3.Get("x"); ok {
		t.Fatal("an unparsable entry was kept")
	}
	// A directory where the file should be: reported, not fatal.
	if _, err := OpenCache(dir, "dev"); err == nil {
		t.Fatal("reading a directory gave no error")
	}
	var nilCache *Cache
	if err := nilCache.Put("k", Entry{}); err != nil {
		t.Fatal(err)
	}
}

// TestTunerMaxoutEpilogue: for a product feeding maxout units, the tuner times the
// fused candidates (one launch) beside the unfused ones (the product, then the maxout
// kernel, timed together), keeps whichever is faster, and the cache gives a fused
// choice back as fused.
func TestTunerMaxoutEpilogue(t *testing.T) {
	p := paperProduct
	p.Pieces, p.Dropout = 5, true
	buildMaxout := func(c kernels.GemmChoice) []kernels.Launch {
		d := h100
		d.Gemm = fixed{c}
		return kernels.DenseMaxout(d, 1<<10, 2<<10, 3<<10, 4<<10, 256, 512, 768, p.M, p.K, p.N/p.Pieces, p.Pieces, 0.5,
			rng.Stream{}, 1<<20)
	}
	// The maxout epilogue makes the product's kernel slower than the plain product but
	// saves the maxout kernel's launch: here by less (the fused one wins) or more.
	for _, tc := range []struct {
		name          string
		epilogueCost  float64
		wantFused     bool
		wantLaunchLen int
	}{{"fused faster", 2, true, 1}, {"unfused faster", 8, false, 2}} {
		t.Run(tc.name, func(t *testing.T) {
			ft := &fakeTimer{us: func(l kernels.Launch) (float64, error) {
				switch {
				case strings.HasPrefix(l.Kernel, "maxout_"):
					return 5, nil
				case !strings.Contains(l.Kernel, "tc_nn_64x64x32") || l.Grid[2] != 4:
					return 50, nil
				case strings.HasSuffix(l.Kernel, "_mx"): // the kernel with the maxout epilogue
					return 10 + tc.epilogueCost, nil
				}
				return 10, nil
			}}
			cache, err := OpenCache(filepath.Join(t.TempDir(), "autotune.json"), Identity("NVIDIA H100", "9.0", 13000, "ptx"))
			if err != nil {
				t.Fatal(err)
			}
			tu := &Tuner{Device: h100, Timing: true, Timer: ft, Cache: cache, Log: quiet()}
			got := tu.ChooseGemm(p, buildMaxout)
			want := kernels.GemmChoice{Config: "tc_64x64x32_w32x32_s4", Split: 4, Fused: tc.wantFused}
			if got != want {
				t.Fatalf("chose %v, want %v", got, want)
			}
			if n := len(buildMaxout(got)); n != tc.wantLaunchLen {
				t.Fatalf("%v: %d launches, want %d", got, n, tc.wantLaunchLen)
			}
			tu2 := &Tuner{Device: h100, Timing: true, Timer: &fakeTimer{us: fastest("simt", 1)}, Cache: cache, Log: quiet()}
			if again := tu2.ChooseGemm(p, buildMaxout); again != want {
				t.Fatalf("from the cache: %v, want %v", again, want)
			}
		})
	}
}
