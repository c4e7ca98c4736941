#pragma once
// ScheduleCallback: steps a learning-rate schedule at the end of every epoch of fit.
//
// The metric handed to the schedule (used by ReduceLROnPlateau, ignored by the others) is the
// epoch's `monitor` value, "val_loss" by default, falling back to the training loss when fit
// has no validation data.

#include <cmath>
#include <string>

#include "../optimizers/schedules.hpp"
#include "callback.hpp"

namespace dropnet {

/// Steps a learning-rate schedule at the end of every fit epoch (see the file comment above).
template <class T>
class ScheduleCallback : public Callback<T> {
 public:
  /// Steps `schedule` (which must outlive fit) with the epoch's `monitor` value, or the training
  /// loss when that is NaN; throws InvalidArgument for an unknown monitor name.
  explicit ScheduleCallback(LRScheduler<T>& schedule, std::string monitor = "val_loss")
      : schedule_(schedule), monitor_(std::move(monitor)) {
    EpochLogs{}.get(monitor_);  // rejects an unknown metric name now, not after an epoch
  }

  /// Calls schedule.step(metric).
  void on_epoch_end(TrainingContext<T>&, const EpochLogs& logs) override {
    double metric = logs.get(monitor_);
    if (std::isnan(metric) && monitor_.rfind("val_", 0) == 0) metric = logs.get(monitor_.substr(4));
    schedule_.step(metric);
  }

 private:
  LRScheduler<T>& schedule_;
  std::string monitor_;
};

}  // namespace dropnet
