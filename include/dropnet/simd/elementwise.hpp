#pragma once
// The elementwise hot loops at the SIMD level chosen at run time (simd/dispatch.hpp): the
// activations' forward and backward passes (and the exp they use), Dense's bias and its
// gradient, dropout's mask product, BatchNorm's statistics, normalization and input gradient,
// and the fused updates of Adam, SGD, RMSprop and Adagrad. Each kernel is written once
// (simd/elementwise_kernel.inc) and compiled for AVX-512, AVX2 and the baseline (the
// translation unit's own flags, through Eigen's packets), so a build with the compiler's
// default flags runs them in the CPU's widest registers. The level is read once per call; the
// kernels are templates on the scalar only, so a translation unit instantiates each at most
// once per scalar type and level, whatever layers it uses.
//
// Results: every level computes the same IEEE operations in the same order (see the .inc), so
// levels agree bit for bit except where the compiler contracts a product and a sum into an FMA
// (the GNU dialects' default on the avx2 and avx512 levels): tests/test_simd.cpp checks both.
// Arrays are contiguous; an output may alias an input of the same index range, nothing else.
//
// Threads: with OpenMP and Eigen::nbThreads() > 1, the elementwise kernels and the optimizer
// updates split their n elements, and the per-column kernels (bias, BatchNorm's normalization
// and input gradient) their columns, between the threads (core/parallel.hpp) once each thread
// gets detail::parallel_elements elements. Every element is computed by the same operations in
// either case (a piece's masked tail computes what the whole register would), so the bits do not
// depend on the thread count. The row sums (sum_columns, centered_square_sums) stay on one
// thread: they add the columns in order.

#include <Eigen/Core>
#include <algorithm>

#include "../core/parallel.hpp"
#include "dispatch.hpp"
#if !defined(DROPNET_KERNELS_DECLARED)
#include "gemm_avx2.hpp"
#include "gemm_avx512.hpp"
#include "vec_baseline.hpp"
#endif

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

/// The scalars of one Adagrad step (optimizers/adagrad.hpp): g += weight_decay p
/// (coupled_decay); s += g^2; p -= lr g / (sqrt(s) + eps).
template <class T>
struct AdagradConstants {
  T lr;                ///< this step's learning rate, lr / (1 + (t - 1) lr_decay)
  T eps;               ///< added after the square root
  T weight_decay;      ///< coupled L2 factor
  bool coupled_decay;  ///< add weight_decay p to g
};

/// The constants of the vectorized exp and expm1 (simd/elementwise_kernel.inc): x is clamped
/// to [low, high] (beyond them exp is 0 or inf in T anyway), split as x = n ln2 + r with n =
/// round(x log2e) and |r| <= ln2 / 2 (ln2 in two parts, Cody and Waite: n ln2_high is exact),
/// and exp(r) - 1 = r + r^2 P(r), with P a degree-4 minimax polynomial for float (0.06 ulp,
/// one term fewer than Cephes' expf) and the Taylor terms 1/k!, k = 2..13, for double
/// (truncation below 0.1 ulp on |r| <= ln2 / 2).
template <class T>
struct ExpConstants;

/// float: Cephes' expf's range reduction, a degree-6 polynomial.
template <>
struct ExpConstants<float> {
  static constexpr float low = -104.0f;                ///< exp(low) rounds to 0
  static constexpr float high = 89.0f;                 ///< exp(high) overflows
  static constexpr float normal_low = -87.0f;          ///< n >= -126: exp(normal_low) is normal
  static constexpr float bounded_high = 88.0f;         ///< n <= 127: 2^n is finite
  static constexpr float log2e = 1.44269504088896341f;  ///< 1 / ln 2
  static constexpr float ln2_high = 0.693359375f;      ///< ln 2 to 9 bits
  static constexpr float ln2_low = -2.12194440e-4f;    ///< ln 2 - ln2_high
  static constexpr float round_magic = 12582912.0f;    ///< 1.5 2^23: (y + it) - it rounds y
  static constexpr int degree = 5;                     ///< terms of P
  /// P, highest power first: minimax for the relative error of 1 + r + r^2 P(r) on
  /// |r| <= ln2 / 2 (Lawson's weighted least squares; 0.06 ulp with these float coefficients).
  static constexpr float poly[degree] = {1.38145813e-3f, 8.36872402e-3f, 4.16683890e-2f,
                                         1.66665211e-1f, 4.99999940e-1f};
};

/// double: Cephes' range reduction, Taylor terms.
template <>
struct ExpConstants<double> {
  static constexpr double low = -746.0;                      ///< exp(low) rounds to 0
  static constexpr double high = 710.0;                      ///< exp(high) overflows
  static constexpr double normal_low = -708.0;               ///< n >= -1022: exp is normal
  static constexpr double bounded_high = 709.0;              ///< n <= 1023: 2^n is finite
  static constexpr double log2e = 1.4426950408889634074;     ///< 1 / ln 2
  static constexpr double ln2_high = 6.93145751953125e-1;    ///< ln 2 to 14 bits
  static constexpr double ln2_low = 1.42860682030941723212e-6;  ///< ln 2 - ln2_high
  static constexpr double round_magic = 6755399441055744.0;  ///< 1.5 2^52: rounds to integer
  static constexpr int degree = 12;                          ///< terms of P
  /// P = sum 1/k! r^(k-2), k = 13 down to 2.
  static constexpr double poly[degree] = {
      1.0 / 6227020800.0, 1.0 / 479001600.0, 1.0 / 39916800.0, 1.0 / 3628800.0,
      1.0 / 362880.0,     1.0 / 40320.0,     1.0 / 5040.0,     1.0 / 720.0,
      1.0 / 120.0,        1.0 / 24.0,        1.0 / 6.0,        1.0 / 2.0};
};

/// The constants of the vectorized erf (float only; GELU in double takes std::erf): erf(x) =
/// x P(x^2) / Q(x^2) on [-clamp, clamp], +-1 beyond, P of degree 6 and Q of degree 4 in x^2
/// (Eigen 3.4's generic_fast_erf_float coefficients), highest power first.
template <class T>
struct ErfConstants;

/// float: erf rounds to +-1 beyond |x| = 4.
template <>
struct ErfConstants<float> {
  static constexpr float clamp = 4.0f;       ///< |x| beyond which erf(x) is +-1 in float
  static constexpr int numerator_terms = 7;  ///< terms of P
  static constexpr int denominator_terms = 5;  ///< terms of Q
  /// P, highest power of x^2 first.
  static constexpr float numerator[numerator_terms] = {
      -2.72614225801306e-10f, 2.77068142495902e-08f, -2.10102402082508e-06f,
      -5.69250639462346e-05f, -7.34990630326855e-04f, -2.95459980854025e-03f,
      -1.60960333262415e-02f};
  /// Q, highest power of x^2 first.
  static constexpr float denominator[denominator_terms] = {
      -1.45660718464996e-05f, -2.13374055278905e-04f, -1.68282697438203e-03f,
      -7.37332916720468e-03f, -1.42647390514189e-02f};
};

/// How many terms of 2 atanh(s) = 2 (s + s^3/3 + s^5/5 + ...) the vectorized log1p on [0, 1]
/// (Softplus) adds after s; s = e / (2 + e) <= 1/3, so the first term left out is below
/// 9^-terms / (2 terms + 3) relative: 1.4e-9 (float), 1.5e-17 (double).
template <class T>
struct Log1pConstants;

/// float: 8 terms.
template <>
struct Log1pConstants<float> {
  static constexpr int terms = 8;  ///< s^3/3 ... s^17/17
};

/// double: 16 terms.
template <>
struct Log1pConstants<double> {
  static constexpr int terms = 16;  ///< s^3/3 ... s^33/33
};

#if !defined(DROPNET_KERNELS_DECLARED)
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
#endif  // !DROPNET_KERNELS_DECLARED

/// Pieces start on 64-byte boundaries of the arrays, so no two threads write the same line.
template <class T>
inline constexpr Eigen::Index parallel_align = Eigen::Index(64 / sizeof(T));

/// p + i, or null when p is null (an optional array of a kernel).
template <class T>
T* shifted(T* p, Eigen::Index i) {
  return p == nullptr ? nullptr : p + i;
}

/// f(begin, end) over the n elements of an elementwise kernel, split between the threads.
template <class T, class F>
void for_elements(Eigen::Index n, F&& f) {
  dropnet::detail::parallel_for(n, parallel_align<T>, dropnet::detail::parallel_elements, f);
}

/// out[i] = max(slope z[i], z[i]) for i < n: ReLU (slope 0) and LeakyReLU for 0 <= slope <= 1.
/// NaN stays NaN.
template <class T>
void max_scaled(const T* z, T* out, Eigen::Index n, T slope) DROPNET_KERNEL_BODY({
  for_elements<T>(n, [&](Eigen::Index i, Eigen::Index end) {
    DROPNET_SIMD_DISPATCH(max_scaled<T>(z + i, out + i, end - i, slope));
  });
})

/// out[i] = z[i] > 0 ? d[i] : slope d[i] for i < n (slope 0: exactly +0 where z <= 0 or NaN).
template <class T>
void scale_non_positive(const T* z, const T* d, T* out, Eigen::Index n,
                        T slope) DROPNET_KERNEL_BODY({
  for_elements<T>(n, [&](Eigen::Index i, Eigen::Index end) {
    DROPNET_SIMD_DISPATCH(scale_non_positive<T>(z + i, d + i, out + i, end - i, slope));
  });
})

/// out[i] = a[i] b[i] for i < n.
template <class T>
void multiply(const T* a, const T* b, T* out, Eigen::Index n) DROPNET_KERNEL_BODY({
  for_elements<T>(n, [&](Eigen::Index i, Eigen::Index end) {
    DROPNET_SIMD_DISPATCH(multiply<T>(a + i, b + i, out + i, end - i));
  });
})

/// One Adam step over n elements of a parameter p with gradient g and moments m, v (and v_max
/// with amsgrad, else null), all updated in place; see AdamConstants for the formulas.
template <class T>
void adam_update(T* p, const T* g, T* m, T* v, T* v_max, Eigen::Index n,
                 const AdamConstants<T>& c) DROPNET_KERNEL_BODY({
  for_elements<T>(n, [&](Eigen::Index i, Eigen::Index end) {
    DROPNET_SIMD_DISPATCH(
        adam_update<T>(p + i, g + i, m + i, v + i, shifted(v_max, i), end - i, c));
  });
})

/// One SGD step over n elements of p with gradient g and momentum buffer b (null without
/// momentum), updated in place; see SgdConstants.
template <class T>
void sgd_update(T* p, const T* g, T* b, Eigen::Index n,
                const SgdConstants<T>& c) DROPNET_KERNEL_BODY({
  for_elements<T>(n, [&](Eigen::Index i, Eigen::Index end) {
    DROPNET_SIMD_DISPATCH(sgd_update<T>(p + i, g + i, shifted(b, i), end - i, c));
  });
})

/// One RMSprop step over n elements of p with gradient g, mean square v, momentum buffer b and
/// mean gradient g_avg (each null when unused), updated in place; see RmspropConstants.
template <class T>
void rmsprop_update(T* p, const T* g, T* v, T* b, T* g_avg, Eigen::Index n,
                    const RmspropConstants<T>& c) DROPNET_KERNEL_BODY({
  for_elements<T>(n, [&](Eigen::Index i, Eigen::Index end) {
    DROPNET_SIMD_DISPATCH(rmsprop_update<T>(p + i, g + i, shifted(v, i), shifted(b, i),
                                            shifted(g_avg, i), end - i, c));
  });
})

/// One Adagrad step over n elements of p with gradient g and accumulator s, updated in place;
/// see AdagradConstants.
template <class T>
void adagrad_update(T* p, const T* g, T* s, Eigen::Index n,
                    const AdagradConstants<T>& c) DROPNET_KERNEL_BODY({
  for_elements<T>(n, [&](Eigen::Index i, Eigen::Index end) {
    DROPNET_SIMD_DISPATCH(adagrad_update<T>(p + i, g + i, s + i, end - i, c));
  });
})

/// z(:, j) += bias for every column j of the rows x cols column-major array z (bias: rows).
template <class T>
void add_to_columns(T* z, Eigen::Index rows, Eigen::Index cols, const T* bias) DROPNET_KERNEL_BODY({
  dropnet::detail::parallel_for_columns(rows, cols, [&](Eigen::Index j, Eigen::Index end) {
    const Eigen::Index at = j * rows;
    DROPNET_SIMD_DISPATCH(add_to_columns<T>(z + at, rows, end - j, bias));
  });
})

/// sum(r) = sum over j of x(r, j) for the rows x cols column-major x (sum: rows); with y (same
/// shape as x, else null), also products(r) = sum over j of x(r, j) y(r, j). The columns are
/// added in order, so the levels differ only where the compiler contracts a product into its
/// sum (avx2, avx512): one rounding per column, at most cols eps sum |x y| in all.
template <class T>
void sum_columns(const T* x, const T* y, Eigen::Index rows, Eigen::Index cols, T* sum,
                 T* products) DROPNET_KERNEL_BODY({
  DROPNET_SIMD_DISPATCH(sum_columns<T>(x, y, rows, cols, sum, products));
})

/// squares(r) = sum over j of (x(r, j) - mean(r))^2 for the rows x cols column-major x (mean,
/// squares: rows), the columns in order; the levels differ by the contraction of each square
/// into the sum (at most cols eps squares(r) in all).
template <class T>
void centered_square_sums(const T* x, const T* mean, Eigen::Index rows, Eigen::Index cols,
                          T* squares) DROPNET_KERNEL_BODY({
  DROPNET_SIMD_DISPATCH(centered_square_sums<T>(x, mean, rows, cols, squares));
})

/// For the rows x cols column-major x, per row r: xhat = (x - mean(r)) scale(r), stored when
/// xhat is not null, and out = xhat gamma(r) + beta(r) (xhat + beta(r) when gamma is null).
/// out may be x; the levels differ by the contraction of xhat gamma + beta (one rounding).
template <class T>
void normalize_columns(const T* x, const T* mean, const T* scale, const T* gamma, const T* beta,
                       Eigen::Index rows, Eigen::Index cols, T* xhat, T* out) DROPNET_KERNEL_BODY({
  dropnet::detail::parallel_for_columns(rows, cols, [&](Eigen::Index j, Eigen::Index end) {
    const Eigen::Index at = j * rows;
    DROPNET_SIMD_DISPATCH(normalize_columns<T>(x + at, mean, scale, gamma, beta, rows, end - j,
                                               shifted(xhat, at), out + at));
  });
})

/// dx = ((dy - xhat b(r)) - a(r)) c(r) for the rows x cols column-major dy, xhat and dx (a, b,
/// c: rows): BatchNorm's input gradient. dx may be dy; the levels differ by the contraction of
/// dy - xhat b (one rounding).
template <class T>
void batch_norm_input_gradient(const T* dy, const T* xhat, const T* a, const T* b, const T* c,
                               Eigen::Index rows, Eigen::Index cols, T* dx) DROPNET_KERNEL_BODY({
  dropnet::detail::parallel_for_columns(rows, cols, [&](Eigen::Index j, Eigen::Index end) {
    const Eigen::Index at = j * rows;
    DROPNET_SIMD_DISPATCH(
        batch_norm_input_gradient<T>(dy + at, xhat + at, a, b, c, rows, end - j, dx + at));
  });
})

/// out = exp(x) for i < n: 0 below ExpConstants<T>::low, inf above high, NaN for NaN. Error
/// against std::exp and between levels: see docs/performance.md (tests/test_simd.cpp bounds it).
template <class T>
void exponential(const T* x, T* out, Eigen::Index n) DROPNET_KERNEL_BODY({
  for_elements<T>(n, [&](Eigen::Index i, Eigen::Index end) {
    DROPNET_SIMD_DISPATCH(exponential<T>(x + i, out + i, end - i));
  });
})

/// out = 1 / (1 + exp(-z)) for i < n (Sigmoid), times d[i] unless d is null (Softplus's
/// backward pass); 0 below z = -88.3 (float) or -709.4 (double), where exp(-z) overflows.
template <class T>
void logistic(const T* z, const T* d, T* out, Eigen::Index n) DROPNET_KERNEL_BODY({
  for_elements<T>(n, [&](Eigen::Index i, Eigen::Index end) {
    DROPNET_SIMD_DISPATCH(logistic<T>(z + i, shifted(d, i), out + i, end - i));
  });
})

/// out = z sigmoid(z (a1 + a3 z^2)) for i < n: Swish (a1 = 1, a3 = 0) and GELU's tanh form
/// (z/2 (1 + tanh(u)) = z sigmoid(2u), u = k (z + c z^3): a1 = 2k, a3 = 2kc).
template <class T>
void gated_linear(const T* z, T* out, Eigen::Index n, T a1, T a3) DROPNET_KERNEL_BODY({
  for_elements<T>(n, [&](Eigen::Index i, Eigen::Index end) {
    DROPNET_SIMD_DISPATCH(gated_linear<T>(z + i, out + i, end - i, a1, a3));
  });
})

/// dz = da s (1 + z (1 - s) (a1 + 3 a3 z^2)), s = sigmoid(z (a1 + a3 z^2)), for i < n:
/// gated_linear's backward pass (Swish, GELUTanh).
template <class T>
void gated_linear_gradient(const T* z, const T* da, T* dz, Eigen::Index n, T a1,
                           T a3) DROPNET_KERNEL_BODY({
  for_elements<T>(n, [&](Eigen::Index i, Eigen::Index end) {
    DROPNET_SIMD_DISPATCH(gated_linear_gradient<T>(z + i, da + i, dz + i, end - i, a1, a3));
  });
})

/// out = tanh(z) for i < n, as t / (t + 2), t = expm1(2z); tanh(-0) = -0, NaN stays NaN.
template <class T>
void hyperbolic_tangent(const T* z, T* out, Eigen::Index n) DROPNET_KERNEL_BODY({
  for_elements<T>(n, [&](Eigen::Index i, Eigen::Index end) {
    DROPNET_SIMD_DISPATCH(hyperbolic_tangent<T>(z + i, out + i, end - i));
  });
})

/// GELU's exact (erf) form for i < n, float only: with da null, out = z/2 (1 + erf(z/sqrt 2));
/// else out = da (Phi(z) + z phi(z)), its backward pass. A template on nothing (Float is
/// unused) because every kernel entry point is one: see DROPNET_KERNELS_DECLARED.
template <class Float = float>
void gaussian_error_linear(const float* z, const float* da, float* out,
                           Eigen::Index n) DROPNET_KERNEL_BODY({
  for_elements<float>(n, [&](Eigen::Index i, Eigen::Index end) {
    DROPNET_SIMD_DISPATCH(gaussian_error_linear<float>(z + i, shifted(da, i), out + i, end - i));
  });
})

/// out = max(z, 0) + log1p(exp(-|z|)) for i < n (Softplus): finite for finite z.
template <class T>
void softplus(const T* z, T* out, Eigen::Index n) DROPNET_KERNEL_BODY({
  for_elements<T>(n, [&](Eigen::Index i, Eigen::Index end) {
    DROPNET_SIMD_DISPATCH(softplus<T>(z + i, out + i, end - i));
  });
})

/// dz = da a (1 - a) (Sigmoid's derivative from its output a), or da (1 - a^2) with tanh, for
/// i < n.
template <class T>
void output_gradient(const T* a, const T* da, T* dz, Eigen::Index n,
                     bool tanh) DROPNET_KERNEL_BODY({
  for_elements<T>(n, [&](Eigen::Index i, Eigen::Index end) {
    DROPNET_SIMD_DISPATCH(output_gradient<T>(a + i, da + i, dz + i, end - i, tanh));
  });
})

/// ELU and SELU for i < n, with d = z (forward) or da (backward):
///   forward:  z > 0 ? scale z  : scale_alpha expm1(z)
///   backward: z > 0 ? scale da : scale_alpha exp(z) da
template <class T>
void exponential_branch(const T* z, const T* d, T* out, Eigen::Index n, T scale, T scale_alpha,
                        bool forward) DROPNET_KERNEL_BODY({
  for_elements<T>(n, [&](Eigen::Index i, Eigen::Index end) {
    DROPNET_SIMD_DISPATCH(
        exponential_branch<T>(z + i, d + i, out + i, end - i, scale, scale_alpha, forward));
  });
})

#undef DROPNET_SIMD_DISPATCH

}  // namespace dropnet::simd
