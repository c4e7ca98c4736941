// The seed corpus of the model-file fuzz targets (and their resealing), generated instead of
// committed: small models
// saved in float and double, with and without an optimizer section, covering every built-in
// layer kind. tests/fuzz/make_corpus.cpp writes them to a directory (scripts/ci_fuzz.sh runs it
// before fuzzing); test_model_file replays them in memory with the fuzzer's properties.
//
// A format change or a new layer needs no committed binary: the seeds are saved by the code
// under test, one single-layer model per registry row (registry_seeds) plus hand-written models
// for what a walk cannot give (layers in sequence, optimizer sections).
#pragma once

#include <dropnet/dropnet.hpp>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace dropnet::fuzz {

/// `bytes` with the body length and the CRC-32 rewritten to fit, so that a mutation (or a
/// test's edit) reaches the body parser instead of failing at the checksum. Inputs shorter than
/// a header and a checksum are returned as they are.
inline std::string reseal(std::string bytes) {
  if (bytes.size() < detail::model_header_bytes + 4) return bytes;
  detail::BinaryWriter w(bytes);
  w.patch_u64(20, bytes.size() - detail::model_header_bytes - 4);
  w.patch_u32(bytes.size() - 4, crc32(bytes.data(), bytes.size() - 4));
  return bytes;
}

/// A named seed file: (file name, bytes).
using Seed = std::pair<std::string, std::string>;

/// The model of the load_into fuzz target: fixed architecture, with parameters and buffers.
template <class T>
Sequential<T> load_into_model() {
  Generator gen(7);
  Sequential<T> model(4);
  model.add(Dense<T, ReLU>(4, 3, gen));
  model.add(BatchNorm<T>(3));
  model.add(Dense<T>(3, 2, gen));
  return model;
}

/// The optimizer of the load_into fuzz target (AMSGrad: three state tensors per parameter).
inline AdamOptions load_into_optimizer_options() { return AdamOptions(1e-3).amsgrad(true); }

template <class T>
Sequential<T> dense_only(Generator& gen) {
  Sequential<T> model(3);
  model.add(Dense<T, ReLU>(3, 2, gen));
  model.add(Dense<T>(2, 2, gen));
  return model;
}

template <class T>
Sequential<T> every_kind(Generator& gen) {
  Sequential<T> model(4);
  model.add(Dense<T, LeakyReLU>(4, 4, gen, Init::he_uniform, LeakyReLU(0.2))).with_l2(T(1e-3));
  model.add(BatchNorm<T>(2, 2)).with_momentum(T(0.2));
  model.add(Dropout<T>(0.25));
  model.add(AlphaDropout<T>(0.1));
  model.add(GaussianDropout<T>(0.2));
  model.add(SpatialDropout<T>(0.3, 2));
  model.add(ActivationLayer<T, Tanh>());
  model.add(DropConnectDense<T, ELU>(4, 3, 0.3, gen, Init::xavier_normal, ELU(0.5)))
      .with_per_sample_masks()
      .with_gaussian_inference(2)
      .with_max_norm(T(2));
  model.add(Dense<T, Softmax>(3, 2, gen));
  return model;
}

template <class T>
Sequential<T> conv_net(Generator& gen) {
  Sequential<T> model(1 * 6 * 6);
  model.add(Conv2D<T, ReLU>(ImageShape{1, 6, 6}, 2, 3, gen, ConvOptions().padding(1)))
      .with_l2(T(1e-3));
  model.add(MaxPool2D<T>(ImageShape{2, 6, 6}, 2));
  model.add(AvgPool2D<T>(ImageShape{2, 3, 3}, 2, PoolOptions().stride(1)));
  model.add(Flatten<T>(ImageShape{2, 2, 2}));
  model.add(GlobalAvgPool<T>(ImageShape{2, 2, 2}));
  model.add(Dense<T>(2, 2, gen));
  return model;
}

/// The bytes save writes for `model` (and `optimizer`, after one step so its state is not 0).
template <class T>
std::string saved(Sequential<T>& model, Optimizer<T>* optimizer = nullptr) {
  if (optimizer) {
    for (const auto& p : model.parameters()) p.flat_grad().setConstant(T(0.5));
    optimizer->step();
  }
  std::ostringstream out(std::ios::binary);
  save(model, out, optimizer);
  return out.str();
}

/// One single-layer model per registry row, from the row's example: a new layer kind reaches
/// the corpus through its registry row alone.
template <class T>
void registry_seeds(std::vector<Seed>& seeds, const std::string& type) {
  Generator gen(2);
  for (const auto& row : LayerRegistry<T>::builtin().rows()) {
    if (!row.example.make) continue;  // test_layer_registry fails such a row
    Sequential<T> model(row.example.input_rows);
    model.add(row.example.make(gen));
    seeds.emplace_back(row.kind + "_" + type + ".dnm", saved(model));
  }
}

template <class T>
void seeds_of_type(std::vector<Seed>& seeds, const std::string& type) {
  Generator gen(1);
  auto dense = dense_only<T>(gen);
  seeds.emplace_back("dense_" + type + ".dnm", saved(dense));
  auto all = every_kind<T>(gen);
  seeds.emplace_back("every_kind_" + type + ".dnm", saved(all));
  auto conv = conv_net<T>(gen);
  seeds.emplace_back("conv_" + type + ".dnm", saved(conv));
  Adam<T> adam(dense.parameters(), AdamOptions(1e-3).amsgrad(true));
  seeds.emplace_back("dense_" + type + "_adam.dnm",
                     saved(dense, static_cast<Optimizer<T>*>(&adam)));
  SGD<T> sgd(all.parameters(), SGDOptions(0.1).momentum(0.9));
  seeds.emplace_back("every_kind_" + type + "_sgd.dnm",
                     saved(all, static_cast<Optimizer<T>*>(&sgd)));
  RMSprop<T> rmsprop(conv.parameters(), RMSpropOptions(1e-2).momentum(0.5).centered(true));
  seeds.emplace_back("conv_" + type + "_rmsprop.dnm",
                     saved(conv, static_cast<Optimizer<T>*>(&rmsprop)));
  auto target = load_into_model<T>();
  Adam<T> target_adam(target.parameters(), load_into_optimizer_options());
  seeds.emplace_back("load_into_" + type + "_adam.dnm",
                     saved(target, static_cast<Optimizer<T>*>(&target_adam)));
  registry_seeds<T>(seeds, type);
}

/// Every seed, float then double.
inline std::vector<Seed> model_seeds() {
  std::vector<Seed> seeds;
  seeds_of_type<float>(seeds, "float");
  seeds_of_type<double>(seeds, "double");
  return seeds;
}

}  // namespace dropnet::fuzz
