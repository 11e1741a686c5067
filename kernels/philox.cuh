// philox.cuh: the device twin of package rng — Philox4x32-10 and the maps from random
// words to floats — reproducing rng bit for bit.
//
// Rounding: every float operation that rng rounds on its own is written with an _rn
// intrinsic (__fmul_rn, __fadd_rn, __dmul_rn, ...), which nvcc never contracts into a
// fused multiply-add, so the PTX may be built with the default -fmad=true. rng's
// Box–Muller (ToNormal) runs in float64 through Go's math.Log (the amd64 assembly,
// which is the pure-Go algorithm with the same operation order) and math.Cos; CUDA's
// log and cos differ from them in the last bit now and then, so gt_go_log and
// gt_go_cos below are ports of Go's code, operation for operation. The shim tests
// compare both with Go's functions on all 2^24 inputs ToNormal can give them.
// (The spec is Go on amd64 with GOAMD64 < v3, which does not fuse multiply-adds.)
#pragma once

struct gt_words {
  unsigned int w[4];
};

// gt_philox_block is rng.Stream{seed, offset}.Block(blk).
__device__ __forceinline__ gt_words gt_philox_block(unsigned long long blk, unsigned long long offset,
                                                    unsigned long long seed) {
  unsigned int c0 = (unsigned int)blk, c1 = (unsigned int)(blk >> 32);
  unsigned int c2 = (unsigned int)offset, c3 = (unsigned int)(offset >> 32);
  unsigned int k0 = (unsigned int)seed, k1 = (unsigned int)(seed >> 32);
  for (int i = 0; i < 10; i++) {
    unsigned long long p0 = 0xD2511F53ull * c0;
    unsigned long long p1 = 0xCD9E8D57ull * c2;
    unsigned int n0 = (unsigned int)(p1 >> 32) ^ c1 ^ k0;
    unsigned int n1 = (unsigned int)p1;
    unsigned int n2 = (unsigned int)(p0 >> 32) ^ c3 ^ k1;
    unsigned int n3 = (unsigned int)p0;
    c0 = n0, c1 = n1, c2 = n2, c3 = n3;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  gt_words r = {{c0, c1, c2, c3}};
  return r;
}

// gt_to_unit is rng.ToUnit: 24 random bits in [0, 1), exact.
__device__ __forceinline__ float gt_to_unit(unsigned int x) {
  return __fmul_rn((float)(x >> 8), 1.0f / 16777216.0f);
}

// gt_to_uniform is rng.ToUniform.
__device__ __forceinline__ float gt_to_uniform(unsigned int x, float lo, float hi) {
  float width = __fsub_rn(hi, lo);
  float scaled = __fmul_rn(width, gt_to_unit(x));
  float v = __fadd_rn(scaled, lo);
  if (v >= hi) v = nextafterf(hi, lo);
  return v;
}

// gt_go_log is Go's math.Log for positive normal finite x (all ToNormal needs).
__device__ __forceinline__ double gt_go_log(double x) {
  const double HSqrt2 = 7.07106781186547524401e-01;
  const double Ln2Hi = 6.93147180369123816490e-01;
  const double Ln2Lo = 1.90821492927058770002e-10;
  const double L1 = 6.666666666666735130e-01;
  const double L2 = 3.999999999940941908e-01;
  const double L3 = 2.857142874366239149e-01;
  const double L4 = 2.222219843214978396e-01;
  const double L5 = 1.818357216161805012e-01;
  const double L6 = 1.531383769920937332e-01;
  const double L7 = 1.479819860511658591e-01;
  long long bits = __double_as_longlong(x);
  double f1 = __longlong_as_double((bits & 0x000FFFFFFFFFFFFFll) | 0x3FE0000000000000ll);
  int ki = (int)((bits >> 52) & 0x7FF) - 0x3FE;
  if (f1 < HSqrt2) {
    f1 = __dmul_rn(f1, 2.0);
    ki--;
  }
  double f = __dsub_rn(f1, 1.0);
  double k = (double)ki;
  double s = __ddiv_rn(f, __dadd_rn(2.0, f));
  double s2 = __dmul_rn(s, s);
  double s4 = __dmul_rn(s2, s2);
  double t1 = __dmul_rn(s2, __dadd_rn(L1, __dmul_rn(s4, __dadd_rn(L3, __dmul_rn(s4, __dadd_rn(L5, __dmul_rn(s4, L7)))))));
  double t2 = __dmul_rn(s4, __dadd_rn(L2, __dmul_rn(s4, __dadd_rn(L4, __dmul_rn(s4, L6)))));
  double R = __dadd_rn(t1, t2);
  double hfsq = __dmul_rn(__dmul_rn(0.5, f), f);
  double inner = __dadd_rn(__dmul_rn(s, __dadd_rn(hfsq, R)), __dmul_rn(k, Ln2Lo));
  return __dsub_rn(__dmul_rn(k, Ln2Hi), __dsub_rn(__dsub_rn(hfsq, inner), f));
}

// gt_go_cos is Go's math.Cos for 0 ≤ x < 2^29 (ToNormal gives [0, 2π)).
__device__ __forceinline__ double gt_go_cos(double x) {
  const double PI4A = 7.85398125648498535156e-1;
  const double PI4B = 3.77489470793079817668e-8;
  const double PI4C = 2.69515142907905952645e-15;
  const double S0 = 1.58962301576546568060e-10, S1 = -2.50507477628578072866e-8,
               S2 = 2.75573136213857245213e-6, S3 = -1.98412698295895385996e-4,
               S4 = 8.33333333332211858878e-3, S5 = -1.66666666666666307295e-1;
  const double C0 = -1.13585365213876817300e-11, C1 = 2.08757008419747316778e-9,
               C2 = -2.75573141792967388112e-7, C3 = 2.48015872888517045348e-5,
               C4 = -1.38888888888730564116e-3, C5 = 4.16666666666665929218e-2;
  const double FourOverPi = 1.27323954473516268615;  // 4/π
  bool sign = false;
  unsigned long long j = (unsigned long long)__dmul_rn(x, FourOverPi);
  double y = (double)j;
  if (j & 1) {
    j++;
    y = __dadd_rn(y, 1.0);
  }
  j &= 7;
  double z = __dsub_rn(__dsub_rn(__dsub_rn(x, __dmul_rn(y, PI4A)), __dmul_rn(y, PI4B)), __dmul_rn(y, PI4C));
  if (j > 3) {
    j -= 4;
    sign = !sign;
  }
  if (j > 1) sign = !sign;
  double zz = __dmul_rn(z, z);
  double r;
  if (j == 1 || j == 2) {
    double p = __dadd_rn(__dmul_rn(__dadd_rn(__dmul_rn(__dadd_rn(__dmul_rn(__dadd_rn(__dmul_rn(__dadd_rn(__dmul_rn(S0, zz), S1), zz), S2), zz), S3), zz), S4), zz), S5);
    r = __dadd_rn(z, __dmul_rn(__dmul_rn(z, zz), p));
  } else {
    double p = __dadd_rn(__dmul_rn(__dadd_rn(__dmul_rn(__dadd_rn(__dmul_rn(__dadd_rn(__dmul_rn(__dadd_rn(__dmul_rn(C0, zz), C1), zz), C2), zz), C3), zz), C4), zz), C5);
    r = __dadd_rn(__dsub_rn(1.0, __dmul_rn(0.5, zz)), __dmul_rn(__dmul_rn(zz, zz), p));
  }
  return sign ? -r : r;
}

// gt_to_normal is rng.ToNormal: Box–Muller in float64, rounded once to float32.
__device__ __forceinline__ float gt_to_normal(unsigned int x0, unsigned int x1) {
  double u1 = __dmul_rn(__dadd_rn((double)(x0 >> 8), 1.0), 1.0 / 16777216.0);
  double u2 = __dmul_rn((double)(x1 >> 8), 1.0 / 16777216.0);
  double r = __dsqrt_rn(__dmul_rn(-2.0, gt_go_log(u1)));
  return __double2float_rn(__dmul_rn(r, gt_go_cos(__dmul_rn(6.28318530717958647692, u2))));
}
