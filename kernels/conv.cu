// conv.cu: the data movement that makes a convolution over NHWC images a matrix
// product (backend.ConvGeom), and the bias and activation of its (n·H·W)×C output.
#include "common.cuh"

// im2col_nhwc sets cols (n·out_h·out_w rows of k_h·k_w·in_c) to the receptive fields of
// the n images x (each in_h×in_w×in_c): row (i, oy, ox), column (ky, kx, c) holds
// x[i, oy·s_h − p_h + ky, ox·s_w − p_w + kx, c], or 0 in the padding. One thread per
// element of cols: a warp's threads read consecutive channels of a pixel.
extern "C" __global__ void __launch_bounds__(GT_EW_THREADS)
    im2col_nhwc(float* __restrict__ cols, const float* __restrict__ x, int n, int in_h, int in_w, int in_c, int k_h,
                int k_w, int s_h, int s_w, int p_h, int p_w, int out_h, int out_w) {
  const int patch = k_h * k_w * in_c, positions = out_h * out_w;
  const long long total = (long long)n * positions * patch;
  gt_for_each(j, total) {
    const long long row = j / patch;
    const int col = (int)(j - row * patch);
    const long long img = row / positions;
    const int pos = (int)(row - img * positions);
    const int oy = pos / out_w, ox = pos - oy * out_w;
    const int tap = col / in_c, c = col - tap * in_c;
    const int ky = tap / k_w, kx = tap - ky * k_w;
    const int iy = oy * s_h - p_h + ky, ix = ox * s_w - p_w + kx;
    float v = 0.0f;
    if (iy >= 0 && iy < in_h && ix >= 0 && ix < in_w)
      v = x[img * ((long long)in_h * in_w * in_c) + ((long long)iy * in_w + ix) * in_c + c];
    cols[j] = v;
  }
}

// col2im_nhwc is the adjoint of im2col_nhwc, as a gather: one thread per element
// x[i, iy, ix, c] of the n images sums, in float32, the elements of cols that
// im2col_nhwc copies from it, in the order of their taps (ky, then kx, ascending),
// starting from 0. No atomics: the result does not depend on scheduling.
extern "C" __global__ void __launch_bounds__(GT_EW_THREADS)
    col2im_nhwc(float* __restrict__ x, const float* __restrict__ cols, int n, int in_h, int in_w, int in_c, int k_h,
                int k_w, int s_h, int s_w, int p_h, int p_w, int out_h, int out_w) {
  const int patch = k_h * k_w * in_c, positions = out_h * out_w, size = in_h * in_w * in_c;
  gt_for_each(j, (long long)n * size) {
    const long long img = j / size;
    const int e = (int)(j - img * size);
    const int pix = e / in_c, c = e - pix * in_c;
    const int iy = pix / in_w, ix = pix - iy * in_w;
    const float* rows = cols + img * positions * (long long)patch;
    // A tap ky reaches row iy from output row oy = (iy + p_h − ky)/s_h when that
    // divides exactly: the first such ky is (iy + p_h) mod s_h, then every s_h-th.
    float s = 0.0f;
    for (int ky = (iy + p_h) % s_h; ky < k_h; ky += s_h) {
      const int oy = (iy + p_h - ky) / s_h;
      if (oy < 0) break;  // ky ascends, so oy descends
      if (oy >= out_h) continue;
      for (int kx = (ix + p_w) % s_w; kx < k_w; kx += s_w) {
        const int ox = (ix + p_w - kx) / s_w;
        if (ox < 0) break;
        if (ox >= out_w) continue;
        s = __fadd_rn(s, rows[(long long)(oy * out_w + ox) * patch + (ky * k_w + kx) * in_c + c]);
      }
    }
    x[j] = s;
  }
}

// bias_activation sets y = act(y + b[column]) in place over the m×c matrix y, the
// same float32 operations as the matrix products' bias-and-activation epilogue.
extern "C" __global__ void __launch_bounds__(GT_EW_THREADS)
    bias_activation(float* __restrict__ y, const float* __restrict__ b, int m, int c, int act, float alpha) {
  gt_for_each(j, (long long)m * c) {
    const int col = (int)(j % c);
    y[j] = gt_activate(__fadd_rn(y[j], b[col]), act, alpha);
  }
}
