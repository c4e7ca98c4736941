#pragma once
// Dense<T, Activation>: a fully connected layer with fused bias and activation.
//
//   forward:  Z = W X + b 1^T,  Y = f(Z)          W: out x in, X: in x batch
//   backward: dZ = dY * f'(Z)
//             dW = dZ X^T (+ penalty gradient),  db = dZ 1,  dX = W^T dZ
// Options read like sentences: Dense<float, ReLU>(784, 120, gen).with_l2(1e-4).with_max_norm(3).

#include <memory>
#include <string>
#include <string_view>

#include "../activations/activation.hpp"
#include "../core/gemm.hpp"
#include "../simd/elementwise.hpp"
#include "activation_config.hpp"
#include "affine_layer.hpp"
#include "initializers.hpp"
#include "layer.hpp"

namespace dropnet {

/// The initializer each activation is usually paired with.
template <class Activation>
constexpr Init default_init() {
  const std::string_view kind = Activation::kind;
  if (kind == "SELU") return Init::lecun_normal;
  if (kind == "Sigmoid" || kind == "Tanh" || kind == "Identity" || kind == "Softmax")
    return Init::xavier_uniform;
  return Init::he_normal;
}

/// Fully connected layer with fused bias and activation; see the file comment for the formulas.
template <class T, class Activation = Identity>
class Dense : public AffineLayer<T, Activation, Dense<T, Activation>> {
  using Base = AffineLayer<T, Activation, Dense<T, Activation>>;

 public:
  /// Weights drawn from `gen` with `init`; bias zero. Throws if a size is not positive.
  Dense(Index in_features, Index out_features, Generator& gen,
        Init init = default_init<Activation>(), Activation activation = {})
      : Base(detail::require_affine_sizes("Dense", in_features, out_features), in_features, init,
             activation) {
    initialize(this->weight_, init, gen);
  }

  /// The layer `c` describes (fields: see config()), for the activation it names; charges what
  /// the constructor allocates to `budget`. Throws FormatError.
  static LayerPtr<T> from_config(const LayerConfig& c, ElementBudget& budget) {
    const Index in = c.integer("in", 1, detail::max_layer_size);
    const Index out = c.integer("out", 1, detail::max_layer_size);
    return detail::rebuild_affine<T>(c, budget, affine_elements(out, in),
                                     [&](auto activation, Init init, Generator& gen) {
                                       return std::make_unique<Dense<T, decltype(activation)>>(
                                           in, out, gen, init, activation);
                                     });
  }

  /// e.g. "Dense(784->120, ReLU)".
  std::string name() const override {
    return detail::concat("Dense(", in_features(), "->", out_features(), ", ",
                          activation_name(this->activation_), ")");
  }
  /// Columns of W.
  Index in_features() const { return this->weight_.cols(); }
  /// Rows of W.
  Index out_features() const { return this->weight_.rows(); }

  Index expected_input_rows() const override { return in_features(); }
  Index output_rows(Index input_rows) const override {
    return this->dense_output_rows(input_rows);
  }

  const Matrix<T>& forward(const Matrix<T>& x, Mode, Generator*) override {
    this->require_input_rows(x, in_features());
    input_ = &x;
    forward_gemm_.template multiply<Op::none, Op::none>(this->weight_, x, pre_activation_);
    simd::add_to_columns(pre_activation_.data(), pre_activation_.rows(), pre_activation_.cols(),
                         this->bias_.data());
    this->activation_.forward(pre_activation_, output_);
    return output_;
  }

  const Matrix<T>& backward(const Matrix<T>& dy, bool need_dx) override {
    this->require_backward_shape(dy, output_);
    this->activation_.backward(pre_activation_, output_, dy, dz_);
    weight_gemm_.template multiply<Op::none, Op::transpose>(dz_, *input_, this->weight_grad_);
    this->add_penalty_gradient();
    simd::sum_columns<T>(dz_.data(), nullptr, dz_.rows(), dz_.cols(), this->bias_grad_.data(),
                         nullptr);
    if (need_dx) {
      input_gemm_.template multiply<Op::transpose, Op::none>(this->weight_, dz_, dx_);
    } else {
      dx_.resize(0, 0);
    }
    return dx_;
  }

  /// Kind "Dense": in, out, then AffineLayer's fields (with max_norm).
  LayerConfig config() const override {
    return this->affine_config("Dense", {{"in", double(in_features())},
                                         {"out", double(out_features())}});
  }

 private:
  const Matrix<T>* input_ = nullptr;  // owned by the previous layer or by Sequential
  Matrix<T> pre_activation_, output_, dz_, dx_;
  Gemm<T> forward_gemm_, weight_gemm_, input_gemm_;  // Z = W X, dW = dZ X^T, dX = W^T dZ
};

/// A standalone activation layer: y = f(x), dx = dy * f'(x).
template <class T, class Activation>
class ActivationLayer : public Layer<T> {
 public:
  /// A layer applying `activation` (a functor such as ReLU{} or LeakyReLU{0.2}) elementwise.
  explicit ActivationLayer(Activation activation = {}) : activation_(activation) {}

  std::string name() const override { return activation_name(activation_); }
  Index output_rows(Index input_rows) const override { return input_rows; }

  const Matrix<T>& forward(const Matrix<T>& x, Mode, Generator*) override {
    this->require_nonempty(x);
    input_ = &x;
    activation_.forward(x, output_);
    return output_;
  }

  const Matrix<T>& backward(const Matrix<T>& dy, bool) override {
    this->require_backward_shape(dy, output_);
    activation_.backward(*input_, output_, dy, dx_);
    return dx_;
  }

  LayerConfig config() const override {
    return {"Activation", {{"activation_parameter", activation_.parameter()}},
            {{"activation", Activation::kind}}};
  }

  /// The layer `c` describes (fields activation, activation_parameter), for the activation it
  /// names; allocates nothing at construction. Throws FormatError.
  static LayerPtr<T> from_config(const LayerConfig& c, ElementBudget&) {
    return with_activation(c, [](auto activation) -> LayerPtr<T> {
      return std::make_unique<ActivationLayer<T, decltype(activation)>>(activation);
    });
  }

 private:
  Activation activation_;
  const Matrix<T>* input_ = nullptr;
  Matrix<T> output_, dx_;
};

}  // namespace dropnet
