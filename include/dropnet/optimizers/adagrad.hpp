#pragma once
// Adagrad<T>: exactly as torch.optim.Adagrad.
//
// At step t (1-based), for each parameter p with gradient g:
//   lr_t <- lr / (1 + (t - 1) * lr_decay)
//   g <- g + weight_decay * p                          (coupled L2; skipped when weight_decay == 0)
//   s <- s + g^2                                        (s starts at initial_accumulator_value)
//   p <- p - lr_t * g / (sqrt(s) + eps)
//
// Usage: Adagrad<float> opt(model.parameters(), AdagradOptions(0.05).lr_decay(1e-4));
//
// Throws InvalidArgument("Adagrad: ...") when lr, lr_decay, weight_decay or
// initial_accumulator_value is negative or not finite, or eps is not finite and > 0.
// state(): one accumulator s per parameter, in parameter order. step_count() is t.

#include <sstream>
#include <string>
#include <vector>

#include "../simd/elementwise.hpp"
#include "optimizer.hpp"

namespace dropnet {

/// Adagrad hyperparameters; torch's names and defaults. Doubles, like torch's Python floats.
class AdagradOptions {
 public:
  /// Options with learning rate `lr` (default 1e-2) and torch's defaults for the rest.
  explicit AdagradOptions(double lr = 1e-2) : lr_(lr) {}

  /// Sets the learning rate; returns *this. Checked when the optimizer is built.
  AdagradOptions& lr(double value) {
    lr_ = value;
    return *this;
  }
  /// Sets lr_decay: step t uses lr / (1 + (t - 1) lr_decay) (default 0); returns *this.
  AdagradOptions& lr_decay(double value) {
    lr_decay_ = value;
    return *this;
  }
  /// Sets the coupled L2 weight decay (default 0); returns *this.
  AdagradOptions& weight_decay(double value) {
    weight_decay_ = value;
    return *this;
  }
  /// Sets the accumulator's starting value (default 0); returns *this.
  AdagradOptions& initial_accumulator_value(double value) {
    initial_accumulator_value_ = value;
    return *this;
  }
  /// Sets eps, added after the square root (default 1e-10); returns *this.
  AdagradOptions& eps(double value) {
    eps_ = value;
    return *this;
  }

  /// The learning rate.
  double lr() const { return lr_; }
  /// The learning-rate decay.
  double lr_decay() const { return lr_decay_; }
  /// The coupled L2 weight decay.
  double weight_decay() const { return weight_decay_; }
  /// The accumulator's starting value.
  double initial_accumulator_value() const { return initial_accumulator_value_; }
  /// eps, added after the square root.
  double eps() const { return eps_; }

 private:
  double lr_;
  double lr_decay_ = 0.0;
  double weight_decay_ = 0.0;
  double initial_accumulator_value_ = 0.0;
  double eps_ = 1e-10;
};

/// Adagrad, exactly as torch.optim.Adagrad (update rule in the file comment above); state(): one
/// accumulator per parameter.
template <class T>
class Adagrad : public Optimizer<T> {
 public:
  /// Adagrad over `params`; throws InvalidArgument("Adagrad: ...") on an invalid option (see the
  /// file comment) or an empty parameter list.
  explicit Adagrad(ParameterList<T> params, const AdagradOptions& options = AdagradOptions())
      : Optimizer<T>("Adagrad", std::move(params), static_cast<T>(options.lr())),
        options_(options) {
    validate();
    sum_ = this->zeros_like_parameters();
    for (auto& s : sum_) s.setConstant(static_cast<T>(options_.initial_accumulator_value()));
  }

  std::string kind() const override { return "Adagrad"; }

  std::string name() const override {
    std::ostringstream out;
    out << "Adagrad(lr=" << this->lr_ << ", lr_decay=" << options_.lr_decay()
        << ", weight_decay=" << options_.weight_decay()
        << ", initial_accumulator_value=" << options_.initial_accumulator_value()
        << ", eps=" << options_.eps() << ")";
    return out.str();
  }

  void step() override {
    const auto t = static_cast<double>(this->begin_step());
    const auto lr_t =
        static_cast<T>(static_cast<double>(this->lr_) / (1.0 + (t - 1.0) * options_.lr_decay()));
    simd::AdagradConstants<T> c{};
    c.lr = lr_t;
    c.eps = static_cast<T>(options_.eps());
    // One fused pass (simd/elementwise.hpp); torch skips the L2 term when wd == 0.
    this->for_each_segment([&](const ParameterSegment& s) {
      const std::size_t i = s.parameter;
      const double wd = this->decay_for(i, options_.weight_decay());
      simd::AdagradConstants<T> run = c;
      run.weight_decay = static_cast<T>(wd);
      run.coupled_decay = wd != 0.0;
      simd::adagrad_update(this->value_of(i).data() + s.offset, this->grad_of(i).data() + s.offset,
                           sum_[i].data() + s.offset, s.length, run);
    });
  }

  bool is_elementwise() const override { return true; }

  std::vector<Vector<T>*> state() override {
    std::vector<Vector<T>*> tensors;
    for (auto& s : sum_) tensors.push_back(&s);
    return tensors;
  }

  /// The hyperparameters this optimizer was built with (lr as given; see learning_rate()).
  const AdagradOptions& options() const { return options_; }

 private:
  void validate() const {
    this->require_finite_non_negative("lr_decay", options_.lr_decay());
    this->require_finite_non_negative("weight_decay", options_.weight_decay());
    this->require_finite_non_negative("initial_accumulator_value",
                                      options_.initial_accumulator_value());
    this->require_finite_positive("eps", options_.eps());
  }

  AdagradOptions options_;
  std::vector<Vector<T>> sum_;  // s
};

}  // namespace dropnet
