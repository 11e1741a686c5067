// gemm.cu: the dense layers' matrix products, pipelined. C (M×N, row-major) =
// op(A)·op(B), then + bias (1×N) and an activation, like matmul.cu's kernels, in
// configurations an autotuner chooses among (kernels/gemm.go lists them):
//   gemm_tc_*:   tensor cores, mma.sync.m16n8k8 tf32 (fp32 inputs passed unchanged: the
//                tensor cores read their tf32 bits, see gt_to_tf32; fp32 accumulation);
//                a block of warps, each a WM×WN tile of C;
//   gemm_simt_*: fp32 FMAs; each thread a TM×TN tile of C, read from shared memory in
//                16-byte accesses.
// Both stage BM×BK of A and BK×BN of B per step through a STAGES-deep ring in dynamic
// shared memory, filled with 16-byte cp.async copies (zero-filled outside the operand),
// so the loads of later steps are in flight while the current one is multiplied. The
// tiles keep the operands' stored layout (no transposition on the way in); a row of a
// tile is padded so that the reads of the multiply are free of bank conflicts.
//
// 16-byte copies need every operand row to start 16-byte aligned and the contiguous
// extents to be multiples of 4 floats (the builder checks; matmul.cu takes the rest).
//
// Suffix nn: C = A·B; tn: C = Aᵀ·B; nt: C = A·Bᵀ (lda, ldb: the stored row lengths).
// Suffix _im (nn and nt): a product whose A is the im2col of NHWC images (a
// convolution's forward product; the input gradient of a transposed convolution), read
// from the images themselves, which also stores the columns (gt_conv).
// Suffix _ct (nn and nt): a transposed convolution's forward pass (nn; nt: a
// convolution's input gradient), its col2im, bias and activation included, as one
// product per output phase (gt_convt).
// Grid (⌈N/nstride⌉, ⌈M/BM⌉, split), nstride = BN but with the maxout epilogue (below).
// With split > 1, block z multiplies over k ∈ [z·kchunk, min(K, (z+1)·kchunk)) (kchunk
// a multiple of BK), writes its partial tile to
// ws + z·M·N and counts itself in counters[tile]; the block that counts last adds the
// split partials in order z = 0, 1, … (the same sum whichever block is last), applies
// the epilogue, and resets the counter to zero for the next launch. No reduction
// launch, and the result is deterministic.
//
// Maxout epilogue (pieces > 1, nn only): C's columns are groups of `pieces` adjacent
// pieces of a maxout unit. The tiles then step nstride columns (a multiple of both 4 and
// pieces, at most BN; the B tile's columns beyond it are loaded and not used) so that no
// unit straddles two tiles, and the epilogue writes y (M×N/pieces) = the max over each
// unit's pieces of act(acc + bias), with the first winning piece in arg and, given a
// mask, dropout: mask = 1/keep or 0 from word (m·units + u) of the Philox stream, y =
// max·mask — maxout_dropout_forward's expressions, so the result equals the product
// followed by that kernel bit for bit. The kernel's c is then y: C is not stored.
#include "common.cuh"
#include "philox.cuh"

// gt_maxout is a maxout epilogue's arguments (pieces ≤ 1: none).
struct gt_maxout {
  int* arg;
  float* mask;
  int pieces, nstride;
  float keep, scale;
  unsigned long long seed, offset;
};

// Operand tiles in shared memory. A tile holds OUT stored rows of IN contiguous floats.
// Padded tiles (CPT = 0) pad a row to LD: by 4 floats when the contiguous dimension is
// k (so that the 8 rows an ldmatrix or a fragment read touches start 4 banks apart), by
// 8 when it is m or n (so that rows k and k+1..3 start 8 banks apart). The tensor-core
// kernels' m- or n-contiguous tiles are swizzled instead (CPT = 1 or 2, the 16-byte
// chunks of a row each thread reads per fragment load): unpadded, the chunk c of row r
// stored at chunk c ^ gt_swz<CPT>(r), which keeps the 16-byte fragment loads of
// gt_gemm_tc free of bank conflicts (see there).
template <int CPT>
__device__ __forceinline__ int gt_swz(int r) {
  return CPT == 1 ? 2 * (r & 3) : CPT == 2 ? (r & 1) | ((r & 2) << 1) : 0;
}

template <int ROWS, int COLS, bool KCONTIG, int CPT = 0>
struct gt_tile {
  static_assert(CPT == 0 || (!KCONTIG && COLS % 32 == 0), "swizzled tiles: m or n contiguous, whole 8-chunk groups");
  static constexpr int OUT = ROWS, IN = COLS, LD = COLS + (CPT ? 0 : KCONTIG ? 4 : 8), SIZE = ROWS * LD, SWZ = CPT;
};

// gt_load_tile starts the cp.async copies of the tile [o0, o0+OUT) × [i0, i0+IN) of a
// row-major operand g (row length ld) into s: rows o ≥ orows and columns i ≥ iend are
// zero-filled (iend is a multiple of 4, so a 16-byte chunk is wholly in or out).
template <int OUT, int IN, int LD, int CPT, int THREADS>
__device__ __forceinline__ void gt_load_tile(float* s, const float* __restrict__ g, int ld, int o0, int orows, int i0,
                                             int iend) {
  constexpr int CH = IN / 4, TOTAL = OUT * CH, ITERS = (TOTAL + THREADS - 1) / THREADS;
#pragma unroll
  for (int it = 0; it < ITERS; it++) {
    int c = it * THREADS + (int)threadIdx.x;
    if (TOTAL % THREADS == 0 || c < TOTAL) {
      int r = c / CH, col = (c % CH) * 4;
      int o = o0 + r, i = i0 + col;
      bool valid = o < orows && i < iend;
      gt_cp_async16(s + r * LD + (((col >> 2) ^ gt_swz<CPT>(r)) << 2), valid ? g + (size_t)o * ld + i : g, valid);
    }
  }
}

// gt_gemm_geometry: the shared-memory layout of one pipeline stage of op(A)·op(B);
// ACPT, BCPT: the swizzle of A's and B's tiles when they are m- or n-contiguous (0:
// padded; see gt_tile).
template <bool TA, bool TB, int BM, int BN, int BK, int ACPT = 0, int BCPT = 0>
struct gt_gemm_geometry {
  // A: !TA stored M×K (tile BM rows of BK), TA stored K×M (BK rows of BM).
  using At = gt_tile<TA ? BK : BM, TA ? BM : BK, !TA, TA ? ACPT : 0>;
  // B: !TB stored K×N (BK rows of BN), TB stored N×K (BN rows of BK).
  using Bt = gt_tile<TB ? BN : BK, TB ? BK : BN, TB, TB ? 0 : BCPT>;
  static constexpr int STAGE = At::SIZE + Bt::SIZE;  // floats
  static constexpr bool TRANS_B = TB;

  // load starts the copies of k-step [k0, k0+BK) into stage s.
  template <int THREADS>
  __device__ static inline void load(float* s, const float* __restrict__ a, const float* __restrict__ b, int M,
                                              int N, int kend, int lda, int ldb, int m0, int n0, int k0) {
    if (TA)
      gt_load_tile<At::OUT, At::IN, At::LD, At::SWZ, THREADS>(s, a, lda, k0, kend, m0, M);
    else
      gt_load_tile<At::OUT, At::IN, At::LD, At::SWZ, THREADS>(s, a, lda, m0, M, k0, kend);
    if (TB)
      gt_load_tile<Bt::OUT, Bt::IN, Bt::LD, Bt::SWZ, THREADS>(s + At::SIZE, b, ldb, n0, N, k0, kend);
    else
      gt_load_tile<Bt::OUT, Bt::IN, Bt::LD, Bt::SWZ, THREADS>(s + At::SIZE, b, ldb, k0, kend, n0, N);
  }
};

// gt_ld_swz reads the CPT·4 floats of row r of a swizzled tile (row length LD) from
// logical chunk c on, into v.
template <int CPT, int LD>
__device__ __forceinline__ void gt_ld_swz(float v[], const float* t, int r, int c) {
#pragma unroll
  for (int q = 0; q < CPT; q++) {
    float4 x = gt_ld4(t + r * LD + (((c + q) ^ gt_swz<CPT>(r)) << 2));
    v[4 * q] = x.x, v[4 * q + 1] = x.y, v[4 * q + 2] = x.z, v[4 * q + 3] = x.w;
  }
}

// gt_gemm_mainloop runs the pipeline over this block's k range: for each k-step, wait
// for its stage, start the copies of the step STAGES−1 ahead into the stage the last
// step used (free: every thread has passed the barrier since), and call
// multiply(stage). One barrier per step.
template <typename G, int STAGES, int THREADS, int BK, typename Multiply>
__device__ __forceinline__ void gt_gemm_mainloop(float* smem, const float* __restrict__ a, const float* __restrict__ b,
                                                 int M, int N, int lda, int ldb, int m0, int n0, int kbeg, int kend,
                                                 Multiply multiply) {
  const int steps = kend > kbeg ? (kend - kbeg + BK - 1) / BK : 0;
#pragma unroll
  for (int s = 0; s < STAGES - 1; s++) {
    if (s < steps) G::template load<THREADS>(smem + s * G::STAGE, a, b, M, N, kend, lda, ldb, m0, n0, kbeg + s * BK);
    gt_cp_async_commit();
  }
  for (int kt = 0; kt < steps; kt++) {
    gt_cp_async_wait<STAGES - 2>();
    __syncthreads();
    int next = kt + STAGES - 1;
    if (next < steps)
      G::template load<THREADS>(smem + (next % STAGES) * G::STAGE, a, b, M, N, kend, lda, ldb, m0, n0,
                                kbeg + next * BK);
    gt_cp_async_commit();
    multiply(smem + (kt % STAGES) * G::STAGE);
  }
}

// gt_conv is an implicit im2col (the *_im kernels): A is the column matrix that
// conv.cu's im2col_nhwc makes of the NHWC images x, read straight from x, and the
// blocks of the first column of tiles store the A tiles they load into cols, so that
// cols = im2col(x) as after that kernel. in_c is a multiple of 4, so a 16-byte chunk of
// a column row is 4 channels of one tap: one copy from x, or zeros in the padding.
struct gt_conv {
  float* cols;
  int in_h, in_w, in_c, k_w, s_h, s_w, p_h, p_w, out_w, positions;
};

// gt_conv_loader is the state of the copies of A's tiles from the images, k-step after
// k-step in order. A thread copies the same column of every tile (its chunks are
// THREADS apart, a multiple of the CH chunks of a row) and the same rows of a block's
// tiles, so the rows are decomposed into image and window origin once
// (gt_conv_loader_init), and the column's tap (ky, kx) and channel are carried from
// step to step with no division (gt_conv_loader_load).
template <typename G, int THREADS>
struct gt_conv_loader {
  static constexpr int CH = G::At::IN / 4, ROWS = G::At::OUT, TOTAL = ROWS * CH,
                       ITERS = (TOTAL + THREADS - 1) / THREADS, PER = THREADS / CH;
  static_assert(THREADS % CH == 0, "a thread's chunks are in one column of the tile");
  long long base[ITERS];       // x's offset of the row's image
  int iy0[ITERS], ix0[ITERS];  // the row's window origin (iy0 far below the image: a row ≥ M)
  int col, k, ky, kx, ch;      // this thread's column of the tile; k = k0 + col, its tap and channel
};

template <typename G, int THREADS>
__device__ __forceinline__ void gt_conv_loader_init(gt_conv_loader<G, THREADS>& l, const gt_conv& cv, int M, int m0,
                                                    int kbeg) {
  using L = gt_conv_loader<G, THREADS>;
  l.col = ((int)threadIdx.x % L::CH) * 4;
  const int r0 = (int)threadIdx.x / L::CH;
#pragma unroll
  for (int it = 0; it < L::ITERS; it++) {
    const int m = m0 + r0 + it * L::PER;
    l.base[it] = 0, l.iy0[it] = -(1 << 30), l.ix0[it] = 0;  // with any tap, never in the image
    if (m < M) {
      const int img = m / cv.positions, pos = m - img * cv.positions;
      const int oy = pos / cv.out_w, ox = pos - oy * cv.out_w;
      l.base[it] = (long long)img * cv.in_h * cv.in_w * cv.in_c;
      l.iy0[it] = oy * cv.s_h - cv.p_h, l.ix0[it] = ox * cv.s_w - cv.p_w;
    }
  }
  l.k = kbeg + l.col;
  const int tap = l.k / cv.in_c;
  l.ch = l.k - tap * cv.in_c, l.ky = tap / cv.k_w, l.kx = tap - l.ky * cv.k_w;
}

// gt_conv_loader_load starts the copies of the next k-step's A tile into stage s (zeros
// in the padding, past kend and in the rows ≥ M), and B's tile (stored K×N, or N×K for
// nt) as gt_load_tile does.
template <typename G, int THREADS>
__device__ __forceinline__ void gt_conv_loader_load(gt_conv_loader<G, THREADS>& l, float* s,
                                                    const float* __restrict__ x, const float* __restrict__ b, int N,
                                                    int kend, int ldb, int n0, int k0, const gt_conv& cv) {
  using L = gt_conv_loader<G, THREADS>;
#pragma unroll
  for (int it = 0; it < L::ITERS; it++) {
    const int r = (int)threadIdx.x / L::CH + it * L::PER;
    if (L::TOTAL % THREADS == 0 || r < L::ROWS) {
      const int iy = l.iy0[it] + l.ky, ix = l.ix0[it] + l.kx;
      const bool valid = l.k < kend && (unsigned)iy < (unsigned)cv.in_h && (unsigned)ix < (unsigned)cv.in_w;
      const float* src = valid ? x + l.base[it] + ((long long)iy * cv.in_w + ix) * cv.in_c + l.ch : x;
      gt_cp_async16(s + r * G::At::LD + l.col, src, valid);
    }
  }
  using Bt = typename G::Bt;
  if (G::TRANS_B)
    gt_load_tile<Bt::OUT, Bt::IN, Bt::LD, Bt::SWZ, THREADS>(s + G::At::SIZE, b, ldb, n0, N, k0, kend);
  else
    gt_load_tile<Bt::OUT, Bt::IN, Bt::LD, Bt::SWZ, THREADS>(s + G::At::SIZE, b, ldb, k0, kend, n0, N);
  // On to the next k-step: BK columns on, across as many taps as that spans.
  l.k += G::At::IN;
  l.ch += G::At::IN;
  while (l.ch >= cv.in_c) {
    l.ch -= cv.in_c;
    if (++l.kx == cv.k_w) l.kx = 0, l.ky++;
  }
}

// gt_conv_store stores the landed A tile of k-step k0 (an implicit im2col's) into
// cols (M×K, row length K): rows m < M and columns k < kend, in 16-byte chunks. Only
// the blocks of the first column of tiles store, so each element is stored once.
template <typename G, int THREADS>
__device__ __forceinline__ void gt_conv_store(const float* s, const gt_conv& cv, int M, int K, int kend, int m0,
                                              int k0) {
  if (blockIdx.x != 0) return;
  constexpr int CH = G::At::IN / 4, TOTAL = G::At::OUT * CH, ITERS = (TOTAL + THREADS - 1) / THREADS;
#pragma unroll
  for (int it = 0; it < ITERS; it++) {
    const int c = it * THREADS + (int)threadIdx.x, r = c / CH, col = (c % CH) * 4;
    const int m = m0 + r, k = k0 + col;
    if ((TOTAL % THREADS == 0 || c < TOTAL) && m < M && k < kend)
      gt_st4(cv.cols + (size_t)m * K + k, gt_ld4(s + r * G::At::LD + col));
  }
}

// gt_gemm_mainloop_im is gt_gemm_mainloop with the implicit im2col: A's tiles come from
// the images (gt_conv_loader), and each k-step's landed A tile is stored into the
// columns (gt_conv_store) before the next step's copies are started. A loop of its own
// rather than hooks in gt_gemm_mainloop, which leaves the other kernels' code as it was
// measured (with hooks, nvcc 11.8 schedules some of them differently).
template <typename G, int STAGES, int THREADS, int BK, typename Multiply>
__device__ __forceinline__ void gt_gemm_mainloop_im(float* smem, const float* __restrict__ x,
                                                    const float* __restrict__ b, int M, int N, int K, int ldb, int m0,
                                                    int n0, int kbeg, int kend, const gt_conv& cv, Multiply multiply) {
  const int steps = kend > kbeg ? (kend - kbeg + BK - 1) / BK : 0;
  gt_conv_loader<G, THREADS> loader;
  gt_conv_loader_init(loader, cv, M, m0, kbeg);
#pragma unroll
  for (int s = 0; s < STAGES - 1; s++) {
    if (s < steps) gt_conv_loader_load(loader, smem + s * G::STAGE, x, b, N, kend, ldb, n0, kbeg + s * BK, cv);
    gt_cp_async_commit();
  }
  for (int kt = 0; kt < steps; kt++) {
    gt_cp_async_wait<STAGES - 2>();
    __syncthreads();
    gt_conv_store<G, THREADS>(smem + (kt % STAGES) * G::STAGE, cv, M, K, kend, m0, kbeg + kt * BK);
    int next = kt + STAGES - 1;
    if (next < steps)
      gt_conv_loader_load(loader, smem + (next % STAGES) * G::STAGE, x, b, N, kend, ldb, n0, kbeg + next * BK, cv);
    gt_cp_async_commit();
    multiply(smem + (kt % STAGES) * G::STAGE);
  }
}

// gt_convt is a transposed convolution's forward pass done as products (the *_ct
// kernels): y = act(col2im(x·w) + bias), col2im_nhwc's geometry (the convolution from
// y's n images, in_h×in_w×in_c, to x's, out_h×out_w×xc), w xc×(k_h·k_w·in_c) (nn) or
// its transpose (nt: a convolution's input gradient, x the output's gradient). An output
// pixel (iy, ix) receives the taps ky ≡ iy + p_h (mod s_h), kx ≡ ix + p_w (mod s_w):
// the pixels of a phase (qy, qx) = ((iy + p_h) mod s_h, (ix + p_w) mod s_w) share
// theirs, ky = qy + s_h·ty and kx = qx + s_w·tx. Each phase is then one product, C
// (the phase's pixels × in_c) = A·B over k = (ty, tx, c), with A(pixel, k) = x[img,
// oy − ty, ox − tx, c] for oy = (iy + p_h − qy)/s_h, ox likewise (0 outside x), and
// B(k, j) = w[c, (ky·k_w + kx)·in_c + j] (nt: w[(ky·k_w + kx)·in_c + j, c]): the
// product's FLOPs are those of x·w, and no
// columns are stored. blockIdx.z is the phase; xc and in_c are multiples of 4 (16-byte
// copies of 4 channels), and there is no split.
struct gt_convt {
  int n, in_h, in_w, in_c, k_h, k_w, s_h, s_w, p_h, p_w, out_h, out_w, xc;
};

// gt_ct_phase is the product of phase blockIdx.z: its first output row and column
// (ry, rx), its output rows and columns per image, its taps, the first oy and ox of
// its pixels, and its M and K.
struct gt_ct_phase {
  int qy, qx, ry, rx, rows_y, rows_x, taps_y, taps_x, oy0, ox0, M, K;
};

__device__ __forceinline__ gt_ct_phase gt_ct_phase_of(const gt_convt& cv) {
  gt_ct_phase ph;
  ph.qy = (int)blockIdx.z / cv.s_w, ph.qx = (int)blockIdx.z - ph.qy * cv.s_w;
  ph.ry = ((ph.qy - cv.p_h) % cv.s_h + cv.s_h) % cv.s_h, ph.rx = ((ph.qx - cv.p_w) % cv.s_w + cv.s_w) % cv.s_w;
  ph.rows_y = ph.ry < cv.in_h ? (cv.in_h - ph.ry + cv.s_h - 1) / cv.s_h : 0;
  ph.rows_x = ph.rx < cv.in_w ? (cv.in_w - ph.rx + cv.s_w - 1) / cv.s_w : 0;
  ph.taps_y = ph.qy < cv.k_h ? (cv.k_h - ph.qy + cv.s_h - 1) / cv.s_h : 0;
  ph.taps_x = ph.qx < cv.k_w ? (cv.k_w - ph.qx + cv.s_w - 1) / cv.s_w : 0;
  ph.oy0 = (ph.ry + cv.p_h - ph.qy) / cv.s_h, ph.ox0 = (ph.rx + cv.p_w - ph.qx) / cv.s_w;  // exact
  ph.M = cv.n * ph.rows_y * ph.rows_x;
  ph.K = ph.taps_y * ph.taps_x * cv.xc;
  return ph;
}

// gt_tapwalk is a position k = (ty, tx, c) along a phase's K, carried from k-step to
// k-step with no division.
struct gt_tapwalk {
  int k, ty, tx, c;
};

__device__ __forceinline__ void gt_tapwalk_init(gt_tapwalk& w, int k, const gt_convt& cv, const gt_ct_phase& ph) {
  w.k = k, w.ty = 0, w.tx = 0, w.c = k;
  if (ph.K == 0) return;  // no taps: nothing is loaded
  const int t = k / cv.xc;
  w.c = k - t * cv.xc, w.ty = t / ph.taps_x, w.tx = t - w.ty * ph.taps_x;
}

__device__ __forceinline__ void gt_tapwalk_step(gt_tapwalk& w, int by, const gt_convt& cv, const gt_ct_phase& ph) {
  w.k += by, w.c += by;
  while (w.c >= cv.xc) {
    w.c -= cv.xc;
    if (++w.tx == ph.taps_x) w.tx = 0, w.ty++;
  }
}

// gt_ct_loader is the state of the copies of a phase's A and B tiles, k-step after
// k-step in order. As in gt_conv_loader, a thread copies the same column of every A
// tile for the same rows (decomposed into image and (oy, ox) once); of B (nn), the same
// column of every tile for rows BK apart, each row with its own walk; of B (nt, k
// contiguous like A), the same column as of A, so A's walk serves.
template <typename G, int THREADS>
struct gt_ct_loader {
  static constexpr int ACH = G::At::IN / 4, AROWS = G::At::OUT, ATOTAL = AROWS * ACH,
                       AITERS = (ATOTAL + THREADS - 1) / THREADS, APER = THREADS / ACH;
  static constexpr int BCH = G::Bt::IN / 4, BROWS = G::Bt::OUT, BTOTAL = BROWS * BCH,
                       BITERS = (BTOTAL + THREADS - 1) / THREADS, BPER = THREADS / BCH;
  static_assert(THREADS % ACH == 0 && THREADS % BCH == 0 && (!G::TRANS_B || ACH == BCH), "a thread's chunks in one column");
  long long base[AITERS];         // x's offset of the row's image
  int oy[AITERS], ox[AITERS];     // the row's (oy, ox) at tap (0, 0) (oy far below x: a row ≥ M)
  int acol, bcol;                 // this thread's column of the A and B tiles
  gt_tapwalk a;                   // A's column k (and B's, nt)
  gt_tapwalk b[G::TRANS_B ? 1 : BITERS];  // B's rows k (nn)
};

template <typename G, int THREADS>
__device__ __forceinline__ void gt_ct_loader_init(gt_ct_loader<G, THREADS>& l, const gt_convt& cv,
                                                  const gt_ct_phase& ph, int m0) {
  using L = gt_ct_loader<G, THREADS>;
  l.acol = ((int)threadIdx.x % L::ACH) * 4;
  const int per_img = ph.rows_y * ph.rows_x;
#pragma unroll
  for (int it = 0; it < L::AITERS; it++) {
    const int m = m0 + (int)threadIdx.x / L::ACH + it * L::APER;
    l.base[it] = 0, l.oy[it] = -(1 << 30), l.ox[it] = 0;  // with any tap, never in x
    if (m < ph.M) {
      const int img = m / per_img, pix = m - img * per_img;
      const int jy = pix / ph.rows_x, jx = pix - jy * ph.rows_x;
      l.base[it] = (long long)img * cv.out_h * cv.out_w * cv.xc;
      l.oy[it] = ph.oy0 + jy, l.ox[it] = ph.ox0 + jx;
    }
  }
  gt_tapwalk_init(l.a, l.acol, cv, ph);
  l.bcol = ((int)threadIdx.x % L::BCH) * 4;
  if constexpr (!G::TRANS_B) {
#pragma unroll
    for (int it = 0; it < L::BITERS; it++) gt_tapwalk_init(l.b[it], (int)threadIdx.x / L::BCH + it * L::BPER, cv, ph);
  }
}

// gt_ct_loader_load starts the copies of the next k-step's tiles into stage s: A from x
// (zeros outside x, past K and in the rows ≥ M), B from the taps' rows (nt: columns)
// of w (zeros past K and beyond N).
template <typename G, int THREADS>
__device__ __forceinline__ void gt_ct_loader_load(gt_ct_loader<G, THREADS>& l, float* s, const float* __restrict__ x,
                                                  const float* __restrict__ w, int N, int ldb, int n0,
                                                  const gt_convt& cv, const gt_ct_phase& ph) {
  using L = gt_ct_loader<G, THREADS>;
#pragma unroll
  for (int it = 0; it < L::AITERS; it++) {
    const int r = (int)threadIdx.x / L::ACH + it * L::APER;
    if (L::ATOTAL % THREADS == 0 || r < L::AROWS) {
      const int oy = l.oy[it] - l.a.ty, ox = l.ox[it] - l.a.tx;
      const bool valid = l.a.k < ph.K && (unsigned)oy < (unsigned)cv.out_h && (unsigned)ox < (unsigned)cv.out_w;
      const float* src = valid ? x + l.base[it] + ((long long)oy * cv.out_w + ox) * cv.xc + l.a.c : x;
      gt_cp_async16(s + r * G::At::LD + l.acol, src, valid);
    }
  }
  using Bt = typename G::Bt;
  if constexpr (G::TRANS_B) {  // row n of the tile: w's row (tap, n0 + n), channels from A's walk
    const int tap = (ph.qy + cv.s_h * l.a.ty) * cv.k_w + ph.qx + cv.s_w * l.a.tx;
#pragma unroll
    for (int it = 0; it < L::BITERS; it++) {
      const int r = (int)threadIdx.x / L::BCH + it * L::BPER;
      if (L::BTOTAL % THREADS == 0 || r < L::BROWS) {
        const bool valid = l.a.k < ph.K && n0 + r < N;
        const float* src = valid ? w + ((size_t)tap * cv.in_c + n0 + r) * ldb + l.a.c : w;
        gt_cp_async16(s + G::At::SIZE + r * Bt::LD + l.bcol, src, valid);
      }
    }
  } else {
#pragma unroll
    for (int it = 0; it < L::BITERS; it++) {
      const int r = (int)threadIdx.x / L::BCH + it * L::BPER;
      if (L::BTOTAL % THREADS == 0 || r < L::BROWS) {
        const gt_tapwalk& k = l.b[it];
        const bool valid = k.k < ph.K && n0 + l.bcol < N;
        const int tap = (ph.qy + cv.s_h * k.ty) * cv.k_w + ph.qx + cv.s_w * k.tx;
        const float* src = valid ? w + (size_t)k.c * ldb + (size_t)tap * cv.in_c + n0 + l.bcol : w;
        gt_cp_async16(s + G::At::SIZE + r * Bt::LD + (((l.bcol >> 2) ^ gt_swz<Bt::SWZ>(r)) << 2), src, valid);
        gt_tapwalk_step(l.b[it], G::At::IN, cv, ph);
      }
    }
  }
  gt_tapwalk_step(l.a, G::At::IN, cv, ph);
}

// gt_gemm_mainloop_ct is gt_gemm_mainloop over a phase's product (gt_ct_loader).
template <typename G, int STAGES, int THREADS, int BK, typename Multiply>
__device__ __forceinline__ void gt_gemm_mainloop_ct(float* smem, const float* __restrict__ x,
                                                    const float* __restrict__ w, int N, int ldb, int m0, int n0,
                                                    const gt_convt& cv, const gt_ct_phase& ph, Multiply multiply) {
  const int steps = (ph.K + BK - 1) / BK;
  gt_ct_loader<G, THREADS> loader;
  gt_ct_loader_init(loader, cv, ph, m0);
#pragma unroll
  for (int s = 0; s < STAGES - 1; s++) {
    if (s < steps) gt_ct_loader_load(loader, smem + s * G::STAGE, x, w, N, ldb, n0, cv, ph);
    gt_cp_async_commit();
  }
  for (int kt = 0; kt < steps; kt++) {
    gt_cp_async_wait<STAGES - 2>();
    __syncthreads();
    if (kt + STAGES - 1 < steps) gt_ct_loader_load(loader, smem + ((kt + STAGES - 1) % STAGES) * G::STAGE, x, w, N, ldb, n0, cv, ph);
    gt_cp_async_commit();
    multiply(smem + (kt % STAGES) * G::STAGE);
  }
}

// gt_gemm_finish is the epilogue of one element: z = s + bias[n], then the activation
// (the cheap ones inline, with gt_activate's expressions; the float64 ones out of line).
__device__ __forceinline__ float gt_gemm_finish(float s, const float* __restrict__ bias, int n, int act, float alpha) {
  float z = bias ? __fadd_rn(s, bias[n]) : s;
  if (act == GT_ACT_RELU) return z <= 0.0f ? 0.0f : z;
  if (act == GT_ACT_LEAKY_RELU) return z < 0.0f ? __fmul_rn(z, alpha) : z;
  if (act != GT_ACT_IDENTITY) return gt_activate_call(z, act, alpha);
  return z;
}

// gt_gemm_finish4 is gt_gemm_finish on the chunk e[0..3] of C's row at columns n..n+3,
// of which those < N are in C: the float64 activations (sigmoid, tanh) of the four in
// one call (gt_activate4_call), the others inline.
__device__ __forceinline__ void gt_gemm_finish4(float e[4], const float* __restrict__ bias, int n, int N, int act,
                                                float alpha) {
  if (act == GT_ACT_IDENTITY || act == GT_ACT_RELU || act == GT_ACT_LEAKY_RELU) {
    for (int k = 0; k < 4; k++)
      if (n + k < N) e[k] = gt_gemm_finish(e[k], bias, n + k, act, alpha);
    return;
  }
  for (int k = 0; k < 4; k++)
    if (bias && n + k < N) e[k] = __fadd_rn(e[k], bias[n + k]);
  float4 y = gt_activate4_call(make_float4(e[0], e[1], e[2], e[3]), act, alpha);
  e[0] = y.x, e[1] = y.y, e[2] = y.z, e[3] = y.w;  // the columns ≥ N are not stored
}

// gt_gemm_maxout is the maxout epilogue (see the top of the file) of the tile at (m0,
// n0), whose sums are staged in smem (row length LDC): one thread per unit of a row,
// consecutive threads consecutive units, so that their reads, `pieces` floats apart,
// fall in distinct banks for an odd number of pieces.
template <int BM, int THREADS, int LDC>
__device__ __forceinline__ void gt_gemm_maxout(const float* smem, float* __restrict__ y,
                                               const float* __restrict__ bias, int M, int N, int act, float alpha,
                                               const gt_maxout& mx, int m0, int n0) {
  const int P = mx.pieces, units = N / P, ut = mx.nstride / P, u0 = n0 / P;
#pragma unroll 1
  for (int q = threadIdx.x; q < BM * ut; q += THREADS) {
    const int r = q / ut, ul = q - r * ut, m = m0 + r, u = u0 + ul;
    if (m >= M || u >= units) continue;
    const float* z = smem + r * LDC + ul * P;
    const int n = n0 + ul * P;
    float best = gt_gemm_finish(z[0], bias, n, act, alpha);
    int at = 0;
    for (int p = 1; p < P; p++) {
      float v = gt_gemm_finish(z[p], bias, n + p, act, alpha);
      if (v > best) best = v, at = p;
    }
    const long long i = (long long)m * units + u;
    mx.arg[i] = at;
    if (mx.mask) {
      gt_words w = gt_philox_block((unsigned long long)(i >> 2), mx.offset, mx.seed);
      float k = gt_to_unit(w.w[i & 3]) < mx.keep ? mx.scale : 0.0f;
      mx.mask[i] = k;
      best = __fmul_rn(best, k);
    }
    y[i] = best;
  }
}

// gt_gemm_epilogue stores the block's BM×BN tile of C. frags(f) calls f(r, c, acc) for
// every accumulator this thread holds (r, c within the tile); they are staged in shared
// memory (over the pipeline's stages, rows padded to BN+4), then each thread takes
// chunks of 4 consecutive columns, consecutive threads consecutive chunks, written in
// 16-byte stores where C's rows allow (N a multiple of 4, C aligned). Without split:
// C = act(acc + bias). With split, the partial goes to the workspace, and the last
// block of the tile to count adds the partials, z = 0, 1, … for each element (a group
// of the thread's chunks at a time, all of one z's loads in flight together), puts the
// sums back in its staged tile, and finishes as without split.
template <int BM, int BN, int THREADS, bool MX, typename Frags>
__device__ __forceinline__ void gt_gemm_epilogue(Frags frags, float* smem, float* __restrict__ c,
                                                 const float* __restrict__ bias, float* __restrict__ ws,
                                                 int* __restrict__ counters, int M, int N, int act, float alpha,
                                                 const gt_maxout& mx) {
  constexpr int LDC = BN + 4, CPR = BN / 4, PER = BM * CPR / THREADS;
  constexpr int GROUP = PER < 8 ? PER : 8;  // chunks summed together: 8 loads in flight, 32 registers
  static_assert(BN % 4 == 0 && (BM * CPR) % THREADS == 0 && PER % GROUP == 0, "epilogue chunks");
  const int nstride = MX ? mx.nstride : BN;
  const int m0 = blockIdx.y * BM, n0 = blockIdx.x * nstride;
  gt_cp_async_wait<0>();
  __syncthreads();  // every warp is done with the stages
  frags([&](int r, int cc, float v) { smem[r * LDC + cc] = v; });
  __syncthreads();
  const bool vec = N % 4 == 0 && ((unsigned long long)c & 15) == 0;  // the same in every thread
  // chunk it of this thread: tile row r, column cc; element (m, n) of C; in C or not.
  auto at = [&](int it, int& r, int& cc, int& m, int& n) {
    int q = it * THREADS + (int)threadIdx.x;
    r = q / CPR, cc = (q % CPR) * 4, m = m0 + r, n = n0 + cc;
    return m < M && n < N && (!MX || cc < nstride);  // the columns beyond nstride are the next tile's
  };
  if (gridDim.z > 1) {
    const size_t mn = (size_t)M * N;
#pragma unroll 1
    for (int it = 0; it < PER; it++) {
      int r, cc, m, n;
      if (!at(it, r, cc, m, n)) continue;
      float* dst = ws + blockIdx.z * mn + (size_t)m * N + n;
      float4 v = gt_ld4(smem + r * LDC + cc);
      if (vec) {
        gt_st4(dst, v);
      } else {
        const float e[4] = {v.x, v.y, v.z, v.w};
        for (int k = 0; k < 4 && n + k < N; k++) dst[k] = e[k];
      }
    }
    __shared__ int last;
    __threadfence();  // this block's partial is visible before it is counted
    __syncthreads();
    if (threadIdx.x == 0) {
      int* ctr = counters + blockIdx.y * gridDim.x + blockIdx.x;
      last = atomicAdd(ctr, 1) == (int)gridDim.z - 1;
      if (last) *ctr = 0;  // every block of the tile has counted: ready for the next launch
    }
    __syncthreads();
    if (!last) return;
    __threadfence();
    auto load = [&](const float* p, int n) {  // n < N: the chunk's first element is in C
      if (vec) return gt_ldcg4(p);
      return make_float4(__ldcg(p), n + 1 < N ? __ldcg(p + 1) : 0.0f, n + 2 < N ? __ldcg(p + 2) : 0.0f,
                         n + 3 < N ? __ldcg(p + 3) : 0.0f);
    };
#pragma unroll 1
    for (int g0 = 0; g0 < PER; g0 += GROUP) {
      float4 sum[GROUP];
#pragma unroll
      for (int i = 0; i < GROUP; i++) {
        int r, cc, m, n;
        sum[i] = at(g0 + i, r, cc, m, n) ? load(ws + (size_t)m * N + n, n) : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
      }
      for (unsigned int z = 1; z < gridDim.z; z++) {
#pragma unroll
        for (int i = 0; i < GROUP; i++) {
          int r, cc, m, n;
          if (at(g0 + i, r, cc, m, n)) {
            float4 p = load(ws + z * mn + (size_t)m * N + n, n);
            sum[i].x += p.x, sum[i].y += p.y, sum[i].z += p.z, sum[i].w += p.w;
          }
        }
      }
#pragma unroll
      for (int i = 0; i < GROUP; i++) {  // the thread's own chunks: no barrier needed
        int r, cc, m, n;
        at(g0 + i, r, cc, m, n);
        gt_st4(smem + r * LDC + cc, sum[i]);
      }
    }
  }
  if (MX) {
    if (gridDim.z > 1) __syncthreads();  // a unit's pieces are other threads' sums (every thread got here)
    gt_gemm_maxout<BM, THREADS, LDC>(smem, c, bias, M, N, act, alpha, mx, m0, n0);
  } else {
#pragma unroll 1
    for (int it = 0; it < PER; it++) {
      int r, cc, m, n;
      if (!at(it, r, cc, m, n)) continue;
      float* dst = c + (size_t)m * N + n;
      float4 v = gt_ld4(smem + r * LDC + cc);
      float e[4] = {v.x, v.y, v.z, v.w};
      gt_gemm_finish4(e, bias, n, N, act, alpha);
      if (vec) {
        gt_st4(dst, make_float4(e[0], e[1], e[2], e[3]));
      } else {
        for (int k = 0; k < 4 && n + k < N; k++) dst[k] = e[k];
      }
    }
  }
}

// gt_ct_epilogue stores a phase's BM×BN tile (gt_convt): staged as in gt_gemm_epilogue,
// then each row m of the phase goes to its pixel (img, ry + s_h·jy, rx + s_w·jx) of y,
// act(acc + bias) in 16-byte stores (in_c is a multiple of 4 and y 16-byte aligned).
template <int BM, int BN, int THREADS, typename Frags>
__device__ __forceinline__ void gt_ct_epilogue(Frags frags, float* smem, float* __restrict__ y,
                                               const float* __restrict__ bias, int N, int act, float alpha,
                                               const gt_convt& cv, const gt_ct_phase& ph, int m0, int n0) {
  constexpr int LDC = BN + 4, CPR = BN / 4, PER = BM * CPR / THREADS;
  static_assert(BN % 4 == 0 && (BM * CPR) % THREADS == 0, "epilogue chunks");
  gt_cp_async_wait<0>();
  __syncthreads();  // every warp is done with the stages
  frags([&](int r, int cc, float v) { smem[r * LDC + cc] = v; });
  __syncthreads();
  const int per_img = ph.rows_y * ph.rows_x;
#pragma unroll 1
  for (int it = 0; it < PER; it++) {
    const int q = it * THREADS + (int)threadIdx.x, r = q / CPR, cc = (q % CPR) * 4, m = m0 + r, n = n0 + cc;
    if (m >= ph.M || n >= N) continue;
    const int img = m / per_img, pix = m - img * per_img, jy = pix / ph.rows_x, jx = pix - jy * ph.rows_x;
    const long long row = ((long long)img * cv.in_h + ph.ry + cv.s_h * jy) * cv.in_w + ph.rx + cv.s_w * jx;
    float4 v = gt_ld4(smem + r * LDC + cc);
    float e[4] = {v.x, v.y, v.z, v.w};
    gt_gemm_finish4(e, bias, n, N, act, alpha);
    gt_st4(y + row * N + n, make_float4(e[0], e[1], e[2], e[3]));
  }
}

#define GT_GEMM_ARGS                                                                                          \
  float *__restrict__ c, const float *__restrict__ a, const float *__restrict__ b,                            \
      const float *__restrict__ bias, float *__restrict__ ws, int *__restrict__ counters, int M, int N, int K, \
      int lda, int ldb, int kchunk, int act, float alpha, int *__restrict__ marg, float *__restrict__ mmask,   \
      int pieces, int nstride, float keep, float kscale, unsigned long long seed, unsigned long long offset

// gt_gemm_tc: tensor cores. Warps are laid out (BM/WM)×(BN/WN); each holds (WM/16)×(WN/8)
// m16n8k8 accumulators in the PTX ISA's fragment layout (see gt_mma_tf32). Fragments
// come from shared memory in wide reads:
//   - an operand whose tile is k-contiguous (A of nn and nt, B of nt): ldmatrix, one
//     per m16 tile of A, one per two n8 tiles of B;
//   - an m- or n-contiguous one (A of tn, B of nn and tn): with SWZ false, one 4-byte
//     read per element from a padded tile; with SWZ true (the *_swz kernels, nn and tn
//     only), 16-byte reads of a swizzled tile. The rows of C a warp's m16 tiles cover
//     are then permuted so that a lane's rows
//     g and g+8 of every tile lie next to each other: mma row g + 8h of tile i is the
//     warp's row g·2·MI + 2i + h, and a lane reads its 2·MI values of one k in
//     CPT = 2·MI/4 chunks; likewise n8 tile j's column g is the warp's column g·NI + j
//     (CPT = NI/4). The sum over k is unchanged; the epilogue puts each accumulator at
//     its permuted row and column. Of the 8 lanes (g ∈ {2p, 2p+1}, t = 0..3) that one
//     phase of a 16-byte shared load serves, the swizzle sends each to its own 4 banks.
template <bool TA, bool TB, int BM, int BN, int BK, int WM, int WN, int STAGES, bool SWZ, bool MX, bool IM = false,
          bool CT = false>
__device__ __forceinline__ void gt_gemm_tc(GT_GEMM_ARGS, const gt_conv& cv = gt_conv{}, const gt_convt& ct = gt_convt{}) {
  constexpr int WARPS_N = BN / WN, THREADS = (BM / WM) * WARPS_N * 32, MI = WM / 16, NI = WN / 8;
  constexpr int ACPT = SWZ ? 2 * MI / 4 : 0, BCPT = SWZ ? NI / 4 : 0;  // chunks per swizzled fragment read
  static_assert(BM % WM == 0 && BN % WN == 0 && (WM == 32 || WM == 64) && (WN == 32 || WN == 64) && BK % 8 == 0,
                "tile shape");
  using G = gt_gemm_geometry<TA, TB, BM, BN, BK, ACPT, BCPT>;
  float* smem = gt_dynamic_shared();
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int g = lane / 4, t = lane % 4;  // groupID, threadID_in_group
  const int wm = (warp / WARPS_N) * WM, wn = (warp % WARPS_N) * WN;
  const int m0 = blockIdx.y * BM, n0 = blockIdx.x * (MX ? nstride : BN);
  // A transposed convolution's phase (CT): the product of blockIdx.z, unsplit.
  const gt_ct_phase ph = CT ? gt_ct_phase_of(ct) : gt_ct_phase{};
  if (CT && m0 >= ph.M) return;  // the whole block: a phase with fewer rows than the grid
  const int kbeg = CT ? 0 : blockIdx.z * kchunk, kend = CT ? ph.K : min(K, kbeg + kchunk);
  float acc[MI][NI][4];
#pragma unroll
  for (int i = 0; i < MI; i++)
#pragma unroll
    for (int j = 0; j < NI; j++)
#pragma unroll
      for (int r = 0; r < 4; r++) acc[i][j][r] = 0.0f;

  static_assert(!IM || (!TA && !MX), "implicit im2col: nn or nt, without the maxout epilogue");
  static_assert(!CT || (!TA && !MX && !IM), "transposed convolution: nn or nt, without the maxout epilogue");
  auto multiply = [&](const float* s) {
    const float* As = s;
    const float* Bs = s + G::At::SIZE;
#pragma unroll
    for (int ks = 0; ks < BK; ks += 8) {
      unsigned int af[MI][4], bf[NI][2];
      if (!TA) {  // lane l names row l%8 (+8 for l&8) of the m16 tile, k half l/16
#pragma unroll
        for (int i = 0; i < MI; i++)
          gt_ldsm_x4(af[i], As + (wm + 16 * i + (lane & 7) + (lane & 8)) * G::At::LD + ks + (lane >> 4) * 4);
      } else if (!SWZ) {  // A(m, k) at As[k·LD + m]
#pragma unroll
        for (int i = 0; i < MI; i++) {
          const float* p = As + (ks + t) * G::At::LD + wm + 16 * i + g;
          af[i][0] = __float_as_uint(p[0]);                      // (row g,   col t)
          af[i][1] = __float_as_uint(p[8]);                      // (row g+8, col t)
          af[i][2] = __float_as_uint(p[4 * G::At::LD]);          // (row g,   col t+4)
          af[i][3] = __float_as_uint(p[4 * G::At::LD + 8]);      // (row g+8, col t+4)
        }
      } else {  // rows g·2MI + [0, 2MI) of the warp, at k = t and t+4
        float v0[4 * (ACPT ? ACPT : 1)], v1[4 * (ACPT ? ACPT : 1)];
        gt_ld_swz<ACPT, G::At::LD>(v0, As, ks + t, (wm >> 2) + g * ACPT);
        gt_ld_swz<ACPT, G::At::LD>(v1, As, ks + t + 4, (wm >> 2) + g * ACPT);
#pragma unroll
        for (int i = 0; i < MI; i++) {
          af[i][0] = __float_as_uint(v0[2 * i]);      // (row g,   col t)
          af[i][1] = __float_as_uint(v0[2 * i + 1]);  // (row g+8, col t)
          af[i][2] = __float_as_uint(v1[2 * i]);      // (row g,   col t+4)
          af[i][3] = __float_as_uint(v1[2 * i + 1]);  // (row g+8, col t+4)
        }
      }
      if (TB) {  // lane l names n row l%8 (+8 for l/16) of two n8 tiles, k half (l/8)%2
#pragma unroll
        for (int j = 0; j < NI; j += 2) {
          unsigned int r[4];
          gt_ldsm_x4(r, Bs + (wn + 8 * j + (lane & 7) + ((lane >> 4) << 3)) * G::Bt::LD + ks + ((lane >> 3) & 1) * 4);
          bf[j][0] = r[0], bf[j][1] = r[1], bf[j + 1][0] = r[2], bf[j + 1][1] = r[3];
        }
      } else if (!SWZ) {  // B(k, n) at Bs[k·LD + n]
#pragma unroll
        for (int j = 0; j < NI; j++) {
          const float* p = Bs + (ks + t) * G::Bt::LD + wn + 8 * j + g;
          bf[j][0] = __float_as_uint(p[0]);                  // (row t,   col g)
          bf[j][1] = __float_as_uint(p[4 * G::Bt::LD]);      // (row t+4, col g)
        }
      } else {  // columns g·NI + [0, NI) of the warp, at k = t and t+4
        float v0[4 * (BCPT ? BCPT : 1)], v1[4 * (BCPT ? BCPT : 1)];
        gt_ld_swz<BCPT, G::Bt::LD>(v0, Bs, ks + t, (wn >> 2) + g * BCPT);
        gt_ld_swz<BCPT, G::Bt::LD>(v1, Bs, ks + t + 4, (wn >> 2) + g * BCPT);
#pragma unroll
        for (int j = 0; j < NI; j++) {
          bf[j][0] = __float_as_uint(v0[j]);  // (row t,   col g)
          bf[j][1] = __float_as_uint(v1[j]);  // (row t+4, col g)
        }
      }
#pragma unroll
      for (int i = 0; i < MI; i++)
#pragma unroll
        for (int j = 0; j < NI; j++) gt_mma_tf32(acc[i][j], af[i], bf[j]);
    }
  };
  if constexpr (IM)
    gt_gemm_mainloop_im<G, STAGES, THREADS, BK>(smem, a, b, M, N, K, ldb, m0, n0, kbeg, kend, cv, multiply);
  else if constexpr (CT)
    gt_gemm_mainloop_ct<G, STAGES, THREADS, BK>(smem, a, b, N, ldb, m0, n0, ct, ph, multiply);
  else
    gt_gemm_mainloop<G, STAGES, THREADS, BK>(smem, a, b, M, N, lda, ldb, m0, n0, kbeg, kend, multiply);

  // The tile's row of mma row g + 8h of m16 tile i, and column of mma column cc of n8 tile j.
  auto row = [&](int i, int h) { return TA && SWZ ? wm + g * 2 * MI + 2 * i + h : wm + 16 * i + g + 8 * h; };
  auto col = [&](int j, int cc) { return !TB && SWZ ? wn + cc * NI + j : wn + 8 * j + cc; };
  auto frags = [&](auto f) {
#pragma unroll
    for (int i = 0; i < MI; i++)
#pragma unroll
      for (int j = 0; j < NI; j++)
#pragma unroll
        for (int r = 0; r < 4; r++)  // c0,c1: (row g, cols 2t, 2t+1); c2,c3: row g+8
          f(row(i, r >> 1), col(j, 2 * t + (r & 1)), acc[i][j][r]);
  };
  if constexpr (CT)
    gt_ct_epilogue<BM, BN, THREADS>(frags, smem, c, bias, N, act, alpha, ct, ph, m0, n0);
  else
    gt_gemm_epilogue<BM, BN, THREADS, MX>(frags, smem, c, bias, ws, counters, M, N, act, alpha,
                                          gt_maxout{marg, mmask, pieces, nstride, keep, kscale, seed, offset});
}

// gt_gemm_simt: fp32 FMAs, a (BM/TM)×(BN/TN) grid of threads, TM×TN outputs each. A
// thread's rows and columns are chosen so that its shared-memory reads are 16 bytes
// wide and conflict-free in both layouts of each operand:
//   rows: TA (A tile k-major): groups of 4 adjacent rows, BM/(TM/4) apart;
//         !TA (m-major): rows ty, ty + BM/TM, … (4 consecutive k of one row per read);
//   columns likewise with TB for B.
// The k-step is consumed 4 at a time: a TM×4 slice of A and a 4×TN slice of B in
// registers, then 4·TM·TN FMAs.
template <bool TA, bool TB, int BM, int BN, int BK, int TM, int TN, int STAGES, bool MX, bool IM = false,
          bool CT = false>
__device__ __forceinline__ void gt_gemm_simt(GT_GEMM_ARGS, const gt_conv& cv = gt_conv{}, const gt_convt& ct = gt_convt{}) {
  using G = gt_gemm_geometry<TA, TB, BM, BN, BK>;
  constexpr int TX = BN / TN, TY = BM / TM, THREADS = TX * TY;
  static_assert(TM % 4 == 0 && TN % 4 == 0 && BK % 4 == 0 && BM % TM == 0 && BN % TN == 0, "tile shape");
  float* smem = gt_dynamic_shared();
  const int tx = threadIdx.x % TX, ty = threadIdx.x / TX;
  const int m0 = blockIdx.y * BM, n0 = blockIdx.x * (MX ? nstride : BN);
  const gt_ct_phase ph = CT ? gt_ct_phase_of(ct) : gt_ct_phase{};  // as in gt_gemm_tc
  if (CT && m0 >= ph.M) return;
  const int kbeg = CT ? 0 : blockIdx.z * kchunk, kend = CT ? ph.K : min(K, kbeg + kchunk);
  auto row = [&](int i) { return TA ? ty * 4 + (i % 4) + (i / 4) * (TY * 4) : ty + i * TY; };
  auto col = [&](int j) { return TB ? tx + j * TX : tx * 4 + (j % 4) + (j / 4) * (TX * 4); };
  float acc[TM][TN];
#pragma unroll
  for (int i = 0; i < TM; i++)
#pragma unroll
    for (int j = 0; j < TN; j++) acc[i][j] = 0.0f;

  static_assert(!IM || (!TA && !MX), "implicit im2col: nn or nt, without the maxout epilogue");
  static_assert(!CT || (!TA && !MX && !IM), "transposed convolution: nn or nt, without the maxout epilogue");
  auto multiply = [&](const float* s) {
    const float* As = s;
    const float* Bs = s + G::At::SIZE;
#pragma unroll
    for (int kk = 0; kk < BK; kk += 4) {
      float av[TM][4], bv[4][TN];
      if (TA) {
#pragma unroll
        for (int q = 0; q < 4; q++)
#pragma unroll
          for (int ig = 0; ig < TM / 4; ig++) {
            float4 v = gt_ld4(As + (kk + q) * G::At::LD + ty * 4 + ig * (TY * 4));
            av[4 * ig][q] = v.x, av[4 * ig + 1][q] = v.y, av[4 * ig + 2][q] = v.z, av[4 * ig + 3][q] = v.w;
          }
      } else {
#pragma unroll
        for (int i = 0; i < TM; i++) {
          float4 v = gt_ld4(As + row(i) * G::At::LD + kk);
          av[i][0] = v.x, av[i][1] = v.y, av[i][2] = v.z, av[i][3] = v.w;
        }
      }
      if (TB) {
#pragma unroll
        for (int j = 0; j < TN; j++) {
          float4 v = gt_ld4(Bs + col(j) * G::Bt::LD + kk);
          bv[0][j] = v.x, bv[1][j] = v.y, bv[2][j] = v.z, bv[3][j] = v.w;
        }
      } else {
#pragma unroll
        for (int q = 0; q < 4; q++)
#pragma unroll
          for (int jg = 0; jg < TN / 4; jg++) {
            float4 v = gt_ld4(Bs + (kk + q) * G::Bt::LD + tx * 4 + jg * (TX * 4));
            bv[q][4 * jg] = v.x, bv[q][4 * jg + 1] = v.y, bv[q][4 * jg + 2] = v.z, bv[q][4 * jg + 3] = v.w;
          }
      }
#pragma unroll
      for (int q = 0; q < 4; q++)
#pragma unroll
        for (int i = 0; i < TM; i++)
#pragma unroll
          for (int j = 0; j < TN; j++) acc[i][j] = fmaf(av[i][q], bv[q][j], acc[i][j]);
    }
  };
  if constexpr (IM)
    gt_gemm_mainloop_im<G, STAGES, THREADS, BK>(smem, a, b, M, N, K, ldb, m0, n0, kbeg, kend, cv, multiply);
  else if constexpr (CT)
    gt_gemm_mainloop_ct<G, STAGES, THREADS, BK>(smem, a, b, N, ldb, m0, n0, ct, ph, multiply);
  else
    gt_gemm_mainloop<G, STAGES, THREADS, BK>(smem, a, b, M, N, lda, ldb, m0, n0, kbeg, kend, multiply);

  auto frags = [&](auto f) {
#pragma unroll
    for (int i = 0; i < TM; i++)
#pragma unroll
      for (int j = 0; j < TN; j++) f(row(i), col(j), acc[i][j]);
  };
  if constexpr (CT)
    gt_ct_epilogue<BM, BN, THREADS>(frags, smem, c, bias, N, act, alpha, ct, ph, m0, n0);
  else
    gt_gemm_epilogue<BM, BN, THREADS, MX>(frags, smem, c, bias, ws, counters, M, N, act, alpha,
                                          gt_maxout{marg, mmask, pieces, nstride, keep, kscale, seed, offset});
}

// gt_gemm_dot: one thread per element of C and a plain loop over k, for products too
// small to feed a tile (D's logit layer has N = 1, its input gradient K = 1): one
// launch, no split. TF32 reads each input as the tensor cores would (gt_to_tf32); the
// product of two tf32 values is exact in fp32, so the FMA only rounds the sum.
template <bool TA, bool TB, bool TF32>
__device__ __forceinline__ void gt_gemm_dot(GT_GEMM_ARGS) {
  gt_for_each(e, (long long)M * N) {
    const int m = (int)(e / N), n = (int)(e % N);
    float acc = 0.0f;
    for (int k = 0; k < K; k++) {
      float x = TA ? a[(size_t)k * lda + m] : a[(size_t)m * lda + k];
      float y = TB ? b[(size_t)n * ldb + k] : b[(size_t)k * ldb + n];
      if (TF32) x = gt_to_tf32(x), y = gt_to_tf32(y);
      acc = fmaf(x, y, acc);
    }
    c[e] = gt_gemm_finish(acc, bias, n, act, alpha);
  }
}

// gt_gemm_wdot: one warp per element of C, its lanes taking every 32nd k, then a
// butterfly sum (every lane the same bits): for the tiny products with a long K (the
// logit layer's dW at a large batch).
template <bool TA, bool TB, bool TF32>
__device__ __forceinline__ void gt_gemm_wdot(GT_GEMM_ARGS) {
  const int lane = threadIdx.x % 32;
  const long long warps = (long long)gridDim.x * (blockDim.x / 32);
  for (long long e = (long long)blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32; e < (long long)M * N; e += warps) {
    const int m = (int)(e / N), n = (int)(e % N);
    float acc = 0.0f;
    for (int k = lane; k < K; k += 32) {
      float x = TA ? a[(size_t)k * lda + m] : a[(size_t)m * lda + k];
      float y = TB ? b[(size_t)n * ldb + k] : b[(size_t)k * ldb + n];
      if (TF32) x = gt_to_tf32(x), y = gt_to_tf32(y);
      acc = fmaf(x, y, acc);
    }
    for (int o = 16; o > 0; o >>= 1) acc += __shfl_xor_sync(GT_FULL_MASK, acc, o);
    if (lane == 0) c[e] = gt_gemm_finish(acc, bias, n, act, alpha);
  }
}

#define GT_GEMM_PASS \
  c, a, b, bias, ws, counters, M, N, K, lda, ldb, kchunk, act, alpha, marg, mmask, pieces, nstride, keep, kscale, seed, offset

// One kernel per configuration and operand layout; the names are kernels/gemm.go's. The
// tensor-core configurations come with and without the swizzled tiles (_swz: nn and tn;
// the nt kernels have no m- or n-contiguous tile, so they would be the same). The nn
// kernels come again with the maxout epilogue (_mx), a kernel of its own so that it
// costs the others no registers.

// GT_GEMM_KERNEL defines one kernel: NAME, its block size, and the template it runs.
#define GT_GEMM_KERNEL(NAME, THREADS, ...) \
  extern "C" __global__ void __launch_bounds__(THREADS) NAME(GT_GEMM_ARGS) { __VA_ARGS__(GT_GEMM_PASS); }

// GT_GEMM_IM_KERNEL defines an nn or nt kernel with the implicit im2col (gt_conv): A is the
// images x, and the arguments go on with cols and the geometry.
#define GT_GEMM_IM_KERNEL(NAME, THREADS, ...)                                                                  \
  extern "C" __global__ void __launch_bounds__(THREADS)                                                       \
      NAME(GT_GEMM_ARGS, float* __restrict__ cols, int in_h, int in_w, int in_c, int k_w, int s_h, int s_w,     \
           int p_h, int p_w, int out_w, int positions) {                                                      \
    __VA_ARGS__(GT_GEMM_PASS, gt_conv{cols, in_h, in_w, in_c, k_w, s_h, s_w, p_h, p_w, out_w, positions});     \
  }

// GT_GEMM_CT_KERNEL defines an nn or nt kernel computing a transposed convolution (gt_convt): A
// is the images x, B the weights, C the output images y, and the arguments go on with
// the geometry. Grid (⌈in_c/BN⌉, ⌈most rows of a phase/BM⌉, s_h·s_w).
#define GT_GEMM_CT_KERNEL(NAME, THREADS, ...)                                                                  \
  extern "C" __global__ void __launch_bounds__(THREADS)                                                       \
      NAME(GT_GEMM_ARGS, int n, int in_h, int in_w, int in_c, int k_h, int k_w, int s_h, int s_w, int p_h,      \
           int p_w, int out_h, int out_w, int xc) {                                                           \
    __VA_ARGS__(GT_GEMM_PASS, gt_conv{},                                                                      \
                gt_convt{n, in_h, in_w, in_c, k_h, k_w, s_h, s_w, p_h, p_w, out_h, out_w, xc});                \
  }

#define GT_TC_THREADS(BM, BN, WM, WN) ((BM / WM) * (BN / WN) * 32)
#define GT_GEMM_TC(BM, BN, BK, WM, WN, S)                                                                         \
  GT_GEMM_KERNEL(gemm_tc_nn_##BM##x##BN##x##BK##_w##WM##x##WN##_s##S, GT_TC_THREADS(BM, BN, WM, WN),             \
                 gt_gemm_tc<false, false, BM, BN, BK, WM, WN, S, false, false>)                                   \
  GT_GEMM_KERNEL(gemm_tc_tn_##BM##x##BN##x##BK##_w##WM##x##WN##_s##S, GT_TC_THREADS(BM, BN, WM, WN),             \
                 gt_gemm_tc<true, false, BM, BN, BK, WM, WN, S, false, false>)                                    \
  GT_GEMM_KERNEL(gemm_tc_nt_##BM##x##BN##x##BK##_w##WM##x##WN##_s##S, GT_TC_THREADS(BM, BN, WM, WN),             \
                 gt_gemm_tc<false, true, BM, BN, BK, WM, WN, S, false, false>)                                    \
  GT_GEMM_KERNEL(gemm_tc_nn_##BM##x##BN##x##BK##_w##WM##x##WN##_s##S##_swz, GT_TC_THREADS(BM, BN, WM, WN),       \
                 gt_gemm_tc<false, false, BM, BN, BK, WM, WN, S, true, false>)                                    \
  GT_GEMM_KERNEL(gemm_tc_tn_##BM##x##BN##x##BK##_w##WM##x##WN##_s##S##_swz, GT_TC_THREADS(BM, BN, WM, WN),       \
                 gt_gemm_tc<true, false, BM, BN, BK, WM, WN, S, true, false>)                                     \
  GT_GEMM_KERNEL(gemm_tc_nn_##BM##x##BN##x##BK##_w##WM##x##WN##_s##S##_mx, GT_TC_THREADS(BM, BN, WM, WN),        \
                 gt_gemm_tc<false, false, BM, BN, BK, WM, WN, S, false, true>)                                    \
  GT_GEMM_KERNEL(gemm_tc_nn_##BM##x##BN##x##BK##_w##WM##x##WN##_s##S##_swz_mx, GT_TC_THREADS(BM, BN, WM, WN),    \
                 gt_gemm_tc<false, false, BM, BN, BK, WM, WN, S, true, true>)                                     \
  GT_GEMM_IM_KERNEL(gemm_tc_nn_##BM##x##BN##x##BK##_w##WM##x##WN##_s##S##_im, GT_TC_THREADS(BM, BN, WM, WN),     \
                    gt_gemm_tc<false, false, BM, BN, BK, WM, WN, S, false, false, true>)                          \
  GT_GEMM_IM_KERNEL(gemm_tc_nn_##BM##x##BN##x##BK##_w##WM##x##WN##_s##S##_swz_im, GT_TC_THREADS(BM, BN, WM, WN), \
                    gt_gemm_tc<false, false, BM, BN, BK, WM, WN, S, true, false, true>)                           \
  GT_GEMM_IM_KERNEL(gemm_tc_nt_##BM##x##BN##x##BK##_w##WM##x##WN##_s##S##_im, GT_TC_THREADS(BM, BN, WM, WN),     \
                    gt_gemm_tc<false, true, BM, BN, BK, WM, WN, S, false, false, true>)                           \
  GT_GEMM_CT_KERNEL(gemm_tc_nn_##BM##x##BN##x##BK##_w##WM##x##WN##_s##S##_ct, GT_TC_THREADS(BM, BN, WM, WN),     \
                    gt_gemm_tc<false, false, BM, BN, BK, WM, WN, S, false, false, false, true>)                   \
  GT_GEMM_CT_KERNEL(gemm_tc_nn_##BM##x##BN##x##BK##_w##WM##x##WN##_s##S##_swz_ct, GT_TC_THREADS(BM, BN, WM, WN), \
                    gt_gemm_tc<false, false, BM, BN, BK, WM, WN, S, true, false, false, true>)                    \
  GT_GEMM_CT_KERNEL(gemm_tc_nt_##BM##x##BN##x##BK##_w##WM##x##WN##_s##S##_ct, GT_TC_THREADS(BM, BN, WM, WN),     \
                    gt_gemm_tc<false, true, BM, BN, BK, WM, WN, S, false, false, false, true>)

#define GT_SIMT_THREADS(BM, BN, TM, TN) ((BM / TM) * (BN / TN))
#define GT_GEMM_SIMT(BM, BN, BK, TM, TN, S)                                                                       \
  GT_GEMM_KERNEL(gemm_simt_nn_##BM##x##BN##x##BK##_t##TM##x##TN##_s##S, GT_SIMT_THREADS(BM, BN, TM, TN),         \
                 gt_gemm_simt<false, false, BM, BN, BK, TM, TN, S, false>)                                        \
  GT_GEMM_KERNEL(gemm_simt_tn_##BM##x##BN##x##BK##_t##TM##x##TN##_s##S, GT_SIMT_THREADS(BM, BN, TM, TN),         \
                 gt_gemm_simt<true, false, BM, BN, BK, TM, TN, S, false>)                                         \
  GT_GEMM_KERNEL(gemm_simt_nt_##BM##x##BN##x##BK##_t##TM##x##TN##_s##S, GT_SIMT_THREADS(BM, BN, TM, TN),         \
                 gt_gemm_simt<false, true, BM, BN, BK, TM, TN, S, false>)                                         \
  GT_GEMM_KERNEL(gemm_simt_nn_##BM##x##BN##x##BK##_t##TM##x##TN##_s##S##_mx, GT_SIMT_THREADS(BM, BN, TM, TN),    \
                 gt_gemm_simt<false, false, BM, BN, BK, TM, TN, S, true>)                                         \
  GT_GEMM_IM_KERNEL(gemm_simt_nn_##BM##x##BN##x##BK##_t##TM##x##TN##_s##S##_im, GT_SIMT_THREADS(BM, BN, TM, TN), \
                    gt_gemm_simt<false, false, BM, BN, BK, TM, TN, S, false, true>)                               \
  GT_GEMM_IM_KERNEL(gemm_simt_nt_##BM##x##BN##x##BK##_t##TM##x##TN##_s##S##_im, GT_SIMT_THREADS(BM, BN, TM, TN), \
                    gt_gemm_simt<false, true, BM, BN, BK, TM, TN, S, false, true>)                                \
  GT_GEMM_CT_KERNEL(gemm_simt_nn_##BM##x##BN##x##BK##_t##TM##x##TN##_s##S##_ct, GT_SIMT_THREADS(BM, BN, TM, TN), \
                    gt_gemm_simt<false, false, BM, BN, BK, TM, TN, S, false, false, true>)                        \
  GT_GEMM_CT_KERNEL(gemm_simt_nt_##BM##x##BN##x##BK##_t##TM##x##TN##_s##S##_ct, GT_SIMT_THREADS(BM, BN, TM, TN), \
                    gt_gemm_simt<false, true, BM, BN, BK, TM, TN, S, false, false, true>)

// The tiny products, in both precisions.
#define GT_GEMM_DOT(FAM, PREC, TF32)                                                                              \
  extern "C" __global__ void __launch_bounds__(GT_EW_THREADS) gemm_##FAM##_##PREC##_nn(GT_GEMM_ARGS) {           \
    gt_gemm_##FAM<false, false, TF32>(GT_GEMM_PASS);                                                              \
  }                                                                                                               \
  extern "C" __global__ void __launch_bounds__(GT_EW_THREADS) gemm_##FAM##_##PREC##_tn(GT_GEMM_ARGS) {           \
    gt_gemm_##FAM<true, false, TF32>(GT_GEMM_PASS);                                                               \
  }                                                                                                               \
  extern "C" __global__ void __launch_bounds__(GT_EW_THREADS) gemm_##FAM##_##PREC##_nt(GT_GEMM_ARGS) {           \
    gt_gemm_##FAM<false, true, TF32>(GT_GEMM_PASS);                                                               \
  }
GT_GEMM_DOT(dot, f32, false)
GT_GEMM_DOT(dot, tf32, true)
GT_GEMM_DOT(wdot, f32, false)
GT_GEMM_DOT(wdot, tf32, true)

// Tensor cores: large tiles for large products, smaller ones (with split-K) to fill the
// device at the paper's batch of 100.
GT_GEMM_TC(256, 128, 32, 64, 64, 3)
GT_GEMM_TC(128, 128, 32, 64, 64, 3)
GT_GEMM_TC(128, 128, 32, 64, 32, 3)
GT_GEMM_TC(128, 64, 32, 64, 32, 3)
GT_GEMM_TC(64, 128, 32, 32, 64, 3)
GT_GEMM_TC(64, 64, 32, 32, 32, 4)
GT_GEMM_TC(32, 64, 32, 32, 32, 4)

// fp32 FMAs.
GT_GEMM_SIMT(128, 128, 16, 8, 8, 3)
GT_GEMM_SIMT(128, 64, 16, 8, 8, 3)
GT_GEMM_SIMT(64, 64, 16, 4, 4, 3)
GT_GEMM_SIMT(32, 64, 16, 4, 4, 3)
