#pragma once
// Normal noise drawn counter-based from a Generator (GaussianDropout, DropConnect's Gaussian
// inference).
//
//   out_i = mean + stddev * n_i,   n_i ~ N(0, 1)
// Entries 2k and 2k+1 come from Generator block `first + k` by the Box-Muller transform: words
// 0-1 and 2-3 make two 53-bit uniforms u1, u2, and n_2k = r cos(2 pi u2), n_2k+1 = r sin(2 pi u2)
// with r = sqrt(-2 log(1 - u1)). Like the Bernoulli masks, the result depends only on (seed,
// first), never on chunking or threads.

#include <cmath>
#include <cstdint>

#include "../core/generator.hpp"
#include "../core/types.hpp"

namespace dropnet {

/// Generator blocks needed for n normal draws (two per block).
inline std::uint64_t normal_blocks(Index n) { return static_cast<std::uint64_t>((n + 1) / 2); }

/// out[0..n) = mean + stddev * N(0, 1), from blocks [first, first + normal_blocks(n)) of `gen`.
template <class T>
void fill_normal(const Generator& gen, std::uint64_t first, T mean, T stddev, T* out, Index n) {
  constexpr double two_pi = 6.283185307179586476925286766559;
  auto uniform53 = [](std::uint32_t high, std::uint32_t low) {
    return static_cast<double>(((std::uint64_t{high} << 32) | low) >> 11) * 0x1.0p-53;
  };
  for (Index k = 0; 2 * k < n; ++k) {
    const Generator::Block w = gen.block(first + static_cast<std::uint64_t>(k));
    const double r = std::sqrt(-2.0 * std::log(1.0 - uniform53(w[0], w[1])));  // 1 - u1 in (0, 1]
    const double theta = two_pi * uniform53(w[2], w[3]);
    out[2 * k] = mean + stddev * static_cast<T>(r * std::cos(theta));
    if (2 * k + 1 < n) out[2 * k + 1] = mean + stddev * static_cast<T>(r * std::sin(theta));
  }
}

/// Reserves the blocks for n normal draws from `gen` and fills `out`; returns the first block.
template <class T>
std::uint64_t draw_normal(Generator& gen, T mean, T stddev, T* out, Index n) {
  const std::uint64_t first = gen.reserve_blocks(normal_blocks(n));
  fill_normal(gen, first, mean, stddev, out, n);
  return first;
}

}  // namespace dropnet
