#pragma once
// Sigmoid, Tanh and Softplus.

#include "activation.hpp"

namespace dropnet {

/// f(z) = 1 / (1 + exp(-z)); f'(z) = f(z) (1 - f(z)), computed from the cached output.
struct Sigmoid {
  static constexpr const char* kind = "Sigmoid";
  static constexpr bool has_parameter = false;
  double parameter() const { return 0.0; }
  template <class T> T value(T z) const {
    // Stable for large |z|: never exponentiates a large positive number.
    return z >= T(0) ? T(1) / (T(1) + std::exp(-z)) : std::exp(z) / (T(1) + std::exp(z));
  }
  template <class T> T derivative(T z) const {
    const T s = value(z);
    return s * (T(1) - s);
  }
  template <class T> void forward(const Matrix<T>& z, Matrix<T>& a) const {
    a = z.array().logistic();
  }
  template <class T>
  void backward(const Matrix<T>&, const Matrix<T>& a, const Matrix<T>& da, Matrix<T>& dz) const {
    dz = da.array() * a.array() * (T(1) - a.array());
  }
};

/// f(z) = tanh(z); f'(z) = 1 - f(z)^2.
struct Tanh {
  static constexpr const char* kind = "Tanh";
  static constexpr bool has_parameter = false;
  double parameter() const { return 0.0; }
  template <class T> T value(T z) const { return std::tanh(z); }
  template <class T> T derivative(T z) const {
    const T t = std::tanh(z);
    return T(1) - t * t;
  }
  template <class T> void forward(const Matrix<T>& z, Matrix<T>& a) const { a = z.array().tanh(); }
  template <class T>
  void backward(const Matrix<T>&, const Matrix<T>& a, const Matrix<T>& da, Matrix<T>& dz) const {
    dz = da.array() * (T(1) - a.array().square());
  }
};

/// f(z) = log(1 + exp(z)), as max(z, 0) + log1p(exp(-|z|)) so it never overflows;
/// f'(z) = sigmoid(z).
struct Softplus {
  static constexpr const char* kind = "Softplus";
  static constexpr bool has_parameter = false;
  double parameter() const { return 0.0; }
  template <class T> T value(T z) const {
    return std::max(z, T(0)) + std::log1p(std::exp(-std::abs(z)));
  }
  template <class T> T derivative(T z) const { return Sigmoid{}.value(z); }
  template <class T> void forward(const Matrix<T>& z, Matrix<T>& a) const {
    a = z.array().max(T(0)) + (-z.array().abs()).exp().log1p();
  }
  template <class T>
  void backward(const Matrix<T>& z, const Matrix<T>&, const Matrix<T>& da, Matrix<T>& dz) const {
    dz = da.array() * z.array().logistic();
  }
};

}  // namespace dropnet
