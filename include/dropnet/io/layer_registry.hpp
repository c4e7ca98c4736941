#pragma once
// LayerRegistry<T>: rebuilds a layer from its LayerConfig (layer.hpp), so a model file can hold
// the architecture and load() can rebuild the model without the user redeclaring it.
//
//   auto registry = LayerRegistry<float>::builtin();          every layer dropnet ships
//   registry.add("MyLayer", [](const LayerConfig& c, ElementBudget& budget) { ... });
//   LayerPtr<float> layer = registry.build(config, budget);
//
// Built-in kinds and the config fields they read (exactly what their config() writes):
//   Dense              in, out, activation, activation_parameter, init, l1, l2, max_norm (0 = off)
//   DropConnectDense   as Dense, plus p, per_sample (0/1), gaussian_samples (0 = mean-field)
//   Activation         activation, activation_parameter
//   Dropout, AlphaDropout, GaussianDropout    p
//   SpatialDropout     p, channels
//   BatchNorm          features, channels, spatial, momentum, eps
//   Conv2D             channels, height, width, out_channels, kernel, stride, padding,
//                      activation, activation_parameter, init, l1, l2
//   MaxPool2D, AvgPool2D          channels, height, width, kernel, stride, padding
//   GlobalAvgPool, Flatten        channels, height, width
// Activations by name: Identity ReLU LeakyReLU ELU SELU Sigmoid Tanh Softplus Swish GELU
// GELUTanh Softmax. A parameterized activation (LeakyReLU, ELU) is built as A(parameter); the
// others require activation_parameter == 0.
//
// A config usually comes from a file, so a factory trusts nothing: sizes must be integers in
// range (checked before any cast, so a NaN or 1e300 is an error, not undefined behaviour),
// flags 0 or 1, and every tensor a layer allocates at construction is first charged to the
// ElementBudget, which bounds the total memory a (corrupt) file can make load() allocate.
// Weights are initialized from a fixed Generator(0) with the config's init (so the rebuilt
// layer's config() equals the saved one) and then overwritten by the loader.
//
// Throws FormatError("layer config <kind>: ...") for a missing, non-integral, out-of-range or
// unknown field or value, and for an unknown kind; errors from the layer's own constructor
// (InvalidArgument, e.g. p outside [0, 1)) are rethrown as FormatError with the same text.

#include <cmath>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "../activations/activation.hpp"
#include "../activations/elu.hpp"
#include "../activations/relu.hpp"
#include "../activations/sigmoid.hpp"
#include "../activations/softmax.hpp"
#include "../activations/swish.hpp"
#include "../layers/alpha_dropout.hpp"
#include "../layers/batch_norm.hpp"
#include "../layers/conv2d.hpp"
#include "../layers/dense.hpp"
#include "../layers/drop_connect.hpp"
#include "../layers/dropout.hpp"
#include "../layers/flatten.hpp"
#include "../layers/gaussian_dropout.hpp"
#include "../layers/image_shape.hpp"
#include "../layers/initializers.hpp"
#include "../layers/layer.hpp"
#include "../layers/layer_config.hpp"
#include "../layers/pooling.hpp"
#include "../layers/spatial_dropout.hpp"
#include "../regularizers/weight_penalty.hpp"

namespace dropnet {

namespace detail {

template <class A>
struct type_tag {
  using type = A;
};

/// Calls f(A) with the activation the config names, built from its activation_parameter.
template <class F>
decltype(auto) with_activation(const LayerConfig& c, F&& f) {
  const std::string kind = c.string("activation");
  const double parameter = config_finite(c, "activation_parameter");
  auto build = [&](auto tag) -> decltype(auto) {
    using A = typename decltype(tag)::type;
    if constexpr (A::has_parameter) {
      return f(A(parameter));
    } else {
      if (parameter != 0.0)
        throw FormatError(concat(config_where(c), ": activation ", kind,
                                 " takes no parameter, got activation_parameter=", parameter));
      return f(A{});
    }
  };
  auto is = [&](const char* name) { return kind == name; };
  if (is(Identity::kind)) return build(type_tag<Identity>{});
  if (is(ReLU::kind)) return build(type_tag<ReLU>{});
  if (is(LeakyReLU::kind)) return build(type_tag<LeakyReLU>{});
  if (is(ELU::kind)) return build(type_tag<ELU>{});
  if (is(SELU::kind)) return build(type_tag<SELU>{});
  if (is(Sigmoid::kind)) return build(type_tag<Sigmoid>{});
  if (is(Tanh::kind)) return build(type_tag<Tanh>{});
  if (is(Softplus::kind)) return build(type_tag<Softplus>{});
  if (is(Swish::kind)) return build(type_tag<Swish>{});
  if (is(GELU::kind)) return build(type_tag<GELU>{});
  if (is(GELUTanh::kind)) return build(type_tag<GELUTanh>{});
  if (is(Softmax::kind)) return build(type_tag<Softmax>{});
  throw FormatError(concat(config_where(c), ": unknown activation '", kind, "'"));
}

/// Reads the options every dense-like layer shares and applies them to `layer`.
template <class Layer>
void apply_dense_options(const LayerConfig& c, Layer& layer) {
  using T = std::decay_t<decltype(layer.weight()(0, 0))>;
  const double max_norm = config_finite(c, "max_norm");
  layer.with_penalty(config_penalty<T>(c));
  if (max_norm != 0.0) layer.with_max_norm(static_cast<T>(max_norm));
}

template <class T>
LayerPtr<T> build_dense(const LayerConfig& c, ElementBudget& budget) {
  const Index in = config_integer(c, "in", 1, max_layer_size);
  const Index out = config_integer(c, "out", 1, max_layer_size);
  const Init init = init_from_string(c.string("init"));
  take_matrix(budget, 2 * out, in + 1, "Dense(" + std::to_string(in) + "->" + std::to_string(out) + ")");
  return with_activation(c, [&](auto activation) -> LayerPtr<T> {
    Generator unused(0);
    auto layer = std::make_unique<Dense<T, decltype(activation)>>(in, out, unused, init, activation);
    apply_dense_options(c, *layer);
    return layer;
  });
}

template <class T>
LayerPtr<T> build_drop_connect(const LayerConfig& c, ElementBudget& budget) {
  const Index in = config_integer(c, "in", 1, max_layer_size);
  const Index out = config_integer(c, "out", 1, max_layer_size);
  const double p = c.number("p");
  const bool per_sample = config_flag(c, "per_sample");
  const auto samples = static_cast<int>(config_integer(c, "gaussian_samples", 0, 1 << 20));
  const Init init = init_from_string(c.string("init"));
  take_matrix(budget, 2 * out, in + 1, "DropConnectDense(" + std::to_string(in) + "->" + std::to_string(out) + ")");
  return with_activation(c, [&](auto activation) -> LayerPtr<T> {
    Generator unused(0);
    auto layer = std::make_unique<DropConnectDense<T, decltype(activation)>>(in, out, p, unused,
                                                                             init, activation);
    apply_dense_options(c, *layer);
    layer->with_per_sample_masks(per_sample);
    if (samples > 0) layer->with_gaussian_inference(samples);
    return layer;
  });
}

template <class T>
LayerPtr<T> build_activation(const LayerConfig& c, ElementBudget&) {
  return with_activation(c, [](auto activation) -> LayerPtr<T> {
    return std::make_unique<ActivationLayer<T, decltype(activation)>>(activation);
  });
}

template <class T>
LayerPtr<T> build_batch_norm(const LayerConfig& c, ElementBudget& budget) {
  const Index channels = config_integer(c, "channels", 1, max_layer_size);
  const Index spatial = config_integer(c, "spatial", 1, max_layer_size);
  const Index features = config_integer(c, "features", 1, max_layer_size);
  if (channels * spatial != features)
    throw FormatError(concat(config_where(c), ": features=", features, " is not channels=",
                             channels, " x spatial=", spatial));
  // Six per-channel vectors, four more as scratch, three per-row vectors.
  take_matrix(budget, 10 * channels + 3 * features, 1, "BatchNorm(" + std::to_string(features) + ")");
  auto layer = std::make_unique<BatchNorm<T>>(channels, spatial);
  layer->with_momentum(static_cast<T>(config_finite(c, "momentum")));
  layer->with_eps(static_cast<T>(config_finite(c, "eps")));
  return layer;
}

template <class T>
LayerPtr<T> build_conv(const LayerConfig& c, ElementBudget& budget) {
  const ImageShape input = config_image(c);
  const Index out = config_integer(c, "out_channels", 1, max_layer_size);
  const Index kernel = config_integer(c, "kernel", 1, max_layer_size);
  const Index stride = config_integer(c, "stride", 1, max_layer_size);
  const Index padding = config_integer(c, "padding", 0, max_layer_size);
  const Init init = init_from_string(c.string("init"));
  const WeightPenalty<T> penalty = config_penalty<T>(c);
  const std::uint64_t patch = checked_product(c, {input.channels, kernel, kernel});
  const SlidingWindow window("Conv2D", input, kernel, stride, padding);  // validates, no alloc
  // Weights and gradients, O x (C k^2 + 1) each; the im2col buffers, 2 x OH*OW x C k^2.
  checked_product(c, {2, out, static_cast<Index>(patch) + 1});
  checked_product(c, {2, window.out_spatial(), static_cast<Index>(patch)});
  take(budget, 2 * static_cast<std::uint64_t>(out) * (patch + 1), c);
  take(budget, 2 * static_cast<std::uint64_t>(window.out_spatial()) * patch, c);
  return with_activation(c, [&](auto activation) -> LayerPtr<T> {
    Generator unused(0);
    auto layer = std::make_unique<Conv2D<T, decltype(activation)>>(
        input, out, kernel, unused, ConvOptions().stride(stride).padding(padding).init(init),
        activation);
    layer->with_penalty(penalty);
    return layer;
  });
}

template <class T, template <class> class Pool>
LayerPtr<T> build_pool(const LayerConfig& c, ElementBudget& budget) {
  const ImageShape input = config_image(c);
  const Index kernel = config_integer(c, "kernel", 1, max_layer_size);
  const Index stride = config_integer(c, "stride", 1, max_layer_size);
  const Index padding = config_integer(c, "padding", 0, max_layer_size);
  // Per-output index tables: C*OH*OW <= 4 C*H*W since padding <= kernel / 2.
  take(budget, 4 * static_cast<std::uint64_t>(input.size()), c);
  return std::make_unique<Pool<T>>(input, kernel, PoolOptions().stride(stride).padding(padding));
}

template <class T, template <class> class ImageLayer>
LayerPtr<T> build_image_layer(const LayerConfig& c, ElementBudget&) {
  return std::make_unique<ImageLayer<T>>(config_image(c));
}

template <class T, template <class> class DropoutLayer>
LayerPtr<T> build_dropout(const LayerConfig& c, ElementBudget&) {
  return std::make_unique<DropoutLayer<T>>(c.number("p"));
}

template <class T>
LayerPtr<T> build_spatial_dropout(const LayerConfig& c, ElementBudget&) {
  return std::make_unique<SpatialDropout<T>>(c.number("p"),
                                             config_integer(c, "channels", 1, max_layer_size));
}

}  // namespace detail

template <class T>
class LayerRegistry {
 public:
  using Factory = std::function<LayerPtr<T>(const LayerConfig&, ElementBudget&)>;

  /// An empty registry; see builtin() for one that knows dropnet's layers.
  LayerRegistry() = default;

  /// A registry of every layer kind dropnet ships (a fresh object: there is no global one).
  static LayerRegistry builtin() {
    LayerRegistry r;
    r.add("Dense", detail::build_dense<T>);
    r.add("DropConnectDense", detail::build_drop_connect<T>);
    r.add("Activation", detail::build_activation<T>);
    r.add("BatchNorm", detail::build_batch_norm<T>);
    r.add("Dropout", detail::build_dropout<T, Dropout>);
    r.add("AlphaDropout", detail::build_dropout<T, AlphaDropout>);
    r.add("GaussianDropout", detail::build_dropout<T, GaussianDropout>);
    r.add("SpatialDropout", detail::build_spatial_dropout<T>);
    r.add("Conv2D", detail::build_conv<T>);
    r.add("MaxPool2D", detail::build_pool<T, MaxPool2D>);
    r.add("AvgPool2D", detail::build_pool<T, AvgPool2D>);
    r.add("GlobalAvgPool", detail::build_image_layer<T, GlobalAvgPool>);
    r.add("Flatten", detail::build_image_layer<T, Flatten>);
    return r;
  }

  /// Registers (or replaces) the factory of `kind`. Returns *this for chaining.
  LayerRegistry& add(const std::string& kind, Factory factory) {
    detail::require(!kind.empty() && factory != nullptr, "LayerRegistry::add",
                    "needs a kind name and a factory");
    factories_[kind] = std::move(factory);
    return *this;
  }

  bool contains(const std::string& kind) const { return factories_.count(kind) != 0; }

  std::vector<std::string> kinds() const {
    std::vector<std::string> names;
    for (const auto& entry : factories_) names.push_back(entry.first);
    return names;
  }

  /// The layer `config` describes. Throws FormatError (see the header comment).
  LayerPtr<T> build(const LayerConfig& config, ElementBudget& budget) const {
    const auto found = factories_.find(config.kind);
    if (found == factories_.end())
      throw FormatError(detail::concat("unknown layer kind '", config.kind,
                                       "' (register it with LayerRegistry::add)"));
    try {
      LayerPtr<T> layer = found->second(config, budget);
      if (!layer) throw FormatError("the factory returned no layer");
      return layer;
    } catch (const InvalidArgument& e) {
      throw FormatError(detail::config_where(config) + ": " + e.what());
    }
  }

 private:
  std::map<std::string, Factory> factories_;
};

}  // namespace dropnet
