#pragma once
// Weight initializers (He, Xavier/Glorot, LeCun), normal and uniform.
//
// With fan_in = in_features and fan_out = out_features of a dense layer:
//   he:      var = 2 / fan_in            (Kaiming; for ReLU-family activations)
//   xavier:  var = 2 / (fan_in + fan_out) (Glorot; for tanh / sigmoid)
//   lecun:   var = 1 / fan_in            (for SELU self-normalizing networks)
// The normal form draws N(0, var); the uniform form draws U(-l, l) with l = sqrt(3 var),
// which has the same variance.

#include <cmath>
#include <string>

#include "../core/error.hpp"
#include "../core/generator.hpp"
#include "../core/types.hpp"

namespace dropnet {

/// Weight initializers; variances in the file comment above, zeros for all-zero weights.
enum class Init { he_normal, he_uniform, xavier_normal, xavier_uniform, lecun_normal, lecun_uniform, zeros };

/// The initializer's name, as init_from_string() reads it ("he_normal", ...).
inline const char* to_string(Init init) {
  switch (init) {
    case Init::he_normal: return "he_normal";
    case Init::he_uniform: return "he_uniform";
    case Init::xavier_normal: return "xavier_normal";
    case Init::xavier_uniform: return "xavier_uniform";
    case Init::lecun_normal: return "lecun_normal";
    case Init::lecun_uniform: return "lecun_uniform";
    case Init::zeros: return "zeros";
  }
  return "?";
}

/// The initializer named `name` (as to_string() writes it); throws InvalidArgument if unknown.
inline Init init_from_string(const std::string& name) {
  for (Init i : {Init::he_normal, Init::he_uniform, Init::xavier_normal, Init::xavier_uniform,
                 Init::lecun_normal, Init::lecun_uniform, Init::zeros})
    if (name == to_string(i)) return i;
  throw InvalidArgument("init_from_string: unknown initializer '" + name + "'");
}

/// The variance the initializer targets for a layer with these fans.
inline double init_variance(Init init, Index fan_in, Index fan_out) {
  switch (init) {
    case Init::he_normal:
    case Init::he_uniform: return 2.0 / static_cast<double>(fan_in);
    case Init::xavier_normal:
    case Init::xavier_uniform: return 2.0 / static_cast<double>(fan_in + fan_out);
    case Init::lecun_normal:
    case Init::lecun_uniform: return 1.0 / static_cast<double>(fan_in);
    case Init::zeros: return 0.0;
  }
  return 0.0;
}

/// Fills `w` (fan_out x fan_in) from `gen`.
template <class T>
void initialize(Matrix<T>& w, Init init, Generator& gen) {
  const double var = init_variance(init, w.cols(), w.rows());
  const bool uniform = init == Init::he_uniform || init == Init::xavier_uniform ||
                       init == Init::lecun_uniform;
  if (init == Init::zeros) {
    w.setZero();
  } else if (uniform) {
    const double limit = std::sqrt(3.0 * var);
    for (Index i = 0; i < w.size(); ++i) w.data()[i] = gen.uniform<T>(T(-limit), T(limit));
  } else {
    const double stddev = std::sqrt(var);
    for (Index i = 0; i < w.size(); ++i) w.data()[i] = gen.normal<T>(T(0), T(stddev));
  }
}

}  // namespace dropnet
