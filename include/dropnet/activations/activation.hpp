#pragma once
// The contract every activation functor meets, and helpers they share.
//
// An activation is a small value type (it may carry a parameter such as LeakyReLU's alpha) with:
//   static constexpr const char* kind;                          name used in summaries and files
//   double parameter() const;                                   its hyperparameter (0 if none)
//   template <class T> T value(T z) const;                      f(z), scalar reference
//   template <class T> T derivative(T z) const;                 f'(z), scalar reference
//   template <class T> void forward(const Matrix<T>& z, Matrix<T>& a) const;        a = f(z)
//   template <class T> void backward(const Matrix<T>& z, const Matrix<T>& a,
//                                    const Matrix<T>& da, Matrix<T>& dz) const;     dz = da * f'(z)
// The matrix forms are the vectorized hot paths; the scalar forms are what the tests compare to.
// Softmax acts on whole columns and has no scalar form.

#include <cmath>
#include <string>

#include "../core/types.hpp"

namespace dropnet {

/// Builds "Kind" or "Kind(parameter)" for messages and summaries.
template <class Activation>
std::string activation_name(const Activation& act) {
  std::string name = Activation::kind;
  if (Activation::has_parameter) name += "(" + std::to_string(act.parameter()) + ")";
  return name;
}

/// Identity: f(z) = z. The activation of a logits layer.
struct Identity {
  /// Name in summaries, layer configs and model files.
  static constexpr const char* kind = "Identity";
  /// False: Identity has no hyperparameter.
  static constexpr bool has_parameter = false;
  /// Always 0 (no hyperparameter).
  double parameter() const { return 0.0; }
  /// f(z) = z.
  template <class T> T value(T z) const { return z; }
  /// f'(z) = 1.
  template <class T> T derivative(T) const { return T(1); }
  /// a = z, any shape.
  template <class T> void forward(const Matrix<T>& z, Matrix<T>& a) const { a = z; }
  /// dz = da (z and a unused); dz takes da's shape.
  template <class T>
  void backward(const Matrix<T>&, const Matrix<T>&, const Matrix<T>& da, Matrix<T>& dz) const {
    dz = da;
  }
};

}  // namespace dropnet
