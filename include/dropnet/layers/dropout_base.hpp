#pragma once
// DropoutBase<T>: what every shape-preserving dropout layer shares.
//
// - p is validated once (finite, 0 <= p < 1; InvalidArgument names the layer and the value).
// - eval mode, and p = 0 in any mode, are the identity: forward returns the input itself (no
//   copy; the reference stays valid as long as the input does, i.e. until the previous layer's
//   next forward) and backward returns dy itself.
// - train and mc_sample modes sample: they require a Generator (even at p = 0, so the contract
//   does not depend on p) and call the derived layer's sample_forward, which draws its noise
//   from the Generator and keeps it for sample_backward.
// A derived layer supplies the noise (sample_forward / sample_backward) and, if it restricts its
// input's shape, check_rows.

#include <string>
#include <utility>

#include "bernoulli_mask.hpp"
#include "layer.hpp"

namespace dropnet {

/// Base of the shape-preserving dropout layers: validates p, makes eval mode (and p = 0) the
/// identity, and calls the derived layer's sampling in train and mc_sample modes (see the file
/// comment above).
template <class T>
class DropoutBase : public Layer<T> {
 public:
  /// The drop probability p, in [0, 1).
  double p() const { return p_; }
  bool is_stochastic() const override { return true; }
  bool passes_input_in_eval() const override { return true; }

  std::string name() const override { return detail::concat(kind_, "(p=", p_, ")"); }
  LayerConfig config() const override { return {kind_, {{"p", p_}}, {}}; }
  std::string kind() const override { return kind_; }

  Index output_rows(Index input_rows) const override {
    check_rows(input_rows);
    return input_rows;
  }

  const Matrix<T>& forward(const Matrix<T>& x, Mode mode, Generator* gen) final {
    this->require_nonempty(x);
    check_rows(x.rows());
    this->require_generator(mode, gen);
    rows_ = x.rows();
    cols_ = x.cols();
    sampled_ = dropnet::is_stochastic(mode) && p_ > 0.0;
    if (!sampled_) return x;
    sample_forward(x, *gen, output_);
    return output_;
  }

  const Matrix<T>& backward(const Matrix<T>& dy, bool need_dx) final {
    if (rows_ == 0) throw InvalidArgument(name() + ": backward called before forward");
    if (dy.rows() != rows_ || dy.cols() != cols_)
      detail::require_shape(name(), "output gradient", dy.rows(), dy.cols(), rows_, cols_);
    if (!need_dx) return no_gradient_;
    if (!sampled_) return dy;
    sample_backward(dy, dx_);
    return dx_;
  }

 protected:
  /// Validates p; `kind` is the layer's type name ("Dropout").
  DropoutBase(std::string kind, double p)
      : kind_(std::move(kind)), p_(detail::require_drop_rate(kind_, p)) {}

  /// y = the noisy x; keeps whatever sample_backward needs. Sizes `y` (no-op when unchanged).
  virtual void sample_forward(const Matrix<T>& x, Generator& gen, Matrix<T>& y) = 0;
  /// dx from dy with the noise of the last sample_forward.
  virtual void sample_backward(const Matrix<T>& dy, Matrix<T>& dx) const = 0;
  /// Throws InvalidArgument naming the layer if it cannot take `rows` features.
  virtual void check_rows(Index /*rows*/) const {}

 private:
  std::string kind_;
  double p_;
  Index rows_ = 0, cols_ = 0;  // shape of the last forward (0: none yet)
  bool sampled_ = false;
  Matrix<T> output_, dx_, no_gradient_;
};

}  // namespace dropnet
