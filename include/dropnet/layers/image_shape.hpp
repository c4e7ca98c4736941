#pragma once
// Image geometry shared by the convolution and pooling layers.
//
// ImageShape{channels, height, width} describes one sample's column of a batch: C x H x W
// flattened channel-major, channel c in rows [c*H*W, (c+1)*H*W), row-major inside a channel, so
// pixel (c, h, w) is row c*H*W + h*W + w. SpatialDropout(p, C) and BatchNorm(C, H*W) read the
// same layout.
//
// SlidingWindow is a square k x k window moved by `stride` over the input zero-padded by
// `padding` on every side (PyTorch's floor mode):
//   out_height = floor((H + 2 padding - k) / stride) + 1     (likewise out_width)
//   output (oh, ow), tap (ki, kj) reads input (oh*stride - padding + ki, ow*stride - padding + kj)
// Its constructor throws InvalidArgument naming the layer for a non-positive size, kernel or
// stride, a negative padding, and a window larger than the padded input.

#include <algorithm>
#include <string>

#include "../core/error.hpp"
#include "../core/types.hpp"

namespace dropnet {

/// One sample's feature maps: `channels` maps of height x width, stored channel-major in a
/// column of C*H*W rows (pixel (c, h, w) at row c*H*W + h*W + w).
struct ImageShape {
  Index channels = 0;  ///< C
  Index height = 0;    ///< H
  Index width = 0;     ///< W

  /// H*W, the pixels of one channel.
  Index spatial() const { return height * width; }
  /// C*H*W, the rows of a sample's column.
  Index size() const { return channels * height * width; }
  /// Same channels, height and width.
  friend bool operator==(const ImageShape& a, const ImageShape& b) {
    return a.channels == b.channels && a.height == b.height && a.width == b.width;
  }
  /// Not operator==.
  friend bool operator!=(const ImageShape& a, const ImageShape& b) { return !(a == b); }
};

/// "CxHxW", e.g. "32x14x14".
inline std::string to_string(const ImageShape& s) {
  return detail::concat(s.channels, "x", s.height, "x", s.width);
}

namespace detail {

/// Throws InvalidArgument("<layer>: ...") unless every extent of `s` is positive.
inline void require_image_shape(const std::string& layer, const ImageShape& s) {
  require(s.channels > 0 && s.height > 0 && s.width > 0, layer,
          "input shape must have positive channels, height and width, got ", to_string(s));
}

/// Rows of an input batch of images of shape `s`; throws naming `layer` unless they match.
inline void require_image_rows(const std::string& layer, const ImageShape& s, Index rows) {
  if (rows != s.size())
    throw InvalidArgument(concat(layer, ": input has ", rows, " rows, expected ", s.size(), " (",
                                 to_string(s), " flattened channel-major)"));
}

}  // namespace detail

/// Where a k x k window lands, for every output pixel, on a padded input (see the file comment).
class SlidingWindow {
 public:
  /// The window of a layer (`layer` names it in errors) over `input`; throws InvalidArgument
  /// for a non-positive size, kernel or stride, a negative padding, or a kernel larger than the
  /// padded input.
  SlidingWindow(const std::string& layer, const ImageShape& input, Index kernel, Index stride,
                Index padding)
      : input_(input), kernel_(kernel), stride_(stride), padding_(padding) {
    detail::require_image_shape(layer, input);
    detail::require(kernel > 0, layer, "kernel must be > 0, got ", kernel);
    detail::require(stride > 0, layer, "stride must be > 0, got ", stride);
    detail::require(padding >= 0, layer, "padding must be >= 0, got ", padding);
    detail::require(kernel <= input.height + 2 * padding && kernel <= input.width + 2 * padding,
                    layer, "kernel ", kernel, " does not fit the input ", to_string(input),
                    " padded by ", padding,
                    ": expected kernel <= ", std::min(input.height, input.width) + 2 * padding);
    out_height_ = (input.height + 2 * padding - kernel) / stride + 1;
    out_width_ = (input.width + 2 * padding - kernel) / stride + 1;
  }

  /// The (unpadded) input image.
  const ImageShape& input() const { return input_; }
  /// k, the window's side.
  Index kernel() const { return kernel_; }
  /// Step between windows, in pixels.
  Index stride() const { return stride_; }
  /// Zero pixels added on each side of the input.
  Index padding() const { return padding_; }
  /// OH = floor((H + 2 padding - k) / stride) + 1.
  Index out_height() const { return out_height_; }
  /// OW = floor((W + 2 padding - k) / stride) + 1.
  Index out_width() const { return out_width_; }
  /// OH*OW.
  Index out_spatial() const { return out_height_ * out_width_; }
  /// The output image with `channels` channels.
  ImageShape output(Index channels) const { return {channels, out_height_, out_width_}; }

  /// Half-open range [first, last) of the outputs o (out of `out_extent`) whose tap `offset`
  /// reads inside the input: 0 <= o*stride - padding + offset < in_extent. Outside the range
  /// the tap reads padding. Rows use (height, out_height), columns (width, out_width).
  struct Range {
    Index first;  ///< first output in the range
    Index last;   ///< one past the last
  };
  /// See Range.
  Range inside(Index offset, Index in_extent, Index out_extent) const {
    const Index low = padding_ - offset;                   // o*stride >= low
    const Index high = in_extent - 1 + padding_ - offset;  // o*stride <= high
    const Index first = std::min(out_extent, low > 0 ? (low + stride_ - 1) / stride_ : Index{0});
    const Index last = high < 0 ? 0 : std::min(out_extent, high / stride_ + 1);
    return {first, std::max(first, last)};
  }
  /// The output rows whose tap row `ki` reads an image row.
  Range rows_inside(Index ki) const { return inside(ki, input_.height, out_height_); }
  /// The output columns whose tap column `kj` reads an image column.
  Range cols_inside(Index kj) const { return inside(kj, input_.width, out_width_); }

  /// Visits one channel's taps as runs along output rows, the unit every sliding-window kernel
  /// (im2col, col2im, pooling) loops over: calls run(tap, out, in, count) for each tap
  /// (ki, kj), tap = ki*k + kj in increasing order, and each output row, where outputs
  /// [out, out + count) of the OH*OW map (row-major) read the input pixels in, in + stride, ...,
  /// in + (count-1)*stride of the H*W plane. Outputs in no run for a tap read padding there.
  /// For a given output, taps come in row-major window order.
  template <class Run>
  void for_each_run(Run run) const {
    for (Index ki = 0; ki < kernel_; ++ki) {
      const Range rows = rows_inside(ki);
      for (Index kj = 0; kj < kernel_; ++kj) {
        const Range cols = cols_inside(kj);
        const Index count = cols.last - cols.first;
        if (count <= 0) continue;
        const Index w = cols.first * stride_ - padding_ + kj;
        for (Index oh = rows.first; oh < rows.last; ++oh) {
          const Index h = oh * stride_ - padding_ + ki;
          run(ki * kernel_ + kj, oh * out_width_ + cols.first, h * input_.width + w, count);
        }
      }
    }
  }

 private:
  ImageShape input_;
  Index kernel_, stride_, padding_;
  Index out_height_ = 0, out_width_ = 0;
};

}  // namespace dropnet
