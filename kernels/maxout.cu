// maxout.cu: maxout units, the max over groups of `pieces` adjacent columns.
#include "common.cuh"
#include "philox.cuh"

// maxout_forward sets y[i] = max_p z[i·pieces + p] and arg[i] = the first p attaining it
// (ties go to the lower piece, like cpu), for i < count.
extern "C" __global__ void __launch_bounds__(GT_EW_THREADS)
    maxout_forward(float* __restrict__ y, int* __restrict__ arg, const float* __restrict__ z, int count, int pieces) {
  gt_for_each(i, count) {
    const float* g = z + (size_t)i * pieces;
    float best = g[0];
    int at = 0;
    for (int p = 1; p < pieces; p++) {
      float v = g[p];
      if (v > best) best = v, at = p;
    }
    y[i] = best;
    arg[i] = at;
  }
}

// maxout_backward sets dz[i·pieces + p] = dy[i] if p = arg[i], else 0 (one thread per
// element of dz, i < count).
extern "C" __global__ void __launch_bounds__(GT_EW_THREADS)
    maxout_backward(float* __restrict__ dz, const float* __restrict__ dy, const int* __restrict__ arg, int count,
                    int pieces) {
  gt_for_each(j, (long long)count * pieces) {
    long long i = j / pieces;
    int p = (int)(j - i * pieces);
    dz[j] = arg[i] == p ? dy[i] : 0.0f;
  }
}

// maxout_dropout_forward is maxout_forward followed by dropout_mask_apply on its output,
// one thread per Philox block (outputs 4b..4b+3, words of block b): arg[i] the winning
// piece, mask[i] = scale (= 1/keep) if rng.Keep(word i, keep) else 0, y[i] = max·mask[i]
// (the same float32 product dropout_mask_apply forms). The maxout output is not stored.
extern "C" __global__ void __launch_bounds__(GT_EW_THREADS)
    maxout_dropout_forward(float* __restrict__ y, int* __restrict__ arg, float* __restrict__ mask,
                           const float* __restrict__ z, int count, int pieces, float keep, float scale,
                           unsigned long long seed, unsigned long long offset) {
  gt_for_each(b, ((long long)count + 3) / 4) {
    gt_words w = gt_philox_block((unsigned long long)b, offset, seed);
    for (int j = 0; j < 4; j++) {
      long long i = 4 * b + j;
      if (i < count) {
        const float* g = z + i * pieces;
        float best = g[0];
        int at = 0;
        for (int p = 1; p < pieces; p++) {
          float v = g[p];
          if (v > best) best = v, at = p;
        }
        float m = gt_to_unit(w.w[j]) < keep ? scale : 0.0f;
        arg[i] = at;
        mask[i] = m;
        y[i] = __fmul_rn(best, m);
      }
    }
  }
}

// maxout_dropout_backward sets dz[i·pieces + p] = dy[i]·mask[i] if p = arg[i], else 0:
// dropout's backward (mul_f32) and maxout_backward in one pass, one thread per element
// of dz.
extern "C" __global__ void __launch_bounds__(GT_EW_THREADS)
    maxout_dropout_backward(float* __restrict__ dz, const float* __restrict__ dy, const float* __restrict__ mask,
                            const int* __restrict__ arg, int count, int pieces) {
  gt_for_each(j, (long long)count * pieces) {
    long long i = j / pieces;
    int p = (int)(j - i * pieces);
    dz[j] = arg[i] == p ? __fmul_rn(dy[i], mask[i]) : 0.0f;
  }
}
