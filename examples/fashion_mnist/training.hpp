#pragma once
// One training run: optimizer and schedule from a TrainSpec, fit with validation, early stopping.

#include <dropnet/optimizers/optimizer.hpp>
#include <dropnet/training/callback.hpp>
#include <dropnet/training/history.hpp>
#include <memory>
#include <vector>

#include "data.hpp"
#include "options.hpp"

namespace fmnist {

/// The optimizer a TrainSpec names, over `params`.
std::unique_ptr<dropnet::Optimizer<float>> make_optimizer(const TrainSpec& spec,
                                                          dropnet::ParameterList<float> params);

struct TrainOutcome {
  dropnet::History history;
  int best_epoch = -1;  ///< 0-based epoch whose weights were restored by early stopping, or -1
};

/// Images per evaluation batch: 1024, halved (down to 64) until the widest layer's cached
/// output for the batch fits in 8 M values.
dropnet::Index eval_batch_size(const dropnet::Sequential<float>& model);

/// Loss (plain cross-entropy, without label smoothing) and logits on a labeled set, eval mode.
struct TestResult {
  double loss = 0.0;
  double accuracy = 0.0;
  dropnet::Matrix<float> logits;
};
TestResult evaluate_on(dropnet::Sequential<float>& model, const dropnet::LabeledImages<float>& set);

/// Trains `model` on data.train for spec.epochs epochs (fewer if early stopping fires),
/// validating on data.valid after each epoch. With augmentation, data.train.images changes
/// during training and is restored at the end. `callbacks` (not owned) run after the schedule and
/// early stopping, so a progress printer sees the epoch's final learning rate.
TrainOutcome train(dropnet::Sequential<float>& model, const TrainSpec& spec, Data& data,
                   dropnet::Generator& gen,
                   const std::vector<dropnet::Callback<float>*>& callbacks);

}  // namespace fmnist
