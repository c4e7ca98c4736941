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
  EarlyStoppingOptions& monitor(std::string name) {
    monitor_ = std::move(name);
    return *this;
  }
  EarlyStoppingOptions& min_delta(double value) {
    min_delta_ = value;
    return *this;
  }
  EarlyStoppingOptions& patience(int epochs) {
    patience_ = epochs;
    return *this;
  }
  EarlyStoppingOptions& mode(MonitorMode value) {
    mode_ = value;
    return *this;
  }
  EarlyStoppingOptions& baseline(double value) {
    baseline_ = value;
    return *this;
  }
  EarlyStoppingOptions& restore_best_weights(bool enabled = true) {
    restore_ = enabled;
    return *this;
  }
  EarlyStoppingOptions& start_from_epoch(int epoch) {
    start_from_epoch_ = epoch;
    return *this;
  }

  const std::string& monitor() const { return monitor_; }
  double min_delta() const { return min_delta_; }
  int patience() const { return patience_; }
  MonitorMode mode() const { return mode_; }
  std::optional<double> baseline() const { return baseline_; }
  bool restore_best_weights() const { return restore_; }
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

template <class T>
class EarlyStopping : public Callback<T> {
 public:
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

  void on_train_begin(TrainingContext<T>&) override { reset(); }

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

  void on_train_end(TrainingContext<T>& context) override {
    if (options_.restore_best_weights() && !best_weights_.empty()) {
      best_weights_.restore(context.model);
      restored_ = true;
    }
  }

  /// The 0-based epoch at which training was stopped, or 0 if it was not (as in Keras; the
  /// rule never stops at epoch 0).
  int stopped_epoch() const { return stopped_epoch_; }
  bool stopped() const { return stopped_epoch_ > 0; }
  /// The 0-based epoch with the best monitored value (0 before any epoch was monitored).
  int best_epoch() const { return best_epoch_; }
  /// The best monitored value, +-infinity before any epoch was monitored.
  double best() const { return best_; }
  /// Epochs counted toward patience since the last reset of the count.
  int wait() const { return wait_; }
  /// True once on_train_end has put the best weights back into the model.
  bool restored() const { return restored_; }
  const WeightsSnapshot<T>& best_weights() const { return best_weights_; }
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
