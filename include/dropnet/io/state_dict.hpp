#pragma once
// PyTorch state_dicts in safetensors files, mapped onto a dropnet Sequential.
//
//   load_state_dict(model, "from_torch.safetensors");             strict: every key must match
//   StateDictOptions o; o.names = {{"0", "fc1"}, {"2", "fc2"}, {"4", "out"}};
//   load_state_dict(model, "fc.safetensors", o);                  PyTorch names of your module
//   save_state_dict(model, "for_torch.safetensors");              torch: load_file + load_state_dict
//
// Names. A model's tensors get the names of the equivalent torch.nn.Sequential: every dropnet
// layer is one module, numbered from 0 in order, and a layer with a fused activation other than
// Identity (Dense<T, ReLU>, Conv2D<T, ReLU>) is two modules, the layer then its activation, as in
// nn.Sequential(nn.Linear(784, 120), nn.ReLU(), ...). So the seed MLP
// Dense<ReLU>(784, 120), Dense<ReLU>(120, 60), Dense(60, 10) has the keys 0.weight, 0.bias,
// 2.weight, 2.bias, 4.weight, 4.bias. StateDictOptions::names renames either a whole key
// ("0.weight" -> "fc1.weight") or a module ("0" -> "fc1", renaming every key of module 0).
//
// Tensors and layouts (the file is row-major, dropnet column-major; both directions transpose):
//   Dense, DropConnectDense   weight [out, in], bias [out]                     (nn.Linear)
//   Conv2D                    weight [out, in, k, k], bias [out]               (nn.Conv2d)
//   BatchNorm                 gamma -> weight [C], beta -> bias [C], running_mean [C],
//                             running_var [C], and num_batches_tracked (I64 scalar: read and
//                             ignored, written as 0; dropnet's momentum never needs it)
//   any other tensor          its dropnet name, shape [rows] for a vector, else [rows, cols]
// Recurrent layers join by adding rows to detail::torch_renames() (their PyTorch names) and,
// where PyTorch orders a tensor differently (gate order), a case in detail::torch_shape and
// the two copy functions (torch_to_dropnet / dropnet_to_torch) keyed by the layer's kind().
//
// Loading reads and checks the whole file (io/safetensors.hpp), matches every key, converts
// every value into a staging copy, and writes into the model only when everything fits, so a
// failed load leaves the model unchanged. Like torch.nn.Module.load_state_dict: in strict mode
// (the default) any missing key (the model has it, the file does not), unexpected key (the
// file has it, the model does not) or mis-shaped key throws one FormatError listing all of them
// together; with strict = false missing keys keep their values and unexpected ones are
// ignored (both are returned), while a mis-shaped key or a non-float dtype still throws.
// save_state_dict writes F32 for a float model and F64 for a double one, atomically.

#include <algorithm>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "../model/sequential.hpp"
#include "safetensors.hpp"

namespace dropnet {

/// How load_state_dict and save_state_dict name and match tensors (see the file comment).
struct StateDictOptions {
  /// Throw on missing or unexpected keys (as torch's strict=True); mis-shaped keys always throw.
  bool strict = true;
  /// Renames dropnet's default PyTorch names: a whole key ("0.weight" -> "fc1.weight") or a
  /// module prefix ("0" -> "fc1"); a whole-key entry wins over its module's.
  std::map<std::string, std::string> names;
};

/// What a non-strict load_state_dict left out, as torch's _IncompatibleKeys.
struct StateDictResult {
  std::vector<std::string> missing_keys;     ///< the model's keys the file does not hold
  std::vector<std::string> unexpected_keys;  ///< the file's keys the model does not hold
};

/// One tensor of a model under its PyTorch name.
template <class T>
struct TorchTensor {
  std::string key;                  ///< e.g. "0.weight" (after StateDictOptions::names)
  std::vector<std::int64_t> shape;  ///< PyTorch's shape, e.g. {120, 784}
  ParameterView<T> view;            ///< the dropnet tensor (rows x cols, column-major)
};

namespace detail {

/// Rows of (layer kind, dropnet tensor name, PyTorch tensor name) where the names differ.
inline const std::vector<std::vector<std::string>>& torch_renames() {
  static const std::vector<std::vector<std::string>> rows = {
      {"BatchNorm", "gamma", "weight"},
      {"BatchNorm", "beta", "bias"},
  };
  return rows;
}

inline std::string torch_local_name(const std::string& kind, const std::string& name) {
  for (const auto& row : torch_renames())
    if (row[0] == kind && row[1] == name) return row[2];
  return name;
}

/// PyTorch's shape of a dropnet tensor (see the file comment's table).
template <class T>
std::vector<std::int64_t> torch_shape(const Layer<T>& layer, const ParameterView<T>& v) {
  if (layer.kind() == "Conv2D" && v.name == "weight") {
    const LayerConfig c = layer.config();
    const auto k = static_cast<std::int64_t>(c.number("kernel"));
    return {static_cast<std::int64_t>(v.rows), static_cast<std::int64_t>(c.number("channels")), k, k};
  }
  if (v.cols == 1) return {static_cast<std::int64_t>(v.rows)};
  return {static_cast<std::int64_t>(v.rows), static_cast<std::int64_t>(v.cols)};
}

/// Modules the layer is in a torch.nn.Sequential: 2 with a fused non-identity activation.
template <class T>
int torch_module_count(const Layer<T>& layer) {
  if (layer.kind() == "Activation") return 1;
  const LayerConfig c = layer.config();
  for (const auto& [key, value] : c.strings)
    if (key == "activation" && value != "Identity") return 2;
  return 1;
}

inline std::string renamed(const std::map<std::string, std::string>& names,
                           const std::string& module, const std::string& local) {
  std::string key = module + "." + local;
  if (auto it = names.find(key); it != names.end()) return it->second;
  if (auto it = names.find(module); it != names.end()) return it->second + "." + local;
  return key;
}

/// Key of each BatchNorm's num_batches_tracked (optional on load, written as 0 on save).
template <class T>
std::vector<std::string> torch_counters(Sequential<T>& model, const StateDictOptions& options) {
  std::vector<std::string> keys;
  int module = 0;
  for (Index i = 0; i < model.size(); ++i) {
    const Layer<T>& layer = model.layer(i);
    if (layer.kind() == "BatchNorm")
      keys.push_back(renamed(options.names, std::to_string(module), "num_batches_tracked"));
    module += torch_module_count(layer);
  }
  return keys;
}

/// Row-major file values (`in`, rows*cols of them) into a column-major rows x cols tensor.
template <class T, class Source>
void torch_to_dropnet(const Source* in, Index rows, Index cols, T* out) {
  for (Index i = 0; i < rows; ++i)
    for (Index j = 0; j < cols; ++j) out[i + j * rows] = static_cast<T>(in[i * cols + j]);
}

/// A column-major rows x cols tensor into row-major values.
template <class T>
std::vector<T> dropnet_to_torch(const T* in, Index rows, Index cols) {
  std::vector<T> out(static_cast<std::size_t>(rows * cols));
  for (Index i = 0; i < rows; ++i)
    for (Index j = 0; j < cols; ++j) out[static_cast<std::size_t>(i * cols + j)] = in[i + j * rows];
  return out;
}

inline std::string shape_text(const std::vector<std::int64_t>& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

inline std::string key_list(const std::vector<std::string>& keys) {
  std::string s;
  for (const auto& k : keys) s += (s.empty() ? "\"" : ", \"") + k + "\"";
  return s;
}

}  // namespace detail

/// The model's tensors (parameters and buffers, layer by layer) under their PyTorch names and
/// shapes; see the file comment.
template <class T>
std::vector<TorchTensor<T>> torch_tensors(Sequential<T>& model, const StateDictOptions& options = {}) {
  std::vector<TorchTensor<T>> out;
  int module = 0;
  for (Index i = 0; i < model.size(); ++i) {
    Layer<T>& layer = model.layer(i);
    const std::string kind = layer.kind();
    ParameterList<T> views = layer.parameters();
    for (auto& b : layer.buffers()) views.push_back(b);
    for (auto& v : views) {
      v.layer = i;
      const std::string key =
          detail::renamed(options.names, std::to_string(module), detail::torch_local_name(kind, v.name));
      out.push_back({key, detail::torch_shape(layer, v), v});
    }
    module += detail::torch_module_count(layer);
  }
  return out;
}

/// Loads `file`'s tensors into `model` (see the file comment); throws FormatError naming the
/// file and every missing, unexpected and mis-shaped key, and leaves the model unchanged then.
template <class T>
StateDictResult load_state_dict(Sequential<T>& model, const SafetensorsFile& file,
                                const StateDictOptions& options = {}) {
  const std::vector<TorchTensor<T>> expected = torch_tensors(model, options);
  const std::vector<std::string> counters = detail::torch_counters(model, options);
  StateDictResult result;
  std::vector<std::string> misshaped;
  std::vector<std::pair<const TorchTensor<T>*, std::vector<T>>> staged;
  std::vector<std::string> used;
  for (const TorchTensor<T>& e : expected) {
    const SafeTensor* t = file.find(e.key);
    if (!t) {
      result.missing_keys.push_back(e.key);
      continue;
    }
    used.push_back(e.key);
    if (t->shape != e.shape) {
      misshaped.push_back(detail::concat(e.key, " (file ", detail::shape_text(t->shape),
                                         ", model ", detail::shape_text(e.shape), ")"));
      continue;
    }
    std::vector<T> row_major(static_cast<std::size_t>(t->elements()));
    file.read_values(*t, row_major.data());  // throws for a non-float dtype, naming the tensor
    staged.emplace_back(&e, std::move(row_major));
  }
  for (const SafeTensor& t : file.tensors()) {
    const bool counter = std::find(counters.begin(), counters.end(), t.name) != counters.end();
    if (!counter && std::find(used.begin(), used.end(), t.name) == used.end())
      result.unexpected_keys.push_back(t.name);
  }
  const bool incomplete = !result.missing_keys.empty() || !result.unexpected_keys.empty();
  if (!misshaped.empty() || (options.strict && incomplete)) {
    std::string problems;
    if (!result.missing_keys.empty())
      problems += "; missing keys: " + detail::key_list(result.missing_keys);
    if (!result.unexpected_keys.empty())
      problems += "; unexpected keys: " + detail::key_list(result.unexpected_keys);
    if (!misshaped.empty()) problems += "; mis-shaped keys: " + detail::key_list(misshaped);
    throw FormatError(detail::concat(file.where(), ": load_state_dict:", problems.substr(1),
                                     " (the model is unchanged)"));
  }
  for (const auto& [e, values] : staged)
    detail::torch_to_dropnet(values.data(), e->view.rows, e->view.cols, e->view.value);
  return result;
}

/// Loads the safetensors file at `path` into `model`; see the overload above.
template <class T>
StateDictResult load_state_dict(Sequential<T>& model, const std::string& path,
                                const StateDictOptions& options = {}) {
  return load_state_dict(model, read_safetensors(path), options);
}

/// The model's state as PyTorch tensors (F32 for float, F64 for double), with each BatchNorm's
/// num_batches_tracked = 0, in module order: what save_state_dict writes.
template <class T>
std::vector<SafeTensor> state_dict_tensors(Sequential<T>& model, const StateDictOptions& options = {}) {
  std::vector<SafeTensor> out;
  const std::vector<std::string> counters = detail::torch_counters(model, options);
  std::size_t next_counter = 0;
  Index last_layer = -1;
  const auto flush_counter = [&](Index layer) {
    if (layer >= 0 && model.layer(layer).kind() == "BatchNorm")
      out.push_back(SafeTensor::int64_scalar(counters.at(next_counter++), 0));
  };
  for (const TorchTensor<T>& t : torch_tensors(model, options)) {
    const Index layer = t.view.layer;
    if (layer != last_layer) flush_counter(last_layer);
    last_layer = layer;
    const std::vector<T> values = detail::dropnet_to_torch(t.view.value, t.view.rows, t.view.cols);
    out.push_back(SafeTensor::of<T>(t.key, t.shape, values.data()));
  }
  flush_counter(last_layer);
  return out;
}

/// Writes the model's state to `path` as a safetensors file PyTorch loads with
/// `model.load_state_dict(safetensors-read dict)`; throws FormatError when the file cannot be
/// written (any previous file is then unchanged).
template <class T>
void save_state_dict(Sequential<T>& model, const std::string& path,
                     const StateDictOptions& options = {}) {
  write_safetensors(path, state_dict_tensors(model, options), {{"format", "pt"}});
}

}  // namespace dropnet
