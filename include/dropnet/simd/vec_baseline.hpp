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
  /// a > b ? a : b (b where either is NaN, as x86's max instruction does; Eigen's pmax
  /// orders its operands differently).
  static Reg max(Reg a, Reg b) {
    return Eigen::internal::pselect(Eigen::internal::pcmp_lt(b, a), a, b);
  }
  /// a < b ? a : b (b where either is NaN, as x86's min instruction does).
  static Reg min(Reg a, Reg b) {
    return Eigen::internal::pselect(Eigen::internal::pcmp_lt(a, b), a, b);
  }
  /// 2^n for integer-valued n within the normal exponents, exactly.
  static Reg pow2(Reg n) { return Eigen::internal::pldexp(set1(T(1)), n); }
  /// z > 0 ? a : b, lane by lane (b where z is NaN).
  static Reg where_positive(Reg z, Reg a, Reg b) {
    return Eigen::internal::pselect(Eigen::internal::pcmp_lt(zero(), z), a, b);
  }
};

}  // namespace dropnet::simd::baseline
