#pragma once
// SGD<T>: stochastic gradient descent with optional momentum, exactly as torch.optim.SGD.
//
//   g <- grad + weight_decay * p                       (coupled L2; skipped when weight_decay == 0)
//   if momentum != 0:
//     b <- g                                           on the first step (no dampening)
//     b <- momentum * b + (1 - dampening) * g          afterwards
//     g <- g + momentum * b  if nesterov, else  g <- b
//   p <- p - lr * g
//
// Usage: SGD<float> opt(model.parameters(), SGDOptions(0.1).momentum(0.9).nesterov(true));
//
// Throws InvalidArgument("SGD: ...") when lr, momentum or weight_decay is negative or not
// finite, dampening is outside [0, 1], or nesterov is asked for without momentum > 0 and
// dampening == 0.
// state(): one momentum buffer per parameter, in parameter order (none when momentum == 0).

#include <sstream>
#include <string>
#include <vector>

#include "../simd/elementwise.hpp"
#include "optimizer.hpp"

namespace dropnet {

/// SGD hyperparameters; torch.optim.SGD names and defaults. Doubles, like torch's Python floats,
/// so derived constants such as 1 - dampening round once, not twice, for float models.
class SGDOptions {
 public:
  /// Options with learning rate `lr` and torch's defaults for the rest (no momentum).
  explicit SGDOptions(double lr) : lr_(lr) {}

  /// Sets the learning rate; returns *this. Checked when the optimizer is built.
  SGDOptions& lr(double value) {
    lr_ = value;
    return *this;
  }
  /// Sets the momentum factor (default 0, plain SGD); returns *this.
  SGDOptions& momentum(double value) {
    momentum_ = value;
    return *this;
  }
  /// Sets the dampening of the momentum buffer, in [0, 1] (default 0); returns *this.
  SGDOptions& dampening(double value) {
    dampening_ = value;
    return *this;
  }
  /// Sets the coupled L2 weight decay (default 0); returns *this.
  SGDOptions& weight_decay(double value) {
    weight_decay_ = value;
    return *this;
  }
  /// Turns Nesterov momentum on (needs momentum > 0 and dampening 0); returns *this.
  SGDOptions& nesterov(bool enabled) {
    nesterov_ = enabled;
    return *this;
  }

  /// The learning rate.
  double lr() const { return lr_; }
  /// The momentum factor.
  double momentum() const { return momentum_; }
  /// The momentum dampening.
  double dampening() const { return dampening_; }
  /// The coupled L2 weight decay.
  double weight_decay() const { return weight_decay_; }
  /// Whether Nesterov momentum is on.
  bool nesterov() const { return nesterov_; }

 private:
  double lr_;
  double momentum_ = 0.0;
  double dampening_ = 0.0;
  double weight_decay_ = 0.0;
  bool nesterov_ = false;
};

/// Stochastic gradient descent with optional momentum, exactly as torch.optim.SGD (update rule
/// in the file comment above); state(): one momentum buffer per parameter when momentum != 0.
template <class T>
class SGD : public Optimizer<T> {
 public:
  /// SGD over `params`; throws InvalidArgument("SGD: ...") on an invalid option (see the file
  /// comment) or an empty parameter list.
  SGD(ParameterList<T> params, const SGDOptions& options)
      : Optimizer<T>("SGD", std::move(params), static_cast<T>(options.lr())), options_(options) {
    validate();
    if (options_.momentum() != 0.0) momentum_buffers_ = this->zeros_like_parameters();
  }

  std::string kind() const override { return "SGD"; }

  std::string name() const override {
    std::ostringstream out;
    out << "SGD(lr=" << this->lr_ << ", momentum=" << options_.momentum()
        << ", dampening=" << options_.dampening() << ", weight_decay=" << options_.weight_decay()
        << (options_.nesterov() ? ", nesterov" : "") << ")";
    return out.str();
  }

  void step() override {
    const bool first = this->begin_step() == 1;
    simd::SgdConstants<T> c{};
    c.lr = this->lr_;
    c.momentum = static_cast<T>(options_.momentum());
    c.one_minus_dampening = static_cast<T>(1.0 - options_.dampening());
    c.first = first;
    c.nesterov = options_.nesterov();
    // One fused pass (simd/elementwise.hpp); torch skips the L2 term when wd == 0.
    this->for_each_segment([&](const ParameterSegment& s) {
      const std::size_t i = s.parameter;
      const double wd = this->decay_for(i, options_.weight_decay());
      simd::SgdConstants<T> run = c;
      run.weight_decay = static_cast<T>(wd);
      run.coupled_decay = wd != 0.0;
      T* buffer = momentum_buffers_.empty() ? nullptr : momentum_buffers_[i].data() + s.offset;
      simd::sgd_update(this->value_of(i).data() + s.offset, this->grad_of(i).data() + s.offset,
                       buffer, s.length, run);
    });
  }

  bool is_elementwise() const override { return true; }

  std::vector<Vector<T>*> state() override {
    std::vector<Vector<T>*> tensors;
    for (auto& buffer : momentum_buffers_) tensors.push_back(&buffer);
    return tensors;
  }

  /// The hyperparameters this optimizer was built with (lr as given; see learning_rate()).
  const SGDOptions& options() const { return options_; }

 private:
  void validate() const {
    this->require_finite_non_negative("momentum", options_.momentum());
    this->require_unit_interval("dampening", options_.dampening(), true);
    this->require_finite_non_negative("weight_decay", options_.weight_decay());
    detail::require(
        !options_.nesterov() || (options_.momentum() > 0.0 && options_.dampening() == 0.0),
        this->name_for_errors_,
        "nesterov requires momentum > 0 and dampening == 0, got momentum=", options_.momentum(),
        ", dampening=", options_.dampening());
  }

  SGDOptions options_;
  std::vector<Vector<T>> momentum_buffers_;
};

}  // namespace dropnet
