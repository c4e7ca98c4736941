#pragma once
// ModelCheckpoint<T>: keeps a model's weights from the end of an epoch, Keras style.
//
//   ModelCheckpoint<float> best(ModelCheckpointOptions().monitor("val_accuracy")
//                                   .save_best_only().path("best.dnm"));
//   ... fit(..., options with &best in callbacks) ...;  best.restore(model);
//
// At the end of epoch e with monitored value v (mode auto: max for "acc" names, see monitor.hpp):
//   save_best_only:  save if v is strictly better than the best so far (or than
//                    initial_value_threshold at first); skip epochs where v is unavailable (NaN)
//   otherwise:       save every epoch (the latest weights); best() and best_epoch() are tracked
// A save copies parameters and buffers into memory (weights()) and, when a path is set, writes
// the model with save_weights (io/weights_file.hpp): a model file, loadable with load, load_into
// or load_weights, written atomically, so an interrupted or failed write leaves the previous
// file intact. A failed write throws FormatError out of fit; the in-memory copy then already
// holds the new weights.
// As in Keras, `best` is not reset between fit calls: a second fit saves only what beats the
// first one's best.
//
// Throws InvalidArgument for an unknown monitor or a non-finite initial_value_threshold.

#include <cmath>
#include <optional>
#include <string>
#include <utility>

#include "../io/weights_file.hpp"
#include "../training/callback.hpp"
#include "../training/monitor.hpp"
#include "../model/model_state.hpp"

namespace dropnet {

/// ModelCheckpoint hyperparameters; Keras' names and defaults ("" = keep in memory only).
class ModelCheckpointOptions {
 public:
  /// Sets the logged quantity to watch (default val_loss); returns *this.
  ModelCheckpointOptions& monitor(std::string name) {
    monitor_ = std::move(name);
    return *this;
  }
  /// Sets the direction of improvement (default automatic, see monitor.hpp); returns *this.
  ModelCheckpointOptions& mode(MonitorMode value) {
    mode_ = value;
    return *this;
  }
  /// Saves only epochs that improve on the best so far (default: every epoch); returns *this.
  ModelCheckpointOptions& save_best_only(bool enabled = true) {
    best_only_ = enabled;
    return *this;
  }
  /// Also writes each save to `file` with save_weights (default "": memory only); returns *this.
  ModelCheckpointOptions& path(std::string file) {
    path_ = std::move(file);
    return *this;
  }
  /// Sets the value the first save must beat (save_best_only); returns *this.
  ModelCheckpointOptions& initial_value_threshold(double value) {
    threshold_ = value;
    return *this;
  }

  /// The watched quantity's name.
  const std::string& monitor() const { return monitor_; }
  /// Direction of improvement.
  MonitorMode mode() const { return mode_; }
  /// Whether only improving epochs are saved.
  bool save_best_only() const { return best_only_; }
  /// The file each save is written to, or "" for memory only.
  const std::string& path() const { return path_; }
  /// The value the first save must beat, if one was set.
  std::optional<double> initial_value_threshold() const { return threshold_; }

 private:
  std::string monitor_ = "val_loss";
  MonitorMode mode_ = MonitorMode::automatic;
  bool best_only_ = false;
  std::string path_;
  std::optional<double> threshold_;
};

/// Keeps a model's weights from the end of an epoch, in memory and optionally in a file,
/// Keras-style (rule in the file comment above).
template <class T>
class ModelCheckpoint : public Callback<T> {
 public:
  /// Throws InvalidArgument for an unknown monitor or a non-finite initial_value_threshold.
  explicit ModelCheckpoint(const ModelCheckpointOptions& options = {})
      : options_(options), monitor_(options.monitor(), options.mode()) {
    const auto threshold = options.initial_value_threshold();
    detail::require(!threshold || std::isfinite(*threshold), "ModelCheckpoint",
                    "initial_value_threshold must be finite, got ", threshold.value_or(0.0));
    best_ = threshold.value_or(monitor_.worst());
  }

  /// Saves the model's weights if this epoch qualifies (see the file comment); a failed file write
  /// throws FormatError out of fit.
  void on_epoch_end(TrainingContext<T>& context, const EpochLogs& logs) override {
    const double current = monitor_.value(logs);
    const bool better = !std::isnan(current) && monitor_.improves(current, best_);
    if (better) {
      best_ = current;
      best_epoch_ = logs.epoch;
    }
    if (better || !options_.save_best_only()) save(context.model, logs.epoch);
  }

  /// Puts the kept weights back into `model` (InvalidArgument if nothing was saved yet).
  void restore(Sequential<T>& model) const { weights_.restore(model); }

  /// The kept parameters and buffers (empty before the first save).
  const WeightsSnapshot<T>& weights() const { return weights_; }
  /// True once an epoch has been saved.
  bool has_weights() const { return !weights_.empty(); }
  /// Best monitored value so far (the threshold or +-infinity before any).
  double best() const { return best_; }
  /// 0-based epoch of best(), or -1 if no epoch improved yet.
  int best_epoch() const { return best_epoch_; }
  /// 0-based epoch of the kept weights, or -1.
  int saved_epoch() const { return saved_epoch_; }
  /// Number of saves so far.
  int saves() const { return saves_; }
  /// The options this callback was built with.
  const ModelCheckpointOptions& options() const { return options_; }

 private:
  void save(Sequential<T>& model, int epoch) {
    weights_.capture(model);
    saved_epoch_ = epoch;
    ++saves_;
    if (!options_.path().empty()) save_weights(model, options_.path());  // == weights_
  }

  const ModelCheckpointOptions
      options_;  // const: the setters with defaults would shadow the getters
  Monitor monitor_;
  double best_ = 0.0;
  int best_epoch_ = -1;
  int saved_epoch_ = -1;
  int saves_ = 0;
  WeightsSnapshot<T> weights_;
};

}  // namespace dropnet
