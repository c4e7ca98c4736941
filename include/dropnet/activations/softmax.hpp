#pragma once
// Softmax and LogSoftmax over each column (one sample's scores).

#include <cmath>

#include "../simd/elementwise.hpp"
#include "activation.hpp"

namespace dropnet {

/// a_i = exp(z_i - max z) / sum_j exp(z_j - max z), per column (subtracting the max keeps exp
/// finite). Backward through the Jacobian: dz = a * (da - sum_j(da_j a_j)).
/// For classification prefer an Identity output with SoftmaxCrossEntropy, which fuses both.
struct Softmax {
  /// Name in summaries, layer configs and model files.
  static constexpr const char* kind = "Softmax";
  /// False: Softmax has no hyperparameter.
  static constexpr bool has_parameter = false;
  /// Always 0 (no hyperparameter).
  double parameter() const { return 0.0; }
  /// a = softmax of each column of z (classes x batch); a has z's shape, each column sums to 1.
  template <class T> void forward(const Matrix<T>& z, Matrix<T>& a) const {
    // The exponentials over the whole matrix at once (a column often has too few entries for
    // SIMD registers), at the dispatched level.
    a.resize(z.rows(), z.cols());
    for (Index j = 0; j < z.cols(); ++j) a.col(j) = z.col(j).array() - z.col(j).maxCoeff();
    simd::exponential(a.data(), a.data(), a.size());
    for (Index j = 0; j < z.cols(); ++j) a.col(j) /= a.col(j).sum();
  }
  /// dz = a (da - sum_j da_j a_j) per column, from the cached output a (z unused); shape of a.
  template <class T>
  void backward(const Matrix<T>&, const Matrix<T>& a, const Matrix<T>& da, Matrix<T>& dz) const {
    dz.resize(a.rows(), a.cols());
    for (Index j = 0; j < a.cols(); ++j)
      dz.col(j) = a.col(j).array() * (da.col(j).array() - da.col(j).dot(a.col(j)));
  }
};

/// a_i = z_i - max z - log sum_j exp(z_j - max z), per column: log(softmax(z)) without
/// forming softmax, so a probability that underflows is still a finite log (as
/// torch.nn.LogSoftmax(dim=1)). Backward: dz = da - softmax(z) * sum_j da_j, with softmax = exp(a).
/// Pair it with NLLLoss, as in PyTorch; together they equal SoftmaxCrossEntropy on z.
struct LogSoftmax {
  static constexpr const char* kind = "LogSoftmax";  ///< its name in configs and files
  static constexpr bool has_parameter = false;       ///< no parameter
  /// Always 0 (no parameter).
  double parameter() const { return 0.0; }
  /// a = z - max z - log sum exp(z - max z), column by column. The exponentials run over the
  /// whole matrix at once in `a` (as Softmax's), which then receives the result.
  template <class T> void forward(const Matrix<T>& z, Matrix<T>& a) const {
    a.resize(z.rows(), z.cols());
    for (Index j = 0; j < z.cols(); ++j) a.col(j) = z.col(j).array() - z.col(j).maxCoeff();
    simd::exponential(a.data(), a.data(), a.size());
    for (Index j = 0; j < z.cols(); ++j) {
      const T log_sum = std::log(a.col(j).sum());
      a.col(j) = (z.col(j).array() - z.col(j).maxCoeff()) - log_sum;
    }
  }
  /// dz = da - exp(a) * sum(da), column by column (the exponentials over the whole matrix).
  template <class T>
  void backward(const Matrix<T>&, const Matrix<T>& a, const Matrix<T>& da, Matrix<T>& dz) const {
    dz.resize(a.rows(), a.cols());
    simd::exponential(a.data(), dz.data(), a.size());
    for (Index j = 0; j < a.cols(); ++j) dz.col(j) = da.col(j) - dz.col(j) * da.col(j).sum();
  }
};

}  // namespace dropnet
