#pragma once
// Generator: the seeded random number generator the user owns.
//
// dropnet has no hidden global RNG. Every random draw (weight initialization, shuffling,
// dropout masks, Gaussian noise) comes from a Generator passed in by the caller, so a run is
// reproducible from its seed alone.
//
// The engine is Philox4x32-10 (Salmon et al. 2011), a counter-based generator: block `i` of the
// stream is a pure function of (seed, i). A layer that needs n random words reserves a range of
// blocks and may fill it in any order and from any number of threads with the same result, so
// masks never depend on the thread count.

#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>

#include "../simd/philox.hpp"
#include "error.hpp"

namespace dropnet {

/// The seeded Philox4x32-10 generator the caller owns: every random draw in dropnet comes from one,
/// so a run is reproducible from its seed (see the file comment above). Not thread-safe; the
/// block() reads are, as they do not change the state.
class Generator {
 public:
  /// 128 random bits: one Philox block of four 32-bit words.
  using Block = std::array<std::uint32_t, 4>;

  /// Starts the stream of `seed` at block 0.
  explicit Generator(std::uint64_t seed = 0) { reseed(seed); }

  /// Restarts the stream: same seed, same sequence.
  void reseed(std::uint64_t seed) {
    seed_ = seed;
    key_ = {static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32)};
    next_block_ = 0;
    buffered_ = 0;
  }

  /// The seed the stream started from (the last reseed()).
  std::uint64_t seed() const { return seed_; }

  /// Index of the next unused block; with seed() it is the whole state of the generator.
  std::uint64_t position() const { return next_block_; }

  /// Block `index` of this generator's stream: 128 random bits, independent of any other call.
  Block block(std::uint64_t index) const { return philox(key_, index); }

  /// Reserves `count` consecutive blocks for the caller and returns the index of the first.
  /// The caller reads them with block(first + i) in any order.
  std::uint64_t reserve_blocks(std::uint64_t count) {
    const std::uint64_t first = next_block_;
    next_block_ += count;
    return first;
  }

  /// Fills `out[0..n)` with random 32-bit words drawn from freshly reserved blocks.
  void fill_u32(std::uint32_t* out, std::size_t n) {
    const std::size_t blocks = (n + 3) / 4;
    const std::uint64_t first = reserve_blocks(blocks);
    fill_blocks(first, n / 4, out);
    if (n % 4 != 0) {
      const Block last = block(first + blocks - 1);
      for (std::size_t k = 0; k < n % 4; ++k) out[4 * (n / 4) + k] = last[k];
    }
  }

  /// The next 32 random bits.
  std::uint32_t next_u32() {
    if (buffered_ == 0) {
      buffer_ = block(reserve_blocks(1));
      buffered_ = 4;
    }
    return buffer_[static_cast<std::size_t>(4 - buffered_--)];
  }

  /// The next 64 random bits (two next_u32() words, the first in the high half).
  std::uint64_t next_u64() {
    const std::uint64_t high = next_u32();
    return (high << 32) | next_u32();
  }

  /// Uniform in [0, 1) with 53 random bits.
  double uniform() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }

  /// Uniform in [low, high).
  template <class T>
  T uniform(T low, T high) {
    return static_cast<T>(low + (high - low) * uniform());
  }

  /// Normal N(mean, stddev^2) by the Box-Muller transform (one value per call; the pair's
  /// second value is not kept, so the state stays just (seed, position)).
  template <class T>
  T normal(T mean = T(0), T stddev = T(1)) {
    constexpr double two_pi = 6.283185307179586476925286766559;
    const double u1 = 1.0 - uniform();  // in (0, 1], so log(u1) is finite
    const double u2 = uniform();
    return static_cast<T>(mean + stddev * std::sqrt(-2.0 * std::log(u1)) * std::cos(two_pi * u2));
  }

  /// Uniform integer in [0, n), unbiased (Lemire's multiply-and-reject). Requires n > 0.
  std::uint64_t below(std::uint64_t n) {
    if (n == 0) throw InvalidArgument("Generator::below: n must be > 0, got 0");
    if (n <= std::numeric_limits<std::uint32_t>::max()) {
      const auto bound = static_cast<std::uint32_t>(n);
      std::uint64_t product = std::uint64_t{next_u32()} * bound;
      auto low = static_cast<std::uint32_t>(product);
      if (low < bound) {
        const std::uint32_t threshold = static_cast<std::uint32_t>(-bound) % bound;
        while (low < threshold) {
          product = std::uint64_t{next_u32()} * bound;
          low = static_cast<std::uint32_t>(product);
        }
      }
      return product >> 32;
    }
    // Rare case of huge n: rejection on 64-bit draws.
    const std::uint64_t limit = std::numeric_limits<std::uint64_t>::max() -
                                std::numeric_limits<std::uint64_t>::max() % n;
    std::uint64_t x = next_u64();
    while (x >= limit) x = next_u64();
    return x % n;
  }

  /// Philox4x32-10 of counter `index` (low and high words in lanes 0 and 1) under `key`.
  static Block philox(std::array<std::uint32_t, 2> key, std::uint64_t index) {
    return simd::philox_block(key, index);
  }

  /// Blocks [first, first + count) into out[0 .. 4 count), block-major (out[4 b + k] is word k
  /// of block first + b): what a loop over block() gives, vectorized.
  void fill_blocks(std::uint64_t first, std::size_t count, std::uint32_t* out) const {
    simd::philox_blocks(key_, first, count, out);
  }

  /// out[i] = (word i % 4 of block first + i / 4) <= last ? on : off for i < n: the words of
  /// fill_blocks compared with a threshold without a trip through memory (Bernoulli masks,
  /// layers/bernoulli_mask.hpp); times x[i] when x is not null. T is float or double.
  template <class T>
  void fill_thresholded(std::uint64_t first, std::ptrdiff_t n, std::uint32_t last, T on, T off,
                        T* out, const T* x = nullptr) const {
    simd::philox_thresholded(key_, first, n, last, on, off, out, x);
  }

 private:
  std::uint64_t seed_ = 0;
  std::array<std::uint32_t, 2> key_{};
  std::uint64_t next_block_ = 0;
  Block buffer_{};
  int buffered_ = 0;
};

/// Shuffles `first[0..n)` in place (Fisher-Yates) with draws from `gen`; unlike std::shuffle,
/// the result is the same with every standard library.
template <class It>
void shuffle(It first, std::size_t n, Generator& gen) {
  for (std::size_t i = n; i > 1; --i) {
    const auto j = static_cast<std::size_t>(gen.below(i));
    std::swap(first[i - 1], first[j]);
  }
}

}  // namespace dropnet
