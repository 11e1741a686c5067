// optim.cu: the optimisers' fused updates, bit for bit as the CPU backend (every float
// operation rounded on its own, in cpu's order).
#include "common.cuh"

// sgd_momentum_update: v ← μ·v − lr·g, p ← p + v.
extern "C" __global__ void __launch_bounds__(GT_EW_THREADS)
    sgd_momentum_update(float* __restrict__ p, const float* __restrict__ g, float* __restrict__ v, int n, float lr,
                        float mu) {
  gt_for_each(i, n) {
    float vi = __fsub_rn(__fmul_rn(mu, v[i]), __fmul_rn(lr, g[i]));
    v[i] = vi;
    p[i] = __fadd_rn(p[i], vi);
  }
}

// adam_update: m ← β1·m + (1−β1)·g, v ← β2·v + (1−β2)·g², p ← p − lr·(m·c1)/(√(v·c2) + ε),
// with c1 = 1/(1−β1^t), c2 = 1/(1−β2^t) and 1−β computed by the caller (in float32, as cpu).
extern "C" __global__ void __launch_bounds__(GT_EW_THREADS)
    adam_update(float* __restrict__ p, const float* __restrict__ g, float* __restrict__ m, float* __restrict__ v,
                int n, float lr, float beta1, float beta2, float one_minus_beta1, float one_minus_beta2, float eps,
                float c1, float c2) {
  gt_for_each(i, n) {
    float gi = g[i];
    float mi = __fadd_rn(__fmul_rn(beta1, m[i]), __fmul_rn(one_minus_beta1, gi));
    float vi = __fadd_rn(__fmul_rn(beta2, v[i]), __fmul_rn(__fmul_rn(one_minus_beta2, gi), gi));
    m[i] = mi;
    v[i] = vi;
    float num = __fmul_rn(lr, __fmul_rn(mi, c1));
    float den = __fadd_rn(__double2float_rn(__dsqrt_rn((double)__fmul_rn(vi, c2))), eps);
    p[i] = __fsub_rn(p[i], __fdiv_rn(num, den));
  }
}

// moving_average_update: avg ← decay·avg + (1−decay)·x (1−decay computed by the caller
// in float32, as cpu).
extern "C" __global__ void __launch_bounds__(GT_EW_THREADS)
    moving_average_update(float* __restrict__ avg, const float* __restrict__ x, int n, float decay,
                          float one_minus_decay) {
  gt_for_each(i, n) { avg[i] = __fadd_rn(__fmul_rn(decay, avg[i]), __fmul_rn(one_minus_decay, x[i])); }
}
