#pragma once
// Learning-rate schedules, matching torch.optim.lr_scheduler.
//
// A schedule holds an Optimizer<T>& and takes its learning rate at construction as the base rate
// (epoch 0). Call step(metric) once at the end of every epoch; it advances the epoch counter and
// writes the next rate into the optimizer. Only ReduceLROnPlateau reads the metric.
//
//   StepLR(step_size, gamma)        lr_e = base * gamma^floor(e / step_size)
//   ExponentialLR(gamma)            lr_e = base * gamma^e
//   CosineAnnealingLR(T_max, eta)   lr_e = eta + (base - eta) * (1 + cos(pi * e / T_max)) / 2
//   ReduceLROnPlateau(...)          lr <- max(lr * factor, min_lr) after more than `patience`
//                                   epochs without improvement (rule spelled out below)
//
// StepLR, ExponentialLR and CosineAnnealingLR use torch's closed forms (_get_closed_form_lr),
// which equal torch's chained step() unless something else changes the rate between steps; the
// closed form does not accumulate rounding, and past T_max the cosine rises again as in torch.
// Constructors throw InvalidArgument naming the schedule and the bad hyperparameter.
// The optimizer must outlive the schedule.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <sstream>
#include <string>

#include "../core/error.hpp"
#include "optimizer.hpp"

namespace dropnet {

/// Base class of the learning-rate schedules: holds the optimizer (which must outlive it) and
/// writes a new rate into it at each step() (see the file comment above).
template <class T>
class LRScheduler {
 public:
  virtual ~LRScheduler() = default;

  /// The schedule and its hyperparameters, e.g. "StepLR(step_size=10, gamma=0.1)".
  virtual std::string name() const = 0;

  /// Ends an epoch: advances the epoch counter and updates the optimizer's learning rate.
  void step(double metric) {
    ++epoch_;
    on_epoch_end(metric);
  }

  /// The optimizer's current learning rate.
  T learning_rate() const { return optimizer_.learning_rate(); }

  /// The optimizer's learning rate when the schedule was built.
  double base_learning_rate() const { return base_lr_; }

  /// Epochs ended so far (torch's last_epoch).
  std::int64_t epoch() const { return epoch_; }

 protected:
  /// Takes the optimizer's current learning rate as the base rate (epoch 0).
  explicit LRScheduler(Optimizer<T>& optimizer)
      : optimizer_(optimizer), base_lr_(static_cast<double>(optimizer.learning_rate())) {}

  /// Writes the learning rate for epoch_ (already advanced) into the optimizer; `metric` is the
  /// epoch's monitored value, read only by ReduceLROnPlateau.
  virtual void on_epoch_end(double metric) = 0;

  /// Sets the optimizer's learning rate.
  void set_learning_rate(double lr) { optimizer_.set_learning_rate(static_cast<T>(lr)); }

  /// Throws InvalidArgument("<schedule>: <what> must be <expected>, got <value>") unless condition.
  static void require(bool condition, const char* schedule, const char* what, const char* expected,
                      double value) {
    detail::require(condition, schedule, what, " must be ", expected, ", got ", value);
  }

  /// The optimizer whose learning rate the schedule sets.
  Optimizer<T>& optimizer_;
  /// The optimizer's learning rate at construction.
  double base_lr_;
  /// Epochs ended so far.
  std::int64_t epoch_ = 0;
};

/// lr_e = base * gamma^floor(e / step_size). Throws unless step_size >= 1 and gamma is finite
/// and >= 0.
template <class T>
class StepLR : public LRScheduler<T> {
 public:
  /// Decays the rate by `gamma` every `step_size` epochs; throws InvalidArgument("StepLR: ...")
  /// unless step_size >= 1 and gamma is finite and >= 0.
  StepLR(Optimizer<T>& optimizer, std::int64_t step_size, double gamma = 0.1)
      : LRScheduler<T>(optimizer), step_size_(step_size), gamma_(gamma) {
    this->require(step_size >= 1, "StepLR", "step_size", ">= 1", static_cast<double>(step_size));
    this->require(std::isfinite(gamma) && gamma >= 0.0, "StepLR", "gamma", "finite and >= 0",
                  gamma);
  }

  std::string name() const override {
    return detail::concat("StepLR(step_size=", step_size_, ", gamma=", gamma_, ")");
  }

 protected:
  void on_epoch_end(double /*metric*/) override {
    const auto decays = static_cast<double>(this->epoch_ / step_size_);
    this->set_learning_rate(this->base_lr_ * std::pow(gamma_, decays));
  }

 private:
  std::int64_t step_size_;
  double gamma_;
};

/// lr_e = base * gamma^e. Throws unless gamma is finite and >= 0.
template <class T>
class ExponentialLR : public LRScheduler<T> {
 public:
  /// Decays the rate by `gamma` every epoch; throws InvalidArgument("ExponentialLR: ...") unless
  /// gamma is finite and >= 0.
  ExponentialLR(Optimizer<T>& optimizer, double gamma) : LRScheduler<T>(optimizer), gamma_(gamma) {
    this->require(std::isfinite(gamma) && gamma >= 0.0, "ExponentialLR", "gamma", "finite and >= 0",
                  gamma);
  }

  std::string name() const override { return detail::concat("ExponentialLR(gamma=", gamma_, ")"); }

 protected:
  void on_epoch_end(double /*metric*/) override {
    this->set_learning_rate(this->base_lr_ * std::pow(gamma_, static_cast<double>(this->epoch_)));
  }

 private:
  double gamma_;
};

/// lr_e = eta_min + (base - eta_min) * (1 + cos(pi * e / T_max)) / 2, without restarts (SGDR's
/// annealing half). Throws unless T_max >= 1 and eta_min is finite and >= 0.
template <class T>
class CosineAnnealingLR : public LRScheduler<T> {
 public:
  /// Cosine from the base rate down to `eta_min` over `t_max` epochs; throws
  /// InvalidArgument("CosineAnnealingLR: ...") unless t_max >= 1 and eta_min is finite and >= 0.
  CosineAnnealingLR(Optimizer<T>& optimizer, std::int64_t t_max, double eta_min = 0.0)
      : LRScheduler<T>(optimizer), t_max_(t_max), eta_min_(eta_min) {
    this->require(t_max >= 1, "CosineAnnealingLR", "T_max", ">= 1", static_cast<double>(t_max));
    this->require(std::isfinite(eta_min) && eta_min >= 0.0, "CosineAnnealingLR", "eta_min",
                  "finite and >= 0", eta_min);
  }

  std::string name() const override {
    return detail::concat("CosineAnnealingLR(T_max=", t_max_, ", eta_min=", eta_min_, ")");
  }

 protected:
  void on_epoch_end(double /*metric*/) override {
    constexpr double pi = 3.14159265358979323846;
    const double phase = pi * static_cast<double>(this->epoch_) / static_cast<double>(t_max_);
    this->set_learning_rate(eta_min_ + (this->base_lr_ - eta_min_) * (1.0 + std::cos(phase)) / 2.0);
  }

 private:
  std::int64_t t_max_;
  double eta_min_;
};

/// ReduceLROnPlateau options; torch's names and defaults.
class PlateauOptions {
 public:
  /// Whether the metric should decrease (min, a loss) or increase (max, an accuracy).
  enum class Mode { min, max };
  /// Whether `threshold` is relative to best (rel) or an absolute margin (abs).
  enum class ThresholdMode { rel, abs };

  /// Sets the direction of improvement (default min); returns *this.
  PlateauOptions& mode(Mode value) {
    mode_ = value;
    return *this;
  }
  /// Sets the factor the rate is multiplied by, in (0, 1) (default 0.1); returns *this.
  PlateauOptions& factor(double value) {
    factor_ = value;
    return *this;
  }
  /// Sets how many epochs without improvement are tolerated, >= 0 (default 10); returns *this.
  PlateauOptions& patience(std::int64_t value) {
    patience_ = value;
    return *this;
  }
  /// Sets the least change that counts as an improvement, >= 0 (default 1e-4); returns *this.
  PlateauOptions& threshold(double value) {
    threshold_ = value;
    return *this;
  }
  /// Sets how threshold is applied (default rel); returns *this.
  PlateauOptions& threshold_mode(ThresholdMode value) {
    threshold_mode_ = value;
    return *this;
  }
  /// Sets the epochs to wait after a reduction before counting again, >= 0 (default 0); returns
  /// *this.
  PlateauOptions& cooldown(std::int64_t value) {
    cooldown_ = value;
    return *this;
  }
  /// Sets the floor of the learning rate, >= 0 (default 0); returns *this.
  PlateauOptions& min_lr(double value) {
    min_lr_ = value;
    return *this;
  }
  /// Sets the smallest change of the rate worth applying, >= 0 (default 1e-8); returns *this.
  PlateauOptions& eps(double value) {
    eps_ = value;
    return *this;
  }

  /// Direction of improvement.
  Mode mode() const { return mode_; }
  /// Reduction factor.
  double factor() const { return factor_; }
  /// Epochs without improvement tolerated.
  std::int64_t patience() const { return patience_; }
  /// Least change that counts as an improvement.
  double threshold() const { return threshold_; }
  /// How threshold is applied.
  ThresholdMode threshold_mode() const { return threshold_mode_; }
  /// Epochs of cooldown after a reduction.
  std::int64_t cooldown() const { return cooldown_; }
  /// Floor of the learning rate.
  double min_lr() const { return min_lr_; }
  /// Smallest change of the rate applied.
  double eps() const { return eps_; }

 private:
  Mode mode_ = Mode::min;
  double factor_ = 0.1;
  std::int64_t patience_ = 10;
  double threshold_ = 1e-4;
  ThresholdMode threshold_mode_ = ThresholdMode::rel;
  std::int64_t cooldown_ = 0;
  double min_lr_ = 0.0;
  double eps_ = 1e-8;
};

/// Multiplies the rate by `factor` when the metric has not improved for more than `patience`
/// epochs, as torch's ReduceLROnPlateau. At each step(metric):
///   improved (mode min, rel: metric < best * (1 - threshold); abs: metric < best - threshold;
///             mode max, rel: metric > best * (1 + threshold); abs: metric > best + threshold)
///     -> best = metric, bad_epochs = 0;  otherwise bad_epochs += 1   (best starts at -+inf)
///   in cooldown (cooldown_left > 0) -> cooldown_left -= 1, bad_epochs = 0
///   bad_epochs > patience -> lr = max(lr * factor, min_lr) unless that changes lr by <= eps;
///                            cooldown_left = cooldown, bad_epochs = 0
/// A NaN metric never improves. Throws unless factor is in (0, 1), patience and cooldown are
/// >= 0, and threshold, min_lr and eps are finite and >= 0.
template <class T>
class ReduceLROnPlateau : public LRScheduler<T> {
 public:
  /// min or max: the direction of improvement.
  using Mode = PlateauOptions::Mode;
  /// rel or abs: how threshold is applied.
  using ThresholdMode = PlateauOptions::ThresholdMode;

  /// Watches the metric passed to step(); throws InvalidArgument("ReduceLROnPlateau: ...") on an
  /// invalid option (see the class comment).
  explicit ReduceLROnPlateau(Optimizer<T>& optimizer, const PlateauOptions& options = {})
      : LRScheduler<T>(optimizer), options_(options), best_(worst()) {
    validate();
  }

  std::string name() const override {
    std::ostringstream out;
    out << "ReduceLROnPlateau(mode=" << (options_.mode() == Mode::min ? "min" : "max")
        << ", factor=" << options_.factor() << ", patience=" << options_.patience()
        << ", threshold=" << options_.threshold()
        << ", threshold_mode=" << (options_.threshold_mode() == ThresholdMode::rel ? "rel" : "abs")
        << ", cooldown=" << options_.cooldown() << ", min_lr=" << options_.min_lr()
        << ", eps=" << options_.eps() << ")";
    return out.str();
  }

  /// The best metric so far (+inf for min, -inf for max before the first step).
  double best() const { return best_; }
  /// Epochs since the last improvement (reset by a reduction and during cooldown).
  std::int64_t bad_epochs() const { return bad_epochs_; }
  /// Epochs of cooldown still to run.
  std::int64_t cooldown_left() const { return cooldown_left_; }
  /// The options this schedule was built with.
  const PlateauOptions& options() const { return options_; }

 protected:
  void on_epoch_end(double metric) override {
    if (is_better(metric)) {
      best_ = metric;
      bad_epochs_ = 0;
    } else {
      ++bad_epochs_;
    }
    if (cooldown_left_ > 0) {
      --cooldown_left_;
      bad_epochs_ = 0;  // epochs in cooldown do not count towards patience
    }
    if (bad_epochs_ > options_.patience()) {
      reduce();
      cooldown_left_ = options_.cooldown();
      bad_epochs_ = 0;
    }
  }

 private:
  void validate() const {
    const char* who = "ReduceLROnPlateau";
    const PlateauOptions& o = options_;
    this->require(o.factor() > 0.0 && o.factor() < 1.0, who, "factor", "in (0, 1)", o.factor());
    this->require(o.patience() >= 0, who, "patience", ">= 0", static_cast<double>(o.patience()));
    this->require(o.cooldown() >= 0, who, "cooldown", ">= 0", static_cast<double>(o.cooldown()));
    this->require(std::isfinite(o.threshold()) && o.threshold() >= 0.0, who, "threshold",
                  "finite and >= 0", o.threshold());
    this->require(std::isfinite(o.min_lr()) && o.min_lr() >= 0.0, who, "min_lr", "finite and >= 0",
                  o.min_lr());
    this->require(std::isfinite(o.eps()) && o.eps() >= 0.0, who, "eps", "finite and >= 0", o.eps());
  }

  double worst() const {
    const double inf = std::numeric_limits<double>::infinity();
    return options_.mode() == Mode::min ? inf : -inf;
  }

  bool is_better(double metric) const {
    const double th = options_.threshold();
    const bool rel = options_.threshold_mode() == ThresholdMode::rel;
    if (options_.mode() == Mode::min) return metric < (rel ? best_ * (1.0 - th) : best_ - th);
    return metric > (rel ? best_ * (1.0 + th) : best_ + th);
  }

  void reduce() {
    const auto old_lr = static_cast<double>(this->learning_rate());
    const double new_lr = std::max(old_lr * options_.factor(), options_.min_lr());
    if (old_lr - new_lr > options_.eps()) this->set_learning_rate(new_lr);
  }

  PlateauOptions options_;
  double best_;
  std::int64_t bad_epochs_ = 0;
  std::int64_t cooldown_left_ = 0;
};

}  // namespace dropnet
