// ModelState (names, order, packing, the optimizer check), train_step against fit, the checks
// fit makes before its first update, and weight-decay exclusion by parameter role.

#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <dropnet/dropnet.hpp>

#include "test_data.hpp"
#include <limits>
#include <string>
#include <vector>

using namespace dropnet;
using test::normal_matrix;

namespace {

Labels cyclic_labels(Index n, int classes) {
  Labels y(n);
  for (Index i = 0; i < n; ++i) y(i) = static_cast<int>(i % classes);
  return y;
}

/// Dense, BatchNorm (a buffer holder), Dropout, Dense: parameters, buffers and randomness.
template <class T>
Sequential<T> small_model(Generator& gen) {
  Sequential<T> model(5);
  model.add(Dense<T, ReLU>(5, 6, gen));
  model.add(BatchNorm<T>(6));
  model.add(Dropout<T>(0.2));
  model.add(Dense<T>(6, 3, gen));
  return model;
}

template <class T>
std::vector<T> values_of(Sequential<T>& model) {
  const ModelState<T> state(model);
  std::vector<T> values;
  for (const auto& v : state.tensors()) values.insert(values.end(), v.value, v.value + v.size());
  return values;
}

}  // namespace

TEST_CASE_TEMPLATE("ModelState lists parameters then buffers, named and indexed by layer", T, float,
                   double) {
  Generator gen(1);
  Sequential<T> model = small_model<T>(gen);
  const ModelState<T> state(model);
  std::vector<std::string> names;
  std::vector<Index> layers;
  for (const auto& v : state.tensors()) {
    names.push_back(v.name);
    layers.push_back(v.layer);
  }
  const std::vector<std::string> expected{
      "0.Dense.weight", "0.Dense.bias", "1.BatchNorm.gamma", "1.BatchNorm.beta",
      "3.Dense.weight", "3.Dense.bias", "1.BatchNorm.running_mean", "1.BatchNorm.running_var"};
  CHECK(names == expected);
  CHECK(layers == std::vector<Index>{0, 0, 1, 1, 3, 3, 1, 1});
  CHECK(state.parameters().size() == 6);
  CHECK(state.buffers().size() == 2);
  CHECK(state.gradient_count() == 6 * 5 + 6 + 6 + 6 + 3 * 6 + 3);
  CHECK(state.value_count() == state.gradient_count() + 12);
  CHECK(state.parameters()[0].role == ParameterRole::weight);
  CHECK(state.parameters()[1].role == ParameterRole::bias);
}

TEST_CASE_TEMPLATE("ModelState packs and unpacks values and gradients in order", T, float, double) {
  Generator gen(2);
  Sequential<T> model = small_model<T>(gen);
  const ModelState<T> state(model);
  Vector<T> packed;
  state.pack_values(packed);
  REQUIRE(packed.size() == state.value_count());
  const std::vector<T> flat = values_of(model);
  CHECK(std::equal(flat.begin(), flat.end(), packed.data()));

  // unpack writes back exactly what pack laid out, tensor by tensor.
  Vector<T> changed = packed.array() + T(1);
  state.unpack_values(changed);
  const std::vector<T> after = values_of(model);
  CHECK(std::equal(after.begin(), after.end(), changed.data()));

  // A wrong size throws before writing.
  Vector<T> short_vector = Vector<T>::Zero(state.value_count() - 1);
  CHECK_THROWS_AS(state.unpack_values(short_vector), InvalidArgument);
  CHECK(values_of(model) == after);

  Vector<T> grads = Vector<T>::LinSpaced(state.gradient_count(), T(-1), T(1));
  state.unpack_gradients(grads);
  CHECK(state.parameters()[1].grad[0] == grads(6 * 5));  // the first bias entry follows W
  Vector<T> back;
  state.pack_gradients(back);
  CHECK(back == grads);
  CHECK_THROWS_AS(state.unpack_gradients(Vector<T>::Zero(3)), InvalidArgument);
}

TEST_CASE("ModelState tells whether an optimizer updates the model's parameters") {
  Generator gen(3);
  Sequential<double> a = small_model<double>(gen), b = small_model<double>(gen);
  SGD<double> of_a(a.parameters(), SGDOptions(0.1));
  CHECK(ModelState<double>(a).is_optimized_by(of_a));
  CHECK_FALSE(ModelState<double>(b).is_optimized_by(of_a));
  CHECK_THROWS_WITH_AS(ModelState<double>(b).require_optimizer(of_a, "here"),
                       doctest::Contains("another model"), InvalidArgument);
  a.add(Dense<double>(3, 2, gen));
  CHECK_THROWS_WITH_AS(ModelState<double>(a).require_optimizer(of_a, "here"),
                       doctest::Contains("layer added after"), InvalidArgument);
}

TEST_CASE_TEMPLATE("train_step in a custom loop reproduces fit bit for bit", T, float, double) {
  Generator data(4);
  const Matrix<T> x = normal_matrix<T>(5, 40, data);
  const Labels y = cyclic_labels(40, 3);
  SoftmaxCrossEntropy<T> loss;

  Generator gen_fit(7), gen_loop(7);
  Sequential<T> by_fit = small_model<T>(gen_fit);
  Sequential<T> by_loop = small_model<T>(gen_loop);
  Adam<T> adam_fit(by_fit.parameters(), AdamOptions(1e-2));
  Adam<T> adam_loop(by_loop.parameters(), AdamOptions(1e-2));
  FitOptions<T> options;
  options.epochs = 2;
  options.batch_size = 16;  // 16, 16, 8: a short last batch
  options.shuffle = false;
  options.clip_grad_norm = 1.0;
  const History history = fit(by_fit, loss, adam_fit, x, y, gen_fit, options);

  StepOptions<T> step;
  step.clip_grad_norm = 1.0;
  double last_loss = 0;
  for (int epoch = 0; epoch < 2; ++epoch) {
    double sum = 0;
    for (Index first = 0, b = 0; first < 40; first += 16, ++b) {
      const Index count = std::min<Index>(16, 40 - first);
      const Matrix<T> bx = x.middleCols(first, count);
      const Labels by = y.segment(first, count);
      const StepResult r = train_step(by_loop, loss, adam_loop, bx, by, gen_loop, step);
      REQUIRE(r.action == NonFiniteAction::proceed);
      sum += r.loss;
    }
    last_loss = sum / 3;
  }
  CHECK(values_of(by_fit) == values_of(by_loop));
  CHECK(history.epochs.back().loss == doctest::Approx(last_loss).epsilon(1e-12));
}

TEST_CASE("compute_gradients then apply_gradients is train_step") {
  Generator data(5);
  const Matrix<double> x = normal_matrix<double>(5, 12, data);
  const Labels y = cyclic_labels(12, 3);
  SoftmaxCrossEntropy<double> loss;
  Generator g1(9), g2(9);
  Sequential<double> m1 = small_model<double>(g1), m2 = small_model<double>(g2);
  SGD<double> o1(m1.parameters(), SGDOptions(0.1).momentum(0.9));
  SGD<double> o2(m2.parameters(), SGDOptions(0.1).momentum(0.9));
  const StepResult whole = train_step(m1, loss, o1, x, y, g1);
  const StepResult first_half = compute_gradients(m2, loss, x, y, g2);
  apply_gradients(m2, o2);
  CHECK(whole.loss == first_half.loss);
  CHECK(whole.correct == first_half.correct);
  CHECK(values_of(m1) == values_of(m2));
}

TEST_CASE("train_step names the layer of a non-finite gradient") {
  Generator gen(6);
  Sequential<double> model(2);
  model.add(Dense<double>(2, 1, gen));
  MeanSquaredError<double> loss;
  SGD<double> sgd(model.parameters(), SGDOptions(0.1));
  Matrix<double> x(2, 1);
  x << std::nan(""), 1.0;  // train_step trusts its batch (fit screens the dataset)
  const Matrix<double> target = Matrix<double>::Zero(1, 1);
  CHECK_THROWS_WITH_AS(train_step(model, loss, sgd, x, target, gen),
                       doctest::Contains("layer 0 Dense"), NumericalError);
}

// The failures below were found by attacking fit's promise "bad input gets a clear error before
// any update": each one used to throw after some batches had already changed the model, or not
// at all.
TEST_CASE("fit checks everything it can before the first update") {
  Generator gen(8);
  Sequential<double> model = small_model<double>(gen);
  SGD<double> sgd(model.parameters(), SGDOptions(0.1));
  SoftmaxCrossEntropy<double> loss;
  Generator data(1);
  const Matrix<double> x = normal_matrix<double>(5, 33, data);  // 33 = 2 x 16 + 1
  const Labels y = cyclic_labels(33, 3);
  const std::vector<double> before = values_of(model);
  FitOptions<double> options;
  options.batch_size = 16;

  SUBCASE("a last batch of one sample through BatchNorm") {
    CHECK_THROWS_WITH_AS(fit(model, loss, sgd, x, y, gen, options),
                         doctest::Contains("a batch of 1 samples"), InvalidArgument);
  }
  SUBCASE("eval_batch_size 0") {
    options.eval_batch_size = 0;
    CHECK_THROWS_WITH_AS(fit(model, loss, sgd, x, y, gen, options),
                         doctest::Contains("eval_batch_size"), InvalidArgument);
  }
  SUBCASE("a null callback") {
    options.batch_size = 11;
    options.callbacks.push_back(nullptr);
    CHECK_THROWS_WITH_AS(fit(model, loss, sgd, x, y, gen, options),
                         doctest::Contains("callbacks[0] is a null pointer"), InvalidArgument);
  }
  SUBCASE("an optimizer of another model") {
    options.batch_size = 11;
    Sequential<double> other = small_model<double>(gen);
    SGD<double> wrong(other.parameters(), SGDOptions(0.1));
    CHECK_THROWS_AS(fit(model, loss, wrong, x, y, gen, options), InvalidArgument);
  }
  SUBCASE("a layer added after the optimizer was built") {
    options.batch_size = 11;
    Sequential<double> grown(5);
    grown.add(Dense<double>(5, 3, gen));
    SGD<double> early(grown.parameters(), SGDOptions(0.1));
    grown.add(Dense<double>(3, 3, gen));
    CHECK_THROWS_WITH_AS(fit(grown, loss, early, x, y, gen, options),
                         doctest::Contains("layer added after"), InvalidArgument);
  }
  CHECK(values_of(model) == before);
}

TEST_CASE("fit with a batch_size near the largest Index trains one batch per epoch") {
  Generator gen(9);
  Sequential<double> model(5);
  model.add(Dense<double>(5, 3, gen));
  SGD<double> sgd(model.parameters(), SGDOptions(0.1));
  SoftmaxCrossEntropy<double> loss;
  Generator data(2);
  const Matrix<double> x = normal_matrix<double>(5, 10, data);
  FitOptions<double> options;
  options.epochs = 1;
  options.batch_size = std::numeric_limits<Index>::max();
  const std::vector<double> before = values_of(model);
  const History h = fit(model, loss, sgd, x, cyclic_labels(10, 3), gen, options);
  REQUIRE(h.epochs.size() == 1);
  CHECK(std::isfinite(h.epochs[0].loss));
  CHECK(values_of(model) != before);
}

TEST_CASE("dense targets are screened before the first update, and by evaluate") {
  Generator gen(10);
  Sequential<double> model(4);
  model.add(Dense<double>(4, 2, gen));
  SGD<double> sgd(model.parameters(), SGDOptions(0.1));
  Generator data(3);
  const Matrix<double> x = normal_matrix<double>(4, 40, data);
  Matrix<double> target = Matrix<double>::Constant(2, 40, 0.5);
  const std::vector<double> before = values_of(model);
  FitOptions<double> options;
  options.batch_size = 8;
  options.shuffle = false;

  MeanSquaredError<double> mse;
  target(1, 37) = std::nan("");  // in the last batch: earlier batches would have updated
  CHECK_THROWS_WITH_AS(fit(model, mse, sgd, x, target, gen, options),
                       doctest::Contains("sample 37"), InvalidArgument);
  CHECK_THROWS_WITH_AS(evaluate(model, mse, x, target), doctest::Contains("not finite"),
                       InvalidArgument);
  BinaryCrossEntropyWithLogits<double> bce;
  target(1, 37) = 2.0;
  CHECK_THROWS_WITH_AS(fit(model, bce, sgd, x, target, gen, options),
                       doctest::Contains("in [0, 1]"), InvalidArgument);
  SoftmaxCrossEntropy<double> ce;
  target(1, 37) = -0.5;
  CHECK_THROWS_WITH_AS(fit(model, ce, sgd, x, target, gen, options),
                       doctest::Contains("probability"), InvalidArgument);
  CHECK(values_of(model) == before);
}

TEST_CASE_TEMPLATE("exclude_from_weight_decay spares the chosen roles, for every optimizer", T, float,
                   double) {
  // Zero gradients isolate the decay: a decayed parameter moves, an excluded one does not.
  auto run = [](auto make_optimizer, bool exclude) {
    Generator gen(11);
    Sequential<T> model(3);
    model.add(Dense<T>(3, 2, gen));
    model.add(BatchNorm<T>(2));
    const ModelState<T> state(model);
    for (const auto& p : state.parameters()) p.flat_value().setConstant(T(0.5));
    auto optimizer = make_optimizer(model.parameters());
    if (exclude) optimizer.exclude_biases_and_norms_from_weight_decay();
    optimizer.zero_grad();
    optimizer.step();
    std::vector<bool> moved;
    for (const auto& p : state.parameters()) moved.push_back(p.value[0] != T(0.5));
    return moved;  // weight, bias, scale, shift
  };
  const std::vector<bool> all{true, true, true, true}, weights_only{true, false, false, false};
  auto sgd = [](ParameterList<T> p) { return SGD<T>(std::move(p), SGDOptions(0.1).weight_decay(0.1)); };
  auto adam = [](ParameterList<T> p) { return Adam<T>(std::move(p), AdamOptions(0.1).weight_decay(0.1)); };
  auto adamw = [](ParameterList<T> p) { return AdamW<T>(std::move(p), AdamWOptions(0.1)); };
  auto rmsprop = [](ParameterList<T> p) {
    return RMSprop<T>(std::move(p), RMSpropOptions(0.1).weight_decay(0.1));
  };
  auto adagrad = [](ParameterList<T> p) {
    return Adagrad<T>(std::move(p), AdagradOptions(0.1).weight_decay(0.1));
  };
  CHECK(run(sgd, false) == all);
  CHECK(run(sgd, true) == weights_only);
  CHECK(run(adam, false) == all);
  CHECK(run(adam, true) == weights_only);
  CHECK(run(adamw, false) == all);
  CHECK(run(adamw, true) == weights_only);
  CHECK(run(rmsprop, false) == all);
  CHECK(run(rmsprop, true) == weights_only);
  CHECK(run(adagrad, false) == all);
  CHECK(run(adagrad, true) == weights_only);
}

TEST_CASE("optimizers report their kind without parsing their name") {
  Generator gen(12);
  Sequential<float> model(2);
  model.add(Dense<float>(2, 2, gen));
  CHECK(SGD<float>(model.parameters(), SGDOptions(0.1)).kind() == "SGD");
  CHECK(Adam<float>(model.parameters(), AdamOptions(0.1)).kind() == "Adam");
  CHECK(AdamW<float>(model.parameters(), AdamWOptions(0.1)).kind() == "AdamW");
  CHECK(RMSprop<float>(model.parameters(), RMSpropOptions(0.1)).kind() == "RMSprop");
  CHECK(Adagrad<float>(model.parameters(), AdagradOptions(0.1)).kind() == "Adagrad");
  CHECK(model.layer(0).kind() == "Dense");
}
