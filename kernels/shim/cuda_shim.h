// cuda_shim.h makes gantrain's CUDA sources compile as C++20 with g++ and run on CPU
// threads, so that the kernels' logic (indexing, bounds, barriers, warp exchanges, the
// mma.sync fragment layout) is tested on machines without a GPU.
//
// Execution model: gt_shim_launch runs a grid one block after another; a block's
// blockDim threads are real std::threads. __syncthreads is a std::barrier over the
// block; a warp's shuffles go through a per-warp exchange buffer between two barriers
// of the warp, so every lane of the warp must take part (as CUDA's full-mask shuffles
// require of converged code). A thread that returns early must not be one that a later
// __syncthreads waits for — the rule CUDA has too.
//
// __shared__ variables become static variables in the linker section "gt_shared":
// one instance per kernel, which is per block because blocks run one at a time. Before
// every block the whole section is filled with 0xff bytes (NaN as float, -1 as int), so
// a read of shared memory before any write shows up as NaN in the result.
//
// Include this header before the .cu files. Build with -std=c++20 -pthread: ISO mode
// (not gnu++20) makes g++ default to -ffp-contract=off, so no multiply-add is fused
// and the _rn intrinsics below round each operation as the device does.
#pragma once

#include <atomic>
#include <barrier>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <semaphore>
#include <stdexcept>
#include <thread>
#include <vector>

#ifdef __CUDACC__
#error "cuda_shim.h is for the host compiler only"
#endif

// ---- qualifiers ----
#define __global__
#define __device__
#define __host__
#define __forceinline__ static inline  // internal linkage: no COMDAT statics in gt_shared
#define __noinline__ __attribute__((noinline))
#define __launch_bounds__(...)
#define __shared__ __attribute__((section("gt_shared"))) static

// ---- built-in variables ----
struct dim3 {
  unsigned int x = 1, y = 1, z = 1;
};
typedef dim3 uint3;
inline thread_local dim3 threadIdx, blockIdx, blockDim, gridDim;

using std::max;
using std::min;

// ---- intrinsics: one IEEE operation each, round to nearest even ----
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fdiv_rn(float a, float b) { return a / b; }
inline double __dadd_rn(double a, double b) { return a + b; }
inline double __dsub_rn(double a, double b) { return a - b; }
inline double __dmul_rn(double a, double b) { return a * b; }
inline double __ddiv_rn(double a, double b) { return a / b; }
inline double __dsqrt_rn(double a) { return std::sqrt(a); }
inline float __double2float_rn(double a) { return (float)a; }
inline float __int_as_float(int v) {
  float f;
  std::memcpy(&f, &v, 4);
  return f;
}
inline float __uint_as_float(unsigned int v) {
  float f;
  std::memcpy(&f, &v, 4);
  return f;
}
inline unsigned int __float_as_uint(float f) {
  unsigned int v;
  std::memcpy(&v, &f, 4);
  return v;
}
inline long long __double_as_longlong(double d) {
  long long v;
  std::memcpy(&v, &d, 8);
  return v;
}
inline double __longlong_as_double(long long v) {
  double d;
  std::memcpy(&d, &v, 8);
  return d;
}

// ---- the block and its warps ----
struct gt_shim_warp {
  explicit gt_shim_warp(int lanes) : bar(lanes), lanes(lanes) {}
  std::barrier<> bar;
  int lanes;
  unsigned long long slot[32][10];  // one lane's outgoing values
  unsigned int frag[2][32][6];      // mma fragments, double-buffered (gt_shim_mma_m16n8k8_tf32)
  const float* rows[2][32];         // ldmatrix row addresses, double-buffered (gt_shim_ldmatrix_x4)
};

struct gt_shim_block {
  explicit gt_shim_block(int threads) : bar(threads) {
    for (int w = 0; w * 32 < threads; w++) warps.emplace_back(std::make_unique<gt_shim_warp>(min(32, threads - 32 * w)));
  }
  std::barrier<> bar;
  std::vector<std::unique_ptr<gt_shim_warp>> warps;
};

inline thread_local gt_shim_block* gt_shim_cur = nullptr;
inline thread_local int gt_shim_tid = 0;

inline void __syncthreads() { gt_shim_cur->bar.arrive_and_wait(); }

inline gt_shim_warp& gt_shim_my_warp() { return *gt_shim_cur->warps[gt_shim_tid / 32]; }

inline void __syncwarp(unsigned int mask = 0xffffffffu) {
  (void)mask;
  gt_shim_my_warp().bar.arrive_and_wait();
}

// gt_shim_exchange publishes v from this lane and returns lane src's value.
template <typename T>
T gt_shim_exchange(unsigned int mask, T v, int src) {
  static_assert(sizeof(T) <= 8, "shuffle of a type wider than 8 bytes");
  gt_shim_warp& w = gt_shim_my_warp();
  if (mask != 0xffffffffu || w.lanes != 32) throw std::logic_error("shim: shuffle needs a full warp and a full mask");
  int lane = gt_shim_tid % 32;
  std::memcpy(&w.slot[lane][0], &v, sizeof(T));
  w.bar.arrive_and_wait();
  T r;
  std::memcpy(&r, &w.slot[src & 31][0], sizeof(T));
  w.bar.arrive_and_wait();
  return r;
}

template <typename T>
T __shfl_sync(unsigned int mask, T v, int src, int width = 32) {
  int lane = gt_shim_tid % 32;
  return gt_shim_exchange(mask, v, (lane & ~(width - 1)) + (src % width));
}
template <typename T>
T __shfl_xor_sync(unsigned int mask, T v, int lane_mask, int width = 32) {
  int lane = gt_shim_tid % 32;
  int src = lane ^ lane_mask;
  if ((src & ~(width - 1)) != (lane & ~(width - 1))) src = lane;
  return gt_shim_exchange(mask, v, src);
}
template <typename T>
T __shfl_down_sync(unsigned int mask, T v, unsigned int delta, int width = 32) {
  int lane = gt_shim_tid % 32;
  int src = lane + (int)delta;
  if ((src & ~(width - 1)) != (lane & ~(width - 1))) src = lane;
  return gt_shim_exchange(mask, v, src);
}

template <typename T>
T atomicAdd(T* p, T v) {
  return std::atomic_ref<T>(*p).fetch_add(v);
}

// __threadfence makes this thread's global writes visible to other blocks before its
// later ones. The shim runs a grid's blocks one after another, ordered by the block
// barrier, so there is nothing to order.
inline void __threadfence() {}

// __ldcg is a load that bypasses L1 (stale lines of another block's writes); the shim
// has no cache.
inline float __ldcg(const float* p) { return *p; }

// ---- 16-byte vectors ----
struct alignas(16) float4 {
  float x, y, z, w;
};
inline float4 make_float4(float x, float y, float z, float w) { return float4{x, y, z, w}; }

// ---- dynamic shared memory ----
// A launch's SharedBytes of dynamic shared memory: one buffer per launch, filled with
// 0xff bytes before every block like the static shared variables.
inline thread_local float* gt_shim_dyn = nullptr;
inline float* gt_dynamic_shared() { return gt_shim_dyn; }

// ---- cp.async ----
// Asynchronous copies from global to shared memory (sm_80's cp.async) are queued per
// thread and grouped by commit_group. When they land is up to the hardware, between
// the issue and the wait_group that covers them; the shim makes either end happen, as
// gt_shim_set_cp_async_mode says: deferred (the default) performs a group's copies only
// at the wait that covers it, so a read of shared memory before its wait sees the
// poison (or the stale stage); eager performs each copy at its issue, so a copy into a
// stage that other threads still read overwrites it under them (ThreadSanitizer then
// reports the race). A kernel must be right in both.
struct gt_shim_copy {
  void* dst;
  const void* src;
  int bytes, src_bytes;
  long long group;
};
struct gt_shim_cp_queue {
  std::vector<gt_shim_copy> pending;
  long long committed = 0;  // groups committed so far
};
inline thread_local gt_shim_cp_queue gt_shim_cpq;
inline std::atomic<int> gt_shim_cp_eager{0};

inline void gt_shim_set_cp_async_mode(int eager) { gt_shim_cp_eager.store(eager); }

// gt_shim_do_copy is one copy: src_bytes bytes from src, the rest of bytes zero-filled.
inline void gt_shim_do_copy(const gt_shim_copy& c) {
  std::memset(c.dst, 0, (size_t)c.bytes);
  if (c.src_bytes > 0) std::memcpy(c.dst, c.src, (size_t)c.src_bytes);
}

// gt_shim_cp_async is cp.async.{ca,cg}.shared.global [dst], [src], bytes, src_bytes.
inline void gt_shim_cp_async(void* dst, const void* src, int bytes, int src_bytes) {
  if (((uintptr_t)dst % (uintptr_t)bytes) != 0 || (src_bytes > 0 && ((uintptr_t)src % (uintptr_t)bytes) != 0))
    throw std::logic_error("shim: cp.async with a misaligned address");
  if (src_bytes < 0 || src_bytes > bytes) throw std::logic_error("shim: cp.async src-size out of range");
  gt_shim_copy c{dst, src, bytes, src_bytes, gt_shim_cpq.committed};
  if (gt_shim_cp_eager.load(std::memory_order_relaxed))
    gt_shim_do_copy(c);
  else
    gt_shim_cpq.pending.push_back(c);
}

inline void gt_shim_cp_async_commit() { gt_shim_cpq.committed++; }

// gt_shim_cp_async_wait is cp.async.wait_group n: every copy of a group older than the
// n most recent committed ones has landed (uncommitted copies stay pending too).
inline void gt_shim_cp_async_wait(int n) {
  long long upto = gt_shim_cpq.committed - n;  // groups [0, upto) must be complete
  auto& q = gt_shim_cpq.pending;
  size_t keep = 0;
  for (size_t i = 0; i < q.size(); i++) {
    if (q[i].group < upto)
      gt_shim_do_copy(q[i]);
    else
      q[keep++] = q[i];
  }
  q.resize(keep);
}

inline float gt_shim_tf32_bits(float x) { return __uint_as_float(__float_as_uint(x) & 0xffffe000u); }

// gt_shim_ldmatrix_x4 is ldmatrix.sync.aligned.m8n8.x4.shared.b16 read as 32-bit
// words: lane l publishes the row address it names (row l%8 of matrix l/8), then takes
// word l%4 of row l/4 of each matrix i from the address lane 8i + l/4 published. The
// addresses go through one of two buffers, alternating per call, for the reason
// gt_shim_mma_m16n8k8_tf32 gives.
inline thread_local unsigned int gt_shim_ldsm_calls = 0;

inline void gt_shim_ldmatrix_x4(unsigned int r[4], const float* row) {
  gt_shim_warp& w = gt_shim_my_warp();
  if (w.lanes != 32) throw std::logic_error("shim: ldmatrix needs a full warp");
  if (reinterpret_cast<uintptr_t>(row) % 16 != 0) throw std::logic_error("shim: ldmatrix row address not 16-byte aligned");
  int lane = gt_shim_tid % 32;
  const float** rows = w.rows[gt_shim_ldsm_calls++ & 1];
  rows[lane] = row;
  w.bar.arrive_and_wait();
  for (int i = 0; i < 4; i++) std::memcpy(&r[i], rows[8 * i + lane / 4] + lane % 4, 4);
}

// gt_shim_mma_m16n8k8_tf32 is mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 with
// d = c (in place): each lane publishes its fragments, then computes its own four
// elements of D from the A and B that the PTX ISA's fragment layout assembles:
//   groupID g = lane/4, threadID_in_group t = lane%4;
//   A (16×8): a0 (g, t), a1 (g+8, t), a2 (g, t+4), a3 (g+8, t+4);
//   B (8×8):  b0 (t, g), b1 (t+4, g);
//   C, D (16×8): c0 (g, 2t), c1 (g, 2t+1), c2 (g+8, 2t), c3 (g+8, 2t+1).
// The fragments go through one of two buffers, alternating per call, so one barrier
// per mma suffices: a lane that has read call i's buffer and writes call i+1's cannot
// write call i's again before every lane has passed call i+1's barrier, that is, has
// finished reading it. Every lane of a warp makes the same calls, so the lanes' counts
// agree.
inline thread_local unsigned int gt_shim_mma_calls = 0;

inline void gt_shim_mma_m16n8k8_tf32(float d[4], const unsigned int a[4], const unsigned int b[2]) {
  gt_shim_warp& w = gt_shim_my_warp();
  if (w.lanes != 32) throw std::logic_error("shim: mma.sync needs a full warp");
  int lane = gt_shim_tid % 32;
  unsigned int(*f)[6] = w.frag[gt_shim_mma_calls++ & 1];
  for (int i = 0; i < 4; i++) f[lane][i] = a[i];
  for (int i = 0; i < 2; i++) f[lane][4 + i] = b[i];
  w.bar.arrive_and_wait();
  float A[16][8], B[8][8];
  for (int l = 0; l < 32; l++) {
    int g = l / 4, t = l % 4;
    A[g][t] = __uint_as_float(f[l][0]);
    A[g + 8][t] = __uint_as_float(f[l][1]);
    A[g][t + 4] = __uint_as_float(f[l][2]);
    A[g + 8][t + 4] = __uint_as_float(f[l][3]);
    B[t][g] = __uint_as_float(f[l][4]);
    B[t + 4][g] = __uint_as_float(f[l][5]);
  }
  int g = lane / 4, t = lane % 4;
  for (int i = 0; i < 4; i++) {
    int row = g + (i >= 2 ? 8 : 0), col = 2 * t + (i & 1);
    float s = d[i];
    // The tensor core reads only the tf32 bits of its inputs (the low 13 are ignored).
    for (int k = 0; k < 8; k++) s += gt_shim_tf32_bits(A[row][k]) * gt_shim_tf32_bits(B[k][col]);
    d[i] = s;
  }
}

// ---- shared-memory poisoning ----
extern "C" char __start_gt_shared[] __attribute__((weak));
extern "C" char __stop_gt_shared[] __attribute__((weak));

inline void gt_shim_poison_shared() {
  char *lo = __start_gt_shared, *hi = __stop_gt_shared;
  if (lo && hi > lo) std::memset(lo, 0xff, (size_t)(hi - lo));
}

// gt_shim_pool is a pool of worker threads, reused by every launch (creating a block's
// threads for each launch would dominate the tests' time). Worker i runs thread i of
// each block; the workers are detached and live until the process ends.
struct gt_shim_pool {
  std::mutex mu;  // one launch at a time
  // One semaphore per worker, in a fixed array: adding workers never moves the
  // semaphores the running ones wait on.
  std::unique_ptr<std::binary_semaphore> go[1024];
  int workers = 0;
  std::function<void(int)> job;
  std::atomic<int> running{0};
  std::binary_semaphore done{0};

  void run(int threads, const std::function<void(int)>& f) {
    std::lock_guard<std::mutex> lock(mu);
    while (workers < threads) {
      int id = workers++;
      go[id] = std::make_unique<std::binary_semaphore>(0);
      std::thread([this, id] {
        for (;;) {
          go[id]->acquire();
          job(id);
          if (running.fetch_sub(1) == 1) done.release();
        }
      }).detach();
    }
    job = f;
    running.store(threads);
    for (int i = 0; i < threads; i++) go[i]->release();
    done.acquire();
  }
};

inline gt_shim_pool& gt_shim_workers() {
  static gt_shim_pool* pool = new gt_shim_pool;  // never destroyed: its threads outlive exit
  return *pool;
}

// gt_shim_launch runs kernel over grid×block: blocks in order (x fastest), each on
// block.x·block.y·block.z threads, with shared memory (static, and `shared` bytes of
// dynamic) poisoned before each block. Copies a block left pending (cp.async never
// waited for) are dropped, as a block's exit drops them on the device.
inline void gt_shim_launch(const std::function<void()>& kernel, dim3 grid, dim3 block, size_t shared = 0) {
  const int threads = (int)(block.x * block.y * block.z);
  if (threads <= 0 || threads > 1024) throw std::invalid_argument("shim: bad block size");
  gt_shim_block blk(threads);
  std::vector<float4> dyn((shared + 15) / 16);
  gt_shim_workers().run(threads, [&](int tid) {
    gt_shim_cur = &blk;
    gt_shim_tid = tid;
    gt_shim_dyn = dyn.empty() ? nullptr : &dyn[0].x;
    blockDim = block;
    gridDim = grid;
    threadIdx.x = tid % block.x;
    threadIdx.y = (tid / block.x) % block.y;
    threadIdx.z = tid / (block.x * block.y);
    for (unsigned int z = 0; z < grid.z; z++)
      for (unsigned int y = 0; y < grid.y; y++)
        for (unsigned int x = 0; x < grid.x; x++) {
          if (tid == 0) {
            gt_shim_poison_shared();
            if (!dyn.empty()) std::memset(dyn.data(), 0xff, dyn.size() * sizeof(float4));
          }
          blk.bar.arrive_and_wait();
          blockIdx.x = x, blockIdx.y = y, blockIdx.z = z;
          kernel();
          gt_shim_cpq.pending.clear();
          gt_shim_cpq.committed = 0;
          blk.bar.arrive_and_wait();
        }
    gt_shim_cur = nullptr;
    gt_shim_dyn = nullptr;
  });
}
