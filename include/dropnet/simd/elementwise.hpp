#pragma once
// The elementwise hot loops at the SIMD level chosen at run time (simd/dispatch.hpp): the
// activations' forward and backward passes, Dense's bias and its gradient, dropout's mask
// product, BatchNorm's statistics, normalization and input gradient, and the fused updates of
// Adam, SGD and RMSprop. Each kernel is written once (simd/elementwise_kernel.inc)
// and compiled for AVX-512, AVX2 and the baseline (the translation unit's own flags, through
// Eigen's packets), so a build with the compiler's default flags runs them in the CPU's widest
// registers. The level is read once per call; the kernels are templates on the scalar only, so a
// translation unit instantiates each at most once per scalar type and level, whatever layers it
// uses.
//
// Results: every level computes the same IEEE operations in the same order (see the .inc), so
// levels agree bit for bit except where the compiler contracts a product and a sum into an FMA
// (the GNU dialects' default on the avx2 and avx512 levels): tests/test_simd.cpp checks both.
// Arrays are contiguous; an output may alias an input of the same index range, nothing else.

#include <Eigen/Core>

#include "dispatch.hpp"
#include "gemm_avx2.hpp"
#include "gemm_avx512.hpp"
#include "vec_baseline.hpp"

namespace dropnet::simd {

/// The scalars of one Adam step (optimizers/adam.hpp): m = beta1 m + (1 - beta1) g,
/// v = beta2 v + (1 - beta2) g^2, p -= step_size m / (sqrt(v) inv_bc2_sqrt + eps).
template <class T>
struct AdamConstants {
  T step_size;           ///< lr / (1 - beta1^t)
  T inv_bc2_sqrt;        ///< 1 / sqrt(1 - beta2^t)
  T decay;               ///< AdamW's 1 - lr weight_decay, applied to p first
  T coupled_wd;          ///< Adam's weight_decay: g += coupled_wd p
  T beta1;               ///< first-moment decay
  T beta2;               ///< second-moment decay
  T one_minus_beta1;     ///< 1 - beta1, rounded once
  T one_minus_beta2;     ///< 1 - beta2, rounded once
  T eps;                 ///< added to the denominator
  bool decoupled_decay;  ///< multiply p by decay (AdamW with weight decay)
  bool coupled_decay;    ///< add coupled_wd p to g (Adam with weight decay)
};

/// The scalars of one SGD step (optimizers/sgd.hpp): g += weight_decay p (coupled_decay);
/// with a momentum buffer b = first ? g : momentum b + (1 - dampening) g, and the step is
/// nesterov ? g + momentum b : b; without one it is g; p -= lr step.
template <class T>
struct SgdConstants {
  T lr;                   ///< learning rate
  T momentum;             ///< momentum factor
  T one_minus_dampening;  ///< 1 - dampening, rounded once
  T weight_decay;         ///< coupled L2 factor
  bool coupled_decay;     ///< add weight_decay p to g
  bool first;             ///< the buffer's first step: b = g
  bool nesterov;          ///< Nesterov's step
};

/// The scalars of one RMSprop step (optimizers/rmsprop.hpp): g += weight_decay p
/// (coupled_decay); v = alpha v + (1 - alpha) g^2; centered: g_avg = alpha g_avg + (1 - alpha)
/// g and v~ = v - g_avg^2, else v~ = v; with momentum b = momentum b + g / (sqrt(v~) + eps) and
/// p -= lr b, else p -= lr g / (sqrt(v~) + eps).
template <class T>
struct RmspropConstants {
  T lr;                ///< learning rate
  T alpha;             ///< smoothing constant
  T one_minus_alpha;   ///< 1 - alpha, rounded once
  T eps;               ///< added after the square root
  T momentum;          ///< momentum factor
  T weight_decay;      ///< coupled L2 factor
  bool coupled_decay;  ///< add weight_decay p to g
};

/// The kernels compiled for the baseline level.
namespace baseline {
#define DROPNET_KERNEL_TARGET
#include "elementwise_kernel.inc"
#undef DROPNET_KERNEL_TARGET
}  // namespace baseline

#if defined(DROPNET_SIMD_X86)
namespace avx2 {
#define DROPNET_KERNEL_TARGET DROPNET_TARGET_AVX2
#include "elementwise_kernel.inc"
#undef DROPNET_KERNEL_TARGET
}  // namespace avx2

namespace avx512 {
#define DROPNET_KERNEL_TARGET DROPNET_TARGET_AVX512
#include "elementwise_kernel.inc"
#undef DROPNET_KERNEL_TARGET
}  // namespace avx512

// Returns `call` made in the namespace of simd_level(): the one switch of every dispatcher.
#define DROPNET_SIMD_DISPATCH(call) \
  switch (simd_level()) {           \
    case SimdLevel::avx512:         \
      return avx512::call;          \
    case SimdLevel::avx2:           \
      return avx2::call;            \
    default:                        \
      return baseline::call;        \
  }
#else
#define DROPNET_SIMD_DISPATCH(call) return baseline::call
#endif

/// out[i] = max(slope z[i], z[i]) for i < n: ReLU (slope 0) and LeakyReLU for 0 <= slope <= 1.
/// NaN stays NaN.
template <class T>
void max_scaled(const T* z, T* out, Eigen::Index n, T slope) {
  DROPNET_SIMD_DISPATCH(max_scaled<T>(z, out, n, slope));
}

/// out[i] = z[i] > 0 ? d[i] : slope d[i] for i < n (slope 0: exactly +0 where z <= 0 or NaN).
template <class T>
void scale_non_positive(const T* z, const T* d, T* out, Eigen::Index n, T slope) {
  DROPNET_SIMD_DISPATCH(scale_non_positive<T>(z, d, out, n, slope));
}

/// out[i] = a[i] b[i] for i < n.
template <class T>
void multiply(const T* a, const T* b, T* out, Eigen::Index n) {
  DROPNET_SIMD_DISPATCH(multiply<T>(a, b, out, n));
}

/// One Adam step over n elements of a parameter p with gradient g and moments m, v (and v_max
/// with amsgrad, else null), all updated in place; see AdamConstants for the formulas.
template <class T>
void adam_update(T* p, const T* g, T* m, T* v, T* v_max, Eigen::Index n,
                 const AdamConstants<T>& c) {
  DROPNET_SIMD_DISPATCH(adam_update<T>(p, g, m, v, v_max, n, c));
}

/// One SGD step over n elements of p with gradient g and momentum buffer b (null without
/// momentum), updated in place; see SgdConstants.
template <class T>
void sgd_update(T* p, const T* g, T* b, Eigen::Index n, const SgdConstants<T>& c) {
  DROPNET_SIMD_DISPATCH(sgd_update<T>(p, g, b, n, c));
}

/// One RMSprop step over n elements of p with gradient g, mean square v, momentum buffer b and
/// mean gradient g_avg (each null when unused), updated in place; see RmspropConstants.
template <class T>
void rmsprop_update(T* p, const T* g, T* v, T* b, T* g_avg, Eigen::Index n,
                    const RmspropConstants<T>& c) {
  DROPNET_SIMD_DISPATCH(rmsprop_update<T>(p, g, v, b, g_avg, n, c));
}

/// z(:, j) += bias for every column j of the rows x cols column-major array z (bias: rows).
template <class T>
void add_to_columns(T* z, Eigen::Index rows, Eigen::Index cols, const T* bias) {
  DROPNET_SIMD_DISPATCH(add_to_columns<T>(z, rows, cols, bias));
}

/// sum(r) = sum over j of x(r, j) for the rows x cols column-major x (sum: rows); with y (same
/// shape as x, else null), also products(r) = sum over j of x(r, j) y(r, j). The columns are
/// added in order, so the levels differ only where the compiler contracts a product into its
/// sum (avx2, avx512): one rounding per column, at most cols eps sum |x y| in all.
template <class T>
void sum_columns(const T* x, const T* y, Eigen::Index rows, Eigen::Index cols, T* sum,
                 T* products) {
  DROPNET_SIMD_DISPATCH(sum_columns<T>(x, y, rows, cols, sum, products));
}

/// squares(r) = sum over j of (x(r, j) - mean(r))^2 for the rows x cols column-major x (mean,
/// squares: rows), the columns in order; the levels differ by the contraction of each square
/// into the sum (at most cols eps squares(r) in all).
template <class T>
void centered_square_sums(const T* x, const T* mean, Eigen::Index rows, Eigen::Index cols,
                          T* squares) {
  DROPNET_SIMD_DISPATCH(centered_square_sums<T>(x, mean, rows, cols, squares));
}

/// For the rows x cols column-major x, per row r: xhat = (x - mean(r)) scale(r), stored when
/// xhat is not null, and out = xhat gamma(r) + beta(r) (xhat + beta(r) when gamma is null).
/// out may be x; the levels differ by the contraction of xhat gamma + beta (one rounding).
template <class T>
void normalize_columns(const T* x, const T* mean, const T* scale, const T* gamma, const T* beta,
                       Eigen::Index rows, Eigen::Index cols, T* xhat, T* out) {
  DROPNET_SIMD_DISPATCH(normalize_columns<T>(x, mean, scale, gamma, beta, rows, cols, xhat, out));
}

/// dx = ((dy - xhat b(r)) - a(r)) c(r) for the rows x cols column-major dy, xhat and dx (a, b,
/// c: rows): BatchNorm's input gradient. dx may be dy; the levels differ by the contraction of
/// dy - xhat b (one rounding).
template <class T>
void batch_norm_input_gradient(const T* dy, const T* xhat, const T* a, const T* b, const T* c,
                               Eigen::Index rows, Eigen::Index cols, T* dx) {
  DROPNET_SIMD_DISPATCH(batch_norm_input_gradient<T>(dy, xhat, a, b, c, rows, cols, dx));
}

#undef DROPNET_SIMD_DISPATCH

}  // namespace dropnet::simd
