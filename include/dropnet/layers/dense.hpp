#pragma once
// Dense<T, Activation>: a fully connected layer with fused bias and activation.
//
//   forward:  Z = W X + b 1^T,  Y = f(Z)          W: out x in, X: in x batch
//             batches of up to simd::small_batch_columns columns (batch 1 inference) take
//             simd/gemv.hpp's kernel on the avx2 and avx512 levels: one pass over W, the bias
//             and a ReLU-family activation fused; forward_view reads the input in place
//             (Sequential::infer)
//   backward: dZ = dY * f'(Z)
//             dW = dZ X^T (+ penalty gradient),  db = dZ 1,  dX = W^T dZ
// Options read like sentences: Dense<float, ReLU>(784, 120, gen).with_l2(1e-4).with_max_norm(3).

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "../activations/activation.hpp"
#include "../core/gemm.hpp"
#include "../simd/elementwise.hpp"
#include "../simd/gemv.hpp"
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
    return affine(x);
  }

  /// The eval-mode forward of x read in place (a Map, a block of columns): no copy. Caches
  /// nothing for backward, which throws until the next forward.
  const Matrix<T>* forward_view(const MatrixView<T>& x) override {
    this->require_input_rows(x, in_features());
    input_ = nullptr;
    return &affine(x);
  }

  const Matrix<T>& backward(const Matrix<T>& dy, bool need_dx) override {
    this->require_backward_shape(dy, output_);
    if (input_ == nullptr)
      throw InvalidArgument(name() + ": backward after forward_view (inference only)");
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
  /// Z = W x + b 1^T, then the output f(Z): small batches through simd::small_batch_affine (the
  /// activation fused when it is max(s z, z)) where the level has it, the rest through the GEMM
  /// (the bias, and the activation when it is max(s z, z), in its epilogue).
  const Matrix<T>& affine(const MatrixView<T>& x) {
    pre_activation_.resize(out_features(), x.cols());
    const SimdLevel level = simd_level();
    if (x.cols() <= simd::small_batch_columns && simd::small_batch_affine_serves(level)) {
      const std::optional<T> slope = fused_slope();
      if (slope) output_.resize(out_features(), x.cols());
      simd::small_batch_affine<T>(
          level, {out_features(), x.cols(), in_features(), this->weight_.data(),
                  this->weight_.outerStride(), x.data(), x.outerStride(), this->bias_.data(),
                  pre_activation_.data(), pre_activation_.outerStride(),
                  slope ? output_.data() : nullptr, output_.outerStride(), slope.value_or(T(0))});
      if (!slope) this->activation_.forward(pre_activation_, output_);
      return output_;
    }
    // The bias and a max(s z, z) activation on each thread's share of Z's columns as soon as
    // the GEMM wrote it (Gemm's epilogue): no passes over Z on the calling thread afterwards.
    const std::optional<T> slope = fused_slope();
    if (slope) output_.resize(out_features(), x.cols());
    const Index rows = out_features();
    forward_gemm_.template multiply<Op::none, Op::none>(
        this->weight_, x, pre_activation_, [&](Index first, Index cols) {
          T* z = pre_activation_.data() + first * rows;
          simd::add_to_columns(z, rows, cols, this->bias_.data());
          if (slope) simd::max_scaled(z, output_.data() + first * rows, rows * cols, *slope);
        });
    if (!slope) this->activation_.forward(pre_activation_, output_);
    return output_;
  }

  /// s with f(z) = max(s z, z) for every z, bit for bit with f's own forward: ReLU (0),
  /// Identity (1), LeakyReLU with 0 <= alpha <= 1 (alpha); none for other activations.
  std::optional<T> fused_slope() const {
    if constexpr (std::is_same_v<Activation, ReLU>) return T(0);
    if constexpr (std::is_same_v<Activation, Identity>) return T(1);
    if constexpr (std::is_same_v<Activation, LeakyReLU>) {
      const double alpha = this->activation_.alpha;
      if (alpha >= 0.0 && alpha <= 1.0) return T(alpha);
    }
    return std::nullopt;
  }

  // Owned by the previous layer or by Sequential; null after forward_view.
  const Matrix<T>* input_ = nullptr;
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
