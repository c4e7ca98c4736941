#pragma once
// AlphaDropout<T>: dropout for self-normalizing (SELU) networks (Klambauer et al. 2017;
// PyTorch nn.AlphaDropout).
//
// A dropped unit is set to SELU's negative saturation alpha' = -lambda * alpha instead of 0, and
// an affine map restores mean 0 and variance 1 for inputs of mean 0 and variance 1:
//   alpha' = -1.7580993408473766
//   a = ((1 - p) (1 + p alpha'^2))^(-1/2),   b = -a alpha' p
//   train / mc_sample:  m ~ Bernoulli(1 - p),  y = a (x m + alpha' (1 - m)) + b,  dx = a m dy
//   eval:               y = x (the input itself), dx = dy
// Use after Dense<T, SELU> layers initialized with Init::lecun_normal (their default).
// Shapes: any features x batch. Throws InvalidArgument naming the layer unless 0 <= p < 1.

#include <memory>

#include "dropout_base.hpp"

namespace dropnet {

/// Dropout for SELU networks (Klambauer et al. 2017, PyTorch nn.AlphaDropout): dropped units take
/// SELU's saturation value and an affine map keeps mean 0 and variance 1 (formulas in the file
/// comment above). Any features x batch.
template <class T>
class AlphaDropout : public DropoutBase<T> {
 public:
  static constexpr double alpha_prime = -1.7580993408473766;  ///< -SELU lambda * alpha

  /// Drops with probability p; throws InvalidArgument naming the layer unless 0 <= p < 1.
  explicit AlphaDropout(double p)
      : DropoutBase<T>("AlphaDropout", p),
        keep_("AlphaDropout", p),
        a_(1.0 / std::sqrt((1.0 - p) * (1.0 + p * alpha_prime * alpha_prime))),
        b_(-a_ * alpha_prime * p) {}

  /// The layer `c` describes (field p); allocates nothing at construction. Throws FormatError.
  static LayerPtr<T> from_config(const LayerConfig& c, ElementBudget&) {
    return std::make_unique<AlphaDropout>(c.number("p"));
  }

  /// Scale a of the affine correction, ((1 - p)(1 + p alpha'^2))^(-1/2).
  double a() const { return a_; }
  /// Shift b of the affine correction, -a alpha' p.
  double b() const { return b_; }

  /// The last mask, already scaled: entries are 0 or a.
  const Matrix<T>& mask() const { return mask_; }

 private:
  // With s = a m:  y = s (x - alpha') + (a alpha' + b), one fused pass; dx = s dy.
  void sample_forward(const Matrix<T>& x, Generator& gen, Matrix<T>& y) override {
    mask_.resize(x.rows(), x.cols());
    draw_bernoulli(gen, keep_, static_cast<T>(a_), T(0), mask_.data(), mask_.size());
    y.resize(x.rows(), x.cols());
    y.array() = mask_.array() * (x.array() - T(alpha_prime)) + T(a_ * alpha_prime + b_);
  }

  void sample_backward(const Matrix<T>& dy, Matrix<T>& dx) const override {
    dx.resize(dy.rows(), dy.cols());
    dx.array() = dy.array() * mask_.array();
  }

  KeepThreshold keep_;
  double a_, b_;
  Matrix<T> mask_;
};

}  // namespace dropnet
