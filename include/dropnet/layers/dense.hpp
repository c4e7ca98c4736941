#pragma once
// Dense<T, Activation>: a fully connected layer with fused bias and activation.
//
//   forward:  Z = W X + b 1^T,  Y = f(Z)          W: out x in, X: in x batch
//   backward: dZ = dY * f'(Z)
//             dW = dZ X^T (+ penalty gradient),  db = dZ 1,  dX = W^T dZ
// Options read like sentences: Dense<float, ReLU>(784, 120, gen).with_l2(1e-4).with_max_norm(3).

#include <cmath>
#include <optional>
#include <string>
#include <string_view>

#include "../activations/activation.hpp"
#include "../core/gemm.hpp"
#include "../regularizers/max_norm.hpp"
#include "../regularizers/weight_penalty.hpp"
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

template <class T, class Activation = Identity>
class Dense : public Layer<T> {
 public:
  /// Weights drawn from `gen` with `init`; bias zero. Throws if a size is not positive.
  Dense(Index in_features, Index out_features, Generator& gen,
        Init init = default_init<Activation>(), Activation activation = {})
      : activation_(activation), init_(init) {
    detail::require(in_features > 0 && out_features > 0, "Dense",
                    "sizes must be positive, got in=", in_features, " out=", out_features);
    weight_.resize(out_features, in_features);
    initialize(weight_, init, gen);
    bias_ = Vector<T>::Zero(out_features);
    weight_grad_ = Matrix<T>::Zero(out_features, in_features);
    bias_grad_ = Vector<T>::Zero(out_features);
  }

  /// Adds l1 * sum|W| + l2 * sum W^2 to the loss (Keras kernel_regularizer).
  Dense& with_penalty(WeightPenalty<T> penalty) {
    penalty_ = penalty;
    return *this;
  }
  Dense& with_l1(T l1) { return with_penalty({l1, penalty_.l2}); }
  Dense& with_l2(T l2) { return with_penalty({penalty_.l1, l2}); }

  /// Rescales each unit's incoming weights to norm <= c after every update.
  Dense& with_max_norm(T c) {
    detail::require(std::isfinite(static_cast<double>(c)) && c > T(0), name(),
                    "max-norm must be finite and > 0, got ", c);
    max_norm_ = c;
    return *this;
  }

  std::string name() const override {
    return detail::concat("Dense(", in_features(), "->", out_features(), ", ",
                          activation_name(activation_), ")");
  }
  Index in_features() const { return weight_.cols(); }
  Index out_features() const { return weight_.rows(); }

  Index expected_input_rows() const override { return in_features(); }
  Index output_rows(Index input_rows) const override {
    if (input_rows != in_features())
      throw InvalidArgument(detail::concat(name(), ": input has ", input_rows,
                                           " features, expected ", in_features()));
    return out_features();
  }

  const Matrix<T>& forward(const Matrix<T>& x, Mode, Generator*) override {
    this->require_input_rows(x, in_features());
    input_ = &x;
    forward_gemm_.template multiply<Op::none, Op::none>(weight_, x, pre_activation_);
    pre_activation_.colwise() += bias_;
    activation_.forward(pre_activation_, output_);
    return output_;
  }

  const Matrix<T>& backward(const Matrix<T>& dy, bool need_dx) override {
    this->require_backward_shape(dy, output_);
    activation_.backward(pre_activation_, output_, dy, dz_);
    weight_gemm_.template multiply<Op::none, Op::transpose>(dz_, *input_, weight_grad_);
    penalty_.add_gradient(weight_, weight_grad_);
    bias_grad_.noalias() = dz_.rowwise().sum();
    if (need_dx) {
      input_gemm_.template multiply<Op::transpose, Op::none>(weight_, dz_, dx_);
    } else {
      dx_.resize(0, 0);
    }
    return dx_;
  }

  ParameterList<T> parameters() override {
    return {view_of<T>("weight", weight_, &weight_grad_, ParameterRole::weight),
            view_of<T>("bias", bias_, &bias_grad_, ParameterRole::bias)};
  }

  T penalty() const override { return penalty_.active() ? penalty_.value(weight_) : T(0); }

  void apply_constraints() override {
    if (max_norm_) apply_max_norm(weight_, *max_norm_);
  }

  LayerConfig config() const override {
    LayerConfig c{"Dense",
                  {{"in", double(in_features())},
                   {"out", double(out_features())},
                   {"activation_parameter", activation_.parameter()},
                   {"l1", double(penalty_.l1)},
                   {"l2", double(penalty_.l2)},
                   {"max_norm", max_norm_ ? double(*max_norm_) : 0.0}},
                  {{"activation", Activation::kind}, {"init", to_string(init_)}}};
    return c;
  }

  Matrix<T>& weight() { return weight_; }
  const Matrix<T>& weight() const { return weight_; }
  Vector<T>& bias() { return bias_; }
  const Vector<T>& bias() const { return bias_; }
  const Matrix<T>& weight_grad() const { return weight_grad_; }
  const Vector<T>& bias_grad() const { return bias_grad_; }
  const Activation& activation() const { return activation_; }
  const WeightPenalty<T>& weight_penalty() const { return penalty_; }
  std::optional<T> max_norm() const { return max_norm_; }

 private:
  Activation activation_;
  Init init_;
  Matrix<T> weight_, weight_grad_;
  Vector<T> bias_, bias_grad_;
  WeightPenalty<T> penalty_;
  std::optional<T> max_norm_;

  const Matrix<T>* input_ = nullptr;  // owned by the previous layer or by Sequential
  Matrix<T> pre_activation_, output_, dz_, dx_;
  Gemm<T> forward_gemm_, weight_gemm_, input_gemm_;  // Z = W X, dW = dZ X^T, dX = W^T dZ
};

/// A standalone activation layer: y = f(x), dx = dy * f'(x).
template <class T, class Activation>
class ActivationLayer : public Layer<T> {
 public:
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

 private:
  Activation activation_;
  const Matrix<T>* input_ = nullptr;
  Matrix<T> output_, dx_;
};

}  // namespace dropnet
