#pragma once
// ELU and SELU.

#include <type_traits>

#include "../simd/elementwise.hpp"
#include "activation.hpp"

namespace dropnet {

namespace detail {

/// ELU and SELU in one vectorized pass at the dispatched SIMD level, with d = z (forward) or
/// d = da (backward) into out (resized to z's shape):
///   forward:  z > 0 ? scale * z  : scale_alpha * expm1(z)
///   backward: z > 0 ? scale * da : scale_alpha * exp(z) * da
template <class T>
void exponential_branch(const Matrix<T>& z, const Matrix<T>& d, Matrix<T>& out, T scale,
                        T scale_alpha, bool forward) {
  out.resize(z.rows(), z.cols());
  simd::exponential_branch(z.data(), d.data(), out.data(), z.size(), scale, scale_alpha, forward);
}

}  // namespace detail

/// f(z) = z if z > 0 else alpha * (exp(z) - 1).
struct ELU {
  /// Name in summaries, layer configs and model files.
  static constexpr const char* kind = "ELU";
  /// True: alpha is saved with the layer.
  static constexpr bool has_parameter = true;
  /// Scale of the negative branch, default 1.
  double alpha = 1.0;
  ELU() = default;
  /// ELU with negative-branch scale `a`.
  explicit ELU(double a) : alpha(a) {}
  /// alpha.
  double parameter() const { return alpha; }
  /// f(z) = z if z > 0 else alpha expm1(z), scalar reference.
  template <class T> T value(T z) const { return z > T(0) ? z : T(alpha) * std::expm1(z); }
  /// f'(z) = 1 if z > 0 else alpha exp(z).
  template <class T> T derivative(T z) const { return z > T(0) ? T(1) : T(alpha) * std::exp(z); }
  /// a = f(z) elementwise, shape of z.
  template <class T> void forward(const Matrix<T>& z, Matrix<T>& a) const {
    detail::exponential_branch<T>(z, z, a, T(1), T(alpha), true);
  }
  /// dz = da f'(z) elementwise (a unused); shape of z.
  template <class T>
  void backward(const Matrix<T>& z, const Matrix<T>&, const Matrix<T>& da, Matrix<T>& dz) const {
    detail::exponential_branch<T>(z, da, dz, T(1), T(alpha), false);
  }
};

/// SELU (Klambauer et al. 2017): f(z) = lambda * (z if z > 0 else alpha * (exp(z) - 1)),
/// with the self-normalizing constants below. Pair with LeCun-normal init and AlphaDropout.
struct SELU {
  /// Name in summaries, layer configs and model files.
  static constexpr const char* kind = "SELU";
  /// False: SELU's constants are fixed.
  static constexpr bool has_parameter = false;
  /// alpha of Klambauer et al. (2017), fixed so activations keep mean 0 and variance 1.
  static constexpr double alpha = 1.6732632423543772848170429916717;
  /// lambda (output scale) of Klambauer et al. (2017).
  static constexpr double lambda = 1.0507009873554804934193349852946;
  /// Always 0 (no hyperparameter).
  double parameter() const { return 0.0; }
  /// f(z) = lambda (z if z > 0 else alpha expm1(z)), scalar reference.
  template <class T> T value(T z) const {
    return T(lambda) * (z > T(0) ? z : T(alpha) * std::expm1(z));
  }
  /// f'(z) = lambda if z > 0 else lambda alpha exp(z).
  template <class T> T derivative(T z) const {
    return z > T(0) ? T(lambda) : T(lambda * alpha) * std::exp(z);
  }
  /// a = f(z) elementwise, shape of z.
  template <class T> void forward(const Matrix<T>& z, Matrix<T>& a) const {
    detail::exponential_branch<T>(z, z, a, T(lambda), T(lambda * alpha), true);
  }
  /// dz = da f'(z) elementwise (a unused); shape of z.
  template <class T>
  void backward(const Matrix<T>& z, const Matrix<T>&, const Matrix<T>& da, Matrix<T>& dz) const {
    detail::exponential_branch<T>(z, da, dz, T(lambda), T(lambda * alpha), false);
  }
};

}  // namespace dropnet
