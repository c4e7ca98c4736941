#pragma once
// train_step: one mini-batch of training, the body of fit's loop, for custom loops.
//
//   StepResult r = train_step(model, loss, optimizer, batch_x, batch_y, gen);
//   // r.loss (data loss + penalty), r.correct (for accuracy), r.action
//
// In order: forward in train mode, loss and its gradient, backward, then (apply_gradients)
// clipping by value and by norm, the optimizer's step and the layers' constraints (max-norm).
// compute_gradients and apply_gradients are the two halves, for loops that act on the
// gradients in between (e.g. averaging them across processes).
//
// A non-finite loss or gradient throws NumericalError naming the layer, unless
// StepOptions::nonfinite points at fit's NonFiniteGuard, which may skip the batch or stop.
// Passing StepOptions::output_grad (a matrix kept across steps) makes a step allocate nothing
// once the batch size is stable; fit does. The optimizer must have been built from
// model.parameters(): fit checks it once; a custom loop can call
// ModelState<T>(model).require_optimizer(optimizer, "my loop") before its first step.

#include <cmath>
#include <optional>

#include "../losses/loss.hpp"
#include "../regularizers/gradient_clipping.hpp"
#include "nonfinite_policy.hpp"

namespace dropnet {

/// How train_step treats a batch beyond forward, backward and the step.
template <class T>
struct StepOptions {
  std::optional<double> clip_grad_value;  ///< clamp each gradient entry to [-v, v] before a step
  std::optional<double> clip_grad_norm;   ///< then rescale to global L2 norm <= this (torch)
  NonFiniteGuard<T>* nonfinite = nullptr;  ///< fit's policy; null: non-finite values throw
  Matrix<T>* output_grad = nullptr;  ///< scratch for d loss / d output, kept by the caller
  int epoch = 0;                     ///< 0-based, for messages
  long batch = 0;                    ///< 0-based within the epoch, for messages
};

/// What one training step did.
struct StepResult {
  double loss = 0.0;  ///< data loss + penalty on the batch (NaN or Inf if it was not finite)
  Index correct = 0;  ///< samples the model classified right, before the update
  NonFiniteAction action = NonFiniteAction::proceed;  ///< skip or stop: no update was made
};

/// Forward, loss and backward on one batch: the gradients are then ready for apply_gradients.
/// `batch_x` must stay alive and unchanged until then (the layers read it in place).
template <class T, class Target>
StepResult compute_gradients(Sequential<T>& model, const Loss<T>& loss, const Matrix<T>& batch_x,
                             const Target& batch_y, Generator& gen,
                             const StepOptions<T>& options = {}) {
  Matrix<T> local_grad;
  Matrix<T>& output_grad = options.output_grad ? *options.output_grad : local_grad;
  NonFiniteGuard<T>* guard = options.nonfinite;
  std::optional<NonFiniteGuard<T>> throwing_guard;
  if (!guard) guard = &throwing_guard.emplace(NonFiniteOptions{}, model);

  guard->begin_batch();
  const Matrix<T>& out = model.forward_borrowed(batch_x, Mode::train, &gen);
  StepResult result;
  const T batch_loss = loss.compute(out, batch_y, &output_grad) + model.penalty();
  result.loss = static_cast<double>(batch_loss);
  result.action = guard->check_loss(batch_loss, batch_x, options.epoch, options.batch);
  if (result.action != NonFiniteAction::proceed) return result;
  result.correct = loss.correct(out, batch_y);
  model.backward(output_grad);
  result.action = guard->check_gradients(options.epoch, options.batch);
  return result;
}

namespace detail {

/// Clipping of `gradients` by value then by norm, then the optimizer's step. `gradients` are
/// the optimizer's parameters, or the part of them a sharded data-parallel step updates; then
/// `sum_over_ranks` turns the part's sum of squared gradients into the whole model's.
template <class T, class SumOverRanks>
void clip_and_step(Optimizer<T>& optimizer, const ParameterList<T>& gradients,
                   const StepOptions<T>& options, SumOverRanks&& sum_over_ranks) {
  if (options.clip_grad_value) clip_grad_value(gradients, *options.clip_grad_value);
  if (options.clip_grad_norm)
    clip_grad_norm_given(gradients, *options.clip_grad_norm, true,
                         sum_over_ranks(gradient_sum_of_squares(gradients)));
  optimizer.step();
}

}  // namespace detail

/// Clipping, the optimizer's step and the layers' constraints, from the current gradients.
template <class T>
void apply_gradients(Sequential<T>& model, Optimizer<T>& optimizer,
                     const StepOptions<T>& options = {}) {
  detail::clip_and_step(optimizer, optimizer.parameters(), options, [](double sum) { return sum; });
  model.apply_constraints();
}

/// One training step on (batch_x, batch_y); see the header comment. The update is made only
/// when the result's action is proceed.
template <class T, class Target>
StepResult train_step(Sequential<T>& model, const Loss<T>& loss, Optimizer<T>& optimizer,
                      const Matrix<T>& batch_x, const Target& batch_y, Generator& gen,
                      const StepOptions<T>& options = {}) {
  StepResult result = compute_gradients(model, loss, batch_x, batch_y, gen, options);
  if (result.action == NonFiniteAction::proceed) apply_gradients(model, optimizer, options);
  return result;
}

}  // namespace dropnet
