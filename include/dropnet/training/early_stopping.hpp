#pragma once
// EarlyStopping<T>: stops fit when a monitored quantity stops improving, with the semantics of
// Keras 3's keras.callbacks.EarlyStopping (keras/src/callbacks/early_stopping.py).
//
//   EarlyStopping<float> stop(EarlyStoppingOptions().monitor("val_loss").patience(5)
//                                 .restore_best_weights());
//   options.callbacks.push_back(&stop);
//
// At the end of epoch e (0-based) with monitored value v, wait = 0 and best = worst at start:
//   skip the epoch if v is unavailable (NaN) or e < start_from_epoch
//   restore_best_weights and nothing saved yet:  save the weights, best_epoch = e
//   wait += 1
//   if v improves on best by more than min_delta:             (v + min_delta < best for min)
//     best = v, best_epoch = e, save the weights when restore_best_weights
//     wait = 0 only if there is no baseline or v also improves on it; no stop this epoch
//   else if wait >= patience and e > 0:  stop (stopped_epoch = e)
// At the end of training, restore_best_weights puts the saved weights back, whether training
// stopped early or ran all its epochs (Keras 3 does this in on_train_end too).
// So without a baseline, training stops at epoch best_epoch + max(patience, 1); a baseline that
// is never beaten makes every epoch count toward patience, yet an improving epoch never stops.
//
// min_delta's sign is ignored (its direction comes from mode). mode auto maximizes names
// containing "acc" and minimizes the rest (see monitor.hpp). The weights are parameters and
// buffers (WeightsSnapshot). One difference from Keras: on_train_begin also resets `best`, so a
// reused callback starts afresh in the next fit (Keras 3 keeps the previous run's best).
//
// Throws InvalidArgument for an unknown monitor, a negative patience or start_from_epoch, or a
// non-finite min_delta or baseline.

#include <cmath>
#include <optional>
#include <string>
#include <utility>

#include "callback.hpp"
#include "monitor.hpp"
#include "../model/model_state.hpp"

namespace dropnet {

/// EarlyStopping hyperparameters; Keras' names and defaults.
class EarlyStoppingOptions {
 public:
  /// Sets the logged quantity to watch: loss, accuracy, val_loss or val_accuracy (default
  /// val_loss); returns *this.
  EarlyStoppingOptions& monitor(std::string name) {
    monitor_ = std::move(name);
    return *this;
  }
  /// Sets the least change that counts as an improvement (sign ignored; default 0); returns *this.
  EarlyStoppingOptions& min_delta(double value) {
    min_delta_ = value;
    return *this;
  }
  /// Sets the epochs without improvement tolerated before stopping, >= 0 (default 0); returns
  /// *this.
  EarlyStoppingOptions& patience(int epochs) {
    patience_ = epochs;
    return *this;
  }
  /// Sets the direction of improvement (default automatic, see monitor.hpp); returns *this.
  EarlyStoppingOptions& mode(MonitorMode value) {
    mode_ = value;
    return *this;
  }
  /// Sets a value the monitored quantity must beat for the patience count to reset; returns *this.
  EarlyStoppingOptions& baseline(double value) {
    baseline_ = value;
    return *this;
  }
  /// Restores the best epoch's weights at the end of training (default off); returns *this.
  EarlyStoppingOptions& restore_best_weights(bool enabled = true) {
    restore_ = enabled;
    return *this;
  }
  /// Sets the first 0-based epoch that is monitored, >= 0 (default 0); returns *this.
  EarlyStoppingOptions& start_from_epoch(int epoch) {
    start_from_epoch_ = epoch;
    return *this;
  }

  /// The watched quantity's name.
  const std::string& monitor() const { return monitor_; }
  /// Least change that counts as an improvement.
  double min_delta() const { return min_delta_; }
  /// Epochs without improvement tolerated.
  int patience() const { return patience_; }
  /// Direction of improvement.
  MonitorMode mode() const { return mode_; }
  /// The baseline, if one was set.
  std::optional<double> baseline() const { return baseline_; }
  /// Whether the best weights are restored at the end of training.
  bool restore_best_weights() const { return restore_; }
  /// First monitored epoch.
  int start_from_epoch() const { return start_from_epoch_; }

 private:
  std::string monitor_ = "val_loss";
  double min_delta_ = 0.0;
  int patience_ = 0;
  MonitorMode mode_ = MonitorMode::automatic;
  std::optional<double> baseline_;
  bool restore_ = false;
  int start_from_epoch_ = 0;
};

/// Stops fit when the monitored quantity stops improving, as Keras 3's EarlyStopping (rule in
/// the file comment above); optionally puts the best epoch's weights back at the end.
template <class T>
class EarlyStopping : public Callback<T> {
 public:
  /// Throws InvalidArgument for an unknown monitor, a negative patience or start_from_epoch, or a
  /// non-finite min_delta or baseline.
  explicit EarlyStopping(const EarlyStoppingOptions& options = {})
      : options_(options), monitor_(options.monitor(), options.mode()) {
    const char* where = "EarlyStopping";
    detail::require(options.patience() >= 0, where, "patience must be >= 0, got ",
                    options.patience());
    detail::require(options.start_from_epoch() >= 0, where, "start_from_epoch must be >= 0, got ",
                    options.start_from_epoch());
    detail::require(std::isfinite(options.min_delta()), where, "min_delta must be finite, got ",
                    options.min_delta());
    detail::require(!options.baseline() || std::isfinite(*options.baseline()), where,
                    "baseline must be finite, got ", options.baseline().value_or(0.0));
    min_delta_ = std::abs(options.min_delta());
    reset();
  }

  /// Resets the state (wait, best, stopped epoch, saved weights), so a callback can be reused.
  void on_train_begin(TrainingContext<T>&) override { reset(); }

  /// Applies the stopping rule to the epoch's monitored value; sets context.stop_training to stop.
  void on_epoch_end(TrainingContext<T>& context, const EpochLogs& logs) override {
    const double current = monitor_.value(logs);
    const int epoch = logs.epoch;
    if (std::isnan(current) || epoch < options_.start_from_epoch()) return;
    if (options_.restore_best_weights() && best_weights_.empty()) {
      best_weights_.capture(context.model);
      best_epoch_ = epoch;
    }
    ++wait_;
    if (monitor_.improves(current, best_, min_delta_)) {
      best_ = current;
      best_epoch_ = epoch;
      if (options_.restore_best_weights()) best_weights_.capture(context.model);
      const auto& baseline = options_.baseline();
      if (!baseline || monitor_.improves(current, *baseline, min_delta_)) wait_ = 0;
      return;
    }
    if (wait_ >= options_.patience() && epoch > 0) {
      stopped_epoch_ = epoch;
      context.stop_training = true;
    }
  }

  /// With restore_best_weights, puts the saved best weights back into the model.
  void on_train_end(TrainingContext<T>& context) override {
    if (options_.restore_best_weights() && !best_weights_.empty()) {
      best_weights_.restore(context.model);
      restored_ = true;
    }
  }

  /// The 0-based epoch at which training was stopped, or 0 if it was not (as in Keras; the
  /// rule never stops at epoch 0).
  int stopped_epoch() const { return stopped_epoch_; }
  /// True if the rule stopped training (stopped_epoch() > 0).
  bool stopped() const { return stopped_epoch_ > 0; }
  /// The 0-based epoch with the best monitored value (0 before any epoch was monitored).
  int best_epoch() const { return best_epoch_; }
  /// The best monitored value, +-infinity before any epoch was monitored.
  double best() const { return best_; }
  /// Epochs counted toward patience since the last reset of the count.
  int wait() const { return wait_; }
  /// True once on_train_end has put the best weights back into the model.
  bool restored() const { return restored_; }
  /// The weights kept for restore_best_weights (empty unless it is set).
  const WeightsSnapshot<T>& best_weights() const { return best_weights_; }
  /// The options this callback was built with.
  const EarlyStoppingOptions& options() const { return options_; }

 private:
  void reset() {
    wait_ = 0;
    stopped_epoch_ = 0;
    best_epoch_ = 0;
    best_ = monitor_.worst();
    restored_ = false;
    best_weights_.clear();
  }

  const EarlyStoppingOptions options_;  // const: the setters with defaults would shadow the getters
  Monitor monitor_;
  double min_delta_ = 0.0;
  int wait_ = 0;
  int stopped_epoch_ = 0;
  int best_epoch_ = 0;
  double best_ = 0.0;
  bool restored_ = false;
  WeightsSnapshot<T> best_weights_;
};

}  // namespace dropnet
