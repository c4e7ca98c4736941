#pragma once
// Softmax cross-entropy fused with the logits, PyTorch CrossEntropyLoss(label_smoothing=eps):
//   q   = (1 - eps) t + eps / K               t: one-hot label or a probability column
//   L   = 1/m sum_j [ logsumexp(z_j) - q_j . z_j ]        (sum q = 1)
//   dL/dz = (softmax(z) - q) / m
// logsumexp subtracts the column max, so logits of any size are safe.

#include <cmath>

#include "loss.hpp"

namespace dropnet {

template <class T>
class SoftmaxCrossEntropy : public Loss<T> {
 public:
  explicit SoftmaxCrossEntropy(T label_smoothing = T(0)) : smoothing_(label_smoothing) {
    detail::require(std::isfinite(static_cast<double>(smoothing_)) && smoothing_ >= T(0) &&
                        smoothing_ <= T(1),
                    "SoftmaxCrossEntropy", "label_smoothing must be in [0, 1], got ", smoothing_);
  }

  std::string name() const override { return "SoftmaxCrossEntropy"; }
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

 private:
  /// One pass per column: max, log-sum-exp, loss and gradient. `q(j, i)` is the smoothed target.
  template <class Target>
  T accumulate(const Matrix<T>& logits, Matrix<T>* grad, Target q) const {
    const Index classes = logits.rows();
    const T inv_batch = T(1) / T(logits.cols());
    if (grad) grad->resize(classes, logits.cols());
    T total = T(0);
    for (Index j = 0; j < logits.cols(); ++j) {
      const auto z = logits.col(j);
      const T max = z.maxCoeff();
      const T sum = (z.array() - max).exp().sum();
      const T log_sum_exp = max + std::log(sum);
      T loss = log_sum_exp;
      for (Index i = 0; i < classes; ++i) {
        const T target = q(j, i);
        loss -= target * z(i);
        if (grad) (*grad)(i, j) = (std::exp(z(i) - log_sum_exp) - target) * inv_batch;
      }
      total += loss;
    }
    return total * inv_batch;
  }

  T smoothing_;
};

}  // namespace dropnet
