#pragma once
// Max-norm constraint (Srivastava et al. 2014, section 5.1), exactly as torch.renorm(w, p=2,
// dim=0, maxnorm=c).
//
// After each update, every unit's incoming weight vector (a row of W, out x in) whose Euclidean
// norm is strictly above c is rescaled by c / (norm + 1e-7), PyTorch's renorm factor (the 1e-7
// keeps the factor finite and leaves the row a hair inside the ball); rows within the ball are
// left untouched, bit for bit. Typical c: 3-4. Keras' MaxNorm differs slightly: it rescales
// every row by clip(norm, 0, c) / (epsilon + norm), with epsilon = 1e-7, so rows inside the ball
// shrink by a factor 1 - 1e-7 / norm.

#include "../core/types.hpp"

namespace dropnet {

/// Rescales each row of `w` (out x in: a unit's incoming weights) whose norm exceeds `c` by
/// c / (norm + 1e-7), as torch.renorm.
template <class T>
void apply_max_norm(Matrix<T>& w, T c) {
  for (Index i = 0; i < w.rows(); ++i) {
    const T norm = w.row(i).norm();
    if (norm > c) w.row(i) *= c / (norm + T(1e-7));
  }
}

}  // namespace dropnet
