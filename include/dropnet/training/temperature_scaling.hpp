#pragma once
// Temperature scaling (Guo et al. 2017): one scalar T > 0 divides a classifier's logits,
//   p = softmax(z / T),
// fitted after training on held-out (validation) logits by minimizing the mean negative
// log-likelihood
//   NLL(T) = (1/n) sum_j [ logsumexp(z_j / T) - z_j,y_j / T ].
// T > 1 softens over-confident predictions; the argmax, hence the accuracy, never changes.
//
// The 1-D method: golden-section search on log T over a bracket ([0.05, 20] by default). With
// beta = 1/T, NLL is a log-sum-exp of linear functions of beta minus a linear one, so it is
// convex in beta; log T = -log beta is monotone, so NLL has a single minimum along log T
// (unimodal) and golden section converges to it without derivatives, never leaving the bracket
// or diverging on flat or degenerate data (Newton on T can). Each step shrinks the bracket by
// 0.618; the default tolerance, 1e-4 in log T (T to 0.01%), takes about 25 evaluations of NLL.
// A minimum at an end of the bracket is reported as such (at_bound), so a user can widen it.
//
// Apply the fitted T at prediction time by appending TemperatureScaling<T>(t) to the model:
// its output becomes z / T, so predict, evaluate, mc_predict and a saved model all use it, and
// its config() {"temperature"} is saved with the architecture.

#include <cmath>

#include "../core/error.hpp"
#include "../core/types.hpp"
#include "../layers/temperature_scaling.hpp"

namespace dropnet {

/// Bracket and tolerance of fit_temperature.
struct TemperatureFitOptions {
  double min_temperature = 0.05;  ///< lower end of the bracket, > 0
  double max_temperature = 20.0;  ///< upper end, > min_temperature
  double tolerance = 1e-4;        ///< stop when the bracket is this narrow in log T
};

/// What fit_temperature found.
struct TemperatureFit {
  double temperature = 1.0;  ///< the minimizer of NLL(T) within the bracket
  double nll_before = 0.0;   ///< NLL(1): the model's own softmax
  double nll_after = 0.0;    ///< NLL(temperature)
  int evaluations = 0;       ///< NLL evaluations the search made
  bool at_bound = false;     ///< true if the minimum lies at an end of the bracket
};

/// NLL(T) of `logits` (classes x samples) for `labels`, in double with a stable log-sum-exp.
/// Throws InvalidArgument if the sizes differ, a label is out of range or T <= 0.
template <class T>
double temperature_nll(const Matrix<T>& logits, const Labels& labels, double temperature) {
  detail::require(temperature > 0 && std::isfinite(temperature), "temperature_nll",
                  "temperature must be finite and > 0, got ", temperature);
  detail::require(logits.cols() > 0 && labels.size() == logits.cols(), "temperature_nll",
                  labels.size(), " labels for ", logits.cols(), " samples (columns)");
  double total = 0.0;
  const double beta = 1.0 / temperature;
  for (Index j = 0; j < logits.cols(); ++j) {
    detail::require(labels(j) >= 0 && labels(j) < logits.rows(), "temperature_nll", "label ",
                    labels(j), " of sample ", j, " is outside [0, ", logits.rows(), ")");
    const auto z = logits.col(j).template cast<double>();
    const double top = beta * z.maxCoeff();
    const double log_sum = top + std::log((beta * z.array() - top).exp().sum());
    total += log_sum - beta * z(labels(j));
  }
  return total / static_cast<double>(logits.cols());
}

/// Fits T on validation logits by golden-section search on log T (see the header comment).
/// Throws InvalidArgument for a bad bracket or tolerance, or as temperature_nll.
template <class T>
TemperatureFit fit_temperature(const Matrix<T>& logits, const Labels& labels,
                               const TemperatureFitOptions& options = {}) {
  detail::require(options.min_temperature > 0 &&
                      options.max_temperature > options.min_temperature &&
                      std::isfinite(options.max_temperature),
                  "fit_temperature", "the bracket must satisfy 0 < min < max < inf, got [",
                  options.min_temperature, ", ", options.max_temperature, "]");
  detail::require(options.tolerance > 0, "fit_temperature", "tolerance must be > 0, got ",
                  options.tolerance);
  TemperatureFit fit;
  auto nll_at = [&](double log_t) {
    ++fit.evaluations;
    return temperature_nll(logits, labels, std::exp(log_t));
  };
  const double shrink = (std::sqrt(5.0) - 1.0) / 2.0;  // 0.618: the golden ratio's inverse
  double low = std::log(options.min_temperature), high = std::log(options.max_temperature);
  double left = high - shrink * (high - low), right = low + shrink * (high - low);
  double f_left = nll_at(left), f_right = nll_at(right);
  while (high - low > options.tolerance) {
    // Keep the side holding the lower value; the surviving inner point is reused.
    if (f_left <= f_right) {
      high = right;
      right = left;
      f_right = f_left;
      left = high - shrink * (high - low);
      f_left = nll_at(left);
    } else {
      low = left;
      left = right;
      f_left = f_right;
      right = low + shrink * (high - low);
      f_right = nll_at(right);
    }
  }
  const double log_t = 0.5 * (low + high);
  fit.temperature = std::exp(log_t);
  fit.nll_after = nll_at(log_t);
  fit.nll_before = temperature_nll(logits, labels, 1.0);
  const double edge = 2 * options.tolerance;
  fit.at_bound = log_t - std::log(options.min_temperature) < edge ||
                 std::log(options.max_temperature) - log_t < edge;
  return fit;
}

}  // namespace dropnet
