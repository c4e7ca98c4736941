#pragma once
// Data augmentation for a dense network: random translations (and horizontal flips) of the
// 28x28 training images, drawn anew every epoch. The notebook names augmentation as the other
// regularizer to reach for (section 4.3); a dense layer is not translation-invariant, so
// shifted copies teach it what a convolution would have known.
//
// fit reads the training matrix batch by batch, so rewriting it in on_epoch_begin gives every
// epoch new images; on_train_end puts the originals back.

#include <dropnet/core/generator.hpp>
#include <dropnet/core/types.hpp>
#include <dropnet/training/callback.hpp>

namespace fmnist {

class Augmentation : public dropnet::Callback<float> {
 public:
  /// `images`: 784 x N, normalized, rewritten each epoch (it must outlive training).
  /// `blank`: what an empty pixel is after normalization, for the pixels shifted in.
  /// Each image moves by dx, dy uniform in [-max_shift, max_shift] and, if `flip`, is mirrored
  /// left-right with probability 1/2. Draws come from `gen`.
  Augmentation(dropnet::Matrix<float>& images, dropnet::Vector<float> blank, int max_shift,
               bool flip, dropnet::Generator gen);

  void on_epoch_begin(dropnet::TrainingContext<float>& context, int epoch) override;
  void on_train_end(dropnet::TrainingContext<float>& context) override;

 private:
  void transform(dropnet::Index column, int dx, int dy, bool mirror);

  dropnet::Matrix<float>& images_;
  dropnet::Matrix<float> original_;
  dropnet::Vector<float> blank_;
  int max_shift_;
  bool flip_;
  dropnet::Generator gen_;
};

}  // namespace fmnist
