package vec

import "math"

// The portable forms. The vector forms must match them bit for bit.

func addGo(dst, src []float32) {
	src = src[:len(dst)]
	for i, v := range src {
		dst[i] += v
	}
}

func biasReLUGo(z, bias []float32) {
	bias = bias[:len(z)]
	for i, v := range z {
		z[i] = max(v+bias[i], 0)
	}
}

func biasLeakyReLUGo(z, bias []float32, alpha float32) {
	bias = bias[:len(z)]
	for i, v := range z {
		v += bias[i]
		z[i] = Pick(v < 0, float32(v*alpha), v)
	}
}

func gradReLUGo(dy, y []float32) {
	y = y[:len(dy)]
	for i, v := range y {
		dy[i] = Pick(v <= 0, 0, dy[i])
	}
}

func gradLeakyReLUGo(dy, y []float32, alpha float32) {
	y = y[:len(dy)]
	for i, v := range y {
		dy[i] = Pick(v < 0, float32(dy[i]*alpha), dy[i])
	}
}

func gradSigmoidGo(dy, y []float32) {
	y = y[:len(dy)]
	for i, v := range y {
		dy[i] *= float32(v * (1 - v))
	}
}

func gradTanhGo(dy, y []float32) {
	y = y[:len(dy)]
	for i, v := range y {
		dy[i] *= 1 - float32(v*v)
	}
}

func accF64Go(acc []float64, x []float32) {
	x = x[:len(acc)]
	for i, v := range x {
		acc[i] += float64(v)
	}
}

func accSqDevGo(acc []float64, x []float32, mu []float64) {
	x, mu = x[:len(acc)], mu[:len(acc)]
	for i, v := range x {
		d := float64(v) - mu[i]
		acc[i] += float64(d * d)
	}
}

func normalizeGo(y, x, mean, inv, gamma []float32) {
	l := len(y)
	x, mean, inv, gamma = x[:l], mean[:l], inv[:l], gamma[:l]
	for i, v := range x {
		y[i] = float32(gamma[i] * float32((v-mean[i])*inv[i]))
	}
}

func bnGradSumsGo(sb, sg []float64, d, x, mean, inv []float32) {
	l := len(sb)
	sg, d, x, mean, inv = sg[:l], d[:l], x[:l], mean[:l], inv[:l]
	for i, v := range d {
		xh := float32((x[i] - mean[i]) * inv[i])
		sb[i] += float64(v)
		sg[i] += float64(float64(v) * float64(xh))
	}
}

func bnGradInputGo(dx, d, x, mean, inv, k, mb, mg []float32) {
	l := len(dx)
	d, x, mean, inv, k, mb, mg = d[:l], x[:l], mean[:l], inv[:l], k[:l], mb[:l], mg[:l]
	for i, v := range d {
		xh := float32((x[i] - mean[i]) * inv[i])
		dx[i] = float32(k[i] * ((v - mb[i]) - float32(xh*mg[i])))
	}
}

// The loops choose between values with Pick rather than branch: their conditions (a
// sign, a random mask, which piece is largest) are data that a branch predictor
// guesses wrong about half the time, and a wrong guess costs more than computing both
// sides. Pick and PickBits compile to conditional moves.

// Pick returns a if c, else b.
func Pick(c bool, a, b float32) float32 {
	return math.Float32frombits(PickBits(c, math.Float32bits(a), math.Float32bits(b)))
}

// PickBits returns a if c, else b.
func PickBits(c bool, a, b uint32) uint32 {
	if c {
		return a
	}
	return b
}
