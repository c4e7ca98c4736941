#pragma once
// RMSprop<T>: exactly as torch.optim.RMSprop.
//
// For each parameter p with gradient g:
//   g <- g + weight_decay * p                          (coupled L2; skipped when weight_decay == 0)
//   v <- alpha * v + (1 - alpha) * g^2
//   centered:  g_avg <- alpha * g_avg + (1 - alpha) * g,   v~ = v - g_avg^2;   otherwise v~ = v
//   momentum > 0:  b <- momentum * b + g / (sqrt(v~) + eps),   p <- p - lr * b
//   otherwise:     p <- p - lr * g / (sqrt(v~) + eps)
// eps is added after the square root, as torch does (TensorFlow adds it inside).
//
// Usage: RMSprop<float> opt(model.parameters(), RMSpropOptions(1e-3).momentum(0.9).centered(true));
//
// Throws InvalidArgument("RMSprop: ...") when lr, momentum or weight_decay is negative or not
// finite, alpha is outside [0, 1), or eps is not finite and > 0.
// state(): for each parameter in order, v, then b when momentum > 0, then g_avg when centered.

#include <sstream>
#include <string>
#include <vector>

#include "../simd/elementwise.hpp"
#include "optimizer.hpp"

namespace dropnet {

/// RMSprop hyperparameters; torch's names and defaults. Doubles, like torch's Python floats.
class RMSpropOptions {
 public:
  /// Options with learning rate `lr` (default 1e-2) and torch's defaults for the rest.
  explicit RMSpropOptions(double lr = 1e-2) : lr_(lr) {}

  /// Sets the learning rate; returns *this. Checked when the optimizer is built.
  RMSpropOptions& lr(double value) {
    lr_ = value;
    return *this;
  }
  /// Sets alpha, the decay of the squared-gradient average, in [0, 1) (default 0.99); returns
  /// *this.
  RMSpropOptions& alpha(double value) {
    alpha_ = value;
    return *this;
  }
  /// Sets eps, added after the square root (default 1e-8); returns *this.
  RMSpropOptions& eps(double value) {
    eps_ = value;
    return *this;
  }
  /// Sets the coupled L2 weight decay (default 0); returns *this.
  RMSpropOptions& weight_decay(double value) {
    weight_decay_ = value;
    return *this;
  }
  /// Sets the momentum factor (default 0, none); returns *this.
  RMSpropOptions& momentum(double value) {
    momentum_ = value;
    return *this;
  }
  /// Turns on centered RMSprop (normalizes by an estimate of the gradient's variance); returns
  /// *this.
  RMSpropOptions& centered(bool enabled) {
    centered_ = enabled;
    return *this;
  }

  /// The learning rate.
  double lr() const { return lr_; }
  /// Decay of the squared-gradient average.
  double alpha() const { return alpha_; }
  /// eps, added after the square root.
  double eps() const { return eps_; }
  /// The coupled L2 weight decay.
  double weight_decay() const { return weight_decay_; }
  /// The momentum factor.
  double momentum() const { return momentum_; }
  /// Whether the centered variant is on.
  bool centered() const { return centered_; }

 private:
  double lr_;
  double alpha_ = 0.99;
  double eps_ = 1e-8;
  double weight_decay_ = 0.0;
  double momentum_ = 0.0;
  bool centered_ = false;
};

/// RMSprop, exactly as torch.optim.RMSprop (update rule in the file comment above); state(): v,
/// then b with momentum, then g_avg when centered, per parameter.
template <class T>
class RMSprop : public Optimizer<T> {
 public:
  /// RMSprop over `params`; throws InvalidArgument("RMSprop: ...") on an invalid option (see the
  /// file comment) or an empty parameter list.
  explicit RMSprop(ParameterList<T> params, const RMSpropOptions& options = RMSpropOptions())
      : Optimizer<T>("RMSprop", std::move(params), static_cast<T>(options.lr())),
        options_(options) {
    validate();
    square_avg_ = this->zeros_like_parameters();
    if (options_.momentum() > 0.0) momentum_buffer_ = this->zeros_like_parameters();
    if (options_.centered()) grad_avg_ = this->zeros_like_parameters();
  }

  std::string kind() const override { return "RMSprop"; }

  std::string name() const override {
    std::ostringstream out;
    out << "RMSprop(lr=" << this->lr_ << ", alpha=" << options_.alpha()
        << ", eps=" << options_.eps() << ", weight_decay=" << options_.weight_decay()
        << ", momentum=" << options_.momentum() << (options_.centered() ? ", centered" : "") << ")";
    return out.str();
  }

  void step() override {
    this->begin_step();
    simd::RmspropConstants<T> c{};
    c.lr = this->lr_;
    c.alpha = static_cast<T>(options_.alpha());
    c.one_minus_alpha = static_cast<T>(1.0 - options_.alpha());
    c.eps = static_cast<T>(options_.eps());
    c.momentum = static_cast<T>(options_.momentum());
    // One fused pass (simd/elementwise.hpp); torch skips the L2 term when wd == 0.
    this->for_each_segment([&](const ParameterSegment& s) {
      const std::size_t i = s.parameter;
      const double wd = this->decay_for(i, options_.weight_decay());
      simd::RmspropConstants<T> run = c;
      run.weight_decay = static_cast<T>(wd);
      run.coupled_decay = wd != 0.0;
      T* buffer = momentum_buffer_.empty() ? nullptr : momentum_buffer_[i].data() + s.offset;
      T* mean = grad_avg_.empty() ? nullptr : grad_avg_[i].data() + s.offset;
      simd::rmsprop_update(this->value_of(i).data() + s.offset, this->grad_of(i).data() + s.offset,
                           square_avg_[i].data() + s.offset, buffer, mean, s.length, run);
    });
  }

  bool is_elementwise() const override { return true; }

  std::vector<Vector<T>*> state() override {
    std::vector<Vector<T>*> tensors;
    for (std::size_t i = 0; i < this->params_.size(); ++i) {
      tensors.push_back(&square_avg_[i]);
      if (!momentum_buffer_.empty()) tensors.push_back(&momentum_buffer_[i]);
      if (!grad_avg_.empty()) tensors.push_back(&grad_avg_[i]);
    }
    return tensors;
  }

  /// The hyperparameters this optimizer was built with (lr as given; see learning_rate()).
  const RMSpropOptions& options() const { return options_; }

 private:
  void validate() const {
    this->require_unit_interval("alpha", options_.alpha(), false);
    this->require_finite_positive("eps", options_.eps());
    this->require_finite_non_negative("weight_decay", options_.weight_decay());
    this->require_finite_non_negative("momentum", options_.momentum());
  }

  RMSpropOptions options_;
  std::vector<Vector<T>> square_avg_;       // v
  std::vector<Vector<T>> momentum_buffer_;  // b, only with momentum > 0
  std::vector<Vector<T>> grad_avg_;         // g_avg, only when centered
};

}  // namespace dropnet
