#pragma once
// small_batch_affine: a dense layer's forward on a few columns (batch 1 to small_batch_columns),
// Z = W X + b 1^T and Y = max(slope Z, Z), in one pass over W with the bias and the activation
// fused, at the SIMD level chosen at run time (simd/dispatch.hpp). The kernel is written once
// (simd/gemv_kernel.inc) and compiled for AVX-512 and AVX2 + FMA, as the packed GEMM is; on the
// baseline level (and off x86) Dense keeps Eigen's product, as Gemm does.
//
// Why a kernel of its own: at batch 1 a dense layer is a matrix-vector product, bound by reading
// W (W1's 784 x 120 floats, 376 KB, from L2). The batched path pays a general product's set-up,
// then a pass for the bias and one for the activation, and Sequential::forward a copy of the
// input; here X is read in place and Z, Y leave the registers once.
//
// Results: every element of Z is computed in the packed GEMM's order (see the .inc), so a column
// gets the same bits as in a batch that runs the packed kernel. Where the batch runs Eigen's
// kernel instead (under -march=native, Gemm leaves layers of at most 16 outputs to it) the two
// agree within the rounding bound of a k-term dot product (tests/test_gemv.cpp):
// |Z_small - Z_batched| <= 2 (k + 2) eps (sum_p |W(i, p) X(p, j)| + |b_i|).

#include <Eigen/Core>
#include <algorithm>
#include <cstdint>

#include "../core/parallel.hpp"
#include "dispatch.hpp"
#include "gemm_packed.hpp"
#include "gemm_workspace.hpp"
#if !defined(DROPNET_KERNELS_DECLARED)
#include "gemm_avx2.hpp"
#include "gemm_avx512.hpp"
#endif

namespace dropnet::simd {

/// Batches of up to this many columns take small_batch_affine in Dense's forward; larger ones
/// the packed GEMM, which packs W once and reuses it across columns. W1's model at n columns,
/// CPU us per image, default flags at the avx512 level, load 11-14: the kernel 1.4-1.5 from 8
/// to 64 columns; the GEMM 2.0-2.1 at 12, 1.8 at 16, 1.6 at 24, 1.5 at 32, 1.4 at 64.
inline constexpr Eigen::Index small_batch_columns = 24;

/// How many columns of W ahead of the one being read the kernel asks the cache for: W1's first
/// layer (376 KB) streams from L2 at every image, and the hint took batch-1 inference from about
/// 3.0 to 2.7-2.9 us of CPU time (distances 4 to 16 alike; a loaded 2-core VM, so roughly).
/// A prefetch never faults, so the hint may point past W's last column.
inline constexpr Eigen::Index gemv_prefetch_steps = 8;

/// The operands of small_batch_affine, column-major with leading dimensions: W m x k, X k x n,
/// b m, Z and Y m x n. y may be null (Z only). Z may not alias W, X or b; Y may not alias any.
template <class T>
struct SmallBatchAffine {
  Eigen::Index m;    ///< rows of W, Z, Y (output features)
  Eigen::Index n;    ///< columns of X, Z, Y (samples)
  Eigen::Index k;    ///< columns of W, rows of X (input features), >= 1
  const T* w;        ///< W
  Eigen::Index ldw;  ///< W's leading dimension, >= m
  const T* x;        ///< X
  Eigen::Index ldx;  ///< X's leading dimension, >= k
  const T* bias;     ///< b
  T* z;              ///< Z = W X + b 1^T (written)
  Eigen::Index ldz;  ///< Z's leading dimension, >= m
  T* y;              ///< Y = max(slope Z, Z) (written), or null
  Eigen::Index ldy;  ///< Y's leading dimension, >= m
  T slope;           ///< 0: ReLU, 1: identity, 0 < slope < 1: LeakyReLU
};

#if defined(DROPNET_SIMD_X86) && !defined(DROPNET_KERNELS_DECLARED)
namespace avx2 {
/// The AVX2 register of the packed GEMM; a tile keeps up to 12 of the 16 ymm registers.
template <class T>
struct GemvVec : Vec<T> {
  /// Accumulator registers per tile.
  static constexpr int accumulators = 12;
};
#define DROPNET_GEMV_TARGET DROPNET_TARGET_AVX2
#include "gemv_kernel.inc"
#undef DROPNET_GEMV_TARGET
}  // namespace avx2

namespace avx512 {
/// The AVX-512 register of the packed GEMM; a tile keeps up to 24 of the 32 zmm registers.
template <class T>
struct GemvVec : Vec<T> {
  /// Accumulator registers per tile.
  static constexpr int accumulators = 24;
};
#define DROPNET_GEMV_TARGET DROPNET_TARGET_AVX512
#include "gemv_kernel.inc"
#undef DROPNET_GEMV_TARGET
}  // namespace avx512
#endif

/// Whether small_batch_affine has a kernel for `level`: avx512 and avx2 where the x86 kernels
/// are compiled, as for the packed GEMM; never baseline, where Dense keeps Eigen's product (the
/// previous release's bits, and faster than this kernel on SSE2's 4-float registers: 7.9 us
/// against 7.0 us for W1's batch-1 inference, measured on a loaded machine).
constexpr bool small_batch_affine_serves(SimdLevel level) { return gemm_packed_serves(level); }

/// Multiply-adds per thread from which small_batch_affine splits W's rows between threads.
/// W1's first layer (120 x 784) stays on one thread at batch 1 and 2 and goes to two from batch
/// 3: handing a piece to the second core costs about 0.45 us on this project's 2-vCPU VM (the
/// worker starts its piece that long after the caller; core/parallel.hpp), and a layer that
/// streams its weights from L2 gains less than half from the split (rows 0-63 of W1's layer
/// took 1.46 us, rows 64-119 1.92 us, all 120 rows 2.08-2.23 us on one thread). The kernel
/// alone, min / median us per call at load 2.7: batch 1 2.20 / 2.34 on one thread, 2.30 / 9.09
/// on two; batch 2 4.44 / 8.52 against 8.78 / 15.8; batch 4 6.90 / 7.06 against 5.13 / 14.0
/// (the medians on two threads are the busy machine's: a descheduled worker holds its piece).
/// bench_training's W4_batch1 on two threads, the same runs alternating binaries at load
/// 1.5-2.5: 2.69-2.95 us with this threshold, 4.45-9.79 us with the previous 32K (one thread:
/// 2.72-2.98 us either way).
inline constexpr Eigen::Index gemv_parallel_macs = 131072;

/// Z = W X + b 1^T and, when s.y is not null, Y = max(s.slope Z, Z), with the kernel of `level`
/// (small_batch_affine_serves(level) must hold, and level must not exceed cpu_simd_level():
/// simd_level() never does). See SmallBatchAffine for the operands and the file comment for the
/// rounding. With OpenMP and Eigen::nbThreads() > 1, large enough products split W's rows
/// between threads (core/parallel.hpp); a row's value does not depend on the split. Allocates
/// nothing. Does nothing when m or n is 0; requires k >= 1.
template <class T>
void small_batch_affine(SimdLevel level, const SmallBatchAffine<T>& s)
#if defined(DROPNET_KERNELS_DECLARED)
    ;
#else
{
#if defined(DROPNET_SIMD_X86)
  const Eigen::Index macs_per_row = std::max<Eigen::Index>(1, s.k * s.n);
  const Eigen::Index min_rows = (gemv_parallel_macs + macs_per_row - 1) / macs_per_row;
  constexpr Eigen::Index line = Eigen::Index(64 / sizeof(T));  // rows per 64-byte line of Z
  dropnet::detail::parallel_for(s.m, line, min_rows, [&](Eigen::Index first, Eigen::Index end) {
    SmallBatchAffine<T> rows = s;
    rows.m = end - first;
    rows.w += first;
    rows.bias += first;
    rows.z += first;
    if (rows.y != nullptr) rows.y += first;
    if (level == SimdLevel::avx512)
      avx512::small_batch_affine<T>(rows);
    else if (level == SimdLevel::avx2)
      avx2::small_batch_affine<T>(rows);
  });
#else
  (void)level, (void)s;
#endif
}
#endif  // DROPNET_KERNELS_DECLARED

}  // namespace dropnet::simd
