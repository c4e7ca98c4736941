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
#include <cstdlib>
#include <string>
#include <vector>

#include "../core/error.hpp"
#include "../core/finite.hpp"
#include "../optimizers/optimizer.hpp"
#include "sequential.hpp"

namespace dropnet {

enum class NonFinitePolicy { throw_error, skip_batch, stop_and_restore };

/// One non-finite loss or gradient seen by fit.
struct NonFiniteEvent {
  int epoch = 0;       ///< 0-based, like EpochLogs::epoch
  long batch = 0;      ///< 0-based within the epoch
  std::string what;    ///< e.g. "non-finite gradient (nan) in layer 1 Dense(4->3, ReLU), ..."
};

struct NonFiniteLog {
  std::vector<NonFiniteEvent> events;
  long skipped_batches = 0;
  bool stopped = false;  ///< stop_and_restore ended training
};

struct NonFiniteOptions {
  NonFinitePolicy policy = NonFinitePolicy::throw_error;
  long max_consecutive_skips = 100;  ///< skip_batch: throw after this many in a row
  NonFiniteLog* log = nullptr;       ///< not owned; receives every event when set
};

/// What fit does with the current batch after a check.
enum class NonFiniteAction { proceed, skip, stop };

namespace detail {

/// Copies of a list of tensors, to put them back later; reuses its storage.
template <class T>
class TensorBackup {
 public:
  explicit TensorBackup(ParameterList<T> views) : views_(std::move(views)) {
    copies_.reserve(views_.size());
    for (const auto& v : views_) copies_.push_back(v.flat_value());
  }
  void save() {
    for (std::size_t i = 0; i < views_.size(); ++i) copies_[i] = views_[i].flat_value();
  }
  void restore() const {
    for (std::size_t i = 0; i < views_.size(); ++i) views_[i].flat_value() = copies_[i];
  }

 private:
  ParameterList<T> views_;
  std::vector<Vector<T>> copies_;
};

template <class T>
ParameterList<T> parameters_and_buffers(Sequential<T>& model) {
  ParameterList<T> views = model.parameters();
  for (auto& buffer : model.buffers()) views.push_back(std::move(buffer));
  return views;
}

}  // namespace detail

/// fit's helper that applies a NonFiniteOptions; see the header comment.
template <class T>
class NonFiniteGuard {
 public:
  NonFiniteGuard(const NonFiniteOptions& options, Sequential<T>& model, Optimizer<T>& optimizer)
      : options_(options),
        model_(model),
        optimizer_(optimizer),
        buffers_(options.policy == NonFinitePolicy::skip_batch ? model.buffers() : ParameterList<T>{}),
        last_good_(options.policy == NonFinitePolicy::stop_and_restore
                       ? detail::parameters_and_buffers(model)
                       : ParameterList<T>{}) {
    detail::require(options.max_consecutive_skips >= 1, "fit",
                    "nonfinite.max_consecutive_skips must be >= 1, got ",
                    options.max_consecutive_skips);
  }

  /// Call before the batch's forward.
  void begin_batch() {
    if (options_.policy == NonFinitePolicy::skip_batch) buffers_.save();
  }

  /// Call with the batch's loss after forward.
  NonFiniteAction check_loss(T loss, int epoch, long batch) {
    if (std::isfinite(static_cast<double>(loss))) return NonFiniteAction::proceed;
    return react(epoch, batch, detail::concat("non-finite loss ", loss, " (", locate_loss(), ")"));
  }

  /// Call after backward, before clipping and the step. On proceed with stop_and_restore, the
  /// current weights become the "last good" ones.
  NonFiniteAction check_gradients(int epoch, long batch) {
    const ParameterList<T>& params = optimizer_.parameters();
    for (std::size_t i = 0; i < params.size(); ++i)
      if (!detail::all_finite(params[i].flat_grad()))
        return react(epoch, batch, detail::concat("non-finite gradient in ", describe(params[i])));
    consecutive_skips_ = 0;
    if (options_.policy == NonFinitePolicy::stop_and_restore) {
      last_good_.save();
      has_last_good_ = true;
    }
    return NonFiniteAction::proceed;
  }

  bool stopped() const { return stopped_; }

 private:
  NonFiniteAction react(int epoch, long batch, const std::string& what) {
    const std::string message =
        detail::concat("fit: ", what, " at epoch ", epoch + 1, ", batch ", batch + 1);
    if (options_.log) options_.log->events.push_back({epoch, batch, what});
    switch (options_.policy) {
      case NonFinitePolicy::throw_error: break;
      case NonFinitePolicy::skip_batch:
        buffers_.restore();
        if (++consecutive_skips_ <= options_.max_consecutive_skips) {
          if (options_.log) ++options_.log->skipped_batches;
          return NonFiniteAction::skip;
        }
        throw NumericalError(detail::concat(message, " (", options_.max_consecutive_skips,
                                            " batches skipped in a row: the weights are no longer usable)"));
      case NonFinitePolicy::stop_and_restore:
        if (has_last_good_) last_good_.restore();
        stopped_ = true;
        if (options_.log) options_.log->stopped = true;
        return NonFiniteAction::stop;
    }
    throw NumericalError(message);
  }

  /// "layer 1 Dense(4->3, ReLU), parameter 1.Dense.weight" from Sequential's naming scheme.
  std::string describe(const ParameterView<T>& view) const {
    const Index layer = std::atol(view.name.c_str());  // names start with the layer index
    std::string where = "parameter " + view.name;
    if (layer >= 0 && layer < model_.size())
      where = detail::concat("layer ", layer, " ", model_.layer(layer).name(), ", ", where);
    return where;
  }

  /// Why the loss is not finite, best effort (see the header comment).
  std::string locate_loss() {
    for (const auto& view : detail::parameters_and_buffers(model_))
      if (!view.flat_value().allFinite()) return "the value of " + describe(view) + " is non-finite";
    try {
      const Matrix<T>* a = &model_.input_buffer();
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
  Optimizer<T>& optimizer_;
  detail::TensorBackup<T> buffers_;
  detail::TensorBackup<T> last_good_;
  bool has_last_good_ = false;
  bool stopped_ = false;
  long consecutive_skips_ = 0;
};

}  // namespace dropnet
