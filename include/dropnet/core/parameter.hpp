#pragma once
// ParameterView: what an optimizer sees of a trainable tensor.
//
// A view is a flat window (data pointer and size) onto a layer's value and gradient, plus a
// name and the matrix shape for messages and summaries. Optimizers iterate over a list of views
// and keep their own per-parameter state by position in that list, never by pointer, so every
// optimizer works with every layer.

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

}  // namespace dropnet
