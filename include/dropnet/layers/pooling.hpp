#pragma once
// Pooling over feature maps (ImageShape layout: C*H*W x batch, channel-major), each channel
// pooled on its own. Windows are k x k, moved by `stride` (default k, as in PyTorch) over the
// input padded by `padding` on each side, floor mode (see SlidingWindow in image_shape.hpp).
//
//   MaxPool2D:     y[c, oh, ow] = max of x over the window (padding never wins: it is -inf)
//                  dx = dy routed to the argmax of each window, summed where windows overlap.
//                  Ties: the first maximal pixel in row-major window order takes the whole
//                  gradient; a NaN in the window is the maximum (PyTorch's CPU rule).
//   AvgPool2D:     y[c, oh, ow] = (sum of x over the window) / k^2, padding counted as zeros
//                  (PyTorch's count_include_pad=True default)
//                  dx[c, h, w] = sum over the windows holding (h, w) of dy / k^2.
//   GlobalAvgPool: y[c] = mean of channel c over H x W (C*H*W -> C)
//                  dx[c, h, w] = dy[c] / (H*W).
//
// Throws InvalidArgument naming the layer: a non-positive size, kernel or stride, a padding
// outside [0, k/2] (PyTorch's limit: a window then always covers a pixel), a window larger than
// the padded input (at construction); an input whose rows are not C*H*W or an empty batch
// (forward); backward before forward or a gradient of the wrong shape.
//
//   MaxPool2D<float>(ImageShape{32, 28, 28}, 2)                          -> 32x14x14
//   AvgPool2D<float>(ImageShape{8, 9, 9}, 3, PoolOptions().stride(2).padding(1))  -> 8x5x5

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <string>

#include "image_shape.hpp"
#include "layer.hpp"

namespace dropnet {

/// Pooling options besides the window: PoolOptions().stride(1).padding(1).
class PoolOptions {
 public:
  /// Step between windows (default: the window size).
  PoolOptions& stride(Index s) {
    stride_ = s;
    return *this;
  }
  /// Pixels added on each side: -inf for MaxPool2D, 0 for AvgPool2D (default 0, at most k/2).
  PoolOptions& padding(Index p) {
    padding_ = p;
    return *this;
  }
  /// Unset: the window size (non-overlapping windows).
  std::optional<Index> stride() const { return stride_; }
  /// The padding set (0 unless set).
  Index padding() const { return padding_; }

 private:
  std::optional<Index> stride_;
  Index padding_ = 0;
};

/// What MaxPool2D and AvgPool2D share: the geometry, its checks, name and config.
template <class T>
class Pool2D : public Layer<T> {
 public:
  /// e.g. "MaxPool2D(32x28x28->32x14x14, k=2, s=2, p=0)".
  std::string name() const override {
    return detail::concat(kind_, "(", to_string(input_shape()), "->", to_string(output_shape()),
                          ", k=", kernel(), ", s=", stride(), ", p=", padding(), ")");
  }
  /// Kind "MaxPool2D" or "AvgPool2D": channels, height, width, kernel, stride, padding.
  LayerConfig config() const override {
    return {kind_,
            {{"channels", double(input_shape().channels)},
             {"height", double(input_shape().height)},
             {"width", double(input_shape().width)},
             {"kernel", double(kernel())},
             {"stride", double(stride())},
             {"padding", double(padding())}},
            {}};
  }

  /// C x H x W.
  const ImageShape& input_shape() const { return window_.input(); }
  /// C x OH x OW.
  ImageShape output_shape() const { return window_.output(input_shape().channels); }
  /// k, the window's side.
  Index kernel() const { return window_.kernel(); }
  /// Step between windows.
  Index stride() const { return window_.stride(); }
  /// Padding on each side.
  Index padding() const { return window_.padding(); }

  /// C*H*W.
  Index expected_input_rows() const override { return input_shape().size(); }
  /// C*OH*OW; throws InvalidArgument naming the layer unless input_rows = C*H*W.
  Index output_rows(Index input_rows) const override {
    detail::require_image_rows(name(), input_shape(), input_rows);
    return output_shape().size();
  }

 protected:
  /// Rebuilds Pool (MaxPool2D or AvgPool2D) from `c`'s fields (see config()), after charging
  /// Pool::construction_elements(window) to `budget`. Throws FormatError.
  template <class Pool>
  static LayerPtr<T> rebuild(const LayerConfig& c, ElementBudget& budget) {
    const ImageShape input = detail::config_image(c);
    const Index kernel = c.integer("kernel", 1, detail::max_layer_size);
    const PoolOptions options = PoolOptions()
                                    .stride(c.integer("stride", 1, detail::max_layer_size))
                                    .padding(c.integer("padding", 0, detail::max_layer_size));
    const SlidingWindow window(c.kind, input, kernel, *options.stride(), options.padding());
    // C*OH*OW checked before construction_elements computes it (a large padding is refused by
    // the constructor, after the charge).
    detail::checked_product(c, {input.channels, window.out_height(), window.out_width()});
    detail::take(budget, Pool::construction_elements(window), c);
    return std::make_unique<Pool>(input, kernel, options);
  }

  /// `kind` ("MaxPool2D") names the layer in errors; the stride defaults to the kernel.
  Pool2D(const char* kind, const ImageShape& input, Index kernel, const PoolOptions& options)
      : kind_(kind),
        window_(kind, input, kernel, options.stride().value_or(kernel), options.padding()) {
    detail::require(2 * padding() <= kernel, kind, "padding must be at most half the kernel (",
                    kernel, "), got ", padding());
  }

  /// Throws InvalidArgument naming the layer unless x has C*H*W rows and a column.
  void require_input(const Matrix<T>& x) const {
    if (x.rows() != input_shape().size())
      detail::require_image_rows(name(), input_shape(), x.rows());
    this->require_nonempty(x);
  }

  /// SlidingWindow::for_each_run over every channel: run(out, in, count) where outputs
  /// [out, out + count) of a sample's column read its input rows in, in + stride, ...; for each
  /// output, the window's pixels come in row-major order.
  template <class Run>
  void for_each_run(Run run) const {
    const Index in_plane = input_shape().spatial(), out_plane = window_.out_spatial();
    for (Index c = 0; c < input_shape().channels; ++c)
      window_.for_each_run([&](Index, Index out, Index in, Index count) {
        run(c * out_plane + out, c * in_plane + in, count);
      });
  }

 private:
  std::string kind_;
  SlidingWindow window_;
};

/// Max over each k x k window; the gradient goes to the window's maximum (file comment).
template <class T>
class MaxPool2D : public Pool2D<T> {
 public:
  /// Rows of the maxima, one per output, as argmax() returns them.
  using Argmax = Eigen::Matrix<std::int32_t, Eigen::Dynamic, Eigen::Dynamic>;

  /// Windows of `kernel` x `kernel` over `input`; throws InvalidArgument naming MaxPool2D for a
  /// bad size, kernel, stride or padding.
  MaxPool2D(const ImageShape& input, Index kernel, const PoolOptions& options = {})
      : Pool2D<T>("MaxPool2D", input, kernel, options) {
    first_pixels();
  }

  /// The layer `c` describes (fields: see config()); charges construction_elements. Throws
  /// FormatError.
  static LayerPtr<T> from_config(const LayerConfig& c, ElementBudget& budget) {
    return Pool2D<T>::template rebuild<MaxPool2D>(c, budget);
  }
  /// Elements the constructor allocates: the first pixel of each output's window.
  static std::uint64_t construction_elements(const SlidingWindow& window) {
    return static_cast<std::uint64_t>(window.output(window.input().channels).size());
  }

  /// y = the window maxima, C*OH*OW x batch; records where each came from.
  const Matrix<T>& forward(const Matrix<T>& x, Mode, Generator*) override {
    this->require_input(x);
    output_.resize(this->output_shape().size(), x.cols());
    argmax_.resize(output_.rows(), x.cols());
    for (Index n = 0; n < x.cols(); ++n) {
      output_.col(n).setConstant(-std::numeric_limits<T>::infinity());
      argmax_.col(n) = first_pixel_;
      // The NaN rule costs a branchy select; a (cheap, vectorized) check keeps it off the
      // common path.
      if (x.col(n).hasNaN()) {
        pool<true>(x.col(n).data(), output_.col(n).data(), argmax_.col(n).data());
      } else {
        pool<false>(x.col(n).data(), output_.col(n).data(), argmax_.col(n).data());
      }
    }
    return output_;
  }

  /// dx (C*H*W x batch; see the file comment), or an empty matrix when need_dx is false.
  const Matrix<T>& backward(const Matrix<T>& dy, bool need_dx) override {
    this->require_backward_shape(dy, output_);
    if (!need_dx) {
      dx_.resize(0, 0);
      return dx_;
    }
    dx_.setZero(this->input_shape().size(), dy.cols());
    for (Index n = 0; n < dy.cols(); ++n)
      for (Index o = 0; o < dy.rows(); ++o) dx_(argmax_(o, n), n) += dy(o, n);
    return dx_;
  }

  /// Row (in the input column) of each output's maximum, from the last forward.
  const Argmax& argmax() const { return argmax_; }

 private:
  // Runs along output rows (see for_each_run) rather than window by window, and selects by
  // arithmetic rather than by branches: which pixel wins is unpredictable on real data, and
  // consecutive outputs are independent, so their compare-and-selects overlap.
  template <bool WithNaN>
  void pool(const T* in, T* best, std::int32_t* at) const {
    const Index s = this->stride();
    this->for_each_run([&](Index out, Index pixel, Index count) {
      for (Index i = 0; i < count; ++i) {
        const Index p = pixel + i * s;
        const T v = in[p], current = best[out + i];
        const bool take = WithNaN ? (v > current) || std::isnan(v) : v > current;
        best[out + i] = WithNaN ? (take ? v : current) : std::max(current, v);
        const auto mask = -static_cast<std::int32_t>(take);  // all ones or zero
        at[out + i] += mask & (static_cast<std::int32_t>(p) - at[out + i]);
      }
    });
  }

  /// first_pixel_[o] = the first pixel of output o's window: its argmax until a pixel beats
  /// -inf (so a window of -inf values points at its first pixel, as in PyTorch).
  void first_pixels() {
    const ImageShape& in = this->input_shape();
    const ImageShape out = this->output_shape();
    const Index s = this->stride(), pad = this->padding();
    first_pixel_.resize(out.size());
    Index o = 0;
    for (Index c = 0; c < out.channels; ++c)
      for (Index oh = 0; oh < out.height; ++oh)
        for (Index ow = 0; ow < out.width; ++ow)
          first_pixel_(o++) = static_cast<std::int32_t>(
              c * in.spatial() + std::max<Index>(oh * s - pad, 0) * in.width +
              std::max<Index>(ow * s - pad, 0));
  }

  Eigen::Matrix<std::int32_t, Eigen::Dynamic, 1> first_pixel_;
  Matrix<T> output_, dx_;
  Argmax argmax_;  // 32 bits: an input column has fewer than 2^31 rows
};

/// Mean over each k x k window, padding counted as zeros (file comment).
template <class T>
class AvgPool2D : public Pool2D<T> {
 public:
  /// Windows of `kernel` x `kernel` over `input`; throws InvalidArgument naming AvgPool2D for a
  /// bad size, kernel, stride or padding.
  AvgPool2D(const ImageShape& input, Index kernel, const PoolOptions& options = {})
      : Pool2D<T>("AvgPool2D", input, kernel, options) {}

  /// The layer `c` describes (fields: see config()). Throws FormatError.
  static LayerPtr<T> from_config(const LayerConfig& c, ElementBudget& budget) {
    return Pool2D<T>::template rebuild<AvgPool2D>(c, budget);
  }
  /// Elements the constructor allocates: none (the buffers are sized at the first forward).
  static std::uint64_t construction_elements(const SlidingWindow&) { return 0; }

  /// y = the window sums / k^2, C*OH*OW x batch.
  const Matrix<T>& forward(const Matrix<T>& x, Mode, Generator*) override {
    this->require_input(x);
    output_.setZero(this->output_shape().size(), x.cols());
    const Index s = this->stride();
    for (Index n = 0; n < x.cols(); ++n) {
      const T* in = x.col(n).data();
      T* sum = output_.col(n).data();
      this->for_each_run([&](Index out, Index pixel, Index count) {
        for (Index i = 0; i < count; ++i) sum[out + i] += in[pixel + i * s];
      });
    }
    output_ *= inverse_area();
    return output_;
  }

  /// dx (C*H*W x batch; see the file comment), or an empty matrix when need_dx is false.
  const Matrix<T>& backward(const Matrix<T>& dy, bool need_dx) override {
    this->require_backward_shape(dy, output_);
    if (!need_dx) {
      dx_.resize(0, 0);
      return dx_;
    }
    share_ = dy * inverse_area();
    dx_.setZero(this->input_shape().size(), dy.cols());
    const Index s = this->stride();
    for (Index n = 0; n < dy.cols(); ++n) {
      const T* g = share_.col(n).data();
      T* dx = dx_.col(n).data();
      this->for_each_run([&](Index out, Index pixel, Index count) {
        for (Index i = 0; i < count; ++i) dx[pixel + i * s] += g[out + i];
      });
    }
    return dx_;
  }

 private:
  T inverse_area() const { return T(1) / T(this->kernel() * this->kernel()); }

  Matrix<T> output_, share_, dx_;
};

/// GlobalAvgPool<T>(ImageShape{C, H, W}): C*H*W -> C, the mean of each channel.
template <class T>
class GlobalAvgPool : public Layer<T> {
 public:
  /// The mean of each channel of `input`; throws InvalidArgument naming GlobalAvgPool for a
  /// non-positive extent.
  explicit GlobalAvgPool(const ImageShape& input) : input_(input) {
    detail::require_image_shape("GlobalAvgPool", input);
  }

  /// The layer `c` describes (channels, height, width); allocates nothing at construction.
  /// Throws FormatError.
  static LayerPtr<T> from_config(const LayerConfig& c, ElementBudget&) {
    return std::make_unique<GlobalAvgPool>(detail::config_image(c));
  }

  /// e.g. "GlobalAvgPool(64x7x7->64)".
  std::string name() const override {
    return detail::concat("GlobalAvgPool(", to_string(input_), "->", input_.channels, ")");
  }
  /// Kind "GlobalAvgPool": channels, height, width.
  LayerConfig config() const override {
    return {"GlobalAvgPool",
            {{"channels", double(input_.channels)},
             {"height", double(input_.height)},
             {"width", double(input_.width)}},
            {}};
  }
  /// C x H x W.
  const ImageShape& input_shape() const { return input_; }

  /// C*H*W.
  Index expected_input_rows() const override { return input_.size(); }
  /// C; throws InvalidArgument naming the layer unless input_rows = C*H*W.
  Index output_rows(Index input_rows) const override {
    detail::require_image_rows(name(), input_, input_rows);
    return input_.channels;
  }

  /// y[c] = mean of channel c, C x batch.
  const Matrix<T>& forward(const Matrix<T>& x, Mode, Generator*) override {
    if (x.rows() != input_.size()) detail::require_image_rows(name(), input_, x.rows());
    this->require_nonempty(x);
    output_.resize(input_.channels, x.cols());
    // A batch seen as H*W x (C * batch): column k is channel k % C of sample k / C, which is
    // also the column-major order of the C x batch output, so pooling is one column-wise mean.
    Eigen::Map<Matrix<T>>(output_.data(), 1, output_.size()).noalias() =
        planes(x.data(), x.cols()).colwise().sum() * (T(1) / T(input_.spatial()));
    return output_;
  }

  /// dx (C*H*W x batch; see the file comment), or an empty matrix when need_dx is false.
  const Matrix<T>& backward(const Matrix<T>& dy, bool need_dx) override {
    this->require_backward_shape(dy, output_);
    if (!need_dx) {
      dx_.resize(0, 0);
      return dx_;
    }
    dx_.resize(input_.size(), dy.cols());
    auto dx = planes(dx_.data(), dy.cols());
    const T scale = T(1) / T(input_.spatial());
    for (Index k = 0; k < dy.size(); ++k) dx.col(k).setConstant(dy.data()[k] * scale);
    return dx_;
  }

 private:
  Eigen::Map<const Matrix<T>> planes(const T* data, Index batch) const {
    return {data, input_.spatial(), input_.channels * batch};
  }
  Eigen::Map<Matrix<T>> planes(T* data, Index batch) const {
    return {data, input_.spatial(), input_.channels * batch};
  }

  ImageShape input_;
  Matrix<T> output_, dx_;
};

}  // namespace dropnet
