#pragma once
// ParameterRef<T, Plain>: what a layer's non-const parameter accessor (Dense::weight(),
// BatchNorm::gamma(), ...) returns: a fixed-size window onto the layer's own tensor.
//
// Optimizers keep pointers into a layer's tensors (ParameterView), so a tensor's buffer must
// never move. A ParameterRef reads and writes in place (it is an Eigen::Map: element access,
// setConstant, row(i) *= c, any read-only expression), and assigning to it copies the values
// into the existing buffer:
//   dense.weight() = w;          copies w in place; the optimizer still sees the same memory
//   dense.weight()(1, 2) = 0.5;  one element
// Throws InvalidArgument("<layer name>: <tensor> has shape RxC, expected RxC") when the assigned
// value's shape is not the tensor's (the tensor is then unchanged).

#include <string>

#include "../core/error.hpp"
#include "../core/types.hpp"
#include "layer.hpp"

namespace dropnet {

/// A shape-checked, in-place window onto a layer's tensor (see the file comment).
template <class T, class Plain>
class ParameterRef : public Eigen::Map<Plain> {
 public:
  /// A window onto `value`, named `what` ("weight") of `owner` in errors.
  ParameterRef(Plain& value, const Layer<T>& owner, const char* what)
      : Eigen::Map<Plain>(value.data(), value.rows(), value.cols()), owner_(owner), what_(what) {}
  /// Another window onto the same tensor.
  ParameterRef(const ParameterRef&) = default;

  /// Copies `value` into the tensor; throws InvalidArgument naming the layer on a shape mismatch.
  template <class Expression>
  ParameterRef& operator=(const Eigen::DenseBase<Expression>& value) {
    detail::require_shape(owner_.name(), what_, value.rows(), value.cols(), this->rows(),
                          this->cols());
    Eigen::Map<Plain>::operator=(value.derived());
    return *this;
  }
  /// Copies the values another window shows (not the window itself).
  ParameterRef& operator=(const ParameterRef& other) {
    if (this == &other) return *this;
    return *this = static_cast<const Eigen::DenseBase<Eigen::Map<Plain>>&>(other);
  }

 private:
  const Layer<T>& owner_;
  const char* what_;
};

}  // namespace dropnet
