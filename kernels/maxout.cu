// maxout.cu: maxout units, the max over groups of `pieces` adjacent columns.
#include "common.cuh"

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
