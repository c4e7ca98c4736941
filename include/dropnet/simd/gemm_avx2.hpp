#pragma once
// The packed GEMM (simd/gemm_kernel.inc) for AVX2 + FMA: a 16 x 6 float (8 x 6 double) tile of C
// in 12 of the 16 ymm registers (2 more for A, 1 for the broadcast of B). Compiled on GCC/Clang
// x86 through function target attributes (where it is used, or in dropnet::compiled:
// simd/dispatch.hpp); call it only when simd_level() is avx2 or above (Gemm<T> in core/gemm.hpp does, through simd::gemm_packed).

#include "dispatch.hpp"
#include "gemm_workspace.hpp"

#if defined(DROPNET_SIMD_X86)
#include <immintrin.h>

#include <type_traits>

namespace dropnet::simd {

/// The packed GEMM compiled for AVX2 + FMA.
namespace avx2 {

/// One ymm register of T and the operations the packed GEMM needs. AVX2 has no mask registers:
/// a mask is a vector whose lanes are all ones (set) or zero, as maskload / maskstore take.
template <class T>
struct Vec;

/// 8 floats.
template <>
struct Vec<float> {
  using Reg = __m256;              ///< the register
  using Mask = __m256i;            ///< a lane mask (32-bit lanes, all ones where set)
  static constexpr int lanes = 8;  ///< values per register
  static constexpr int nr = 6;     ///< columns of the micro-kernel's tile
  /// Lanes [0, rows) set.
  DROPNET_TARGET_AVX2 static Mask mask(Eigen::Index rows) {
    const int n = static_cast<int>(std::clamp<Eigen::Index>(rows, 0, lanes));
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  /// All lanes 0.
  DROPNET_TARGET_AVX2 static Reg zero() { return _mm256_setzero_ps(); }
  /// A 32-byte aligned load.
  DROPNET_TARGET_AVX2 static Reg load(const float* p) { return _mm256_load_ps(p); }
  /// The lanes of m from p (unaligned), 0 elsewhere; nothing read outside m.
  DROPNET_TARGET_AVX2 static Reg load(Mask m, const float* p) { return _mm256_maskload_ps(p, m); }
  /// Writes the lanes of m to p (unaligned).
  DROPNET_TARGET_AVX2 static void store(float* p, Mask m, Reg v) { _mm256_maskstore_ps(p, m, v); }
  /// An unaligned load of a whole register.
  DROPNET_TARGET_AVX2 static Reg loadu(const float* p) { return _mm256_loadu_ps(p); }
  /// An unaligned store of a whole register.
  DROPNET_TARGET_AVX2 static void storeu(float* p, Reg v) { _mm256_storeu_ps(p, v); }
  /// *p in every lane.
  DROPNET_TARGET_AVX2 static Reg broadcast(const float* p) { return _mm256_broadcast_ss(p); }
  /// a b + c, one rounding.
  DROPNET_TARGET_AVX2 static Reg fma(Reg a, Reg b, Reg c) { return _mm256_fmadd_ps(a, b, c); }
  /// a + b.
  DROPNET_TARGET_AVX2 static Reg add(Reg a, Reg b) { return _mm256_add_ps(a, b); }
  /// a b.
  DROPNET_TARGET_AVX2 static Reg mul(Reg a, Reg b) { return _mm256_mul_ps(a, b); }
  /// v in every lane.
  DROPNET_TARGET_AVX2 static Reg set1(float v) { return _mm256_set1_ps(v); }
  /// a - b.
  DROPNET_TARGET_AVX2 static Reg sub(Reg a, Reg b) { return _mm256_sub_ps(a, b); }
  /// a / b, correctly rounded.
  DROPNET_TARGET_AVX2 static Reg div(Reg a, Reg b) { return _mm256_div_ps(a, b); }
  /// sqrt(a), correctly rounded.
  DROPNET_TARGET_AVX2 static Reg sqrt(Reg a) { return _mm256_sqrt_ps(a); }
  /// a > b ? a : b (b where either is NaN, as the instruction does).
  DROPNET_TARGET_AVX2 static Reg max(Reg a, Reg b) { return _mm256_max_ps(a, b); }
  /// a < b ? a : b (b where either is NaN, as the instruction does).
  DROPNET_TARGET_AVX2 static Reg min(Reg a, Reg b) { return _mm256_min_ps(a, b); }
  /// 2^n for integer-valued n in [-126, 127], exactly: n + 2^23 + 127 holds n + 127 in its
  /// low mantissa bits, which the shift moves into the exponent field.
  DROPNET_TARGET_AVX2 static Reg pow2(Reg n) {
    const __m256i biased = _mm256_castps_si256(_mm256_add_ps(n, _mm256_set1_ps(8388735.0f)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(biased, 23));
  }
  /// False: no single instruction scales by 2^n (simd/elementwise_kernel.inc multiplies by
  /// two powers of two instead).
  static constexpr bool exact_scale = false;
  /// z > 0 ? a : b, lane by lane (b where z is NaN).
  DROPNET_TARGET_AVX2 static Reg where_positive(Reg z, Reg a, Reg b) {
    return _mm256_blendv_ps(b, a, _mm256_cmp_ps(z, zero(), _CMP_GT_OQ));
  }
  /// Transposes 8 x 8 floats in registers: r[c] becomes column c (lane i = row i). Pairs of
  /// rows, then quads within 128-bit lanes, then the lanes.
  DROPNET_TARGET_AVX2 static void transpose(Reg (&r)[8]) {
    __m256 t[8], s[8];
    for (int i = 0; i < 8; i += 2) {
      t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
      t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 8; i += 4) {
      s[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
      s[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);
      s[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
      s[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
    }
    for (int i = 0; i < 4; ++i) {
      r[i] = _mm256_permute2f128_ps(s[i], s[i + 4], 0x20);
      r[i + 4] = _mm256_permute2f128_ps(s[i], s[i + 4], 0x31);
    }
  }
};

/// 4 doubles.
template <>
struct Vec<double> {
  using Reg = __m256d;             ///< the register
  using Mask = __m256i;            ///< a lane mask (64-bit lanes, all ones where set)
  static constexpr int lanes = 4;  ///< values per register
  static constexpr int nr = 6;     ///< columns of the micro-kernel's tile
  /// Lanes [0, rows) set.
  DROPNET_TARGET_AVX2 static Mask mask(Eigen::Index rows) {
    const long long n = std::clamp<Eigen::Index>(rows, 0, lanes);
    return _mm256_cmpgt_epi64(_mm256_set1_epi64x(n), _mm256_setr_epi64x(0, 1, 2, 3));
  }
  /// All lanes 0.
  DROPNET_TARGET_AVX2 static Reg zero() { return _mm256_setzero_pd(); }
  /// A 32-byte aligned load.
  DROPNET_TARGET_AVX2 static Reg load(const double* p) { return _mm256_load_pd(p); }
  /// The lanes of m from p (unaligned), 0 elsewhere; nothing read outside m.
  DROPNET_TARGET_AVX2 static Reg load(Mask m, const double* p) { return _mm256_maskload_pd(p, m); }
  /// Writes the lanes of m to p (unaligned).
  DROPNET_TARGET_AVX2 static void store(double* p, Mask m, Reg v) { _mm256_maskstore_pd(p, m, v); }
  /// An unaligned load of a whole register.
  DROPNET_TARGET_AVX2 static Reg loadu(const double* p) { return _mm256_loadu_pd(p); }
  /// An unaligned store of a whole register.
  DROPNET_TARGET_AVX2 static void storeu(double* p, Reg v) { _mm256_storeu_pd(p, v); }
  /// *p in every lane.
  DROPNET_TARGET_AVX2 static Reg broadcast(const double* p) { return _mm256_broadcast_sd(p); }
  /// a b + c, one rounding.
  DROPNET_TARGET_AVX2 static Reg fma(Reg a, Reg b, Reg c) { return _mm256_fmadd_pd(a, b, c); }
  /// a + b.
  DROPNET_TARGET_AVX2 static Reg add(Reg a, Reg b) { return _mm256_add_pd(a, b); }
  /// a b.
  DROPNET_TARGET_AVX2 static Reg mul(Reg a, Reg b) { return _mm256_mul_pd(a, b); }
  /// v in every lane.
  DROPNET_TARGET_AVX2 static Reg set1(double v) { return _mm256_set1_pd(v); }
  /// a - b.
  DROPNET_TARGET_AVX2 static Reg sub(Reg a, Reg b) { return _mm256_sub_pd(a, b); }
  /// a / b, correctly rounded.
  DROPNET_TARGET_AVX2 static Reg div(Reg a, Reg b) { return _mm256_div_pd(a, b); }
  /// sqrt(a), correctly rounded.
  DROPNET_TARGET_AVX2 static Reg sqrt(Reg a) { return _mm256_sqrt_pd(a); }
  /// a > b ? a : b (b where either is NaN, as the instruction does).
  DROPNET_TARGET_AVX2 static Reg max(Reg a, Reg b) { return _mm256_max_pd(a, b); }
  /// a < b ? a : b (b where either is NaN, as the instruction does).
  DROPNET_TARGET_AVX2 static Reg min(Reg a, Reg b) { return _mm256_min_pd(a, b); }
  /// 2^n for integer-valued n in [-1022, 1023], exactly (n + 2^52 + 1023 holds n + 1023 in its
  /// low mantissa bits, which the shift moves into the exponent field).
  DROPNET_TARGET_AVX2 static Reg pow2(Reg n) {
    const __m256i biased =
        _mm256_castpd_si256(_mm256_add_pd(n, _mm256_set1_pd(4503599627371519.0)));
    return _mm256_castsi256_pd(_mm256_slli_epi64(biased, 52));
  }
  /// False: no single instruction scales by 2^n (simd/elementwise_kernel.inc multiplies by
  /// two powers of two instead).
  static constexpr bool exact_scale = false;
  /// z > 0 ? a : b, lane by lane (b where z is NaN).
  DROPNET_TARGET_AVX2 static Reg where_positive(Reg z, Reg a, Reg b) {
    return _mm256_blendv_pd(b, a, _mm256_cmp_pd(z, zero(), _CMP_GT_OQ));
  }
};

#define DROPNET_GEMM_TARGET DROPNET_TARGET_AVX2
#include "gemm_kernel.inc"
#undef DROPNET_GEMM_TARGET

}  // namespace avx2
}  // namespace dropnet::simd

#endif
