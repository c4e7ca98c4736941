#pragma once
// DropConnectDense<T, Activation>: a dense layer whose weights are dropped (Wan et al. 2013).
//
// With keep probability q = 1 - p and M a Bernoulli(q) mask of W's shape (out x in):
//   train / mc_sample:  Z = (M * W) X + b 1^T,  Y = f(Z)                    (no 1/q rescaling,
//                       dZ = dY * f'(Z),  dW = M * (dZ X^T) (+ penalty'),    as in the paper)
//                       db = dZ 1,  dX = (M * W)^T dZ
//   eval, mean-field (default):  Y = f(q W X + b)     (E[M * W] = q W pushed through f)
//   eval, Gaussian moment matching (with_gaussian_inference(Z)), per sample v and unit i:
//                       u_i ~ N(q (W v)_i + b_i,  q (1 - q) ((W * W)(v * v))_i),
//                       y_i = (1/Z) sum_{z=1..Z} f(u_i^(z))
//                       (the pre-activation's mean and variance under the mask, with the
//                       activation's expectation estimated by Z Gaussian samples)
// Only W is masked; the bias is kept, as in most implementations (Keras/PyTorch ports). Unlike
// Dropout this is not inverted: training sees E[M * W] = q W, so the learned W is ~1/q larger
// than a plain Dense layer's and inference scales it back. (q here is exactly 1 - p; the masks'
// realized keep rate differs by at most 2^-33, see bernoulli_mask.hpp.)
//
// Mask granularity. The paper draws one mask per sample. We draw one mask per mini-batch by
// default: the forward is then a single GEMM (M * W) X, while per-sample masks turn it into one
// GEMV per sample with out*in fresh random words each (batch times the random numbers, and
// GEMV instead of GEMM). Either way each sample's output has the paper's distribution and the
// gradient is unbiased in expectation; per-batch masks only correlate the samples within a batch,
// which raises the variance of the batch gradient. with_per_sample_masks() gives the paper's
// definition: its masks are regenerated in backward from their Generator block indices (a copy
// of the Generator is kept), so memory stays one out x in buffer instead of batch of them.
// Under mc_predict, per-batch masks make the samples of a batch share each pass's mask; each
// sample's mean and variance are still those of the paper's model.
//
// Reuse: initialization (default_init, initialize) is Dense's; the parameters, penalty, max-norm
// and options are AffineLayer's; only forward and backward differ, since the mask sits inside
// the product.
//
// Gaussian inference draws noise in eval mode, so it needs a Generator there: an eval forward
// without one throws InvalidArgument (predict() passes none; call model.forward(x, Mode::eval,
// gen)). Its backward is not defined and throws. Mean-field eval back-propagates normally.
// Throws InvalidArgument naming the layer unless 0 <= p < 1 and the sizes are positive, on a
// wrong input shape, and when a train/mc_sample forward gets no Generator.

#include <memory>
#include <string>

#include "../activations/activation.hpp"
#include "affine_layer.hpp"
#include "bernoulli_mask.hpp"
#include "dense.hpp"
#include "gaussian_noise.hpp"
#include "initializers.hpp"
#include "layer.hpp"

namespace dropnet {

/// A dense layer whose weights are dropped; see the file comment for the formulas.
template <class T, class Activation = Identity>
class DropConnectDense : public AffineLayer<T, Activation, DropConnectDense<T, Activation>> {
  using Base = AffineLayer<T, Activation, DropConnectDense<T, Activation>>;
  using Base::activation_, Base::bias_, Base::bias_grad_, Base::weight_, Base::weight_grad_;

 public:
  /// Weights drawn from `gen` with `init` (Dense's defaults); bias zero.
  DropConnectDense(Index in_features, Index out_features, double p, Generator& gen,
                   Init init = default_init<Activation>(), Activation activation = {})
      : Base(detail::require_affine_sizes("DropConnectDense", in_features, out_features),
             in_features, init, activation),
        keep_("DropConnectDense", p),
        p_(p) {
    initialize(weight_, init, gen);
  }

  /// The layer `c` describes (fields: see config()), for the activation it names; charges what
  /// the constructor allocates (the masks are sized at the first forward). Throws FormatError.
  static LayerPtr<T> from_config(const LayerConfig& c, ElementBudget& budget) {
    const Index in = c.integer("in", 1, detail::max_layer_size);
    const Index out = c.integer("out", 1, detail::max_layer_size);
    const double p = c.number("p");
    const bool per_sample = c.flag("per_sample");
    const auto samples = static_cast<int>(c.integer("gaussian_samples", 0, 1 << 20));
    return detail::rebuild_affine<T>(
        c, budget, affine_elements(out, in), [&](auto activation, Init init, Generator& gen) {
          auto layer = std::make_unique<DropConnectDense<T, decltype(activation)>>(
              in, out, p, gen, init, activation);
          layer->with_per_sample_masks(per_sample);
          if (samples > 0) layer->with_gaussian_inference(samples);
          return layer;
        });
  }

  /// One mask per sample (the paper's definition) instead of one per mini-batch.
  DropConnectDense& with_per_sample_masks(bool per_sample = true) {
    per_sample_ = per_sample;
    return *this;
  }
  /// Eval-mode inference by Gaussian moment matching with `samples` (Z) draws per unit.
  DropConnectDense& with_gaussian_inference(int samples = 100) {
    detail::require(samples >= 1, name(), "Gaussian inference needs samples >= 1, got ", samples);
    gaussian_samples_ = samples;
    return *this;
  }
  /// Eval-mode inference by the mean-field estimate (the default).
  DropConnectDense& with_mean_field_inference() {
    gaussian_samples_ = 0;
    return *this;
  }

  std::string name() const override {
    return detail::concat("DropConnectDense(", in_features(), "->", out_features(), ", ",
                          activation_name(activation_), ", p=", p_, ")");
  }
  /// The drop probability of each weight, in [0, 1).
  double p() const { return p_; }
  /// True if each sample draws its own weight mask (else one mask per batch).
  bool per_sample_masks() const { return per_sample_; }
  int gaussian_samples() const { return gaussian_samples_; }  ///< 0: mean-field inference
  /// Columns of the weight: input features.
  Index in_features() const { return weight_.cols(); }
  /// Rows of the weight: output features.
  Index out_features() const { return weight_.rows(); }
  bool is_stochastic() const override { return true; }

  Index expected_input_rows() const override { return in_features(); }
  Index output_rows(Index input_rows) const override {
    return this->dense_output_rows(input_rows);
  }

  const Matrix<T>& forward(const Matrix<T>& x, Mode mode, Generator* gen) override {
    this->require_input_rows(x, in_features());
    this->require_generator(mode, gen);
    input_ = &x;
    if (dropnet::is_stochastic(mode)) {
      pass_ = per_sample_ ? Pass::per_sample : Pass::per_batch;
      if (per_sample_) {
        forward_per_sample(x, *gen);
      } else {
        forward_per_batch(x, *gen);
      }
    } else if (gaussian_samples_ == 0) {
      pass_ = Pass::mean_field;
      forward_mean_field(x);
    } else {
      if (gen == nullptr)
        throw InvalidArgument(detail::concat(
            name(), ": Gaussian moment-matching inference draws ", gaussian_samples_,
            " samples per unit, so an eval-mode forward needs a Generator (pass one to forward, ",
            "or use mean-field inference)"));
      pass_ = Pass::gaussian;
      forward_gaussian(x, *gen);
    }
    return output_;
  }

  const Matrix<T>& backward(const Matrix<T>& dy, bool need_dx) override {
    if (pass_ == Pass::none || dy.rows() != output_.rows() || dy.cols() != output_.cols())
      this->require_backward_shape(dy, output_);  // throws; builds the message only here
    if (pass_ == Pass::gaussian)
      throw InvalidArgument(name() +
                            ": backward after a Gaussian-inference eval forward is not defined "
                            "(use mean-field inference, or train mode)");
    activation_.backward(pre_activation_, output_, dy, dz_);
    if (pass_ == Pass::per_sample) {
      backward_per_sample(need_dx);
    } else {
      backward_shared_weight(need_dx);
    }
    this->add_penalty_gradient();
    bias_grad_.noalias() = dz_.rowwise().sum();
    return need_dx ? dx_ : no_gradient_;
  }

  /// Kind "DropConnectDense": in, out, p, per_sample (0/1), gaussian_samples (0 = mean-field),
  /// then AffineLayer's fields (with max_norm).
  LayerConfig config() const override {
    return this->affine_config("DropConnectDense",
                               {{"in", double(in_features())},
                                {"out", double(out_features())},
                                {"p", p_},
                                {"per_sample", per_sample_ ? 1.0 : 0.0},
                                {"gaussian_samples", double(gaussian_samples_)}});
  }

  /// The last mask (0/1, out x in): the batch's, or the last sample's with per-sample masks.
  const Matrix<T>& mask() const { return mask_; }

 private:
  enum class Pass { none, per_batch, per_sample, mean_field, gaussian };

  T keep() const { return static_cast<T>(1.0 - p_); }

  void activate() {
    pre_activation_.colwise() += bias_;
    activation_.forward(pre_activation_, output_);
  }

  // Z = (M * W) X: one mask, one GEMM.
  void forward_per_batch(const Matrix<T>& x, Generator& gen) {
    mask_.resize(weight_.rows(), weight_.cols());
    draw_bernoulli(gen, keep_, T(1), T(0), mask_.data(), mask_.size());
    masked_weight_.resize(weight_.rows(), weight_.cols());
    masked_weight_.array() = weight_.array() * mask_.array();
    pre_activation_.noalias() = masked_weight_ * x;
    activate();
  }

  // Sample j's mask lives in blocks [first + j * blocks, ...): regenerated here and in backward.
  void forward_per_sample(const Matrix<T>& x, Generator& gen) {
    const std::uint64_t blocks = mask_blocks(weight_.size());
    first_block_ = gen.reserve_blocks(blocks * static_cast<std::uint64_t>(x.cols()));
    mask_source_ = gen;
    pre_activation_.resize(weight_.rows(), x.cols());
    for (Index j = 0; j < x.cols(); ++j) {
      load_sample_weight(j);
      pre_activation_.col(j).noalias() = masked_weight_ * x.col(j);
    }
    activate();
  }

  void load_sample_weight(Index j) {
    mask_.resize(weight_.rows(), weight_.cols());
    masked_weight_.resize(weight_.rows(), weight_.cols());
    const std::uint64_t first =
        first_block_ + mask_blocks(weight_.size()) * static_cast<std::uint64_t>(j);
    fill_bernoulli(mask_source_, first, keep_, T(1), T(0), mask_.data(), mask_.size());
    masked_weight_.array() = weight_.array() * mask_.array();
  }

  // Z = q W X: E[M * W] X, the mean-field estimate of the pre-activation.
  void forward_mean_field(const Matrix<T>& x) {
    pre_activation_.noalias() = weight_ * x;
    pre_activation_ *= keep();
    activate();
  }

  void forward_gaussian(const Matrix<T>& x, Generator& gen) {
    const T q = keep();
    pre_activation_.noalias() = weight_ * x;  // mean of u, bias added below
    pre_activation_ *= q;
    pre_activation_.colwise() += bias_;
    weight_sq_.resize(weight_.rows(), weight_.cols());
    weight_sq_.array() = weight_.array().square();
    input_sq_.resize(x.rows(), x.cols());
    input_sq_.array() = x.array().square();
    stddev_.noalias() = weight_sq_ * input_sq_;
    stddev_.array() = (q * (T(1) - q) * stddev_.array()).sqrt();
    output_.setZero(pre_activation_.rows(), pre_activation_.cols());
    sample_.resize(pre_activation_.rows(), pre_activation_.cols());
    for (int z = 0; z < gaussian_samples_; ++z) {
      draw_normal(gen, T(0), T(1), sample_.data(), sample_.size());
      sample_.array() = pre_activation_.array() + stddev_.array() * sample_.array();
      activation_.forward(sample_, activated_);
      output_ += activated_;
    }
    output_ /= static_cast<T>(gaussian_samples_);
  }

  // One weight matrix for the whole batch: M * W in training, q W in mean-field eval.
  void backward_shared_weight(bool need_dx) {
    weight_grad_.noalias() = dz_ * input_->transpose();
    if (pass_ == Pass::per_batch) {
      weight_grad_.array() *= mask_.array();
      if (need_dx) dx_.noalias() = masked_weight_.transpose() * dz_;
    } else {
      weight_grad_ *= keep();
      if (need_dx) {
        dx_.noalias() = weight_.transpose() * dz_;
        dx_ *= keep();
      }
    }
  }

  // dW = sum_j M_j * (dz_j x_j^T), accumulated column by column of W so no outer-product buffer
  // is needed; dx_j = (M_j * W)^T dz_j.
  void backward_per_sample(bool need_dx) {
    const Matrix<T>& x = *input_;
    weight_grad_.setZero();
    if (need_dx) dx_.resize(x.rows(), x.cols());
    for (Index j = 0; j < x.cols(); ++j) {
      load_sample_weight(j);
      for (Index c = 0; c < weight_.cols(); ++c)
        weight_grad_.col(c).array() += x(c, j) * mask_.col(c).array() * dz_.col(j).array();
      if (need_dx) dx_.col(j).noalias() = masked_weight_.transpose() * dz_.col(j);
    }
  }

  KeepThreshold keep_;
  double p_;
  bool per_sample_ = false;
  int gaussian_samples_ = 0;

  Pass pass_ = Pass::none;
  const Matrix<T>* input_ = nullptr;  // owned by the previous layer or by Sequential
  Generator mask_source_;             // per-sample masks: a copy of the forward's Generator
  std::uint64_t first_block_ = 0;
  Matrix<T> mask_, masked_weight_;
  Matrix<T> pre_activation_, output_, dz_, dx_, no_gradient_;
  Matrix<T> weight_sq_, input_sq_, stddev_, sample_, activated_;  // Gaussian inference
};

}  // namespace dropnet
