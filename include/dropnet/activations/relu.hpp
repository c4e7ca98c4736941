#pragma once
// ReLU and LeakyReLU.

#include <type_traits>

#include "../simd/where_positive.hpp"
#include "activation.hpp"

namespace dropnet {

/// f(z) = max(z, 0); f'(z) = 1 if z > 0 else 0 (PyTorch's choice at z = 0).
struct ReLU {
  /// Name in summaries, layer configs and model files.
  static constexpr const char* kind = "ReLU";
  /// False: ReLU has no hyperparameter.
  static constexpr bool has_parameter = false;
  /// Always 0 (no hyperparameter).
  double parameter() const { return 0.0; }
  /// f(z) = max(z, 0), scalar reference.
  template <class T> T value(T z) const { return z > T(0) ? z : T(0); }
  /// f'(z) = 1 if z > 0 else 0.
  template <class T> T derivative(T z) const { return z > T(0) ? T(1) : T(0); }
  /// a = max(z, 0) elementwise, shape of z.
  template <class T> void forward(const Matrix<T>& z, Matrix<T>& a) const {
    a = z.cwiseMax(T(0));
  }
  /// dz = da where z > 0, else 0 (a unused); shape of z.
  template <class T>
  void backward(const Matrix<T>& z, const Matrix<T>&, const Matrix<T>& da, Matrix<T>& dz) const {
    namespace ei = Eigen::internal;
    dz = simd::where_positive<true>(
        z.array(), da.array(), [](const auto&, const auto& d) { return d; },
        [](const auto& x, const auto&) { return ei::pset1<std::decay_t<decltype(x)>>(T(0)); });
  }
};

/// f(z) = z if z > 0 else alpha * z.
struct LeakyReLU {
  /// Name in summaries, layer configs and model files.
  static constexpr const char* kind = "LeakyReLU";
  /// True: the negative slope alpha is saved with the layer.
  static constexpr bool has_parameter = true;
  /// Slope for z <= 0 (PyTorch's negative_slope), default 0.01.
  double alpha = 0.01;
  LeakyReLU() = default;
  /// LeakyReLU with slope `negative_slope` for z <= 0 (any value; not checked).
  explicit LeakyReLU(double negative_slope) : alpha(negative_slope) {}
  /// alpha.
  double parameter() const { return alpha; }
  /// f(z) = z if z > 0 else alpha z, scalar reference.
  template <class T> T value(T z) const { return z > T(0) ? z : T(alpha) * z; }
  /// f'(z) = 1 if z > 0 else alpha.
  template <class T> T derivative(T z) const { return z > T(0) ? T(1) : T(alpha); }
  /// a = f(z) elementwise, shape of z.
  template <class T> void forward(const Matrix<T>& z, Matrix<T>& a) const {
    // max(z, alpha z) is the same function for 0 <= alpha <= 1 and reads z once.
    if (alpha >= 0.0 && alpha <= 1.0) {
      a = z.cwiseMax(T(alpha) * z);
    } else {
      a = scale_negative(z, z);
    }
  }
  /// dz = da where z > 0, else alpha da (a unused); shape of z.
  template <class T>
  void backward(const Matrix<T>& z, const Matrix<T>&, const Matrix<T>& da, Matrix<T>& dz) const {
    dz = scale_negative(z, da);
  }

 private:
  /// z > 0 ? d : alpha * d, vectorized.
  template <class T>
  auto scale_negative(const Matrix<T>& z, const Matrix<T>& d) const {
    namespace ei = Eigen::internal;
    const T slope = T(alpha);
    return simd::where_positive<true>(
        z.array(), d.array(), [](const auto&, const auto& y) { return y; },
        [slope](const auto&, const auto& y) {
          return ei::pmul(ei::pset1<std::decay_t<decltype(y)>>(slope), y);
        });
  }
};

}  // namespace dropnet
