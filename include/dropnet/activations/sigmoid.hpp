#pragma once
// Sigmoid, Tanh and Softplus.

#include "../simd/elementwise.hpp"
#include "activation.hpp"

namespace dropnet {

/// f(z) = 1 / (1 + exp(-z)); f'(z) = f(z) (1 - f(z)), computed from the cached output.
struct Sigmoid {
  /// Name in summaries, layer configs and model files.
  static constexpr const char* kind = "Sigmoid";
  /// False: Sigmoid has no hyperparameter.
  static constexpr bool has_parameter = false;
  /// Always 0 (no hyperparameter).
  double parameter() const { return 0.0; }
  /// f(z) = 1 / (1 + exp(-z)), scalar reference.
  template <class T> T value(T z) const {
    // Stable for large |z|: never exponentiates a large positive number.
    return z >= T(0) ? T(1) / (T(1) + std::exp(-z)) : std::exp(z) / (T(1) + std::exp(z));
  }
  /// f'(z) = f(z) (1 - f(z)).
  template <class T> T derivative(T z) const {
    const T s = value(z);
    return s * (T(1) - s);
  }
  /// a = sigmoid(z) elementwise, shape of z.
  template <class T> void forward(const Matrix<T>& z, Matrix<T>& a) const {
    a.resize(z.rows(), z.cols());
    simd::logistic(z.data(), static_cast<const T*>(nullptr), a.data(), z.size());
  }
  /// dz = da a (1 - a) from the cached output a (z unused); shape of a.
  template <class T>
  void backward(const Matrix<T>&, const Matrix<T>& a, const Matrix<T>& da, Matrix<T>& dz) const {
    dz.resize(a.rows(), a.cols());
    simd::output_gradient(a.data(), da.data(), dz.data(), a.size(), false);
  }
};

/// f(z) = tanh(z); f'(z) = 1 - f(z)^2.
struct Tanh {
  /// Name in summaries, layer configs and model files.
  static constexpr const char* kind = "Tanh";
  /// False: Tanh has no hyperparameter.
  static constexpr bool has_parameter = false;
  /// Always 0 (no hyperparameter).
  double parameter() const { return 0.0; }
  /// f(z) = tanh(z), scalar reference.
  template <class T> T value(T z) const { return std::tanh(z); }
  /// f'(z) = 1 - tanh(z)^2.
  template <class T> T derivative(T z) const {
    const T t = std::tanh(z);
    return T(1) - t * t;
  }
  /// a = tanh(z) elementwise, shape of z.
  template <class T> void forward(const Matrix<T>& z, Matrix<T>& a) const {
    a.resize(z.rows(), z.cols());
    simd::hyperbolic_tangent(z.data(), a.data(), z.size());
  }
  /// dz = da (1 - a^2) from the cached output a (z unused); shape of a.
  template <class T>
  void backward(const Matrix<T>&, const Matrix<T>& a, const Matrix<T>& da, Matrix<T>& dz) const {
    dz.resize(a.rows(), a.cols());
    simd::output_gradient(a.data(), da.data(), dz.data(), a.size(), true);
  }
};

/// f(z) = log(1 + exp(z)), as max(z, 0) + log1p(exp(-|z|)) so it never overflows;
/// f'(z) = sigmoid(z).
struct Softplus {
  /// Name in summaries, layer configs and model files.
  static constexpr const char* kind = "Softplus";
  /// False: Softplus has no hyperparameter.
  static constexpr bool has_parameter = false;
  /// Always 0 (no hyperparameter).
  double parameter() const { return 0.0; }
  /// f(z) = max(z, 0) + log1p(exp(-|z|)), scalar reference; finite for every finite z.
  template <class T> T value(T z) const {
    return std::max(z, T(0)) + std::log1p(std::exp(-std::abs(z)));
  }
  /// f'(z) = sigmoid(z).
  template <class T> T derivative(T z) const { return Sigmoid{}.value(z); }
  /// a = softplus(z) elementwise, shape of z.
  template <class T> void forward(const Matrix<T>& z, Matrix<T>& a) const {
    a.resize(z.rows(), z.cols());
    simd::softplus(z.data(), a.data(), z.size());
  }
  /// dz = da sigmoid(z) elementwise (a unused); shape of z.
  template <class T>
  void backward(const Matrix<T>& z, const Matrix<T>&, const Matrix<T>& da, Matrix<T>& dz) const {
    dz.resize(z.rows(), z.cols());
    simd::logistic(z.data(), da.data(), dz.data(), z.size());
  }
};

}  // namespace dropnet
