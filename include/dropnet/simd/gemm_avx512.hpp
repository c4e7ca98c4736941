#pragma once
// The packed GEMM (simd/gemm_kernel.inc) for AVX-512F: a 32 x 12 float (16 x 12 double) tile of
// C in 24 zmm registers. Compiled on GCC/Clang x86 through function target attributes (in the
// translation units that use it, or in dropnet::compiled: simd/dispatch.hpp); call it only when
// simd_level() is avx512 (Gemm<T> in core/gemm.hpp does, through simd::gemm_packed).

#include "dispatch.hpp"
#include "gemm_workspace.hpp"

#if defined(DROPNET_SIMD_X86)
#include <immintrin.h>

#include <type_traits>

namespace dropnet::simd {

/// Whether the packed AVX-512 kernel is compiled in (GCC or Clang on x86); whether it runs is
/// simd_level()'s decision.
inline constexpr bool has_gemm_avx512 = true;

/// The packed GEMM compiled for AVX-512F.
namespace avx512 {

/// One zmm register of T and the operations the packed GEMM needs. Masked and setzero forms
/// only: the plain ones pass _mm512_undefined_*(), which GCC 12 reports as maybe-uninitialized
/// (GCC bug 105593).
template <class T>
struct Vec;

/// 16 floats.
template <>
struct Vec<float> {
  using Reg = __m512;               ///< the register
  using Mask = __mmask16;           ///< a lane mask
  static constexpr int lanes = 16;  ///< values per register
  static constexpr int nr = 12;     ///< columns of the micro-kernel's tile
  /// Lanes [0, rows) set.
  DROPNET_TARGET_AVX512 static Mask mask(Eigen::Index rows) {
    if (rows <= 0) return Mask(0);
    return rows >= lanes ? Mask(0xFFFF) : Mask((1u << static_cast<unsigned>(rows)) - 1u);
  }
  /// All lanes 0.
  DROPNET_TARGET_AVX512 static Reg zero() { return _mm512_setzero_ps(); }
  /// A 64-byte aligned load.
  DROPNET_TARGET_AVX512 static Reg load(const float* p) { return _mm512_load_ps(p); }
  /// The lanes of m from p (unaligned), 0 elsewhere; nothing read outside m.
  DROPNET_TARGET_AVX512 static Reg load(Mask m, const float* p) {
    return _mm512_maskz_loadu_ps(m, p);
  }
  /// Writes the lanes of m to p (unaligned).
  DROPNET_TARGET_AVX512 static void store(float* p, Mask m, Reg v) {
    _mm512_mask_storeu_ps(p, m, v);
  }
  /// An unaligned load of a whole register.
  DROPNET_TARGET_AVX512 static Reg loadu(const float* p) { return _mm512_loadu_ps(p); }
  /// An unaligned store of a whole register.
  DROPNET_TARGET_AVX512 static void storeu(float* p, Reg v) { _mm512_storeu_ps(p, v); }
  /// *p in every lane.
  DROPNET_TARGET_AVX512 static Reg broadcast(const float* p) { return _mm512_set1_ps(*p); }
  /// a b + c, one rounding.
  DROPNET_TARGET_AVX512 static Reg fma(Reg a, Reg b, Reg c) { return _mm512_fmadd_ps(a, b, c); }
  /// a + b.
  DROPNET_TARGET_AVX512 static Reg add(Reg a, Reg b) { return _mm512_add_ps(a, b); }
  /// a b.
  DROPNET_TARGET_AVX512 static Reg mul(Reg a, Reg b) { return _mm512_mul_ps(a, b); }
  /// v in every lane.
  DROPNET_TARGET_AVX512 static Reg set1(float v) { return _mm512_set1_ps(v); }
  /// a - b.
  DROPNET_TARGET_AVX512 static Reg sub(Reg a, Reg b) { return _mm512_sub_ps(a, b); }
  /// a / b, correctly rounded.
  DROPNET_TARGET_AVX512 static Reg div(Reg a, Reg b) { return _mm512_div_ps(a, b); }
  /// sqrt(a), correctly rounded.
  DROPNET_TARGET_AVX512 static Reg sqrt(Reg a) { return _mm512_maskz_sqrt_ps(0xFFFF, a); }
  /// a > b ? a : b (b where either is NaN, as the instruction does).
  DROPNET_TARGET_AVX512 static Reg max(Reg a, Reg b) { return _mm512_maskz_max_ps(0xFFFF, a, b); }
  /// a < b ? a : b (b where either is NaN, as the instruction does).
  DROPNET_TARGET_AVX512 static Reg min(Reg a, Reg b) { return _mm512_maskz_min_ps(0xFFFF, a, b); }
  /// 2^n for integer-valued n in [-126, 127], exactly.
  DROPNET_TARGET_AVX512 static Reg pow2(Reg n) {
    return _mm512_maskz_scalef_ps(0xFFFF, _mm512_set1_ps(1.0f), n);
  }
  /// True: scale() below exists, one instruction.
  static constexpr bool exact_scale = true;
  /// a 2^n for integer-valued n, rounded once (into the subnormals, or to inf).
  DROPNET_TARGET_AVX512 static Reg scale(Reg a, Reg n) {
    return _mm512_maskz_scalef_ps(0xFFFF, a, n);
  }
  /// z > 0 ? a : b, lane by lane (b where z is NaN).
  DROPNET_TARGET_AVX512 static Reg where_positive(Reg z, Reg a, Reg b) {
    return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(z, zero(), _CMP_GT_OQ), b, a);
  }
  /// Transposes 16 x 16 floats in registers: r[c] becomes column c (lane i = row i). Four
  /// stages of 16 shuffles: pairs of rows, then quads within 128-bit lanes, then lanes.
  DROPNET_TARGET_AVX512 static void transpose(Reg (&r)[16]) {
    constexpr __mmask16 all = 0xFFFF;
    __m512 t[16];
    for (int i = 0; i < 16; i += 2) {
      t[i] = _mm512_maskz_unpacklo_ps(all, r[i], r[i + 1]);
      t[i + 1] = _mm512_maskz_unpackhi_ps(all, r[i], r[i + 1]);
    }
    for (int i = 0; i < 16; i += 4) {  // r[i + q], 128-bit lane l: column 4 l + q, rows i..i+3
      r[i] = _mm512_maskz_shuffle_ps(all, t[i], t[i + 2], 0x44);
      r[i + 1] = _mm512_maskz_shuffle_ps(all, t[i], t[i + 2], 0xEE);
      r[i + 2] = _mm512_maskz_shuffle_ps(all, t[i + 1], t[i + 3], 0x44);
      r[i + 3] = _mm512_maskz_shuffle_ps(all, t[i + 1], t[i + 3], 0xEE);
    }
    for (int i = 0; i < 4; ++i) {
      t[i] = _mm512_maskz_shuffle_f32x4(all, r[i], r[i + 4], 0x88);
      t[i + 4] = _mm512_maskz_shuffle_f32x4(all, r[i], r[i + 4], 0xDD);
      t[i + 8] = _mm512_maskz_shuffle_f32x4(all, r[i + 8], r[i + 12], 0x88);
      t[i + 12] = _mm512_maskz_shuffle_f32x4(all, r[i + 8], r[i + 12], 0xDD);
    }
    for (int i = 0; i < 8; ++i) {
      r[i] = _mm512_maskz_shuffle_f32x4(all, t[i], t[i + 8], 0x88);
      r[i + 8] = _mm512_maskz_shuffle_f32x4(all, t[i], t[i + 8], 0xDD);
    }
  }
};

/// 8 doubles.
template <>
struct Vec<double> {
  using Reg = __m512d;             ///< the register
  using Mask = __mmask8;           ///< a lane mask
  static constexpr int lanes = 8;  ///< values per register
  static constexpr int nr = 12;    ///< columns of the micro-kernel's tile
  /// Lanes [0, rows) set.
  DROPNET_TARGET_AVX512 static Mask mask(Eigen::Index rows) {
    if (rows <= 0) return Mask(0);
    return rows >= lanes ? Mask(0xFF) : Mask((1u << static_cast<unsigned>(rows)) - 1u);
  }
  /// All lanes 0.
  DROPNET_TARGET_AVX512 static Reg zero() { return _mm512_setzero_pd(); }
  /// A 64-byte aligned load.
  DROPNET_TARGET_AVX512 static Reg load(const double* p) { return _mm512_load_pd(p); }
  /// The lanes of m from p (unaligned), 0 elsewhere; nothing read outside m.
  DROPNET_TARGET_AVX512 static Reg load(Mask m, const double* p) {
    return _mm512_maskz_loadu_pd(m, p);
  }
  /// Writes the lanes of m to p (unaligned).
  DROPNET_TARGET_AVX512 static void store(double* p, Mask m, Reg v) {
    _mm512_mask_storeu_pd(p, m, v);
  }
  /// An unaligned load of a whole register.
  DROPNET_TARGET_AVX512 static Reg loadu(const double* p) { return _mm512_loadu_pd(p); }
  /// An unaligned store of a whole register.
  DROPNET_TARGET_AVX512 static void storeu(double* p, Reg v) { _mm512_storeu_pd(p, v); }
  /// *p in every lane.
  DROPNET_TARGET_AVX512 static Reg broadcast(const double* p) { return _mm512_set1_pd(*p); }
  /// a b + c, one rounding.
  DROPNET_TARGET_AVX512 static Reg fma(Reg a, Reg b, Reg c) { return _mm512_fmadd_pd(a, b, c); }
  /// a + b.
  DROPNET_TARGET_AVX512 static Reg add(Reg a, Reg b) { return _mm512_add_pd(a, b); }
  /// a b.
  DROPNET_TARGET_AVX512 static Reg mul(Reg a, Reg b) { return _mm512_mul_pd(a, b); }
  /// v in every lane.
  DROPNET_TARGET_AVX512 static Reg set1(double v) { return _mm512_set1_pd(v); }
  /// a - b.
  DROPNET_TARGET_AVX512 static Reg sub(Reg a, Reg b) { return _mm512_sub_pd(a, b); }
  /// a / b, correctly rounded.
  DROPNET_TARGET_AVX512 static Reg div(Reg a, Reg b) { return _mm512_div_pd(a, b); }
  /// sqrt(a), correctly rounded.
  DROPNET_TARGET_AVX512 static Reg sqrt(Reg a) { return _mm512_maskz_sqrt_pd(0xFF, a); }
  /// a > b ? a : b (b where either is NaN, as the instruction does).
  DROPNET_TARGET_AVX512 static Reg max(Reg a, Reg b) { return _mm512_maskz_max_pd(0xFF, a, b); }
  /// a < b ? a : b (b where either is NaN, as the instruction does).
  DROPNET_TARGET_AVX512 static Reg min(Reg a, Reg b) { return _mm512_maskz_min_pd(0xFF, a, b); }
  /// 2^n for integer-valued n in [-1022, 1023], exactly.
  DROPNET_TARGET_AVX512 static Reg pow2(Reg n) {
    return _mm512_maskz_scalef_pd(0xFF, _mm512_set1_pd(1.0), n);
  }
  /// True: scale() below exists, one instruction.
  static constexpr bool exact_scale = true;
  /// a 2^n for integer-valued n, rounded once (into the subnormals, or to inf).
  DROPNET_TARGET_AVX512 static Reg scale(Reg a, Reg n) { return _mm512_maskz_scalef_pd(0xFF, a, n); }
  /// z > 0 ? a : b, lane by lane (b where z is NaN).
  DROPNET_TARGET_AVX512 static Reg where_positive(Reg z, Reg a, Reg b) {
    return _mm512_mask_blend_pd(_mm512_cmp_pd_mask(z, zero(), _CMP_GT_OQ), b, a);
  }
};

#define DROPNET_GEMM_TARGET DROPNET_TARGET_AVX512
#include "gemm_kernel.inc"
#undef DROPNET_GEMM_TARGET

}  // namespace avx512

/// The AVX-512 packed GEMM (avx512::gemm), under its earlier name.
template <class T, bool TransA, bool TransB>
void gemm_avx512(Eigen::Index m, Eigen::Index n, Eigen::Index k, const T* a, Eigen::Index lda,
                 const T* b, Eigen::Index ldb, T beta, T* c, Eigen::Index ldc,
                 GemmWorkspace<T>& ws) {
  avx512::gemm<T, TransA, TransB>(m, n, k, a, lda, b, ldb, beta, c, ldc, ws);
}

}  // namespace dropnet::simd

#else

namespace dropnet::simd {
/// Whether the packed AVX-512 kernel is compiled in (GCC or Clang on x86).
inline constexpr bool has_gemm_avx512 = false;
}  // namespace dropnet::simd

#endif
