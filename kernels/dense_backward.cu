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
    // Eight rows at a time, all their loads issued before any is used, so that a
    // thread's rows (25 of them at the paper's batch, which puts all 200 rows in one
    // chunk) cost a few memory latencies, not one each; the sum still adds the rows in
    // order.
    constexpr int U = 8;
    for (int rb = r0 + ty; rb < r1; rb += U * GT_COL_H) {
      float v[U], w[U];
#pragma unroll
      for (int u = 0; u < U; u++) {
        int r = rb + u * GT_COL_H;
        size_t i = (size_t)r * out + c;
        v[u] = r < r1 ? dy[i] : 0.0f;
        w[u] = r < r1 && act != GT_ACT_IDENTITY ? y[i] : 0.0f;
      }
#pragma unroll
      for (int u = 0; u < U; u++) {
        int r = rb + u * GT_COL_H;
        if (r >= r1) break;
        if (act != GT_ACT_IDENTITY) {
          v[u] = gt_act_grad(v[u], w[u], act, alpha);
          dy[(size_t)r * out + c] = v[u];
        }
        s += (double)v[u];
      }
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
