#pragma once
// Optimizer<T>: updates a flat list of parameters from their gradients.
//
// An optimizer is built from model.parameters() and keeps its per-parameter state (momentum
// buffers, Adam moments) by position in that list. step() applies one update in place and
// allocates nothing after construction.
//
// Throws InvalidArgument naming the optimizer when the list is empty, a parameter has no
// gradient, or the learning rate is negative or not finite.
//
// Sharded steps (data-parallel fit, training/data_parallel.hpp): an elementwise optimizer (every
// built-in one: each element's update reads only that element's value, gradient and state) can
// be restricted to a range of the parameters laid end to end (restrict_step), so that each
// rank updates only its share; the state outside the range is then left as it was.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include "../core/error.hpp"
#include "../core/parallel.hpp"
#include "../core/parameter.hpp"

namespace dropnet {

/// Base class of the optimizers: updates a fixed list of parameter views in place from their
/// gradients, keeping per-parameter state by position in the list (see the file comment above).
template <class T>
class Optimizer {
 public:
  virtual ~Optimizer() = default;

  /// Human-readable description with the hyperparameters, e.g. "Adam(lr=0.001, ...)".
  virtual std::string name() const = 0;

  /// The optimizer's type ("SGD", "Adam", ...): what a saved optimizer state must match.
  virtual std::string kind() const = 0;

  /// One update of every parameter from its current gradient (of the elements in
  /// restrict_step's range only, when it was called).
  virtual void step() = 0;

  /// True when step() updates each element from that element's value, gradient and state
  /// alone and honours restrict_step (every built-in optimizer): what a sharded step needs.
  /// A subclass that keeps the default (false) is always stepped in full.
  virtual bool is_elementwise() const { return false; }

  /// Per-parameter state tensors (for saving and resuming training), in a fixed order that each
  /// optimizer documents.
  virtual std::vector<Vector<T>*> state() { return {}; }

  /// Sets every gradient to zero (layers overwrite gradients in backward, so fit need not
  /// call it).
  void zero_grad() {
    for (auto& p : params_) p.flat_grad().setZero();
  }

  /// The current learning rate (what step() uses; schedules change it).
  T learning_rate() const { return lr_; }
  /// Sets the learning rate used by the next step(); throws InvalidArgument naming the optimizer
  /// unless lr is finite and >= 0.
  void set_learning_rate(T lr) {
    require_finite_non_negative("lr", lr);
    lr_ = lr;
  }

  /// Number of step() calls so far: Adam's bias correction and Adagrad's lr decay depend on it,
  /// and SGD's momentum buffer starts as a copy of the gradient when it is 0.
  std::int64_t step_count() const { return steps_; }

  /// Restores the step count together with state() when resuming training.
  void set_step_count(std::int64_t steps) {
    detail::require(steps >= 0, name_for_errors_, "step count must be >= 0, got ", steps);
    steps_ = steps;
  }

  /// The parameter views this optimizer updates, in the order of state().
  const ParameterList<T>& parameters() const { return params_; }

  /// Leaves the parameters of these roles out of weight decay, e.g. {ParameterRole::bias,
  /// ParameterRole::scale, ParameterRole::shift}: what PyTorch users do with parameter groups and
  /// Keras with exclude_from_weight_decay. By default every parameter decays, as in torch.optim.
  /// Replaces any earlier exclusion; returns *this.
  Optimizer& exclude_from_weight_decay(std::initializer_list<ParameterRole> roles) {
    for (std::size_t i = 0; i < params_.size(); ++i)
      decays_[i] = std::find(roles.begin(), roles.end(), params_[i].role) == roles.end();
    return *this;
  }

  /// Biases and normalization scales and shifts out of weight decay, the common recipe.
  Optimizer& exclude_biases_and_norms_from_weight_decay() {
    return exclude_from_weight_decay({ParameterRole::bias, ParameterRole::scale, ParameterRole::shift});
  }

  /// False for a parameter left out of weight decay.
  bool decays(std::size_t i) const { return decays_.at(i); }

  /// Number of scalars over every parameter (the length of the parameters laid end to end).
  Index element_count() const {
    Index n = 0;
    for (const auto& p : params_) n += p.size();
    return n;
  }

  /// Restricts the next steps to the elements [begin, end) of the parameters laid end to end in
  /// order (ModelState's gradient order), for an elementwise optimizer; restrict_step(0,
  /// element_count()) undoes it. The state outside the range is not touched. Throws
  /// InvalidArgument naming the optimizer when the range is not within [0, element_count()] or
  /// the optimizer is not elementwise.
  void restrict_step(Index begin, Index end) {
    const Index total = element_count();
    detail::require(0 <= begin && begin <= end && end <= total, name_for_errors_,
                    "restrict_step: range [", begin, ", ", end, ") is not within the ", total,
                    " parameter elements");
    detail::require(is_elementwise() || (begin == 0 && end == total), name_for_errors_,
                    "restrict_step: this optimizer is not elementwise");
    segments_ = segments_of(params_, begin, end);
  }

 protected:
  /// f(run) over the runs step() updates (every parameter whole, unless restrict_step narrowed
  /// them), laid end to end and cut into one piece per thread as an
  /// elementwise kernel's loop is (core/parallel.hpp): one loop for every parameter, so the
  /// small ones (biases, the output layer) no longer run alone on the calling thread, and a
  /// step hands work to the other threads once. A run cut by a piece boundary comes as two
  /// narrower runs of the same parameter; the kernels f calls inside a piece run on its thread.
  /// The updates are elementwise: the bits do not depend on the split. f must not throw.
  template <class F>
  void for_each_segment(F&& f) const {
    Index total = 0;
    for (const auto& s : segments_) total += s.length;
    constexpr Index align = Index(64 / sizeof(T));  // pieces start on cache lines
    detail::parallel_for(total, align, detail::parallel_elements, [&](Index begin, Index end) {
      Index start = 0;  // of run s, in the flat order of the runs
      for (const auto& s : segments_) {
        const Index from = std::max(begin, start), to = std::min(end, start + s.length);
        if (from < to) f(ParameterSegment{s.parameter, s.offset + from - start, to - from});
        start += s.length;
        if (start >= end) break;
      }
    });
  }

  /// A parameter's values as a flat array, for coefficient-wise updates.
  using ArrayMap = Eigen::Map<Eigen::Array<T, Eigen::Dynamic, 1>>;
  /// A parameter's gradient as a flat read-only array.
  using ConstArrayMap = Eigen::Map<const Eigen::Array<T, Eigen::Dynamic, 1>>;

  /// Takes `params` and the initial learning rate; `optimizer_name` prefixes error messages. Throws
  /// InvalidArgument if params is empty, a parameter has no value or gradient, or lr is negative or
  /// not finite.
  Optimizer(const std::string& optimizer_name, ParameterList<T> params, T lr)
      : params_(std::move(params)), lr_(lr), name_for_errors_(optimizer_name) {
    detail::require(!params_.empty(), optimizer_name, "no parameters to optimize");
    for (const auto& p : params_)
      detail::require(p.value != nullptr && p.grad != nullptr, optimizer_name, "parameter '",
                      p.name, "' has no value or gradient");
    require_finite_non_negative("lr", lr);
    decays_.assign(params_.size(), true);
    segments_ = segments_of(params_, 0, element_count());
  }

  /// Hyperparameters arrive as double (see the options structs), so the checks take double.
  void require_finite_non_negative(const char* what, double value) const {
    detail::require(std::isfinite(value) && value >= 0.0, name_for_errors_, what,
                    " must be finite and >= 0, got ", value);
  }

  /// Throws InvalidArgument naming the optimizer and `what` unless value is finite and > 0.
  void require_finite_positive(const char* what, double value) const {
    detail::require(std::isfinite(value) && value > 0.0, name_for_errors_, what,
                    " must be finite and > 0, got ", value);
  }

  /// [0, 1) when `include_one` is false, [0, 1] otherwise; a NaN fails both comparisons.
  void require_unit_interval(const char* what, double value, bool include_one) const {
    const bool ok = value >= 0.0 && (include_one ? value <= 1.0 : value < 1.0);
    detail::require(ok, name_for_errors_, what, " must be in [0, 1", (include_one ? "]" : ")"),
                    ", got ", value);
  }

  /// Counts a step and returns its 1-based number t, as in the torch.optim pseudo-code.
  std::int64_t begin_step() { return ++steps_; }

  /// Parameter i's values as a flat writable array.
  ArrayMap value_of(std::size_t i) const { return {params_[i].value, params_[i].size()}; }
  /// Parameter i's gradient as a flat array.
  ConstArrayMap grad_of(std::size_t i) const { return {params_[i].grad, params_[i].size()}; }

  /// `wd` for a parameter that decays, else 0.
  double decay_for(std::size_t i, double wd) const { return decays_[i] ? wd : 0.0; }

  /// One zero vector per parameter, the shape of an optimizer state buffer.
  std::vector<Vector<T>> zeros_like_parameters() const {
    std::vector<Vector<T>> buffers;
    buffers.reserve(params_.size());
    for (const auto& p : params_) buffers.push_back(Vector<T>::Zero(p.size()));
    return buffers;
  }

  /// The parameters being optimized, in the order the state is kept.
  ParameterList<T> params_;
  /// The learning rate.
  T lr_;
  /// The optimizer's kind, the prefix of its error messages.
  std::string name_for_errors_;
  /// Number of step() calls so far.
  std::int64_t steps_ = 0;
  std::vector<bool> decays_;  ///< by parameter: false when its role is excluded from weight decay

 private:
  std::vector<ParameterSegment> segments_;
};

}  // namespace dropnet
