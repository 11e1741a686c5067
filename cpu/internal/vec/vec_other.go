//go:build !amd64 || purego

package vec

// Without the vector forms the Go forms take every element.

func bulk(int) int { return 0 }

func addAsm(dst, src *float32, n int)                                { panic("vec: no vector form") }
func biasReLUAsm(z, bias *float32, n int)                            { panic("vec: no vector form") }
func biasLeakyReLUAsm(z, bias *float32, n int, alpha float32)        { panic("vec: no vector form") }
func gradReLUAsm(dy, y *float32, n int)                              { panic("vec: no vector form") }
func gradLeakyReLUAsm(dy, y *float32, n int, alpha float32)          { panic("vec: no vector form") }
func gradSigmoidAsm(dy, y *float32, n int)                           { panic("vec: no vector form") }
func gradTanhAsm(dy, y *float32, n int)                              { panic("vec: no vector form") }
func accF64Asm(acc *float64, x *float32, n int)                      { panic("vec: no vector form") }
func accSqDevAsm(acc *float64, x *float32, mu *float64, n int)       { panic("vec: no vector form") }
func normalizeAsm(y, x, mean, inv, gamma *float32, n int)            { panic("vec: no vector form") }
func bnGradSumsAsm(sb, sg *float64, d, x, mean, inv *float32, n int) { panic("vec: no vector form") }
func bnGradInputAsm(dx, d, x, mean, inv, k, mb, mg *float32, n int)  { panic("vec: no vector form") }
