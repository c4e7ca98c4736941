#pragma once
// Gradient clipping, as torch.nn.utils.clip_grad_norm_ and clip_grad_value_.
//
// clip_grad_norm(params, max_norm):
//   total = sqrt(sum over every gradient entry of g^2)        (one L2 norm over all parameters)
//   coef  = max_norm / (total + 1e-6);  if coef < 1, every gradient is multiplied by coef
//   returns total (the norm before clipping), e.g. to log it.
// clip_grad_value(params, v): every gradient entry is clamped to [-v, v].
//
// Views without a gradient (buffers) are skipped. The sum of squares is accumulated in double,
// so float models may differ from torch in the last bit of the norm. Throws InvalidArgument when
// max_norm or v is negative or not finite; clip_grad_norm with error_if_nonfinite throws
// NumericalError when the total norm is NaN or infinite (torch's flag of the same name).

#include <cmath>

#include "../core/error.hpp"
#include "../core/parameter.hpp"

namespace dropnet {

namespace detail {

/// The sum over every gradient entry in `params` of g^2, in double (buffers skipped).
template <class T>
double gradient_sum_of_squares(const ParameterList<T>& params) {
  double sum_of_squares = 0.0;
  for (const auto& p : params)
    if (p.grad) sum_of_squares += p.flat_grad().template cast<double>().squaredNorm();
  return sum_of_squares;
}

/// clip_grad_norm with the sum of squares given: `sum_of_squares` may cover more gradients than
/// `params` (a data-parallel step clips its share of the gradients by the norm of all of them).
template <class T>
double clip_grad_norm_given(const ParameterList<T>& params, double max_norm,
                            bool error_if_nonfinite, double sum_of_squares) {
  detail::require(std::isfinite(max_norm) && max_norm >= 0.0, "clip_grad_norm",
                  "max_norm must be finite and >= 0, got ", max_norm);
  const double total = std::sqrt(sum_of_squares);
  if (error_if_nonfinite && !std::isfinite(total))
    throw NumericalError(detail::concat("clip_grad_norm: the total gradient norm is ", total));
  // Like torch, a non-finite total still scales (by NaN or 0): the caller asked not to check.
  const double coef = max_norm / (total + 1e-6);
  if (coef < 1.0 || std::isnan(coef))
    for (const auto& p : params)
      if (p.grad) p.flat_grad() *= static_cast<T>(coef);
  return total;
}

}  // namespace detail

/// Scales every gradient in `params` so their joint L2 norm is at most max_norm, as
/// torch.nn.utils.clip_grad_norm_; returns the norm before clipping. Throws InvalidArgument
/// unless max_norm is finite and >= 0; with error_if_nonfinite, NumericalError on a non-finite
/// norm.
template <class T>
double clip_grad_norm(const ParameterList<T>& params, double max_norm,
                      bool error_if_nonfinite = false) {
  return detail::clip_grad_norm_given(params, max_norm, error_if_nonfinite,
                                      detail::gradient_sum_of_squares(params));
}

/// Clamps every gradient entry in `params` to [-clip_value, clip_value], as
/// torch.nn.utils.clip_grad_value_; throws InvalidArgument unless clip_value is finite and >= 0.
template <class T>
void clip_grad_value(const ParameterList<T>& params, double clip_value) {
  detail::require(std::isfinite(clip_value) && clip_value >= 0.0, "clip_grad_value",
                  "clip_value must be finite and >= 0, got ", clip_value);
  const T v = static_cast<T>(clip_value);
  for (const auto& p : params)
    if (p.grad) p.flat_grad() = p.flat_grad().cwiseMax(-v).cwiseMin(v);
}

}  // namespace dropnet
