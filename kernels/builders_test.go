package kernels

import (
	"strings"
	"testing"

	"github.com/gantrain/gantrain/backend"
)

// Every plan has grids and blocks a device accepts, and split-K slices that cover K
// exactly once with partials that fit in the workspace.
func TestPlansWithinLimits(t *testing.T) {
	for _, d := range []Target{{}, {SMs: 1}, {SMs: 132}, {SMs: 132, TF32: true}, {SMs: 10000}} {
		for _, s := range [][3]int{{1, 1, 1}, {100, 784, 1200}, {100, 1200, 1}, {4096, 1200, 1200}, {37, 53, 29}, {200000, 784, 240}, {3, 100000, 5}} {
			n, in, out := s[0], s[1], s[2]
			act := backend.Act{Kind: backend.ReLU}
			ls := append(DenseForward(d, 1, 2, 3, 4, n, in, out, act, 5), DenseBackward(d, 6, 7, 8, 9, 2, 1, 3, n, in, out, act, 5)...)
			ls = append(ls, ClipColumnNorms(d, 3, in, out, 1, 5)...)
			for _, l := range ls {
				threads := l.Block[0] * l.Block[1] * l.Block[2]
				if threads == 0 || threads > 1024 || threads%32 != 0 || l.Grid[0] == 0 || l.Grid[1] == 0 || l.Grid[2] == 0 ||
					l.Grid[1] > 65535 || l.Grid[2] > 65535 {
					t.Errorf("%+v %v: %v has a bad geometry", d, s, l)
				}
				if strings.HasPrefix(l.Kernel, "matmul_") && !strings.Contains(l.Kernel, "reduce") {
					m, nn, k, kchunk := int(int32(l.Args[4].Bits)), int(int32(l.Args[5].Bits)), int(int32(l.Args[6].Bits)), int(int32(l.Args[9].Bits))
					split := int(l.Grid[2])
					if kchunk%tileK != 0 || (split-1)*kchunk >= k || split*kchunk < k {
						t.Errorf("%+v %v: %v: split %d × %d does not cover K = %d in non-empty slices", d, s, l.Kernel, split, kchunk, k)
					}
					if split > 1 && split*m*nn*4 > WorkspaceBytes(d) {
						t.Errorf("%+v %v: %v: %d partials of %d×%d exceed the workspace", d, s, l.Kernel, split, m, nn)
					}
				}
				if l.Kernel == "column_sumsq_partial" && int(l.Grid[1])*out*8 > WorkspaceBytes(d) {
					t.Errorf("%+v %v: column partials exceed the workspace", d, s)
				}
			}
		}
	}
}

// A batch-100 layer on an H100 is split so that the device is busy.
func TestSmallLayerFillsDevice(t *testing.T) {
	d := Target{SMs: 132}
	ls := DenseForward(d, 1, 2, 3, 4, 100, 1200, 1200, backend.Act{}, 5)
	g := ls[0].Grid
	if blocks := g[0] * g[1] * g[2]; blocks < 132 || len(ls) != 2 {
		t.Errorf("100×1200×1200 on 132 SMs: %d blocks in %d launches, want ≥ 132 blocks and a split-K reduce", blocks, len(ls))
	}
}

func TestPTX(t *testing.T) {
	for _, c := range []struct {
		major, minor int
		target       string
	}{{8, 0, "sm_80"}, {8, 9, "sm_80"}, {9, 0, "sm_90"}, {12, 0, "sm_90"}} {
		p, err := PTX(c.major, c.minor)
		if err != nil || !strings.Contains(p, ".target "+c.target) {
			t.Errorf("PTX(%d, %d): target %s wanted, err %v", c.major, c.minor, c.target, err)
		}
	}
	if _, err := PTX(7, 5); err == nil || !strings.Contains(err.Error(), "needs compute capability 8.0 or newer (Ampere)") {
		t.Errorf("PTX(7, 5) = %v", err)
	}
}

func TestGemmChoiceRoundTrip(t *testing.T) {
	for _, c := range []GemmChoice{{Config: "tc_64x64x32_w32x32_s4", Split: 4}, {Config: "simt_32x64x16_t4x4_s3", Split: 1, Fused: true},
		{Config: "tc_64x64x32_w32x32_s4_swz", Split: 3, Im2Col: true}, {Config: "simt_32x64x16_t4x4_s3", Split: 1, Col2Im: true}} {
		got, err := ParseGemmChoice(c.String())
		if err != nil || got != c {
			t.Errorf("ParseGemmChoice(%q) = %v, %v", c.String(), got, err)
		}
	}
	for _, bad := range []string{"tc", "tc/split0", "tc/fused", "tc/split2/fused/fused", "tc/splitx", "tc/split2/im2col/im2col", "tc/split02", "tc/split1/col2im/im2col"} {
		if _, err := ParseGemmChoice(bad); err == nil {
			t.Errorf("ParseGemmChoice(%q): no error", bad)
		}
	}
}

// validCase is a choice for a problem made from a base one, and whether it is valid.
type validCase struct {
	p  func(GemmProblem) GemmProblem
	c  GemmChoice
	ok bool
}

// checkValidGemm checks ValidGemm's answer for each case made from base.
func checkValidGemm(t *testing.T, d Target, base GemmProblem, cases []validCase) {
	t.Helper()
	for _, tc := range cases {
		p := tc.p(base)
		if err := ValidGemm(d, p, tc.c); (err == nil) != tc.ok {
			t.Errorf("ValidGemm(%v, %v) = %v", p, tc.c, err)
		}
	}
}

// TestImplicitIm2Col: only a convolution's forward product whose images allow 16-byte
// copies may read them (gemm.cu's configurations, unfused), and the fixed table never
// does.
func TestImplicitIm2Col(t *testing.T) {
	d := Target{SMs: 132, TF32: true}
	g := backend.ConvGeom{InH: 14, InW: 14, InC: 64, KH: 4, KW: 4, StrideH: 2, StrideW: 2, PadH: 1, PadW: 1}
	conv := GemmProblem{Kind: "nn", M: 64 * 49, N: 128, K: 1024, LDA: 1024, LDB: 128, TF32: true, Vec4: true, Conv: g, ConvVec4: true}
	im := func(name string) GemmChoice { return GemmChoice{Config: name, Split: 1, Im2Col: true} }
	checkValidGemm(t, d, conv, []validCase{
		{func(p GemmProblem) GemmProblem { return p }, im("tc_64x64x32_w32x32_s4"), true},
		{func(p GemmProblem) GemmProblem { return p }, im("tc_64x64x32_w32x32_s4_swz"), true},
		{func(p GemmProblem) GemmProblem { p.TF32 = false; return p }, im("simt_64x64x16_t4x4_s3"), true},
		{func(p GemmProblem) GemmProblem { return p }, GemmChoice{Config: "tc_64x64x32_w32x32_s4", Split: 4, Im2Col: true}, true},
		{func(p GemmProblem) GemmProblem { return p }, GemmChoice{Config: "tc_64x64x32_w32x32_s4", Split: 1}, true},
		{func(p GemmProblem) GemmProblem { return p }, im("tiled_64x64x16"), false},
		{func(p GemmProblem) GemmProblem { p.ConvVec4 = false; return p }, im("tc_64x64x32_w32x32_s4"), false},
		{func(p GemmProblem) GemmProblem { return p.plainProduct() }, im("tc_64x64x32_w32x32_s4"), false},
		{func(p GemmProblem) GemmProblem { p.Kind = "tn"; return p }, im("tc_64x64x32_w32x32_s4"), false},
		{func(p GemmProblem) GemmProblem { p.Kind = "nt"; return p }, im("tc_64x64x32_w32x32_s4"), true},
		{func(p GemmProblem) GemmProblem { p.Kind = "nt"; return p }, im("tc_64x64x32_w32x32_s4_swz"), false},
	})
	if c := DefaultGemm(d, conv); c.Im2Col {
		t.Errorf("DefaultGemm(%v) = %v", conv, c)
	}
	cands := GemmCandidates(d, conv)
	plain := GemmCandidates(d, conv.plainProduct())
	implicit := 0
	for _, c := range cands {
		if c.Im2Col {
			implicit++
			if err := ValidGemm(d, conv, c); err != nil {
				t.Errorf("candidate %v: %v", c, err)
			}
		}
	}
	if implicit == 0 || len(cands) != len(plain)+implicit {
		t.Errorf("%d candidates, %d implicit, %d of the plain product", len(cands), implicit, len(plain))
	}
	if !strings.Contains(conv.String(), "im2col 14×14×64 k4×4 s2×2 p1×1 vec4") {
		t.Errorf("problem key %q does not name the convolution", conv.String())
	}
}

// TestTransposedConvChoice: only a transposed convolution's product (nn, or nt for a
// convolution's input gradient) whose operands allow 16-byte copies may run as a _ct
// kernel (gemm.cu's configurations, unsplit),
// the fixed table never does, and the grid's rows are the largest phase's.
func TestTransposedConvChoice(t *testing.T) {
	d := Target{SMs: 132, TF32: true}
	g := backend.ConvGeom{InH: 14, InW: 14, InC: 64, KH: 4, KW: 4, StrideH: 2, StrideW: 2, PadH: 1, PadW: 1}
	convT := GemmProblem{Kind: "nn", M: 64 * 49, N: 1024, K: 128, LDA: 128, LDB: 1024, TF32: true, Vec4: true, ConvT: g, ConvTVec4: true}
	ct := func(name string) GemmChoice { return GemmChoice{Config: name, Split: 1, Col2Im: true} }
	checkValidGemm(t, d, convT, []validCase{
		{func(p GemmProblem) GemmProblem { return p }, ct("tc_64x64x32_w32x32_s4"), true},
		{func(p GemmProblem) GemmProblem { return p }, ct("tc_64x64x32_w32x32_s4_swz"), true},
		{func(p GemmProblem) GemmProblem { p.TF32 = false; return p }, ct("simt_64x64x16_t4x4_s3"), true},
		{func(p GemmProblem) GemmProblem { return p }, GemmChoice{Config: "tc_64x64x32_w32x32_s4", Split: 2, Col2Im: true}, false},
		{func(p GemmProblem) GemmProblem { return p }, ct("tiled_64x64x16"), false},
		{func(p GemmProblem) GemmProblem { return p }, ct("dot"), false},
		{func(p GemmProblem) GemmProblem { p.ConvTVec4 = false; return p }, ct("tc_64x64x32_w32x32_s4"), false},
		{func(p GemmProblem) GemmProblem { return p.plainProduct() }, ct("tc_64x64x32_w32x32_s4"), false},
		{func(p GemmProblem) GemmProblem { p.Kind = "nt"; return p }, ct("tc_64x64x32_w32x32_s4"), true}, // a convolution's input gradient
		{func(p GemmProblem) GemmProblem { p.Kind = "nt"; return p }, ct("tc_64x64x32_w32x32_s4_swz"), false},
		{func(p GemmProblem) GemmProblem { p.Kind = "tn"; return p }, ct("tc_64x64x32_w32x32_s4"), false},
		{func(p GemmProblem) GemmProblem { p.M = 1 << 24; return p }, ct("tc_32x64x32_w32x32_s4"), false}, // 65,536 row blocks
	})
	if c := DefaultGemm(d, convT); c.Col2Im {
		t.Errorf("DefaultGemm(%v) = %v", convT, c)
	}
	cands, plain := GemmCandidates(d, convT), GemmCandidates(d, convT.plainProduct())
	var kernels []string
	for _, c := range cands {
		if c.Col2Im {
			if err := ValidGemm(d, convT, c); err != nil {
				t.Errorf("candidate %v: %v", c, err)
			}
			kernels = append(kernels, c.Config)
		}
	}
	if len(kernels) != 14 || len(cands) != len(plain)+len(kernels) { // every tc configuration, plain and swizzled, once
		t.Errorf("%d candidates, _ct kernels of %v, %d of the plain product", len(cands), kernels, len(plain))
	}
	if !strings.Contains(convT.String(), "col2im 14×14×64 k4×4 s2×2 p1×1 vec4") {
		t.Errorf("problem key %q does not name the transposed convolution", convT.String())
	}
	// 64 images of 14×14 in 4 phases of 7×7 pixels each; a grid of 4 phases.
	ls := transposedConvLaunch(d, convT, ct("tc_64x64x32_w32x32_s4"), 16, 32, 48, 64, backend.Act{}, 128, 64)
	if len(ls) != 1 || ls[0].Kernel != "gemm_tc_nn_64x64x32_w32x32_s4_ct" || ls[0].Grid != dim(1, 49, 4) {
		t.Errorf("launch %+v", ls)
	}
}

// TestFusedStride: the maxout epilogue's tiles step by whole units and 16-byte chunks,
// and only gemm.cu's nn products of whole units fuse.
func TestFusedStride(t *testing.T) {
	simt, _ := configByName("simt_128x64x16_t8x8_s3")
	tiled, _ := configByName("tiled_64x64x16")
	p := GemmProblem{Kind: "nn", M: 100, N: 1200, K: 240, Pieces: 5}
	for _, tc := range []struct {
		g      GemmConfig
		p      func(GemmProblem) GemmProblem
		stride int
	}{
		{simt, func(p GemmProblem) GemmProblem { return p }, 60},
		{simt, func(p GemmProblem) GemmProblem { p.Pieces, p.N = 2, 1000; return p }, 64},
		{simt, func(p GemmProblem) GemmProblem { p.Pieces, p.N = 3, 1200; return p }, 60},
		{simt, func(p GemmProblem) GemmProblem { p.N = 1201; return p }, 0},
		{simt, func(p GemmProblem) GemmProblem { p.Kind = "tn"; return p }, 0},
		{simt, func(p GemmProblem) GemmProblem { p.Pieces = 1; return p }, 0},
		{tiled, func(p GemmProblem) GemmProblem { return p }, 0},
	} {
		q := tc.p(p)
		if got := tc.g.fusedStride(q); got != tc.stride {
			t.Errorf("%s on %v: stride %d, want %d", tc.g.Name(), q, got, tc.stride)
		}
	}
}
