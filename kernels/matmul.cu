// matmul.cu: the dense layers' matrix products. C (M×N, row-major) = op(A)·op(B) with
// an epilogue that adds a bias row and applies an activation, in two precisions:
//   matmul_f32_*: fp32 FMAs; a 64×64 tile of C per block of 256 threads, 4×4 each;
//   matmul_tf32_*: tensor cores, mma.sync.m16n8k8 tf32 (inputs read as tf32, see
//                  gt_to_tf32; fp32 accumulation); 64×64 per block of 4 warps, 32×32 each.
// Suffix nn: C = A·B; tn: C = Aᵀ·B; nt: C = A·Bᵀ (A, B as stored: lda, ldb are their
// row lengths). Blocks: grid (⌈N/64⌉, ⌈M/64⌉, split); block z computes the product over
// k ∈ [z·kchunk, min(K, (z+1)·kchunk)) and writes it to c + z·M·N. With split-K the
// builder passes the workspace as c, no bias and the identity, and
// matmul_splitk_reduce_bias_act adds the slices in order and applies the epilogue.
#include "common.cuh"

// gt_load_tiles stages A[m0:m0+64, k0:k0+16] into As[k][m] and B[k0:k0+16, n0:n0+64]
// into Bs[k][n], zero outside [0,M)×[0,kend) and [0,kend)×[0,N). Each global load is
// coalesced along the operand's stored rows. TF32 truncates each element to tf32 once (gt_to_tf32).
template <bool TA, bool TB, bool TF32, int THREADS>
__device__ __forceinline__ void gt_load_tiles(float (*As)[GT_TILE_M + GT_TILE_PAD], float (*Bs)[GT_TILE_N + GT_TILE_PAD],
                                              const float* __restrict__ a, const float* __restrict__ b, int M, int N,
                                              int kend, int lda, int ldb, int m0, int n0, int k0) {
  const int tid = threadIdx.x;
  for (int idx = tid; idx < GT_TILE_M * GT_TILE_K; idx += THREADS) {
    int mm, kk;
    if (TA) {  // A stored K×M: consecutive threads take consecutive m
      mm = idx % GT_TILE_M, kk = idx / GT_TILE_M;
    } else {  // A stored M×K: consecutive threads take consecutive k
      kk = idx % GT_TILE_K, mm = idx / GT_TILE_K;
    }
    int m = m0 + mm, k = k0 + kk;
    float v = 0.0f;
    if (m < M && k < kend) v = TA ? a[(size_t)k * lda + m] : a[(size_t)m * lda + k];
    As[kk][mm] = TF32 ? gt_to_tf32(v) : v;
  }
  for (int idx = tid; idx < GT_TILE_N * GT_TILE_K; idx += THREADS) {
    int nn, kk;
    if (TB) {  // B stored N×K
      kk = idx % GT_TILE_K, nn = idx / GT_TILE_K;
    } else {  // B stored K×N
      nn = idx % GT_TILE_N, kk = idx / GT_TILE_N;
    }
    int n = n0 + nn, k = k0 + kk;
    float v = 0.0f;
    if (n < N && k < kend) v = TB ? b[(size_t)n * ldb + k] : b[(size_t)k * ldb + n];
    Bs[kk][nn] = TF32 ? gt_to_tf32(v) : v;
  }
}

// gt_store applies the epilogue to one element of C (or of a split-K slice).
__device__ __forceinline__ void gt_store(float* __restrict__ c, const float* __restrict__ bias, int M, int N, int m,
                                         int n, float acc, int act, float alpha) {
  if (m < M && n < N) {
    float z = bias ? __fadd_rn(acc, bias[n]) : acc;
    z = act <= GT_ACT_LEAKY_RELU ? gt_activate(z, act, alpha) : gt_activate_call(z, act, alpha);
    c[(size_t)blockIdx.z * M * N + (size_t)m * N + n] = z;
  }
}

template <bool TA, bool TB>
__device__ __forceinline__ void gt_matmul_f32(float* __restrict__ c, const float* __restrict__ a,
                                              const float* __restrict__ b, const float* __restrict__ bias, int M, int N,
                                              int K, int lda, int ldb, int kchunk, int act, float alpha) {
  __shared__ float As[GT_TILE_K][GT_TILE_M + GT_TILE_PAD];
  __shared__ float Bs[GT_TILE_K][GT_TILE_N + GT_TILE_PAD];
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
  const int m0 = blockIdx.y * GT_TILE_M, n0 = blockIdx.x * GT_TILE_N;
  const int kbeg = blockIdx.z * kchunk, kend = min(K, kbeg + kchunk);
  float acc[4][4];
  for (int i = 0; i < 4; i++)
    for (int j = 0; j < 4; j++) acc[i][j] = 0.0f;
  for (int k0 = kbeg; k0 < kend; k0 += GT_TILE_K) {
    gt_load_tiles<TA, TB, false, 256>(As, Bs, a, b, M, N, kend, lda, ldb, m0, n0, k0);
    __syncthreads();
    for (int kk = 0; kk < GT_TILE_K; kk++) {
      float av[4], bv[4];
      for (int i = 0; i < 4; i++) av[i] = As[kk][ty + 16 * i];
      for (int j = 0; j < 4; j++) bv[j] = Bs[kk][tx + 16 * j];
      for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) acc[i][j] += av[i] * bv[j];
    }
    __syncthreads();
  }
  for (int i = 0; i < 4; i++)
    for (int j = 0; j < 4; j++) gt_store(c, bias, M, N, m0 + ty + 16 * i, n0 + tx + 16 * j, acc[i][j], act, alpha);
}

template <bool TA, bool TB>
__device__ __forceinline__ void gt_matmul_tf32(float* __restrict__ c, const float* __restrict__ a,
                                               const float* __restrict__ b, const float* __restrict__ bias, int M, int N,
                                               int K, int lda, int ldb, int kchunk, int act, float alpha) {
  __shared__ float As[GT_TILE_K][GT_TILE_M + GT_TILE_PAD];
  __shared__ float Bs[GT_TILE_K][GT_TILE_N + GT_TILE_PAD];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int g = lane / 4, t = lane % 4;  // groupID, threadID_in_group
  const int wm = (warp / 2) * 32, wn = (warp % 2) * 32;
  const int m0 = blockIdx.y * GT_TILE_M, n0 = blockIdx.x * GT_TILE_N;
  const int kbeg = blockIdx.z * kchunk, kend = min(K, kbeg + kchunk);
  float acc[2][4][4];
  for (int i = 0; i < 2; i++)
    for (int j = 0; j < 4; j++)
      for (int r = 0; r < 4; r++) acc[i][j][r] = 0.0f;
  for (int k0 = kbeg; k0 < kend; k0 += GT_TILE_K) {
    gt_load_tiles<TA, TB, true, 128>(As, Bs, a, b, M, N, kend, lda, ldb, m0, n0, k0);
    __syncthreads();
    for (int ks = 0; ks < GT_TILE_K; ks += 8) {
      unsigned int af[2][4], bf[4][2];
      for (int i = 0; i < 2; i++) {
        int r = wm + 16 * i + g;
        af[i][0] = __float_as_uint(As[ks + t][r]);          // (row g,   col t)
        af[i][1] = __float_as_uint(As[ks + t][r + 8]);      // (row g+8, col t)
        af[i][2] = __float_as_uint(As[ks + t + 4][r]);      // (row g,   col t+4)
        af[i][3] = __float_as_uint(As[ks + t + 4][r + 8]);  // (row g+8, col t+4)
      }
      for (int j = 0; j < 4; j++) {
        int col = wn + 8 * j + g;
        bf[j][0] = __float_as_uint(Bs[ks + t][col]);      // (row t,   col g)
        bf[j][1] = __float_as_uint(Bs[ks + t + 4][col]);  // (row t+4, col g)
      }
      for (int i = 0; i < 2; i++)
        for (int j = 0; j < 4; j++) gt_mma_tf32(acc[i][j], af[i], bf[j]);
    }
    __syncthreads();
  }
  for (int i = 0; i < 2; i++)
    for (int j = 0; j < 4; j++)
      for (int r = 0; r < 4; r++)  // c0,c1: (row g, cols 2t, 2t+1); c2,c3: row g+8
        gt_store(c, bias, M, N, m0 + wm + 16 * i + g + (r >= 2 ? 8 : 0), n0 + wn + 8 * j + 2 * t + (r & 1),
                 acc[i][j][r], act, alpha);
}

#define GT_MATMUL_ARGS                                                                                     \
  float *__restrict__ c, const float *__restrict__ a, const float *__restrict__ b,                         \
      const float *__restrict__ bias, int M, int N, int K, int lda, int ldb, int kchunk, int act, float alpha
#define GT_MATMUL_PASS c, a, b, bias, M, N, K, lda, ldb, kchunk, act, alpha

// matmul_f32_nn: C = act(A·B + bias) in fp32 (dense forward).
extern "C" __global__ void __launch_bounds__(256) matmul_f32_nn(GT_MATMUL_ARGS) {
  gt_matmul_f32<false, false>(GT_MATMUL_PASS);
}
// matmul_f32_tn: C = Aᵀ·B in fp32 (dense backward dW = xᵀ·dZ).
extern "C" __global__ void __launch_bounds__(256) matmul_f32_tn(GT_MATMUL_ARGS) {
  gt_matmul_f32<true, false>(GT_MATMUL_PASS);
}
// matmul_f32_nt: C = A·Bᵀ in fp32 (dense backward dX = dZ·wᵀ).
extern "C" __global__ void __launch_bounds__(256) matmul_f32_nt(GT_MATMUL_ARGS) {
  gt_matmul_f32<false, true>(GT_MATMUL_PASS);
}
// matmul_tf32_nn: C = act(A·B + bias) on tensor cores (tf32 inputs, fp32 accumulation).
extern "C" __global__ void __launch_bounds__(128) matmul_tf32_nn(GT_MATMUL_ARGS) {
  gt_matmul_tf32<false, false>(GT_MATMUL_PASS);
}
// matmul_tf32_tn: C = Aᵀ·B on tensor cores.
extern "C" __global__ void __launch_bounds__(128) matmul_tf32_tn(GT_MATMUL_ARGS) {
  gt_matmul_tf32<true, false>(GT_MATMUL_PASS);
}
// matmul_tf32_nt: C = A·Bᵀ on tensor cores.
extern "C" __global__ void __launch_bounds__(128) matmul_tf32_nt(GT_MATMUL_ARGS) {
  gt_matmul_tf32<false, true>(GT_MATMUL_PASS);
}

// matmul_splitk_reduce_bias_act sums the split slices of partial products (slice z at
// part + z·mn) in order, adds bias[i % n] (if bias) and applies the activation into c.
extern "C" __global__ void __launch_bounds__(GT_EW_THREADS)
    matmul_splitk_reduce_bias_act(float* __restrict__ c, const float* __restrict__ part,
                                  const float* __restrict__ bias, int mn, int n, int split, int act, float alpha) {
  gt_for_each(i, mn) {
    float s = part[i];
    for (int z = 1; z < split; z++) s += part[(size_t)z * mn + i];
    if (bias) s = __fadd_rn(s, bias[i % n]);
    c[i] = gt_activate(s, act, alpha);
  }
}
