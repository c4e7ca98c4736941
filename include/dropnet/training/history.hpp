#pragma once
// History: the per-epoch record fit returns, and the logs callbacks receive.

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "../core/error.hpp"

namespace dropnet {

/// What one epoch produced. Validation figures are NaN when fit had no validation data.
struct EpochLogs {
  int epoch = 0;  ///< 0-based
  /// Mean training loss (data loss + penalty) over the epoch's batches; NaN if every batch was
  /// skipped (NonFinitePolicy).
  double loss = std::numeric_limits<double>::quiet_NaN();
  /// Fraction of the epoch's training samples predicted correctly (Loss::correct); NaN if every
  /// batch was skipped.
  double accuracy = std::numeric_limits<double>::quiet_NaN();
  /// Loss on the validation data.
  double val_loss = std::numeric_limits<double>::quiet_NaN();
  /// Accuracy on the validation data.
  double val_accuracy = std::numeric_limits<double>::quiet_NaN();
  /// The optimizer's learning rate after the epoch's last batch, before the callbacks run.
  double learning_rate = std::numeric_limits<double>::quiet_NaN();
  /// Wall-clock seconds of the epoch, validation included, callbacks' on_epoch_end excluded.
  double seconds = 0.0;

  /// A logged quantity by its Keras name: loss, accuracy, val_loss, val_accuracy.
  double get(const std::string& metric) const {
    if (metric == "loss") return loss;
    if (metric == "accuracy" || metric == "acc") return accuracy;
    if (metric == "val_loss") return val_loss;
    if (metric == "val_accuracy" || metric == "val_acc") return val_accuracy;
    throw InvalidArgument("EpochLogs::get: unknown metric '" + metric +
                          "' (expected loss, accuracy, val_loss or val_accuracy)");
  }
};

/// What one mini-batch produced (running means over the epoch so far).
struct BatchLogs {
  /// 0-based epoch.
  int epoch = 0;
  long batch = 0;     ///< 0-based within the epoch
  long batches = 0;   ///< per epoch
  long samples = 0;   ///< seen so far in this epoch
  double loss = 0.0;      ///< running mean
  double accuracy = 0.0;  ///< running mean
};

/// The per-epoch record fit returns, one EpochLogs per epoch run.
struct History {
  /// One entry per epoch, in order.
  std::vector<EpochLogs> epochs;

  /// Number of epochs recorded.
  std::size_t size() const { return epochs.size(); }
  /// One metric across epochs (loss, accuracy, val_loss, val_accuracy); throws InvalidArgument
  /// for an unknown name.
  std::vector<double> metric(const std::string& name) const {
    std::vector<double> values;
    values.reserve(epochs.size());
    for (const auto& e : epochs) values.push_back(e.get(name));
    return values;
  }
};

}  // namespace dropnet
