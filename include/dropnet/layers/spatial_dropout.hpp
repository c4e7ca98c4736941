#pragma once
// SpatialDropout<T>: drops whole channels (Tompson et al. 2015; PyTorch Dropout1d/Dropout2d).
//
// Each sample's features are `channels` contiguous groups of H*W = rows / channels values
// (C x H x W flattened channel-major). One draw per (channel, sample):
//   train / mc_sample:  m_cj ~ Bernoulli(1 - p),  y_cj = x_cj * m_cj / (1 - p),
//                       dx_cj = dy_cj * m_cj / (1 - p)      (x_cj: group c of column j)
//   eval:               y = x (the input itself), dx = dy
// Neighbouring pixels of a feature map are strongly correlated, so per-element dropout barely
// regularizes them; dropping the whole map does.
// Throws InvalidArgument naming the layer unless 0 <= p < 1 and channels > 0, and when the input's
// rows are not a multiple of channels (the message names both).

#include <memory>

#include "dropout_base.hpp"

namespace dropnet {

/// Drops whole channels (PyTorch Dropout1d/Dropout2d): one Bernoulli draw per (channel, sample)
/// over rows / channels contiguous values (formulas in the file comment above).
template <class T>
class SpatialDropout : public DropoutBase<T> {
 public:
  /// Drops each of `channels` channels with probability p; throws InvalidArgument naming the layer
  /// unless 0 <= p < 1 and channels > 0.
  SpatialDropout(double p, Index channels)
      : DropoutBase<T>("SpatialDropout", p), keep_("SpatialDropout", p), channels_(channels) {
    detail::require(channels > 0, "SpatialDropout", "channels must be > 0, got ", channels);
  }

  /// The layer `c` describes (p, channels); allocates nothing at construction. Throws
  /// FormatError.
  static LayerPtr<T> from_config(const LayerConfig& c, ElementBudget&) {
    return std::make_unique<SpatialDropout>(c.number("p"),
                                            c.integer("channels", 1, detail::max_layer_size));
  }

  /// Number of channels the input's rows are split into.
  Index channels() const { return channels_; }

  std::string name() const override {
    return detail::concat("SpatialDropout(p=", this->p(), ", channels=", channels_, ")");
  }
  LayerConfig config() const override {
    return {"SpatialDropout", {{"p", this->p()}, {"channels", double(channels_)}}, {}};
  }

  /// The last mask, channels x batch, already scaled: entries are 0 or 1/(1 - p).
  const Matrix<T>& mask() const { return mask_; }

 private:
  void check_rows(Index rows) const override {
    if (rows % channels_ != 0)
      throw InvalidArgument(detail::concat(name(), ": input has ", rows,
                                           " rows, expected a multiple of channels=", channels_,
                                           " (C x H x W flattened, channel-major)"));
  }

  // A column of x is `channels` contiguous groups, so the whole batch is one (H*W) x (C*batch)
  // matrix whose k-th column is group k % C of sample k / C -- exactly the column-major order of
  // the C x batch mask. Scaling by channel is then a single diagonal product.
  static Eigen::Map<const Matrix<T>> groups(const Matrix<T>& m, Index channels) {
    return {m.data(), m.rows() / channels, m.cols() * channels};
  }
  static Eigen::Map<Matrix<T>> groups(Matrix<T>& m, Index channels) {
    return {m.data(), m.rows() / channels, m.cols() * channels};
  }
  void scale_groups(const Matrix<T>& in, Matrix<T>& out) const {
    out.resize(in.rows(), in.cols());
    const Eigen::Map<const Vector<T>> scale(mask_.data(), mask_.size());
    groups(out, channels_).noalias() = groups(in, channels_) * scale.asDiagonal();
  }

  void sample_forward(const Matrix<T>& x, Generator& gen, Matrix<T>& y) override {
    mask_.resize(channels_, x.cols());
    draw_bernoulli(gen, keep_, static_cast<T>(1.0 / (1.0 - this->p())), T(0), mask_.data(),
                   mask_.size());
    scale_groups(x, y);
  }

  void sample_backward(const Matrix<T>& dy, Matrix<T>& dx) const override { scale_groups(dy, dx); }

  KeepThreshold keep_;
  Index channels_;
  Matrix<T> mask_;
};

}  // namespace dropnet
