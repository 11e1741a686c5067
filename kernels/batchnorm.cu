// batchnorm.cu: batch normalisation of the columns (channels) of an m×C matrix whose
// rows are `groups` equal groups of r rows, each group normalised by its own
// statistics, with the activation that follows. A launch covers c columns of a row
// stride ld (the builder splits very wide matrices) and `groups` groups (the builder
// splits very many); its grid is blocks (32, 8) over 32 columns, each block taking
// (group, row chunk) pairs gk = g·chunks + k in steps of gridDim.y. Column sums are
// float64, one per pair in the workspace (part), finished in a fixed order by the
// next kernel.
#include "common.cuh"

// gt_col_sum2 adds a and b over the GT_COL_H threads of each column of a (32, 8)
// block, in order of threadIdx.y; the sums are valid where threadIdx.y == 0. Every
// thread of the block must call it; it may be called again at once (it ends with a
// barrier).
__device__ __forceinline__ void gt_col_sum2(double& a, double& b) {
  __shared__ double sa[GT_COL_H][GT_COL_W], sb[GT_COL_H][GT_COL_W];
  const int tx = threadIdx.x, ty = threadIdx.y;
  sa[ty][tx] = a;
  sb[ty][tx] = b;
  __syncthreads();
  if (ty == 0) {
    a = 0.0, b = 0.0;
    for (int k = 0; k < GT_COL_H; k++) a += sa[k][tx], b += sb[k][tx];
  }
  __syncthreads();
}

// gt_bn_invstd is 1/√(variance + eps) as cpu.invStd computes it: the sum in float32,
// the square root in float64 rounded to float32, the division in float32.
__device__ __forceinline__ float gt_bn_invstd(float variance, float eps) {
  return __fdiv_rn(1.0f, __double2float_rn(__dsqrt_rn((double)__fadd_rn(variance, eps))));
}

// gt_bn_xhat is x̂ = (x − mean)·inv in float32.
__device__ __forceinline__ float gt_bn_xhat(float x, float mean, float inv) {
  return __fmul_rn(__fsub_rn(x, mean), inv);
}

// gt_bn_affine is act(gamma·x̂ + beta), each operation rounded to float32 (the
// product, then the bias and activation of BiasActivation).
__device__ __forceinline__ float gt_bn_affine(float x, float mean, float inv, float gamma, float beta, int act,
                                              float alpha) {
  return gt_activate(__fadd_rn(__fmul_rn(gamma, gt_bn_xhat(x, mean, inv)), beta), act, alpha);
}

// gt_bn_sum adds region's sums of group g's `chunks` pairs for column col (region: the
// first sums of the launch's pairs, or the second, `pairs` further on), in order.
__device__ __forceinline__ double gt_bn_sum(const double* part, int region, int g, int chunks, int pairs, int c,
                                            int col) {
  double s = 0.0;
  for (int k = g * chunks; k < (g + 1) * chunks; k++) s += part[(size_t)(region * pairs + k) * c + col];
  return s;
}

// batchnorm_stats_partial sums, for each column col < c and pair gk = (g, k), over the
// chunk's rows of group g, in float64: in pass 0, x, into part[gk·c + col]; in pass 1,
// (x − μ_g)² with μ_g = Σ x/r finished from pass 0's sums, into part[(pairs + gk)·c +
// col]. The two passes are cpu.BatchNorm's: the squares are of the deviations from the
// float64 mean, each rounded before it is added.
extern "C" __global__ void __launch_bounds__(GT_COL_W* GT_COL_H)
    batchnorm_stats_partial(double* __restrict__ part, const float* __restrict__ x, int groups, int r, int c, int ld,
                            int rows_per, int chunks, int pass) {
  const int col = blockIdx.x * GT_COL_W + threadIdx.x, pairs = groups * chunks;
  for (int gk = blockIdx.y; gk < pairs; gk += gridDim.y) {
    const int g = gk / chunks, base = g * r;
    const int r0 = base + (gk - g * chunks) * rows_per, r1 = min(base + r, r0 + rows_per);
    double s = 0.0;
    if (col < c) {
      if (pass == 0) {
        for (int row = r0 + threadIdx.y; row < r1; row += GT_COL_H) s = __dadd_rn(s, (double)x[(size_t)row * ld + col]);
      } else {
        const double mu = gt_bn_sum(part, 0, g, chunks, pairs, c, col) / r;
        for (int row = r0 + threadIdx.y; row < r1; row += GT_COL_H) {
          const double d = __dsub_rn((double)x[(size_t)row * ld + col], mu);
          s = __dadd_rn(s, __dmul_rn(d, d));
        }
      }
    }
    double unused = 0.0;
    gt_col_sum2(s, unused);
    if (threadIdx.y == 0 && col < c) part[(size_t)(pass * pairs + gk) * c + col] = s;
  }
}

// batchnorm_forward_apply finishes each group's statistics from batchnorm_stats_partial's
// two passes, mean = float32(Σx/r) and variance = float32(Σ(x − μ)²/r) (the biased
// one), stores them (mean and variance are groups×ld; the blocks of a group's first
// chunk store) and sets, over the chunk's rows, y = act(gamma·(x − mean)·inv + beta)
// in float32 with inv = gt_bn_invstd(variance, eps), as cpu.BatchNorm does.
extern "C" __global__ void __launch_bounds__(GT_COL_W* GT_COL_H)
    batchnorm_forward_apply(float* __restrict__ y, float* __restrict__ mean, float* __restrict__ variance,
                            const float* __restrict__ x, const float* __restrict__ gamma,
                            const float* __restrict__ beta, const double* __restrict__ part, int groups, int r, int c,
                            int ld, int rows_per, int chunks, float eps, int act, float alpha) {
  __shared__ float mu[GT_COL_W], inv[GT_COL_W];
  const int tx = threadIdx.x, ty = threadIdx.y;
  const int col = blockIdx.x * GT_COL_W + tx, pairs = groups * chunks;
  const float gm = col < c ? gamma[col] : 0.0f, bt = col < c ? beta[col] : 0.0f;
  for (int gk = blockIdx.y; gk < pairs; gk += gridDim.y) {
    const int g = gk / chunks, k = gk - g * chunks, base = g * r;
    if (ty == 0 && col < c) {
      const float mf = __double2float_rn(gt_bn_sum(part, 0, g, chunks, pairs, c, col) / r);
      const float vf = __double2float_rn(gt_bn_sum(part, 1, g, chunks, pairs, c, col) / r);
      mu[tx] = mf;
      inv[tx] = gt_bn_invstd(vf, eps);
      if (k == 0) {
        mean[(size_t)g * ld + col] = mf;
        variance[(size_t)g * ld + col] = vf;
      }
    }
    __syncthreads();
    if (col < c) {
      const int r0 = base + k * rows_per, r1 = min(base + r, r0 + rows_per);
      for (int row = r0 + ty; row < r1; row += GT_COL_H) {
        const size_t i = (size_t)row * ld + col;
        y[i] = gt_bn_affine(x[i], mu[tx], inv[tx], gm, bt, act, alpha);
      }
    }
    __syncthreads();  // mu and inv are rewritten by the next pair
  }
}

// batchnorm_running_update applies, for each of the c columns and each of the
// `groups` groups in order, run ← (1 − momentum)·run + momentum·batch_g to run_mean
// (batch: the group's stored mean) and run_var (its stored variance made unbiased,
// float32(variance·r/(r−1)) in float64, when r > 1), in float32 with each product
// rounded, as cpu.BatchNorm does. mean and variance are groups×c.
extern "C" __global__ void __launch_bounds__(GT_EW_THREADS)
    batchnorm_running_update(float* __restrict__ run_mean, float* __restrict__ run_var,
                             const float* __restrict__ mean, const float* __restrict__ variance, int groups, int r,
                             int c, float momentum) {
  const float rest = __fsub_rn(1.0f, momentum);
  gt_for_each(col, c) {
    float rm = run_mean[col], rv = run_var[col];
    for (int g = 0; g < groups; g++) {
      const size_t i = (size_t)g * c + col;
      float v = variance[i];
      if (r > 1) v = __double2float_rn(__ddiv_rn(__dmul_rn((double)v, (double)r), (double)(r - 1)));
      rm = __fadd_rn(__fmul_rn(rest, rm), __fmul_rn(momentum, mean[i]));
      rv = __fadd_rn(__fmul_rn(rest, rv), __fmul_rn(momentum, v));
    }
    run_mean[col] = rm;
    run_var[col] = rv;
  }
}

// batchnorm_infer sets y = act(gamma·(x − run_mean)/√(run_var + eps) + beta) over the
// block's rows [blockIdx.y·rows_per, +rows_per) of the m×c matrix x; y may alias x.
extern "C" __global__ void __launch_bounds__(GT_COL_W* GT_COL_H)
    batchnorm_infer(float* y, const float* x, const float* __restrict__ gamma, const float* __restrict__ beta,
                    const float* __restrict__ run_mean, const float* __restrict__ run_var, int m, int c,
                    int rows_per, float eps, int act, float alpha) {
  const int col = blockIdx.x * GT_COL_W + threadIdx.x;
  if (col >= c) return;  // no barrier in this kernel
  const float mc = run_mean[col], ic = gt_bn_invstd(run_var[col], eps), g = gamma[col], b = beta[col];
  const int r0 = blockIdx.y * rows_per, r1 = min(m, r0 + rows_per);
  for (int row = r0 + threadIdx.y; row < r1; row += GT_COL_H) {
    const size_t i = (size_t)row * c + col;
    y[i] = gt_bn_affine(x[i], mc, ic, g, b, act, alpha);
  }
}

// batchnorm_backward_partial overwrites dy with dZ = dy ⊙ act'(y) over each pair's
// rows and sums, per column, in float64, dZ into part[gk·c + col] and dZ·x̂ (x̂ in
// float32, the product of the two exact in float64) into part[(pairs + gk)·c + col].
extern "C" __global__ void __launch_bounds__(GT_COL_W* GT_COL_H)
    batchnorm_backward_partial(double* __restrict__ part, float* __restrict__ dy, const float* __restrict__ y,
                               const float* __restrict__ x, const float* __restrict__ mean,
                               const float* __restrict__ variance, int groups, int r, int c, int ld, int rows_per,
                               int chunks, float eps, int act, float alpha) {
  const int col = blockIdx.x * GT_COL_W + threadIdx.x, pairs = groups * chunks;
  for (int gk = blockIdx.y; gk < pairs; gk += gridDim.y) {
    const int g = gk / chunks, base = g * r;
    const int r0 = base + (gk - g * chunks) * rows_per, r1 = min(base + r, r0 + rows_per);
    double s = 0.0, q = 0.0;
    if (col < c) {
      const float mc = mean[(size_t)g * ld + col], inv = gt_bn_invstd(variance[(size_t)g * ld + col], eps);
      for (int row = r0 + threadIdx.y; row < r1; row += GT_COL_H) {
        const size_t i = (size_t)row * ld + col;
        float dz = dy[i];
        if (act != GT_ACT_IDENTITY) {
          dz = gt_act_grad(dz, y[i], act, alpha);
          dy[i] = dz;
        }
        s = __dadd_rn(s, (double)dz);
        q = __dadd_rn(q, __dmul_rn((double)dz, (double)gt_bn_xhat(x[i], mc, inv)));
      }
    }
    gt_col_sum2(s, q);
    if (threadIdx.y == 0 && col < c) {
      part[(size_t)gk * c + col] = s;
      part[(size_t)(pairs + gk) * c + col] = q;
    }
  }
}

// batchnorm_backward_apply finishes batchnorm_backward_partial's sums per group g,
// Sβ_g = Σ dZ and Sγ_g = Σ dZ·x̂. Unless dx is null it sets, over each pair's rows,
// dx = k·((dZ − mb) − x̂·mg) in float32, with k = gamma·inv, mb = float32(Sβ_g/r) and
// mg = float32(Sγ_g/r), as cpu.BatchNormBackward does. Unless dgamma and dbeta are
// both null, the first row of blocks adds Sβ_g and Sγ_g over the launch's groups in
// order to the float64 totals carried from the previous launch of the column range
// (carry[col], carry[c + col]; zero when `first`), and stores them in carry, or, when
// `last`, as float32 in dbeta and dgamma.
extern "C" __global__ void __launch_bounds__(GT_COL_W* GT_COL_H)
    batchnorm_backward_apply(float* __restrict__ dx, float* __restrict__ dgamma, float* __restrict__ dbeta,
                             double* __restrict__ carry, const float* __restrict__ dz, const float* __restrict__ x,
                             const float* __restrict__ gamma, const float* __restrict__ mean,
                             const float* __restrict__ variance, const double* __restrict__ part, int groups, int r,
                             int c, int ld, int rows_per, int chunks, float eps, int first, int last) {
  __shared__ float mb[GT_COL_W], mg[GT_COL_W];
  const int tx = threadIdx.x, ty = threadIdx.y;
  const int col = blockIdx.x * GT_COL_W + tx, pairs = groups * chunks;
  if (blockIdx.y == 0 && ty == 0 && col < c && (dgamma || dbeta)) {
    double tb = first ? 0.0 : carry[col], tg = first ? 0.0 : carry[c + col];
    for (int g = 0; g < groups; g++) {
      tb += gt_bn_sum(part, 0, g, chunks, pairs, c, col);
      tg += gt_bn_sum(part, 1, g, chunks, pairs, c, col);
    }
    if (last) {
      if (dbeta) dbeta[col] = __double2float_rn(tb);
      if (dgamma) dgamma[col] = __double2float_rn(tg);
    } else {
      carry[col] = tb;
      carry[c + col] = tg;
    }
  }
  if (!dx) return;  // uniform over the grid: no thread reaches the barriers below
  const float gm = col < c ? gamma[col] : 0.0f;
  for (int gk = blockIdx.y; gk < pairs; gk += gridDim.y) {
    const int g = gk / chunks, k = gk - g * chunks, base = g * r;
    if (ty == 0 && col < c) {
      mb[tx] = __double2float_rn(gt_bn_sum(part, 0, g, chunks, pairs, c, col) / r);
      mg[tx] = __double2float_rn(gt_bn_sum(part, 1, g, chunks, pairs, c, col) / r);
    }
    __syncthreads();
    if (col < c) {
      const size_t gi = (size_t)g * ld + col;
      const float mc = mean[gi], inv = gt_bn_invstd(variance[gi], eps), kc = __fmul_rn(gm, inv);
      const float b = mb[tx], w = mg[tx];
      const int r0 = base + k * rows_per, r1 = min(base + r, r0 + rows_per);
      for (int row = r0 + ty; row < r1; row += GT_COL_H) {
        const size_t i = (size_t)row * ld + col;
        const float xh = gt_bn_xhat(x[i], mc, inv);
        dx[i] = __fmul_rn(kc, __fsub_rn(__fsub_rn(dz[i], b), __fmul_rn(xh, w)));
      }
    }
    __syncthreads();  // mb and mg are rewritten by the next pair
  }
}
