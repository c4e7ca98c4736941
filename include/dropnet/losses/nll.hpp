#pragma once
// Negative log-likelihood on log-probabilities, PyTorch NLLLoss(reduction='mean'):
//   labels:  L = -1/n sum_j y[label_j, j],     dL/dy[i, j] = -1/n if i = label_j, else 0
//   dense t: L = -1/n sum_j sum_i t_ij y_ij,   dL/dy = -t / n    (t one-hot gives the above)
// y = log-probabilities, classes x batch (a LogSoftmax output). LogSoftmax + NLLLoss equals
// SoftmaxCrossEntropy on the logits, as in PyTorch; the split form lets a model output
// log-probabilities (e.g. for an exported ONNX graph that ends in LogSoftmax).

#include "loss.hpp"

namespace dropnet {

/// Negative log-likelihood of log-probabilities (file comment).
template <class T>
class NLLLoss : public Loss<T> {
 public:
  /// "NLLLoss".
  std::string name() const override { return "NLLLoss"; }

  /// Dense targets (one column per sample): -1/n sum t * y. Throws InvalidArgument for a shape
  /// mismatch.
  T compute(const Matrix<T>& log_p, const Matrix<T>& target, Matrix<T>* grad) const override {
    this->require_same_shape(log_p, target);
    const T n = T(log_p.cols());
    if (grad) *grad = -target / n;
    return -(target.array() * log_p.array()).sum() / n;
  }

  /// Class labels: -1/n sum_j y[label_j, j]. Throws InvalidArgument for a label outside
  /// [0, classes) or a label count that is not the batch size.
  T compute(const Matrix<T>& log_p, const Labels& labels, Matrix<T>* grad) const override {
    this->require_labels(log_p, labels, log_p.rows());
    const T n = T(log_p.cols());
    T sum = T(0);
    for (Index j = 0; j < log_p.cols(); ++j) sum += log_p(labels(j), j);
    if (grad) {
      grad->setZero(log_p.rows(), log_p.cols());
      for (Index j = 0; j < log_p.cols(); ++j) (*grad)(labels(j), j) = -T(1) / n;
    }
    return -sum / n;
  }
};

}  // namespace dropnet
