#pragma once
// Conv2D<T, Activation>: 2-D convolution (cross-correlation, as in PyTorch and Keras) with fused
// bias and activation.
//
//   x: C*H*W x batch, y: O*OH*OW x batch (ImageShape layout), W: O x C*k*k, b: O
//   forward:  Z[o, oh, ow] = b[o] + sum_{c,ki,kj} W[o, (c*k + ki)*k + kj]
//                                   * xpad[c, oh*stride + ki, ow*stride + kj],   Y = f(Z)
//   backward: dZ = dY * f'(Z),  dW = dZ (x) xpad (+ penalty gradient),  db = sum dZ,
//             dx = the transposed convolution of dZ with W
// (xpad: x zero-padded by `padding`; OH, OW: SlidingWindow). He-normal init by default for the
// ReLU family (fan_in = C*k*k, fan_out = O*k*k), bias zero.
//
// Throws InvalidArgument naming the layer: a non-positive size, kernel or stride, a negative
// padding, a kernel larger than the padded input (at construction); an input whose rows are
// not C*H*W or an empty batch (forward); backward before forward or a gradient of the wrong
// shape.
//
//   Conv2D<float, ReLU>(ImageShape{1, 28, 28}, 32, 3, gen, ConvOptions().padding(1))
//
// Implementation: im2col + GEMM, one sample at a time. The patch matrix is built transposed,
// cols (OH*OW x C*k*k), so that Z_n = cols W^T (OH*OW x O, column-major) is already the
// channel-major output column of sample n: the GEMM writes the result in place, with no
// transpose. Per sample:
//   Z_n = cols_n W^T + 1 b^T;   dW += dZ_n^T cols_n;   db += dZ_n^T 1;   dcols = dZ_n W,
//   dx_n = col2im(dcols) (each patch entry added back to the pixel it was copied from).
// One wide GEMM over the whole batch's patches is slower on 28x28 inputs (its result interleaves
// the samples and needs a copy into this layout, and its patches leave the cache):
// bench_conv's conv/forward_vs_batched_gemm. Backward rebuilds cols_n rather than keeping the
// whole batch's: one sample's patches stay in L2, and rebuilding costs about a tenth of the
// GEMMs. A 1x1, stride 1, unpadded convolution skips im2col (the input column itself is cols),
// and without an activation Z is the output (no copy). Buffers are sized at construction or at
// the first forward of a batch size; the padding entries of cols are zeroed once and never
// written again. The three products run through Gemm (core/gemm.hpp) on Maps of these buffers,
// so a training step allocates nothing, and Z_n starts as the bias so the GEMM adds onto it.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>

#include "../activations/activation.hpp"
#include "../core/gemm.hpp"
#include "affine_layer.hpp"
#include "dense.hpp"
#include "image_shape.hpp"
#include "initializers.hpp"
#include "layer.hpp"

namespace dropnet {

/// Conv2D's options besides the shapes: ConvOptions().stride(2).padding(1).init(Init::he_uniform).
class ConvOptions {
 public:
  /// Step between output pixels, in input pixels (default 1).
  ConvOptions& stride(Index s) {
    stride_ = s;
    return *this;
  }
  /// Zero pixels added on each side of the input (default 0; (k - 1) / 2 keeps H x W at stride 1).
  ConvOptions& padding(Index p) {
    padding_ = p;
    return *this;
  }
  /// The weights' initializer (default: the activation's, see init()).
  ConvOptions& init(Init i) {
    init_ = i;
    return *this;
  }
  /// The stride set (1 unless set).
  Index stride() const { return stride_; }
  /// The padding set (0 unless set).
  Index padding() const { return padding_; }
  /// Unset: the activation's usual initializer (default_init in dense.hpp).
  std::optional<Init> init() const { return init_; }

 private:
  Index stride_ = 1;
  Index padding_ = 0;
  std::optional<Init> init_;
};

/// 2-D convolution with fused bias and activation; see the file comment for the formulas.
template <class T, class Activation = Identity>
class Conv2D : public AffineLayer<T, Activation, Conv2D<T, Activation>, false> {
  using Base = AffineLayer<T, Activation, Conv2D<T, Activation>, false>;
  using Base::activation_, Base::bias_, Base::bias_grad_, Base::weight_, Base::weight_grad_;

 public:
  /// `out_channels` filters of `kernel` x `kernel` over `input`, weights drawn from `gen` (He
  /// normal for the ReLU family unless options.init() says otherwise), bias zero. Throws
  /// InvalidArgument naming Conv2D for a bad size, kernel, stride or padding.
  Conv2D(const ImageShape& input, Index out_channels, Index kernel, Generator& gen,
         const ConvOptions& options = {}, Activation activation = {})
      : Conv2D(SlidingWindow("Conv2D", input, kernel, options.stride(), options.padding()),
               out_channels, gen, options.init().value_or(default_init<Activation>()),
               activation) {}

  /// The layer `c` describes (fields: see config()), for the activation it names; charges what
  /// the constructor allocates (construction_elements) to `budget`. Throws FormatError.
  static LayerPtr<T> from_config(const LayerConfig& c, ElementBudget& budget) {
    const ImageShape input = detail::config_image(c);
    const Index out = c.integer("out_channels", 1, detail::max_layer_size);
    const Index kernel = c.integer("kernel", 1, detail::max_layer_size);
    const Index stride = c.integer("stride", 1, detail::max_layer_size);
    const Index padding = c.integer("padding", 0, detail::max_layer_size);
    const SlidingWindow window("Conv2D", input, kernel, stride, padding);  // validates, no alloc
    // Every term of construction_elements, checked for overflow before it is computed.
    const auto patch = static_cast<Index>(detail::checked_product(c, {input.channels, kernel, kernel}));
    detail::checked_product(c, {2, out, patch + 1});
    detail::checked_product(c, {2, window.out_height(), window.out_width(), patch});
    return detail::rebuild_affine<T>(
        c, budget, construction_elements(window, out),
        [&](auto activation, Init init, Generator& gen) {
          return std::make_unique<Conv2D<T, decltype(activation)>>(
              input, out, kernel, gen, ConvOptions().stride(stride).padding(padding).init(init),
              activation);
        });
  }

  /// Elements the constructor allocates: W, dW, b, db, and the patch matrix cols and its
  /// gradient (OH*OW x C*k*k each) unless the convolution is pointwise.
  static std::uint64_t construction_elements(const SlidingWindow& window, Index out_channels) {
    const Index patch = patch_size(window);
    const std::uint64_t patches =
        is_pointwise(window) ? 0 : 2 * static_cast<std::uint64_t>(window.out_spatial()) * patch;
    return affine_elements(out_channels, patch) + patches;
  }

  /// e.g. "Conv2D(1x28x28->32x28x28, k=3, s=1, p=1, ReLU)".
  std::string name() const override {
    return detail::concat("Conv2D(", to_string(input_shape()), "->", to_string(output_shape()),
                          ", k=", kernel(), ", s=", stride(), ", p=", padding(), ", ",
                          activation_name(activation_), ")");
  }

  /// C x H x W.
  const ImageShape& input_shape() const { return window_.input(); }
  /// O x OH x OW.
  ImageShape output_shape() const { return window_.output(out_channels()); }
  /// C.
  Index in_channels() const { return input_shape().channels; }
  /// O.
  Index out_channels() const { return weight_.rows(); }
  /// k.
  Index kernel() const { return window_.kernel(); }
  /// The stride, in input pixels.
  Index stride() const { return window_.stride(); }
  /// The zero padding on each side.
  Index padding() const { return window_.padding(); }

  /// C*H*W.
  Index expected_input_rows() const override { return input_shape().size(); }
  /// O*OH*OW; throws InvalidArgument naming the layer unless input_rows = C*H*W.
  Index output_rows(Index input_rows) const override {
    detail::require_image_rows(name(), input_shape(), input_rows);
    return output_shape().size();
  }

  /// Y = f(conv(x, W) + b), O*OH*OW x batch; keeps a pointer to x for backward. Throws
  /// InvalidArgument naming the layer unless x has C*H*W rows and at least one column.
  const Matrix<T>& forward(const Matrix<T>& x, Mode, Generator*) override {
    if (x.rows() != input_shape().size())
      detail::require_image_rows(name(), input_shape(), x.rows());
    this->require_nonempty(x);
    input_ = &x;
    Matrix<T>& z = linear ? output_ : pre_activation_;  // without an activation, Z is Y
    z.resize(output_shape().size(), x.cols());
    for (Index n = 0; n < x.cols(); ++n) {
      auto z_n = by_channel(z.col(n).data());
      z_n.rowwise() = bias_.transpose();  // the GEMM adds to it: one pass over Z, not two
      forward_gemm_.template multiply<Op::none, Op::transpose>(columns(x.col(n).data()), weight_,
                                                               z_n, T(1));
    }
    if constexpr (!linear) activation_.forward(pre_activation_, output_);
    return output_;
  }

  /// Writes dW (with the penalty's gradient) and db; returns dx (C*H*W x batch), or an empty
  /// matrix when need_dx is false. Throws InvalidArgument before a forward or for a dy whose
  /// shape is not the output's.
  const Matrix<T>& backward(const Matrix<T>& dy, bool need_dx) override {
    this->require_backward_shape(dy, output_);
    const Matrix<T>* dz = &dy;
    if constexpr (!linear) {
      activation_.backward(pre_activation_, output_, dy, dz_);
      dz = &dz_;
    }
    weight_grad_.setZero();
    bias_grad_.setZero();
    if (need_dx) {
      dx_.resize(input_shape().size(), dy.cols());
    } else {
      dx_.resize(0, 0);
    }
    for (Index n = 0; n < dy.cols(); ++n) {
      const auto dz_n = by_channel(dz->col(n).data());
      weight_gemm_.template multiply<Op::transpose, Op::none>(
          dz_n, columns(input_->col(n).data()), weight_grad_, T(1));
      bias_grad_.noalias() += dz_n.colwise().sum().transpose();
      if (need_dx) input_gradient(dz_n, dx_.col(n).data());
    }
    this->add_penalty_gradient();
    return dx_;
  }

  /// Kind "Conv2D": channels, height, width, out_channels, kernel, stride, padding, then
  /// AffineLayer's fields (without max_norm). W is O x C*k*k; column (c*k + ki)*k + kj holds tap
  /// (ki, kj) of input channel c (PyTorch's [O, C, k, k] weight is this matrix stored row-major).
  LayerConfig config() const override {
    return this->affine_config("Conv2D", {{"channels", double(in_channels())},
                                          {"height", double(input_shape().height)},
                                          {"width", double(input_shape().width)},
                                          {"out_channels", double(out_channels())},
                                          {"kernel", double(kernel())},
                                          {"stride", double(stride())},
                                          {"padding", double(padding())}});
  }

 private:
  Conv2D(const SlidingWindow& window, Index out_channels, Generator& gen, Init init,
         Activation activation)
      : Base(detail::require_out_channels(out_channels), patch_size(window), init, activation),
        window_(window) {
    initialize_weight(gen);
    if (!pointwise()) {
      cols_ = Matrix<T>::Zero(window_.out_spatial(), patch_size());
      dcols_.resize(window_.out_spatial(), patch_size());
    }
  }

  static Index patch_size(const SlidingWindow& window) {
    return window.input().channels * window.kernel() * window.kernel();
  }
  Index patch_size() const { return patch_size(window_); }

  /// A 1x1, stride-1, unpadded convolution: a sample's column, seen as H*W x C, is its own cols.
  static bool is_pointwise(const SlidingWindow& window) {
    return window.kernel() == 1 && window.stride() == 1 && window.padding() == 0;
  }
  bool pointwise() const { return is_pointwise(window_); }

  // initialize() takes the fans from the matrix (fan_out = O); a convolution's fan_out is O*k*k
  // (PyTorch, Keras). Every initializer draws a fixed distribution scaled by sqrt(variance), so
  // rescaling by the ratio gives exactly the convolution's variance.
  void initialize_weight(Generator& gen) {
    const Init init = this->init_;
    initialize(weight_, init, gen);
    const double drawn = init_variance(init, weight_.cols(), weight_.rows());
    const double wanted =
        init_variance(init, weight_.cols(), weight_.rows() * kernel() * kernel());
    if (drawn > 0) weight_ *= static_cast<T>(std::sqrt(wanted / drawn));
  }

  static constexpr bool linear = std::is_same_v<Activation, Identity>;

  /// A sample's output column, seen as OH*OW x O (column o = output channel o).
  Eigen::Map<Matrix<T>> by_channel(T* column) const {
    return {column, window_.out_spatial(), out_channels()};
  }
  Eigen::Map<const Matrix<T>> by_channel(const T* column) const {
    return {column, window_.out_spatial(), out_channels()};
  }

  /// The sample's patch matrix cols (OH*OW x C*k*k), built in cols_ unless pointwise.
  Eigen::Map<const Matrix<T>> columns(const T* x) {
    if (pointwise()) return {x, input_shape().spatial(), in_channels()};
    for_each_run([&](Index entry, Index in, Index count) {
      T* dst = cols_.data() + entry;
      const T* src = x + in;
      if (stride() == 1) {
        for (Index i = 0; i < count; ++i) dst[i] = src[i];
      } else {
        for (Index i = 0; i < count; ++i) dst[i] = src[i * stride()];
      }
    });
    return {cols_.data(), cols_.rows(), cols_.cols()};
  }

  /// dx (one sample's column) = col2im(dz W): the transposed convolution.
  void input_gradient(const Eigen::Map<const Matrix<T>>& dz, T* dx) {
    if (pointwise()) {
      Eigen::Map<Matrix<T>> dx_by_channel(dx, input_shape().spatial(), in_channels());
      input_gemm_.template multiply<Op::none, Op::none>(dz, weight_, dx_by_channel, T(0));
      return;
    }
    input_gemm_.template multiply<Op::none, Op::none>(dz, weight_, dcols_);
    std::fill(dx, dx + input_shape().size(), T(0));
    for_each_run([&](Index entry, Index in, Index count) {
      const T* src = dcols_.data() + entry;
      T* dst = dx + in;
      if (stride() == 1) {
        for (Index i = 0; i < count; ++i) dst[i] += src[i];
      } else {
        for (Index i = 0; i < count; ++i) dst[i * stride()] += src[i];
      }
    });
  }

  /// SlidingWindow::for_each_run over every input channel: run(entry, in, count) where cols
  /// entries [entry, entry + count) (column-major offsets) read the sample's pixels in,
  /// in + stride, ...; column c*k*k + tap of cols holds channel c's tap.
  template <class Run>
  void for_each_run(Run run) const {
    const Index taps = kernel() * kernel(), out_spatial = window_.out_spatial();
    const Index plane = input_shape().spatial();
    for (Index c = 0; c < in_channels(); ++c)
      window_.for_each_run([&](Index tap, Index out, Index in, Index count) {
        run((c * taps + tap) * out_spatial + out, c * plane + in, count);
      });
  }

  SlidingWindow window_;

  const Matrix<T>* input_ = nullptr;             // owned by the previous layer or by Sequential
  Matrix<T> cols_, dcols_;                       // one sample's patches and their gradient
  Gemm<T> forward_gemm_, weight_gemm_, input_gemm_;  // Z_n = cols W^T, dW += dZ_n^T cols, dcols
  Matrix<T> pre_activation_, output_, dz_, dx_;  // pre_activation_, dz_: unused when linear
};

}  // namespace dropnet
