#pragma once
// LayerRegistry<T>: a table of {kind, factory, example} rows that rebuilds a layer from its
// LayerConfig, so a model file can hold the architecture and load() can rebuild the model without
// the user redeclaring it.
//
//   auto registry = LayerRegistry<float>::builtin();          every layer dropnet ships
//   registry.add("MyLayer", MyLayer<float>::from_config);     or any factory of that signature
//   LayerPtr<float> layer = registry.build(config, budget);
//
// A row's factory is the layer's own from_config: each layer reads back exactly what its config()
// writes (the fields are listed at its config()) and charges what its constructor allocates to
// the ElementBudget, which bounds the total memory a (corrupt) file can make load() allocate.
// A row's example builds a small instance with non-default options, and the input rows it takes:
// tests/test_layer_registry.cpp round-trips every registered kind through save and load with it,
// so no list of layers is kept anywhere else.
//
// Throws FormatError("layer config <kind>: ...") for a missing, non-integral, out-of-range or
// unknown field or value, and for an unknown kind; errors from the layer's own constructor
// (InvalidArgument, e.g. p outside [0, 1)) are rethrown as FormatError with the same text.

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "../activations/activation.hpp"
#include "../activations/elu.hpp"
#include "../activations/relu.hpp"
#include "../activations/sigmoid.hpp"
#include "../activations/swish.hpp"
#include "../core/generator.hpp"
#include "../layers/alpha_dropout.hpp"
#include "../layers/batch_norm.hpp"
#include "../layers/concrete_dropout.hpp"
#include "../layers/conv2d.hpp"
#include "../layers/dense.hpp"
#include "../layers/drop_connect.hpp"
#include "../layers/dropout.hpp"
#include "../layers/flatten.hpp"
#include "../layers/gaussian_dropout.hpp"
#include "../layers/gru.hpp"
#include "../layers/initializers.hpp"
#include "../layers/layer.hpp"
#include "../layers/layer_config.hpp"
#include "../layers/lstm.hpp"
#include "../layers/pooling.hpp"
#include "../layers/spatial_dropout.hpp"
#include "../layers/temperature_scaling.hpp"

namespace dropnet {

/// Rebuilds layers from their configs by kind; see the file comment.
template <class T>
class LayerRegistry {
 public:
  /// Builds the layer a config describes, charging its allocations to the budget.
  using Factory = std::function<LayerPtr<T>(const LayerConfig&, ElementBudget&)>;

  /// A small instance of a kind with non-default options, for tests that walk the registry.
  struct Example {
    Index input_rows = 0;                        ///< rows of the input the instance takes
    std::function<LayerPtr<T>(Generator&)> make;  ///< the instance, weights drawn from the gen
  };

  /// One kind: its name, its factory and (optionally) an example.
  struct Row {
    std::string kind;  ///< e.g. "Dense", what the layer's config().kind says
    Factory factory;   ///< usually the layer's from_config
    Example example;   ///< empty make for a kind without one
  };

  /// An empty registry; see builtin() for one that knows dropnet's layers.
  LayerRegistry() = default;

  /// A registry of every layer kind dropnet ships (a fresh object: there is no global one).
  static LayerRegistry builtin() {
    LayerRegistry r;
    for (Row& row : builtin_rows()) r.add(std::move(row));
    return r;
  }

  /// Registers (or replaces) the factory of `kind`, with an optional example. Returns *this.
  /// Throws InvalidArgument for an empty kind or a null factory.
  LayerRegistry& add(const std::string& kind, Factory factory, Example example = {}) {
    return add(Row{kind, std::move(factory), std::move(example)});
  }
  /// Registers (or replaces) a row. Returns *this.
  LayerRegistry& add(Row row) {
    detail::require(!row.kind.empty() && row.factory != nullptr, "LayerRegistry::add",
                    "needs a kind name and a factory");
    std::string kind = row.kind;
    rows_[std::move(kind)] = std::move(row);
    return *this;
  }

  /// True if `kind` is registered.
  bool contains(const std::string& kind) const { return rows_.count(kind) != 0; }

  /// The registered kinds, sorted.
  std::vector<std::string> kinds() const {
    std::vector<std::string> names;
    for (const auto& entry : rows_) names.push_back(entry.first);
    return names;
  }

  /// The rows, sorted by kind.
  std::vector<Row> rows() const {
    std::vector<Row> all;
    for (const auto& entry : rows_) all.push_back(entry.second);
    return all;
  }

  /// The layer `config` describes. Throws FormatError (see the file comment).
  LayerPtr<T> build(const LayerConfig& config, ElementBudget& budget) const {
    const auto found = rows_.find(config.kind);
    if (found == rows_.end())
      throw FormatError(detail::concat("unknown layer kind '", config.kind,
                                       "' (register it with LayerRegistry::add)"));
    try {
      LayerPtr<T> layer = found->second.factory(config, budget);
      if (!layer) throw FormatError("the factory returned no layer");
      return layer;
    } catch (const InvalidArgument& e) {
      throw FormatError(detail::config_where(config) + ": " + e.what());
    }
  }

 private:
  /// One row per built-in layer: its kind, its from_config, and an example with options that
  /// differ from the defaults wherever a layer has any.
  static std::vector<Row> builtin_rows() {
    using Image = ImageShape;
    using std::make_unique;
    return {
        {"Dense", Dense<T>::from_config,
         {3, [](Generator& g) -> LayerPtr<T> {
            auto layer = make_unique<Dense<T, ELU>>(3, 4, g, Init::xavier_uniform, ELU(0.5));
            layer->with_l1(T(1e-3)).with_l2(T(1e-2)).with_max_norm(T(2));
            return layer;
          }}},
        {"DropConnectDense", DropConnectDense<T>::from_config,
         {3, [](Generator& g) -> LayerPtr<T> {
            auto layer = make_unique<DropConnectDense<T, LeakyReLU>>(3, 4, 0.3, g, Init::he_uniform,
                                                                     LeakyReLU(0.2));
            layer->with_per_sample_masks().with_gaussian_inference(5).with_l2(T(1e-3));
            layer->with_max_norm(T(3));
            return layer;
          }}},
        {"Activation", ActivationLayer<T, Identity>::from_config,
         {3, [](Generator&) -> LayerPtr<T> { return make_unique<ActivationLayer<T, Swish>>(); }}},
        {"BatchNorm", BatchNorm<T>::from_config,
         {6, [](Generator&) -> LayerPtr<T> {
            auto layer = make_unique<BatchNorm<T>>(2, 3);
            layer->with_momentum(T(0.25)).with_eps(T(1e-3));
            return layer;
          }}},
        {"Dropout", Dropout<T>::from_config,
         {3, [](Generator&) -> LayerPtr<T> { return make_unique<Dropout<T>>(0.3); }}},
        {"AlphaDropout", AlphaDropout<T>::from_config,
         {3, [](Generator&) -> LayerPtr<T> { return make_unique<AlphaDropout<T>>(0.2); }}},
        {"GaussianDropout", GaussianDropout<T>::from_config,
         {3, [](Generator&) -> LayerPtr<T> { return make_unique<GaussianDropout<T>>(0.4); }}},
        {"SpatialDropout", SpatialDropout<T>::from_config,
         {8, [](Generator&) -> LayerPtr<T> { return make_unique<SpatialDropout<T>>(0.3, 2); }}},
        {"Conv2D", Conv2D<T>::from_config,
         {2 * 5 * 5, [](Generator& g) -> LayerPtr<T> {
            auto layer = make_unique<Conv2D<T, Tanh>>(
                Image{2, 5, 5}, 3, 3, g, ConvOptions().stride(2).padding(1).init(Init::he_uniform));
            layer->with_l1(T(1e-3)).with_l2(T(1e-2));
            return layer;
          }}},
        {"MaxPool2D", MaxPool2D<T>::from_config,
         {2 * 6 * 6, [](Generator&) -> LayerPtr<T> {
            return make_unique<MaxPool2D<T>>(Image{2, 6, 6}, 3, PoolOptions().stride(2).padding(1));
          }}},
        {"AvgPool2D", AvgPool2D<T>::from_config,
         {2 * 6 * 6, [](Generator&) -> LayerPtr<T> {
            return make_unique<AvgPool2D<T>>(Image{2, 6, 6}, 3, PoolOptions().stride(2).padding(1));
          }}},
        {"GlobalAvgPool", GlobalAvgPool<T>::from_config,
         {3 * 2 * 2,
          [](Generator&) -> LayerPtr<T> { return make_unique<GlobalAvgPool<T>>(Image{3, 2, 2}); }}},
        {"ConcreteDropoutDense", ConcreteDropoutDense<T>::from_config,
         {4, [](Generator& g) -> LayerPtr<T> {
            ConcreteDropoutOptions options;
            options.initial_p = 0.2;
            options.weight_regularizer = 1e-4;
            return make_unique<ConcreteDropoutDense<T, ReLU>>(4, 3, g, options, Init::he_uniform);
          }}},
        {"TemperatureScaling", TemperatureScaling<T>::from_config,
         {3, [](Generator&) -> LayerPtr<T> { return make_unique<TemperatureScaling<T>>(1.5); }}},
        {"Flatten", Flatten<T>::from_config,
         {2 * 3 * 3,
          [](Generator&) -> LayerPtr<T> { return make_unique<Flatten<T>>(Image{2, 3, 3}); }}},
        {"LSTM", LSTM<T>::from_config,
         {3 * 2, [](Generator& g) -> LayerPtr<T> {
            return make_unique<LSTM<T>>(SequenceShape{3, 2}, 4, g,
                                        RecurrentOptions().return_sequences(true).dropout(0.1)
                                            .recurrent_dropout(0.2).tied_masks(true).zoneout(0.1, 0.05)
                                            .forget_bias(false).init(Init::he_uniform));
          }}},
        {"GRU", GRU<T>::from_config,
         {3 * 2, [](Generator& g) -> LayerPtr<T> {
            return make_unique<GRU<T>>(SequenceShape{3, 2}, 4, g,
                                       RecurrentOptions().dropout(0.2).recurrent_dropout(0.1)
                                           .zoneout(0, 0.1).orthogonal_recurrent(false));
          }}},
    };
  }

  std::map<std::string, Row> rows_;
};

}  // namespace dropnet
