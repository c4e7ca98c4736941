// ConcreteDropoutDense: the relaxed mask's law, the penalty by hand, gradients (including the
// learned rate's) against finite differences, config round trip, and mc_predict.

#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <dropnet/dropnet.hpp>

#include "test_data.hpp"
#include <string>

using namespace dropnet;

namespace {

/// A rows x cols matrix of standard normal draws from a generator seeded with `seed`.
Matrix<double> seeded_normal_matrix(Index rows, Index cols, std::uint64_t seed) {
  Generator gen(seed);
  return test::normal_matrix(rows, cols, gen);
}

ConcreteDropoutOptions strong(double p) {
  ConcreteDropoutOptions o;
  o.weight_regularizer = 0.05;  // large enough that both penalty terms weigh in the gradients
  o.dropout_regularizer = 0.02;
  o.initial_p = p;
  return o;
}

}  // namespace

TEST_CASE("ConcreteDropoutDense: the relaxed mask drops with probability p, scaled by 1/(1-p)") {
  // z > 1/2 exactly when logit(p) + logit(u) > 0, i.e. u > 1 - p: probability p. The input of
  // the Dense is x (1 - z) / (1 - p); with x = 1 it is the keep factor itself.
  Generator gen(1);
  const double p = 0.3;
  const Matrix<double> ones = Matrix<double>::Ones(200, 100);
  Index dropped = 0;
  double keep_sum = 0;
  const Index n = 200 * 100;
  // An identity Dense (W = I, b = 0) shows the keep factors themselves.
  ConcreteDropoutDense<double> probe(200, 200, gen, strong(p));
  auto params = probe.parameters();
  params[0].matrix_value().setIdentity();
  params[1].flat_value().setZero();
  const Matrix<double>& keep = probe.forward(ones, Mode::train, &gen);
  for (Index i = 0; i < n; ++i) {
    dropped += keep.data()[i] < 0.5 / (1 - p) ? 1 : 0;
    keep_sum += keep.data()[i];
  }
  CHECK(test::within_binomial(double(dropped), double(n), p));
  // E[1 - z] is close to 1 - p at t = 0.1 (not exactly: the relaxation is not a Bernoulli).
  CHECK(keep_sum / double(n) == doctest::Approx(1.0).epsilon(0.03));
  CHECK(probe.p() == doctest::Approx(p));
  SUBCASE("eval mode: no dropout, the Dense of the input itself") {
    const Matrix<double>& y = probe.forward(ones, Mode::eval, nullptr);
    CHECK(y == ones);
  }
  CHECK_THROWS_AS(probe.forward(ones, Mode::train, nullptr), InvalidArgument);
}

TEST_CASE("ConcreteDropoutDense: the penalty by hand") {
  Generator gen(2);
  ConcreteDropoutDense<double> layer(3, 2, gen, strong(0.2));
  auto params = layer.parameters();
  params[0].matrix_value() << 1, 2, 0, -1, 0, 3;  // ||W||^2 = 15
  // 0.05 * 15 / 0.8 + 0.02 * 3 * (0.2 log 0.2 + 0.8 log 0.8)
  const double expected = 0.05 * 15 / 0.8 + 0.02 * 3 * (0.2 * std::log(0.2) + 0.8 * std::log(0.8));
  CHECK(layer.penalty() == doctest::Approx(expected).epsilon(1e-12));
}

TEST_CASE("ConcreteDropoutDense: gradient check in double, the learned rate included") {
  for (Mode mode : {Mode::train, Mode::eval}) {
    Generator gen(5);
    Sequential<double> model(4);
    model.add(ConcreteDropoutDense<double, Tanh>(4, 5, gen, strong(0.25)));
    model.add(ConcreteDropoutDense<double>(5, 3, gen, strong(0.4)));
    const Matrix<double> x = seeded_normal_matrix(4, 6, 3);
    Labels y(6);
    y << 0, 1, 2, 0, 1, 2;
    GradientCheckOptions options;
    options.check_input = true;
    options.mode = mode;
    // A nearly dropped input (keep ~ 1e-9 at t = 0.1) has a gradient ~ 1e-10, below what a
    // finite difference of an O(1) loss resolves: compare such entries by absolute error.
    options.floor = 1e-5;  // rounding in L over h = 1e-4: ~1e-12 absolute
    const auto result = gradient_check(model, SoftmaxCrossEntropy<double>(), x, y, gen, options);
    CAPTURE(std::string(to_string(mode)));
    CAPTURE(result.worst_analytic);
    CAPTURE(result.worst_numeric);
    CAPTURE(result.worst);
    CHECK(result.max_relative_error < 1e-6);
    // Every parameter was checked, p_logit among them.
    CHECK(model.parameters().size() == 6);
    CHECK(model.parameters()[2].name == "0.ConcreteDropoutDense.p_logit");
  }
}

TEST_CASE("ConcreteDropoutDense: config round trip through from_config") {
  Generator gen(4);
  ConcreteDropoutDense<float, ReLU> layer(7, 3, gen, strong(0.15));
  const LayerConfig config = layer.config();
  CHECK(config.kind == "ConcreteDropoutDense");
  CHECK(config.number("initial_p") == 0.15);
  ElementBudget budget(1000);
  const LayerPtr<float> rebuilt = ConcreteDropoutDense<float, ReLU>::from_config(config, budget);
  CHECK(1000 - budget.left() == 2 * 3 * 8 + 2);  // W, b, dW, db, p_logit and its gradient
  CHECK(rebuilt->config().numbers == config.numbers);
  CHECK(rebuilt->config().strings == config.strings);
  // Any instantiation rebuilds the activation the config names.
  CHECK(ConcreteDropoutDense<float, Tanh>::from_config(config, budget)->config().strings ==
        config.strings);
  LayerConfig unknown = config;
  unknown.strings[0].second = "Cubic";
  CHECK_THROWS_AS((ConcreteDropoutDense<float, ReLU>::from_config(unknown, budget)), FormatError);
  LayerConfig bad = config;
  bad.numbers[0].second = 2.5;
  CHECK_THROWS_AS((ConcreteDropoutDense<float, ReLU>::from_config(bad, budget)), FormatError);
  CHECK_THROWS_AS(ConcreteDropoutDense<float>(3, 2, gen, strong(1.0)), InvalidArgument);
}

TEST_CASE("ConcreteDropoutDense: mc_predict samples it; training moves p") {
  Generator gen(6);
  Sequential<double> model(4);
  model.add(ConcreteDropoutDense<double, ReLU>(4, 8, gen, strong(0.3)));
  model.add(ConcreteDropoutDense<double>(8, 3, gen, strong(0.3)));
  const Matrix<double> x = seeded_normal_matrix(4, 20, 8);
  McDropoutOptions options;
  options.outputs = McOutputs::logits;
  const auto prediction = mc_predict(model, x, 10, gen, options);
  CHECK(prediction.variance.maxCoeff() > 0);
  CHECK(prediction.mutual_information.maxCoeff() > 0);

  // A gradient step on p_logit alone changes p in the direction the gradient says.
  Labels y = Labels::Zero(20);
  SoftmaxCrossEntropy<double> loss;
  Matrix<double> grad;
  loss.compute(model.forward(x, Mode::train, gen), y, &grad);
  model.backward(grad);
  auto& first = dynamic_cast<ConcreteDropoutDense<double, ReLU>&>(model.layer(0));
  const double before = first.p();
  auto view = model.parameters()[2];
  const double g = view.grad[0];
  view.value[0] -= 0.5 * g;
  CHECK((first.p() - before) * g < 0);
}
