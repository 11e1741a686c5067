package backend

import "fmt"

// Images are stored one per row, NHWC: a tensor of n images of H×W×C is n×(H·W·C),
// row-major, channels interleaved (the data package's layout). A convolution is then
// a matrix product: Im2Col lays out each output position's receptive field as a row,
// and the rows times a (KH·KW·C)×F weight matrix give an (n·OutH·OutW)×F matrix that
// is the NHWC output itself. So a convolution reuses DenseForward and DenseBackward
// with their fused bias and activation, on every backend, and per-channel operations
// (bias, batch normalisation, maxout over channels) act on the (n·H·W)×C view.

// ConvGeom is the geometry of a 2-D convolution over NHWC images: an InH×InW×InC
// input, a KH×KW kernel moved by StrideH, StrideW, with PadH rows and PadW columns of
// zeros on each side. A transposed convolution is described by the geometry of the
// convolution it transposes: its input has the convolution's output size and its
// output the convolution's input size.
type ConvGeom struct {
	InH, InW, InC    int
	KH, KW           int
	StrideH, StrideW int
	PadH, PadW       int
}

// OutH is the number of output rows: (InH + 2·PadH − KH)/StrideH + 1.
func (g ConvGeom) OutH() int { return (g.InH+2*g.PadH-g.KH)/g.StrideH + 1 }

// OutW is the number of output columns: (InW + 2·PadW − KW)/StrideW + 1.
func (g ConvGeom) OutW() int { return (g.InW+2*g.PadW-g.KW)/g.StrideW + 1 }

// InSize is the number of values in one input image, InH·InW·InC.
func (g ConvGeom) InSize() int { return g.InH * g.InW * g.InC }

// Patch is the width of one receptive field, KH·KW·InC: a column row's width.
func (g ConvGeom) Patch() int { return g.KH * g.KW * g.InC }

// Positions is the number of output positions of one image, OutH·OutW.
func (g ConvGeom) Positions() int { return g.OutH() * g.OutW() }

// Valid reports whether g describes a convolution: every size positive, padding
// smaller than the kernel, the kernel fitting the padded input, and every size small
// enough that no index overflows an int32 (the device kernels' index type).
func (g ConvGeom) Valid() error {
	const most = 1 << 15
	for _, v := range []int{g.InH, g.InW, g.InC, g.KH, g.KW, g.StrideH, g.StrideW} {
		if v <= 0 || v > most {
			return fmt.Errorf("convolution %v: sizes, kernel and stride must be in 1..%d", g, most)
		}
	}
	if g.PadH < 0 || g.PadW < 0 || g.PadH >= g.KH || g.PadW >= g.KW {
		return fmt.Errorf("convolution %v: padding must be in 0..kernel−1", g)
	}
	if g.InH+2*g.PadH < g.KH || g.InW+2*g.PadW < g.KW {
		return fmt.Errorf("convolution %v: the %d×%d kernel is larger than the padded %d×%d input", g, g.KH, g.KW, g.InH+2*g.PadH, g.InW+2*g.PadW)
	}
	if int64(g.InSize()) >= 1<<31 || int64(g.Patch())*int64(g.Positions()) >= 1<<31 {
		return fmt.Errorf("convolution %v: too large", g)
	}
	return nil
}

func (g ConvGeom) String() string {
	return fmt.Sprintf("%d×%d×%d k%d×%d s%d×%d p%d×%d", g.InH, g.InW, g.InC, g.KH, g.KW, g.StrideH, g.StrideW, g.PadH, g.PadW)
}

// CheckIm2Col is the rule of Backend.Im2Col.
func CheckIm2Col(cols, x Tensor, g ConvGeom) error {
	if err := g.Valid(); err != nil {
		return shapeErr("Im2Col", "%v", err)
	}
	n := x.Rows()
	if n > 0 && x.Cols() == g.InSize() && cols.Rows() == n*g.Positions() && cols.Cols() == g.Patch() {
		return nil
	}
	return shapeErr("Im2Col", "cols %s, x %s, geometry %v (want x n×%d, cols n·%d×%d)", cols, x, g, g.InSize(), g.Positions(), g.Patch())
}

// CheckCol2Im is the rule of Backend.Col2Im.
func CheckCol2Im(x, cols Tensor, g ConvGeom) error {
	if err := g.Valid(); err != nil {
		return shapeErr("Col2Im", "%v", err)
	}
	n := x.Rows()
	if n > 0 && x.Cols() == g.InSize() && cols.Rows() == n*g.Positions() && cols.Cols() == g.Patch() {
		return nil
	}
	return shapeErr("Col2Im", "x %s, cols %s, geometry %v (want x n×%d, cols n·%d×%d)", x, cols, g, g.InSize(), g.Positions(), g.Patch())
}

// CheckConvForward is the rule of Backend.ConvForward: Im2Col's and DenseForward's.
func CheckConvForward(y, cols, x, w, b Tensor, g ConvGeom) error {
	if err := g.Valid(); err != nil {
		return shapeErr("ConvForward", "%v", err)
	}
	n := x.Rows()
	if n > 0 && x.Cols() == g.InSize() && cols.Rows() == n*g.Positions() && cols.Cols() == g.Patch() &&
		w.Rows() == g.Patch() && w.Cols() > 0 && Len(b) == w.Cols() && y.Rows() == cols.Rows() && y.Cols() == w.Cols() {
		return nil
	}
	return shapeErr("ConvForward", "y %s, cols %s, x %s, w %s, b %s, geometry %v (want x n×%d, cols n·%d×%d, w %d×F, b 1×F, y n·%d×F)",
		y, cols, x, w, b, g, g.InSize(), g.Positions(), g.Patch(), g.Patch(), g.Positions())
}

// CheckConvBackward is the rule of Backend.ConvBackward; dx, dw, db and, without dx,
// dcols may be nil.
func CheckConvBackward(dx, dw, db, dcols, dy, cols, y, w Tensor, g ConvGeom) error {
	if err := g.Valid(); err != nil {
		return shapeErr("ConvBackward", "%v", err)
	}
	rows, out := cols.Rows(), w.Cols()
	if !(rows > 0 && rows%g.Positions() == 0 && cols.Cols() == g.Patch() && w.Rows() == g.Patch() && out > 0 &&
		y.Rows() == rows && y.Cols() == out && same(dy, y)) {
		return shapeErr("ConvBackward", "dy %s, cols %s, y %s, w %s, geometry %v (want cols n·%d×%d, w %d×F, y and dy n·%d×F)",
			dy, cols, y, w, g, g.Positions(), g.Patch(), g.Patch(), g.Positions())
	}
	if dw != nil && !same(dw, w) {
		return shapeErr("ConvBackward", "dw %s, w %s", dw, w)
	}
	if db != nil && Len(db) != out {
		return shapeErr("ConvBackward", "db %s, %d filters", db, out)
	}
	if dx != nil && (dcols == nil || !same(dcols, cols) || dx.Rows()*g.Positions() != rows || dx.Cols() != g.InSize()) {
		return shapeErr("ConvBackward", "dx %s, dcols %s, cols %s (want dx n×%d, dcols as cols)", dx, dcols, cols, g.InSize())
	}
	return nil
}

// CheckConvTransposeBackward is the rule of Backend.ConvTransposeBackward; dx and dw
// may be nil.
func CheckConvTransposeBackward(dx, dw, cols, dy, x, w Tensor, g ConvGeom) error {
	if err := g.Valid(); err != nil {
		return shapeErr("ConvTransposeBackward", "%v", err)
	}
	n := dy.Rows()
	rows, c := n*g.Positions(), w.Rows()
	if n > 0 && dy.Cols() == g.InSize() && cols.Rows() == rows && cols.Cols() == g.Patch() && c > 0 && w.Cols() == g.Patch() &&
		x.Rows() == rows && x.Cols() == c && (dx == nil || same(dx, x)) && (dw == nil || same(dw, w)) {
		return nil
	}
	return shapeErr("ConvTransposeBackward", "dx %s, dw %s, cols %s, dy %s, x %s, w %s, geometry %v (want dy n×%d, cols n·%d×%d, x n·%d×C, w C×%d, dx as x, dw as w)",
		dx, dw, cols, dy, x, w, g, g.InSize(), g.Positions(), g.Patch(), g.Positions(), g.Patch())
}

// CheckConvTransposeForward is the rule of Backend.ConvTransposeForward.
func CheckConvTransposeForward(y, cols, x, w, b Tensor, g ConvGeom) error {
	if err := g.Valid(); err != nil {
		return shapeErr("ConvTransposeForward", "%v", err)
	}
	n := y.Rows()
	rows, c := n*g.Positions(), w.Rows()
	if n > 0 && y.Cols() == g.InSize() && cols.Rows() == rows && cols.Cols() == g.Patch() && c > 0 && w.Cols() == g.Patch() &&
		x.Rows() == rows && x.Cols() == c && Len(b) == g.InC {
		return nil
	}
	return shapeErr("ConvTransposeForward", "y %s, cols %s, x %s, w %s, b %s, geometry %v (want y n×%d, cols n·%d×%d, x n·%d×C, w C×%d, b 1×%d)",
		y, cols, x, w, b, g, g.InSize(), g.Positions(), g.Patch(), g.Positions(), g.Patch(), g.InC)
}

// CheckBiasActivation is the rule of Backend.BiasActivation.
func CheckBiasActivation(y, b Tensor) error {
	if Len(y) > 0 && y.Cols() > 0 && Len(b) == y.Cols() {
		return nil
	}
	return shapeErr("BiasActivation", "y %s, b %s", y, b)
}

// CheckBiasActivationBackward is the rule of Backend.BiasActivationBackward; db may be nil.
func CheckBiasActivationBackward(db, dy, y Tensor) error {
	if Len(y) > 0 && same(dy, y) && (db == nil || Len(db) == y.Cols()) {
		return nil
	}
	return shapeErr("BiasActivationBackward", "db %s, dy %s, y %s", db, dy, y)
}

// CheckBatchNorm is the rule of Backend.BatchNorm; runMean and runVar may be nil
// together.
func CheckBatchNorm(y, mean, variance, x, gamma, beta, runMean, runVar Tensor, groups int, eps, momentum float32) error {
	c := x.Cols()
	ok := x.Rows() > 0 && c > 0 && groups > 0 && x.Rows()%groups == 0 && same(y, x) && Len(mean) == groups*c && Len(variance) == groups*c &&
		Len(gamma) == c && Len(beta) == c && eps > 0 && momentum >= 0 && momentum <= 1 &&
		(runMean == nil) == (runVar == nil) && (runMean == nil || Len(runMean) == c && Len(runVar) == c)
	if ok {
		return nil
	}
	return shapeErr("BatchNorm", "y %s, mean %s, variance %s, x %s, gamma %s, beta %s, running %s and %s, %d groups, eps %g, momentum %g",
		y, mean, variance, x, gamma, beta, runMean, runVar, groups, eps, momentum)
}

// CheckBatchNormInfer is the rule of Backend.BatchNormInfer.
func CheckBatchNormInfer(y, x, gamma, beta, runMean, runVar Tensor, eps float32) error {
	c := x.Cols()
	if x.Rows() > 0 && c > 0 && same(y, x) && Len(gamma) == c && Len(beta) == c && Len(runMean) == c && Len(runVar) == c && eps > 0 {
		return nil
	}
	return shapeErr("BatchNormInfer", "y %s, x %s, gamma %s, beta %s, running %s and %s, eps %g", y, x, gamma, beta, runMean, runVar, eps)
}

// CheckBatchNormBackward is the rule of Backend.BatchNormBackward; dx, dgamma and
// dbeta may be nil.
func CheckBatchNormBackward(dx, dgamma, dbeta, dy, x, y, gamma, mean, variance Tensor, groups int, eps float32) error {
	c := x.Cols()
	ok := x.Rows() > 0 && c > 0 && groups > 0 && x.Rows()%groups == 0 && same(dy, x) && same(y, x) && Len(gamma) == c &&
		Len(mean) == groups*c && Len(variance) == groups*c && eps > 0 && (dx == nil || same(dx, x)) &&
		(dgamma == nil || Len(dgamma) == c) && (dbeta == nil || Len(dbeta) == c)
	if ok {
		return nil
	}
	return shapeErr("BatchNormBackward", "dx %s, dgamma %s, dbeta %s, dy %s, x %s, y %s, gamma %s, mean %s, variance %s, %d groups, eps %g",
		dx, dgamma, dbeta, dy, x, y, gamma, mean, variance, groups, eps)
}
