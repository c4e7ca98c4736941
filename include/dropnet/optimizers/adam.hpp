#pragma once
// Adam<T> and its decoupled-weight-decay sibling AdamW<T> (see adamw.hpp), exactly as
// torch.optim.Adam and torch.optim.AdamW.
//
// At step t (1-based), for each parameter p with gradient g:
//   AdamW only:  p <- p * (1 - lr * weight_decay)              (decoupled decay)
//   Adam only:   g <- g + weight_decay * p                     (coupled L2; skipped when 0)
//   m <- beta1 * m + (1 - beta1) * g
//   v <- beta2 * v + (1 - beta2) * g^2
//   amsgrad:     v_max <- max(v_max, v), and v_max replaces v below
//   p <- p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
// The amsgrad maximum is over the raw v, as torch's code does (some versions of its docs show
// the maximum of the bias-corrected v instead).
//
// Usage: Adam<float> opt(model.parameters(), AdamOptions(3e-4).betas(0.9, 0.98).amsgrad(true));
//
// Throws InvalidArgument("Adam: ..." or "AdamW: ...") when lr or weight_decay is negative or not
// finite, a beta is outside [0, 1), or eps is not finite and > 0.
// state(): for each parameter in order, m then v, then v_max when amsgrad. step_count() is t.

#include <algorithm>
#include <cmath>
#include <sstream>
#include <string>
#include <vector>

#include "../simd/elementwise.hpp"
#include "optimizer.hpp"

namespace dropnet {

/// Adam (Decoupled = false) or AdamW (true) hyperparameters; torch's names and defaults, which
/// differ only in weight_decay (0 for Adam, 1e-2 for AdamW). Doubles, like torch's Python
/// floats, so derived constants such as 1 - beta2 round once for float models.
template <bool Decoupled>
class BasicAdamOptions {
 public:
  /// Options with learning rate `lr` and torch's defaults for the rest.
  explicit BasicAdamOptions(double lr = 1e-3) : lr_(lr) {}

  /// Sets the learning rate; returns *this. Checked when the optimizer is built.
  BasicAdamOptions& lr(double value) {
    lr_ = value;
    return *this;
  }
  /// Sets the decay rates of the first and second moments, each in [0, 1) (defaults 0.9, 0.999);
  /// returns *this.
  BasicAdamOptions& betas(double beta1, double beta2) {
    beta1_ = beta1;
    beta2_ = beta2;
    return *this;
  }
  /// Sets eps, added to the denominator after the square root (default 1e-8); returns *this.
  BasicAdamOptions& eps(double value) {
    eps_ = value;
    return *this;
  }
  /// Sets the weight decay: coupled L2 for Adam (default 0), decoupled for AdamW (default 1e-2);
  /// returns *this.
  BasicAdamOptions& weight_decay(double value) {
    weight_decay_ = value;
    return *this;
  }
  /// Turns on the AMSGrad variant (the running maximum of v); returns *this.
  BasicAdamOptions& amsgrad(bool enabled) {
    amsgrad_ = enabled;
    return *this;
  }

  /// The learning rate.
  double lr() const { return lr_; }
  /// Decay rate of the first moment.
  double beta1() const { return beta1_; }
  /// Decay rate of the second moment.
  double beta2() const { return beta2_; }
  /// eps of the denominator.
  double eps() const { return eps_; }
  /// The weight decay (coupled for Adam, decoupled for AdamW).
  double weight_decay() const { return weight_decay_; }
  /// Whether AMSGrad is on.
  bool amsgrad() const { return amsgrad_; }

 private:
  double lr_;
  double beta1_ = 0.9;
  double beta2_ = 0.999;
  double eps_ = 1e-8;
  double weight_decay_ = Decoupled ? 1e-2 : 0.0;
  bool amsgrad_ = false;
};

/// Adam's hyperparameters (weight decay coupled, default 0).
using AdamOptions = BasicAdamOptions<false>;

/// Adam (Decoupled = false) or AdamW (true), exactly as torch.optim (update rule in the file
/// comment above); use the names Adam<T> and AdamW<T>. state(): m, v (and v_max with amsgrad) per
/// parameter.
template <class T, bool Decoupled>
class BasicAdam : public Optimizer<T> {
 public:
  /// The options type: AdamOptions or AdamWOptions.
  using Options = BasicAdamOptions<Decoupled>;
  /// "Adam" or "AdamW": kind() and the start of name().
  static constexpr const char* kind_name = Decoupled ? "AdamW" : "Adam";

  /// Adam over `params`; throws InvalidArgument("Adam: ..." / "AdamW: ...") on an invalid option
  /// (see the file comment) or an empty parameter list.
  explicit BasicAdam(ParameterList<T> params, const Options& options = Options())
      : Optimizer<T>(kind_name, std::move(params), static_cast<T>(options.lr())), options_(options) {
    validate();
    exp_avg_ = this->zeros_like_parameters();
    exp_avg_sq_ = this->zeros_like_parameters();
    if (options_.amsgrad()) max_exp_avg_sq_ = this->zeros_like_parameters();
  }

  std::string kind() const override { return kind_name; }

  std::string name() const override {
    std::ostringstream out;
    out << kind_name << "(lr=" << this->lr_ << ", betas=(" << options_.beta1() << ", "
        << options_.beta2() << "), eps=" << options_.eps()
        << ", weight_decay=" << options_.weight_decay() << (options_.amsgrad() ? ", amsgrad" : "")
        << ")";
    return out.str();
  }

  void step() override {
    const auto t = static_cast<double>(this->begin_step());
    // Scalars in double, as torch computes them in Python before touching the tensors.
    const double lr = static_cast<double>(this->lr_);
    simd::AdamConstants<T> c{};
    c.step_size = static_cast<T>(lr / (1.0 - std::pow(options_.beta1(), t)));
    // torch divides sqrt(v) by sqrt(1 - beta2^t); multiplying by the reciprocal differs by at most
    // an ulp and saves a division per element, which with the sqrt bounds the step's speed.
    c.inv_bc2_sqrt = static_cast<T>(1.0 / std::sqrt(1.0 - std::pow(options_.beta2(), t)));
    c.decay = static_cast<T>(1.0 - lr * options_.weight_decay());
    c.coupled_wd = static_cast<T>(Decoupled ? 0.0 : options_.weight_decay());
    c.beta1 = static_cast<T>(options_.beta1());
    c.beta2 = static_cast<T>(options_.beta2());
    c.one_minus_beta1 = static_cast<T>(1.0 - options_.beta1());
    c.one_minus_beta2 = static_cast<T>(1.0 - options_.beta2());
    c.eps = static_cast<T>(options_.eps());
    // One fused pass (simd/elementwise.hpp): each buffer is read and written once.
    this->for_each_segment([&](const ParameterSegment& s) {
      const std::size_t i = s.parameter;
      const bool decays = options_.weight_decay() != 0.0 && this->decays(i);
      simd::AdamConstants<T> run = c;
      run.decoupled_decay = Decoupled && decays;
      run.coupled_decay = !Decoupled && decays;  // torch skips the term when wd == 0
      T* v_max = options_.amsgrad() ? max_exp_avg_sq_[i].data() + s.offset : nullptr;
      simd::adam_update(this->value_of(i).data() + s.offset, this->grad_of(i).data() + s.offset,
                        exp_avg_[i].data() + s.offset, exp_avg_sq_[i].data() + s.offset, v_max,
                        s.length, run);
    });
  }

  bool is_elementwise() const override { return true; }

  std::vector<Vector<T>*> state() override {
    std::vector<Vector<T>*> tensors;
    for (std::size_t i = 0; i < this->params_.size(); ++i) {
      tensors.push_back(&exp_avg_[i]);
      tensors.push_back(&exp_avg_sq_[i]);
      if (options_.amsgrad()) tensors.push_back(&max_exp_avg_sq_[i]);
    }
    return tensors;
  }

  /// The hyperparameters this optimizer was built with (lr as given; see learning_rate()).
  const Options& options() const { return options_; }

 private:
  void validate() const {
    this->require_unit_interval("beta1", options_.beta1(), false);
    this->require_unit_interval("beta2", options_.beta2(), false);
    this->require_finite_positive("eps", options_.eps());
    this->require_finite_non_negative("weight_decay", options_.weight_decay());
  }

  Options options_;
  std::vector<Vector<T>> exp_avg_;         // m
  std::vector<Vector<T>> exp_avg_sq_;      // v
  std::vector<Vector<T>> max_exp_avg_sq_;  // v_max, only with amsgrad
};

/// Adam with coupled L2 weight decay (torch.optim.Adam).
template <class T>
using Adam = BasicAdam<T, false>;

}  // namespace dropnet
