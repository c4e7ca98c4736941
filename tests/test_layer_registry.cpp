// LayerRegistry: every registered kind round-trips through save and load (walked from the
// registry itself, so no list of layers is kept here); each layer charges the load budget
// exactly what its constructor allocates; files saved by the previous release still load and
// predict bit for bit; parameter accessors never move a buffer an optimizer points into.

#include <doctest/doctest.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <dropnet/dropnet.hpp>

#include "test_data.hpp"
#include <dropnet/io/layer_registry.hpp>

using namespace dropnet;
using test::normal_matrix;

namespace {

/// Bit for bit, so that -0.0 differs from 0.0 and NaN equals itself.
bool same_bits(double a, double b) { return std::memcmp(&a, &b, sizeof a) == 0; }

bool identical_configs(const LayerConfig& a, const LayerConfig& b) {
  if (a.kind != b.kind || a.strings != b.strings || a.numbers.size() != b.numbers.size())
    return false;
  for (std::size_t i = 0; i < a.numbers.size(); ++i)
    if (a.numbers[i].first != b.numbers[i].first ||
        !same_bits(a.numbers[i].second, b.numbers[i].second))
      return false;
  return true;
}

template <class T>
bool identical_matrices(const Matrix<T>& a, const Matrix<T>& b) {
  // memcmp's pointers must not be null, which an empty matrix's data() is.
  return a.rows() == b.rows() && a.cols() == b.cols() &&
         (a.size() == 0 ||
          std::memcmp(a.data(), b.data(), sizeof(T) * static_cast<std::size_t>(a.size())) == 0);
}

/// The registered kinds without an example: each must fail the walk below.
template <class T>
std::vector<std::string> kinds_without_example(const LayerRegistry<T>& registry) {
  std::vector<std::string> missing;
  for (const auto& row : registry.rows())
    if (!row.example.make || row.example.input_rows <= 0) missing.push_back(row.kind);
  return missing;
}

/// The outputs of `model` for `x` in `mode`, with a generator of fixed seed (Gaussian
/// DropConnect inference and the dropout family draw noise).
template <class T>
Matrix<T> outputs(Sequential<T>& model, const Matrix<T>& x, Mode mode) {
  Generator gen(11);
  return model.forward(x, mode, gen);
}

template <class T>
void round_trip_every_kind() {
  const LayerRegistry<T> registry = LayerRegistry<T>::builtin();
  CHECK(kinds_without_example(registry).empty());
  for (const auto& row : registry.rows()) {
    CAPTURE(row.kind);
    REQUIRE(row.example.make);
    Generator gen(7);
    Sequential<T> model(row.example.input_rows);
    model.add(row.example.make(gen));
    CHECK(model.layer(0).config().kind == row.kind);
    CHECK(model.layer(0).kind() == row.kind);
    // A few train-mode passes, so statistics (BatchNorm) leave their initial values.
    const Matrix<T> x = normal_matrix<T>(row.example.input_rows, 4, gen);
    for (int pass = 0; pass < 3; ++pass) model.forward(x, Mode::train, gen);

    std::stringstream file;
    save(model, file);
    Sequential<T> loaded = load<T>(file, registry);
    REQUIRE(loaded.size() == 1);
    CHECK(identical_configs(loaded.layer(0).config(), model.layer(0).config()));
    const ModelState<T> saved_state(model), loaded_state(loaded);
    Vector<T> saved_values, loaded_values;
    saved_state.pack_values(saved_values);
    loaded_state.pack_values(loaded_values);
    CHECK(identical_matrices<T>(loaded_values, saved_values));
    for (const Mode mode : {Mode::eval, Mode::mc_sample})
      CHECK(identical_matrices<T>(outputs(loaded, x, mode), outputs(model, x, mode)));
  }
}

}  // namespace

TEST_CASE_TEMPLATE("every registered kind saves, loads and predicts bit for bit", T, float,
                   double) {
  round_trip_every_kind<T>();
}

TEST_CASE("a registered kind without an example fails the walk") {
  auto registry = LayerRegistry<float>::builtin();
  registry.add("NoExample", Dropout<float>::from_config);
  CHECK(kinds_without_example(registry) == std::vector<std::string>{"NoExample"});
  CHECK(registry.contains("NoExample"));
  CHECK(registry.kinds().size() == LayerRegistry<float>::builtin().kinds().size() + 1);
}

TEST_CASE_TEMPLATE("from_config charges exactly what the constructor allocates", T, float,
                   double) {
  SUBCASE("BatchNorm: ten per-channel and four per-row vectors") {
    const LayerConfig config = BatchNorm<T>(2, 3).config();
    const std::uint64_t expected = 10 * 2 + 4 * 6;
    CHECK(BatchNorm<T>::construction_elements(2, 3) == expected);
    ElementBudget exact(expected);
    CHECK(BatchNorm<T>::from_config(config, exact)->config().kind == "BatchNorm");
    CHECK(exact.left() == 0);
    ElementBudget short_by_one(expected - 1);
    CHECK_THROWS_AS(BatchNorm<T>::from_config(config, short_by_one), FormatError);
  }
  SUBCASE("Dense: W, dW (out x in), b, db (out)") {
    Generator gen(1);
    ElementBudget budget(1000);
    Dense<T, ReLU>::from_config(Dense<T, ReLU>(3, 4, gen).config(), budget);
    CHECK(budget.left() == 1000 - 2 * 4 * (3 + 1));
  }
  SUBCASE("Conv2D: the patch buffers only where the convolution is not pointwise") {
    Generator gen(1);
    ElementBudget pointwise(1000), patched(1000);
    Conv2D<T>::from_config(Conv2D<T>(ImageShape{2, 4, 4}, 3, 1, gen).config(), pointwise);
    CHECK(pointwise.left() == 1000 - 2 * 3 * (2 + 1));
    Conv2D<T>::from_config(Conv2D<T>(ImageShape{2, 4, 4}, 3, 3, gen).config(), patched);
    CHECK(patched.left() == 1000 - 2 * 3 * (18 + 1) - 2 * 4 * 18);  // OH*OW = 2*2
  }
  SUBCASE("MaxPool2D: the first pixel of each output's window; AvgPool2D: nothing") {
    ElementBudget max_budget(100), avg_budget(100);
    MaxPool2D<T>::from_config(MaxPool2D<T>(ImageShape{2, 4, 4}, 2).config(), max_budget);
    CHECK(max_budget.left() == 100 - 2 * 2 * 2);
    AvgPool2D<T>::from_config(AvgPool2D<T>(ImageShape{2, 4, 4}, 2).config(), avg_budget);
    CHECK(avg_budget.left() == 100);
  }
}

TEST_CASE("assigning through a parameter accessor copies in place: the optimizer sees it") {
  // Before: dense.weight() = Matrix(...) moved a new buffer in, and the next step() read and
  // wrote the freed one (AddressSanitizer: heap-use-after-free).
  Generator gen(2);
  Dense<double> dense(3, 2, gen);
  SGD<double> sgd(dense.parameters(), SGDOptions(0.5));
  const double* before = dense.weight().data();
  Matrix<double> w(2, 3);
  w << 1, 2, 3, 4, 5, 6;
  dense.weight() = Matrix<double>(w);  // a temporary: the old move-assignment hazard
  dense.bias() = Vector<double>::Constant(2, -1.0);
  CHECK(dense.weight().data() == before);
  const Matrix<double> x = Matrix<double>::Identity(3, 3);
  dense.forward(x, Mode::train, nullptr);
  dense.backward(Matrix<double>::Ones(2, 3), false);  // dW = 1 1^T, db = (3, 3)
  sgd.step();
  const Dense<double>& after = dense;
  CHECK(after.weight() == (w.array() - 0.5).matrix());
  CHECK(after.bias() == Vector<double>::Constant(2, -1.0 - 0.5 * 3));
}

TEST_CASE("assigning a value of another shape throws, naming the layer and both shapes") {
  Generator gen(2);
  Dense<float, ReLU> dense(3, 2, gen);
  const Matrix<float> kept = std::as_const(dense).weight();
  try {
    dense.weight() = Matrix<float>::Zero(3, 2);
    FAIL("no exception");
  } catch (const InvalidArgument& e) {
    const std::string what = e.what();
    CHECK(what.find("Dense(3->2, ReLU)") != std::string::npos);
    CHECK(what.find("weight has shape 3x2, expected 2x3") != std::string::npos);
  }
  CHECK(std::as_const(dense).weight() == kept);
  CHECK_THROWS_AS(dense.bias() = Vector<float>::Zero(3), InvalidArgument);

  DropConnectDense<float> drop_connect(3, 2, 0.5, gen);
  CHECK_THROWS_AS(drop_connect.weight() = Matrix<float>::Zero(2, 2), InvalidArgument);
  Conv2D<float> conv(ImageShape{1, 3, 3}, 2, 2, gen);
  CHECK_THROWS_AS(conv.bias() = Vector<float>::Zero(1), InvalidArgument);
  BatchNorm<float> bn(4);
  for (auto assign : {+[](BatchNorm<float>& b) { b.gamma() = Vector<float>::Ones(3); },
                      +[](BatchNorm<float>& b) { b.beta() = Vector<float>::Ones(3); },
                      +[](BatchNorm<float>& b) { b.running_mean() = Vector<float>::Ones(3); },
                      +[](BatchNorm<float>& b) { b.running_var() = Vector<float>::Ones(3); }})
    CHECK_THROWS_WITH_AS(assign(bn), doctest::Contains("BatchNorm(4)"), InvalidArgument);
  bn.running_var() = Vector<float>::Constant(4, 2.0f);  // the right shape: copied
  CHECK(std::as_const(bn).running_var() == Vector<float>::Constant(4, 2.0f));
}

TEST_CASE("options chain and keep the layer's type") {
  Generator gen(4);
  Dense<float, ReLU> dense(4, 3, gen);
  dense.with_l2(1e-4f).with_max_norm(3);
  static_assert(std::is_same_v<decltype(Dense<float, ReLU>(4, 3, gen).with_l2(1e-4f)),
                               Dense<float, ReLU>&>);
  static_assert(std::is_same_v<decltype(Conv2D<float>(ImageShape{1, 3, 3}, 2, 2, gen).with_l1(1)),
                               Conv2D<float>&>);
  CHECK(dense.weight_penalty().l2 == 1e-4f);
  CHECK(dense.max_norm() == 3.0f);
}
