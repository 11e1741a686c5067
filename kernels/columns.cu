// columns.cu: the max-norm constraint on the columns of a weight matrix, in two passes
// over blocks of (32 columns × a chunk of rows), block (32, 8).
#include "common.cuh"

// column_sumsq_partial sets part[blockIdx.y·cols + c] to Σ w[r][c]² (float64) over the
// block's rows [blockIdx.y·rows_per, +rows_per).
extern "C" __global__ void __launch_bounds__(GT_COL_W* GT_COL_H)
    column_sumsq_partial(double* __restrict__ part, const float* __restrict__ w, int rows, int cols, int rows_per) {
  __shared__ double sums[GT_COL_H][GT_COL_W];
  const int tx = threadIdx.x, ty = threadIdx.y;
  const int c = blockIdx.x * GT_COL_W + tx;
  const int r0 = blockIdx.y * rows_per, r1 = min(rows, r0 + rows_per);
  double s = 0.0;
  if (c < cols)
    for (int r = r0 + ty; r < r1; r += GT_COL_H) {
      double v = w[(size_t)r * cols + c];
      s += v * v;
    }
  sums[ty][tx] = s;
  __syncthreads();
  if (ty == 0 && c < cols) {
    double t = 0.0;
    for (int k = 0; k < GT_COL_H; k++) t += sums[k][tx];
    part[(size_t)blockIdx.y * cols + c] = t;
  }
}

// clip_columns_apply scales column c of the block's rows by max_norm/‖w_c‖ (in float64)
// when ‖w_c‖ = √(Σ_k part[k·cols + c]) exceeds max_norm, and leaves it alone otherwise.
extern "C" __global__ void __launch_bounds__(GT_COL_W* GT_COL_H)
    clip_columns_apply(float* __restrict__ w, const double* __restrict__ part, int rows, int cols, int rows_per,
                       int chunks, float max_norm) {
  __shared__ double scale[GT_COL_W];
  const int tx = threadIdx.x, ty = threadIdx.y;
  const int c = blockIdx.x * GT_COL_W + tx;
  if (ty == 0) {
    double sc = 1.0;
    if (c < cols) {
      double t = 0.0;
      for (int k = 0; k < chunks; k++) t += part[(size_t)k * cols + c];
      double norm = sqrt(t), limit = max_norm;
      if (norm > limit) sc = limit / norm;
    }
    scale[tx] = sc;
  }
  __syncthreads();
  const int r0 = blockIdx.y * rows_per, r1 = min(rows, r0 + rows_per);
  const double sc = scale[tx];
  if (c < cols && sc != 1.0)
    for (int r = r0 + ty; r < r1; r += GT_COL_H) {
      size_t i = (size_t)r * cols + c;
      w[i] = __double2float_rn(__dmul_rn((double)w[i], sc));
    }
}
