// elementwise.cu: fill, copy and the elementwise product (grid-stride loops).
#include "common.cuh"

// fill_f32 sets t[0..n) to v.
extern "C" __global__ void __launch_bounds__(GT_EW_THREADS) fill_f32(float* t, int n, float v) {
  gt_for_each(i, n) t[i] = v;
}

// copy_words copies n 4-byte words (float32 or int32, bit for bit) from src to dst.
extern "C" __global__ void __launch_bounds__(GT_EW_THREADS)
    copy_words(unsigned int* __restrict__ dst, const unsigned int* __restrict__ src, int n) {
  gt_for_each(i, n) dst[i] = src[i];
}

// mul_f32 sets y = a ⊙ b; y may alias a or b (each element is read before it is written
// by the same thread).
extern "C" __global__ void __launch_bounds__(GT_EW_THREADS) mul_f32(float* y, const float* a, const float* b, int n) {
  gt_for_each(i, n) y[i] = __fmul_rn(a[i], b[i]);
}
