#pragma once
// Philox4x32-10 (Salmon et al. 2011), one block at a time and many blocks at once.
//
// philox_block(key, i) is the reference: block i of the stream under `key`, 4 words.
// philox_blocks(key, first, count, out) writes blocks [first, first + count) in block order,
// out[4 b + k] = word k of block first + b, bit-identical to philox_block. At simd_level()
// avx512 it computes 32 blocks per pass (8 at avx2), over 10x faster than the scalar loop,
// which is what keeps dropout masks cheap; the baseline level uses the scalar loop. The level is
// read once per call (simd/dispatch.hpp), and the vector forms are compiled on GCC/Clang x86
// through function target attributes. Integer arithmetic only: every level gives the same bits.

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "dispatch.hpp"

#if defined(DROPNET_SIMD_X86) && !defined(DROPNET_KERNELS_DECLARED)
#include <immintrin.h>
#endif

namespace dropnet::simd {

/// The 64-bit Philox key as two 32-bit words (the Generator's seed).
using PhiloxKey = std::array<std::uint32_t, 2>;

inline constexpr std::uint32_t philox_m0 = 0xD2511F53u;  ///< round multiplier, lane 0
inline constexpr std::uint32_t philox_m1 = 0xCD9E8D57u;  ///< round multiplier, lane 2
inline constexpr std::uint32_t philox_w0 = 0x9E3779B9u;  ///< key increment, word 0
inline constexpr std::uint32_t philox_w1 = 0xBB67AE85u;  ///< key increment, word 1

/// Block `index` (counter low and high words in lanes 0 and 1, lanes 2 and 3 zero).
inline std::array<std::uint32_t, 4> philox_block(PhiloxKey key, std::uint64_t index) {
  std::array<std::uint32_t, 4> c = {static_cast<std::uint32_t>(index),
                                    static_cast<std::uint32_t>(index >> 32), 0u, 0u};
  for (int round = 0; round < 10; ++round) {
    const std::uint64_t p0 = std::uint64_t{philox_m0} * c[0];
    const std::uint64_t p1 = std::uint64_t{philox_m1} * c[2];
    c = {static_cast<std::uint32_t>(p1 >> 32) ^ c[1] ^ key[0], static_cast<std::uint32_t>(p1),
         static_cast<std::uint32_t>(p0 >> 32) ^ c[3] ^ key[1], static_cast<std::uint32_t>(p0)};
    key[0] += philox_w0;
    key[1] += philox_w1;
  }
  return c;
}

namespace detail {

inline void philox_blocks_scalar(PhiloxKey key, std::uint64_t first, std::size_t count,
                                 std::uint32_t* out) {
  for (std::size_t b = 0; b < count; ++b) {
    const auto words = philox_block(key, first + b);
    for (std::size_t k = 0; k < 4; ++k) out[4 * b + k] = words[k];
  }
}

#if defined(DROPNET_SIMD_X86) && !defined(DROPNET_KERNELS_DECLARED)
// Masked forms with a zero pass-through: the plain intrinsics pass _mm512_undefined_epi32(),
// which GCC 12 reports as maybe-uninitialized (GCC bug 105593) and breaks -Werror builds.
// (Functions, not lambdas: a lambda does not inherit its enclosing function's target.)
DROPNET_TARGET_AVX512 inline __m512i mul_epu32(__m512i a, __m512i b) {
  return _mm512_maskz_mul_epu32(0xFF, a, b);
}
DROPNET_TARGET_AVX512 inline __m512i shr32(__m512i a) {
  return _mm512_maskz_srli_epi64(0xFF, a, 32);
}

// 8 x Chains blocks: 64-bit lane l of chain c holds block first + 8 c + l, each state word in
// the low half of its lane. _mm512_mul_epu32 reads only those low halves, so a product's low
// word is the product itself (whatever its high half holds) and its high word is one shift
// away: a round costs a chain two multiplies, two shifts and two three-way xors. (Keeping 16
// blocks in the 32-bit lanes instead needs the odd lanes shifted down and both halves blended
// back: 16 operations per 16 blocks against these 12, measured 1.3x slower.) Independent chains
// hide the multiplies' latency (a round depends on the previous one).
// Each 16 words, in block order, go to sink(offset, words): words [offset, offset + 16) of the
// output, counted from block `first`'s word 0.
template <int Chains, class Sink>
DROPNET_TARGET_AVX512 void philox8x(PhiloxKey key, std::uint64_t first, const Sink& sink) {
  const __m512i m0 = _mm512_set1_epi64(philox_m0), m1 = _mm512_set1_epi64(philox_m1);
  const __m512i w0 = _mm512_set1_epi32(static_cast<int>(philox_w0));
  const __m512i w1 = _mm512_set1_epi32(static_cast<int>(philox_w1));
  const __m512i lanes = _mm512_set_epi64(7, 6, 5, 4, 3, 2, 1, 0);
  __m512i c0[Chains], c1[Chains], c2[Chains], c3[Chains];
  for (int c = 0; c < Chains; ++c) {
    const std::uint64_t base = first + static_cast<std::uint64_t>(8 * c);
    // The counter's low word in each lane's low half, its high word shifted down.
    c0[c] = _mm512_add_epi64(_mm512_set1_epi64(static_cast<long long>(base)), lanes);
    c1[c] = shr32(c0[c]);
    c2[c] = _mm512_setzero_si512();
    c3[c] = _mm512_setzero_si512();
  }
  __m512i k0 = _mm512_set1_epi32(static_cast<int>(key[0]));
  __m512i k1 = _mm512_set1_epi32(static_cast<int>(key[1]));
  for (int round = 0; round < 10; ++round) {
    for (int c = 0; c < Chains; ++c) {
      const __m512i p0 = mul_epu32(c0[c], m0), p1 = mul_epu32(c2[c], m1);
      c0[c] = _mm512_ternarylogic_epi32(shr32(p1), c1[c], k0, 0x96);  // three-way xor
      c1[c] = p1;
      c2[c] = _mm512_ternarylogic_epi32(shr32(p0), c3[c], k1, 0x96);
      c3[c] = p0;
    }
    k0 = _mm512_add_epi32(k0, w0);
    k1 = _mm512_add_epi32(k1, w1);
  }
  // Words 0-1 and 2-3 of each block into one 64-bit lane each, then the lanes in block order.
  const __m512i first_half = _mm512_set_epi64(11, 3, 10, 2, 9, 1, 8, 0);
  const __m512i second_half = _mm512_set_epi64(15, 7, 14, 6, 13, 5, 12, 4);
  for (int c = 0; c < Chains; ++c) {
    const __m512i w01 = _mm512_mask_shuffle_epi32(c0[c], 0xAAAA, c1[c], _MM_PERM_CDAB);
    const __m512i w23 = _mm512_mask_shuffle_epi32(c2[c], 0xAAAA, c3[c], _MM_PERM_CDAB);
    sink(std::ptrdiff_t{32} * c, _mm512_permutex2var_epi64(w01, first_half, w23));
    sink(std::ptrdiff_t{32} * c + 16, _mm512_permutex2var_epi64(w01, second_half, w23));
  }
}

// philox8x's sinks (structs: a lambda would not inherit the target attribute).
// The words themselves.
struct StoreWords {
  std::uint32_t* out;
  DROPNET_TARGET_AVX512 void operator()(std::ptrdiff_t offset, __m512i words) const {
    _mm512_storeu_si512(out + offset, words);
  }
};

// out[offset + i] = words[i] <= last ? on : off, compared in the register the words are made in;
// times the factor x[offset + i] when Product (a dropout's output without its mask in memory).
template <class T, bool Product = false>
struct StoreThresholded {
  T* out;
  std::uint32_t last;
  T on, off;
  const T* x = nullptr;  // the factors, when Product
  DROPNET_TARGET_AVX512 void operator()(std::ptrdiff_t offset, __m512i words) const {
    const __mmask16 kept =
        _mm512_cmple_epu32_mask(words, _mm512_set1_epi32(static_cast<int>(last)));
    if constexpr (std::is_same_v<T, float>) {
      __m512 v = _mm512_mask_blend_ps(kept, _mm512_set1_ps(off), _mm512_set1_ps(on));
      if constexpr (Product) v = _mm512_mul_ps(v, _mm512_loadu_ps(x + offset));
      _mm512_storeu_ps(out + offset, v);
    } else {
      const __m512d yes = _mm512_set1_pd(on), no = _mm512_set1_pd(off);
      __m512d low = _mm512_mask_blend_pd(static_cast<__mmask8>(kept), no, yes);
      __m512d high = _mm512_mask_blend_pd(static_cast<__mmask8>(kept >> 8), no, yes);
      if constexpr (Product) {
        low = _mm512_mul_pd(low, _mm512_loadu_pd(x + offset));
        high = _mm512_mul_pd(high, _mm512_loadu_pd(x + offset + 8));
      }
      _mm512_storeu_pd(out + offset, low);
      _mm512_storeu_pd(out + offset + 8, high);
    }
  }
};

// Blocks [first, first + count) through philox8x, 32 a pass while they last, then 8: each pass's
// words go to sink_at(b), b its first block counted from `first`. Returns the blocks covered (a
// multiple of 8); the caller finishes the rest.
template <class SinkAt>
std::size_t philox8x_passes(PhiloxKey key, std::uint64_t first, std::size_t count,
                            const SinkAt& sink_at) {
  std::size_t b = 0;
  for (; b + 32 <= count; b += 32) philox8x<4>(key, first + b, sink_at(b));
  for (; b + 8 <= count; b += 8) philox8x<1>(key, first + b, sink_at(b));
  return b;
}

// 8 blocks in the 32-bit lanes of 256-bit vectors: the odd lanes are shifted down for the
// multiplies and the products' halves blended back.
DROPNET_TARGET_AVX2 inline void philox8(PhiloxKey key, std::uint64_t first, std::uint32_t* out) {
  alignas(32) std::uint32_t low[8], high[8];
  for (int l = 0; l < 8; ++l) {
    const std::uint64_t index = first + static_cast<std::uint64_t>(l);
    low[l] = static_cast<std::uint32_t>(index);
    high[l] = static_cast<std::uint32_t>(index >> 32);
  }
  __m256i c0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(low));
  __m256i c1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(high));
  __m256i c2 = _mm256_setzero_si256(), c3 = _mm256_setzero_si256();
  const __m256i m0 = _mm256_set1_epi32(static_cast<int>(philox_m0));
  const __m256i m1 = _mm256_set1_epi32(static_cast<int>(philox_m1));
  const __m256i w0 = _mm256_set1_epi32(static_cast<int>(philox_w0));
  const __m256i w1 = _mm256_set1_epi32(static_cast<int>(philox_w1));
  __m256i k0 = _mm256_set1_epi32(static_cast<int>(key[0]));
  __m256i k1 = _mm256_set1_epi32(static_cast<int>(key[1]));
  for (int round = 0; round < 10; ++round) {
    const __m256i even0 = _mm256_mul_epu32(c0, m0);
    const __m256i odd0 = _mm256_mul_epu32(_mm256_srli_epi64(c0, 32), m0);
    const __m256i even1 = _mm256_mul_epu32(c2, m1);
    const __m256i odd1 = _mm256_mul_epu32(_mm256_srli_epi64(c2, 32), m1);
    const __m256i hi0 = _mm256_blend_epi32(_mm256_srli_epi64(even0, 32), odd0, 0xAA);
    const __m256i lo0 = _mm256_blend_epi32(even0, _mm256_slli_epi64(odd0, 32), 0xAA);
    const __m256i hi1 = _mm256_blend_epi32(_mm256_srli_epi64(even1, 32), odd1, 0xAA);
    const __m256i lo1 = _mm256_blend_epi32(even1, _mm256_slli_epi64(odd1, 32), 0xAA);
    c0 = _mm256_xor_si256(_mm256_xor_si256(hi1, c1), k0);
    c1 = lo1;
    c2 = _mm256_xor_si256(_mm256_xor_si256(hi0, c3), k1);
    c3 = lo0;
    k0 = _mm256_add_epi32(k0, w0);
    k1 = _mm256_add_epi32(k1, w1);
  }
  const __m256i t0 = _mm256_unpacklo_epi32(c0, c1), t1 = _mm256_unpackhi_epi32(c0, c1);
  const __m256i t2 = _mm256_unpacklo_epi32(c2, c3), t3 = _mm256_unpackhi_epi32(c2, c3);
  const __m256i u[4] = {_mm256_unpacklo_epi64(t0, t2), _mm256_unpackhi_epi64(t0, t2),
                        _mm256_unpacklo_epi64(t1, t3), _mm256_unpackhi_epi64(t1, t3)};
  alignas(32) std::uint32_t lanes[4][8];
  for (int j = 0; j < 4; ++j) _mm256_store_si256(reinterpret_cast<__m256i*>(lanes[j]), u[j]);
  for (int q = 0; q < 2; ++q)
    for (int j = 0; j < 4; ++j)
      for (int k = 0; k < 4; ++k) out[4 * (4 * q + j) + k] = lanes[j][4 * q + k];
}
#endif

}  // namespace detail

/// Blocks [first, first + count) under `key`, block-major: out[4 b + k] = word k of block
/// first + b. Needs room for 4 * count words. Word is std::uint32_t (a template, as every
/// kernel entry point is: see DROPNET_KERNELS_DECLARED in simd/dispatch.hpp).
template <class Word>
void philox_blocks(PhiloxKey key, std::uint64_t first, std::size_t count, Word* out)
#if defined(DROPNET_KERNELS_DECLARED)
    ;
#else
{
  static_assert(std::is_same_v<Word, std::uint32_t>, "Philox words are std::uint32_t");
  std::size_t b = 0;
#if defined(DROPNET_SIMD_X86)
  switch (simd_level()) {
    case SimdLevel::avx512:
      b = detail::philox8x_passes(key, first, count, [out](std::size_t block) {
        return detail::StoreWords{out + 4 * block};
      });
      break;
    case SimdLevel::avx2:
      for (; b + 8 <= count; b += 8) detail::philox8(key, first + b, out + 4 * b);
      break;
    default:
      break;
  }
#endif
  detail::philox_blocks_scalar(key, first + b, count - b, out + 4 * b);
}
#endif  // DROPNET_KERNELS_DECLARED

/// Words [0, n) from block `first` on (word i is word i % 4 of block first + i / 4), each
/// compared with a threshold: out[i] = word i <= last ? on : off (a Bernoulli mask; see
/// layers/bernoulli_mask.hpp), or, when `x` is not null, that value times x[i] (a dropout's
/// output, its mask never stored; the same single rounding as multiplying by the stored mask).
/// T is float or double. At simd_level() avx512 the words never leave the registers they are
/// computed in; elsewhere they go through a small stack buffer.
template <class T>
void philox_thresholded(PhiloxKey key, std::uint64_t first, std::ptrdiff_t n, std::uint32_t last,
                        T on, T off, T* out, const T* x = nullptr)
#if defined(DROPNET_KERNELS_DECLARED)
    ;
#else
{
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "float or double");
  std::ptrdiff_t i = 0;  // a multiple of 4 until the last piece
#if defined(DROPNET_SIMD_X86)
  if (simd_level() == SimdLevel::avx512) {
    const auto passes = [&](auto sink) {
      return detail::philox8x_passes(key, first, std::size_t(n / 4), [&](std::size_t block) {
        auto at = sink;
        at.out += 4 * block;
        if (at.x != nullptr) at.x += 4 * block;
        return at;
      });
    };
    const std::size_t blocks =
        x != nullptr ? passes(detail::StoreThresholded<T, true>{out, last, on, off, x})
                     : passes(detail::StoreThresholded<T>{out, last, on, off});
    i = std::ptrdiff_t(4 * blocks);
  }
#endif
  constexpr std::ptrdiff_t buffer = 256;  // words
  std::uint32_t words[buffer];
  for (; i < n; i += buffer) {
    const std::ptrdiff_t count = std::min(buffer, n - i);
    philox_blocks(key, first + std::uint64_t(i / 4), std::size_t(count + 3) / 4, words);
    // Branch-free and free of aliasing: the compiler vectorizes it (a compare and a blend).
    if (x == nullptr) {
      for (std::ptrdiff_t k = 0; k < count; ++k) out[i + k] = words[k] <= last ? on : off;
    } else {
      for (std::ptrdiff_t k = 0; k < count; ++k)
        out[i + k] = (words[k] <= last ? on : off) * x[i + k];
    }
  }
}
#endif  // DROPNET_KERNELS_DECLARED

}  // namespace dropnet::simd
