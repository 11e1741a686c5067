package cpu

import (
	"errors"

	"github.com/gantrain/gantrain/backend"
)

// Placeholders while the convolution operations are built; each records an error.
var errConvPending = errors.New("convolution operations are not built yet")

func (b *Backend) Im2Col(cols, x backend.Tensor, g backend.ConvGeom)      { b.fail(errConvPending) }
func (b *Backend) Col2Im(x, cols backend.Tensor, g backend.ConvGeom)      { b.fail(errConvPending) }
func (b *Backend) BiasActivation(y, bias backend.Tensor, act backend.Act) { b.fail(errConvPending) }
func (b *Backend) BiasActivationBackward(db, dy, y backend.Tensor, act backend.Act) {
	b.fail(errConvPending)
}
func (b *Backend) BatchNorm(y, mean, variance, x, gamma, beta, runMean, runVar backend.Tensor, groups int, eps, momentum float32, act backend.Act) {
	b.fail(errConvPending)
}
func (b *Backend) BatchNormInfer(y, x, gamma, beta, runMean, runVar backend.Tensor, eps float32, act backend.Act) {
	b.fail(errConvPending)
}
func (b *Backend) BatchNormBackward(dx, dgamma, dbeta, dy, x, y, gamma, mean, variance backend.Tensor, groups int, eps float32, act backend.Act) {
	b.fail(errConvPending)
}
