#pragma once
// Bernoulli masks drawn counter-based from a Generator: the one mask kernel every dropout uses.
//
//   keep_i = word_i < threshold,   threshold = round((1 - p) * 2^32),   out_i = keep_i ? on : off
// word_i is 32-bit word i%4 of Generator block `first + i/4`. Because block k is a pure function
// of (seed, k), the mask does not depend on how the range is split (chunks, threads) and a
// layer can regenerate a mask later from the first block index alone.
//
// Quantization: the realized keep probability is threshold / 2^32, which differs from 1 - p by
// at most 2^-33 (so p is effectively rounded to a multiple of 2^-32). A p so close to 1 that the
// threshold rounds to 0 would drop everything and is rejected.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>

#include "../core/error.hpp"
#include "../core/generator.hpp"
#include "../core/parallel.hpp"
#include "../core/types.hpp"
#include "../simd/elementwise.hpp"

namespace dropnet {

namespace detail {

/// Throws InvalidArgument("<layer>: ...") unless 0 <= p < 1 and p is finite. Returns p.
inline double require_drop_rate(const std::string& layer, double p) {
  require(std::isfinite(p) && p >= 0.0 && p < 1.0, layer,
          "drop probability p must be finite and in [0, 1), got p=", p,
          p == 1.0 ? " (p=1 would drop every unit; the 1/(1-p) scale is undefined)" : "");
  return p;
}

}  // namespace detail

/// The comparison threshold of a keep probability of 1 - p, at 2^-32 resolution.
class KeepThreshold {
 public:
  /// Threshold for a keep probability of 1 - p, with `layer` naming errors; throws
  /// InvalidArgument unless 0 <= p < 1 and the keep probability does not round to 0.
  KeepThreshold(const std::string& layer, double p) {
    detail::require_drop_rate(layer, p);
    const double scaled = std::round((1.0 - p) * 4294967296.0);  // in [0, 2^32]
    detail::require(scaled >= 1.0, layer, "p=", p,
                    " is within 2^-33 of 1: the keep probability rounds to 0");
    // keep iff word < threshold  <=>  word <= threshold - 1, which fits in 32 bits even at p = 0.
    last_kept_ = static_cast<std::uint32_t>(scaled - 1.0);
  }

  /// The keep probability actually realized: threshold / 2^32.
  double keep_probability() const { return (double(last_kept_) + 1.0) * 0x1.0p-32; }
  /// The largest kept word, threshold - 1: an entry is kept iff its word <= this.
  std::uint32_t last_kept_word() const { return last_kept_; }

 private:
  std::uint32_t last_kept_ = 0;
};

/// Generator blocks (4 words each) needed for n mask entries.
inline std::uint64_t mask_blocks(Index n) { return static_cast<std::uint64_t>((n + 3) / 4); }

/// out[0..n) = Bernoulli(keep) mask with values {on, off}, from blocks [first, first +
/// mask_blocks(n)) of `gen`. Allocates nothing; the random words are compared in the registers
/// they are computed in (Generator::fill_thresholded). With OpenMP and Eigen::nbThreads() > 1, a
/// large mask is drawn in one piece per thread: entry i always comes from block first + i / 4,
/// so the mask is the same whatever the thread count.
template <class T>
void fill_bernoulli(const Generator& gen, std::uint64_t first, const KeepThreshold& keep, T on,
                    T off, T* out, Index n) {
  constexpr Index align = 256;  // a multiple of 4: pieces start on block boundaries
  // Philox costs more per entry than the elementwise kernels: a thread pays from 8,192 entries.
  constexpr Index min_per_thread = 8192;
  detail::parallel_for(n, align, min_per_thread, [&](Index begin, Index end) {
    gen.fill_thresholded(first + static_cast<std::uint64_t>(begin / 4), end - begin,
                         keep.last_kept_word(), on, off, out + begin);
  });
}

/// Mask entries per thread from which fill_bernoulli_product splits its columns: W1's 120 x 64
/// hidden layer (3,840 entries a thread) splits, its 60 x 64 one does not.
inline constexpr Index bernoulli_product_min_per_thread = 2048;

/// y = x m for the rows x cols Bernoulli mask m of fill_bernoulli (values {on, off}, entry i from
/// block first + i / 4), m itself into `mask` unless it is null (then it never reaches memory:
/// a dropout layer whose backward pass does not need it). x, y and mask are contiguous and
/// column-major. With OpenMP and Eigen::nbThreads() > 1 the columns split between threads in
/// whole groups of 4, as Gemm splits a product's (core/gemm.hpp): a batch's columns stay in the
/// cache of the core that computed them, which the next layer's product runs them on, and each
/// thread multiplies its piece of the mask while it is in cache. y and the mask do not depend on
/// the split. Allocates nothing.
template <class T>
void fill_bernoulli_product(const Generator& gen, std::uint64_t first, const KeepThreshold& keep,
                            T on, T off, const T* x, T* y, T* mask, Index rows, Index cols) {
  const Index min_columns =
      (bernoulli_product_min_per_thread + rows - 1) / std::max<Index>(rows, 1);
  // Pieces of whole groups of 4 columns start on block boundaries (4 rows entries each).
  detail::parallel_for(cols, 4, min_columns, [&](Index begin, Index end) {
    const Index offset = begin * rows, n = (end - begin) * rows;
    const std::uint64_t block = first + static_cast<std::uint64_t>(offset / 4);
    if (mask == nullptr) {
      gen.fill_thresholded(block, n, keep.last_kept_word(), on, off, y + offset, x + offset);
      return;
    }
    gen.fill_thresholded(block, n, keep.last_kept_word(), on, off, mask + offset);
    simd::multiply(x + offset, mask + offset, y + offset, n);
  });
}

/// Reserves the blocks for an n-entry mask from `gen` and fills it; returns the first block
/// (keep it to regenerate the same mask with fill_bernoulli).
template <class T>
std::uint64_t draw_bernoulli(Generator& gen, const KeepThreshold& keep, T on, T off, T* out,
                             Index n) {
  const std::uint64_t first = gen.reserve_blocks(mask_blocks(n));
  fill_bernoulli(gen, first, keep, on, off, out, n);
  return first;
}

}  // namespace dropnet
