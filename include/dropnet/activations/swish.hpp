#pragma once
// Swish / SiLU and GELU (exact erf form and tanh approximation).

#include <type_traits>

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
    simd::gated_linear(z.data(), a.data(), z.size(), T(1), T(0));
  }
  /// dz = da f'(z) elementwise (a unused); shape of z.
  template <class T>
  void backward(const Matrix<T>& z, const Matrix<T>&, const Matrix<T>& da, Matrix<T>& dz) const {
    dz.resize(z.rows(), z.cols());
    simd::gated_linear_gradient(z.data(), da.data(), dz.data(), z.size(), T(1), T(0));
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
  /// a = z Phi(z) elementwise, shape of z: the dispatched kernel in float, the scalar
  /// reference (std::erf) in double, which is for gradient checks, not speed.
  template <class T> void forward(const Matrix<T>& z, Matrix<T>& a) const {
    a.resize(z.rows(), z.cols());
    if constexpr (std::is_same_v<T, float>)
      simd::gaussian_error_linear(z.data(), nullptr, a.data(), z.size());
    else
      a = z.unaryExpr([this](T x) { return value(x); });
  }
  /// dz = da (Phi(z) + z phi(z)) elementwise (a unused); shape of z.
  template <class T>
  void backward(const Matrix<T>& z, const Matrix<T>&, const Matrix<T>& da, Matrix<T>& dz) const {
    dz.resize(z.rows(), z.cols());
    if constexpr (std::is_same_v<T, float>)
      simd::gaussian_error_linear(z.data(), da.data(), dz.data(), z.size());
    else
      dz = da.cwiseProduct(z.unaryExpr([this](T x) { return derivative(x); }));
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
  /// a = f(z) elementwise, shape of z, as z sigmoid(2u) (= z/2 (1 + tanh(u)), without the
  /// cancellation of 1 + tanh(u) for negative z).
  template <class T> void forward(const Matrix<T>& z, Matrix<T>& a) const {
    a.resize(z.rows(), z.cols());
    simd::gated_linear(z.data(), a.data(), z.size(), T(2 * k), T(2 * k * c));
  }
  /// dz = da f'(z) elementwise (a unused); shape of z.
  template <class T>
  void backward(const Matrix<T>& z, const Matrix<T>&, const Matrix<T>& da, Matrix<T>& dz) const {
    dz.resize(z.rows(), z.cols());
    simd::gated_linear_gradient(z.data(), da.data(), dz.data(), z.size(), T(2 * k),
                                T(2 * k * c));
  }
};

}  // namespace dropnet
