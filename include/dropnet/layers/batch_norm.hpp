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
// Synchronized (SyncBatchNorm), after synchronize(&communicator): in train mode mu and var are
// the statistics of the global batch, every rank's slice together (two allreduces of per-channel
// sums in forward, keeping the two-pass accuracy; N counts every rank's values), and backward
// allreduces the two per-channel sums of dx's formula. dx follows data-parallel fit's
// convention: each rank's loss is the mean over its own m_r samples and the global loss their
// mean weighted by m_r / M, so with A, B the allreduced sums of m_r * dbeta_r and m_r * dgamma_r,
//            dx = gamma / sqrt(var + eps) * (dy - A / (m_r N) - xhat * B / (m_r N)),
// and dgamma, dbeta stay the rank's own sums (fit's weighted average makes them global). Every
// rank must run each train-mode forward and backward together; eval mode uses no collective.
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

#include "../distributed/communicator.hpp"
#include "../simd/elementwise.hpp"
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

  /// Train mode normalizes with the statistics of every rank of `comm` (SyncBatchNorm; see the
  /// file comment); nullptr: this process's batch alone (the default). Not owned.
  BatchNorm& synchronize(distributed::Communicator* comm) {
    comm_ = comm;
    return *this;
  }
  /// The communicator of synchronize(), or nullptr.
  distributed::Communicator* communicator() const { return comm_; }

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
      const Index n = comm_ ? global_values(x) : x.cols() * spatial_;
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
    simd::sum_columns(dy.data(), xhat_.data(), dy.rows(), dy.cols(), row_a_.data(), row_b_.data());
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
    if (train_ && comm_) {
      synced_gradient_means(dy.cols());
    } else if (train_) {
      const T inv_n = T(1) / T(dy.cols() * spatial_);
      spread_channels(beta_grad_ * inv_n, row_a_);
      spread_channels(gamma_grad_ * inv_n, row_b_);
    }
    if (train_) {
      dx_.resize(dy.rows(), dy.cols());
      simd::batch_norm_input_gradient(dy.data(), xhat_.data(), row_a_.data(), row_b_.data(),
                                      row_c_.data(), dy.rows(), dy.cols(), dx_.data());
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

  /// channel_a_ = batch mean (row_a_ the same per row), channel_b_ = 1 / sqrt(biased var +
  /// eps); two passes over x (the second on centered values, which is accurate where E[x^2] -
  /// E[x]^2 cancels). Synchronized, each pass's per-channel sums are summed over the ranks.
  void batch_statistics(const Matrix<T>& x) {
    const T inv_n = T(1) / T(comm_ ? global_columns_ * spatial_ : x.cols() * spatial_);
    simd::sum_columns<T>(x.data(), nullptr, x.rows(), x.cols(), row_a_.data(), nullptr);
    fold_rows(row_a_, channel_a_);
    if (comm_) sum_over_ranks(channel_a_);
    channel_a_ *= inv_n;
    spread_channels(channel_a_, row_a_);
    simd::centered_square_sums(x.data(), row_a_.data(), x.rows(), x.cols(), row_b_.data());
    fold_rows(row_b_, channel_b_);
    if (comm_) sum_over_ranks(channel_b_);
    batch_var_ = channel_b_ * inv_n;  // kept apart: channel_b_ becomes 1/std next
    channel_b_ = (batch_var_.array() + eps_).rsqrt();
  }

  /// Synchronized: the global batch's columns (one allreduce), kept for backward; returns the
  /// values per channel, N.
  Index global_values(const Matrix<T>& x) {
    T columns = T(x.cols());
    comm_->allreduce(&columns, 1, distributed::ReduceOp::sum);
    global_columns_ = static_cast<Index>(columns);
    return global_columns_ * spatial_;
  }

  void sum_over_ranks(Vector<T>& v) {
    comm_->allreduce(v.data(), static_cast<std::size_t>(v.size()), distributed::ReduceOp::sum);
  }

  /// Synchronized backward: row_a_, row_b_ = A / (m_r N), B / (m_r N) (file comment), from
  /// one allreduce of both sums weighted by this rank's m_r = `columns`.
  void synced_gradient_means(Index columns) {
    sync_.resize(2 * channels_);
    sync_.head(channels_) = beta_grad_ * T(columns);
    sync_.tail(channels_) = gamma_grad_ * T(columns);
    sum_over_ranks(sync_);
    const T scale = T(1) / (T(columns) * T(global_columns_ * spatial_));
    spread_channels(sync_.head(channels_) * scale, row_a_);
    spread_channels(sync_.tail(channels_) * scale, row_b_);
  }

  void update_running_statistics(Index n) {
    const T bessel = T(n) / T(n - 1);
    running_mean_ = (T(1) - momentum_) * running_mean_ + momentum_ * channel_a_;
    running_var_ = (T(1) - momentum_) * running_var_ + (momentum_ * bessel) * batch_var_;
  }

  /// Train mode, one pass: xhat = (x - mean) * channel_b_ (row_a_ holds the mean), y = gamma
  /// xhat + beta.
  void normalize(const Matrix<T>& x) {
    inv_std_ = channel_b_;
    spread_channels(channel_b_, row_b_);
    spread_channels(gamma_, row_c_);
    spread_channels(beta_, row_d_);
    xhat_.resize(x.rows(), x.cols());
    output_.resize(x.rows(), x.cols());
    simd::normalize_columns(x.data(), row_a_.data(), row_b_.data(), row_c_.data(), row_d_.data(),
                            x.rows(), x.cols(), xhat_.data(), output_.data());
  }

  /// Eval mode, one pass: y = (x - running mean) * (gamma / std) + beta. Subtracting the mean
  /// first keeps the accuracy of the two-step form where x and the mean are large.
  void normalize_with_running_statistics(const Matrix<T>& x) {
    inv_std_ = channel_b_;
    spread_channels(channel_a_, row_a_);
    spread_channels(gamma_.cwiseProduct(channel_b_), row_c_);
    spread_channels(beta_, row_d_);
    output_.resize(x.rows(), x.cols());
    simd::normalize_columns<T>(x.data(), row_a_.data(), row_c_.data(), nullptr, row_d_.data(),
                               x.rows(), x.cols(), nullptr, output_.data());
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
  distributed::Communicator* comm_ = nullptr;  // synchronize(): SyncBatchNorm
  Index global_columns_ = 0;                   // of the last synchronized train-mode forward
  Vector<T> sync_;                             // backward's two sums, for one allreduce
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
