#pragma once
// mc_predict: Monte-Carlo dropout (Gal & Ghahramani 2016).
//
// Runs T forward passes in Mode::mc_sample: dropout-family layers draw fresh masks from `gen`
// in every pass, everything else (BatchNorm) behaves as in eval and nothing is updated. With
// y_t the model's output in pass t, per output unit and sample:
//   mean      = (1/T) sum_t y_t
//   variance  = (1/T) sum_t (y_t - mean)^2     (the MC estimate of the model's predictive
//                                               variance; Gal's tau^-1 observation noise is not
//                                               included: add it for a regression likelihood)
// For classifiers (options.outputs = logits or probabilities), with p_t the pass's class
// probabilities (softmax of the logits, or the outputs themselves; a single output is a binary
// classifier: sigmoid of the logit, or the probability of class 1):
//   probabilities       = pbar = (1/T) sum_t p_t
//   predictive_entropy  = H[pbar] = -sum_k pbar_k log pbar_k          in [0, log K]
//   expected_entropy    = (1/T) sum_t H[p_t]
//   mutual_information  = H[pbar] - E[H[p_t]]   (BALD; >= 0 by concavity of H, clamped at 0
//                                                where rounding would make it -epsilon)
// x is processed `batch_size` columns at a time (T passes per batch), so memory is bounded by
// one batch's activations. Draws are consumed batch by batch, pass by pass: the result is a
// function of (seed, position, batch_size).
// Throws InvalidArgument if T < 1, batch_size < 1, x is empty or does not match the model, or the
// model has no stochastic layer (every pass would be identical: that is a mistake, not an
// uncertainty estimate of zero -- use predict). A dropout with p = 0 counts as stochastic and
// yields variance 0.

#include <algorithm>
#include <cmath>

#include "../activations/sigmoid.hpp"
#include "../activations/softmax.hpp"
#include "../model/sequential.hpp"
#include "batching.hpp"

namespace dropnet {

/// What the model's outputs are.
enum class McOutputs {
  regression,     ///< only mean and variance
  logits,         ///< classifier scores: softmax (sigmoid for one output) per pass
  probabilities,  ///< classifier probabilities already (e.g. a final Softmax)
};

/// How mc_predict batches and interprets the outputs.
struct McDropoutOptions {
  Index batch_size = 256;  ///< columns of x per group of T passes (bounds memory)
  /// What the model outputs (regression, logits or probabilities): decides which fields are filled.
  McOutputs outputs = McOutputs::regression;
};

/// What mc_predict returns; see the formulas at the top of this header.
template <class T>
struct McPrediction {
  /// T, the number of stochastic passes averaged.
  int passes = 0;
  Matrix<T> mean;      ///< outputs x samples
  Matrix<T> variance;  ///< outputs x samples
  // Classifiers only (empty for regression):
  Matrix<T> probabilities;       ///< outputs x samples, mean class probabilities
  Vector<T> predictive_entropy;  ///< one per sample, nats
  Vector<T> expected_entropy;    ///< one per sample, nats
  Vector<T> mutual_information;  ///< one per sample, nats
};

namespace detail {

/// Class probabilities of one pass's outputs.
template <class T>
void mc_probabilities(const Matrix<T>& y, McOutputs outputs, Matrix<T>& p) {
  if (outputs == McOutputs::probabilities) {
    p = y;
  } else if (y.rows() == 1) {
    Sigmoid{}.forward(y, p);
  } else {
    Softmax{}.forward(y, p);
  }
}

/// Entropy in nats of column j of p (a single row is the probability of class 1 of 2).
template <class T>
T column_entropy(const Matrix<T>& p, Index j) {
  auto term = [](T q) { return q > T(0) ? -q * std::log(q) : T(0); };
  if (p.rows() == 1) return term(p(0, j)) + term(T(1) - p(0, j));
  T h = T(0);
  for (Index k = 0; k < p.rows(); ++k) h += term(p(k, j));
  return h;
}

/// Welford's update of a running mean and sum of squared deviations with pass number `n`
/// (1-based): stable where the naive sum of squares would cancel.
template <class T, class Block>
void welford_update(const Matrix<T>& y, Index n, Block mean, Block m2, Matrix<T>& delta) {
  delta = y - mean;
  mean += delta / static_cast<T>(n);
  m2.array() += delta.array() * (y - mean).array();
}

}  // namespace detail

/// Monte-Carlo dropout: `passes` stochastic forward passes (Mode::mc_sample) over x (features x
/// samples), reduced to a mean and variance per output, plus class probabilities and entropies for
/// a classifier (formulas in the file comment above). Throws InvalidArgument if passes < 1,
/// options.batch_size < 1, x is empty or does not fit the model, or the model has no stochastic
/// layer.
template <class T>
McPrediction<T> mc_predict(Sequential<T>& model, const Matrix<T>& x, int passes, Generator& gen,
                           const McDropoutOptions& options = {}) {
  detail::require(passes >= 1, "mc_predict", "passes T must be >= 1, got ", passes);
  detail::require(options.batch_size > 0, "mc_predict", "batch_size must be > 0, got ",
                  options.batch_size);
  detail::require(x.cols() > 0, "mc_predict", "empty input (0 columns)");
  detail::require(model.is_stochastic(), "mc_predict",
                  "the model has no stochastic layer (dropout): all ", passes,
                  " passes would be identical; use predict for a deterministic model");
  const bool classifier = options.outputs != McOutputs::regression;

  McPrediction<T> result;
  result.passes = passes;
  Matrix<T> delta, probs;
  detail::for_each_batch(x, options.batch_size, [&](const Matrix<T>& batch, Index first, Index count) {
    for (int t = 0; t < passes; ++t) {
      const Matrix<T>& y = model.forward_borrowed(batch, Mode::mc_sample, &gen);
      if (first == 0 && t == 0) {
        result.mean = Matrix<T>::Zero(y.rows(), x.cols());
        result.variance = Matrix<T>::Zero(y.rows(), x.cols());
        if (classifier) {
          result.probabilities = Matrix<T>::Zero(y.rows(), x.cols());
          result.expected_entropy = Vector<T>::Zero(x.cols());
        }
      }
      detail::welford_update(y, t + 1, result.mean.middleCols(first, count),
                             result.variance.middleCols(first, count), delta);
      if (!classifier) continue;
      detail::mc_probabilities(y, options.outputs, probs);
      result.probabilities.middleCols(first, count) += probs;
      for (Index j = 0; j < count; ++j)
        result.expected_entropy(first + j) += detail::column_entropy(probs, j);
    }
  });

  const T inv_passes = T(1) / static_cast<T>(passes);
  result.variance *= inv_passes;
  if (classifier) {
    result.probabilities *= inv_passes;
    result.expected_entropy *= inv_passes;
    result.predictive_entropy.resize(x.cols());
    for (Index j = 0; j < x.cols(); ++j)
      result.predictive_entropy(j) = detail::column_entropy(result.probabilities, j);
    result.mutual_information =
        (result.predictive_entropy - result.expected_entropy).cwiseMax(T(0));
  }
  return result;
}

}  // namespace dropnet
