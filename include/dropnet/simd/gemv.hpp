#pragma once
// small_batch_affine: a dense layer's forward on a few columns (batch 1 to small_batch_columns),
// Z = W X + b 1^T and Y = max(slope Z, Z), in one pass over W with the bias and the activation
// fused, at the SIMD level chosen at run time (simd/dispatch.hpp). The kernel is written once
// (simd/gemv_kernel.inc) and compiled for AVX-512, AVX2 + FMA and the baseline (the translation
// unit's own flags, through Eigen's packets), as the packed GEMM and the elementwise kernels are.
//
// Why a kernel of its own: at batch 1 a dense layer is a matrix-vector product, bound by reading
// W (W1's 784 x 120 floats, 376 KB, from L2). The batched path pays a general product's set-up,
// then a pass for the bias and one for the activation, and Sequential::forward a copy of the
// input; here X is read in place and Z, Y leave the registers once.
//
// Results: on the avx2 and avx512 levels every element of Z is computed in the packed GEMM's
// order (see the .inc), so a column gets the same bits as in a batch that runs the packed kernel;
// on the baseline level (Eigen's GEMM in the batched path, and FMA only where the translation
// unit's flags have it) the two paths agree within the rounding bound of a k-term dot product:
// |Z_small - Z_batched| <= 2 k eps sum_p |W(i, p) X(p, j)| + eps |Z| (tests/test_gemv.cpp).

#include <Eigen/Core>
#include <algorithm>

#include "dispatch.hpp"
#include "gemm_avx2.hpp"
#include "gemm_avx512.hpp"
#include "gemm_workspace.hpp"
#include "vec_baseline.hpp"

namespace dropnet::simd {

/// Batches of up to this many columns take small_batch_affine in Dense's forward; larger ones
/// the packed GEMM, which packs W once and reuses it across columns.
inline constexpr Eigen::Index small_batch_columns = 8;

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

namespace baseline {
/// The baseline register (simd/vec_baseline.hpp) with what the kernel adds: a multiply-add
/// (one rounding where the translation unit's flags have FMA, two otherwise) and the number of
/// accumulators a tile may keep (12 of SSE2's 16 registers).
template <class T>
struct GemvVec : Vec<T> {
  /// a b + c.
  static typename Vec<T>::Reg fma(typename Vec<T>::Reg a, typename Vec<T>::Reg b,
                                  typename Vec<T>::Reg c) {
    return Eigen::internal::pmadd(a, b, c);
  }
  /// *p in every lane.
  static typename Vec<T>::Reg broadcast(const T* p) { return Vec<T>::set1(*p); }
  /// Accumulator registers per tile.
  static constexpr int accumulators = 12;
};
#define DROPNET_GEMV_TARGET
#include "gemv_kernel.inc"
#undef DROPNET_GEMV_TARGET
}  // namespace baseline

#if defined(DROPNET_SIMD_X86)
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

/// Z = W X + b 1^T and, when s.y is not null, Y = max(s.slope Z, Z), at `level` (which must
/// not exceed cpu_simd_level(); simd_level() never does). See SmallBatchAffine for the operands
/// and the file comment for the rounding. Allocates nothing. Does nothing when m or n is 0;
/// requires k >= 1.
template <class T>
void small_batch_affine(SimdLevel level, const SmallBatchAffine<T>& s) {
#if defined(DROPNET_SIMD_X86)
  switch (level) {
    case SimdLevel::avx512:
      return avx512::small_batch_affine<T>(s);
    case SimdLevel::avx2:
      return avx2::small_batch_affine<T>(s);
    default:
      break;
  }
#else
  (void)level;
#endif
  baseline::small_batch_affine<T>(s);
}

}  // namespace dropnet::simd
