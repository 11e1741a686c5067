// gather.cu: minibatch rows gathered on the device.
#include "common.cuh"

// gather_rows sets dst[r][:] = src[idx[r]][:] for r < rows (cols columns). An index
// outside [0, src_rows) is never dereferenced: that row of dst becomes NaN.
extern "C" __global__ void __launch_bounds__(GT_EW_THREADS)
    gather_rows(float* __restrict__ dst, const float* __restrict__ src, const int* __restrict__ idx, int rows,
                int cols, int src_rows) {
  gt_for_each(i, (long long)rows * cols) {
    long long r = i / cols, c = i - r * cols;
    int k = idx[r];
    dst[i] = (k >= 0 && k < src_rows) ? src[(long long)k * cols + c] : gt_nanf();
  }
}
