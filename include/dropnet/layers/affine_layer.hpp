#pragma once
// AffineLayer<T, Activation, Derived, WithMaxNorm>: what Dense, DropConnectDense and Conv2D share
// -- an affine map z = W a + b followed by a fused activation f -- written once:
//
//   tensors     W (out x fan_in) and b (out), their gradients dW and db; parameters() shows them
//               as "weight" (role weight) and "bias" (role bias)
//   penalty     l1 * sum|W| + l2 * sum W^2 (Keras kernel_regularizer; the bias is exempt), its
//               gradient l1 sign(W) + 2 l2 W added to dW by add_penalty_gradient()
//   max-norm    after each update every row of W (a unit's incoming weights) is rescaled to norm
//               <= c (only where WithMaxNorm; Conv2D has none)
//   options     with_penalty, with_l1, with_l2, with_max_norm, returning the layer's own type so
//               they chain: Dense<float, ReLU>(784, 120, gen).with_l2(1e-4).with_max_norm(3)
//   config      the fields activation_parameter, l1, l2 (, max_norm; 0 = off) and the strings
//               activation, init, after the layer's own fields
//
// The layer allocates its tensors in this constructor, exactly affine_elements(out, fan_in) of
// them, which is also what its from_config charges to the load budget.
// Throws InvalidArgument naming the layer: a penalty strength negative or not finite, a max-norm
// not finite and > 0, a value assigned to weight() or bias() of another shape.

#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <utility>

#include "../activations/activation.hpp"
#include "../core/parameter.hpp"
#include "../regularizers/max_norm.hpp"
#include "../regularizers/weight_penalty.hpp"
#include "activation_config.hpp"
#include "initializers.hpp"
#include "layer.hpp"
#include "layer_config.hpp"
#include "parameter_ref.hpp"

namespace dropnet {

/// Elements an affine layer's constructor allocates: W and dW (out x fan_in), b and db (out).
inline std::uint64_t affine_elements(Index out, Index fan_in) {
  return 2 * static_cast<std::uint64_t>(out) * (static_cast<std::uint64_t>(fan_in) + 1);
}

/// The parameters, penalty, max-norm, options and config fields of an affine layer (file
/// comment); `Derived` is the layer (CRTP), so that the options return it.
template <class T, class Activation, class Derived, bool WithMaxNorm = true>
class AffineLayer : public Layer<T> {
 public:
  /// Adds l1 * sum|W| + l2 * sum W^2 to the loss (Keras kernel_regularizer); the bias is exempt.
  Derived& with_penalty(WeightPenalty<T> penalty) {
    penalty_ = penalty;
    return self();
  }
  /// Sets the L1 strength, keeping L2.
  Derived& with_l1(T l1) { return with_penalty({l1, penalty_.l2}); }
  /// Sets the L2 strength, keeping L1.
  Derived& with_l2(T l2) { return with_penalty({penalty_.l1, l2}); }

  /// Rescales each unit's incoming weights (a row of W) to norm <= c after every update.
  template <bool Enabled = WithMaxNorm, class = std::enable_if_t<Enabled>>
  Derived& with_max_norm(T c) {
    detail::require(std::isfinite(static_cast<double>(c)) && c > T(0), this->name(),
                    "max-norm must be finite and > 0, got ", c);
    max_norm_ = c;
    return self();
  }

  /// Sets the penalty (and max-norm) from the config fields l1, l2 (and max_norm, 0 = off), as
  /// config() writes them. Throws FormatError for a missing or non-finite field.
  Derived& with_options_of(const LayerConfig& c) {
    with_penalty(detail::config_penalty<T>(c));  // even 0: keeps a saved -0.0 bit for bit
    if constexpr (WithMaxNorm) {
      const double max_norm = c.finite("max_norm");
      if (max_norm != 0.0) with_max_norm(static_cast<T>(max_norm));
    }
    return self();
  }

  /// W, out x fan_in: read and written in place (assigning copies; see parameter_ref.hpp).
  ParameterRef<T, Matrix<T>> weight() { return {weight_, *this, "weight"}; }
  /// W, read-only.
  const Matrix<T>& weight() const { return weight_; }
  /// b, one per output unit or channel: read and written in place.
  ParameterRef<T, Vector<T>> bias() { return {bias_, *this, "bias"}; }
  /// b, read-only.
  const Vector<T>& bias() const { return bias_; }
  /// dW from the last backward (with the penalty's gradient).
  const Matrix<T>& weight_grad() const { return weight_grad_; }
  /// db from the last backward.
  const Vector<T>& bias_grad() const { return bias_grad_; }
  /// The fused activation f.
  const Activation& activation() const { return activation_; }
  /// The L1/L2 strengths.
  const WeightPenalty<T>& weight_penalty() const { return penalty_; }
  /// The max-norm c, if set.
  std::optional<T> max_norm() const { return max_norm_; }

  /// "weight" and "bias", with their gradients.
  ParameterList<T> parameters() override {
    return {view_of<T>("weight", weight_, &weight_grad_, ParameterRole::weight),
            view_of<T>("bias", bias_, &bias_grad_, ParameterRole::bias)};
  }
  /// l1 * sum|W| + l2 * sum W^2.
  T penalty() const override { return penalty_.active() ? penalty_.value(weight_) : T(0); }
  /// Max-norm, if set.
  void apply_constraints() override {
    if (max_norm_) apply_max_norm(weight_, *max_norm_);
  }

 protected:
  /// Allocates W (uninitialized: the layer draws it) and zero b, dW, db: affine_elements(out,
  /// fan_in) elements.
  AffineLayer(Index out, Index fan_in, Init init, Activation activation)
      : activation_(activation),
        init_(init),
        weight_(out, fan_in),
        weight_grad_(Matrix<T>::Zero(out, fan_in)),
        bias_(Vector<T>::Zero(out)),
        bias_grad_(Vector<T>::Zero(out)) {}

  /// out, for a dense-like layer (its input is W's columns); throws InvalidArgument naming the
  /// layer unless input_rows = fan_in.
  Index dense_output_rows(Index input_rows) const {
    if (input_rows != weight_.cols())
      throw InvalidArgument(detail::concat(this->name(), ": input has ", input_rows,
                                           " features, expected ", weight_.cols()));
    return weight_.rows();
  }

  /// dW += the penalty's gradient.
  void add_penalty_gradient() { penalty_.add_gradient(weight_, weight_grad_); }

  /// Config `kind`: the layer's own `fields`, then the shared ones (file comment).
  LayerConfig affine_config(const char* kind,
                            std::initializer_list<std::pair<std::string, double>> fields) const {
    LayerConfig c{kind, fields, {{"activation", Activation::kind}, {"init", to_string(init_)}}};
    c.numbers.insert(c.numbers.end(), {{"activation_parameter", activation_.parameter()},
                                       {"l1", double(penalty_.l1)},
                                       {"l2", double(penalty_.l2)}});
    if constexpr (WithMaxNorm) c.numbers.push_back({"max_norm", max_norm_ ? double(*max_norm_) : 0.0});
    return c;
  }

  Activation activation_;  ///< f, applied after the affine map
  Init init_;              ///< how W was drawn (saved in the config)
  Matrix<T> weight_;       ///< W, out x fan_in
  Matrix<T> weight_grad_;  ///< dW, written by the layer's backward
  Vector<T> bias_;         ///< b, out
  Vector<T> bias_grad_;    ///< db, written by the layer's backward

 private:
  Derived& self() { return static_cast<Derived&>(*this); }

  WeightPenalty<T> penalty_;
  std::optional<T> max_norm_;
};

namespace detail {

/// `out` after checking that both sizes of a dense-like layer `kind` are positive.
inline Index require_affine_sizes(const char* kind, Index in, Index out) {
  require(in > 0 && out > 0, kind, "sizes must be positive, got in=", in, " out=", out);
  return out;
}

/// `out_channels` after checking that it is positive (Conv2D).
inline Index require_out_channels(Index out_channels) {
  require(out_channels > 0, "Conv2D", "out_channels must be > 0, got ", out_channels);
  return out_channels;
}

/// An affine layer's from_config after its own fields are read: charges `elements` (what the
/// constructor will allocate), then returns make(activation, init) for the config's activation
/// and init, with the config's penalty and max-norm. Weights come from a fixed Generator(0) and
/// are overwritten by the loader.
template <class T, class Make>
LayerPtr<T> rebuild_affine(const LayerConfig& c, ElementBudget& budget, std::uint64_t elements,
                           Make make) {
  const Init init = init_from_string(c.string("init"));
  take(budget, elements, c);
  return with_activation(c, [&](auto activation) -> LayerPtr<T> {
    Generator unused(0);
    auto layer = make(activation, init, unused);
    layer->with_options_of(c);
    return layer;
  });
}

}  // namespace detail

}  // namespace dropnet
