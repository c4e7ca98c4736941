// Model files (io/model_file.hpp): round trips for every layer kind in float and double,
// optimizer state for resuming, the byte layout, atomic saves under injected write failures,
// and every kind of bad file (each must throw FormatError and leave the model unchanged).

#include <doctest/doctest.h>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <dropnet/dropnet.hpp>
#include <dropnet/io/model_file.hpp>

#include "test_data.hpp"
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "fuzz/corpus_models.hpp"

using namespace dropnet;
namespace fs = std::filesystem;

namespace {

/// A fresh directory under the system temp dir, removed with everything in it at scope exit.
class ScratchDir {
 public:
  ScratchDir() {
    static int counter = 0;
    path_ = fs::temp_directory_path() /
            ("dropnet_model_file_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::create_directories(path_);
  }
  ~ScratchDir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  std::string file(const std::string& name) const { return (path_ / name).string(); }
  std::vector<std::string> entries() const {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(path_)) names.push_back(e.path().filename().string());
    return names;
  }

 private:
  fs::path path_;
};

template <class T>
Matrix<T> random_matrix(Index rows, Index cols, Generator& gen) {
  Matrix<T> m(rows, cols);
  for (Index i = 0; i < m.size(); ++i) m.data()[i] = gen.normal<T>();
  return m;
}

Labels random_labels(Index n, int classes, Generator& gen) {
  Labels y(n);
  for (Index i = 0; i < n; ++i) y(i) = static_cast<int>(gen.below(static_cast<std::uint64_t>(classes)));
  return y;
}

/// Every built-in layer kind, with non-default options wherever a layer has them.
template <class T>
Sequential<T> every_kind_model(Generator& gen) {
  Sequential<T> model(6);
  model.add(Dense<T, ReLU>(6, 8, gen)).with_l2(T(1e-3));
  model.add(BatchNorm<T>(8)).with_momentum(T(0.2));
  model.add(Dropout<T>(0.25));
  model.add(Dense<T, LeakyReLU>(8, 8, gen, Init::he_uniform, LeakyReLU(0.2))).with_max_norm(T(3));
  model.add(AlphaDropout<T>(0.1));
  model.add(GaussianDropout<T>(0.2));
  model.add(SpatialDropout<T>(0.3, 4));
  model.add(BatchNorm<T>(4, 2)).with_eps(T(1e-3));
  model.add(ActivationLayer<T, Tanh>());
  model.add(DropConnectDense<T, ELU>(8, 6, 0.3, gen, Init::xavier_normal, ELU(0.5))).with_l1(T(1e-4));
  model.add(Dense<T>(6, 3, gen));
  return model;
}

/// A few epochs of training, so weights, BatchNorm statistics and optimizer state are not
/// their initial values.
template <class T>
void train_a_little(Sequential<T>& model, Optimizer<T>& optimizer, Generator& gen, int epochs = 2) {
  Generator data(99);
  const Matrix<T> x = random_matrix<T>(model.input_features(), 64, data);
  const Labels y = random_labels(64, static_cast<int>(model.output_features()), data);
  SoftmaxCrossEntropy<T> loss;
  FitOptions<T> options;
  options.epochs = epochs;
  options.batch_size = 16;
  fit(model, loss, optimizer, x, y, gen, options);
}

template <class T>
bool bit_identical(const Matrix<T>& a, const Matrix<T>& b) {
  return a.rows() == b.rows() && a.cols() == b.cols() &&
         std::memcmp(a.data(), b.data(), sizeof(T) * static_cast<std::size_t>(a.size())) == 0;
}

/// Every parameter and buffer, concatenated: to check that a failed load changed nothing.
template <class T>
std::vector<T> state_values(Sequential<T>& model) {
  std::vector<T> values;
  const ModelState<T> state(model);
  for (const auto& v : state.tensors())
    values.insert(values.end(), v.value, v.value + v.size());
  return values;
}
template <class T>
std::vector<T> state_values(Sequential<T>&& model) {
  return state_values(model);
}

template <class T>
std::string to_bytes(Sequential<T>& model, Optimizer<T>* optimizer = nullptr) {
  std::ostringstream out(std::ios::binary);
  save(model, out, optimizer);
  return out.str();
}

template <class T>
Sequential<T> from_bytes(const std::string& bytes) {
  std::istringstream in(bytes, std::ios::binary);
  return load<T>(in);
}

using fuzz::reseal;  // body length and checksum rewritten, so only an edit is wrong

/// A file with header, the given body and a valid checksum.
std::string sealed_file(const std::string& body, std::uint32_t scalar = 1, std::uint32_t flags = 0) {
  std::string bytes;
  detail::BinaryWriter w(bytes);
  w.bytes(detail::model_magic, 8);
  w.u32(model_file_version);
  w.u32(scalar);
  w.u32(flags);
  w.u64(body.size());
  bytes += body;
  w.u32(0);
  return reseal(bytes);
}

/// The body of a one-layer float model file, with a hand-written config and tensors.
std::string one_layer_body(const LayerConfig& config, std::uint64_t input_features,
                           const std::vector<std::pair<std::string, std::pair<std::uint64_t, std::uint64_t>>>& tensors) {
  std::string body;
  detail::BinaryWriter w(body);
  w.u64(input_features);
  w.u32(1);
  detail::write_config(w, config, "test");
  w.u32(static_cast<std::uint32_t>(tensors.size()));
  for (const auto& [name, shape] : tensors) {
    w.str(name);
    w.u64(shape.first);
    w.u64(shape.second);
    for (std::uint64_t k = 0; k < shape.first * shape.second; ++k) w.scalar(0.5f);
  }
  return body;
}

LayerConfig dense_config(double in, double out, const std::string& activation = "ReLU") {
  return {"Dense",
          {{"in", in}, {"out", out}, {"activation_parameter", 0.0}, {"l1", 0.0}, {"l2", 0.0},
           {"max_norm", 0.0}},
          {{"activation", activation}, {"init", "he_normal"}}};
}

std::string dense_file(double in, double out, const std::string& activation = "ReLU") {
  const auto r = static_cast<std::uint64_t>(out), c = static_cast<std::uint64_t>(in);
  return sealed_file(one_layer_body(dense_config(in, out, activation), c,
                                    {{"0.Dense.weight", {r, c}}, {"0.Dense.bias", {r, 1}}}));
}

/// Checks that loading `bytes` as a fresh model and into `model` both throw FormatError whose
/// message contains `expected`, and that `model` is unchanged.
template <class T>
void require_rejected(const std::string& bytes, Sequential<T>& model, const std::string& expected) {
  const std::vector<T> before = state_values(model);
  std::string message;
  try {
    from_bytes<T>(bytes);
  } catch (const FormatError& e) {
    message = e.what();
  }
  CHECK_MESSAGE(message.find(expected) != std::string::npos, "load: expected '", expected,
                "', got '", message, "'");
  message.clear();
  std::istringstream in(bytes, std::ios::binary);
  try {
    load_into(model, in);
  } catch (const FormatError& e) {
    message = e.what();
  }
  CHECK_MESSAGE(!message.empty(), "load_into accepted a file that load rejects with ", expected);
  CHECK(state_values(model) == before);
}

/// As require_rejected, for files that are valid on their own but do not fit `model`.
template <class T>
void require_rejected_into(const std::string& bytes, Sequential<T>& model, const std::string& expected) {
  const std::vector<T> before = state_values(model);
  std::istringstream in(bytes, std::ios::binary);
  CHECK_THROWS_WITH_AS(load_into(model, in), doctest::Contains(expected.c_str()), FormatError);
  CHECK(state_values(model) == before);
}

int g_bad_inputs = 0;  // bad inputs tried in this file, reported at the end

}  // namespace

// ------------------------------------------------------------------------------------ basics

TEST_CASE("crc32 matches the IEEE check value and is incremental") {
  CHECK(crc32("123456789", 9) == 0xCBF43926u);
  CHECK(crc32("", 0) == 0u);
  CHECK(crc32("a", 1) == 0xE8B7BE43u);
  Crc32 crc;
  crc.update("1234", 4);
  crc.update("56789", 5);
  CHECK(crc.value() == 0xCBF43926u);
}

TEST_CASE("the byte codec is little-endian whatever the host") {
  std::string bytes;
  detail::BinaryWriter w(bytes);
  w.u32(0x01020304u);
  w.scalar(1.0f);
  w.scalar(-2.0);
  w.str("ab");
  const std::string expected("\x04\x03\x02\x01"
                             "\x00\x00\x80\x3f"
                             "\x00\x00\x00\x00\x00\x00\x00\xc0"
                             "\x02\x00\x00\x00"
                             "ab",
                             4 + 4 + 8 + 4 + 2);
  CHECK(bytes == expected);
  detail::BinaryReader r(bytes, 0, bytes.size(), "test");
  CHECK(r.u32("u32") == 0x01020304u);
  CHECK(detail::load_le_scalar<float>(bytes.data() + 4) == 1.0f);
  CHECK(detail::load_le_scalar<double>(bytes.data() + 8) == -2.0);
  r.skip_elements(3, 4, "skip");
  CHECK(r.str("s", 2) == "ab");
  CHECK_THROWS_AS(r.u32("past the end"), FormatError);
  detail::BinaryReader r2(bytes, 16, bytes.size(), "test");
  CHECK_THROWS_WITH_AS(r2.str("s", 1), doctest::Contains("limit is 1"), FormatError);
  g_bad_inputs += 2;
}

TEST_CASE("the file layout: header fields at their documented offsets") {
  Generator gen(1);
  Sequential<float> model(2);
  auto& dense = model.add(Dense<float>(2, 1, gen));
  dense.weight() << 1.0f, -2.0f;
  dense.bias() << 0.5f;
  const std::string bytes = to_bytes(model);
  CHECK(bytes.compare(0, 8, "\x89" "DNM\r\n\x1a\n") == 0);
  CHECK(detail::load_le(bytes.data() + 8, 4) == 1);   // version
  CHECK(detail::load_le(bytes.data() + 12, 4) == 1);  // float
  CHECK(detail::load_le(bytes.data() + 16, 4) == 0);  // flags
  CHECK(detail::load_le(bytes.data() + 20, 8) == bytes.size() - 32);
  CHECK(detail::load_le(bytes.data() + 28, 8) == 2);   // input_features
  CHECK(detail::load_le(bytes.data() + 36, 4) == 1);   // one layer
  CHECK(detail::load_le(bytes.data() + 40, 4) == 5);   // "Dense"
  CHECK(bytes.compare(44, 5, "Dense") == 0);
  // The weight's scalars: the "0.Dense.weight" name, 1 x 2, then 1.0f and -2.0f.
  const std::size_t name = bytes.find("0.Dense.weight");
  REQUIRE(name != std::string::npos);
  const std::size_t data = name + 14 + 16;
  CHECK(detail::load_le(bytes.data() + name + 14, 8) == 1);
  CHECK(detail::load_le(bytes.data() + name + 22, 8) == 2);
  CHECK(bytes.compare(data, 8, std::string("\x00\x00\x80\x3f\x00\x00\x00\xc0", 8)) == 0);
  CHECK(detail::load_le(bytes.data() + bytes.size() - 4, 4) == crc32(bytes.data(), bytes.size() - 4));
}

// ------------------------------------------------------------------------------ round trips

TEST_CASE_TEMPLATE("save then load gives bit-identical predictions (every layer kind)", T, float,
                   double) {
  Generator gen(7);
  Sequential<T> model = every_kind_model<T>(gen);
  Adam<T> optimizer(model.parameters(), AdamOptions(1e-2));
  train_a_little(model, optimizer, gen);

  ScratchDir dir;
  const std::string path = dir.file("model.dnm");
  save(model, path);
  Sequential<T> loaded = load<T>(path);

  REQUIRE(loaded.size() == model.size());
  CHECK(loaded.input_features() == model.input_features());
  CHECK(loaded.summary() == model.summary());
  for (Index i = 0; i < model.size(); ++i)
    CHECK(detail::same_config(loaded.layer(i).config(), model.layer(i).config(),
                              detail::identical_numbers));
  CHECK(state_values(loaded) == state_values(model));

  Generator data(3);
  const Matrix<T> x = random_matrix<T>(6, 50, data);
  CHECK(bit_identical(predict(loaded, x), predict(model, x)));
  // Monte-Carlo passes draw the same masks from the same generator state.
  Generator g1(11), g2(11);
  const Matrix<T> a = model.forward(x, Mode::mc_sample, g1);
  const Matrix<T> b = loaded.forward(x, Mode::mc_sample, g2);
  CHECK(bit_identical(a, b));

  // The file is a fixed point: saving the loaded model writes the same bytes.
  CHECK(to_bytes(loaded) == to_bytes(model));
  // The stream versions read and write the same format.
  Sequential<T> streamed = from_bytes<T>(to_bytes(model));
  CHECK(bit_identical(predict(streamed, x), predict(model, x)));
}

namespace {

template <class T, class A>
void round_trip_activation(A activation) {
  Generator gen(5);
  Sequential<T> model(4);
  model.add(Dense<T, A>(4, 5, gen, default_init<A>(), activation));
  model.add(ActivationLayer<T, A>(activation));
  model.add(DropConnectDense<T, A>(5, 5, 0.2, gen, default_init<A>(), activation))
      .with_per_sample_masks()
      .with_gaussian_inference(3);
  model.add(DropConnectDense<T, A>(5, 3, 0.4, gen, default_init<A>(), activation));
  const Sequential<T> loaded = from_bytes<T>(to_bytes(model));
  const std::string bytes = to_bytes(const_cast<Sequential<T>&>(loaded));
  CHECK_MESSAGE(bytes == to_bytes(model), A::kind);
  Generator data(8), g1(2), g2(2);
  const Matrix<T> x = random_matrix<T>(4, 7, data);
  Sequential<T>& l = const_cast<Sequential<T>&>(loaded);
  const Matrix<T> a = model.forward(x, Mode::eval, g1);
  const Matrix<T> b = l.forward(x, Mode::eval, g2);
  CHECK_MESSAGE(bit_identical(a, b), A::kind);
}

}  // namespace

TEST_CASE_TEMPLATE("every activation round-trips in Dense, Activation and DropConnectDense", T,
                   float, double) {
  round_trip_activation<T>(Identity{});
  round_trip_activation<T>(ReLU{});
  round_trip_activation<T>(LeakyReLU(0.3));
  round_trip_activation<T>(ELU(0.7));
  round_trip_activation<T>(SELU{});
  round_trip_activation<T>(Sigmoid{});
  round_trip_activation<T>(Tanh{});
  round_trip_activation<T>(Softplus{});
  round_trip_activation<T>(Swish{});
  round_trip_activation<T>(GELU{});
  round_trip_activation<T>(GELUTanh{});
  round_trip_activation<T>(Softmax{});
  round_trip_activation<T>(LogSoftmax{});
  // The kinds of the first release stay loadable (newer kinds are walked by test_layer_registry).
  const LayerRegistry<T> registry = LayerRegistry<T>::builtin();
  for (const char* kind : {"Dense", "DropConnectDense", "Activation", "BatchNorm", "Dropout",
                           "AlphaDropout", "GaussianDropout", "SpatialDropout", "Conv2D",
                           "MaxPool2D", "AvgPool2D", "GlobalAvgPool", "Flatten"})
    CHECK(registry.contains(kind));
}

TEST_CASE_TEMPLATE("convolution, pooling and flatten layers round-trip bit for bit", T, float,
                   double) {
  Generator gen(9);
  Sequential<T> model(1 * 8 * 8);
  model.add(Conv2D<T, ReLU>(ImageShape{1, 8, 8}, 4, 3, gen, ConvOptions().padding(1))).with_l2(T(1e-3));
  model.add(BatchNorm<T>(4, 64));
  model.add(SpatialDropout<T>(0.2, 4));
  model.add(MaxPool2D<T>(ImageShape{4, 8, 8}, 2));
  model.add(Conv2D<T, GELU>(ImageShape{4, 4, 4}, 3, 3, gen,
                            ConvOptions().stride(2).padding(1).init(Init::xavier_uniform)));
  model.add(AvgPool2D<T>(ImageShape{3, 2, 2}, 2, PoolOptions().stride(1)));
  model.add(Conv2D<T>(ImageShape{3, 1, 1}, 6, 1, gen));
  model.add(GlobalAvgPool<T>(ImageShape{6, 1, 1}));
  model.add(Dense<T>(6, 12, gen));
  model.add(Flatten<T>(ImageShape{3, 2, 2}));
  model.add(Dense<T>(12, 2, gen));
  Adam<T> adam(model.parameters(), AdamOptions(1e-2));
  train_a_little(model, adam, gen);
  Sequential<T> loaded = from_bytes<T>(to_bytes(model));
  CHECK(to_bytes(loaded) == to_bytes(model));
  Generator data(4);
  const Matrix<T> x = random_matrix<T>(64, 9, data);
  CHECK(bit_identical(predict(loaded, x), predict(model, x)));
}

TEST_CASE("bad convolution and pooling configs fail before allocating") {
  Sequential<float> model(4);
  Generator gen(1);
  model.add(Dense<float>(4, 2, gen));
  auto conv = [](double c, double h, double w, double out, double k, double s, double p) {
    return LayerConfig{"Conv2D",
                       {{"channels", c}, {"height", h}, {"width", w}, {"out_channels", out},
                        {"kernel", k}, {"stride", s}, {"padding", p}, {"activation_parameter", 0},
                        {"l1", 0}, {"l2", 0}},
                       {{"activation", "ReLU"}, {"init", "he_normal"}}};
  };
  auto pool = [](const char* kind, double c, double h, double w, double k, double s, double p) {
    return LayerConfig{kind,
                       {{"channels", c}, {"height", h}, {"width", w}, {"kernel", k}, {"stride", s},
                        {"padding", p}},
                       {}};
  };
  const double big = 1 << 30;
  struct Case {
    LayerConfig config;
    const char* expected;
  };
  const std::vector<Case> cases = {
      {conv(big, big, big, 1, 1, 1, 0), "sizes whose product is"},
      {conv(2048, 1024, 1024, 1, 1, 1, 0), "has 2^31 or more values"},
      {conv(1, 8, 8, 1 << 20, 8, 1, 0), "the file can justify only"},
      {conv(64, 256, 256, 1, 16, 1, 0), "the file can justify only"},  // im2col buffers
      {conv(1, 4, 4, 2, 9, 1, 0), "does not fit the input"},
      {conv(1, 4, 4, 2, 3, 0, 0), "field 'stride'"},
      {conv(1, 4, 4, 2, 3, 1, -1), "field 'padding'"},
      {conv(0, 4, 4, 2, 3, 1, 0), "field 'channels'"},
      {pool("MaxPool2D", 1, 4, 4, 2, 2, 2), "padding must be at most half the kernel"},
      {pool("AvgPool2D", 1, 4, 4, 0, 2, 0), "field 'kernel'"},
      {pool("MaxPool2D", big, big, 1, 1, 1, 0), "has 2^31 or more values"},
      {{"Flatten", {{"channels", 1}, {"height", -1}, {"width", 1}}, {}}, "field 'height'"},
      {{"GlobalAvgPool", {{"channels", 2}, {"height", 2}}, {}}, "missing field 'width'"},
  };
  for (const auto& c : cases) {
    INFO(detail::describe(c.config));
    require_rejected(sealed_file(one_layer_body(c.config, 0, {})), model, c.expected);
  }
  g_bad_inputs += static_cast<int>(cases.size());
}

TEST_CASE_TEMPLATE("optimizer state round-trips: resumed training equals uninterrupted training",
                   T, float, double) {
  auto run = [](auto make_optimizer) {
    Generator gen(21);
    Sequential<T> model = every_kind_model<T>(gen);
    auto optimizer = make_optimizer(model);
    train_a_little(model, optimizer, gen, 2);
    const std::string checkpoint = to_bytes(model, &optimizer);
    const Generator gen_at_checkpoint = gen;

    train_a_little(model, optimizer, gen, 2);  // uninterrupted

    Generator gen2(999);
    Sequential<T> resumed = from_bytes<T>(checkpoint);
    auto optimizer2 = make_optimizer(resumed);
    std::istringstream in(checkpoint, std::ios::binary);
    load_into(resumed, in, &optimizer2);
    CHECK(optimizer2.step_count() == 8);
    gen2 = gen_at_checkpoint;
    train_a_little(resumed, optimizer2, gen2, 2);
    CHECK(state_values(resumed) == state_values(model));
    CHECK(optimizer2.step_count() == optimizer.step_count());
  };
  run([](Sequential<T>& m) { return Adam<T>(m.parameters(), AdamOptions(1e-2).amsgrad(true)); });
  run([](Sequential<T>& m) {
    return SGD<T>(m.parameters(), SGDOptions(0.05).momentum(0.9).nesterov(true));
  });
  run([](Sequential<T>& m) { return AdamW<T>(m.parameters()); });
  run([](Sequential<T>& m) { return RMSprop<T>(m.parameters(), RMSpropOptions(1e-3).momentum(0.5)); });
  run([](Sequential<T>& m) { return Adagrad<T>(m.parameters()); });
}

TEST_CASE("the learning rate a schedule reached is restored with the optimizer") {
  Generator gen(4);
  Sequential<double> model = every_kind_model<double>(gen);
  SGD<double> optimizer(model.parameters(), SGDOptions(0.1).momentum(0.5));
  optimizer.set_learning_rate(0.0125);
  const std::string bytes = to_bytes(model, &optimizer);
  SGD<double> other(model.parameters(), SGDOptions(0.1).momentum(0.5));
  std::istringstream in(bytes, std::ios::binary);
  load_into(model, in, &other);
  CHECK(other.learning_rate() == 0.0125);
  std::istringstream again(bytes, std::ios::binary);
  CHECK(read_model_info(again).optimizer_name == optimizer.name());
}

TEST_CASE("read_model_info reports the scalar type and the layers") {
  Generator gen(2);
  Sequential<double> model = every_kind_model<double>(gen);
  std::istringstream in(to_bytes(model), std::ios::binary);
  const ModelFileInfo info = read_model_info(in);
  CHECK(info.scalar_type == "double");
  CHECK(info.input_features == 6);
  REQUIRE(info.layers.size() == 11);
  CHECK(info.layers[1].kind == "BatchNorm");
  CHECK(!info.has_optimizer);
  CHECK(info.tensor_elements == static_cast<std::uint64_t>(state_values(model).size()));
}

namespace {

/// A user-defined layer: y = scale * x, with `scale` a hyperparameter.
template <class T>
class Scale : public Layer<T> {
 public:
  explicit Scale(double s) : s_(s) {}
  std::string name() const override { return "Scale"; }
  Index output_rows(Index rows) const override { return rows; }
  const Matrix<T>& forward(const Matrix<T>& x, Mode, Generator*) override {
    y_ = x * static_cast<T>(s_);
    return y_;
  }
  const Matrix<T>& backward(const Matrix<T>& dy, bool) override {
    dx_ = dy * static_cast<T>(s_);
    return dx_;
  }
  LayerConfig config() const override { return {"Scale", {{"s", s_}}, {}}; }

 private:
  double s_;
  Matrix<T> y_, dx_;
};

}  // namespace

TEST_CASE("a user layer kind loads through a registry that knows it") {
  Generator gen(3);
  Sequential<float> model(3);
  model.add(Dense<float>(3, 2, gen));
  model.add(Scale<float>(2.5));
  const std::string bytes = to_bytes(model);
  CHECK_THROWS_WITH_AS(from_bytes<float>(bytes), doctest::Contains("unknown layer kind 'Scale'"),
                       FormatError);
  ++g_bad_inputs;
  auto registry = LayerRegistry<float>::builtin().add(
      "Scale", [](const LayerConfig& c, ElementBudget&) -> LayerPtr<float> {
        return std::make_unique<Scale<float>>(c.number("s"));
      });
  std::istringstream in(bytes, std::ios::binary);
  Sequential<float> loaded = load<float>(in, registry);
  const Matrix<float> x = Matrix<float>::Ones(3, 2);
  CHECK(bit_identical(predict(loaded, x), predict(model, x)));
  // A factory that ignores a field is caught: the rebuilt config must equal the file's.
  auto sloppy = LayerRegistry<float>::builtin().add(
      "Scale", [](const LayerConfig&, ElementBudget&) -> LayerPtr<float> {
        return std::make_unique<Scale<float>>(1.0);
      });
  std::istringstream in2(bytes, std::ios::binary);
  CHECK_THROWS_WITH_AS(load<float>(in2, sloppy), doctest::Contains("rebuilt as Scale{s=1}"),
                       FormatError);
  ++g_bad_inputs;
}

// ------------------------------------------------------------------------------- bad files

TEST_CASE("every truncation and every single-byte corruption is rejected") {
  Generator gen(13);
  Sequential<float> model(3);
  model.add(Dense<float, ReLU>(3, 2, gen));
  model.add(Dropout<float>(0.5));
  model.add(BatchNorm<float>(2));
  const std::string bytes = to_bytes(model);
  Sequential<float> target(3);
  target.add(Dense<float, ReLU>(3, 2, gen));
  target.add(Dropout<float>(0.5));
  target.add(BatchNorm<float>(2));
  const std::vector<float> before = state_values(target);

  int truncations = 0, flips = 0;
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    std::istringstream in(bytes.substr(0, n), std::ios::binary);
    CHECK_THROWS_AS(load_into(target, in), FormatError);
    ++truncations;
  }
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    for (unsigned char mask : {0x01, 0x80, 0xFF}) {
      std::string bad = bytes;
      bad[i] = static_cast<char>(static_cast<unsigned char>(bad[i]) ^ mask);
      std::istringstream in(bad, std::ios::binary);
      CHECK_THROWS_AS(load<float>(in), FormatError);
      std::istringstream in2(bad, std::ios::binary);
      CHECK_THROWS_AS(load_into(target, in2), FormatError);
      ++flips;
    }
  }
  CHECK(state_values(target) == before);
  g_bad_inputs += truncations + flips;
  MESSAGE(truncations, " truncations and ", flips, " byte corruptions of a ", bytes.size(),
          "-byte file rejected");
}

TEST_CASE("bad headers: magic, version, scalar type, flags, length, checksum") {
  Generator gen(17);
  Sequential<float> model(3);
  model.add(Dense<float>(3, 2, gen));
  const std::string good = to_bytes(model);
  auto patched = [&](std::size_t offset, std::uint64_t value, int width) {
    std::string bytes = good;
    detail::BinaryWriter w(bytes);
    if (width == 4) w.patch_u32(offset, static_cast<std::uint32_t>(value));
    else w.patch_u64(offset, value);
    return bytes;
  };
  auto resealed = [&](std::size_t offset, std::uint64_t value, int width) {
    std::string bytes = patched(offset, value, width);
    detail::BinaryWriter w(bytes);
    w.patch_u32(bytes.size() - 4, crc32(bytes.data(), bytes.size() - 4));
    return bytes;
  };
  require_rejected(std::string(), model, "empty");
  require_rejected(std::string("\x89" "DN", 3), model, "truncated");
  require_rejected(std::string("PK\x03\x04 a zip file, not a model"), model, "wrong magic");
  require_rejected(std::string("\x89PNG\r\n\x1a\n") + good.substr(8), model, "wrong magic");
  require_rejected(good.substr(0, 20), model, "truncated: the header");
  require_rejected(resealed(8, 2, 4), model, "unsupported format version 2");
  require_rejected(resealed(8, 0, 4), model, "unsupported format version 0");
  require_rejected(resealed(12, 3, 4), model, "unknown scalar type code 3");
  require_rejected(resealed(16, 6, 4), model, "unknown flags");
  require_rejected(patched(20, good.size(), 8), model, "truncated");
  require_rejected(patched(20, std::uint64_t{1} << 61, 8), model, "truncated");  // no 2^61 alloc
  require_rejected(patched(20, ~std::uint64_t{0}, 8), model, "corrupt body length");
  require_rejected(patched(good.size() - 4, 0, 4), model, "checksum mismatch");
  require_rejected(good.substr(0, good.size() - 1), model, "truncated");
  require_rejected(sealed_file("", 1), model, "truncated: input_features");
  g_bad_inputs += 15;

  // A flag announcing an optimizer section that is not there.
  std::string flagged = good;
  detail::BinaryWriter(flagged).patch_u32(16, 1);
  require_rejected(reseal(flagged), model, "truncated: optimizer name");
  ++g_bad_inputs;
}

TEST_CASE("the scalar type must match: a float file is not a double model") {
  Generator gen(1);
  Sequential<float> f(2);
  f.add(Dense<float>(2, 2, gen));
  Sequential<double> d(2);
  d.add(Dense<double>(2, 2, gen));
  CHECK_THROWS_WITH_AS(from_bytes<double>(to_bytes(f)), doctest::Contains("load<float>"), FormatError);
  CHECK_THROWS_WITH_AS(from_bytes<float>(to_bytes(d)), doctest::Contains("load<double>"), FormatError);
  require_rejected(to_bytes(f), d, "holds a float model");
  g_bad_inputs += 3;
}

TEST_CASE("absurd sizes fail before any allocation") {
  Sequential<float> model(3);
  Generator gen(1);
  model.add(Dense<float>(3, 2, gen));
  // Sizes the bytes cannot back.
  require_rejected_into(dense_file(4, 2), model, "architecture mismatch");  // sane, other shape
  {
    // A tensor announcing 2^40 x 2^20 scalars.
    std::string body = one_layer_body(dense_config(3, 2), 3, {});
    body.resize(body.size() - 4);
    detail::BinaryWriter w(body);
    w.u32(1);
    w.str("0.Dense.weight");
    w.u64(std::uint64_t{1} << 40);
    w.u64(std::uint64_t{1} << 20);
    require_rejected(sealed_file(body), model, "truncated: tensor '0.Dense.weight'");
  }
  // A config asking for a 2^30 x 2^30 layer from a file of a few hundred bytes.
  require_rejected(sealed_file(one_layer_body(dense_config(1 << 30, 1 << 30), 1 << 30, {})), model,
                   "the file can justify only");
  // A BatchNorm whose scratch rows would be huge.
  {
    LayerConfig bn{"BatchNorm",
                   {{"features", 1 << 30}, {"channels", 1}, {"spatial", 1 << 30},
                    {"momentum", 0.1}, {"eps", 1e-5}},
                   {}};
    require_rejected(sealed_file(one_layer_body(bn, 0, {})), model, "the file can justify only");
  }
  // Counts beyond their limits.
  {
    std::string body;
    detail::BinaryWriter w(body);
    w.u64(3);
    w.u32(10001);
    body += std::string(10001 * 12, '\0');
    require_rejected(sealed_file(body), model, "layer count 10001 is impossible");
  }
  {
    std::string body;
    detail::BinaryWriter w(body);
    w.u64(3);
    w.u32(1);
    w.u32(257);
    body += std::string(300, 'D');
    require_rejected(sealed_file(body), model, "257 bytes long, the limit is 256");
  }
  {
    std::string body;
    detail::BinaryWriter w(body);
    w.u64(3);
    w.u32(1);
    w.str("Dense");
    w.u32(100000);
    require_rejected(sealed_file(body), model, "has 100000 numbers");
  }
  {
    std::string body;
    detail::BinaryWriter w(body);
    w.u64(3);
    w.u32(0xFFFFFFFFu);
    require_rejected(sealed_file(body), model, "layer count");
  }
  {
    std::string body;
    detail::BinaryWriter w(body);
    w.u64(std::uint64_t{1} << 50);
    require_rejected(sealed_file(body), model, "corrupt input_features");
  }
  {
    std::string body;
    detail::BinaryWriter w(body);
    w.u64(3);
    w.u32(0);
    require_rejected(sealed_file(body), model, "holds no layers");
  }
  g_bad_inputs += 10;
}

TEST_CASE("bad layer configs are rejected with the layer and the field") {
  Sequential<float> model(3);
  Generator gen(1);
  model.add(Dense<float>(3, 2, gen));
  struct Case {
    LayerConfig config;
    const char* expected;
  };
  auto dense_with = [](const std::string& key, double value) {
    LayerConfig c = dense_config(3, 2);
    for (auto& [k, v] : c.numbers)
      if (k == key) v = value;
    return c;
  };
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<Case> cases = {
      {dense_with("in", 0), "field 'in' must be an integer"},
      {dense_with("in", -3), "field 'in' must be an integer"},
      {dense_with("in", 2.5), "field 'in' must be an integer"},
      {dense_with("in", 1e300), "field 'in' must be an integer"},
      {dense_with("out", 0), "field 'out' must be an integer"},
      {dense_with("l2", -1), "l2 must be finite and >= 0"},
      {dense_with("max_norm", -2), "max-norm must be finite and > 0"},
      {dense_with("activation_parameter", 0.5), "takes no parameter"},
      {dense_config(3, 2, "Mish"), "unknown activation 'Mish'"},
      {{"Dense", {{"in", 3}}, {}}, "missing field 'out'"},
      {{"Transformer", {}, {}}, "unknown layer kind 'Transformer'"},
      {{"Dropout", {{"p", 1.0}}, {}}, "p must be finite and in [0, 1)"},
      {{"Dropout", {{"p", -0.1}}, {}}, "p must be finite and in [0, 1)"},
      {{"Dropout", {{"p", 0.5}, {"extra", 1}}, {}}, "rebuilt as Dropout{p=0.5}"},
      {{"Dropout", {}, {}}, "missing field 'p'"},
      {{"AlphaDropout", {{"p", 2}}, {}}, "p must be finite"},
      {{"GaussianDropout", {{"p", 1}}, {}}, "p must be finite"},
      {{"SpatialDropout", {{"p", 0.5}, {"channels", 0}}, {}}, "field 'channels'"},
      {{"BatchNorm", {{"features", 4}, {"channels", 2}, {"spatial", 3}, {"momentum", 0.1}, {"eps", 1e-5}}, {}},
       "is not channels=2 x spatial=3"},
      {{"BatchNorm", {{"features", 2}, {"channels", 2}, {"spatial", 1}, {"momentum", 1.5}, {"eps", 1e-5}}, {}},
       "momentum must be in [0, 1]"},
      {{"BatchNorm", {{"features", 2}, {"channels", 2}, {"spatial", 1}, {"momentum", 0.1}, {"eps", 0}}, {}},
       "eps must be finite and > 0"},
      {{"DropConnectDense",
        {{"in", 3}, {"out", 2}, {"p", 0.5}, {"per_sample", 2}, {"gaussian_samples", 0},
         {"activation_parameter", 0}, {"l1", 0}, {"l2", 0}, {"max_norm", 0}},
        {{"activation", "ReLU"}, {"init", "he_normal"}}},
       "field 'per_sample'"},
      {{"Activation", {{"activation_parameter", 0}}, {{"activation", "Nope"}}}, "unknown activation"},
      {{"Dense",
        {{"in", 3}, {"out", 2}, {"activation_parameter", 0}, {"l1", 0}, {"l2", 0}, {"max_norm", 0}},
        {{"activation", "ReLU"}, {"init", "orthogonal"}}},
       "unknown initializer 'orthogonal'"},
  };
  for (const auto& c : cases) {
    INFO(detail::describe(c.config));
    require_rejected(sealed_file(one_layer_body(c.config, 3, {})), model, c.expected);
  }
  g_bad_inputs += static_cast<int>(cases.size());

  // Non-finite numbers are rejected while reading, before any factory sees them.
  for (double bad : {nan, inf, -inf}) {
    std::string body = one_layer_body(dense_config(3, 2), 3, {});
    const std::size_t at = body.find("l1") + 2;
    detail::BinaryWriter w(body);
    std::string encoded;
    detail::BinaryWriter(encoded).f64(bad);
    body.replace(at, 8, encoded);
    require_rejected(sealed_file(body), model, "field 'l1' is");
    ++g_bad_inputs;
  }
}

TEST_CASE("tensor lists must match the rebuilt model") {
  Sequential<float> model(3);
  Generator gen(1);
  model.add(Dense<float>(3, 2, gen));
  const LayerConfig c = dense_config(3, 2);
  require_rejected(sealed_file(one_layer_body(c, 3, {})), model, "holds 0 tensors");
  require_rejected(sealed_file(one_layer_body(c, 3, {{"0.Dense.weight", {2, 3}}})), model,
                   "holds 1 tensors");
  require_rejected(sealed_file(one_layer_body(c, 3, {{"0.Dense.weight", {3, 2}}, {"0.Dense.bias", {2, 1}}})),
                   model, "tensor 0 is '0.Dense.weight' 3x2 in the file");
  require_rejected(sealed_file(one_layer_body(c, 3, {{"0.Dense.bias", {2, 1}}, {"0.Dense.weight", {2, 3}}})),
                   model, "tensor 0 is '0.Dense.bias'");
  require_rejected(sealed_file(one_layer_body(c, 4, {{"0.Dense.weight", {2, 3}}, {"0.Dense.bias", {2, 1}}})),
                   model, "layer 0");  // input_features 4 vs Dense(3->2)
  // Bytes after the last section, inside the checksummed body.
  std::string body = one_layer_body(c, 3, {{"0.Dense.weight", {2, 3}}, {"0.Dense.bias", {2, 1}}});
  CHECK_NOTHROW(from_bytes<float>(sealed_file(body)));
  require_rejected(sealed_file(body + "xyz"), model, "3 unexpected bytes at the end of the body");
  g_bad_inputs += 6;
}

TEST_CASE("files on disk: missing, directory, trailing bytes") {
  ScratchDir dir;
  Sequential<float> model(3);
  Generator gen(1);
  model.add(Dense<float>(3, 2, gen));
  CHECK_THROWS_WITH_AS(load<float>(dir.file("missing.dnm")), doctest::Contains("cannot open"), FormatError);
  CHECK_THROWS_WITH_AS(load<float>(dir.file("")), doctest::Contains("is a directory"), FormatError);
  CHECK_THROWS_AS(load_into(model, dir.file("missing.dnm")), FormatError);
  CHECK_THROWS_AS(read_model_info(dir.file("missing.dnm")), FormatError);
  const std::string path = dir.file("m.dnm");
  save(model, path);
  CHECK_NOTHROW(load<float>(path));
  {
    std::ofstream out(path, std::ios::binary | std::ios::app);
    out << "junk";
  }
  CHECK_THROWS_WITH_AS(load<float>(path), doctest::Contains("after the checksum"), FormatError);
  g_bad_inputs += 5;
}

// ------------------------------------------------------------------------ load_into checks

TEST_CASE_TEMPLATE("load_into verifies the architecture and leaves a mismatched model unchanged", T,
                   float, double) {
  Generator gen(31);
  Sequential<T> source = every_kind_model<T>(gen);
  const std::string bytes = to_bytes(source);

  Sequential<T> same = every_kind_model<T>(gen);  // other weights, same architecture
  std::istringstream in(bytes, std::ios::binary);
  load_into(same, in);
  CHECK(state_values(same) == state_values(source));

  auto mismatched = [&](auto&& tweak, const char* expected) {
    Generator g(1);
    Sequential<T> model(6);
    tweak(model, g);
    require_rejected_into(bytes, model, expected);
    ++g_bad_inputs;
  };
  mismatched([](Sequential<T>& m, Generator& g) { m.add(Dense<T, ReLU>(6, 8, g)); },
             "the file holds 11 layers, the model has 1");
  mismatched(
      [](Sequential<T>& m, Generator& g) {
        Sequential<T> other = every_kind_model<T>(g);
        m = std::move(other);
        auto& first = dynamic_cast<Dense<T, ReLU>&>(m.layer(0));
        first.with_l2(T(0.5));
      },
      "architecture mismatch at layer 0");
  // Same shapes and kinds, one hyperparameter differs (dropout rate).
  mismatched(
      [](Sequential<T>& m, Generator& g) {
        m.add(Dense<T, ReLU>(6, 8, g)).with_l2(T(1e-3));
        m.add(BatchNorm<T>(8)).with_momentum(T(0.2));
        m.add(Dropout<T>(0.5));
      },
      "the file holds 11 layers");
  {
    // A full model differing only in Dropout's p.
    Generator g(1);
    Sequential<T> model(6);
    model.add(Dense<T, ReLU>(6, 8, g)).with_l2(T(1e-3));
    model.add(BatchNorm<T>(8)).with_momentum(T(0.2));
    model.add(Dropout<T>(0.3));
    model.add(Dense<T, LeakyReLU>(8, 8, g, Init::he_uniform, LeakyReLU(0.2))).with_max_norm(T(3));
    model.add(AlphaDropout<T>(0.1));
    model.add(GaussianDropout<T>(0.2));
    model.add(SpatialDropout<T>(0.3, 4));
    model.add(BatchNorm<T>(4, 2)).with_eps(T(1e-3));
    model.add(ActivationLayer<T, Tanh>());
    model.add(DropConnectDense<T, ELU>(8, 6, 0.3, g, Init::xavier_normal, ELU(0.5))).with_l1(T(1e-4));
    model.add(Dense<T>(6, 3, g));
    require_rejected_into(bytes, model, "at layer 2: the file has Dropout{p=0.25}, the model Dropout{p=0.29");
    // ... or a different activation in the last layer's place, or a different input width.
    ++g_bad_inputs;
  }
  {
    Generator g(1);
    Sequential<T> model(0);
    model.add(Dropout<T>(0.25));
    require_rejected_into(bytes, model, "input features");
    ++g_bad_inputs;
  }
}

TEST_CASE("load_into with an optimizer checks the optimizer and changes nothing on failure") {
  Generator gen(41);
  Sequential<float> model = every_kind_model<float>(gen);
  Adam<float> adam(model.parameters(), AdamOptions(1e-2));
  train_a_little(model, adam, gen);
  const std::string with_adam = to_bytes(model, &adam);
  const std::string without = to_bytes(model);

  auto rejected = [&](const std::string& bytes, Optimizer<float>& optimizer, const char* expected) {
    const std::vector<float> before = state_values(model);
    std::vector<Vector<float>> state_before;
    for (auto* s : optimizer.state()) state_before.push_back(*s);
    const auto steps = optimizer.step_count();
    std::istringstream in(bytes, std::ios::binary);
    CHECK_THROWS_WITH_AS(load_into(model, in, &optimizer), doctest::Contains(expected), FormatError);
    CHECK(state_values(model) == before);
    CHECK(optimizer.step_count() == steps);
    const auto state = optimizer.state();
    for (std::size_t i = 0; i < state.size(); ++i) CHECK(*state[i] == state_before[i]);
    ++g_bad_inputs;
  };
  Adam<float> fresh(model.parameters(), AdamOptions(1e-2));
  rejected(without, fresh, "holds no optimizer state");
  SGD<float> sgd(model.parameters(), SGDOptions(0.1).momentum(0.9));
  rejected(with_adam, sgd, "holds the state of Adam");
  Adam<float> ams(model.parameters(), AdamOptions(1e-2).amsgrad(true));
  rejected(with_adam, ams, "different options");
  {
    std::string bad = with_adam;
    // Step count -1 (the i64 right after the optimizer name and the learning rate).
    const std::size_t name = bad.find(adam.name());
    detail::BinaryWriter(bad).patch_u64(name + adam.name().size() + 8, ~std::uint64_t{0});
    rejected(reseal(bad), fresh, "step count -1");
  }
  // An optimizer over another model's parameters is a caller error.
  Sequential<float> other = every_kind_model<float>(gen);
  Adam<float> foreign(other.parameters(), AdamOptions(1e-2));
  std::istringstream in(with_adam, std::ios::binary);
  CHECK_THROWS_WITH_AS(load_into(model, in, &foreign), doctest::Contains("was not built from"),
                       InvalidArgument);
  CHECK_THROWS_AS(to_bytes(model, &foreign), InvalidArgument);
  g_bad_inputs += 2;
  // And the file with Adam state loads into a model without an optimizer.
  std::istringstream in2(with_adam, std::ios::binary);
  CHECK_NOTHROW(load_into(model, in2));
}

// ------------------------------------------------------------------------------ saving

namespace {

/// A stream buffer that accepts `budget` bytes and then fails, like a disk that fills up.
class FailingBuffer : public std::streambuf {
 public:
  explicit FailingBuffer(std::size_t budget) : budget_(budget) {}
  std::size_t written() const { return written_; }

 protected:
  int_type overflow(int_type c) override {
    if (written_ == budget_ || traits_type::eq_int_type(c, traits_type::eof())) return traits_type::eof();
    ++written_;
    return c;
  }
  std::streamsize xsputn(const char*, std::streamsize n) override {
    const auto k = std::min<std::size_t>(static_cast<std::size_t>(n), budget_ - written_);
    written_ += k;
    return static_cast<std::streamsize>(k);
  }

 private:
  std::size_t budget_, written_ = 0;
};

/// Sets RLIMIT_FSIZE so that writes past `bytes` fail with EFBIG (a real write error from the
/// kernel, as a full disk gives ENOSPC); restores the limit at scope exit.
class FileSizeLimit {
 public:
  explicit FileSizeLimit(rlim_t bytes) {
    std::signal(SIGXFSZ, SIG_IGN);  // else the kernel kills the process instead of failing write
    getrlimit(RLIMIT_FSIZE, &saved_);
    rlimit limit = saved_;
    limit.rlim_cur = bytes;
    ok_ = setrlimit(RLIMIT_FSIZE, &limit) == 0;
  }
  ~FileSizeLimit() { setrlimit(RLIMIT_FSIZE, &saved_); }
  bool ok() const { return ok_; }

 private:
  rlimit saved_{};
  bool ok_ = false;
};

}  // namespace

TEST_CASE("save to a failing stream throws at every failure point") {
  Generator gen(3);
  Sequential<float> model = every_kind_model<float>(gen);
  const std::size_t size = to_bytes(model).size();
  int tried = 0;
  for (std::size_t budget : {std::size_t{0}, std::size_t{1}, std::size_t{27}, std::size_t{28},
                             size / 2, size - 4, size - 1}) {
    FailingBuffer buffer(budget);
    std::ostream out(&buffer);
    CHECK_THROWS_WITH_AS(save(model, out), doctest::Contains("to the stream failed"), FormatError);
    CHECK(buffer.written() == budget);
    ++tried;
  }
  FailingBuffer enough(size);
  std::ostream out(&enough);
  CHECK_NOTHROW(save(model, out));
  // A stream that throws on failure is reported the same way.
  FailingBuffer thrower(10);
  std::ostream throwing(&thrower);
  throwing.exceptions(std::ios::badbit);
  CHECK_THROWS_AS(save(model, throwing), FormatError);
  g_bad_inputs += tried + 1;
}

TEST_CASE("an interrupted save leaves the previous file intact and no temporary behind") {
  ScratchDir dir;
  const std::string path = dir.file("model.dnm");
  Generator gen(5);
  Sequential<double> old_model(30);
  old_model.add(Dense<double>(30, 20, gen));
  save(old_model, path);
  const std::string old_bytes = to_bytes(old_model);

  Sequential<double> big(30);
  big.add(Dense<double>(30, 200, gen));
  big.add(Dense<double>(200, 10, gen));
  const std::size_t big_size = to_bytes(big).size();
  REQUIRE(big_size > 40000);

  int tried = 0;
  for (rlim_t limit : {rlim_t{0}, rlim_t{1}, rlim_t{100}, rlim_t{4096}, rlim_t{big_size - 1}}) {
    {
      FileSizeLimit fsize(limit);
      REQUIRE(fsize.ok());
      CHECK_THROWS_WITH_AS(save(big, path), doctest::Contains("unchanged"), FormatError);
    }
    ++tried;
    std::ifstream in(path, std::ios::binary);
    const std::string on_disk((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    CHECK(on_disk == old_bytes);
    CHECK(dir.entries() == std::vector<std::string>{"model.dnm"});
  }
  CHECK(state_values(load<double>(path)) == state_values(old_model));
  // Without the limit the same save succeeds and replaces the file.
  save(big, path);
  CHECK(state_values(load<double>(path)) == state_values(big));
  CHECK(dir.entries() == std::vector<std::string>{"model.dnm"});
  g_bad_inputs += tried;
}

TEST_CASE("saving where no file can be written throws and creates nothing") {
  ScratchDir dir;
  Generator gen(5);
  Sequential<float> model(3);
  model.add(Dense<float>(3, 2, gen));
  CHECK_THROWS_WITH_AS(save(model, dir.file("no/such/dir/m.dnm")), doctest::Contains("cannot create"),
                       FormatError);
  // /proc refuses new files even to root (a chmod'ed directory would not stop root).
  CHECK_THROWS_AS(save(model, std::string("/proc/dropnet_model.dnm")), FormatError);
  if (::geteuid() != 0) {
    fs::create_directory(dir.file("ro"));
    fs::permissions(dir.file("ro"), fs::perms::owner_read | fs::perms::owner_exec);
    CHECK_THROWS_AS(save(model, dir.file("ro/m.dnm")), FormatError);
    fs::permissions(dir.file("ro"), fs::perms::owner_all);
  }
  // The target is a directory: the rename fails and the temporary is removed.
  fs::create_directory(dir.file("taken"));
  CHECK_THROWS_WITH_AS(save(model, dir.file("taken")), doctest::Contains("rename failed"), FormatError);
  CHECK_THROWS_WITH_AS(save(model, std::string()), doctest::Contains("not a file name"), FormatError);
  CHECK_THROWS_WITH_AS(save(model, dir.file("")), doctest::Contains("not a file name"), FormatError);
  std::vector<std::string> left = dir.entries();
  std::sort(left.begin(), left.end());
  CHECK(left == std::vector<std::string>(geteuid() != 0 ? std::vector<std::string>{"ro", "taken"}
                                                        : std::vector<std::string>{"taken"}));
  g_bad_inputs += 5;
}

TEST_CASE("models that cannot be stored are refused at save, not at load") {
  Generator gen(5);
  Sequential<float> empty(3);
  std::ostringstream out;
  CHECK_THROWS_WITH_AS(save(empty, out), doctest::Contains("1 to 10000 layers"), InvalidArgument);
  Sequential<float> nan_alpha(3);
  nan_alpha.add(Dense<float, ELU>(3, 2, gen, Init::he_normal, ELU(std::nan(""))));
  CHECK_THROWS_WITH_AS(save(nan_alpha, out), doctest::Contains("is not finite"), InvalidArgument);
  Sequential<float> custom(3);
  custom.add(Scale<float>(1.0));
  struct LongName : Scale<float> {
    using Scale<float>::Scale;
    LayerConfig config() const override { return {std::string(300, 'x'), {}, {}}; }
  };
  Sequential<float> long_name(3);
  long_name.add(LongName(1.0));
  CHECK_THROWS_WITH_AS(save(long_name, out), doctest::Contains("300 bytes long"), InvalidArgument);
  CHECK(out.str().empty());
  g_bad_inputs += 3;
}

// ------------------------------------------------------------------- fuzz corpus replay

namespace {

/// The fuzz target's properties (tests/fuzz/fuzz_model_loader.cpp): load succeeds or throws
/// FormatError, and what loads saves back to the same bytes (minus an optimizer section).
template <class T>
void check_loader_properties(const std::string& bytes) {
  try {
    std::istringstream in(bytes, std::ios::binary);
    Sequential<T> model = load<T>(in);
    const auto consumed = static_cast<std::size_t>(in.tellg());
    const std::string saved = to_bytes(model);
    const bool with_optimizer = (detail::load_le(bytes.data() + 16, 4) & 1u) != 0;
    const std::size_t body = saved.size() - detail::model_header_bytes - 4;
    if (with_optimizer)
      CHECK(bytes.compare(detail::model_header_bytes, body, saved, detail::model_header_bytes, body) == 0);
    else
      CHECK(bytes.compare(0, consumed, saved) == 0);
  } catch (const FormatError&) {
  }
}

}  // namespace

TEST_CASE("the fuzz corpus and every regression input keep the fuzzer's properties") {
  // The seeds are generated (tests/fuzz/corpus_models.hpp); the regressions are committed.
  std::vector<fuzz::Seed> inputs = fuzz::model_seeds();
  const std::size_t seeds = inputs.size();
  const fs::path fuzz_dir = fs::path(__FILE__).parent_path() / "fuzz";
  const fs::path dir = fuzz_dir / "regressions" / "model";
  REQUIRE_MESSAGE(fs::is_directory(dir), dir.string(), " not found (run from the repository root)");
  for (const auto& entry : fs::directory_iterator(dir)) {
    std::ifstream in(entry.path(), std::ios::binary);
    inputs.emplace_back(entry.path().string(), std::string((std::istreambuf_iterator<char>(in)),
                                                           std::istreambuf_iterator<char>()));
  }
  for (const fuzz::Seed& input : inputs) {  // not [name, bytes]: clang 14 INFO cannot capture
    INFO(input.first);
    const std::string& bytes = input.second;
    for (const std::string& b : {bytes, bytes.size() >= 32 ? reseal(bytes) : bytes}) {
      check_loader_properties<float>(b);
      check_loader_properties<double>(b);
    }
  }
  // Every seed loads (a seed that does not would waste the fuzzer's time).
  for (std::size_t i = 0; i < seeds; ++i) {
    INFO(inputs[i].first);
    const bool is_float = inputs[i].first.find("float") != std::string::npos;
    std::istringstream in(inputs[i].second, std::ios::binary);
    if (is_float)
      CHECK_NOTHROW(load<float>(in));
    else
      CHECK_NOTHROW(load<double>(in));
  }
  MESSAGE(seeds, " generated seeds and ", inputs.size() - seeds, " regression files replayed");
  CHECK(seeds >= 7);
  CHECK(inputs.size() - seeds >= 4);
}

TEST_CASE("input_features must be what the first layer takes (found by the fuzzer)") {
  Sequential<float> model(3);
  Generator gen(1);
  model.add(Dense<float>(3, 2, gen));
  std::string bytes = to_bytes(model);
  detail::BinaryWriter(bytes).patch_u64(28, 0);
  CHECK_THROWS_WITH_AS(from_bytes<float>(reseal(bytes)),
                       doctest::Contains("input_features is 0 but the first layer takes 3"),
                       FormatError);
  ++g_bad_inputs;
}

TEST_CASE("a stream load reads one model and leaves what follows (found by the fuzzer)") {
  // Models can sit back to back in one stream; the bytes after a checksum are the next content.
  Generator gen(1);
  Sequential<float> first(3), second(2);
  first.add(Dense<float>(3, 2, gen));
  second.add(Dense<float>(2, 4, gen));
  const std::string a = to_bytes(first), b = to_bytes(second);
  std::istringstream in(a + b + "tail", std::ios::binary);
  Sequential<float> first_loaded = load<float>(in);
  CHECK(static_cast<std::size_t>(in.tellg()) == a.size());
  Sequential<float> second_loaded = load<float>(in);
  CHECK(to_bytes(first_loaded) == a);
  CHECK(to_bytes(second_loaded) == b);
  std::string rest;
  in >> rest;
  CHECK(rest == "tail");
  check_loader_properties<float>(a + "tail");
}

TEST_CASE("negative zero: what save writes loads back to the same bytes (found by the fuzzer)") {
  // A config number of -0.0 compares equal to the 0.0 a rebuilt layer reports, so the rebuild
  // check must compare bits: otherwise load accepts a file that saves back differently.
  SUBCASE("a user's -0.0 penalty survives save, load, save") {
    Sequential<float> model(3);
    Generator gen(1);
    Dense<float> dense(3, 2, gen);
    dense.with_penalty({-0.0f, 0.0f});
    model.add(std::move(dense));
    const std::string bytes = to_bytes(model);
    Sequential<float> loaded = from_bytes<float>(bytes);
    CHECK(to_bytes(loaded) == bytes);
  }
  SUBCASE("a -0.0 that no save writes is rejected, naming the field") {
    for (const char* field : {"activation_parameter", "max_norm"}) {
      INFO(std::string(field));
      LayerConfig config = dense_config(3, 2);
      for (auto& [key, value] : config.numbers)
        if (key == field) value = -0.0;
      const std::string file = sealed_file(
          one_layer_body(config, 3, {{"0.Dense.weight", {2u, 3u}}, {"0.Dense.bias", {2u, 1u}}}));
      CHECK_THROWS_WITH_AS(from_bytes<float>(file),
                           doctest::Contains((std::string(field) + "=-0").c_str()), FormatError);
      check_loader_properties<float>(file);
      ++g_bad_inputs;
    }
  }
}

// ------------------------------------------------------------- a failed load changes nothing

namespace {

/// Optimizer state, learning rate and step count, to check that a failed load changed nothing.
template <class T>
std::vector<T> optimizer_values(Optimizer<T>& optimizer) {
  std::vector<T> values{optimizer.learning_rate(), static_cast<T>(optimizer.step_count())};
  for (const Vector<T>* s : optimizer.state()) values.insert(values.end(), s->data(), s->data() + s->size());
  return values;
}

/// `bytes` (saved with `optimizer`) with the stored learning rate replaced by `rate`, resealed.
std::string with_learning_rate(std::string bytes, const std::string& optimizer_name, double rate) {
  const std::size_t name_at = bytes.rfind(optimizer_name);
  REQUIRE(name_at != std::string::npos);
  std::string f64;
  detail::BinaryWriter(f64).f64(rate);
  bytes.replace(name_at + optimizer_name.size(), 8, f64);
  return reseal(bytes);
}

/// Saves `model` with `optimizer` after a step, patches the learning rate, and checks that
/// load_into a trained copy throws FormatError and leaves the copy and its optimizer
/// bit-identical.
template <class T, class Opt, class Options>
void check_bad_rate_changes_nothing(const Options& options, double rate) {
  Generator gen(3);
  Sequential<T> source(6);
  source.add(Dense<T, ReLU>(6, 4, gen));
  source.add(BatchNorm<T>(4));
  source.add(Dense<T>(4, 3, gen));
  Opt saved_optimizer(source.parameters(), options);
  train_a_little(source, saved_optimizer, gen, 1);
  const std::string bytes =
      with_learning_rate(to_bytes(source, static_cast<Optimizer<T>*>(&saved_optimizer)),
                         saved_optimizer.name(), rate);

  Sequential<T> target = from_bytes<T>(to_bytes(source));
  Generator other(4);
  Opt optimizer(target.parameters(), options);
  train_a_little(target, optimizer, other, 1);
  const std::vector<T> before = state_values(target);
  const std::vector<T> optimizer_before = optimizer_values<T>(optimizer);
  std::istringstream in(bytes, std::ios::binary);
  INFO(saved_optimizer.name(), " lr ", rate);
  CHECK_THROWS_WITH_AS(load_into(target, in, static_cast<Optimizer<T>*>(&optimizer)),
                       doctest::Contains("learning rate"), FormatError);
  CHECK(state_values(target) == before);
  CHECK(optimizer_values<T>(optimizer) == optimizer_before);
  ++g_bad_inputs;
}

}  // namespace

TEST_CASE("a learning rate the scalar type cannot hold fails before anything is written") {
  // Issue 18: a float file with lr 1e39 (finite as f64, inf as float) passed every check, then
  // load_into copied the weights and the optimizer state before set_learning_rate refused it.
  for (double rate : {1e39, 3.5e38, 1e300, std::numeric_limits<double>::infinity(), -1e-3,
                      std::numeric_limits<double>::quiet_NaN()}) {
    check_bad_rate_changes_nothing<float, Adam<float>>(AdamOptions(1e-3).amsgrad(true), rate);
    check_bad_rate_changes_nothing<float, AdamW<float>>(AdamWOptions(1e-3), rate);
    check_bad_rate_changes_nothing<float, SGD<float>>(SGDOptions(0.1).momentum(0.9), rate);
    check_bad_rate_changes_nothing<float, RMSprop<float>>(RMSpropOptions(1e-2), rate);
    check_bad_rate_changes_nothing<float, Adagrad<float>>(AdagradOptions(1e-2), rate);
  }
  for (double rate : {std::numeric_limits<double>::infinity(), -1.0})
    check_bad_rate_changes_nothing<double, Adam<double>>(AdamOptions(1e-3), rate);
  // A double file may hold a learning rate that only a double can: it loads.
  Generator gen(1);
  Sequential<double> model(2);
  model.add(Dense<double>(2, 2, gen));
  SGD<double> sgd(model.parameters(), SGDOptions(0.1));
  std::istringstream in(with_learning_rate(to_bytes(model, static_cast<Optimizer<double>*>(&sgd)),
                                           sgd.name(), 1e300),
                        std::ios::binary);
  load_into(model, in, static_cast<Optimizer<double>*>(&sgd));
  CHECK(sgd.learning_rate() == 1e300);
}

// -------------------------------------------------------- files of the previous release

namespace {

#ifdef DROPNET_FIXTURES_DIR
const fs::path fixtures_dir = DROPNET_FIXTURES_DIR;
#else
const fs::path fixtures_dir = fs::path(__FILE__).parent_path() / "fixtures";
#endif

/// The predictions make_v1_fixtures wrote: %a hex floats, one a line, column-major.
std::vector<double> read_hex_floats(const fs::path& path) {
  std::ifstream in(path);
  REQUIRE_MESSAGE(in, path.string(), " not found");
  std::vector<double> values;
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) values.push_back(std::strtod(line.c_str(), nullptr));
  return values;
}

/// Loads fixture `name`, predicts the fixture's inputs (5 columns of normal<T>() from
/// Generator(3)) and compares within the activation kernels' rounding; then resumes its optimizer
/// with load_into.
template <class T, class Opt, class Options>
void check_fixture(const std::string& name, const Options& options) {
  INFO(name);
  const std::string path = (fixtures_dir / (name + ".dnm")).string();
  Sequential<T> model = load<T>(path);
  Generator data(3);
  const Matrix<T> x = random_matrix<T>(model.input_features(), 5, data);
  const Matrix<T> predicted = predict(model, x);
  const std::vector<double> expected = read_hex_floats(fixtures_dir / (name + ".predictions.txt"));
  REQUIRE(static_cast<std::size_t>(predicted.size()) == expected.size());
  Matrix<T> want(predicted.rows(), predicted.cols());
  for (Index i = 0; i < want.size(); ++i) want.data()[i] = static_cast<T>(expected[std::size_t(i)]);
  // The weights load bit for bit; the outputs differ from the previous release's only by the
  // rounding of the activation and BatchNorm kernels it replaced (Eigen's, a few ulp apart:
  // test_simd's bounds), which a handful of layers amplify at most by their weights' size.
  const T tolerance = T(16) * std::numeric_limits<T>::epsilon();  // measured: 1 ulp
  const T difference = (predicted - want).cwiseAbs().maxCoeff();
  MESSAGE(name, ": largest difference from the previous release's outputs ", double(difference));
  CHECK(difference <= tolerance * std::max(T(1), want.cwiseAbs().maxCoeff()));

  Opt optimizer(model.parameters(), options);
  load_into(model, path, static_cast<Optimizer<T>*>(&optimizer));
  CHECK(optimizer.step_count() == 8);  // 2 epochs of 4 batches
  CHECK(bit_identical(predict(model, x), predicted));  // resuming changed no weight
}

}  // namespace

TEST_CASE("a model file saved by the previous release loads and predicts what it predicted") {
  // The fixtures' predictions came from a default-flags build of the previous release, whose
  // products were Eigen's (SSE2): the baseline level computes exactly those products. Faster
  // levels round differently, within test_dispatch's bound.
  const test::SimdLevelScope previous_release(SimdLevel::baseline);
  check_fixture<float, Adam<float>>("dense_float_v1", AdamOptions(1e-2));
  check_fixture<double, SGD<double>>("conv_double_v1", SGDOptions(1e-2).momentum(0.9));
}

// ------------------------------------------------------------------ where a save writes

namespace {

std::string file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

Sequential<float> tiny_model(std::uint64_t seed) {
  Generator gen(seed);
  Sequential<float> model(3);
  model.add(Dense<float>(3, 2, gen));
  return model;
}

/// A pid no process has: a child that has exited and been reaped.
long dead_pid() {
  const pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  int status = 0;
  ::waitpid(child, &status, 0);
  return static_cast<long>(child);
}

}  // namespace

TEST_CASE("saving onto a symbolic link replaces the link's target and keeps the link") {
  ScratchDir dir;
  Sequential<float> first = tiny_model(1), second = tiny_model(2);
  save(first, dir.file("real.dnm"));
  fs::create_symlink("real.dnm", dir.file("link.dnm"));         // relative
  fs::create_symlink(dir.file("link.dnm"), dir.file("chain.dnm"));  // absolute, to a link
  fs::create_symlink("later.dnm", dir.file("dangling.dnm"));
  save(second, dir.file("chain.dnm"));
  CHECK(fs::is_symlink(dir.file("chain.dnm")));
  CHECK(fs::is_symlink(dir.file("link.dnm")));
  CHECK(file_bytes(dir.file("real.dnm")) == to_bytes(second));
  save(first, dir.file("dangling.dnm"));  // creates what the link names, as `>` would
  CHECK(fs::is_symlink(dir.file("dangling.dnm")));
  CHECK(file_bytes(dir.file("later.dnm")) == to_bytes(first));
  std::vector<std::string> left = dir.entries();
  std::sort(left.begin(), left.end());
  CHECK(left == std::vector<std::string>{"chain.dnm", "dangling.dnm", "later.dnm", "link.dnm",
                                         "real.dnm"});
  // A loop of links is refused, and nothing is created.
  fs::create_symlink("loop_b", dir.file("loop_a"));
  fs::create_symlink("loop_a", dir.file("loop_b"));
  CHECK_THROWS_WITH_AS(save(first, dir.file("loop_a")), doctest::Contains("too many symbolic links"),
                       FormatError);
  CHECK(dir.entries().size() == 7);
  g_bad_inputs += 1;
}

TEST_CASE("saving over a file keeps its permission bits; a new file gets 0666 less the umask") {
  ScratchDir dir;
  Sequential<float> model = tiny_model(1);
  const auto mode_of = [](const std::string& path) {
    struct stat st {};
    REQUIRE(::stat(path.c_str(), &st) == 0);
    return st.st_mode & 07777;
  };
  const mode_t umask_now = ::umask(022);
  save(model, dir.file("new.dnm"));
  CHECK(mode_of(dir.file("new.dnm")) == 0644);
  for (mode_t mode : {mode_t{0600}, mode_t{0640}, mode_t{0666}, mode_t{0755}, mode_t{0400}}) {
    INFO(mode);
    ::chmod(dir.file("new.dnm").c_str(), mode);
    save(model, dir.file("new.dnm"));
    CHECK(mode_of(dir.file("new.dnm")) == mode);
  }
  ::umask(umask_now);
}

TEST_CASE("a file name of NAME_MAX bytes saves: the temporary's name stays short") {
  ScratchDir dir;
  Sequential<float> model = tiny_model(1);
  const long name_max = ::pathconf(dir.file("").c_str(), _PC_NAME_MAX);
  REQUIRE(name_max >= 100);
  const std::string name = std::string(static_cast<std::size_t>(name_max) - 4, 'n') + ".dnm";
  save(model, dir.file(name));
  CHECK(file_bytes(dir.file(name)) == to_bytes(model));
  save(model, dir.file(name));  // and again, over the existing file
  CHECK(dir.entries() == std::vector<std::string>{name});
  CHECK(detail::temporary_name(dir.file(name), 2147483647L, 99).filename().string().size() < 110);
}

TEST_CASE("a save removes the stale temporaries of its target, and only those") {
  ScratchDir dir;
  Sequential<float> model = tiny_model(1);
  const std::string target = dir.file("model.dnm");
  const auto temp_of = [&](const std::string& file, long pid, int n) {
    return detail::temporary_name(dir.file(file), pid, n).filename().string();
  };
  const long gone = dead_pid(), alive = static_cast<long>(::getppid());
  const std::vector<std::string> stale = {temp_of("model.dnm", gone, 0), temp_of("model.dnm", gone, 7)};
  const std::vector<std::string> kept = {
      temp_of("model.dnm", alive, 0),          // its writer may still be writing
      temp_of("other.dnm", gone, 0),           // another target's
      temp_of("model.dnm", gone, 1) + ".bak",  // not the pattern
      "model.dnm.tmp.12.34.0",                 // the previous release's pattern
      temp_of("model.dnm", gone, 2)};          // locked: a writer on another host
  for (const auto& name : stale) std::ofstream(dir.file(name)) << "partial";
  for (const auto& name : kept) std::ofstream(dir.file(name)) << "partial";
  const int locked = ::open(dir.file(kept.back()).c_str(), O_RDONLY);
  REQUIRE(::flock(locked, LOCK_EX) == 0);

  save(model, target);
  ::close(locked);
  std::vector<std::string> left = dir.entries();
  std::sort(left.begin(), left.end());
  std::vector<std::string> expected = kept;
  expected.push_back("model.dnm");
  std::sort(expected.begin(), expected.end());
  CHECK(left == expected);
  CHECK(file_bytes(target) == to_bytes(model));
  g_bad_inputs += 5;
}

TEST_CASE("kill -9 during saves: the next save cleans what the killed ones left") {
  ScratchDir dir;
  const std::string target = dir.file("big.dnm");
  Generator gen(2);
  Sequential<double> big(200);
  big.add(Dense<double>(200, 2000, gen));  // 3.2 MB: a save takes long enough to be caught
  int leftovers = 0;
  for (int round = 0; round < 6; ++round) {
    const pid_t child = ::fork();
    if (child == 0) {
      for (;;) save(big, target);
    }
    ::usleep(static_cast<useconds_t>(20000 + 7000 * round));
    ::kill(child, SIGKILL);
    int status = 0;
    ::waitpid(child, &status, 0);
    leftovers += static_cast<int>(dir.entries().size()) - (fs::exists(target) ? 1 : 0);
  }
  MESSAGE(leftovers, " temporaries left by 6 kill -9 (summed over rounds)");
  save(big, target);
  CHECK(dir.entries() == std::vector<std::string>{"big.dnm"});
  CHECK(file_bytes(target) == to_bytes(big));
}

TEST_CASE("bad-input count for tests/README.md") {
  MESSAGE("test_model_file: ", g_bad_inputs, " bad inputs tried");
  CHECK(g_bad_inputs > 0);
}
