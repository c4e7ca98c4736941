#pragma once
// GaussianDropout<T>: multiplicative Gaussian noise (Srivastava et al. 2014, section 10;
// Keras GaussianDropout).
//
//   train / mc_sample:  e_i ~ N(1, p / (1 - p)),  y = x * e,  dx = dy * e
//   eval:               y = x (the input itself), dx = dy
// The noise has the mean and variance of Bernoulli inverted dropout's m / (1 - p), so p means
// the same as in Dropout(p). Shapes: any features x batch. Throws InvalidArgument naming the
// layer unless 0 <= p < 1.

#include <memory>
#include <cmath>

#include "dropout_base.hpp"
#include "gaussian_noise.hpp"

namespace dropnet {

/// Multiplicative Gaussian noise with Dropout(p)'s mean and variance (Keras GaussianDropout):
/// y = x e, e ~ N(1, p / (1 - p)) in train and mc_sample modes, y = x in eval. Any shape.
template <class T>
class GaussianDropout : public DropoutBase<T> {
 public:
  /// Noise of variance p / (1 - p); throws InvalidArgument naming the layer unless 0 <= p < 1.
  explicit GaussianDropout(double p)
      : DropoutBase<T>("GaussianDropout", p), stddev_(std::sqrt(p / (1.0 - p))) {}

  /// The layer `c` describes (field p); allocates nothing at construction. Throws FormatError.
  static LayerPtr<T> from_config(const LayerConfig& c, ElementBudget&) {
    return std::make_unique<GaussianDropout>(c.number("p"));
  }

  /// Standard deviation of the noise, sqrt(p / (1 - p)).
  double stddev() const { return stddev_; }

  /// The last noise e, same shape as the input.
  const Matrix<T>& noise() const { return noise_; }

 private:
  void sample_forward(const Matrix<T>& x, Generator& gen, Matrix<T>& y) override {
    noise_.resize(x.rows(), x.cols());
    draw_normal(gen, T(1), static_cast<T>(stddev_), noise_.data(), noise_.size());
    y.resize(x.rows(), x.cols());
    y.array() = x.array() * noise_.array();
  }

  void sample_backward(const Matrix<T>& dy, Matrix<T>& dx) const override {
    dx.resize(dy.rows(), dy.cols());
    dx.array() = dy.array() * noise_.array();
  }

  double stddev_;
  Matrix<T> noise_;
};

}  // namespace dropnet
