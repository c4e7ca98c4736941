#pragma once
// Dropout<T>: inverted dropout (Srivastava et al. 2014; PyTorch nn.Dropout).
//
//   train / mc_sample:  m_i ~ Bernoulli(1 - p),  y = x * m / (1 - p),  dx = dy * m / (1 - p)
//   eval:               y = x (the input itself), dx = dy
// Shapes: any features x batch; y has the shape of x. One mask entry per element, drawn from the
// Generator passed to forward (required in train and mc_sample modes, else InvalidArgument).
// Throws InvalidArgument naming the layer unless 0 <= p < 1. p is quantized to 2^-32 (see
// bernoulli_mask.hpp); the scale is exactly 1/(1 - p).

#include <memory>

#include "dropout_base.hpp"

namespace dropnet {

/// Inverted dropout (Srivastava et al. 2014, PyTorch nn.Dropout): y = x m / (1 - p) with
/// m ~ Bernoulli(1 - p) per element in train and mc_sample modes, y = x in eval. Any shape.
template <class T>
class Dropout : public DropoutBase<T> {
 public:
  /// Drops each element with probability p; throws InvalidArgument naming the layer unless
  /// 0 <= p < 1.
  explicit Dropout(double p) : DropoutBase<T>("Dropout", p), keep_("Dropout", p) {}

  /// The layer `c` describes (field p); allocates nothing at construction. Throws FormatError.
  static LayerPtr<T> from_config(const LayerConfig& c, ElementBudget&) {
    return std::make_unique<Dropout>(c.number("p"));
  }

  /// The last mask, already scaled: entries are 0 or 1/(1 - p).
  const Matrix<T>& mask() const { return mask_; }

 private:
  void sample_forward(const Matrix<T>& x, Generator& gen, Matrix<T>& y) override {
    mask_.resize(x.rows(), x.cols());
    draw_bernoulli(gen, keep_, static_cast<T>(1.0 / (1.0 - this->p())), T(0), mask_.data(),
                   mask_.size());
    y.resize(x.rows(), x.cols());
    y.array() = x.array() * mask_.array();
  }

  void sample_backward(const Matrix<T>& dy, Matrix<T>& dx) const override {
    dx.resize(dy.rows(), dy.cols());
    dx.array() = dy.array() * mask_.array();
  }

  KeepThreshold keep_;
  Matrix<T> mask_;
};

}  // namespace dropnet
