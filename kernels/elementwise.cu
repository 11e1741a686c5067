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

// wait_ns keeps one thread busy for ns nanoseconds of the device's global timer, doing
// nothing else: launches queued behind it then start back to back, which is how the
// autotuner times a candidate without the host's launch latency (gpu/tune.go). The
// shim has no device clock and returns at once.
extern "C" __global__ void wait_ns(unsigned long long ns) {
#if defined(__CUDA_ARCH__)
  unsigned long long t0, t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t0));
  do {
    __nanosleep(1000);
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  } while (t - t0 < ns);
#else
  (void)ns;
#endif
}
