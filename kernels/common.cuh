// common.cuh: definitions shared by gantrain's kernels. Compiled by nvcc for the PTX
// modules and, through shim/cuda_shim.h, by g++ for the CPU-thread shim tests.
#pragma once

// Geometry shared with builders.go.
#define GT_EW_THREADS 256  // threads per block of elementwise and row kernels
#define GT_TILE_M 64       // rows of C per matmul block
#define GT_TILE_N 64       // columns of C per matmul block
#define GT_TILE_K 16       // depth of one shared-memory stage of a matmul
#define GT_TILE_PAD 8      // padding of a shared tile row (conflict-free tf32 fragment loads)
#define GT_COL_W 32        // columns per block of the column kernels (block 32×8)
#define GT_COL_H 8

// Activation kinds: the values of backend.Activation.
#define GT_ACT_IDENTITY 0
#define GT_ACT_RELU 1
#define GT_ACT_LEAKY_RELU 2
#define GT_ACT_SIGMOID 3
#define GT_ACT_TANH 4

#define GT_FULL_MASK 0xffffffffu

// gt_for_each is a grid-stride loop over [0, n) with a 64-bit index.
#define gt_for_each(i, n)                                                        \
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < (n); \
       i += (long long)blockDim.x * gridDim.x)

__device__ __forceinline__ float gt_nanf() { return __int_as_float(0x7fc00000); }
__device__ __forceinline__ double gt_nan() { return __longlong_as_double(0x7ff8000000000000ll); }

// gt_max_nan is Go's max for float32: NaN if either operand is NaN.
__device__ __forceinline__ float gt_max_nan(float a, float b) {
  if (a != a) return a;
  if (b != b) return b;
  return b > a ? b : a;
}

// gt_sigmoid is cpu.sigmoid: 1/(1+e^{−x}) in float64, without overflow, rounded once.
__device__ __forceinline__ float gt_sigmoid(float x) {
  if (x >= 0.0f) return __double2float_rn(1.0 / (1.0 + exp(-(double)x)));
  double e = exp((double)x);
  return __double2float_rn(e / (1.0 + e));
}

// gt_activate is cpu.biasActivate's activation of z = x·w + b.
__device__ __forceinline__ float gt_activate(float z, int act, float alpha) {
  switch (act) {
    case GT_ACT_RELU:
      return z <= 0.0f ? 0.0f : z;  // Go's max(z, 0): NaN stays NaN
    case GT_ACT_LEAKY_RELU:
      return z < 0.0f ? __fmul_rn(z, alpha) : z;
    case GT_ACT_SIGMOID:
      return gt_sigmoid(z);
    case GT_ACT_TANH:
      return __double2float_rn(tanh((double)z));
  }
  return z;
}

// gt_act_grad is cpu.activationGrad: dy ⊙ act'(z) written in terms of the output y.
__device__ __forceinline__ float gt_act_grad(float dy, float y, int act, float alpha) {
  switch (act) {
    case GT_ACT_RELU:
      return y <= 0.0f ? 0.0f : dy;
    case GT_ACT_LEAKY_RELU:
      return y < 0.0f ? __fmul_rn(dy, alpha) : dy;
    case GT_ACT_SIGMOID:
      return __fmul_rn(dy, __fmul_rn(y, __fsub_rn(1.0f, y)));
    case GT_ACT_TANH:
      return __fmul_rn(dy, __fsub_rn(1.0f, __fmul_rn(y, y)));
  }
  return dy;
}

// gt_warp_sum adds v over the 32 lanes of a warp (every lane gets the same bits: each
// butterfly step adds the same two partials on both partners). All lanes must call it.
__device__ __forceinline__ double gt_warp_sum(double v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(GT_FULL_MASK, v, o);
  return v;
}

// gt_warp_max is gt_max_nan over the 32 lanes of a warp. All lanes must call it.
__device__ __forceinline__ float gt_warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = gt_max_nan(v, __shfl_xor_sync(GT_FULL_MASK, v, o));
  return v;
}

// gt_block_sum adds v over a block of GT_EW_THREADS threads, in a fixed order; the
// result is valid in thread 0. Every thread of the block must call it.
__device__ __forceinline__ double gt_block_sum(double v) {
  __shared__ double warp_sums[GT_EW_THREADS / 32];
  v = gt_warp_sum(v);
  int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0) warp_sums[warp] = v;
  __syncthreads();
  double s = 0.0;
  if (threadIdx.x == 0)
    for (int w = 0; w < GT_EW_THREADS / 32; w++) s += warp_sums[w];
  return s;
}

// gt_to_tf32 is x as the tensor cores read it in tf32 mode: the top 19 bits (sign,
// exponent, 10 mantissa bits), the low 13 dropped, that is, rounded toward zero. The
// tensor-core kernels pass fp32 registers to mma.sync unchanged and get this reading for
// free; the kernels that multiply on the FMA units in tf32 mode (gemm_dot_tf32, …) call
// it so that every kernel of a tf32 run means the same by tf32. A NaN stays a NaN unless
// its payload lies wholly in the low 13 bits (the device's own NaN, 0x7fffffff, does not).
__device__ __forceinline__ float gt_to_tf32(float x) { return __uint_as_float(__float_as_uint(x) & 0xffffe000u); }

// ---- sm_80 building blocks of the matrix products (gemm.cu) ----

// gt_activate_call is gt_activate out of line: the float64 sigmoid and tanh are large,
// and the unrolled epilogue would otherwise carry one copy per element of the tile.
__device__ __noinline__ float gt_activate_call(float z, int act, float alpha) { return gt_activate(z, act, alpha); }

// gt_activate4_call is gt_activate on four independent values out of line, in one
// body, so that their float64 exp and divide chains overlap: an epilogue that finishes
// a tile in a few blocks (the last block of a split-K tile) is bound by their latency,
// and four calls of gt_activate_call would run the chains one after another.
__device__ __noinline__ float4 gt_activate4_call(float4 z, int act, float alpha) {
  return make_float4(gt_activate(z.x, act, alpha), gt_activate(z.y, act, alpha), gt_activate(z.z, act, alpha),
                     gt_activate(z.w, act, alpha));
}

// gt_mma_tf32 is d += A·B for one m16n8k8 tf32 tile held in the fragment layout of the
// PTX ISA (a: a0..a3, b: b0..b1, d: c0..c3 of each lane). The shim emulates it.
__device__ __forceinline__ void gt_mma_tf32(float d[4], const unsigned int a[4], const unsigned int b[2]) {
#if defined(__CUDA_ARCH__)
  asm volatile(
      "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#else
  gt_shim_mma_m16n8k8_tf32(d, a, b);
#endif
}


// gt_ldsm_x4 is ldmatrix.sync.aligned.m8n8.x4.shared.b16 on 32-bit data: four 8×4
// matrices of floats, each row 16 contiguous bytes of shared memory. Lane l names the
// start of row l%8 of matrix l/8 (16-byte aligned); it receives, from each matrix i,
// the float at row l/4, column l%4 in r[i]. That is the tf32 m16n8k8 fragment layout of
// an operand whose contiguous dimension is k: one instruction in place of four loads.
// All lanes of the warp must call it. The shim emulates it.
__device__ __forceinline__ void gt_ldsm_x4(unsigned int r[4], const float* row) {
#if defined(__CUDA_ARCH__)
  unsigned int s = (unsigned int)__cvta_generic_to_shared(row);
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(s));
#else
  gt_shim_ldmatrix_x4(r, row);
#endif
}

// gt_dynamic_shared is the block's dynamic shared memory (Launch.SharedBytes), 16-byte
// aligned. The shim provides its own.
#if defined(__CUDACC__)
__device__ __forceinline__ float* gt_dynamic_shared() {
  extern __shared__ __align__(16) float gt_dyn_smem[];
  return gt_dyn_smem;
}
#endif

// gt_cp_async16 starts an asynchronous copy of 16 bytes from global src to shared dst
// (both 16-byte aligned), or, when !valid, fills dst with zeros and reads nothing.
__device__ __forceinline__ void gt_cp_async16(float* dst, const float* src, bool valid) {
#if defined(__CUDA_ARCH__)
  unsigned int s = (unsigned int)__cvta_generic_to_shared(dst);
  int n = valid ? 16 : 0;
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(s), "l"(src), "r"(n) : "memory");
#else
  gt_shim_cp_async(dst, src, 16, valid ? 16 : 0);
#endif
}

// gt_cp_async_commit closes the group of the copies this thread started since the last one.
__device__ __forceinline__ void gt_cp_async_commit() {
#if defined(__CUDA_ARCH__)
  asm volatile("cp.async.commit_group;\n" ::: "memory");
#else
  gt_shim_cp_async_commit();
#endif
}

// gt_cp_async_wait waits until at most N of this thread's committed groups are pending.
template <int N>
__device__ __forceinline__ void gt_cp_async_wait() {
#if defined(__CUDA_ARCH__)
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
#else
  gt_shim_cp_async_wait(N);
#endif
}

// gt_st4 writes four floats to 16-byte aligned (shared or global) memory in one access.
__device__ __forceinline__ void gt_st4(float* p, float4 v) {
#if defined(__CUDA_ARCH__)
  *reinterpret_cast<float4*>(p) = v;
#else
  std::memcpy(p, &v, 16);
#endif
}

// gt_ldcg4 reads four floats from 16-byte aligned global memory past L1 (another
// block's writes).
__device__ __forceinline__ float4 gt_ldcg4(const float* p) {
#if defined(__CUDA_ARCH__)
  return __ldcg(reinterpret_cast<const float4*>(p));
#else
  float4 v;
  std::memcpy(&v, p, 16);
  return v;
#endif
}

// gt_ld4 reads four floats from 16-byte aligned shared memory in one access.
__device__ __forceinline__ float4 gt_ld4(const float* p) {
#if defined(__CUDA_ARCH__)
  return *reinterpret_cast<const float4*>(p);
#else
  float4 v;
  std::memcpy(&v, p, 16);
  return v;
#endif
}
