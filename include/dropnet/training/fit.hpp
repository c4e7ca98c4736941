#pragma once
// fit: the training loop.
//
// Each epoch shuffles the sample order with the user's Generator, runs mini-batches of
// `batch_size` (the last one may be smaller) through forward, loss, backward, optimizer step and
// constraints, then evaluates the validation data if given. The returned History holds, per
// epoch, the running mean of the training loss (data loss + penalty) and accuracy over the
// epoch's batches, as the seed notebook computes them, and the validation loss and accuracy.
// With FitOptions::communicator set, the same call on every rank of a group of processes trains
// one model data-parallel (training/data_parallel.hpp, docs/distributed.md).

#include <chrono>
#include <cmath>
#include <initializer_list>
#include <numeric>
#include <optional>
#include <vector>

#include "../losses/loss.hpp"
#include "batching.hpp"
#include "callback.hpp"
#include "data_parallel.hpp"
#include "evaluate.hpp"
#include "train_step.hpp"

namespace dropnet {

/// How fit trains: epochs, batching, gradient clipping, callbacks and the non-finite policy.
template <class T>
struct FitOptions {
  /// Passes over the training data (fewer if a callback or the non-finite policy stops early).
  int epochs = 10;
  /// Samples per mini-batch; the last batch of an epoch may be smaller.
  Index batch_size = 32;
  /// Reshuffle the sample order each epoch with fit's Generator (as PyTorch's DataLoader).
  bool shuffle = true;
  Index eval_batch_size = 1024;            ///< batch size for validation passes
  std::optional<double> clip_grad_value;   ///< clamp each gradient entry to [-v, v] before a step
  std::optional<double> clip_grad_norm;    ///< then rescale to global L2 norm <= this (torch)
  std::vector<Callback<T>*> callbacks;     ///< not owned; called in order
  NonFiniteOptions nonfinite;              ///< on a NaN/Inf loss or gradient: throw (default),
                                           ///< skip the batch, or stop (nonfinite_policy.hpp)
  /// Not owned. Set: data-parallel training over its ranks, each calling fit with the same
  /// arguments (batch_size is then per rank); see training/data_parallel.hpp. Null: this
  /// process alone, as before.
  distributed::Communicator* communicator = nullptr;
};

/// Validation data for fit: views of data the caller keeps alive. `ValidationData{x, y}`
/// deduces T and Target (deduction guide below).
template <class T, class Target>
struct ValidationData {
  /// Validation inputs, features x samples (a view: a Matrix, Map or block of the caller's).
  MatrixView<T> x;
  /// Validation targets: Labels or a target matrix, as fit's y.
  const Target& y;
};

/// ValidationData{x, y}: T from x's scalar type (x a Matrix, Map or any Eigen matrix expression).
template <class X, class Target>
ValidationData(const Eigen::MatrixBase<X>&, const Target&)
    -> ValidationData<typename X::Scalar, Target>;

namespace detail {

/// Everything fit can check before the first update, so that bad input never costs a
/// half-trained model.
template <class T, class Target>
void require_fit_arguments(Sequential<T>& model, const Loss<T>& loss, Optimizer<T>& optimizer,
                           const MatrixView<T>& x, const Target& y, const FitOptions<T>& options,
                           const ValidationData<T, Target>* validation) {
  require(options.epochs >= 0, "fit", "epochs must be >= 0, got ", options.epochs);
  require(options.batch_size > 0, "fit", "batch_size must be > 0, got ", options.batch_size);
  require(options.eval_batch_size > 0, "fit", "eval_batch_size must be > 0, got ",
          options.eval_batch_size);
  for (const auto& clip : {options.clip_grad_value, options.clip_grad_norm})
    require(!clip || (std::isfinite(*clip) && *clip > 0), "fit",
            "gradient clipping thresholds must be finite and > 0, got ", clip.value_or(0.0));
  for (std::size_t i = 0; i < options.callbacks.size(); ++i)
    require(options.callbacks[i] != nullptr, "fit", "callbacks[", i, "] is a null pointer");
  require_dataset("fit", x, y);
  loss.require_targets(y, "fit");
  if (validation) {
    require_dataset("fit (validation)", validation->x, validation->y);
    loss.require_targets(validation->y, "fit (validation)");
  }
  if (model.output_features() > 0) {
    // Bad labels are caught before the first step, not half-way through an epoch.
    require_labels_in_range("fit", y, model.output_features());
    if (validation) require_labels_in_range("fit (validation)", validation->y, model.output_features());
  }
  require_input_features("fit", x, model.input_features());
  ModelState<T>(model).require_optimizer(optimizer, "fit");
  const Index smallest = smallest_batch(x.cols(), options.batch_size);
  require(options.communicator || smallest >= model.min_train_batch(), "fit", "a batch of ", smallest,
          " samples (", x.cols(), " samples in batches of ", options.batch_size,
          ") is too small: the model's layers need at least ", model.min_train_batch(),
          " per train-mode batch; change batch_size or drop samples");
}

/// What every rank of a distributed fit must agree on besides the model: the shapes that fix
/// how many collective calls each rank makes.
template <class T, class Target>
std::vector<std::string> distributed_layout(Sequential<T>& model, const MatrixView<T>& x,
                                            const FitOptions<T>& options,
                                            const ValidationData<T, Target>* validation) {
  const int world = options.communicator->size();
  const Index smallest = DataParallel<T>::smallest_shard(x.cols(), options.batch_size, world);
  DataParallel<T>::require_no_idle_synced_layer(
      model, DataParallel<T>::has_idle_rank(x.cols(), options.batch_size, world));
  require(smallest >= model.min_train_batch(), "fit (distributed)", "a rank's slice of ",
          smallest, " samples is too small: the model's layers need at least ",
          model.min_train_batch(), " per train-mode batch; change batch_size or drop samples");
  return {concat("data ", x.rows(), "x", x.cols()), concat("epochs ", options.epochs),
          concat("batch_size ", options.batch_size), concat("shuffle ", options.shuffle),
          concat("validation ", validation != nullptr), concat("callbacks ", options.callbacks.size())};
}

template <class T, class Target>
History fit(Sequential<T>& model, const Loss<T>& loss, Optimizer<T>& optimizer,
            const MatrixView<T>& x, const Target& y, Generator& gen, const FitOptions<T>& options,
            const ValidationData<T, Target>* validation) {
  distributed::Communicator* comm = options.communicator;
  std::vector<std::string> layout;
  distributed::collectively(comm, "fit", [&] {  // bad input on one rank stops every rank
    require_fit_arguments(model, loss, optimizer, x, y, options, validation);
    if (comm) layout = distributed_layout(model, x, options, validation);
  });
  std::optional<DataParallel<T>> parallel;
  if (comm) parallel.emplace(*comm, model, optimizer, gen, layout);
  const Index samples = x.cols();
  const Index global_batch = parallel ? parallel->global_batch(options.batch_size) : options.batch_size;
  const Index batches = batch_count(samples, global_batch);
  History history;
  TrainingContext<T> context{model, optimizer, history, options.epochs, static_cast<long>(batches)};
  context.writes_files = !comm || comm->is_root();
  for (auto* callback : options.callbacks) callback->on_train_begin(context);

  std::vector<Index> order(static_cast<std::size_t>(samples));
  std::iota(order.begin(), order.end(), Index{0});
  Matrix<T> batch_x, output_grad;
  Target batch_y;
  BatchPrefetch<T> next_batch(x);
  struct Slice {
    Index first, count;  // this rank's columns of `order`
    Index global_count;  // the batch's columns over every rank
  };
  const auto slice = [&](Index b) {
    const Index first = b * global_batch, count = std::min(global_batch, samples - first);
    const auto [mine, my_count] = parallel ? parallel->shard(first, count) : std::pair{first, count};
    return Slice{mine, my_count, count};
  };
  NonFiniteGuard<T> guard(options.nonfinite, model);
  StepOptions<T> step{options.clip_grad_value, options.clip_grad_norm, &guard, &output_grad};

  for (int epoch = 0; epoch < options.epochs && !context.stop_training; ++epoch) {
    const auto start = std::chrono::steady_clock::now();
    for (auto* callback : options.callbacks) callback->on_epoch_begin(context, epoch);
    if (options.shuffle && parallel) parallel->shuffle(order, epoch);
    else if (options.shuffle) dropnet::shuffle(order.begin(), order.size(), gen);

    BatchLogs batch_logs{epoch, 0, static_cast<long>(batches), 0, 0.0, 0.0};
    double loss_sum = 0.0;
    Index correct = 0;
    Index accepted = 0;  // batches not skipped by the non-finite policy
    bool stopped = false;
    for (Index b = 0; b < batches; ++b) {
      const auto [mine, my_count, count] = slice(b);
      if (!next_batch.take(order.data() + mine, my_count, batch_x))
        gather_into(x, order.data() + mine, my_count, batch_x);
      gather_into(y, order.data() + mine, my_count, batch_y);
      if (b + 1 < batches) {
        const Slice next = slice(b + 1);
        next_batch.start(order.data() + next.first, next.count);
      }
      step.epoch = epoch;
      step.batch = static_cast<long>(b);
      const StepResult r = parallel ? parallel->step(loss, batch_x, batch_y, my_count, step)
                                    : train_step(model, loss, optimizer, batch_x, batch_y, gen, step);
      stopped = r.action == NonFiniteAction::stop;
      if (stopped) break;
      if (r.action == NonFiniteAction::skip) continue;

      correct += r.correct;
      loss_sum += r.loss;
      batch_logs.batch = static_cast<long>(b);
      batch_logs.samples += static_cast<long>(count);
      batch_logs.loss = loss_sum / static_cast<double>(++accepted);
      batch_logs.accuracy = static_cast<double>(correct) / static_cast<double>(batch_logs.samples);
      for (auto* callback : options.callbacks) callback->on_batch_end(context, batch_logs);
    }
    next_batch.cancel();  // a stop leaves with the next batch in flight: it reads `order`

    if (parallel) {  // evaluation and checkpoints see one model and one optimizer
      parallel->average_buffers();
      parallel->synchronize_optimizer();
    }
    if (stopped) {
      context.stop_training = true;
      break;
    }
    EpochLogs logs;
    logs.epoch = epoch;
    logs.loss = accepted > 0 ? batch_logs.loss : std::nan("");  // all skipped: no loss to report
    logs.accuracy = accepted > 0 ? batch_logs.accuracy : std::nan("");
    logs.learning_rate = static_cast<double>(optimizer.learning_rate());
    if (validation) {
      const Evaluation v =
          parallel ? parallel->evaluate(loss, validation->x, validation->y, options.eval_batch_size)
                   : evaluate(model, loss, validation->x, validation->y, options.eval_batch_size);
      logs.val_loss = v.loss;
      logs.val_accuracy = v.accuracy;
    }
    logs.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    history.epochs.push_back(logs);
    distributed::collectively(comm, "fit (on_epoch_end)", [&] {  // a failed save stops every rank
      for (auto* callback : options.callbacks) callback->on_epoch_end(context, logs);
    });
  }
  for (auto* callback : options.callbacks) callback->on_train_end(context);
  return history;
}

}  // namespace detail

/// Trains `model` on (x, y): x is features x samples (a Matrix<T>, or a Map or block viewed
/// without a copy), y integer labels or a target matrix.
/// Throws InvalidArgument (before any update) on mismatched shapes, empty data, non-finite
/// inputs or targets, out-of-range labels, an optimizer not built from model.parameters(), a
/// null callback or a batch too small for the model (BatchNorm); NumericalError if the loss or a gradient becomes non-finite
/// (unless options.nonfinite says to skip the batch or stop).
template <class T, class Target>
History fit(Sequential<T>& model, const Loss<T>& loss, Optimizer<T>& optimizer,
            const detail::ViewArg<T>& x, const Target& y, Generator& gen,
            const FitOptions<T>& options = {}) {
  if constexpr (detail::require_target_type<T, Target>())
    return detail::fit<T, Target>(model, loss, optimizer, x, y, gen, options, nullptr);
  else
    return {};
}

/// As above, evaluating `validation` in eval mode after each epoch (val_loss, val_accuracy).
template <class T, class Target>
History fit(Sequential<T>& model, const Loss<T>& loss, Optimizer<T>& optimizer,
            const detail::ViewArg<T>& x, const Target& y, Generator& gen,
            const FitOptions<T>& options, const ValidationData<T, Target>& validation) {
  if constexpr (detail::require_target_type<T, Target>())
    return detail::fit<T, Target>(model, loss, optimizer, x, y, gen, options, &validation);
  else
    return {};
}

}  // namespace dropnet
