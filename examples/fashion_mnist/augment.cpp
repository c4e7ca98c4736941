#include "augment.hpp"

#include <dropnet/io/fashion_mnist.hpp>

namespace fmnist {

using dropnet::Index;
namespace fm = dropnet::fashion_mnist;

Augmentation::Augmentation(dropnet::Matrix<float>& images, dropnet::Vector<float> blank,
                           int max_shift, bool flip, dropnet::Generator gen)
    : images_(images),
      original_(images),
      blank_(std::move(blank)),
      max_shift_(max_shift),
      flip_(flip),
      gen_(gen) {}

void Augmentation::on_epoch_begin(dropnet::TrainingContext<float>&, int) {
  const auto span = static_cast<std::uint64_t>(2 * max_shift_ + 1);
  for (Index j = 0; j < images_.cols(); ++j) {
    const int dx = static_cast<int>(gen_.below(span)) - max_shift_;
    const int dy = static_cast<int>(gen_.below(span)) - max_shift_;
    const bool mirror = flip_ && gen_.below(2) == 1;
    transform(j, dx, dy, mirror);
  }
}

void Augmentation::on_train_end(dropnet::TrainingContext<float>&) { images_ = original_; }

/// out(r, c) = in(r - dy, c' - dx) with c' = c, or 27 - c when mirrored; blank outside.
void Augmentation::transform(Index column, int dx, int dy, bool mirror) {
  const Index h = fm::image_height, w = fm::image_width;
  auto in = original_.col(column);
  auto out = images_.col(column);
  for (Index r = 0; r < h; ++r) {
    const Index source_row = r - dy;
    for (Index c = 0; c < w; ++c) {
      const Index source_col = (mirror ? w - 1 - c : c) - dx;
      const Index pixel = r * w + c;
      const bool inside = source_row >= 0 && source_row < h && source_col >= 0 && source_col < w;
      out(pixel) = inside ? in(source_row * w + source_col) : blank_(pixel);
    }
  }
}

}  // namespace fmnist
