// PyTorch state_dicts (io/state_dict.hpp): the names and layouts of torch.nn.Sequential,
// round trips, strict and non-strict loading, the name map, and the strong guarantee (a failed
// load changes nothing). The peer check against PyTorch itself is tests/peers/torch_*.py.

#include <doctest/doctest.h>

#include <unistd.h>

#include <dropnet/activations/relu.hpp>
#include <dropnet/io/state_dict.hpp>
#include <dropnet/layers/batch_norm.hpp>
#include <dropnet/layers/conv2d.hpp>
#include <dropnet/layers/dense.hpp>
#include <dropnet/layers/dropout.hpp>
#include <dropnet/layers/flatten.hpp>
#include <dropnet/layers/pooling.hpp>
#include <dropnet/model/model_state.hpp>
#include <filesystem>
#include <string>
#include <vector>

#include "test_data.hpp"

using namespace dropnet;

namespace {

/// Dense(ReLU) -> Dropout -> Dense(ReLU) -> BatchNorm -> Dense: torch modules 0..6.
template <class T>
Sequential<T> mlp(std::uint64_t seed) {
  Generator gen(seed);
  Sequential<T> m(5);
  m.add(Dense<T, ReLU>(5, 4, gen));
  m.add(Dropout<T>(0.5));
  m.add(Dense<T, ReLU>(4, 3, gen));
  m.add(BatchNorm<T>(3));
  m.add(Dense<T>(3, 2, gen));
  auto& bn = dynamic_cast<BatchNorm<T>&>(m.layer(3));
  for (auto& b : bn.buffers()) b.flat_value() = test::normal_matrix<T>(3, 1, gen).array().abs() + T(0.5);
  for (auto& p : bn.parameters()) p.flat_value() = test::normal_matrix<T>(3, 1, gen);
  return m;
}

/// Conv2D(2->3, k=3, p=1) -> BatchNorm -> ReLU -> MaxPool 2 -> Flatten -> Dense: modules 0..5.
Sequential<float> cnn(std::uint64_t seed) {
  Generator gen(seed);
  Sequential<float> m(2 * 4 * 4);
  m.add(Conv2D<float>(ImageShape{2, 4, 4}, 3, 3, gen, ConvOptions().padding(1)));
  m.add(BatchNorm<float>(3, 16));
  m.add(ActivationLayer<float, ReLU>());
  m.add(MaxPool2D<float>(ImageShape{3, 4, 4}, 2));
  m.add(Flatten<float>(ImageShape{3, 2, 2}));
  m.add(Dense<float>(12, 2, gen));
  return m;
}

std::string temp_file(const std::string& name) {
  return (std::filesystem::temp_directory_path() /
          ("dropnet_sd_" + std::to_string(::getpid()) + "_" + name))
      .string();
}

template <class T>
Vector<T> values_of(Sequential<T>& m) {
  Vector<T> v;
  ModelState<T>(m).pack_values(v);
  return v;
}

std::vector<std::string> names_of(const std::vector<SafeTensor>& tensors) {
  std::vector<std::string> names;
  for (const auto& t : tensors) names.push_back(t.name);
  return names;
}

}  // namespace

TEST_CASE("names and shapes are those of the equivalent torch.nn.Sequential") {
  auto m = mlp<float>(1);
  const auto tensors = state_dict_tensors(m);
  CHECK(names_of(tensors) ==
        std::vector<std::string>{"0.weight", "0.bias", "3.weight", "3.bias", "5.weight", "5.bias",
                                 "5.running_mean", "5.running_var", "5.num_batches_tracked",
                                 "6.weight", "6.bias"});
  CHECK(tensors[0].shape == std::vector<std::int64_t>{4, 5});
  CHECK(tensors[1].shape == std::vector<std::int64_t>{4});
  CHECK(tensors[8].dtype == "I64");
  CHECK(tensors[8].shape.empty());

  auto c = cnn(2);
  const auto conv = state_dict_tensors(c);
  CHECK(names_of(conv) == std::vector<std::string>{"0.weight", "0.bias", "1.weight", "1.bias",
                                                   "1.running_mean", "1.running_var",
                                                   "1.num_batches_tracked", "5.weight", "5.bias"});
  CHECK(conv[0].shape == std::vector<std::int64_t>{3, 2, 3, 3});
}

TEST_CASE("layouts: Dense [out, in] and Conv2d [out, in, k, k], row-major") {
  auto c = cnn(3);
  const std::string path = temp_file("layout.safetensors");
  save_state_dict(c, path);
  const SafetensorsFile file = read_safetensors(path);
  std::filesystem::remove(path);
  const auto& conv = dynamic_cast<Conv2D<float>&>(c.layer(0));
  const std::vector<float> w = file.values<float>("0.weight");
  // torch's W[o, ch, ki, kj] is dropnet's W(o, (ch*k + ki)*k + kj) (conv2d.hpp's formula).
  for (Index o = 0; o < 3; ++o)
    for (Index ch = 0; ch < 2; ++ch)
      for (Index ki = 0; ki < 3; ++ki)
        for (Index kj = 0; kj < 3; ++kj)
          CHECK(w[static_cast<std::size_t>(((o * 2 + ch) * 3 + ki) * 3 + kj)] ==
                conv.weight()(o, (ch * 3 + ki) * 3 + kj));
  const auto& dense = dynamic_cast<Dense<float>&>(c.layer(5));
  const std::vector<float> d = file.values<float>("5.weight");
  for (Index i = 0; i < 2; ++i)
    for (Index j = 0; j < 12; ++j) CHECK(d[static_cast<std::size_t>(i * 12 + j)] == dense.weight()(i, j));
}

TEST_CASE_TEMPLATE("save then load reproduces every tensor and the predictions", T, float, double) {
  auto a = mlp<T>(4);
  auto b = mlp<T>(5);
  REQUIRE(values_of(a) != values_of(b));
  const std::string path = temp_file("roundtrip.safetensors");
  save_state_dict(a, path);
  const StateDictResult r = load_state_dict(b, path);
  std::filesystem::remove(path);
  CHECK(r.missing_keys.empty());
  CHECK(r.unexpected_keys.empty());
  CHECK(values_of(a) == values_of(b));
  Generator gen(6);
  const Matrix<T> x = test::normal_matrix<T>(5, 7, gen);
  const Matrix<T> ya = a.forward(x, Mode::eval);
  CHECK(ya == b.forward(x, Mode::eval));
}

TEST_CASE("an F64 file loads into a float model (rounded), an F32 one into a double model") {
  auto d = mlp<double>(7);
  auto f = mlp<float>(8);
  const std::string path = temp_file("f64.safetensors");
  save_state_dict(d, path);
  load_state_dict(f, path);
  CHECK(values_of(f) == values_of(d).template cast<float>());
  save_state_dict(f, path);
  load_state_dict(d, path);
  std::filesystem::remove(path);
  CHECK(values_of(d) == values_of(f).template cast<double>());
}

TEST_CASE("strict: missing, unexpected and mis-shaped keys are reported together; nothing changes") {
  auto source = mlp<float>(9);
  std::vector<SafeTensor> tensors = state_dict_tensors(source);
  tensors.erase(tensors.begin() + 1);  // 0.bias missing
  const float extra[2] = {1, 2};
  tensors.push_back(SafeTensor::of<float>("9.weight", {2}, extra));  // unexpected
  for (auto& t : tensors)
    if (t.name == "6.bias") t = SafeTensor::of<float>("6.bias", {1, 2}, extra);  // mis-shaped
  const SafetensorsFile file(encode_safetensors(tensors), "edited.safetensors");

  auto target = mlp<float>(10);
  const Vector<float> before = values_of(target);
  CHECK_THROWS_WITH_AS(load_state_dict(target, file),
                       "edited.safetensors: load_state_dict: missing keys: \"0.bias\"; "
                       "unexpected keys: \"9.weight\"; mis-shaped keys: \"6.bias (file [1, 2], "
                       "model [2])\" (the model is unchanged)",
                       FormatError);
  CHECK(values_of(target) == before);

  StateDictOptions lenient;
  lenient.strict = false;
  CHECK_THROWS_WITH_AS(load_state_dict(target, file, lenient), doctest::Contains("mis-shaped"),
                       FormatError);  // as torch: a size mismatch fails even when not strict
  CHECK(values_of(target) == before);
}

TEST_CASE("non-strict: missing keys keep their values, unexpected ones are returned") {
  auto source = mlp<float>(11);
  std::vector<SafeTensor> tensors = state_dict_tensors(source);
  tensors.erase(tensors.begin() + 1);
  const float extra[1] = {1};
  tensors.push_back(SafeTensor::of<float>("head.scale", {1}, extra));
  const SafetensorsFile file(encode_safetensors(tensors), "partial.safetensors");
  auto target = mlp<float>(12);
  const Vector<float> bias_before = dynamic_cast<Dense<float, ReLU>&>(target.layer(0)).bias();
  StateDictOptions lenient;
  lenient.strict = false;
  const StateDictResult r = load_state_dict(target, file, lenient);
  CHECK(r.missing_keys == std::vector<std::string>{"0.bias"});
  CHECK(r.unexpected_keys == std::vector<std::string>{"head.scale"});
  CHECK(dynamic_cast<Dense<float, ReLU>&>(target.layer(0)).bias() == bias_before);
  CHECK(dynamic_cast<Dense<float, ReLU>&>(target.layer(0)).weight() ==
        dynamic_cast<Dense<float, ReLU>&>(source.layer(0)).weight());
}

TEST_CASE("a non-float dtype for a model tensor is refused, naming it; nothing changes") {
  auto source = mlp<float>(13);
  std::vector<SafeTensor> tensors = state_dict_tensors(source);
  tensors[1] = SafeTensor{"0.bias", "I32", {4}, 0, 0, std::string(16, '\0')};
  const SafetensorsFile file(encode_safetensors(tensors), "ints.safetensors");
  auto target = mlp<float>(14);
  const Vector<float> before = values_of(target);
  CHECK_THROWS_WITH_AS(load_state_dict(target, file), doctest::Contains("0.bias: dtype I32"),
                       FormatError);
  CHECK(values_of(target) == before);
}

TEST_CASE("the name map renames whole keys and modules, both ways") {
  StateDictOptions names;
  names.names = {{"0", "fc1"}, {"3", "fc2"}, {"5", "bn"}, {"6.weight", "out.w"}, {"6.bias", "out.b"}};
  auto a = mlp<float>(15);
  CHECK(names_of(state_dict_tensors(a, names)) ==
        std::vector<std::string>{"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias", "bn.weight",
                                 "bn.bias", "bn.running_mean", "bn.running_var",
                                 "bn.num_batches_tracked", "out.w", "out.b"});
  const std::string path = temp_file("named.safetensors");
  save_state_dict(a, path, names);
  auto b = mlp<float>(16);
  CHECK_THROWS_WITH_AS(load_state_dict(b, path), doctest::Contains("missing keys: \"0.weight\""),
                       FormatError);
  load_state_dict(b, path, names);
  std::filesystem::remove(path);
  CHECK(values_of(a) == values_of(b));
}

TEST_CASE("num_batches_tracked is optional when loading") {
  auto source = mlp<float>(17);
  std::vector<SafeTensor> tensors = state_dict_tensors(source);
  tensors.erase(tensors.begin() + 8);
  CHECK(names_of(tensors)[7] == "5.running_var");
  auto target = mlp<float>(18);
  load_state_dict(target, SafetensorsFile(encode_safetensors(tensors), "mem"));
  CHECK(values_of(target) == values_of(source));
}
