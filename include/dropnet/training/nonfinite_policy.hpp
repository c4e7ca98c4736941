#pragma once
// What fit does when training produces a NaN or an infinity (FitOptions::nonfinite).
//
//   NonFinitePolicy::throw_error       (default) throw NumericalError naming the epoch, the
//                                      batch (both 1-based) and where the value appeared
//   NonFinitePolicy::skip_batch        drop the batch: no optimizer step, and the buffers
//                                      (BatchNorm running statistics) get back their values from
//                                      before the batch. After max_consecutive_skips skipped
//                                      batches in a row it throws as throw_error does: the weights
//                                      themselves are then poisoned and skipping only hides it.
//   NonFinitePolicy::stop_and_restore  put back the parameters and buffers of the last batch
//                                      whose loss and gradients were finite (as they were before
//                                      that batch's step) and stop training at once; the epoch
//                                      in progress is not added to the History.
//
// Checked every batch: the loss (data loss + penalty) after forward, then every gradient the
// optimizer will apply, after backward and before clipping and the step. A step from finite
// values can still overflow the weights (a huge learning rate); that shows up as a non-finite
// loss at the next batch, and stop_and_restore then returns to the weights before that step.
// Where: for a gradient, the parameter and its layer ("layer 2 Dense(8->8, ReLU), parameter
// 2.Dense.weight"); for the loss, the first non-finite parameter or buffer if there is one,
// else the first layer whose output is non-finite when the batch is re-run in eval mode (a
// diagnosis only: it updates nothing and draws nothing), else the loss itself.
// Every event is appended to *log when NonFiniteOptions::log is set.
//
// Cost per batch: one pass over the gradients (throw_error); plus a copy of the buffers
// (skip_batch) or of every parameter and buffer (stop_and_restore). Nothing is allocated after
// the first batch.

#include <cmath>
#include <string>
#include <vector>

#include "../core/error.hpp"
#include "../core/finite.hpp"
#include "../model/model_state.hpp"

namespace dropnet {

/// What fit does on a NaN or infinite loss or gradient (see the file comment above).
enum class NonFinitePolicy { throw_error, skip_batch, stop_and_restore };

/// One non-finite loss or gradient seen by fit.
struct NonFiniteEvent {
  int epoch = 0;       ///< 0-based, like EpochLogs::epoch
  long batch = 0;      ///< 0-based within the epoch
  std::string what;    ///< e.g. "non-finite gradient (nan) in layer 1 Dense(4->3, ReLU), ..."
};

/// What fit recorded under NonFiniteOptions::log.
struct NonFiniteLog {
  /// Every non-finite loss or gradient, in order.
  std::vector<NonFiniteEvent> events;
  /// Batches dropped by skip_batch.
  long skipped_batches = 0;
  bool stopped = false;  ///< stop_and_restore ended training
};

/// FitOptions::nonfinite: the policy, its limit and where to log events.
struct NonFiniteOptions {
  /// What to do (default throw_error, which throws NumericalError).
  NonFinitePolicy policy = NonFinitePolicy::throw_error;
  long max_consecutive_skips = 100;  ///< skip_batch: throw after this many in a row
  NonFiniteLog* log = nullptr;       ///< not owned; receives every event when set
};

/// What fit does with the current batch after a check.
enum class NonFiniteAction { proceed, skip, stop };

/// fit's helper that applies a NonFiniteOptions; see the header comment.
template <class T>
class NonFiniteGuard {
 public:
  /// Applies `options` to the model's tensors (ModelState); throws InvalidArgument for a bad option.
  NonFiniteGuard(const NonFiniteOptions& options, Sequential<T>& model)
      : options_(options), model_(model), state_(model) {
    detail::require(options.max_consecutive_skips >= 1, "fit",
                    "nonfinite.max_consecutive_skips must be >= 1, got ",
                    options.max_consecutive_skips);
    // Both copies are sized here, so that saving them per batch allocates nothing.
    if (options.policy == NonFinitePolicy::skip_batch) buffers_.capture(state_.buffers());
    if (options.policy == NonFinitePolicy::stop_and_restore) last_good_.capture(state_.tensors());
  }

  /// Call before the batch's forward.
  void begin_batch() {
    if (options_.policy == NonFinitePolicy::skip_batch) buffers_.capture(state_.buffers());
  }

  /// Call with the batch's loss after forward; `batch_x` is the batch, re-run in eval mode to
  /// locate the first non-finite output.
  NonFiniteAction check_loss(T loss, const Matrix<T>& batch_x, int epoch, long batch) {
    if (std::isfinite(static_cast<double>(loss))) return NonFiniteAction::proceed;
    return react(epoch, batch,
                 detail::concat("non-finite loss ", loss, " (", locate_loss(batch_x), ")"));
  }

  /// Call after backward, before clipping and the step. On proceed with stop_and_restore, the
  /// current weights become the "last good" ones.
  NonFiniteAction check_gradients(int epoch, long batch) {
    const ParameterList<T>& params = state_.parameters();
    for (std::size_t i = 0; i < params.size(); ++i)
      if (!detail::all_finite(params[i].flat_grad()))
        return react(epoch, batch, detail::concat("non-finite gradient in ", describe(params[i])));
    consecutive_skips_ = 0;
    if (options_.policy == NonFinitePolicy::stop_and_restore) {
      last_good_.capture(state_.tensors());
      has_last_good_ = true;
    }
    return NonFiniteAction::proceed;
  }

  /// True once stop_and_restore has ended training.
  bool stopped() const { return stopped_; }

 private:
  NonFiniteAction react(int epoch, long batch, const std::string& what) {
    const std::string message =
        detail::concat("fit: ", what, " at epoch ", epoch + 1, ", batch ", batch + 1);
    if (options_.log) options_.log->events.push_back({epoch, batch, what});
    switch (options_.policy) {
      case NonFinitePolicy::throw_error: break;
      case NonFinitePolicy::skip_batch:
        buffers_.restore(state_.buffers());
        if (++consecutive_skips_ <= options_.max_consecutive_skips) {
          if (options_.log) ++options_.log->skipped_batches;
          return NonFiniteAction::skip;
        }
        throw NumericalError(detail::concat(message, " (", options_.max_consecutive_skips,
                                            " batches skipped in a row: the weights are no longer usable)"));
      case NonFinitePolicy::stop_and_restore:
        if (has_last_good_) last_good_.restore(state_.tensors());
        stopped_ = true;
        if (options_.log) options_.log->stopped = true;
        return NonFiniteAction::stop;
    }
    throw NumericalError(message);
  }

  /// "layer 1 Dense(4->3, ReLU), parameter 1.Dense.weight".
  std::string describe(const ParameterView<T>& view) const {
    std::string where = "parameter " + view.name;
    if (view.layer >= 0 && view.layer < model_.size())
      where = detail::concat("layer ", view.layer, " ", model_.layer(view.layer).name(), ", ", where);
    return where;
  }

  /// Why the loss is not finite, best effort (see the header comment).
  std::string locate_loss(const Matrix<T>& batch_x) {
    for (const auto& view : state_.tensors())
      if (!view.flat_value().allFinite()) return "the value of " + describe(view) + " is non-finite";
    try {
      const Matrix<T>* a = &batch_x;
      for (Index i = 0; i < model_.size(); ++i) {
        a = &model_.layer(i).forward(*a, Mode::eval, nullptr);
        if (!a->allFinite())
          return detail::concat("first non-finite output: layer ", i, " ", model_.layer(i).name(),
                                ", in an eval-mode re-run of the batch");
      }
    } catch (const InvalidArgument&) {
      return "parameters finite; the layer could not be located";
    }
    return "parameters and every layer output finite in eval mode: the loss overflowed";
  }

  NonFiniteOptions options_;
  Sequential<T>& model_;
  ModelState<T> state_;
  WeightsSnapshot<T> buffers_;    // skip_batch: the buffers before the batch
  WeightsSnapshot<T> last_good_;  // stop_and_restore: everything after the last finite batch
  bool has_last_good_ = false;
  bool stopped_ = false;
  long consecutive_skips_ = 0;
};

}  // namespace dropnet
