#pragma once
// Philox4x32-10 (Salmon et al. 2011), one block at a time and many blocks at once.
//
// philox_block(key, i) is the reference: block i of the stream under `key`, 4 words.
// philox_blocks(key, first, count, out) writes blocks [first, first + count) in block order,
// out[4 b + k] = word k of block first + b, bit-identical to philox_block. At simd_level()
// avx512 it computes 16 blocks per pass (8 at avx2), about 10x faster than the scalar loop,
// which is what keeps dropout masks cheap; the baseline level uses the scalar loop. The level is
// read once per call (simd/dispatch.hpp), and the vector forms are compiled in every translation
// unit on GCC/Clang x86 through function target attributes. Integer arithmetic only: every
// level gives the same bits.

#include <array>
#include <cstddef>
#include <cstdint>

#include "dispatch.hpp"

#if defined(DROPNET_SIMD_X86)
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

#if defined(DROPNET_SIMD_X86)
// Masked forms with a zero pass-through: the plain intrinsics pass _mm512_undefined_epi32(),
// which GCC 12 reports as maybe-uninitialized (GCC bug 105593) and breaks -Werror builds.
// (Functions, not lambdas: a lambda does not inherit its enclosing function's target.)
DROPNET_TARGET_AVX512 inline __m512i mul_epu32(__m512i a, __m512i b) {
  return _mm512_maskz_mul_epu32(0xFF, a, b);
}
DROPNET_TARGET_AVX512 inline __m512i shr32(__m512i a) {
  return _mm512_maskz_srli_epi64(0xFF, a, 32);
}
DROPNET_TARGET_AVX512 inline __m512i shl32(__m512i a) {
  return _mm512_maskz_slli_epi64(0xFF, a, 32);
}

// 16 x Chains blocks: vector lane l of chain c holds the state of block first + 16 c + l. The
// 32x32->64-bit products come from _mm512_mul_epu32 on the even lanes and on the odd lanes
// shifted down, then are blended back into high and low halves. Independent chains hide the
// multiplies' latency (a round depends on the previous one).
template <int Chains>
DROPNET_TARGET_AVX512 void philox16x(PhiloxKey key, std::uint64_t first, std::uint32_t* out) {
  constexpr __mmask16 odd = 0xAAAA;
  const __m512i m0 = _mm512_set1_epi32(static_cast<int>(philox_m0));
  const __m512i m1 = _mm512_set1_epi32(static_cast<int>(philox_m1));
  const __m512i w0 = _mm512_set1_epi32(static_cast<int>(philox_w0));
  const __m512i w1 = _mm512_set1_epi32(static_cast<int>(philox_w1));
  __m512i c0[Chains], c1[Chains], c2[Chains], c3[Chains];
  for (int c = 0; c < Chains; ++c) {
    alignas(64) std::uint32_t low[16], high[16];
    for (int l = 0; l < 16; ++l) {
      const std::uint64_t index = first + static_cast<std::uint64_t>(16 * c + l);
      low[l] = static_cast<std::uint32_t>(index);
      high[l] = static_cast<std::uint32_t>(index >> 32);
    }
    c0[c] = _mm512_load_si512(low);
    c1[c] = _mm512_load_si512(high);
    c2[c] = _mm512_setzero_si512();
    c3[c] = _mm512_setzero_si512();
  }
  __m512i k0 = _mm512_set1_epi32(static_cast<int>(key[0]));
  __m512i k1 = _mm512_set1_epi32(static_cast<int>(key[1]));
  for (int round = 0; round < 10; ++round) {
    for (int c = 0; c < Chains; ++c) {
      const __m512i even0 = mul_epu32(c0[c], m0), odd0 = mul_epu32(shr32(c0[c]), m0);
      const __m512i even1 = mul_epu32(c2[c], m1), odd1 = mul_epu32(shr32(c2[c]), m1);
      const __m512i hi0 = _mm512_mask_blend_epi32(odd, shr32(even0), odd0);
      const __m512i lo0 = _mm512_mask_blend_epi32(odd, even0, shl32(odd0));
      const __m512i hi1 = _mm512_mask_blend_epi32(odd, shr32(even1), odd1);
      const __m512i lo1 = _mm512_mask_blend_epi32(odd, even1, shl32(odd1));
      c0[c] = _mm512_ternarylogic_epi32(hi1, c1[c], k0, 0x96);  // three-way xor
      c1[c] = lo1;
      c2[c] = _mm512_ternarylogic_epi32(hi0, c3[c], k1, 0x96);
      c3[c] = lo0;
    }
    k0 = _mm512_add_epi32(k0, w0);
    k1 = _mm512_add_epi32(k1, w1);
  }
  for (int c = 0; c < Chains; ++c) {
    // 4x4 transposes within each 128-bit lane: u_j's lane q holds block 4q + j, words 0..3.
    const __m512i t0 = _mm512_maskz_unpacklo_epi32(0xFFFF, c0[c], c1[c]);
    const __m512i t1 = _mm512_maskz_unpackhi_epi32(0xFFFF, c0[c], c1[c]);
    const __m512i t2 = _mm512_maskz_unpacklo_epi32(0xFFFF, c2[c], c3[c]);
    const __m512i t3 = _mm512_maskz_unpackhi_epi32(0xFFFF, c2[c], c3[c]);
    const __m512i u[4] = {
        _mm512_maskz_unpacklo_epi64(0xFF, t0, t2), _mm512_maskz_unpackhi_epi64(0xFF, t0, t2),
        _mm512_maskz_unpacklo_epi64(0xFF, t1, t3), _mm512_maskz_unpackhi_epi64(0xFF, t1, t3)};
    // Sixteen 16-byte copies put the blocks in order (through memory: GCC 12's
    // _mm512_extracti32x4_epi32 trips the same bug 105593).
    std::uint32_t* chain_out = out + std::ptrdiff_t{64} * c;
    alignas(64) std::uint32_t lane_words[16];
    for (std::ptrdiff_t j = 0; j < 4; ++j) {
      _mm512_store_si512(lane_words, u[j]);
      for (std::ptrdiff_t q = 0; q < 4; ++q)
        _mm_storeu_si128(reinterpret_cast<__m128i*>(chain_out + 4 * (4 * q + j)),
                         _mm_load_si128(reinterpret_cast<const __m128i*>(lane_words + 4 * q)));
    }
  }
}

// 8 blocks, as philox16x above with 256-bit vectors.
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
/// first + b. Needs room for 4 * count words.
inline void philox_blocks(PhiloxKey key, std::uint64_t first, std::size_t count,
                          std::uint32_t* out) {
  std::size_t b = 0;
#if defined(DROPNET_SIMD_X86)
  switch (simd_level()) {
    case SimdLevel::avx512:
      for (; b + 64 <= count; b += 64) detail::philox16x<4>(key, first + b, out + 4 * b);
      for (; b + 16 <= count; b += 16) detail::philox16x<1>(key, first + b, out + 4 * b);
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

}  // namespace dropnet::simd
