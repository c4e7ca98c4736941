#pragma once
// ELU and SELU.

#include "activation.hpp"

namespace dropnet {

/// f(z) = z if z > 0 else alpha * (exp(z) - 1).
struct ELU {
  static constexpr const char* kind = "ELU";
  static constexpr bool has_parameter = true;
  double alpha = 1.0;
  ELU() = default;
  explicit ELU(double a) : alpha(a) {}
  double parameter() const { return alpha; }
  template <class T> T value(T z) const { return z > T(0) ? z : T(alpha) * std::expm1(z); }
  template <class T> T derivative(T z) const { return z > T(0) ? T(1) : T(alpha) * std::exp(z); }
  template <class T> void forward(const Matrix<T>& z, Matrix<T>& a) const {
    a = (z.array() > T(0)).select(z, T(alpha) * z.array().min(T(0)).expm1());
  }
  template <class T>
  void backward(const Matrix<T>& z, const Matrix<T>&, const Matrix<T>& da, Matrix<T>& dz) const {
    dz = (z.array() > T(0)).select(da, da.array() * (T(alpha) * z.array().min(T(0)).exp()));
  }
};

/// SELU (Klambauer et al. 2017): f(z) = lambda * (z if z > 0 else alpha * (exp(z) - 1)),
/// with the self-normalizing constants below. Pair with LeCun-normal init and AlphaDropout.
struct SELU {
  static constexpr const char* kind = "SELU";
  static constexpr bool has_parameter = false;
  static constexpr double alpha = 1.6732632423543772848170429916717;
  static constexpr double lambda = 1.0507009873554804934193349852946;
  double parameter() const { return 0.0; }
  template <class T> T value(T z) const {
    return T(lambda) * (z > T(0) ? z : T(alpha) * std::expm1(z));
  }
  template <class T> T derivative(T z) const {
    return z > T(0) ? T(lambda) : T(lambda * alpha) * std::exp(z);
  }
  template <class T> void forward(const Matrix<T>& z, Matrix<T>& a) const {
    a = T(lambda) * (z.array() > T(0)).select(z, T(alpha) * z.array().min(T(0)).expm1());
  }
  template <class T>
  void backward(const Matrix<T>& z, const Matrix<T>&, const Matrix<T>& da, Matrix<T>& dz) const {
    dz = da.array() *
         (z.array() > T(0)).select(T(lambda), T(lambda * alpha) * z.array().min(T(0)).exp());
  }
};

}  // namespace dropnet
