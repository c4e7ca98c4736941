#pragma once
// Helpers that cut datasets into batches: a contiguous slice or a gather by index.

#include <algorithm>
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

/// Batches of `batch_size` over `samples` (the last may be smaller); no overflow near the
/// largest Index.
inline Index batch_count(Index samples, Index batch_size) {
  return samples / batch_size + (samples % batch_size != 0 ? 1 : 0);
}

/// The size of the smallest of those batches.
inline Index smallest_batch(Index samples, Index batch_size) {
  const Index tail = samples % batch_size;
  return tail != 0 ? tail : std::min(samples, batch_size);
}

/// Calls visit(batch, first, count) for consecutive slices of `count` <= batch_size columns
/// of x, each copied into one buffer that lives until the end: the one batching loop of
/// predict, evaluate and mc_predict.
template <class T, class Visit>
void for_each_batch(const Matrix<T>& x, Index batch_size, Visit&& visit) {
  Matrix<T> batch;
  for (Index first = 0; first < x.cols(); first += batch_size) {
    const Index count = std::min(batch_size, x.cols() - first);
    batch = x.middleCols(first, count);
    visit(static_cast<const Matrix<T>&>(batch), first, count);
  }
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
