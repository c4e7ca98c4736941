#pragma once
// Callback<T>: hooks into fit, Keras style.
//
// Each hook receives the TrainingContext: the model, the optimizer, the history so far, and
// `stop_training`, which a callback sets to end training after the current epoch.

#include "../optimizers/optimizer.hpp"
#include "history.hpp"
#include "../model/sequential.hpp"

namespace dropnet {

template <class T>
struct TrainingContext {
  Sequential<T>& model;
  Optimizer<T>& optimizer;
  History& history;
  int epochs = 0;              ///< requested
  long batches_per_epoch = 0;
  bool stop_training = false;  ///< set by a callback to stop after this epoch
  bool writes_files = true;    ///< false on the ranks other than 0 of a distributed fit
};

template <class T>
class Callback {
 public:
  virtual ~Callback() = default;
  virtual void on_train_begin(TrainingContext<T>&) {}
  virtual void on_epoch_begin(TrainingContext<T>&, int /*epoch*/) {}
  virtual void on_batch_end(TrainingContext<T>&, const BatchLogs&) {}
  virtual void on_epoch_end(TrainingContext<T>&, const EpochLogs&) {}
  virtual void on_train_end(TrainingContext<T>&) {}
};

}  // namespace dropnet
