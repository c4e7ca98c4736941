#pragma once
// gradient_check: back-propagation against central finite differences.
//
// For each checked entry theta of every parameter (and of the input, on request):
//   numeric  = (L(theta - 2h) - 8 L(theta - h) + 8 L(theta + h) - L(theta + 2h)) / (12h)
// (the five-point central difference: its O(h^4) truncation error lets h be large enough that
// rounding in L stays far below 1e-6 of even small gradients)
//   analytic = the gradient backward() wrote
//   error    = |analytic - numeric| / max(|analytic|, |numeric|, floor)
// L is the loss plus the model's penalty. Stochastic layers see the same masks in every pass:
// each evaluation runs in `mode` from a copy of `gen`, so masks are frozen. Use double.

#include <algorithm>
#include <cmath>
#include <string>

#include "../losses/loss.hpp"
#include "../model/sequential.hpp"

namespace dropnet {

/// What gradient_check compares and how (step, floor, sampling, mode).
struct GradientCheckOptions {
  double step = 1e-4;                 ///< h
  double floor = 1e-8;                ///< denominator floor, so exact zeros compare by absolute error
  Index max_entries_per_parameter = 0;  ///< 0 = every entry; otherwise an even spread of entries
  bool check_input = false;           ///< also compare d loss / d input
  /// Mode of every forward pass; stochastic layers see the same masks in each (train by default).
  Mode mode = Mode::train;
};

/// The outcome of gradient_check: the largest relative error and where it occurred.
struct GradientCheckResult {
  /// max over checked entries of |analytic - numeric| / max(|analytic|, |numeric|, floor).
  double max_relative_error = 0.0;
  std::string worst;                  ///< "0.Dense.weight[17]" where the error is largest
  /// backward()'s value at the worst entry.
  double worst_analytic = 0.0;
  /// The finite-difference value at the worst entry.
  double worst_numeric = 0.0;
  /// Number of entries compared.
  Index entries_checked = 0;
};

/// Compares the gradients backward() writes for (x, y) under `loss` with five-point finite
/// differences of the loss plus penalty (formula in the file comment above). Every pass starts
/// from a copy of `gen`, so masks are frozen; use T = double. Every perturbed parameter is put
/// back (train-mode passes still update BatchNorm's running statistics, as any forward does).
/// Throws InvalidArgument unless options.step > 0, and whatever forward and the loss throw for
/// mismatched x and y.
template <class T, class Target>
GradientCheckResult gradient_check(Sequential<T>& model, const Loss<T>& loss, const Matrix<T>& x,
                                   const Target& y, const Generator& gen,
                                   const GradientCheckOptions& options = {}) {
  detail::require(options.step > 0, "gradient_check", "step must be > 0, got ", options.step);
  auto total_loss = [&](const Matrix<T>& input) {
    Generator frozen = gen;
    const Matrix<T>& out = model.forward(input, options.mode, frozen);
    return static_cast<double>(loss.compute(out, y, nullptr)) + static_cast<double>(model.penalty());
  };

  // Analytic gradients from one forward/backward with the frozen masks.
  Matrix<T> output_grad;
  {
    Generator frozen = gen;
    const Matrix<T>& out = model.forward(x, options.mode, frozen);
    loss.compute(out, y, &output_grad);
  }
  const Matrix<T> input_grad = model.backward(output_grad, options.check_input);
  ParameterList<T> params = model.parameters();
  std::vector<Vector<T>> analytic;
  for (const auto& p : params) analytic.emplace_back(p.flat_grad());

  GradientCheckResult result;
  auto compare = [&](const std::string& name, Index i, double a, double numeric) {
    const double error =
        std::abs(a - numeric) / std::max({std::abs(a), std::abs(numeric), options.floor});
    ++result.entries_checked;
    if (error >= result.max_relative_error) {
      result.max_relative_error = error;
      result.worst = name + "[" + std::to_string(i) + "]";
      result.worst_analytic = a;
      result.worst_numeric = numeric;
    }
  };
  auto stride_for = [&](Index size) {
    const Index limit = options.max_entries_per_parameter;
    return limit > 0 && size > limit ? (size + limit - 1) / limit : Index{1};
  };
  const T h = static_cast<T>(options.step);
  auto central_difference = [&](auto loss_at) {
    const double far = loss_at(-2 * h) - loss_at(2 * h);
    const double near = loss_at(h) - loss_at(-h);
    return (far + 8 * near) / (12 * options.step);
  };

  for (std::size_t k = 0; k < params.size(); ++k) {
    T* values = params[k].value;
    for (Index i = 0; i < params[k].size(); i += stride_for(params[k].size())) {
      const T saved = values[i];
      const double numeric = central_difference([&](T offset) {
        values[i] = saved + offset;
        return total_loss(x);
      });
      values[i] = saved;
      compare(params[k].name, i, static_cast<double>(analytic[k](i)), numeric);
    }
  }
  if (options.check_input) {
    Matrix<T> perturbed = x;
    for (Index i = 0; i < x.size(); i += stride_for(x.size())) {
      const double numeric = central_difference([&](T offset) {
        perturbed.data()[i] = x.data()[i] + offset;
        return total_loss(perturbed);
      });
      perturbed.data()[i] = x.data()[i];
      compare("input", i, static_cast<double>(input_grad.data()[i]), numeric);
    }
  }
  return result;
}

}  // namespace dropnet
