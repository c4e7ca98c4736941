#pragma once
// ReLU and LeakyReLU.

#include <type_traits>

#include "../simd/elementwise.hpp"
#include "activation.hpp"

namespace dropnet {

/// f(z) = max(z, 0); f'(z) = 1 if z > 0 else 0 (PyTorch's choice at z = 0).
struct ReLU {
  static constexpr const char* kind = "ReLU";
  static constexpr bool has_parameter = false;
  double parameter() const { return 0.0; }
  template <class T> T value(T z) const { return z > T(0) ? z : T(0); }
  template <class T> T derivative(T z) const { return z > T(0) ? T(1) : T(0); }
  template <class T> void forward(const Matrix<T>& z, Matrix<T>& a) const {
    a.resize(z.rows(), z.cols());
    simd::max_scaled(z.data(), a.data(), z.size(), T(0));
  }
  template <class T>
  void backward(const Matrix<T>& z, const Matrix<T>&, const Matrix<T>& da, Matrix<T>& dz) const {
    dz.resize(z.rows(), z.cols());
    simd::scale_non_positive(z.data(), da.data(), dz.data(), z.size(), T(0));
  }
};

/// f(z) = z if z > 0 else alpha * z.
struct LeakyReLU {
  static constexpr const char* kind = "LeakyReLU";
  static constexpr bool has_parameter = true;
  double alpha = 0.01;
  LeakyReLU() = default;
  explicit LeakyReLU(double negative_slope) : alpha(negative_slope) {}
  double parameter() const { return alpha; }
  template <class T> T value(T z) const { return z > T(0) ? z : T(alpha) * z; }
  template <class T> T derivative(T z) const { return z > T(0) ? T(1) : T(alpha); }
  template <class T> void forward(const Matrix<T>& z, Matrix<T>& a) const {
    // max(z, alpha z) is the same function for 0 <= alpha <= 1 and reads z once.
    a.resize(z.rows(), z.cols());
    if (alpha >= 0.0 && alpha <= 1.0) {
      simd::max_scaled(z.data(), a.data(), z.size(), T(alpha));
    } else {
      simd::scale_non_positive(z.data(), z.data(), a.data(), z.size(), T(alpha));
    }
  }
  template <class T>
  void backward(const Matrix<T>& z, const Matrix<T>&, const Matrix<T>& da, Matrix<T>& dz) const {
    dz.resize(z.rows(), z.cols());
    simd::scale_non_positive(z.data(), da.data(), dz.data(), z.size(), T(alpha));
  }
};

}  // namespace dropnet
