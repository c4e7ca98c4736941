#pragma once
// Swish / SiLU and GELU (exact erf form and tanh approximation).

#include <unsupported/Eigen/SpecialFunctions>  // Eigen's vectorized erf

#include "../simd/elementwise.hpp"
#include "activation.hpp"
#include "sigmoid.hpp"

namespace dropnet {

/// Swish (SiLU): f(z) = z * sigmoid(z); f'(z) = s + z s (1 - s) with s = sigmoid(z).
struct Swish {
  /// Name in summaries, layer configs and model files.
  static constexpr const char* kind = "Swish";
  /// False: Swish has no hyperparameter.
  static constexpr bool has_parameter = false;
  /// Always 0 (no hyperparameter).
  double parameter() const { return 0.0; }
  /// f(z) = z sigmoid(z), scalar reference.
  template <class T> T value(T z) const { return z * Sigmoid{}.value(z); }
  /// f'(z) = s + z s (1 - s), s = sigmoid(z).
  template <class T> T derivative(T z) const {
    const T s = Sigmoid{}.value(z);
    return s + z * s * (T(1) - s);
  }
  /// a = z sigmoid(z) elementwise, shape of z.
  template <class T> void forward(const Matrix<T>& z, Matrix<T>& a) const {
    a.resize(z.rows(), z.cols());
    simd::logistic(z.data(), a.data(), z.size(), true);
  }
  /// dz = da f'(z) elementwise (a unused); shape of z.
  template <class T>
  void backward(const Matrix<T>& z, const Matrix<T>&, const Matrix<T>& da, Matrix<T>& dz) const {
    // s (1 + z (1 - s)) = s + z s (1 - s), the sigmoid evaluated once per coefficient.
    dz.resize(z.rows(), z.cols());
    simd::swish_gradient(z.data(), da.data(), dz.data(), z.size());
  }
};
/// PyTorch's name for Swish.
using SiLU = Swish;

/// GELU, exact: f(z) = z * Phi(z) = z/2 (1 + erf(z / sqrt 2)); f'(z) = Phi(z) + z phi(z).
struct GELU {
  /// Name in summaries, layer configs and model files.
  static constexpr const char* kind = "GELU";
  /// False: GELU has no hyperparameter.
  static constexpr bool has_parameter = false;
  /// Always 0 (no hyperparameter).
  double parameter() const { return 0.0; }
  /// f(z) = z Phi(z) with erf, scalar reference.
  template <class T> T value(T z) const {
    return T(0.5) * z * (T(1) + std::erf(z * T(0.70710678118654752440)));
  }
  /// f'(z) = Phi(z) + z phi(z) (standard normal CDF and density).
  template <class T> T derivative(T z) const {
    const T cdf = T(0.5) * (T(1) + std::erf(z * T(0.70710678118654752440)));
    const T pdf = T(0.39894228040143267794) * std::exp(T(-0.5) * z * z);
    return cdf + z * pdf;
  }
  /// a = z Phi(z) elementwise, shape of z.
  template <class T> void forward(const Matrix<T>& z, Matrix<T>& a) const {
    const auto x = z.array();
    a = T(0.5) * x * (T(1) + (x * T(0.70710678118654752440)).erf());
  }
  /// dz = da (Phi(z) + z phi(z)) elementwise (a unused); shape of z.
  template <class T>
  void backward(const Matrix<T>& z, const Matrix<T>&, const Matrix<T>& da, Matrix<T>& dz) const {
    const auto x = z.array();
    const auto cdf = T(0.5) * (T(1) + (x * T(0.70710678118654752440)).erf());
    const auto pdf = T(0.39894228040143267794) * (T(-0.5) * x.square()).exp();
    dz = da.array() * (cdf + x * pdf);
  }
};

/// GELU, tanh approximation (PyTorch approximate='tanh'):
/// f(z) = z/2 (1 + tanh(u)), u = sqrt(2/pi) (z + 0.044715 z^3).
struct GELUTanh {
  /// Name in summaries, layer configs and model files.
  static constexpr const char* kind = "GELUTanh";
  /// False: GELUTanh has no hyperparameter.
  static constexpr bool has_parameter = false;
  static constexpr double k = 0.79788456080286535588;  ///< sqrt(2/pi)
  /// Cubic coefficient of the tanh approximation (Hendrycks & Gimpel 2016).
  static constexpr double c = 0.044715;
  /// Always 0 (no hyperparameter).
  double parameter() const { return 0.0; }
  /// f(z) = z/2 (1 + tanh(k (z + c z^3))), scalar reference.
  template <class T> T value(T z) const {
    return T(0.5) * z * (T(1) + std::tanh(T(k) * (z + T(c) * z * z * z)));
  }
  /// f'(z) of the tanh form, scalar reference.
  template <class T> T derivative(T z) const {
    const T t = std::tanh(T(k) * (z + T(c) * z * z * z));
    return T(0.5) * (T(1) + t) + T(0.5) * z * (T(1) - t * t) * T(k) * (T(1) + T(3 * c) * z * z);
  }
  /// a = f(z) elementwise, shape of z.
  template <class T> void forward(const Matrix<T>& z, Matrix<T>& a) const {
    const auto x = z.array();
    a = T(0.5) * x * (T(1) + (T(k) * (x + T(c) * x.cube())).tanh());
  }
  /// dz = da f'(z) elementwise (a unused); shape of z.
  template <class T>
  void backward(const Matrix<T>& z, const Matrix<T>&, const Matrix<T>& da, Matrix<T>& dz) const {
    const auto x = z.array();
    const auto t = (T(k) * (x + T(c) * x.cube())).tanh();
    dz = da.array() * (T(0.5) * (T(1) + t) +
                       T(0.5) * x * (T(1) - t.square()) * T(k) * (T(1) + T(3 * c) * x.square()));
  }
};

}  // namespace dropnet
