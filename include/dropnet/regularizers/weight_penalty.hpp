#pragma once
// L1 / L2 weight penalties, Keras kernel_regularizer style.
//
//   penalty(W)  = l1 * sum |W_ij| + l2 * sum W_ij^2
//   gradient    = l1 * sign(W)    + 2 l2 W          (added to dW by the layer's backward)
// The penalty is added to the reported loss. Biases are exempt. This is not the optimizers'
// weight_decay: SGD's coupled decay adds wd * W to the gradient (= l2 with l2 = wd / 2) without
// reporting a loss; AdamW's decoupled decay shrinks the weights outside the adaptive step.

#include <cmath>

#include "../core/error.hpp"
#include "../core/types.hpp"

namespace dropnet {

/// L1 / L2 penalty on a weight matrix, Keras kernel_regularizer style (formulas in the file comment
/// above); the default-constructed penalty is off.
template <class T>
struct WeightPenalty {
  /// L1 strength, >= 0.
  T l1 = T(0);
  /// L2 strength, >= 0.
  T l2 = T(0);

  WeightPenalty() = default;
  /// Penalty l1 sum |W| + l2 sum W^2; throws InvalidArgument unless both are finite and >= 0.
  WeightPenalty(T l1_strength, T l2_strength) : l1(l1_strength), l2(l2_strength) {
    detail::require(std::isfinite(static_cast<double>(l1)) && l1 >= T(0), "WeightPenalty",
                    "l1 must be finite and >= 0, got ", l1);
    detail::require(std::isfinite(static_cast<double>(l2)) && l2 >= T(0), "WeightPenalty",
                    "l2 must be finite and >= 0, got ", l2);
  }

  /// True if either strength is nonzero.
  bool active() const { return l1 != T(0) || l2 != T(0); }

  /// l1 sum |w_ij| + l2 sum w_ij^2.
  T value(const Matrix<T>& w) const {
    T total = T(0);
    if (l1 != T(0)) total += l1 * w.cwiseAbs().sum();
    if (l2 != T(0)) total += l2 * w.squaredNorm();
    return total;
  }

  /// dW += d penalty / dW.
  void add_gradient(const Matrix<T>& w, Matrix<T>& dw) const {
    if (l1 != T(0)) dw.array() += l1 * w.array().sign();
    if (l2 != T(0)) dw.array() += (T(2) * l2) * w.array();
  }
};

}  // namespace dropnet
