#pragma once
// ConcreteDropoutDense<T, Act>: a Dense layer whose input dropout rate p is learned (Gal, Hron
// and Kendall 2017, "Concrete Dropout"), as their reference Keras wrapper ConcreteDropout(Dense).
//
// p = sigmoid(theta) with theta the trainable "p_logit". In train and mc_sample modes, per input
// element, with u ~ Uniform(0, 1) and temperature t (0.1):
//   z      = sigmoid((log p - log(1-p) + log u - log(1-u)) / t)       (relaxed "drop" in (0,1))
//   xt     = x * (1 - z) / (1 - p)                                    (inverted, like Dropout)
//   y      = Dense(xt) = f(W xt + b)
// In eval mode xt = x (the expectation, as inverted dropout). The layer's penalty is
//   weight_regularizer * ||W||^2 / (1 - p)  +  dropout_regularizer * D * (p log p + (1-p) log(1-p))
// with D the input size: the first term is the KL of the weights' prior (the Dense's L2, with a
// strength that grows as p does), the second the negative entropy of the Bernoulli(p), so
// minimizing it pushes p towards 0.5; the data term pulls p down. Gal et al. set
// weight_regularizer = l^2 / N and dropout_regularizer = 2 / N for N training samples and a
// prior length-scale l (the loss here is a mean over the batch, hence the 1/N).
// backward, with dxt the Dense's input gradient:
//   d/dtheta [data] = sum dxt * xt * (p - z / t)       (d keep / d theta = keep (p - z/t))
//   d/dtheta [penalty] = weight_regularizer ||W||^2 p / (1-p) + dropout_regularizer D theta p (1-p)
//   dx = dxt * (1 - z) / (1 - p)
// The Dense's own L2 carries the weight term (its strength is set to weight_regularizer / (1-p)
// before each forward), so its gradient is the Dense's.
// Shapes: x is in x batch, y out x batch. Throws InvalidArgument for sizes <= 0, an initial p
// outside (0, 1), a temperature <= 0 or negative regularizers; forward in train or mc_sample mode
// without a Generator throws too.
// config() holds the construction settings (with the initial p); the learned p is the parameter
// "p_logit", saved with the weights.

#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "activation_config.hpp"
#include "dense.hpp"

namespace dropnet {

/// The regularizers, relaxation temperature and initial rate of a ConcreteDropoutDense.
struct ConcreteDropoutOptions {
  double weight_regularizer = 1e-6;   ///< l^2 / N in Gal et al.
  double dropout_regularizer = 1e-5;  ///< 2 / N in Gal et al.
  double temperature = 0.1;           ///< t of the Concrete relaxation
  double initial_p = 0.1;             ///< p before training, in (0, 1)
};

/// Dense(in -> out, Activation) on its input dropped out at a learned rate p (Concrete dropout;
/// the formulas, shapes and errors are in this header's comment).
template <class T, class Activation = Identity>
class ConcreteDropoutDense : public Layer<T> {
 public:
  /// A Dense(in -> out) with a learned input dropout; weights drawn from `gen` as Dense does.
  ConcreteDropoutDense(Index in_features, Index out_features, Generator& gen,
                       ConcreteDropoutOptions options = {}, Init init = default_init<Activation>(),
                       Activation activation = {})
      : options_(options), dense_(in_features, out_features, gen, init, activation), init_(init) {
    const double p = options.initial_p;
    detail::require(p > 0 && p < 1, "ConcreteDropoutDense", "initial_p must be in (0, 1), got ", p);
    detail::require(options.temperature > 0 && std::isfinite(options.temperature),
                    "ConcreteDropoutDense", "temperature must be finite and > 0, got ",
                    options.temperature);
    detail::require(options.weight_regularizer >= 0 && options.dropout_regularizer >= 0,
                    "ConcreteDropoutDense", "regularizers must be >= 0, got ",
                    options.weight_regularizer, " and ", options.dropout_regularizer);
    p_logit_ = Vector<T>::Constant(1, static_cast<T>(std::log(p) - std::log1p(-p)));
    p_logit_grad_ = Vector<T>::Zero(1);
  }

  /// The layer config() describes, built with the activation its config names (so any
  /// instantiation's from_config serves as the registry's factory); charges the Dense's tensors
  /// and p_logit to `budget` first. Throws FormatError for a missing or bad field.
  static LayerPtr<T> from_config(const LayerConfig& c, ElementBudget& budget) {
    const Index in = c.integer("in", 1, detail::max_layer_size);
    const Index out = c.integer("out", 1, detail::max_layer_size);
    budget.take(affine_elements(out, in) + 2, "ConcreteDropoutDense(" + std::to_string(in) +
                                                  "->" + std::to_string(out) + ")");
    ConcreteDropoutOptions options;
    options.weight_regularizer = c.finite("weight_regularizer");
    options.dropout_regularizer = c.finite("dropout_regularizer");
    options.temperature = c.finite("temperature");
    options.initial_p = c.finite("initial_p");
    const Init init = init_from_string(c.string("init"));
    return with_activation(c, [&](auto activation) -> LayerPtr<T> {
      Generator unused(0);
      return std::make_unique<ConcreteDropoutDense<T, decltype(activation)>>(in, out, unused,
                                                                             options, init, activation);
    });
  }

  /// The current (learned) dropout rate p = sigmoid(p_logit).
  double p() const { return 1.0 / (1.0 + std::exp(-static_cast<double>(p_logit_(0)))); }
  /// The Dense the dropped-out input feeds.
  const Dense<T, Activation>& dense() const { return dense_; }
  /// The settings the layer was built with.
  const ConcreteDropoutOptions& options() const { return options_; }

  std::string name() const override {
    return detail::concat("ConcreteDropoutDense(", dense_.in_features(), "->",
                          dense_.out_features(), ", ", activation_name(dense_.activation()),
                          ", p=", p(), ")");
  }
  Index expected_input_rows() const override { return dense_.in_features(); }
  Index output_rows(Index input_rows) const override { return dense_.output_rows(input_rows); }
  bool is_stochastic() const override { return true; }

  /// y = Dense(x * keep) with fresh relaxed masks in train and mc_sample modes, Dense(x) in eval.
  const Matrix<T>& forward(const Matrix<T>& x, Mode mode, Generator* gen) override {
    this->require_input_rows(x, dense_.in_features());
    this->require_generator(mode, gen);
    dense_.with_l2(static_cast<T>(options_.weight_regularizer / (1.0 - p())));
    input_ = &x;
    sampled_ = dropnet::is_stochastic(mode);
    if (!sampled_) return dense_.forward(x, mode, gen);
    relax(x, *gen);
    return dense_.forward(dropped_, mode, gen);
  }

  /// The Dense's gradients, d loss / d p_logit (data and penalty terms), and dx when asked.
  const Matrix<T>& backward(const Matrix<T>& dy, bool need_dx) override {
    if (input_ == nullptr) throw InvalidArgument(name() + ": backward called before forward");
    const Matrix<T>& dxt = dense_.backward(dy, need_dx || sampled_);
    const double p = this->p(), theta = static_cast<double>(p_logit_(0));
    const double in = static_cast<double>(dense_.in_features());
    double grad = options_.weight_regularizer * static_cast<double>(dense_.weight().squaredNorm()) *
                      p / (1.0 - p) +
                  options_.dropout_regularizer * in * theta * p * (1.0 - p);
    if (!sampled_) {
      p_logit_grad_(0) = static_cast<T>(grad);
      return dxt;
    }
    // keep' / keep = p - z / t, with z = drop_ and keep = keep_.
    const T inv_t = static_cast<T>(1.0 / options_.temperature);
    grad += static_cast<double>(
        (dxt.array() * dropped_.array() * (static_cast<T>(p) - drop_.array() * inv_t)).sum());
    p_logit_grad_(0) = static_cast<T>(grad);
    if (!need_dx) {
      dx_.resize(0, 0);
      return dx_;
    }
    dx_.array() = dxt.array() * keep_.array();
    return dx_;
  }

  /// The Dense's weight and bias, then "p_logit" (1 x 1).
  ParameterList<T> parameters() override {
    ParameterList<T> list = dense_.parameters();
    list.push_back(view_of<T>("p_logit", p_logit_, &p_logit_grad_, ParameterRole::scale));
    return list;
  }

  /// The weight term (the Dense's L2 at strength weight_regularizer / (1 - p)) plus the entropy
  /// term dropout_regularizer * D * (p log p + (1 - p) log(1 - p)).
  T penalty() const override {
    const double p = this->p();
    const double w = options_.weight_regularizer *
                     static_cast<double>(dense_.weight().squaredNorm()) / (1.0 - p);
    const double entropy_term = options_.dropout_regularizer *
                                static_cast<double>(dense_.in_features()) *
                                (p * std::log(p) + (1.0 - p) * std::log1p(-p));
    return static_cast<T>(w + entropy_term);
  }

  /// in, out, activation, activation_parameter, init, weight_regularizer, dropout_regularizer,
  /// temperature, initial_p.
  LayerConfig config() const override {
    return {"ConcreteDropoutDense",
            {{"in", double(dense_.in_features())},
             {"out", double(dense_.out_features())},
             {"activation_parameter", dense_.activation().parameter()},
             {"weight_regularizer", options_.weight_regularizer},
             {"dropout_regularizer", options_.dropout_regularizer},
             {"temperature", options_.temperature},
             {"initial_p", options_.initial_p}},
            {{"activation", Activation::kind}, {"init", to_string(init_)}}};
  }

 private:
  /// drop_ = z, keep_ = (1 - z) / (1 - p), dropped_ = x * keep_, from fresh uniforms.
  void relax(const Matrix<T>& x, Generator& gen) {
    words_.resize(static_cast<std::size_t>(x.size()));
    gen.fill_u32(words_.data(), words_.size());
    drop_.resize(x.rows(), x.cols());
    keep_.resize(x.rows(), x.cols());
    const double theta = static_cast<double>(p_logit_(0));
    const double scale = 1.0 / (1.0 - p());
    for (Index i = 0; i < x.size(); ++i) {
      // u = (k + 1/2) 2^-32 lies strictly inside (0, 1), so both logs are finite.
      const double u = (static_cast<double>(words_[static_cast<std::size_t>(i)]) + 0.5) * 0x1p-32;
      const double a = (theta + std::log(u) - std::log1p(-u)) / options_.temperature;
      const double z = 1.0 / (1.0 + std::exp(-a));
      drop_.data()[i] = static_cast<T>(z);
      keep_.data()[i] = static_cast<T>((1.0 - z) * scale);
    }
    dropped_.array() = x.array() * keep_.array();
  }

  ConcreteDropoutOptions options_;
  Dense<T, Activation> dense_;
  Init init_;
  Vector<T> p_logit_, p_logit_grad_;
  const Matrix<T>* input_ = nullptr;
  bool sampled_ = false;
  std::vector<std::uint32_t> words_;
  Matrix<T> drop_, keep_, dropped_, dx_;
};

}  // namespace dropnet
