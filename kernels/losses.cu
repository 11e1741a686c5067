// losses.cu: fused losses with their gradients, and the reductions for the metrics.
// A reduction runs in two passes, both deterministic: the first kernel leaves one
// float64 partial sum per block in the workspace, sum_partials_to_slot adds them in
// order into the scalars tensor. When the first pass is a single block (the paper's
// batch), it writes the scalar itself and the second pass is not launched.
#include "common.cuh"

// gt_store_partial is the end of a first pass: block sum s to part[block], or, for a
// grid of one block, out[0] = float32(mul·s/div) as sum_partials_to_slot would write.
__device__ __forceinline__ void gt_store_partial(double s, double* __restrict__ part, float* __restrict__ out,
                                                 float mul, int div) {
  if (threadIdx.x != 0) return;
  if (gridDim.x == 1)
    out[0] = (float)((double)mul * s / (double)div);
  else
    part[blockIdx.x] = s;
}

// sigmoid_bce_loss_grad: for i < n, the binary cross-entropy of logit l_i and target
// t_i, max(l,0) − l·t + log(1+e^{−|l|}) in float64, summed per block into part[block]
// (gt_store_partial); unless dlogits is null, dlogits_i = scale·(σ(l_i) − t_i).
extern "C" __global__ void __launch_bounds__(GT_EW_THREADS)
    sigmoid_bce_loss_grad(float* __restrict__ dlogits, const float* __restrict__ logits,
                          const float* __restrict__ targets, int n, float scale, double* __restrict__ part,
                          float* __restrict__ out, float mul, int div) {
  double s = 0.0;
  gt_for_each(i, n) {
    float l = logits[i], t = targets[i];
    double lf = l, tf = t;
    s += (lf > 0.0 ? lf : (lf != lf ? lf : 0.0)) - lf * tf + log1p(exp(-fabs(lf)));
    if (dlogits) dlogits[i] = __fmul_rn(scale, __fsub_rn(gt_sigmoid(l), t));
  }
  gt_store_partial(gt_block_sum(s), part, out, mul, div);
}

// sigmoid_sum_partial sums σ(l_i) (each rounded to float32, as cpu) over i < n per block
// into part[block] (MeanSigmoid's first pass).
extern "C" __global__ void __launch_bounds__(GT_EW_THREADS)
    sigmoid_sum_partial(const float* __restrict__ logits, int n, double* __restrict__ part, float* __restrict__ out,
                        float mul, int div) {
  double s = 0.0;
  gt_for_each(i, n) s += (double)gt_sigmoid(logits[i]);
  gt_store_partial(gt_block_sum(s), part, out, mul, div);
}

// sum_partials_to_slot (one block) sets out[0] = float32(mul · Σ_k part[k] / div), the
// count partials summed in a fixed order.
extern "C" __global__ void __launch_bounds__(GT_EW_THREADS)
    sum_partials_to_slot(float* __restrict__ out, const double* __restrict__ part, int count, float mul, int div) {
  double s = 0.0;
  for (int k = threadIdx.x; k < count; k += blockDim.x) s += part[k];
  s = gt_block_sum(s);
  if (threadIdx.x == 0) out[0] = (float)((double)mul * s / (double)div);
}

// softmax_xent_loss_grad: one warp per row of logits (n×classes). The row's loss
// log Σ_j e^{l_j} − l_label (stable around the row max, float64 sums) is summed per
// block into part[block]; unless dlogits is null, dlogits_j = scale·(softmax_j − [j =
// label]). A label outside [0, classes) gives a NaN loss and a NaN dlogits row.
extern "C" __global__ void __launch_bounds__(GT_EW_THREADS)
    softmax_xent_loss_grad(float* __restrict__ dlogits, const float* __restrict__ logits,
                           const int* __restrict__ labels, int n, int classes, float scale,
                           double* __restrict__ part, float* __restrict__ out, float mul, int div) {
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, warps = GT_EW_THREADS / 32;
  double loss = 0.0;  // this warp's rows (same bits on every lane)
  for (long long row = (long long)blockIdx.x * warps + warp; row < n; row += (long long)gridDim.x * warps) {
    const float* x = logits + row * classes;
    const int k = labels[row];
    const bool bad = k < 0 || k >= classes;
    float mx = x[0];
    for (int j = lane; j < classes; j += 32) mx = gt_max_nan(mx, x[j]);
    mx = gt_warp_max(mx);
    double z = 0.0;
    for (int j = lane; j < classes; j += 32) z += exp((double)__fsub_rn(x[j], mx));
    z = gt_warp_sum(z);
    const double logz = (double)mx + log(z);
    loss += bad ? gt_nan() : logz - (double)x[k];
    if (dlogits) {
      float* d = dlogits + row * classes;
      for (int j = lane; j < classes; j += 32) {
        float p = __double2float_rn(exp((double)x[j] - logz));
        if (j == k) p = __fsub_rn(p, 1.0f);
        d[j] = bad ? gt_nanf() : __fmul_rn(scale, p);
      }
    }
  }
  gt_store_partial(gt_block_sum(lane == 0 ? loss : 0.0), part, out, mul, div);
}

// logsumexp_rows: one warp per row of x (n×m), out_i = log Σ_j exp(x_ij) computed
// around the row max in float64; a row whose max is −Inf gives −Inf.
extern "C" __global__ void __launch_bounds__(GT_EW_THREADS)
    logsumexp_rows(float* __restrict__ out, const float* __restrict__ x, int n, int m) {
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, warps = GT_EW_THREADS / 32;
  for (long long row = (long long)blockIdx.x * warps + warp; row < n; row += (long long)gridDim.x * warps) {
    const float* r = x + row * m;
    float mx = r[0];
    for (int j = lane; j < m; j += 32) mx = gt_max_nan(mx, r[j]);
    mx = gt_warp_max(mx);
    double z = 0.0;
    for (int j = lane; j < m; j += 32) z += exp((double)__fsub_rn(r[j], mx));
    z = gt_warp_sum(z);
    if (lane == 0) out[row] = (mx == -INFINITY) ? mx : __double2float_rn((double)mx + log(z));
  }
}
