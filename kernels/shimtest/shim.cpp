// shim.cpp compiles every kernel of kernels/all.cu with the CPU-thread shim and
// exposes a dispatcher by kernel name to the Go tests (shim.go).
#include "../shim/cuda_shim.h"
#include "../all.cu"
#include "srchash.h"

#include <cstdio>
#include <string>
#include <utility>

namespace {

// Argument kinds, as kernels.ArgKind.
enum { kPtr = 0, kInt = 1, kFloat = 2, kU64 = 3 };

template <typename T>
struct arg_of;
template <typename T>
struct arg_of<T*> {
  static constexpr int kind = kPtr;
  static T* get(uint64_t b) { return reinterpret_cast<T*>((uintptr_t)b); }
};
template <>
struct arg_of<int> {
  static constexpr int kind = kInt;
  static int get(uint64_t b) { return (int)(uint32_t)b; }
};
template <>
struct arg_of<float> {
  static constexpr int kind = kFloat;
  static float get(uint64_t b) { return __uint_as_float((uint32_t)b); }
};
template <>
struct arg_of<unsigned long long> {
  static constexpr int kind = kU64;
  static unsigned long long get(uint64_t b) { return b; }
};

using invoker = std::function<std::string(const uint8_t*, const uint64_t*, int, dim3, dim3, size_t)>;

template <typename... P>
invoker make_invoker(void (*f)(P...)) {
  return [f](const uint8_t* kinds, const uint64_t* bits, int n, dim3 g, dim3 b, size_t shared) -> std::string {
    constexpr int want = sizeof...(P);
    if (n != want) return "takes " + std::to_string(want) + " arguments, got " + std::to_string(n);
    constexpr int wk[] = {arg_of<P>::kind..., 0};
    for (int i = 0; i < want; i++)
      if (kinds[i] != wk[i])
        return "argument " + std::to_string(i) + " has kind " + std::to_string(kinds[i]) + ", want " +
               std::to_string(wk[i]);
    [&]<size_t... I>(std::index_sequence<I...>) {
      gt_shim_launch([&] { f(arg_of<P>::get(bits[I])...); }, g, b, shared);
    }(std::index_sequence_for<P...>{});
    return "";
  };
}

struct entry {
  const char* name;
  invoker run;
};

#define K(name) {#name, make_invoker(name)}
// gemm.cu's configurations (GT_GEMM_TC, GT_GEMM_SIMT there), each in three layouts (the
// swizzled tensor-core ones in nn and tn), in nn with the maxout epilogue (_mx), in nn
// and nt with the implicit im2col (_im), and in nn and nt as a transposed convolution (_ct).
#define K_TC(BM, BN, BK, WM, WN, S)                                                                     \
  K(gemm_tc_nn_##BM##x##BN##x##BK##_w##WM##x##WN##_s##S), K(gemm_tc_tn_##BM##x##BN##x##BK##_w##WM##x##WN##_s##S), \
      K(gemm_tc_nt_##BM##x##BN##x##BK##_w##WM##x##WN##_s##S),                                                      \
      K(gemm_tc_nn_##BM##x##BN##x##BK##_w##WM##x##WN##_s##S##_swz),                                                \
      K(gemm_tc_tn_##BM##x##BN##x##BK##_w##WM##x##WN##_s##S##_swz),                                                \
      K(gemm_tc_nn_##BM##x##BN##x##BK##_w##WM##x##WN##_s##S##_mx),                                                 \
      K(gemm_tc_nn_##BM##x##BN##x##BK##_w##WM##x##WN##_s##S##_swz_mx),                                             \
      K(gemm_tc_nn_##BM##x##BN##x##BK##_w##WM##x##WN##_s##S##_im),                                                 \
      K(gemm_tc_nn_##BM##x##BN##x##BK##_w##WM##x##WN##_s##S##_swz_im),                                             \
      K(gemm_tc_nt_##BM##x##BN##x##BK##_w##WM##x##WN##_s##S##_im),                                                 \
      K(gemm_tc_nn_##BM##x##BN##x##BK##_w##WM##x##WN##_s##S##_ct),                                                 \
      K(gemm_tc_nn_##BM##x##BN##x##BK##_w##WM##x##WN##_s##S##_swz_ct),                                             \
      K(gemm_tc_nt_##BM##x##BN##x##BK##_w##WM##x##WN##_s##S##_ct)
#define K_SIMT(BM, BN, BK, TM, TN, S)                                                                        \
  K(gemm_simt_nn_##BM##x##BN##x##BK##_t##TM##x##TN##_s##S), K(gemm_simt_tn_##BM##x##BN##x##BK##_t##TM##x##TN##_s##S), \
      K(gemm_simt_nt_##BM##x##BN##x##BK##_t##TM##x##TN##_s##S),                                                    \
      K(gemm_simt_nn_##BM##x##BN##x##BK##_t##TM##x##TN##_s##S##_mx),                                               \
      K(gemm_simt_nn_##BM##x##BN##x##BK##_t##TM##x##TN##_s##S##_im),                                               \
      K(gemm_simt_nt_##BM##x##BN##x##BK##_t##TM##x##TN##_s##S##_im),                                               \
      K(gemm_simt_nn_##BM##x##BN##x##BK##_t##TM##x##TN##_s##S##_ct),                                               \
      K(gemm_simt_nt_##BM##x##BN##x##BK##_t##TM##x##TN##_s##S##_ct)
const entry kernels[] = {
    K(fill_f32),
    K(copy_words),
    K(mul_f32),
    K(wait_ns),
    K(matmul_f32_nn),
    K(matmul_f32_tn),
    K(matmul_f32_nt),
    K(matmul_tf32_nn),
    K(matmul_tf32_tn),
    K(matmul_tf32_nt),
    K(matmul_splitk_reduce_bias_act),
    K_TC(256, 128, 32, 64, 64, 3),
    K_TC(128, 128, 32, 64, 64, 3),
    K_TC(128, 128, 32, 64, 32, 3),
    K_TC(128, 64, 32, 64, 32, 3),
    K_TC(64, 128, 32, 32, 64, 3),
    K_TC(64, 64, 32, 32, 32, 4),
    K_TC(32, 64, 32, 32, 32, 4),
    K_SIMT(128, 128, 16, 8, 8, 3),
    K_SIMT(128, 64, 16, 8, 8, 3),
    K_SIMT(64, 64, 16, 4, 4, 3),
    K_SIMT(32, 64, 16, 4, 4, 3),
    K(gemm_dot_f32_nn), K(gemm_dot_f32_tn), K(gemm_dot_f32_nt),
    K(gemm_dot_tf32_nn), K(gemm_dot_tf32_tn), K(gemm_dot_tf32_nt),
    K(gemm_wdot_f32_nn), K(gemm_wdot_f32_tn), K(gemm_wdot_f32_nt),
    K(gemm_wdot_tf32_nn), K(gemm_wdot_tf32_tn), K(gemm_wdot_tf32_nt),
    K(dense_backward_act_bias),
    K(bias_grad_reduce),
    K(maxout_forward),
    K(maxout_backward),
    K(maxout_dropout_forward),
    K(maxout_dropout_backward),
    K(dropout_mask_apply),
    K(uniform_fill),
    K(normal_fill),
    K(sigmoid_bce_loss_grad),
    K(sigmoid_sum_partial),
    K(sum_partials_to_slot),
    K(softmax_xent_loss_grad),
    K(logsumexp_rows),
    K(sgd_momentum_update),
    K(adam_update),
    K(moving_average_update),
    K(column_sumsq_partial),
    K(clip_columns_apply),
    K(gather_rows),
    K(im2col_nhwc),
    K(col2im_nhwc),
    K(bias_activation),
    K(batchnorm_stats_partial),
    K(batchnorm_forward_apply),
    K(batchnorm_running_update),
    K(batchnorm_infer),
    K(batchnorm_backward_partial),
    K(batchnorm_backward_apply),
};
#undef K_SIMT
#undef K_TC
#undef K

}  // namespace

extern "C" {

// gt_run_kernel launches kernel `name` on the shim; it returns 0, or -1 with a message
// in err (errlen bytes).
int gt_run_kernel(const char* name, const unsigned int* grid, const unsigned int* block, unsigned int shared,
                  int nargs, const uint8_t* kinds, const uint64_t* bits, char* err, int errlen) {
  for (const entry& e : kernels) {
    if (std::string(name) != e.name) continue;
    dim3 g{grid[0], grid[1], grid[2]}, b{block[0], block[1], block[2]};
    std::string msg = e.run(kinds, bits, nargs, g, b, shared);
    if (msg.empty()) return 0;
    std::snprintf(err, errlen, "%s: %s", name, msg.c_str());
    return -1;
  }
  std::snprintf(err, errlen, "%s: no such kernel in the shim", name);
  return -1;
}

int gt_kernel_count() { return (int)(sizeof kernels / sizeof kernels[0]); }
const char* gt_kernel_name(int i) { return kernels[i].name; }
const char* gt_sources_sha256() { return GT_KERNEL_SOURCES_SHA256; }

// Test hooks for the Box–Muller ports: Go's math.Log and math.Cos on ToNormal's inputs.
void gt_go_log_batch(const double* x, double* y, int n) {
  for (int i = 0; i < n; i++) y[i] = gt_go_log(x[i]);
}
void gt_go_cos_batch(const double* x, double* y, int n) {
  for (int i = 0; i < n; i++) y[i] = gt_go_cos(x[i]);
}
float gt_to_tf32_host(float x) { return gt_to_tf32(x); }
void gt_set_cp_async_eager(int eager) { gt_shim_set_cp_async_mode(eager); }
}
