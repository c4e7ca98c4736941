#pragma once
// Flatten<T>(ImageShape{C, H, W}): feature maps -> the C*H*W features a Dense layer reads.
//
// A batch of images is already stored flat (C*H*W x batch, channel-major, the same order as
// PyTorch's nn.Flatten on NCHW), so Flatten is the identity: forward returns the input itself
// and backward returns dy itself, with no copy. Either reference stays valid as long as its
// source does. The layer exists to state the reshape in the model and to check the shape.
//
// Throws InvalidArgument naming the layer: a non-positive extent (at construction); an input
// whose rows are not C*H*W or an empty batch; backward before forward or a gradient whose shape
// differs from the last input's.

#include <memory>
#include <string>

#include "image_shape.hpp"
#include "layer.hpp"

namespace dropnet {

/// Feature maps to features: the identity on dropnet's layout (see the file comment).
template <class T>
class Flatten : public Layer<T> {
 public:
  /// Flattens images of shape `input`; throws InvalidArgument naming Flatten for a non-positive
  /// extent.
  explicit Flatten(const ImageShape& input) : input_(input) {
    detail::require_image_shape("Flatten", input);
  }

  /// The layer `c` describes (channels, height, width); allocates nothing at construction.
  /// Throws FormatError.
  static LayerPtr<T> from_config(const LayerConfig& c, ElementBudget&) {
    return std::make_unique<Flatten>(detail::config_image(c));
  }

  /// e.g. "Flatten(64x7x7->3136)".
  std::string name() const override {
    return detail::concat("Flatten(", to_string(input_), "->", input_.size(), ")");
  }
  /// Kind "Flatten": channels, height, width.
  LayerConfig config() const override {
    return {"Flatten",
            {{"channels", double(input_.channels)},
             {"height", double(input_.height)},
             {"width", double(input_.width)}},
            {}};
  }
  /// C x H x W.
  const ImageShape& input_shape() const { return input_; }

  /// C*H*W.
  Index expected_input_rows() const override { return input_.size(); }
  /// C*H*W; throws InvalidArgument naming the layer unless input_rows = C*H*W.
  Index output_rows(Index input_rows) const override {
    detail::require_image_rows(name(), input_, input_rows);
    return input_.size();
  }

  /// x itself (no copy).
  const Matrix<T>& forward(const Matrix<T>& x, Mode, Generator*) override {
    if (x.rows() != input_.size()) detail::require_image_rows(name(), input_, x.rows());
    this->require_nonempty(x);
    cols_ = x.cols();
    return x;
  }

  /// dy itself (no copy), or an empty matrix when need_dx is false.
  const Matrix<T>& backward(const Matrix<T>& dy, bool need_dx) override {
    if (cols_ == 0) throw InvalidArgument(name() + ": backward called before forward");
    if (dy.rows() != input_.size() || dy.cols() != cols_)
      detail::require_shape(name(), "output gradient", dy.rows(), dy.cols(), input_.size(), cols_);
    return need_dx ? dy : no_gradient_;
  }

 private:
  ImageShape input_;
  Index cols_ = 0;  // batch size of the last forward (0: none yet)
  Matrix<T> no_gradient_;
};

}  // namespace dropnet
