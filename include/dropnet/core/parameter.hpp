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

template <class T>
struct ParameterView {
  std::string name;     ///< the layer's own name ("weight"); Sequential prefixes "<layer>.<kind>."
  T* value = nullptr;   ///< rows*cols values, column-major
  T* grad = nullptr;    ///< same size as value; null for non-trainable buffers
  Index rows = 0;
  Index cols = 0;
  ParameterRole role = ParameterRole::weight;
  Index layer = -1;     ///< index of the owning layer in its Sequential; -1 outside a model

  Index size() const { return rows * cols; }
  Eigen::Map<Vector<T>> flat_value() const { return {value, size()}; }
  Eigen::Map<Vector<T>> flat_grad() const { return {grad, size()}; }
  Eigen::Map<Matrix<T>> matrix_value() const { return {value, rows, cols}; }
  Eigen::Map<Matrix<T>> matrix_grad() const { return {grad, rows, cols}; }
};

/// A view of a matrix (or vector) member together with its gradient.
template <class T, class Value>
ParameterView<T> view_of(std::string name, Value& value, Value* grad, ParameterRole role) {
  return {std::move(name), value.data(), grad ? grad->data() : nullptr, value.rows(), value.cols(),
          role};
}

template <class T>
using ParameterList = std::vector<ParameterView<T>>;

}  // namespace dropnet
