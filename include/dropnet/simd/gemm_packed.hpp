#pragma once
// gemm_packed: the packed GEMM at a given instruction-set level (simd/dispatch.hpp), for
// Gemm<T> (core/gemm.hpp). C = beta C + op(A) op(B), column-major; float and double.
//   avx512   simd/gemm_avx512.hpp, 32 x 12 float tiles in zmm registers
//   avx2     simd/gemm_avx2.hpp, 16 x 6 float tiles in ymm registers
//   baseline not handled here: gemm_packed returns false and the caller runs Eigen's kernel.
// Both kernels run the same FMA chains in the same order, so they give the same bits.

#include "dispatch.hpp"
#include "gemm_workspace.hpp"
#if !defined(DROPNET_KERNELS_DECLARED)
#include "gemm_avx2.hpp"
#include "gemm_avx512.hpp"
#endif

namespace dropnet::simd {

/// Whether gemm_packed has a kernel for `level`: avx512 and avx2 where the x86 kernels are
/// compiled (GCC or Clang on x86), never baseline.
constexpr bool gemm_packed_serves(SimdLevel level) {
#if defined(DROPNET_SIMD_X86)
  return level == SimdLevel::avx512 || level == SimdLevel::avx2;
#else
  return (void)level, false;
#endif
}

/// C (m x n, leading dimension ldc) = beta C + op(A) op(B) with the packed kernel of `level`,
/// A stored m x k (TransA false) or k x m (lda), B k x n or n x k (ldb); beta == 0 never reads
/// C. With a `scale`, B is read as B times it, elementwise (GemmScale; its origin is b's).
/// Returns false, touching nothing, when !gemm_packed_serves(level); the caller then computes
/// the product itself. `level` must not exceed cpu_simd_level() (simd_level() never does).
/// Allocates only to grow `ws`.
template <class T, bool TransA, bool TransB>
bool gemm_packed(SimdLevel level, Eigen::Index m, Eigen::Index n, Eigen::Index k, const T* a,
                 Eigen::Index lda, const T* b, Eigen::Index ldb, T beta, T* c, Eigen::Index ldc,
                 GemmWorkspace<T>& ws, const GemmScale<T>& scale = {})
#if defined(DROPNET_KERNELS_DECLARED)
    ;
#else
{
#if defined(DROPNET_SIMD_X86)
  switch (level) {
    case SimdLevel::avx512:
      avx512::gemm<T, TransA, TransB>(m, n, k, a, lda, b, ldb, beta, c, ldc, ws, scale);
      return true;
    case SimdLevel::avx2:
      avx2::gemm<T, TransA, TransB>(m, n, k, a, lda, b, ldb, beta, c, ldc, ws, scale);
      return true;
    default:
      break;
  }
#else
  (void)level, (void)m, (void)n, (void)k, (void)a, (void)lda, (void)b, (void)ldb, (void)beta;
  (void)c, (void)ldc, (void)ws, (void)scale;
#endif
  return false;
}
#endif  // DROPNET_KERNELS_DECLARED

}  // namespace dropnet::simd
