#pragma once
// ParameterView: what an optimizer sees of a trainable tensor.
//
// A view is a flat window (data pointer and size) onto a layer's value and gradient, plus a
// name and the matrix shape for messages and summaries. Optimizers iterate over a list of views
// and keep their own per-parameter state by position in that list, never by pointer, so every
// optimizer works with every layer.

#include <cstddef>
#include <string>
#include <vector>

#include "types.hpp"

namespace dropnet {

/// What kind of tensor a view shows; regularizers and weight decay can treat them differently.
enum class ParameterRole { weight, bias, scale, shift, buffer };

/// A trainable tensor as an optimizer sees it: a flat window onto a layer's value and gradient,
/// plus its name, shape and role. Does not own the memory; valid while the layer lives.
template <class T>
struct ParameterView {
  std::string name;     ///< the layer's own name ("weight"); Sequential prefixes "<layer>.<kind>."
  T* value = nullptr;   ///< rows*cols values, column-major
  T* grad = nullptr;    ///< same size as value; null for non-trainable buffers
  /// Rows of the matrix shape (for messages and summaries).
  Index rows = 0;
  /// Columns of the matrix shape (1 for a vector).
  Index cols = 0;
  /// What kind of tensor this is (weight decay skips biases, for instance).
  ParameterRole role = ParameterRole::weight;
  Index layer = -1;     ///< index of the owning layer in its Sequential; -1 outside a model

  /// Number of values, rows * cols.
  Index size() const { return rows * cols; }
  /// The values as a flat vector of size().
  Eigen::Map<Vector<T>> flat_value() const { return {value, size()}; }
  /// The gradient as a flat vector of size(); grad must not be null.
  Eigen::Map<Vector<T>> flat_grad() const { return {grad, size()}; }
  /// The values as a rows x cols matrix.
  Eigen::Map<Matrix<T>> matrix_value() const { return {value, rows, cols}; }
  /// The gradient as a rows x cols matrix; grad must not be null.
  Eigen::Map<Matrix<T>> matrix_grad() const { return {grad, rows, cols}; }
};

/// A view of a matrix (or vector) member together with its gradient.
template <class T, class Value>
ParameterView<T> view_of(std::string name, Value& value, Value* grad, ParameterRole role) {
  return {std::move(name), value.data(), grad ? grad->data() : nullptr, value.rows(), value.cols(),
          role};
}

/// The parameters of a layer or model, in a fixed order that optimizers key their state by.
template <class T>
using ParameterList = std::vector<ParameterView<T>>;

/// A run of one parameter's elements: [offset, offset + length) of parameter `parameter`.
struct ParameterSegment {
  std::size_t parameter;  ///< index into the parameter list
  Index offset;           ///< first element within the parameter
  Index length;           ///< number of elements
};

/// The elements [begin, end) of `params` laid end to end in order, as runs of the parameters
/// the range cuts across (empty runs left out): how a sharded data-parallel step splits them.
template <class T>
std::vector<ParameterSegment> segments_of(const ParameterList<T>& params, Index begin, Index end) {
  std::vector<ParameterSegment> segments;
  Index first = 0;  // of parameter i, in the flat order
  for (std::size_t i = 0; i < params.size(); ++i) {
    const Index from = begin > first ? begin : first;
    const Index to = end < first + params[i].size() ? end : first + params[i].size();
    if (from < to) segments.push_back({i, from - first, to - from});
    first += params[i].size();
  }
  return segments;
}

}  // namespace dropnet
