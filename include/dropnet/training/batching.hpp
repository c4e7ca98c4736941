#pragma once
// Helpers that cut datasets into batches: a contiguous slice or a gather by index.

#include <string>
#include <vector>

#include "../core/error.hpp"
#include "../core/finite.hpp"
#include "../core/types.hpp"

namespace dropnet::detail {

/// Number of samples in a target: columns of a matrix, entries of a label vector.
template <class T>
Index sample_count(const Matrix<T>& y) { return y.cols(); }
inline Index sample_count(const Labels& y) { return y.size(); }

template <class T>
void slice_into(const Matrix<T>& y, Index first, Index count, Matrix<T>& out) {
  out = y.middleCols(first, count);
}
inline void slice_into(const Labels& y, Index first, Index count, Labels& out) {
  out = y.segment(first, count);
}

template <class T>
void gather_into(const Matrix<T>& y, const Index* index, Index count, Matrix<T>& out) {
  out.resize(y.rows(), count);
  for (Index j = 0; j < count; ++j) out.col(j) = y.col(index[j]);
}
inline void gather_into(const Labels& y, const Index* index, Index count, Labels& out) {
  out.resize(count);
  for (Index j = 0; j < count; ++j) out(j) = y(index[j]);
}

template <class T, class Target>
void require_dataset(const std::string& where, const Matrix<T>& x, const Target& y) {
  require(x.cols() > 0, where, "empty dataset (0 samples)");
  require(sample_count(y) == x.cols(), where, "inputs have ", x.cols(), " samples but targets have ",
          sample_count(y));
  require(all_finite(x), where, "inputs contain NaN or Inf");
}

/// Labels must name one of the model's outputs (0 or 1 for a single-output model).
inline void require_labels_in_range(const std::string& where, const Labels& y, Index outputs) {
  const Index classes = outputs == 1 ? 2 : outputs;
  for (Index j = 0; j < y.size(); ++j)
    if (y(j) < 0 || y(j) >= classes)
      throw InvalidArgument(concat(where, ": label ", y(j), " of sample ", j, " is out of range [0, ",
                                   classes, ")"));
}
template <class T>
void require_labels_in_range(const std::string&, const Matrix<T>&, Index) {}

}  // namespace dropnet::detail
