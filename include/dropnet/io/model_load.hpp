#pragma once
// load<T>(path | stream [, registry]): a model file (io/model_file.hpp) rebuilt into a new
// Sequential<T>, without declaring the architecture.
//
//   Sequential<float> model = load<float>("net.dnm");
//   Sequential<float> custom = load<float>("net.dnm", my_registry);   with your own layer kinds
//
// The one part of the model file that needs the layer registry (io/layer_registry.hpp), which
// instantiates every built-in layer kind: a program that only saves, load_into's or reads a
// file's header includes io/model_file.hpp alone and compiles only the layers it uses.
//
// load checks the file as load_into does (magic, version, scalar type, flags, lengths against
// the bytes present, checksum), then rebuilds each layer from its config through the registry,
// which checks every field; a rebuilt layer's config() must equal the file's bit for bit, and
// the file's tensors must be the rebuilt model's (names, shapes, order). The memory the rebuilt
// layers may allocate is bounded by 4 x the scalars in the file + 2^22 elements (ElementBudget).
// A file saved with an optimizer loads too (its optimizer section is checked, not used).
// Throws FormatError naming the source, the layer and the first problem; nothing is returned
// then.

#include <cstdint>
#include <exception>
#include <istream>
#include <string>
#include <utility>

#include "layer_registry.hpp"
#include "model_file.hpp"

namespace dropnet {

namespace detail {

/// Builds the model a checked record describes, with its tensors.
template <class T>
Sequential<T> build_model(const ModelRecord& m, const LayerRegistry<T>& registry) {
  require_scalar_type<T>(m);
  Sequential<T> model(m.info.input_features);
  ElementBudget budget(4 * m.info.tensor_elements + (std::uint64_t{1} << 22));
  for (std::size_t i = 0; i < m.info.layers.size(); ++i) {
    const LayerConfig& config = m.info.layers[i];
    try {
      LayerPtr<T> layer = registry.build(config, budget);
      // Bit for bit, so that whatever load accepts saves back to the same bytes.
      if (!same_config(layer->config(), config, identical_numbers))
        throw FormatError(
            concat("rebuilt as ", describe(layer->config()), " from ", describe(config)));
      model.add(std::move(layer));
    } catch (const std::exception& e) {  // FormatError, or InvalidArgument from add
      throw FormatError(concat(m.where, ": layer ", i, ": ", e.what()));
    }
  }
  // Sequential(0) takes its width from the first layer; save would then write that width.
  if (model.input_features() != m.info.input_features)
    throw FormatError(concat(m.where, ": input_features is ", m.info.input_features,
                             " but the first layer takes ", model.input_features()));
  const ModelState<T> state(model);
  require_tensors_match(m, state.tensors());
  copy_tensors(m, state.tensors());
  return model;
}

}  // namespace detail

/// The model stored in `in`, rebuilt with `registry`. Throws FormatError.
template <class T>
Sequential<T> load(std::istream& in, const LayerRegistry<T>& registry) {
  return detail::build_model<T>(detail::read_model(in, "load(stream)"), registry);
}

/// The model stored in `in`, rebuilt with the built-in layers. Throws FormatError. (An overload
/// rather than a default argument: the compiled library then builds the registry, not the
/// caller's translation unit.)
template <class T>
Sequential<T> load(std::istream& in) {
  return load<T>(in, LayerRegistry<T>::builtin());
}

/// The model stored in the file at `path` (which must end at the checksum), rebuilt with
/// `registry`. Throws FormatError.
template <class T>
Sequential<T> load(const std::string& path, const LayerRegistry<T>& registry) {
  const std::string where = "load('" + path + "')";
  return detail::build_model<T>(detail::read_model_file(path, where), registry);
}

/// The model stored in the file at `path`, rebuilt with the built-in layers. Throws FormatError.
template <class T>
Sequential<T> load(const std::string& path) {
  return load<T>(path, LayerRegistry<T>::builtin());
}

}  // namespace dropnet
