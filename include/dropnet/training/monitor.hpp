#pragma once
// Monitor: the quantity a callback watches (EarlyStopping, ModelCheckpoint) and its direction.
//
// mode auto resolves as Keras does for the metrics dropnet logs: a name containing "acc"
// (accuracy, val_accuracy, acc, val_acc) is maximized, anything else (loss, val_loss) minimized.
// value(logs) is NaN when the quantity was not computed (val_* without validation data); the
// callbacks then skip the epoch, as Keras skips a metric missing from its logs.
//
// Throws InvalidArgument for a name EpochLogs does not log.

#include <cmath>
#include <limits>
#include <string>
#include <utility>

#include "history.hpp"

namespace dropnet {

/// Direction of improvement of a monitored quantity; automatic maximizes names containing "acc".
enum class MonitorMode { automatic, min, max };

/// "auto", "min" or "max".
inline const char* to_string(MonitorMode mode) {
  switch (mode) {
    case MonitorMode::automatic:
      return "auto";
    case MonitorMode::min:
      return "min";
    case MonitorMode::max:
      return "max";
  }
  return "?";
}

/// A logged quantity and its direction, as EarlyStopping and ModelCheckpoint watch it.
class Monitor {
 public:
  /// Throws InvalidArgument for a name EpochLogs does not log; mode automatic maximizes names
  /// containing "acc".
  Monitor(std::string name, MonitorMode mode) : name_(std::move(name)) {
    EpochLogs{}.get(name_);  // throws for an unknown name, before training starts
    maximize_ = mode == MonitorMode::max ||
                (mode == MonitorMode::automatic && name_.find("acc") != std::string::npos);
  }

  /// The watched quantity's name.
  const std::string& name() const { return name_; }
  /// True if larger is better.
  bool maximize() const { return maximize_; }
  /// The quantity in `logs` (NaN when it was not computed, e.g. val_* without validation data).
  double value(const EpochLogs& logs) const { return logs.get(name_); }

  /// The starting "best": worse than any value.
  double worst() const {
    const double inf = std::numeric_limits<double>::infinity();
    return maximize_ ? -inf : inf;
  }
  /// Keras' monitor_op(current -/+ min_delta, reference): strictly better by more than
  /// min_delta (>= 0) in the monitored direction.
  bool improves(double current, double reference, double min_delta = 0.0) const {
    return maximize_ ? current - min_delta > reference : current + min_delta < reference;
  }

 private:
  std::string name_;
  bool maximize_ = false;
};

}  // namespace dropnet
