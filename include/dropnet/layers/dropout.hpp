#pragma once
// Dropout<T>: inverted dropout (Srivastava et al. 2014; PyTorch nn.Dropout).
//
//   train / mc_sample:  m_i ~ Bernoulli(1 - p),  y = x * m / (1 - p),  dx = dy * m / (1 - p)
//   eval:               y = x (the input itself), dx = dy
// Shapes: any features x batch; y has the shape of x. One mask entry per element, drawn from the
// Generator passed to forward (required in train and mc_sample modes, else InvalidArgument).
// Throws InvalidArgument naming the layer unless 0 <= p < 1. p is quantized to 2^-32 (see
// bernoulli_mask.hpp); the scale is exactly 1/(1 - p).

#include <memory>

#include "../simd/elementwise.hpp"
#include "dropout_base.hpp"

namespace dropnet {

/// Inverted dropout (Srivastava et al. 2014, PyTorch nn.Dropout): y = x m / (1 - p) with
/// m ~ Bernoulli(1 - p) per element in train and mc_sample modes, y = x in eval. Any shape.
template <class T>
class Dropout : public DropoutBase<T> {
 public:
  /// Drops each element with probability p; throws InvalidArgument naming the layer unless
  /// 0 <= p < 1.
  explicit Dropout(double p) : DropoutBase<T>("Dropout", p), keep_("Dropout", p) {}

  /// The layer `c` describes (field p); allocates nothing at construction. Throws FormatError.
  static LayerPtr<T> from_config(const LayerConfig& c, ElementBudget&) {
    return std::make_unique<Dropout>(c.number("p"));
  }

  /// The last mask, already scaled: entries are 0 or 1/(1 - p). Regenerated from its first
  /// block when the forward pass did not store it, so, like forward, not for two threads at once.
  const Matrix<T>& mask() const {
    if (!mask_stored_) regenerate_mask();
    mask_read_ = true;
    return mask_;
  }

 private:
  // The mask reaches memory only when the last one was read (by backward or mask()): a dropout
  // below a model's first trainable layer (on the input) never gets a backward pass, so after
  // its first batch its forward pass writes y alone, the mask compared and multiplied in the
  // registers the random words are made in (W2's 784 x 64 input on one thread: 15.0 -> 12.0 us
  // alone, 21 -> 14.4 us inside a training step; docs/performance.md, "Dropout masks").
  // A mask that is needed after all is regenerated from its first block, bit for bit.
  void sample_forward(const Matrix<T>& x, Generator& gen, Matrix<T>& y) override {
    mask_.resize(x.rows(), x.cols());
    y.resize(x.rows(), x.cols());
    mask_stored_ = mask_read_;
    mask_read_ = false;
    seed_ = gen.seed();
    first_ = gen.reserve_blocks(mask_blocks(x.size()));
    fill_bernoulli_product(gen, first_, keep_, scale(), T(0), x.data(), y.data(),
                           mask_stored_ ? mask_.data() : nullptr, x.rows(), x.cols());
  }

  void sample_backward(const Matrix<T>& dy, Matrix<T>& dx) const override {
    dx.resize(dy.rows(), dy.cols());
    simd::multiply(dy.data(), mask().data(), dx.data(), dx.size());
  }

  T scale() const { return static_cast<T>(1.0 / (1.0 - this->p())); }

  /// The last forward's mask into mask_ (sized there), from its first block.
  void regenerate_mask() const {
    fill_bernoulli(Generator(seed_), first_, keep_, scale(), T(0), mask_.data(), mask_.size());
    mask_stored_ = true;
  }

  KeepThreshold keep_;
  // The last mask, and where it comes from: block first_ on of the stream of seed_. mask() and
  // backward regenerate it on demand and read it (const: a cache of a value already drawn).
  mutable Matrix<T> mask_;
  mutable bool mask_stored_ = true;
  mutable bool mask_read_ = true;  // the first forward stores its mask
  std::uint64_t seed_ = 0, first_ = 0;
};

}  // namespace dropnet
