#pragma once
// Max-norm constraint (Srivastava et al. 2014, section 5.1).
//
// After each update, every unit's incoming weight vector (a row of W, out x in) is rescaled to
// Euclidean norm <= c when it exceeds c; rows within the ball are left untouched. Typical c: 3-4.

#include "../core/types.hpp"

namespace dropnet {

/// Rescales each row of w (out x in: a unit's incoming weights) whose L2 norm exceeds c to norm c.
template <class T>
void apply_max_norm(Matrix<T>& w, T c) {
  for (Index i = 0; i < w.rows(); ++i) {
    const T norm = w.row(i).norm();
    if (norm > c) w.row(i) *= c / norm;
  }
}

}  // namespace dropnet
