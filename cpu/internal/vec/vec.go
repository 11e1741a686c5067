// Package vec holds the CPU backend's elementwise loops over float32 rows: bias and
// activation, activation gradients, float64 column sums and batch normalisation.
//
// Each loop has a portable Go form and, on amd64 CPUs with AVX2, an assembly form
// eight lanes wide. Every loop is elementwise across its slices (a column sum adds
// one row at a time into a row of accumulators), so the vector form performs the
// same IEEE operations on each element in the same order, without fused
// multiply-adds, and gives the same bits as the Go form: TestSameBits pins them
// together on ragged lengths and on zeros, infinities and NaNs. Which form runs
// therefore changes nothing but the speed, and results stay independent of the CPU.
//
// The Go forms round every product explicitly (float32(a*b)) so that no compiler
// may fuse it into a multiply-add (the Go specification allows fusion otherwise, and
// GOAMD64=v3 uses it).
//
// Every function takes its length from its first slice; the others must be at
// least as long.
package vec

// Add sets dst[i] += src[i].
func Add(dst, src []float32) {
	n := bulk(len(dst))
	if n > 0 {
		src := src[:len(dst)]
		addAsm(&dst[0], &src[0], n)
	}
	addGo(dst[n:], src[n:len(dst)])
}

// BiasReLU sets z[i] = max(z[i]+bias[i], 0), with Go's max: +0 for a zero sum of
// either sign, NaN for NaN.
func BiasReLU(z, bias []float32) {
	n := bulk(len(z))
	if n > 0 {
		bias := bias[:len(z)]
		biasReLUAsm(&z[0], &bias[0], n)
	}
	biasReLUGo(z[n:], bias[n:len(z)])
}

// BiasLeakyReLU sets z[i] = v if v ≥ 0 (or NaN), alpha·v if v < 0, where v = z[i]+bias[i].
func BiasLeakyReLU(z, bias []float32, alpha float32) {
	n := bulk(len(z))
	if n > 0 {
		bias := bias[:len(z)]
		biasLeakyReLUAsm(&z[0], &bias[0], n, alpha)
	}
	biasLeakyReLUGo(z[n:], bias[n:len(z)], alpha)
}

// GradReLU sets dy[i] = 0 where y[i] ≤ 0: the ReLU gradient in terms of the output.
func GradReLU(dy, y []float32) {
	n := bulk(len(dy))
	if n > 0 {
		y := y[:len(dy)]
		gradReLUAsm(&dy[0], &y[0], n)
	}
	gradReLUGo(dy[n:], y[n:len(dy)])
}

// GradLeakyReLU sets dy[i] = alpha·dy[i] where y[i] < 0 (alpha > 0, so the sign of
// the output is the sign of the input).
func GradLeakyReLU(dy, y []float32, alpha float32) {
	n := bulk(len(dy))
	if n > 0 {
		y := y[:len(dy)]
		gradLeakyReLUAsm(&dy[0], &y[0], n, alpha)
	}
	gradLeakyReLUGo(dy[n:], y[n:len(dy)], alpha)
}

// GradSigmoid sets dy[i] = dy[i]·(y[i]·(1−y[i])).
func GradSigmoid(dy, y []float32) {
	n := bulk(len(dy))
	if n > 0 {
		y := y[:len(dy)]
		gradSigmoidAsm(&dy[0], &y[0], n)
	}
	gradSigmoidGo(dy[n:], y[n:len(dy)])
}

// GradTanh sets dy[i] = dy[i]·(1−y[i]²).
func GradTanh(dy, y []float32) {
	n := bulk(len(dy))
	if n > 0 {
		y := y[:len(dy)]
		gradTanhAsm(&dy[0], &y[0], n)
	}
	gradTanhGo(dy[n:], y[n:len(dy)])
}

// AccF64 sets acc[i] += float64(x[i]): one row of a float64 column sum.
func AccF64(acc []float64, x []float32) {
	n := bulk(len(acc))
	if n > 0 {
		x := x[:len(acc)]
		accF64Asm(&acc[0], &x[0], n)
	}
	accF64Go(acc[n:], x[n:len(acc)])
}

// AccSqDev sets acc[i] += d² with d = float64(x[i]) − mu[i]: one row of a float64
// sum of squared deviations.
func AccSqDev(acc []float64, x []float32, mu []float64) {
	n := bulk(len(acc))
	if n > 0 {
		x, mu := x[:len(acc)], mu[:len(acc)]
		accSqDevAsm(&acc[0], &x[0], &mu[0], n)
	}
	accSqDevGo(acc[n:], x[n:len(acc)], mu[n:len(acc)])
}

// Normalize sets y[i] = gamma[i]·((x[i]−mean[i])·inv[i]), each operation rounded to
// float32: batch normalisation's scaled x̂ before its shift. y may alias x.
func Normalize(y, x, mean, inv, gamma []float32) {
	l := len(y)
	n := bulk(l)
	if n > 0 {
		x, mean, inv, gamma := x[:l], mean[:l], inv[:l], gamma[:l]
		normalizeAsm(&y[0], &x[0], &mean[0], &inv[0], &gamma[0], n)
	}
	normalizeGo(y[n:], x[n:l], mean[n:l], inv[n:l], gamma[n:l])
}

// BNGradSums adds one row to batch normalisation's backward sums: sb[i] +=
// float64(d[i]) and sg[i] += float64(d[i])·float64(x̂) with x̂ = (x[i]−mean[i])·inv[i]
// in float32.
func BNGradSums(sb, sg []float64, d, x, mean, inv []float32) {
	l := len(sb)
	n := bulk(l)
	if n > 0 {
		sg, d, x, mean, inv := sg[:l], d[:l], x[:l], mean[:l], inv[:l]
		bnGradSumsAsm(&sb[0], &sg[0], &d[0], &x[0], &mean[0], &inv[0], n)
	}
	bnGradSumsGo(sb[n:], sg[n:l], d[n:l], x[n:l], mean[n:l], inv[n:l])
}

// BNGradInput sets dx[i] = k[i]·((d[i]−mb[i]) − x̂·mg[i]) with x̂ = (x[i]−mean[i])·inv[i],
// each operation rounded to float32: batch normalisation's input gradient, given
// k = gamma·inv and the means mb, mg of the gradient sums. dx may alias d.
func BNGradInput(dx, d, x, mean, inv, k, mb, mg []float32) {
	l := len(dx)
	n := bulk(l)
	if n > 0 {
		d, x, mean, inv, k, mb, mg := d[:l], x[:l], mean[:l], inv[:l], k[:l], mb[:l], mg[:l]
		bnGradInputAsm(&dx[0], &d[0], &x[0], &mean[0], &inv[0], &k[0], &mb[0], &mg[0], n)
	}
	bnGradInputGo(dx[n:], d[n:l], x[n:l], mean[n:l], inv[n:l], k[n:l], mb[n:l], mg[n:l])
}
