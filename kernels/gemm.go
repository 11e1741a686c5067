package kernels

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/gantrain/gantrain/backend"
	"github.com/gantrain/gantrain/rng"
)

// A matrix product C = op(A)·op(B) can run as any of several kernel configurations
// (gemm.cu's pipelined tensor-core and FMA kernels, matmul.cu's first-generation tiled
// kernels) with K split over several blocks or not. Which is fastest depends on the
// device and the shape, so the builders ask the Target's GemmChooser (the GPU
// backend's autotuner times the candidates) and fall back to DefaultGemm, a fixed
// table.

// GemmConfig is one kernel configuration.
type GemmConfig struct {
	Family     string // "tc" or "simt" (gemm.cu), "tiled" (matmul.cu)
	BM, BN, BK int    // the block's tile of C, and the depth of one k-step
	WM, WN     int    // tc: one warp's tile of C
	TM, TN     int    // simt: one thread's tile of C
	Stages     int    // shared-memory pipeline depth (gemm.cu)
	// Swizzle (tc): the m- or n-contiguous operand tiles are swizzled and read 16 bytes
	// at a time, not padded and read 4 bytes at a time (gemm.cu's gt_gemm_tc). Such a
	// configuration serves nn and tn only: an nt product has no such tile.
	Swizzle bool
}

// gemmConfigs are gemm.cu's instantiations (GT_GEMM_TC, GT_GEMM_SIMT), then the tiled
// kernels of matmul.cu. TestGemmConfigsMatchPTX keeps the lists in step.
var gemmConfigs = func() []GemmConfig {
	tc := []GemmConfig{
		{Family: "tc", BM: 256, BN: 128, BK: 32, WM: 64, WN: 64, Stages: 3},
		{Family: "tc", BM: 128, BN: 128, BK: 32, WM: 64, WN: 64, Stages: 3},
		{Family: "tc", BM: 128, BN: 128, BK: 32, WM: 64, WN: 32, Stages: 3},
		{Family: "tc", BM: 128, BN: 64, BK: 32, WM: 64, WN: 32, Stages: 3},
		{Family: "tc", BM: 64, BN: 128, BK: 32, WM: 32, WN: 64, Stages: 3},
		{Family: "tc", BM: 64, BN: 64, BK: 32, WM: 32, WN: 32, Stages: 4},
		{Family: "tc", BM: 32, BN: 64, BK: 32, WM: 32, WN: 32, Stages: 4},
	}
	for _, g := range tc[:len(tc):len(tc)] {
		g.Swizzle = true
		tc = append(tc, g)
	}
	return append(tc,
		GemmConfig{Family: "simt", BM: 128, BN: 128, BK: 16, TM: 8, TN: 8, Stages: 3},
		GemmConfig{Family: "simt", BM: 128, BN: 64, BK: 16, TM: 8, TN: 8, Stages: 3},
		GemmConfig{Family: "simt", BM: 64, BN: 64, BK: 16, TM: 4, TN: 4, Stages: 3},
		GemmConfig{Family: "simt", BM: 32, BN: 64, BK: 16, TM: 4, TN: 4, Stages: 3},
		GemmConfig{Family: "tiled", BM: tileM, BN: tileN, BK: tileK},
		GemmConfig{Family: "dot"},  // one thread per element of C
		GemmConfig{Family: "wdot"}, // one warp per element of C
	)
}()

// gemmNames and gemmByName index gemmConfigs once (they are never written after), so
// that planning a product in every step formats no names.
var gemmNames, gemmByName = func() (map[GemmConfig]string, map[string]GemmConfig) {
	names, byName := map[GemmConfig]string{}, map[string]GemmConfig{}
	for _, g := range gemmConfigs {
		n := g.format()
		names[g], byName[n] = n, g
	}
	return names, byName
}()

// GemmConfigs lists every configuration.
func GemmConfigs() []GemmConfig { return append([]GemmConfig(nil), gemmConfigs...) }

// Name identifies the configuration: tc_128x128x32_w64x32_s3, tc_128x128x32_w64x32_s3_swz,
// simt_64x64x16_t4x4_s3, tiled_64x64x16, dot, wdot.
func (g GemmConfig) Name() string {
	if n, ok := gemmNames[g]; ok {
		return n
	}
	return g.format()
}

func (g GemmConfig) format() string {
	switch g.Family {
	case "tc":
		n := fmt.Sprintf("tc_%dx%dx%d_w%dx%d_s%d", g.BM, g.BN, g.BK, g.WM, g.WN, g.Stages)
		if g.Swizzle {
			n += "_swz"
		}
		return n
	case "simt":
		return fmt.Sprintf("simt_%dx%dx%d_t%dx%d_s%d", g.BM, g.BN, g.BK, g.TM, g.TN, g.Stages)
	case "dot", "wdot":
		return g.Family
	}
	return fmt.Sprintf("%s_%dx%dx%d", g.Family, g.BM, g.BN, g.BK)
}

// Threads is the block size.
func (g GemmConfig) Threads() int {
	switch g.Family {
	case "tc":
		return (g.BM / g.WM) * (g.BN / g.WN) * 32
	case "simt":
		return (g.BM / g.TM) * (g.BN / g.TN)
	case "dot", "wdot":
		return ewThreads
	}
	return 0 // tiled: by precision
}

// tiny reports whether a product is small enough, or thin enough (N or K below 8), for
// the dot and wdot kernels to be candidates.
func (p GemmProblem) tiny() bool { return p.N < 8 || p.K < 8 || p.FLOPs() <= 1<<22 }

// pipelined reports whether the configuration is one of gemm.cu's.
func (g GemmConfig) pipelined() bool { return g.Family == "tc" || g.Family == "simt" }

// serves reports whether the configuration computes in the problem's precision and can
// read its operands.
func (g GemmConfig) serves(p GemmProblem) bool {
	switch g.Family {
	case "tc":
		return p.TF32 && p.Vec4 && (!g.Swizzle || p.Kind != "nt")
	case "simt":
		return !p.TF32 && p.Vec4
	case "dot", "wdot":
		return p.tiny()
	}
	return true
}

// Kinds is the operand layouts the configuration has kernels for.
func (g GemmConfig) Kinds() []string {
	if g.Swizzle {
		return []string{"nn", "tn"}
	}
	return []string{"nn", "tn", "nt"}
}

// kernel is the kernel's name for an operand layout.
func (g GemmConfig) kernel(kind string, tf32 bool) string {
	prec := "f32"
	if tf32 {
		prec = "tf32"
	}
	switch g.Family {
	case "tiled":
		return "matmul_" + prec + "_" + kind
	case "dot", "wdot":
		return "gemm_" + g.Family + "_" + prec + "_" + kind
	}
	name := g.Name()
	fam, rest, _ := strings.Cut(name, "_")
	return "gemm_" + fam + "_" + kind + "_" + rest
}

// SharedBytes is the dynamic shared memory a block of the configuration needs for an
// operand layout: the pipeline's stages, or the tile of C staged for the epilogue if
// that is larger. gemm.cu's gt_gemm_geometry and gt_gemm_epilogue lay it out.
func (g GemmConfig) SharedBytes(kind string) int {
	if !g.pipelined() {
		return 0
	}
	ta, tb := kind == "tn", kind == "nt"
	pad := 8 // an m- or n-contiguous tile's row padding; none where it is swizzled
	if g.Swizzle {
		pad = 0
	}
	a := g.BM * (g.BK + 4) // A stored M×K: BM rows of BK (+4)
	if ta {
		a = g.BK * (g.BM + pad) // K×M: BK rows of BM
	}
	b := g.BK * (g.BN + pad) // B stored K×N
	if tb {
		b = g.BN * (g.BK + 4) // N×K
	}
	return 4 * max(g.Stages*(a+b), g.BM*(g.BN+4))
}

// GemmProblem is a matrix product as a chooser sees it: C (M×N) = op(A)·op(B), with
// the stored row lengths of A and B, the precision, and whether the operands allow
// gemm.cu's 16-byte copies. Its String is the key under which choices are kept.
type GemmProblem struct {
	Kind     string // "nn", "tn" or "nt"
	M, N, K  int
	LDA, LDB int
	TF32     bool
	Vec4     bool
	// Pieces > 1: the product feeds maxout units of that many adjacent columns (and
	// Dropout when Dropout is set), which a fused choice computes in its epilogue.
	Pieces  int
	Dropout bool
	// Conv, when set (InH > 0), makes the problem's A (nn or nt) the columns Im2Col lays
	// out of images (a convolution's forward product, a transposed convolution's input
	// gradient), which an implicit choice reads from the images themselves. ConvVec4 is
	// whether it can: the images 16-byte aligned and their channels a multiple of 4.
	Conv     backend.ConvGeom
	ConvVec4 bool
	// ConvT, when set (InH > 0), makes the problem a transposed convolution's forward
	// product (nn; nt: a convolution's input gradient, B the convolution's weights):
	// C's rows are the columns that Col2Im sums into images of ConvT.InSize(),
	// followed by the bias and activation, which a choice with the col2im in the
	// kernel computes as one product per output phase (gemm.cu's gt_convt). ConvTVec4
	// is whether it can: the images, the input and the weights 16-byte aligned, and the
	// channels of both images a multiple of 4.
	ConvT     backend.ConvGeom
	ConvTVec4 bool
}

func (p GemmProblem) String() string {
	prec, vec, mx := "fp32", "", ""
	if p.TF32 {
		prec = "tf32"
	}
	if p.Vec4 {
		vec = " vec4"
	}
	if p.Pieces > 1 {
		mx = fmt.Sprintf(" maxout%d", p.Pieces)
		if p.Dropout {
			mx += "+dropout"
		}
	}
	if p.Conv.InH > 0 {
		mx += " im2col " + p.Conv.String()
		if p.ConvVec4 {
			mx += " vec4"
		}
	}
	if p.ConvT.InH > 0 {
		mx += " col2im " + p.ConvT.String()
		if p.ConvTVec4 {
			mx += " vec4"
		}
	}
	return fmt.Sprintf("%s %s %dx%dx%d lda=%d ldb=%d%s%s", prec, p.Kind, p.M, p.N, p.K, p.LDA, p.LDB, vec, mx)
}

// plain is p without its maxout: the product an unfused choice computes.
func (p GemmProblem) plain() GemmProblem {
	p.Pieces, p.Dropout = 0, false
	return p
}

// plainProduct is p as a product of stored operands, without a convolution's images.
func (p GemmProblem) plainProduct() GemmProblem {
	p.Conv, p.ConvVec4 = backend.ConvGeom{}, false
	p.ConvT, p.ConvTVec4 = backend.ConvGeom{}, false
	return p
}

// fusedStride is the column stride of g's tiles with p's maxout epilogue: the largest
// multiple of 4 and of p.Pieces within BN, so that no unit straddles two tiles and the
// tiles start 16-byte aligned; 0 where g cannot fuse p's maxout (not gemm.cu's, not
// nn, a width that is not whole units).
func (g GemmConfig) fusedStride(p GemmProblem) int {
	if !g.pipelined() || p.Kind != "nn" || p.Pieces < 2 || p.N%p.Pieces != 0 {
		return 0
	}
	l := p.Pieces
	for l%4 != 0 {
		l += p.Pieces
	}
	return g.BN / l * l
}

// FLOPs is the product's floating-point operation count, 2·M·N·K.
func (p GemmProblem) FLOPs() float64 { return 2 * float64(p.M) * float64(p.N) * float64(p.K) }

// GemmChoice is a configuration (by name), the number of slices K is split into, and,
// for a product that feeds maxout units, whether the maxout (and dropout) is computed
// in the product's epilogue (Fused) or by maxout.cu's kernel after it; for a product
// whose A is the columns of images (GemmProblem.Conv), whether A is read from the
// images by the configuration's _im kernel (Im2Col) or laid out by im2col_nhwc first;
// for a transposed convolution's product (GemmProblem.ConvT), whether the
// configuration's _ct kernel computes the output images (Col2Im) or the columns are
// stored, then summed by col2im_nhwc, then biased by bias_activation.
type GemmChoice struct {
	Config string
	Split  int
	Fused  bool
	Im2Col bool
	Col2Im bool
}

func (c GemmChoice) String() string {
	s := fmt.Sprintf("%s/split%d", c.Config, c.Split)
	if c.Fused {
		s += "/fused"
	}
	if c.Im2Col {
		s += "/im2col"
	}
	if c.Col2Im {
		s += "/col2im"
	}
	return s
}

// ParseGemmChoice is String's inverse.
func ParseGemmChoice(s string) (GemmChoice, error) {
	rest, ci := strings.CutSuffix(s, "/col2im")
	rest, im := strings.CutSuffix(rest, "/im2col")
	rest, fused := strings.CutSuffix(rest, "/fused")
	name, sp, ok := strings.Cut(rest, "/split")
	n, err := strconv.Atoi(sp)
	if !ok || err != nil || n < 1 || strconv.Itoa(n) != sp {
		return GemmChoice{}, fmt.Errorf("kernel choice %q: want CONFIG/splitN, optionally followed by /fused, /im2col or /col2im", s)
	}
	return GemmChoice{Config: name, Split: n, Fused: fused, Im2Col: im, Col2Im: ci}, nil
}

// GemmChooser picks the configuration of a matrix product. build returns the launches
// a choice makes for the product at hand, on its real operands, so that a chooser can
// time them; it must return a choice ValidGemm accepts.
type GemmChooser interface {
	ChooseGemm(p GemmProblem, build func(GemmChoice) []Launch) GemmChoice
}

// Split-K bookkeeping in the workspace: the partial products, then one counter per
// tile of C (gemm.cu's last-block reduction), which the backend zeroes once and every
// kernel leaves zero.
const (
	partialBytes = 32 << 20
	counterWords = 1 << 14
)

// counters is the address of the split-K tile counters in the workspace ws.
func counters(ws uint64) uint64 { return ws + partialBytes }

// CounterRegion is the workspace range [offset, offset+bytes) that must be zero before
// the first launch.
func CounterRegion() (offset, bytes int) { return partialBytes, 4 * counterWords }

func configByName(name string) (GemmConfig, bool) {
	g, ok := gemmByName[name]
	return g, ok
}

// kchunkFor is the depth of each of `split` slices of K for k-steps of bk: a multiple
// of bk, with no empty slice; it returns the split that depth really gives.
func kchunkFor(k, split, bk int) (kchunk, actual int) {
	if k <= 0 {
		return bk, 1
	}
	kchunk = cdiv(cdiv(k, split), bk) * bk
	return kchunk, cdiv(k, kchunk)
}

// ValidGemm reports why choice c cannot compute p on d (nil if it can): a
// configuration that does not exist, does not serve the problem's precision or
// operands, needs more shared memory than the device allows, or a split the workspace
// cannot hold.
func ValidGemm(d Target, p GemmProblem, c GemmChoice) error {
	g, ok := configByName(c.Config)
	switch {
	case !ok:
		return fmt.Errorf("no kernel configuration %q", c.Config)
	case c.Fused && g.fusedStride(p) == 0:
		return fmt.Errorf("%s cannot compute the maxout of %v in its epilogue", c.Config, p)
	case c.Im2Col && !g.implicit(p):
		return fmt.Errorf("%s cannot read the columns of %v from the images", c.Config, p)
	case c.Col2Im && !g.transposedConv(p):
		return fmt.Errorf("%s cannot compute the transposed convolution %v in one kernel", c.Config, p)
	case c.Col2Im && c.Split != 1:
		return fmt.Errorf("%s computes a transposed convolution unsplit, not in %d slices", c.Config, c.Split)
	case c.Col2Im && (cdiv(phaseRows(p.ConvT, p.M), g.BM) > 65535 || p.ConvT.StrideH*p.ConvT.StrideW > 65535):
		return fmt.Errorf("%s: the transposed convolution %v needs more blocks than a grid has", c.Config, p)
	case !g.serves(p):
		return fmt.Errorf("%s cannot compute %v", c.Config, p)
	case d.MaxSharedBytes > 0 && g.SharedBytes(p.Kind) > d.MaxSharedBytes:
		return fmt.Errorf("%s needs %d B of shared memory, the device allows %d", c.Config, g.SharedBytes(p.Kind), d.MaxSharedBytes)
	case c.Split < 1:
		return fmt.Errorf("split %d", c.Split)
	}
	if c.Split == 1 {
		return nil
	}
	if g.BK == 0 {
		return fmt.Errorf("%s does not split K", c.Config)
	}
	if _, actual := kchunkFor(p.K, c.Split, g.BK); actual != c.Split {
		return fmt.Errorf("K=%d cannot be split %d ways in steps of %d", p.K, c.Split, g.BK)
	}
	if c.Split*p.M*p.N*4 > partialBytes {
		return fmt.Errorf("%d partial products of %d×%d exceed the workspace", c.Split, p.M, p.N)
	}
	if tiles := cdiv(p.M, g.BM) * cdiv(p.N, g.strideN(p, c)); g.pipelined() && tiles > counterWords {
		return fmt.Errorf("%d tiles exceed the %d split-K counters", tiles, counterWords)
	}
	return nil
}

// implicit reports whether g has a kernel that reads p's columns from the images (an
// _im kernel): gemm.cu's, nn or nt, no maxout, the images readable in 16-byte copies.
func (g GemmConfig) implicit(p GemmProblem) bool {
	return g.pipelined() && (p.Kind == "nn" || p.Kind == "nt") && p.Pieces < 2 && p.Conv.InH > 0 && p.ConvVec4
}

// transposedConv reports whether g has a kernel that computes p's transposed
// convolution, col2im, bias and activation included (a _ct kernel): gemm.cu's, nn or
// nt, no maxout, the operands readable in 16-byte copies.
func (g GemmConfig) transposedConv(p GemmProblem) bool {
	return g.pipelined() && (p.Kind == "nn" || p.Kind == "nt") && p.Pieces < 2 && p.ConvT.InH > 0 && p.ConvTVec4
}

// strideN is the column stride of g's tiles for choice c of p.
func (g GemmConfig) strideN(p GemmProblem, c GemmChoice) int {
	if c.Fused {
		return g.fusedStride(p)
	}
	return g.BN
}

// GemmCandidates lists the choices an autotuner should time for p: every
// configuration that serves it, each unsplit and split so that the blocks fill the
// device about once, twice and four times; the tiled kernels with their own split
// (splitK), so that a tuned run is never slower than the first-generation kernels.
//
// For a product feeding maxout units, the candidates are those of the plain product
// (the maxout kernel after it, as without fusion: a tuned run is never slower than an
// untuned one) and each of gemm.cu's that can fuse the maxout, fused.
func GemmCandidates(d Target, p GemmProblem) []GemmChoice {
	if p.Pieces > 1 {
		out := GemmCandidates(d, p.plain())
		for _, c := range out[:len(out):len(out)] {
			if f := (GemmChoice{Config: c.Config, Split: c.Split, Fused: true}); ValidGemm(d, p, f) == nil {
				out = append(out, f)
			}
		}
		return out
	}
	if p.ConvT.InH > 0 { // the product, col2im_nhwc and bias_activation, and each of gemm.cu's _ct kernels
		out := GemmCandidates(d, p.plainProduct())
		for _, c := range out[:len(out):len(out)] {
			if ct := (GemmChoice{Config: c.Config, Split: 1, Col2Im: true}); !slices.Contains(out, ct) && ValidGemm(d, p, ct) == nil {
				out = append(out, ct)
			}
		}
		return out
	}
	if p.Conv.InH > 0 { // the product after im2col_nhwc, and each of gemm.cu's reading the images
		out := GemmCandidates(d, p.plainProduct())
		for _, c := range out[:len(out):len(out)] {
			if im := (GemmChoice{Config: c.Config, Split: c.Split, Im2Col: true}); ValidGemm(d, p, im) == nil {
				out = append(out, im)
			}
		}
		return out
	}
	var out []GemmChoice
	seen := map[GemmChoice]bool{}
	add := func(c GemmChoice) {
		if !seen[c] && ValidGemm(d, p, c) == nil {
			seen[c] = true
			out = append(out, c)
		}
	}
	for _, g := range gemmConfigs {
		if !g.serves(p) {
			continue
		}
		switch g.Family {
		case "tiled":
			split, _ := splitK(d, p.M, p.N, p.K)
			add(GemmChoice{Config: g.Name(), Split: split})
			add(GemmChoice{Config: g.Name(), Split: 1}) // no reduction launch: the better for tiny products
			continue
		case "dot", "wdot":
			add(GemmChoice{Config: g.Name(), Split: 1})
			continue
		}
		add(GemmChoice{Config: g.Name(), Split: 1})
		tiles := cdiv(p.M, g.BM) * cdiv(p.N, g.BN)
		for _, waves := range []int{1, 2, 4} {
			if d.SMs == 0 || tiles >= waves*d.SMs {
				continue
			}
			s := min(cdiv(waves*d.SMs, tiles), max(p.K/(2*g.BK), 1), 32)
			_, s = kchunkFor(p.K, s, g.BK)
			add(GemmChoice{Config: g.Name(), Split: s})
		}
	}
	return out
}

// DefaultGemm is the fixed table, used without a chooser (and with --autotune=off),
// never fused, never reading a convolution's images and never summing a transposed
// convolution's columns in the product (the fused epilogue, the implicit im2col and
// the _ct kernels are the autotuner's to choose where they measure faster). It
// follows what the autotuner chose on an H200 for the paper's nets at batch 100, 1024
// and 4096 (docs/PERFORMANCE.md): D's logit layer (N or K below 8) on the dot kernels;
// operands gemm.cu can read on its 128-row tiles when M reaches 2048 rows, else on
// 64×64 tiles (tf32) or 64- and 32-row tiles (fp32), K split so that the blocks about
// fill the device, each slice at least four k-steps deep; the rest on the tiled kernels.
func DefaultGemm(d Target, p GemmProblem) GemmChoice {
	p = p.plain().plainProduct()
	if p.N < 8 || p.K < 8 { // one launch, a warp per output where K is long
		if p.K >= 64 {
			return GemmChoice{Config: "wdot", Split: 1}
		}
		return GemmChoice{Config: "dot", Split: 1}
	}
	var name string
	switch {
	case p.TF32 && p.M >= 2048:
		name = "tc_128x128x32_w64x32_s3"
	case p.TF32:
		name = "tc_64x64x32_w32x32_s4"
	case p.M >= 2048:
		name = "simt_128x64x16_t8x8_s3"
	case p.M >= 512:
		name = "simt_64x64x16_t4x4_s3"
	default:
		name = "simt_32x64x16_t4x4_s3"
	}
	g, _ := configByName(name)
	if !g.serves(p) || (d.MaxSharedBytes > 0 && g.SharedBytes(p.Kind) > d.MaxSharedBytes) {
		split, _ := splitK(d, p.M, p.N, p.K)
		if p.FLOPs() < 1<<21 {
			split = 1 // a product this small gains less from the split than its reduction launch costs
		}
		return GemmChoice{Config: "tiled_64x64x16", Split: split}
	}
	tiles := cdiv(p.M, g.BM) * cdiv(p.N, g.BN)
	s := min(max(cdiv(max(d.SMs, 1), tiles), 1), max(p.K/(4*g.BK), 1), 32)
	_, s = kchunkFor(p.K, s, g.BK)
	c := GemmChoice{Config: name, Split: s}
	if ValidGemm(d, p, c) != nil {
		c.Split = 1
	}
	return c
}

// vec4 reports whether operands at a and b with the given layout can be read in
// 16-byte copies: rows 16-byte aligned and contiguous extents a multiple of 4 floats.
func vec4(kind matmulKind, a, b uint64, m, n, k, lda, ldb int) bool {
	if a%16 != 0 || b%16 != 0 || lda%4 != 0 || ldb%4 != 0 {
		return false
	}
	switch kind {
	case nn: // A M×K, B K×N
		return k%4 == 0 && n%4 == 0
	case tn: // A K×M, B K×N
		return m%4 == 0 && n%4 == 0
	case nt: // A M×K, B N×K
		return k%4 == 0
	}
	return false
}

// maxoutOut is where the maxout after a product (GemmProblem.Pieces > 1) writes: y and
// arg, and the dropout of y (mask, keep, the Philox stream) when mask is not 0.
type maxoutOut struct {
	y, arg, mask uint64
	keep         float32
	s            rng.Stream
}

// launches are the maxout's own kernel on the product z (M×N) of p: maxout_forward,
// or maxout_dropout_forward with a mask.
func (mo *maxoutOut) launches(d Target, p GemmProblem, z uint64) []Launch {
	outputs := p.M * p.N / p.Pieces
	if mo.mask == 0 {
		return MaxoutForward(d, mo.y, mo.arg, z, outputs, p.Pieces)
	}
	return MaxoutDropout(d, mo.y, mo.arg, mo.mask, z, outputs, p.Pieces, mo.keep, mo.s)
}

// epilogueArgs are the maxout epilogue's kernel arguments (gemm.cu's GT_GEMM_ARGS after
// alpha): none (pieces 1) unless c is fused, the tiles nstride columns apart.
func (mo *maxoutOut) epilogueArgs(p GemmProblem, c GemmChoice, nstride int) []Arg {
	if !c.Fused {
		return []Arg{Ptr(0), Ptr(0), i32(1), i32(nstride), Float(0), Float(0), U64(0), U64(0)}
	}
	scale := float32(0)
	if mo.mask != 0 {
		scale = 1 / mo.keep
	}
	return []Arg{Ptr(mo.arg), Ptr(mo.mask), i32(p.Pieces), i32(nstride), Float(mo.keep), Float(scale),
		U64(mo.s.Seed), U64(mo.s.Offset)}
}

// gemmLaunches are the launches of choice c for C (M×N) = op(A)·op(B) (+ bias, act),
// and for a product feeding maxout units (p.Pieces > 1) the maxout into mo: in the
// epilogue when c is fused (C is then not stored), else by its own kernel on C. For a
// convolution's product (p.Conv set) A is the images and cols their columns: laid out
// by im2col_nhwc, then the product, or, when c reads the images (Im2Col), one _im
// kernel that stores cols as it goes.
func gemmLaunches(d Target, p GemmProblem, c GemmChoice, cp, a, b, bias uint64, act backend.Act, ws uint64, mo *maxoutOut, cols uint64) []Launch {
	if p.Pieces > 1 && !c.Fused {
		return append(gemmLaunches(d, p.plain(), c, cp, a, b, bias, act, ws, nil, cols), mo.launches(d, p, cp)...)
	}
	if p.Conv.InH > 0 && !c.Im2Col {
		n := p.M / p.Conv.Positions()
		return append(Im2Col(d, cols, a, n, p.Conv), gemmLaunches(d, p.plainProduct(), c, cp, cols, b, bias, act, ws, mo, 0)...)
	}
	if ct := p.ConvT; ct.InH > 0 {
		n := p.M / ct.Positions()
		if !c.Col2Im {
			ls := gemmLaunches(d, p.plainProduct(), c, cols, a, b, 0, backend.Act{}, ws, nil, 0)
			ls = append(ls, Col2Im(d, cp, cols, n, ct)...)
			if bias == 0 { // a convolution's input gradient: no bias, the identity
				return ls
			}
			return append(ls, BiasActivation(d, cp, bias, n*ct.InH*ct.InW, ct.InC, act)...)
		}
		return transposedConvLaunch(d, p, c, cp, a, b, bias, act, ws, n)
	}
	g, _ := configByName(c.Config)
	kind := matmulKind(p.Kind)
	switch g.Family {
	case "tiled":
		return tiledMatmul(d, kind, cp, a, b, bias, p.M, p.N, p.K, p.LDA, p.LDB, act, c.Split, ws)
	case "dot", "wdot":
		per := ewThreads // outputs per block: a thread each (dot), a warp each (wdot)
		if g.Family == "wdot" {
			per = ewThreads / 32
		}
		args := append([]Arg{Ptr(cp), Ptr(a), Ptr(b), Ptr(bias), Ptr(ws), Ptr(counters(ws)), i32(p.M), i32(p.N), i32(p.K),
			i32(p.LDA), i32(p.LDB), i32(p.K)}, actArgs(act)...)
		args = append(args, mo.epilogueArgs(p, c, 0)...)
		blocks := min(cdiv(max(p.M*p.N, 1), per), 32*max(d.SMs, 1))
		return []Launch{{Kernel: g.kernel(p.Kind, p.TF32), Grid: dim(blocks, 1, 1), Block: dim(ewThreads, 1, 1), Args: args}}
	}
	kchunk, split := kchunkFor(p.K, c.Split, g.BK)
	nstride := g.strideN(p, c)
	kernel := g.kernel(p.Kind, p.TF32)
	if c.Fused {
		cp, kernel = mo.y, kernel+"_mx"
	}
	if c.Im2Col {
		kernel += "_im"
	}
	args := append([]Arg{Ptr(cp), Ptr(a), Ptr(b), Ptr(bias), Ptr(ws), Ptr(counters(ws)), i32(p.M), i32(p.N), i32(p.K),
		i32(p.LDA), i32(p.LDB), i32(kchunk)}, actArgs(act)...)
	args = append(args, mo.epilogueArgs(p, c, nstride)...)
	if c.Im2Col {
		g := p.Conv
		args = append(args, Ptr(cols), i32(g.InH), i32(g.InW), i32(g.InC), i32(g.KW), i32(g.StrideH), i32(g.StrideW),
			i32(g.PadH), i32(g.PadW), i32(g.OutW()), i32(g.Positions()))
	}
	return []Launch{{
		Kernel:      kernel,
		Grid:        dim(cdiv(p.N, nstride), cdiv(p.M, g.BM), split),
		Block:       dim(g.Threads(), 1, 1),
		SharedBytes: uint32(g.SharedBytes(p.Kind)),
		Args:        args,
	}}
}

// phaseRows is the most output pixels of any phase of the transposed convolution of
// g whose product has m rows (gemm.cu's gt_ct_phase).
func phaseRows(g backend.ConvGeom, m int) int {
	return m / g.Positions() * cdiv(g.InH, g.StrideH) * cdiv(g.InW, g.StrideW)
}

// transposedConvLaunch is the _ct kernel of choice c for p's transposed convolution
// of the n inputs a into the images cp (bias 0: none): one block per BM rows × BN
// channels of an output phase, blockIdx.z the phase (gemm.cu's gt_convt).
func transposedConvLaunch(d Target, p GemmProblem, c GemmChoice, cp, a, b, bias uint64, act backend.Act, ws uint64, n int) []Launch {
	g, _ := configByName(c.Config)
	ct := p.ConvT
	args := append([]Arg{Ptr(cp), Ptr(a), Ptr(b), Ptr(bias), Ptr(ws), Ptr(counters(ws)), i32(p.M), i32(ct.InC), i32(p.K),
		i32(p.LDA), i32(p.LDB), i32(p.K)}, actArgs(act)...)
	args = append(args, (*maxoutOut)(nil).epilogueArgs(p, c, g.BN)...)
	args = append(args, i32(n), i32(ct.InH), i32(ct.InW), i32(ct.InC), i32(ct.KH), i32(ct.KW), i32(ct.StrideH), i32(ct.StrideW),
		i32(ct.PadH), i32(ct.PadW), i32(ct.OutH()), i32(ct.OutW()), i32(p.K))
	return []Launch{{
		Kernel:      g.kernel(p.Kind, p.TF32) + "_ct",
		Grid:        dim(cdiv(ct.InC, g.BN), cdiv(phaseRows(ct, p.M), g.BM), ct.StrideH*ct.StrideW),
		Block:       dim(g.Threads(), 1, 1),
		SharedBytes: uint32(g.SharedBytes(p.Kind)),
		Args:        args,
	}}
}
