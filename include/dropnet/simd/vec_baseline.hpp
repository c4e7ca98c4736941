#pragma once
// The baseline level's register for the elementwise kernels (simd/elementwise_kernel.inc): one
// Eigen packet of T, whatever the translation unit's flags give (SSE2 on x86-64 by default,
// AVX-512 under -march=native, NEON on ARM, a plain scalar where Eigen does not vectorize). It
// offers the operations of the x86 Vec<T> (simd/gemm_avx512.hpp, gemm_avx2.hpp) that those
// kernels use, with the same results: every one is a single correctly rounded IEEE operation or
// a compare and blend, so the levels agree bit for bit wherever the compiler contracts nothing.
//
// A partial register (the tail of an array) goes through a zeroed buffer, since Eigen has no
// portable masked load: Mask is the number of valid lanes.

#include <Eigen/Core>
#include <algorithm>
#include <type_traits>

#if defined(__SSE2__)
#include <immintrin.h>
#endif

namespace dropnet::simd::baseline {

/// One Eigen packet of T.
template <class T>
struct Vec {
  using Reg = typename Eigen::internal::packet_traits<T>::type;  ///< the register
  using Mask = Eigen::Index;  ///< valid lanes of a partial register
  static constexpr int lanes =
      Eigen::internal::unpacket_traits<Reg>::size;  ///< values per register

  /// Lanes [0, rows) valid.
  static Mask mask(Eigen::Index rows) { return std::clamp<Eigen::Index>(rows, 0, lanes); }
  /// All lanes 0.
  static Reg zero() { return Eigen::internal::pset1<Reg>(T(0)); }
  /// v in every lane.
  static Reg set1(T v) { return Eigen::internal::pset1<Reg>(v); }
  /// An unaligned load of a whole register.
  static Reg loadu(const T* p) { return Eigen::internal::ploadu<Reg>(p); }
  /// An unaligned store of a whole register.
  static void storeu(T* p, Reg v) { Eigen::internal::pstoreu(p, v); }
  /// The first m lanes from p, 0 elsewhere; nothing read past them.
  static Reg load(Mask m, const T* p) {
    T buffer[lanes] = {};
    std::copy(p, p + m, buffer);
    return loadu(buffer);
  }
  /// Writes the first m lanes to p.
  static void store(T* p, Mask m, Reg v) {
    T buffer[lanes];
    storeu(buffer, v);
    std::copy(buffer, buffer + m, p);
  }
  /// a + b.
  static Reg add(Reg a, Reg b) { return Eigen::internal::padd(a, b); }
  /// a - b.
  static Reg sub(Reg a, Reg b) { return Eigen::internal::psub(a, b); }
  /// a b.
  static Reg mul(Reg a, Reg b) { return Eigen::internal::pmul(a, b); }
  /// a / b, correctly rounded.
  static Reg div(Reg a, Reg b) { return Eigen::internal::pdiv(a, b); }
  /// sqrt(a), correctly rounded: the instruction, not Eigen's float psqrt, which under
  /// EIGEN_FAST_MATH (its default) is an rsqrt estimate and a Newton step, 1-2 bits off.
  static Reg sqrt(Reg a) {
#if defined(__AVX512F__)
    if constexpr (std::is_same_v<T, float> && lanes == 16) return _mm512_maskz_sqrt_ps(0xFFFF, a);
#endif
#if defined(__AVX__)
    if constexpr (std::is_same_v<T, float> && lanes == 8) return _mm256_sqrt_ps(a);
#endif
#if defined(__SSE2__)
    if constexpr (std::is_same_v<T, float> && lanes == 4) return _mm_sqrt_ps(a);
#endif
    return Eigen::internal::psqrt(a);  // exact for double; float off x86: the platform's psqrt
  }
  /// a > b ? a : b (b where either is NaN, as x86's max instruction does, and is here where
  /// the translation unit's flags have it; Eigen's pmax orders its operands differently).
  static Reg max(Reg a, Reg b) {
#if defined(__AVX512F__)
    if constexpr (std::is_same_v<T, float> && lanes == 16) return _mm512_maskz_max_ps(0xFFFF, a, b);
    if constexpr (std::is_same_v<T, double> && lanes == 8) return _mm512_maskz_max_pd(0xFF, a, b);
#endif
#if defined(__AVX__)
    if constexpr (std::is_same_v<T, float> && lanes == 8) return _mm256_max_ps(a, b);
    if constexpr (std::is_same_v<T, double> && lanes == 4) return _mm256_max_pd(a, b);
#endif
#if defined(__SSE2__)
    if constexpr (std::is_same_v<T, float> && lanes == 4) return _mm_max_ps(a, b);
    if constexpr (std::is_same_v<T, double> && lanes == 2) return _mm_max_pd(a, b);
#endif
    return Eigen::internal::pselect(Eigen::internal::pcmp_lt(b, a), a, b);
  }
  /// a < b ? a : b (b where either is NaN, as x86's min instruction does).
  static Reg min(Reg a, Reg b) {
#if defined(__AVX512F__)
    if constexpr (std::is_same_v<T, float> && lanes == 16) return _mm512_maskz_min_ps(0xFFFF, a, b);
    if constexpr (std::is_same_v<T, double> && lanes == 8) return _mm512_maskz_min_pd(0xFF, a, b);
#endif
#if defined(__AVX__)
    if constexpr (std::is_same_v<T, float> && lanes == 8) return _mm256_min_ps(a, b);
    if constexpr (std::is_same_v<T, double> && lanes == 4) return _mm256_min_pd(a, b);
#endif
#if defined(__SSE2__)
    if constexpr (std::is_same_v<T, float> && lanes == 4) return _mm_min_ps(a, b);
    if constexpr (std::is_same_v<T, double> && lanes == 2) return _mm_min_pd(a, b);
#endif
    return Eigen::internal::pselect(Eigen::internal::pcmp_lt(a, b), a, b);
  }
  /// 2^n for integer-valued n within the normal exponents, exactly. On x86 as the avx2 and
  /// avx512 levels do it (n + 2^23 + 127 holds n + 127 in its low mantissa bits, shifted into
  /// the exponent field; double alike with 2^52 + 1023); elsewhere Eigen's pldexp, which costs
  /// about 15 operations more.
  static Reg pow2(Reg n) {
#if defined(__AVX512F__)
    if constexpr (std::is_same_v<T, float> && lanes == 16)
      return _mm512_maskz_scalef_ps(0xFFFF, _mm512_set1_ps(1.0f), n);
    if constexpr (std::is_same_v<T, double> && lanes == 8)
      return _mm512_maskz_scalef_pd(0xFF, _mm512_set1_pd(1.0), n);
#endif
#if defined(__AVX2__)
    if constexpr (std::is_same_v<T, float> && lanes == 8)
      return _mm256_castsi256_ps(_mm256_slli_epi32(
          _mm256_castps_si256(_mm256_add_ps(n, _mm256_set1_ps(8388735.0f))), 23));
    if constexpr (std::is_same_v<T, double> && lanes == 4)
      return _mm256_castsi256_pd(_mm256_slli_epi64(
          _mm256_castpd_si256(_mm256_add_pd(n, _mm256_set1_pd(4503599627371519.0))), 52));
#endif
#if defined(__SSE2__)
    if constexpr (std::is_same_v<T, float> && lanes == 4)
      return _mm_castsi128_ps(
          _mm_slli_epi32(_mm_castps_si128(_mm_add_ps(n, _mm_set1_ps(8388735.0f))), 23));
    if constexpr (std::is_same_v<T, double> && lanes == 2)
      return _mm_castsi128_pd(
          _mm_slli_epi64(_mm_castpd_si128(_mm_add_pd(n, _mm_set1_pd(4503599627371519.0))), 52));
#endif
    return Eigen::internal::pldexp(set1(T(1)), n);
  }
#if defined(__AVX512F__)
  /// True where the translation unit's flags give AVX-512 registers: scale() is one instruction.
  static constexpr bool exact_scale = lanes * sizeof(T) == 64;
#else
  /// False: simd/elementwise_kernel.inc scales by 2^n with two powers of two.
  static constexpr bool exact_scale = false;
#endif
  /// a 2^n for integer-valued n, rounded once (AVX-512's scalef; only where exact_scale).
  static Reg scale(Reg a, Reg n) {
#if defined(__AVX512F__)
    if constexpr (std::is_same_v<T, float> && lanes == 16)
      return _mm512_maskz_scalef_ps(0xFFFF, a, n);
    if constexpr (std::is_same_v<T, double> && lanes == 8)
      return _mm512_maskz_scalef_pd(0xFF, a, n);
#endif
    return mul(a, pow2(n));
  }
  /// z > 0 ? a : b, lane by lane (b where z is NaN).
  static Reg where_positive(Reg z, Reg a, Reg b) {
    return Eigen::internal::pselect(Eigen::internal::pcmp_lt(zero(), z), a, b);
  }
};

}  // namespace dropnet::simd::baseline
