#pragma once
// Mean squared error, PyTorch MSELoss(reduction='mean'):
//   L = 1/(n m) sum_ij (y_ij - t_ij)^2,   dL/dy = 2 (y - t) / (n m)     (n rows, m samples)
// With labels, the target is the one-hot encoding of the label (or the label itself for a
// single output).

#include "loss.hpp"

namespace dropnet {

/// Mean squared error, mean over all elements: L = |output - target|^2 / size, grad = 2 (output -
/// target) / size. With labels, the target is their one-hot encoding (the label itself for a single
/// output row).
template <class T>
class MeanSquaredError : public Loss<T> {
 public:
  std::string name() const override { return "MeanSquaredError"; }

  T compute(const Matrix<T>& output, const Matrix<T>& target, Matrix<T>* grad) const override {
    this->require_same_shape(output, target);
    const T count = T(output.size());
    if (grad) *grad = (T(2) / count) * (output - target);
    return (output - target).squaredNorm() / count;
  }

  T compute(const Matrix<T>& output, const Labels& labels, Matrix<T>* grad) const override {
    const Index classes = output.rows() == 1 ? 2 : output.rows();
    this->require_labels(output, labels, classes);
    return compute(output, one_hot(labels, output.rows()), grad);
  }

 private:
  static Matrix<T> one_hot(const Labels& labels, Index rows) {
    Matrix<T> target = Matrix<T>::Zero(rows, labels.size());
    for (Index j = 0; j < labels.size(); ++j) {
      if (rows == 1) {
        target(0, j) = T(labels(j));
      } else {
        target(labels(j), j) = T(1);
      }
    }
    return target;
  }
};

}  // namespace dropnet
