#pragma once
// Softmax cross-entropy fused with the logits, PyTorch CrossEntropyLoss(label_smoothing=eps):
//   q   = (1 - eps) t + eps / K               t: one-hot label or a probability column
//   L   = 1/m sum_j [ logsumexp(z_j) - q_j . z_j ]        (sum q = 1)
//   dL/dz = (softmax(z) - q) / m
// logsumexp subtracts the column max, so logits of any size are safe.

#include <cmath>

#include "../simd/elementwise.hpp"
#include "loss.hpp"

namespace dropnet {

/// Softmax cross-entropy on logits (classes x batch, at least 2 classes), PyTorch's
/// CrossEntropyLoss with label smoothing (formula in the file comment), averaged over samples.
template <class T>
class SoftmaxCrossEntropy : public Loss<T> {
 public:
  /// Cross-entropy with targets smoothed towards uniform by `label_smoothing` (eps); throws
  /// InvalidArgument unless eps is in [0, 1].
  explicit SoftmaxCrossEntropy(T label_smoothing = T(0)) : smoothing_(label_smoothing) {
    detail::require(std::isfinite(static_cast<double>(smoothing_)) && smoothing_ >= T(0) &&
                        smoothing_ <= T(1),
                    "SoftmaxCrossEntropy", "label_smoothing must be in [0, 1], got ", smoothing_);
  }

  std::string name() const override { return "SoftmaxCrossEntropy"; }
  /// eps, the label-smoothing weight.
  T label_smoothing() const { return smoothing_; }

  T compute(const Matrix<T>& logits, const Labels& labels, Matrix<T>* grad) const override {
    this->check(logits.rows() >= 2, "needs at least 2 classes, got ", logits.rows());
    this->require_labels(logits, labels, logits.rows());
    return accumulate(logits, grad, [&](Index j, Index i) {
      return (i == labels(j) ? T(1) - smoothing_ : T(0)) + smoothing_ / T(logits.rows());
    });
  }

  T compute(const Matrix<T>& logits, const Matrix<T>& target, Matrix<T>* grad) const override {
    this->check(logits.rows() >= 2, "needs at least 2 classes, got ", logits.rows());
    this->require_same_shape(logits, target);
    return accumulate(logits, grad, [&](Index j, Index i) {
      return (T(1) - smoothing_) * target(i, j) + smoothing_ / T(logits.rows());
    });
  }

  /// Probability targets: finite and >= 0.
  void require_targets(const Matrix<T>& target, const std::string& where) const override {
    this->require_targets_where(target, where, "a finite probability >= 0",
                                [](T t) { return std::isfinite(t) && t >= T(0); });
  }
  using Loss<T>::require_targets;

 private:
  /// Loss (and gradient) column by column: max, log-sum-exp, q . z. `q(j, i)` is the smoothed
  /// target of class i in column j.
  template <class Target>
  T accumulate(const Matrix<T>& logits, Matrix<T>* grad, Target q) const {
    if (grad) return accumulate_with_gradient(logits, *grad, q);
    T total = T(0);
    for (Index j = 0; j < logits.cols(); ++j) {
      const auto z = logits.col(j);
      const T max = z.maxCoeff();
      total += max + std::log((z.array() - max).exp().sum()) - target_dot(z, j, q);
    }
    return total / T(logits.cols());
  }

  /// The same with dL/dz = (softmax(z) - q) / m. The exponentials run over the whole matrix at
  /// once, in `grad` itself: a column has only K (often 10) entries, too few for SIMD packets.
  template <class Target>
  T accumulate_with_gradient(const Matrix<T>& logits, Matrix<T>& grad, Target q) const {
    const Index classes = logits.rows();
    const T inv_batch = T(1) / T(logits.cols());
    grad.resize(classes, logits.cols());
    for (Index j = 0; j < logits.cols(); ++j)
      grad.col(j).array() = logits.col(j).array() - logits.col(j).maxCoeff();
    simd::exponential(grad.data(), grad.data(), grad.size());
    T total = T(0);
    for (Index j = 0; j < logits.cols(); ++j) {
      const T sum = grad.col(j).sum();
      // The max again (K comparisons) rather than scratch state: compute() stays const and
      // safe to share between threads.
      total += logits.col(j).maxCoeff() + std::log(sum) - target_dot(logits.col(j), j, q);
      const T scale = inv_batch / sum;
      for (Index i = 0; i < classes; ++i) grad(i, j) = grad(i, j) * scale - q(j, i) * inv_batch;
    }
    return total * inv_batch;
  }

  template <class Column, class Target>
  static T target_dot(const Column& z, Index j, Target q) {
    T dot = T(0);
    for (Index i = 0; i < z.size(); ++i) dot += q(j, i) * z(i);
    return dot;
  }

  T smoothing_;
};

}  // namespace dropnet
