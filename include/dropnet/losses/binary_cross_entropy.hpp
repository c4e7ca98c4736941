#pragma once
// Binary cross-entropy from logits, PyTorch BCEWithLogitsLoss(reduction='mean'):
//   L = 1/(n m) sum max(z, 0) - z t + log(1 + exp(-|z|))    (stable for any |z|)
//   dL/dz = (sigmoid(z) - t) / (n m)
// Targets in [0, 1]; with labels (single output), t = label in {0, 1}.

#include "loss.hpp"

namespace dropnet {

/// Binary cross-entropy on logits, PyTorch's BCEWithLogitsLoss (formula in the file comment):
/// one sigmoid output per target, averaged over all elements. Targets must lie in [0, 1].
template <class T>
class BinaryCrossEntropyWithLogits : public Loss<T> {
 public:
  std::string name() const override { return "BinaryCrossEntropyWithLogits"; }

  T compute(const Matrix<T>& logits, const Matrix<T>& target, Matrix<T>* grad) const override {
    this->require_same_shape(logits, target);
    this->check((target.array() >= T(0)).all() && (target.array() <= T(1)).all(),
                    "targets must lie in [0, 1]");
    const T count = T(logits.size());
    const auto z = logits.array();
    if (grad) *grad = (z.logistic() - target.array()) / count;
    return (z.max(T(0)) - z * target.array() + (-z.abs()).exp().log1p()).sum() / count;
  }

  T compute(const Matrix<T>& logits, const Labels& labels, Matrix<T>* grad) const override {
    this->check(logits.rows() == 1, "labels need a single output row, got ",
                    logits.rows());
    this->require_labels(logits, labels, 2);
    return compute(logits, Matrix<T>(labels.cast<T>().transpose()), grad);
  }

  /// Targets in [0, 1].
  void require_targets(const Matrix<T>& target, const std::string& where) const override {
    this->require_targets_where(target, where, "in [0, 1]",
                                [](T t) { return t >= T(0) && t <= T(1); });
  }
  using Loss<T>::require_targets;

 protected:
  T decision_threshold() const override { return T(0); }  // logit 0 = probability 0.5
};

}  // namespace dropnet
