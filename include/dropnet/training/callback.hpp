#pragma once
// Callback<T>: hooks into fit, Keras style.
//
// Each hook receives the TrainingContext: the model, the optimizer, the history so far, and
// `stop_training`, which a callback sets to end training after the current epoch.

#include "../optimizers/optimizer.hpp"
#include "history.hpp"
#include "../model/sequential.hpp"

namespace dropnet {

/// What fit hands every callback hook: the model, the optimizer, the history so far and a stop
/// flag. The references are valid during fit only.
template <class T>
struct TrainingContext {
  /// The model being trained.
  Sequential<T>& model;
  /// The optimizer updating it (its learning rate may be changed).
  Optimizer<T>& optimizer;
  /// The epochs finished so far.
  History& history;
  int epochs = 0;              ///< requested
  /// Mini-batches per epoch.
  long batches_per_epoch = 0;
  bool stop_training = false;  ///< set by a callback to stop after this epoch
};

/// Base class of fit's callbacks, Keras-style: override the hooks you need; every hook does
/// nothing by default. An exception from a hook ends fit.
template <class T>
class Callback {
 public:
  virtual ~Callback() = default;
  /// Called once before the first epoch.
  virtual void on_train_begin(TrainingContext<T>&) {}
  /// Called before each epoch, with its 0-based number.
  virtual void on_epoch_begin(TrainingContext<T>&, int /*epoch*/) {}
  /// Called after each mini-batch's update, with running means over the epoch so far.
  virtual void on_batch_end(TrainingContext<T>&, const BatchLogs&) {}
  /// Called after each epoch, once its logs (including validation) are complete.
  virtual void on_epoch_end(TrainingContext<T>&, const EpochLogs&) {}
  /// Called once after the last epoch, whether training stopped early or not.
  virtual void on_train_end(TrainingContext<T>&) {}
};

}  // namespace dropnet
