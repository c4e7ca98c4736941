#include "training.hpp"

#include <algorithm>
#include <dropnet/losses/softmax_cross_entropy.hpp>
#include <dropnet/optimizers/adagrad.hpp>
#include <dropnet/optimizers/adam.hpp>
#include <dropnet/optimizers/adamw.hpp>
#include <dropnet/optimizers/rmsprop.hpp>
#include <dropnet/optimizers/schedules.hpp>
#include <dropnet/optimizers/sgd.hpp>
#include <dropnet/training/early_stopping.hpp>
#include <dropnet/training/fit.hpp>
#include <dropnet/training/schedule_callback.hpp>
#include <stdexcept>

#include "augment.hpp"

namespace fmnist {

using namespace dropnet;

namespace {

/// The schedules' settings are fixed fractions of the run, so one flag is enough to try each.
std::unique_ptr<LRScheduler<float>> make_schedule(const TrainSpec& spec, Optimizer<float>& opt) {
  const auto epochs = static_cast<std::int64_t>(std::max(spec.epochs, 1));
  if (spec.schedule == "step")
    return std::make_unique<StepLR<float>>(opt, std::max<std::int64_t>(1, epochs / 3), 0.1);
  if (spec.schedule == "exponential") return std::make_unique<ExponentialLR<float>>(opt, 0.95);
  if (spec.schedule == "cosine")
    return std::make_unique<CosineAnnealingLR<float>>(opt, epochs, spec.lr * 0.01);
  if (spec.schedule == "plateau")
    return std::make_unique<ReduceLROnPlateau<float>>(opt,
                                                      PlateauOptions().factor(0.5).patience(2));
  return nullptr;
}

}  // namespace

std::unique_ptr<Optimizer<float>> make_optimizer(const TrainSpec& spec,
                                                 ParameterList<float> params) {
  const std::string& name = spec.optimizer;
  if (name == "sgd")
    return std::make_unique<SGD<float>>(
        std::move(params),
        SGDOptions(spec.lr).momentum(spec.momentum.value_or(0.9)).weight_decay(spec.weight_decay));
  if (name == "adam")
    return std::make_unique<Adam<float>>(std::move(params),
                                         AdamOptions(spec.lr).weight_decay(spec.weight_decay));
  if (name == "adamw")
    return std::make_unique<AdamW<float>>(std::move(params),
                                          AdamWOptions(spec.lr).weight_decay(spec.weight_decay));
  if (name == "rmsprop")
    return std::make_unique<RMSprop<float>>(std::move(params),
                                            RMSpropOptions(spec.lr)
                                                .momentum(spec.momentum.value_or(0.0))
                                                .weight_decay(spec.weight_decay));
  if (name == "adagrad")
    return std::make_unique<Adagrad<float>>(
        std::move(params), AdagradOptions(spec.lr).weight_decay(spec.weight_decay));
  throw std::invalid_argument("unknown optimizer '" + name + "'");
}

Index eval_batch_size(const Sequential<float>& model) {
  // Each layer caches its output for a whole batch: cap the widest one at 8 M values (32 MB),
  // so a CNN's 32 x 28 x 28 maps evaluate 256 images at a time instead of 1024 (~470 MB less).
  constexpr Index max_values = Index{1} << 23;
  Index widest = model.input_features();
  for (Index i = 0; i < model.size(); ++i) widest = std::max(widest, model.layer_output_rows(i));
  Index batch = 1024;
  while (batch > 64 && batch * widest > max_values) batch /= 2;
  return batch;
}

TestResult evaluate_on(Sequential<float>& model, const LabeledImages<float>& set) {
  const SoftmaxCrossEntropy<float> loss;
  TestResult result;
  result.logits = predict(model, set.images, eval_batch_size(model));
  result.loss = static_cast<double>(loss.compute(result.logits, set.labels, nullptr));
  result.accuracy = static_cast<double>(loss.correct(result.logits, set.labels)) /
                    static_cast<double>(set.size());
  return result;
}

TrainOutcome train(Sequential<float>& model, const TrainSpec& spec, Data& data, Generator& gen,
                   const std::vector<Callback<float>*>& callbacks) {
  const SoftmaxCrossEntropy<float> loss(static_cast<float>(spec.label_smoothing));
  const auto optimizer = make_optimizer(spec, model.parameters());
  const auto schedule = make_schedule(spec, *optimizer);
  std::unique_ptr<ScheduleCallback<float>> schedule_step;
  std::unique_ptr<EarlyStopping<float>> early_stopping;
  std::unique_ptr<Augmentation> augmentation;

  FitOptions<float> options;
  options.epochs = spec.epochs;
  options.batch_size = spec.batch_size;
  options.eval_batch_size = eval_batch_size(model);
  if (spec.augment_shift > 0 || spec.augment_flip) {
    // Its own stream, split off the training one, so the masks and shuffles stay reproducible.
    augmentation = std::make_unique<Augmentation>(data.train.images, data.blank, spec.augment_shift,
                                                  spec.augment_flip, Generator(gen.next_u64()));
    options.callbacks.push_back(augmentation.get());
  }
  if (schedule) {
    schedule_step = std::make_unique<ScheduleCallback<float>>(*schedule);  // val_loss
    options.callbacks.push_back(schedule_step.get());
  }
  if (spec.patience > 0) {
    early_stopping = std::make_unique<EarlyStopping<float>>(
        EarlyStoppingOptions().monitor("val_loss").patience(spec.patience).restore_best_weights());
    options.callbacks.push_back(early_stopping.get());
  }
  options.callbacks.insert(options.callbacks.end(), callbacks.begin(), callbacks.end());

  TrainOutcome outcome;
  outcome.history = fit(model, loss, *optimizer, data.train.images, data.train.labels, gen, options,
                        ValidationData<float, Labels>{data.valid.images, data.valid.labels});
  if (early_stopping && early_stopping->restored())
    outcome.best_epoch = early_stopping->best_epoch();
  return outcome;
}

}  // namespace fmnist
