#pragma once
// TemperatureScaling<T>: a parameter-free layer that divides its input by a fixed T > 0,
//   forward:  y = x / T        backward: dx = dy / T        (any features x batch)
// Appended after a classifier's logits it applies temperature scaling at prediction time; T is
// fitted by fit_temperature (training/temperature_scaling.hpp). config() = {"temperature"}, so
// T is saved with the architecture. Throws InvalidArgument unless T is finite and > 0.

#include <cmath>
#include <memory>
#include <string>

#include "layer.hpp"

namespace dropnet {

/// A parameter-free layer that divides its input by a fixed temperature: y = x / T, dx = dy / T.
/// Append it after the logits once fit_temperature has found T. Throws InvalidArgument unless T
/// is finite and > 0.
template <class T>
class TemperatureScaling : public Layer<T> {
 public:
  /// A layer dividing by `temperature`; throws InvalidArgument unless it is finite and > 0.
  explicit TemperatureScaling(double temperature) : temperature_(temperature) {
    detail::require(std::isfinite(temperature) && temperature > 0, "TemperatureScaling",
                    "temperature must be finite and > 0, got ", temperature);
  }

  /// The layer a config() describes; the budget is not charged, as the layer allocates nothing
  /// at construction. Throws FormatError for a missing field and InvalidArgument for a bad
  /// temperature.
  static LayerPtr<T> from_config(const LayerConfig& config, ElementBudget& /*budget*/) {
    return std::make_unique<TemperatureScaling>(config.number("temperature"));
  }

  /// T.
  double temperature() const { return temperature_; }

  std::string name() const override {
    return detail::concat("TemperatureScaling(T=", temperature_, ")");
  }
  Index output_rows(Index input_rows) const override { return input_rows; }

  /// y = x / T, in every mode.
  const Matrix<T>& forward(const Matrix<T>& x, Mode, Generator*) override {
    this->require_nonempty(x);
    output_.noalias() = x * static_cast<T>(1.0 / temperature_);
    return output_;
  }

  /// dx = dy / T (computed even when need_dx is false: one scaling, cheaper than a branch's
  /// bookkeeping, and the layer has no parameters below which to skip work).
  const Matrix<T>& backward(const Matrix<T>& dy, bool /*need_dx*/) override {
    this->require_backward_shape(dy, output_);
    dx_.noalias() = dy * static_cast<T>(1.0 / temperature_);
    return dx_;
  }

  /// {"TemperatureScaling", {"temperature", T}}.
  LayerConfig config() const override {
    return {"TemperatureScaling", {{"temperature", temperature_}}, {}};
  }

 private:
  double temperature_;
  Matrix<T> output_, dx_;
};

}  // namespace dropnet
