#pragma once
// BatchNorm<T>: batch normalization (Ioffe & Szegedy 2015) with PyTorch's conventions.
//
// Layouts. BatchNorm(features): x is features x batch, one statistic per row (BatchNorm1d).
// BatchNorm(channels, spatial): x is (channels*spatial) x batch, channel-major: channel c owns
// rows [c*spatial, (c+1)*spatial) of every column, one statistic per channel over the
// n = batch*spatial values (BatchNorm2d on a flattened feature map). Per channel c:
//
//   train:   mu = mean(x),  var = mean((x - mu)^2)            (biased, n in the denominator)
//            xhat = (x - mu) / sqrt(var + eps),  y = gamma * xhat + beta
//            running_mean <- (1 - m) running_mean + m mu
//            running_var  <- (1 - m) running_var  + m var * n / (n - 1)   (unbiased)
//   eval, mc_sample:  the same with mu, var := running_mean, running_var; nothing is updated.
//
//   backward (train): dbeta = sum dy,  dgamma = sum dy * xhat,
//            dx = gamma / sqrt(var + eps) * (dy - dbeta / n - xhat * dgamma / n)
//   backward (eval):  the affine map's: dx = gamma / sqrt(running_var + eps) * dy.
//
// Momentum convention: PyTorch's, m = 0.1 weighs the new batch. Keras' BatchNormalization
// momentum weighs the old value (0.99 by default, 0.9 common), i.e. m = 1 - keras_momentum;
// with_keras_momentum() converts. Keras also keeps the biased variance and uses eps = 1e-3.
//
// gamma = 1, beta = 0, running_mean = 0, running_var = 1 at construction. parameters():
// gamma (role scale), beta (role shift); buffers(): running_mean, running_var (role buffer).
//
// Throws InvalidArgument naming the layer: a size not positive, momentum outside [0, 1], eps not
// finite and > 0, an input whose rows are not channels*spatial, and a train-mode batch with
// fewer than 2 values per channel (the batch variance is undefined).

#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "layer.hpp"
#include "parameter_ref.hpp"

namespace dropnet {

/// Batch normalization (Ioffe & Szegedy 2015) with PyTorch's conventions, per feature or per
/// channel of a flattened feature map (formulas, layouts and errors in the file comment above).
template <class T>
class BatchNorm : public Layer<T> {
 public:
  /// One statistic per feature (row).
  explicit BatchNorm(Index features) : BatchNorm(features, 1) {}

  /// One statistic per channel over batch x spatial; input rows = channels * spatial.
  BatchNorm(Index channels, Index spatial) : channels_(channels), spatial_(spatial) {
    detail::require(channels > 0 && spatial > 0, "BatchNorm",
                    "sizes must be positive, got channels=", channels, " spatial=", spatial);
    for (Vector<T>* v : per_channel_vectors()) v->setZero(channels);
    for (Vector<T>* v : per_row_vectors()) v->resize(features());
    gamma_.setOnes();
    running_var_.setOnes();
  }

  /// Elements the constructor allocates: the per-channel and the per-row vectors.
  static std::uint64_t construction_elements(Index channels, Index spatial) {
    return per_channel_count * static_cast<std::uint64_t>(channels) +
           per_row_count * static_cast<std::uint64_t>(channels) * static_cast<std::uint64_t>(spatial);
  }

  /// The layer `c` describes (fields: see config()); charges construction_elements to `budget`.
  /// Throws FormatError.
  static LayerPtr<T> from_config(const LayerConfig& c, ElementBudget& budget) {
    const Index channels = c.integer("channels", 1, detail::max_layer_size);
    const Index spatial = c.integer("spatial", 1, detail::max_layer_size);
    const Index features = c.integer("features", 1, detail::max_layer_size);
    if (detail::checked_product(c, {channels, spatial}) != static_cast<std::uint64_t>(features))
      throw FormatError(detail::concat(detail::config_where(c), ": features=", features,
                                       " is not channels=", channels, " x spatial=", spatial));
    detail::take(budget, construction_elements(channels, spatial), c);
    auto layer = std::make_unique<BatchNorm<T>>(channels, spatial);
    layer->with_momentum(static_cast<T>(c.finite("momentum")));
    layer->with_eps(static_cast<T>(c.finite("eps")));
    return layer;
  }

  /// PyTorch momentum: weight of the new batch statistic in the running average.
  BatchNorm& with_momentum(T momentum) {
    detail::require(momentum >= T(0) && momentum <= T(1), name(),
                    "momentum must be in [0, 1], got ", momentum);
    momentum_ = momentum;
    return *this;
  }
  /// Keras momentum (weight of the old running value), converted to m = 1 - keras_momentum.
  BatchNorm& with_keras_momentum(T keras_momentum) { return with_momentum(T(1) - keras_momentum); }

  /// Sets eps, added to the variance, finite and > 0 (default 1e-5); returns *this. Throws
  /// InvalidArgument naming the layer otherwise.
  BatchNorm& with_eps(T eps) {
    detail::require(std::isfinite(static_cast<double>(eps)) && eps > T(0), name(),
                    "eps must be finite and > 0, got ", eps);
    eps_ = eps;
    return *this;
  }

  std::string name() const override {
    if (spatial_ == 1) return detail::concat("BatchNorm(", channels_, ")");
    return detail::concat("BatchNorm(", channels_, " channels x ", spatial_, ")");
  }

  /// Number of statistics (features, or channels of a feature map).
  Index channels() const { return channels_; }
  /// Values per channel (1 for per-feature normalization).
  Index spatial() const { return spatial_; }
  /// Rows of the input, channels * spatial.
  Index features() const { return channels_ * spatial_; }
  /// PyTorch momentum m, the weight of the new batch in the running statistics.
  T momentum() const { return momentum_; }
  /// eps added to the variance.
  T eps() const { return eps_; }

  Index expected_input_rows() const override { return features(); }
  Index output_rows(Index input_rows) const override {
    if (input_rows != features())
      throw InvalidArgument(
          detail::concat(name(), ": input has ", input_rows, " features, expected ", features()));
    return features();
  }

  Index min_train_batch() const override { return spatial_ >= 2 ? 1 : 2; }

  const Matrix<T>& forward(const Matrix<T>& x, Mode mode, Generator*) override {
    this->require_input_rows(x, features());
    train_ = mode == Mode::train;
    if (train_) {
      const Index n = x.cols() * spatial_;
      if (n < 2)
        throw InvalidArgument(detail::concat(
            name(), ": a train-mode batch needs at least 2 values per channel (batch x spatial = ",
            n, "); the batch variance is undefined"));
      batch_statistics(x);
      update_running_statistics(n);
      normalize(x);
    } else {
      channel_a_ = running_mean_;
      channel_b_ = (running_var_.array() + eps_).rsqrt();
      normalize_with_running_statistics(x);
    }
    return output_;
  }

  const Matrix<T>& backward(const Matrix<T>& dy, bool need_dx) override {
    this->require_backward_shape(dy, output_);
    // Eval-mode forward skips xhat (inference rarely back-propagates); rebuild it from the input,
    // which the Layer contract keeps alive until backward.
    if (!train_) {
      spread_channels(running_mean_, row_a_);
      spread_channels(inv_std_, row_b_);
      xhat_ = (input_->colwise() - row_a_).array().colwise() * row_b_.array();
    }
    // Pass 1: per-row sums of dy and dy * xhat, folded into channels.
    row_a_.setZero();
    row_b_.setZero();
    for (Index j = 0; j < dy.cols(); ++j) {
      row_a_ += dy.col(j);
      row_b_.array() += dy.col(j).array() * xhat_.col(j).array();
    }
    fold_rows(row_a_, beta_grad_);
    fold_rows(row_b_, gamma_grad_);
    if (!need_dx) {
      dx_.resize(0, 0);
      return dx_;
    }
    // Pass 2: dx = k (dy - a - xhat b) with k = gamma / std; a, b = the two means in train
    // mode and 0 in eval mode, where the statistics are constants.
    channel_a_ = gamma_.cwiseProduct(inv_std_);
    spread_channels(channel_a_, row_c_);
    if (train_) {
      const T inv_n = T(1) / T(dy.cols() * spatial_);
      spread_channels(beta_grad_ * inv_n, row_a_);
      spread_channels(gamma_grad_ * inv_n, row_b_);
      dx_ = ((dy.array() - xhat_.array().colwise() * row_b_.array()).colwise() - row_a_.array())
                .colwise() *
            row_c_.array();
    } else {
      dx_ = dy.array().colwise() * row_c_.array();
    }
    return dx_;
  }

  ParameterList<T> parameters() override {
    return {view_of<T>("gamma", gamma_, &gamma_grad_, ParameterRole::scale),
            view_of<T>("beta", beta_, &beta_grad_, ParameterRole::shift)};
  }
  ParameterList<T> buffers() override {
    return {view_of<T>("running_mean", running_mean_, no_grad(), ParameterRole::buffer),
            view_of<T>("running_var", running_var_, no_grad(), ParameterRole::buffer)};
  }

  LayerConfig config() const override {
    return {"BatchNorm",
            {{"features", double(features())},
             {"channels", double(channels_)},
             {"spatial", double(spatial_)},
             {"momentum", double(momentum_)},
             {"eps", double(eps_)}},
            {}};
  }

  /// gamma, one per channel: read and written in place (assigning copies; parameter_ref.hpp).
  ParameterRef<T, Vector<T>> gamma() { return {gamma_, *this, "gamma"}; }
  /// beta, one per channel: read and written in place.
  ParameterRef<T, Vector<T>> beta() { return {beta_, *this, "beta"}; }
  /// The running mean, one per channel: read and written in place.
  ParameterRef<T, Vector<T>> running_mean() { return {running_mean_, *this, "running_mean"}; }
  /// The running (unbiased) variance, one per channel: read and written in place.
  ParameterRef<T, Vector<T>> running_var() { return {running_var_, *this, "running_var"}; }
  /// gamma, read-only.
  const Vector<T>& gamma() const { return gamma_; }
  /// beta, read-only.
  const Vector<T>& beta() const { return beta_; }
  /// The running mean, read-only.
  const Vector<T>& running_mean() const { return running_mean_; }
  /// The running variance, read-only.
  const Vector<T>& running_var() const { return running_var_; }
  /// dgamma from the last backward.
  const Vector<T>& gamma_grad() const { return gamma_grad_; }
  /// dbeta from the last backward.
  const Vector<T>& beta_grad() const { return beta_grad_; }

 private:
  static constexpr std::size_t per_channel_count = 10;
  static constexpr std::size_t per_row_count = 4;

  /// Every vector with one entry per channel (sized at construction).
  std::array<Vector<T>*, per_channel_count> per_channel_vectors() {
    return {&gamma_,        &beta_,      &gamma_grad_, &beta_grad_, &running_mean_,
            &running_var_,  &channel_a_, &channel_b_,  &batch_var_, &inv_std_};
  }
  /// Every vector with one entry per row, channels x spatial (sized at construction).
  std::array<Vector<T>*, per_row_count> per_row_vectors() {
    return {&row_a_, &row_b_, &row_c_, &row_d_};
  }

  static Vector<T>* no_grad() { return nullptr; }

  /// channel_a_ = batch mean, channel_b_ = 1 / sqrt(biased var + eps); two passes over x (the
  /// second on centered values, which is accurate where E[x^2] - E[x]^2 cancels).
  void batch_statistics(const Matrix<T>& x) {
    const T inv_n = T(1) / T(x.cols() * spatial_);
    row_a_ = x.rowwise().sum();
    fold_rows(row_a_, channel_a_);
    channel_a_ *= inv_n;
    spread_channels(channel_a_, row_a_);
    xhat_ = x.colwise() - row_a_;
    row_b_ = xhat_.array().square().rowwise().sum();
    fold_rows(row_b_, channel_b_);
    batch_var_ = channel_b_ * inv_n;  // kept apart: channel_b_ becomes 1/std next
    channel_b_ = (batch_var_.array() + eps_).rsqrt();
  }

  void update_running_statistics(Index n) {
    const T bessel = T(n) / T(n - 1);
    running_mean_ = (T(1) - momentum_) * running_mean_ + momentum_ * channel_a_;
    running_var_ = (T(1) - momentum_) * running_var_ + (momentum_ * bessel) * batch_var_;
  }

  /// Train mode: xhat = (x - mean) * channel_b_ (xhat_ already holds x - mean), y = gamma xhat
  /// + beta.
  void normalize(const Matrix<T>&) {
    inv_std_ = channel_b_;
    spread_channels(channel_b_, row_b_);
    xhat_.array().colwise() *= row_b_.array();
    spread_channels(gamma_, row_a_);
    spread_channels(beta_, row_c_);
    output_ = (xhat_.array().colwise() * row_a_.array()).colwise() + row_c_.array();
  }

  /// Eval mode, one pass: y = (x - running mean) * (gamma / std) + beta. Subtracting the mean
  /// first keeps the accuracy of the two-step form where x and the mean are large.
  void normalize_with_running_statistics(const Matrix<T>& x) {
    inv_std_ = channel_b_;
    spread_channels(channel_a_, row_a_);
    spread_channels(gamma_.cwiseProduct(channel_b_), row_c_);
    spread_channels(beta_, row_d_);
    output_ = ((x.colwise() - row_a_).array().colwise() * row_c_.array()).colwise() + row_d_.array();
    input_ = &x;
  }

  /// channel[c] = sum of rows[c*spatial .. (c+1)*spatial).
  void fold_rows(const Vector<T>& rows, Vector<T>& channel) const {
    channel =
        Eigen::Map<const Matrix<T>>(rows.data(), spatial_, channels_).colwise().sum().transpose();
  }
  /// rows[c*spatial + s] = channel[c].
  template <class Channel>
  void spread_channels(const Channel& channel, Vector<T>& rows) const {
    if (spatial_ == 1) {
      rows = channel;
      return;
    }
    // Not `map.rowwise() = channel.transpose()`: Eigen evaluates that into a temporary.
    for (Index c = 0; c < channels_; ++c)
      rows.segment(c * spatial_, spatial_).setConstant(channel(c));
  }

  Index channels_, spatial_;
  T momentum_ = T(0.1);
  T eps_ = T(1e-5);
  Vector<T> gamma_, beta_, gamma_grad_, beta_grad_, running_mean_, running_var_;

  bool train_ = false;  // mode of the last forward, which decides backward's formula
  // Per-channel and per-row scratch, sized at construction.
  Vector<T> channel_a_, channel_b_, batch_var_, inv_std_;
  Vector<T> row_a_, row_b_, row_c_, row_d_;
  Matrix<T> xhat_, output_, dx_;
  const Matrix<T>* input_ = nullptr;  // eval mode's input, for backward
};

}  // namespace dropnet
