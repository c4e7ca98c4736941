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

template <class T>
class LRScheduler {
 public:
  virtual ~LRScheduler() = default;

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
  explicit LRScheduler(Optimizer<T>& optimizer)
      : optimizer_(optimizer), base_lr_(static_cast<double>(optimizer.learning_rate())) {}

  virtual void on_epoch_end(double metric) = 0;

  void set_learning_rate(double lr) { optimizer_.set_learning_rate(static_cast<T>(lr)); }

  static void require(bool condition, const char* schedule, const char* what, const char* expected,
                      double value) {
    detail::require(condition, schedule, what, " must be ", expected, ", got ", value);
  }

  Optimizer<T>& optimizer_;
  double base_lr_;
  std::int64_t epoch_ = 0;
};

/// lr_e = base * gamma^floor(e / step_size). Throws unless step_size >= 1 and gamma is finite
/// and >= 0.
template <class T>
class StepLR : public LRScheduler<T> {
 public:
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
  enum class Mode { min, max };
  enum class ThresholdMode { rel, abs };

  PlateauOptions& mode(Mode value) {
    mode_ = value;
    return *this;
  }
  PlateauOptions& factor(double value) {
    factor_ = value;
    return *this;
  }
  PlateauOptions& patience(std::int64_t value) {
    patience_ = value;
    return *this;
  }
  PlateauOptions& threshold(double value) {
    threshold_ = value;
    return *this;
  }
  PlateauOptions& threshold_mode(ThresholdMode value) {
    threshold_mode_ = value;
    return *this;
  }
  PlateauOptions& cooldown(std::int64_t value) {
    cooldown_ = value;
    return *this;
  }
  PlateauOptions& min_lr(double value) {
    min_lr_ = value;
    return *this;
  }
  PlateauOptions& eps(double value) {
    eps_ = value;
    return *this;
  }

  Mode mode() const { return mode_; }
  double factor() const { return factor_; }
  std::int64_t patience() const { return patience_; }
  double threshold() const { return threshold_; }
  ThresholdMode threshold_mode() const { return threshold_mode_; }
  std::int64_t cooldown() const { return cooldown_; }
  double min_lr() const { return min_lr_; }
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
  using Mode = PlateauOptions::Mode;
  using ThresholdMode = PlateauOptions::ThresholdMode;

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

  double best() const { return best_; }
  std::int64_t bad_epochs() const { return bad_epochs_; }
  std::int64_t cooldown_left() const { return cooldown_left_; }
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
