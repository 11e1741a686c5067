// random.cu: dropout masks and noise from the counter-based RNG, bit for bit as rng.
// One thread per Philox block: its four words serve elements 4b..4b+3 (two normals).
#include "common.cuh"
#include "philox.cuh"

// dropout_mask_apply sets mask[e] = scale (= 1/keep) if rng.Keep(word e, keep), else 0,
// and y[e] = x[e]·mask[e], for e < n. y may alias x.
extern "C" __global__ void __launch_bounds__(GT_EW_THREADS)
    dropout_mask_apply(float* y, float* __restrict__ mask, const float* x, int n, float keep, float scale,
                       unsigned long long seed, unsigned long long offset) {
  gt_for_each(b, ((long long)n + 3) / 4) {
    gt_words w = gt_philox_block((unsigned long long)b, offset, seed);
    for (int j = 0; j < 4; j++) {
      long long e = 4 * b + j;
      if (e < n) {
        float m = gt_to_unit(w.w[j]) < keep ? scale : 0.0f;
        mask[e] = m;
        y[e] = __fmul_rn(x[e], m);
      }
    }
  }
}

// uniform_fill sets t[e] = rng.ToUniform(word e, lo, hi) for e < n.
extern "C" __global__ void __launch_bounds__(GT_EW_THREADS)
    uniform_fill(float* __restrict__ t, int n, float lo, float hi, unsigned long long seed, unsigned long long offset) {
  gt_for_each(b, ((long long)n + 3) / 4) {
    gt_words w = gt_philox_block((unsigned long long)b, offset, seed);
    for (int j = 0; j < 4; j++) {
      long long e = 4 * b + j;
      if (e < n) t[e] = gt_to_uniform(w.w[j], lo, hi);
    }
  }
}

// normal_fill sets t[e] = mean + std·rng.Stream.NormalAt(e) for e < n: elements 2b and
// 2b+1 use words (0,1) and (2,3) of block b.
extern "C" __global__ void __launch_bounds__(GT_EW_THREADS)
    normal_fill(float* __restrict__ t, int n, float mean, float std, unsigned long long seed,
                unsigned long long offset) {
  gt_for_each(b, ((long long)n + 1) / 2) {
    gt_words w = gt_philox_block((unsigned long long)b, offset, seed);
    for (int j = 0; j < 2; j++) {
      long long e = 2 * b + j;
      if (e < n) t[e] = __fadd_rn(mean, __fmul_rn(std, gt_to_normal(w.w[2 * j], w.w[2 * j + 1])));
    }
  }
}
