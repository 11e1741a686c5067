// dense_backward.cu: the elementwise part of the dense layer's backward pass.
#include "common.cuh"

// dense_backward_act_bias overwrites dy (n×out) with dZ = dy ⊙ act'(y) and, when
// want_db, sums dZ over rows in float64: block (32, 8) covers 32 columns of rows
// [blockIdx.y·rows_per, +rows_per). With one row chunk (gridDim.y == 1) the sum goes to
// db as float32; otherwise to part[blockIdx.y·out + column] for bias_grad_reduce.
extern "C" __global__ void __launch_bounds__(GT_COL_W* GT_COL_H)
    dense_backward_act_bias(float* __restrict__ dy, const float* __restrict__ y, float* __restrict__ db,
                            double* __restrict__ part, int n, int out, int rows_per, int want_db, int act,
                            float alpha) {
  __shared__ double sums[GT_COL_H][GT_COL_W];
  const int tx = threadIdx.x, ty = threadIdx.y;
  const int c = blockIdx.x * GT_COL_W + tx;
  const int r0 = blockIdx.y * rows_per, r1 = min(n, r0 + rows_per);
  double s = 0.0;
  if (c < out) {
    // Unrolled so that several rows' loads are in flight at once (the paper's batch puts
    // all 200 rows in one chunk); the sum still adds the rows in order.
#pragma unroll 8
    for (int r = r0 + ty; r < r1; r += GT_COL_H) {
      size_t i = (size_t)r * out + c;
      float v = dy[i];
      if (act != GT_ACT_IDENTITY) {
        v = gt_act_grad(v, y[i], act, alpha);
        dy[i] = v;
      }
      s += (double)v;
    }
  }
  if (!want_db) return;  // uniform over the grid: no thread reaches the barrier
  sums[ty][tx] = s;
  __syncthreads();
  if (ty == 0 && c < out) {
    double t = 0.0;
    for (int k = 0; k < GT_COL_H; k++) t += sums[k][tx];
    if (gridDim.y == 1)
      db[c] = (float)t;
    else
      part[(size_t)blockIdx.y * out + c] = t;
  }
}

// bias_grad_reduce sets db[c] = float32(Σ_k part[k·out + c]), summed in order of k.
extern "C" __global__ void __launch_bounds__(GT_EW_THREADS)
    bias_grad_reduce(float* __restrict__ db, const double* __restrict__ part, int chunks, int out) {
  gt_for_each(c, out) {
    double t = 0.0;
    for (int k = 0; k < chunks; k++) t += part[(size_t)k * out + c];
    db[c] = (float)t;
  }
}
