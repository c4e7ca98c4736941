#pragma once
// Binary cross-entropy, from logits and from probabilities.
//
// BinaryCrossEntropyWithLogits, PyTorch BCEWithLogitsLoss(reduction='mean'):
//   L = 1/(n m) sum max(z, 0) - z t + log(1 + exp(-|z|))    (stable for any |z|)
//   dL/dz = (sigmoid(z) - t) / (n m)
// BinaryCrossEntropy, PyTorch BCELoss(reduction='mean'), on probabilities p (after a Sigmoid):
//   L = -1/(n m) sum t max(log p, -100) + (1 - t) max(log(1 - p), -100)
//   dL/dp = (p - t) / max(p (1 - p), 1e-12) / (n m)    (1e-12 rounded to float, as PyTorch)
// PyTorch clamps each log at -100 so that p = 0 or 1 gives a finite loss (100 per element at
// worst), and bounds the gradient's denominator by 1e-12; both are copied here.
// Prefer the logits form for training: it is exact where p saturates.
// Targets in [0, 1]; with labels (single output), t = label in {0, 1}.

#include "loss.hpp"

namespace dropnet {

/// What both binary cross-entropies share: labels in {0, 1} for a single output row (as a 1 x n
/// target) and targets in [0, 1].
template <class T>
class BinaryLoss : public Loss<T> {
 public:
  using Loss<T>::compute;
  /// Labels in {0, 1} for a single output row: the loss of the 1 x n target they form.
  T compute(const Matrix<T>& output, const Labels& labels, Matrix<T>* grad) const override {
    this->check(output.rows() == 1, "labels need a single output row, got ", output.rows());
    this->require_labels(output, labels, 2);
    return this->compute(output, Matrix<T>(labels.cast<T>().transpose()), grad);
  }

  /// Targets in [0, 1].
  void require_targets(const Matrix<T>& target, const std::string& where) const override {
    this->require_targets_where(target, where, "in [0, 1]",
                                [](T t) { return t >= T(0) && t <= T(1); });
  }
  using Loss<T>::require_targets;

 protected:
  /// Throws unless `target` has the output's shape and lies in [0, 1].
  void require_binary_target(const Matrix<T>& output, const Matrix<T>& target) const {
    this->require_same_shape(output, target);
    this->check((target.array() >= T(0)).all() && (target.array() <= T(1)).all(),
                "targets must lie in [0, 1]");
  }
};

/// Binary cross-entropy on logits, PyTorch BCEWithLogitsLoss (file comment).
template <class T>
class BinaryCrossEntropyWithLogits : public BinaryLoss<T> {
 public:
  std::string name() const override { return "BinaryCrossEntropyWithLogits"; }

  T compute(const Matrix<T>& logits, const Matrix<T>& target, Matrix<T>* grad) const override {
    this->require_binary_target(logits, target);
    const T count = T(logits.size());
    const auto z = logits.array();
    if (grad) *grad = (z.logistic() - target.array()) / count;
    return (z.max(T(0)) - z * target.array() + (-z.abs()).exp().log1p()).sum() / count;
  }
  using BinaryLoss<T>::compute;

 protected:
  T decision_threshold() const override { return T(0); }  // logit 0 = probability 0.5
};

/// Binary cross-entropy on probabilities in [0, 1], PyTorch BCELoss (file comment).
template <class T>
class BinaryCrossEntropy : public BinaryLoss<T> {
 public:
  /// "BinaryCrossEntropy".
  std::string name() const override { return "BinaryCrossEntropy"; }

  /// Mean loss; throws InvalidArgument for a shape mismatch, a target or probability outside
  /// [0, 1].
  T compute(const Matrix<T>& p, const Matrix<T>& target, Matrix<T>* grad) const override {
    this->require_binary_target(p, target);
    this->check((p.array() >= T(0)).all() && (p.array() <= T(1)).all(),
                "probabilities must lie in [0, 1] (use BinaryCrossEntropyWithLogits on logits)");
    const T count = T(p.size());
    const auto t = target.array();
    const auto x = p.array();
    if (grad) *grad = (x - t) / (x * (T(1) - x)).max(T(1e-12f)) / count;  // torch: a float 1e-12
    const auto log_p = x.log().max(T(-100));
    const auto log_q = (T(1) - x).log().max(T(-100));
    return -(t * log_p + (T(1) - t) * log_q).sum() / count;
  }
  using BinaryLoss<T>::compute;
};

}  // namespace dropnet
