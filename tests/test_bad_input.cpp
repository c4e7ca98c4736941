// Bad inputs against public entry points that no other test file covers (see the inventory in
// tests/README.md). Each check passes a wrong shape, an empty matrix, a NaN/Inf, an
// out-of-range value or a misuse, and expects a clear exception naming where it was caught,
// with the object left usable.

#include <doctest/doctest.h>

#include <cmath>
#include <dropnet/dropnet.hpp>
#include <dropnet/io/idx.hpp>  // only its Eigen-side helpers are used: no zlib at link time
#include <limits>
#include <string>

using namespace dropnet;

namespace {

const double not_a_number = std::numeric_limits<double>::quiet_NaN();
const double inf = std::numeric_limits<double>::infinity();

int g_bad_inputs = 0;

/// Runs `f`, which must throw E whose message contains `expected`.
template <class E, class F>
void rejects(F&& f, const std::string& expected) {
  ++g_bad_inputs;
  try {
    f();
    FAIL_CHECK("accepted a bad input; expected '", expected, "'");
  } catch (const E& e) {
    CHECK_MESSAGE(std::string(e.what()).find(expected) != std::string::npos, "expected '",
                  expected, "' in '", e.what(), "'");
  }
}

}  // namespace

TEST_CASE("Sequential: bad sizes, null layers, indices, misuse") {
  rejects<InvalidArgument>([] { Sequential<float> m(-1); }, "input_features must be >= 0, got -1");
  Sequential<float> model(4);
  rejects<InvalidArgument>([&] { model.add(LayerPtr<float>()); }, "Sequential::add: null layer");
  CHECK(model.empty());
  Generator gen(1);
  model.add(Dense<float, ReLU>(4, 3, gen));
  rejects<InvalidArgument>([&] { model.add(Dense<float>(4, 2, gen)); },
                           "Sequential::add (layer 1): Dense(4->2, Identity): input has 3 features");
  CHECK(model.size() == 1);
  ++g_bad_inputs;
  CHECK_THROWS_AS(model.layer(1), std::out_of_range);
  ++g_bad_inputs;
  CHECK_THROWS_AS(model.layer(-1), std::out_of_range);
  rejects<InvalidArgument>([&] { model.backward(Matrix<float>::Zero(3, 2)); }, "called before forward");
  rejects<InvalidArgument>([&] { model.forward(Matrix<float>(4, 0), Mode::eval); }, "empty batch");
  rejects<InvalidArgument>([&] { model.forward(Matrix<float>::Zero(5, 2), Mode::eval); },
                           "input has 5 features (rows), expected 4");
  // NaN and Inf inputs are not rejected by forward (inference passes them through, as PyTorch
  // does); fit and evaluate reject them up front.
  Matrix<float> x = Matrix<float>::Zero(4, 2);
  x(0, 0) = std::numeric_limits<float>::quiet_NaN();
  ++g_bad_inputs;
  CHECK_FALSE(model.forward(x, Mode::eval).allFinite());
  CHECK(model.forward(Matrix<float>::Zero(4, 2), Mode::eval).allFinite());  // still usable
}

TEST_CASE("Dense: sizes, penalties, max-norm, shapes, misuse") {
  Generator gen(2);
  rejects<InvalidArgument>([&] { Dense<double>(3, 0, gen); }, "out=0");
  rejects<InvalidArgument>([&] { Dense<double>(-2, 3, gen); }, "in=-2");
  Dense<double, Tanh> dense(3, 2, gen);
  for (double c : {0.0, -1.0, not_a_number, inf})
    rejects<InvalidArgument>([&] { dense.with_max_norm(c); }, "max-norm must be finite and > 0");
  for (double l : {-1e-3, not_a_number, inf}) {
    rejects<InvalidArgument>([&] { dense.with_l1(l); }, "WeightPenalty");
    rejects<InvalidArgument>([&] { dense.with_l2(l); }, "WeightPenalty");
  }
  rejects<InvalidArgument>([&] { dense.backward(Matrix<double>::Zero(2, 1), true); },
                           "backward called before forward");
  rejects<InvalidArgument>([&] { dense.forward(Matrix<double>::Zero(4, 1), Mode::train, nullptr); },
                           "Dense(3->2, Tanh): input has 4 rows (features), expected 3");
  rejects<InvalidArgument>([&] { dense.forward(Matrix<double>(3, 0), Mode::train, nullptr); },
                           "empty batch");
  dense.forward(Matrix<double>::Ones(3, 5), Mode::train, nullptr);
  rejects<InvalidArgument>([&] { dense.backward(Matrix<double>::Zero(2, 4), true); },
                           "output gradient has shape 2x4, expected 2x5");
  rejects<InvalidArgument>([] { init_from_string("orthogonal"); }, "unknown initializer 'orthogonal'");
}

TEST_CASE("ActivationLayer: empty input and misuse") {
  ActivationLayer<float, Sigmoid> layer;
  rejects<InvalidArgument>([&] { layer.forward(Matrix<float>(0, 3), Mode::eval, nullptr); },
                           "Sigmoid: empty input (0x3)");
  rejects<InvalidArgument>([&] { layer.backward(Matrix<float>::Zero(2, 3), true); },
                           "backward called before forward");
  layer.forward(Matrix<float>::Zero(2, 3), Mode::eval, nullptr);
  rejects<InvalidArgument>([&] { layer.backward(Matrix<float>::Zero(3, 3), true); },
                           "output gradient has shape 3x3, expected 2x3");
}

TEST_CASE("predict and evaluate: batch sizes, empty data, shapes, labels, NaN") {
  Generator gen(3);
  Sequential<double> model(3);
  model.add(Dense<double>(3, 4, gen));
  const Matrix<double> x = Matrix<double>::Ones(3, 5);
  Labels y(5);
  y << 0, 1, 2, 3, 0;
  SoftmaxCrossEntropy<double> loss;
  for (Index b : {Index{0}, Index{-1}}) {
    rejects<InvalidArgument>([&] { predict(model, x, b); }, "batch_size must be > 0");
    rejects<InvalidArgument>([&] { evaluate(model, loss, x, y, b); }, "batch_size must be > 0");
  }
  rejects<InvalidArgument>([&] { predict(model, Matrix<double>(3, 0)); }, "empty input");
  rejects<InvalidArgument>([&] { predict(model, Matrix<double>(Matrix<double>::Ones(2, 5))); }, "input has 2 features");
  rejects<InvalidArgument>([&] { evaluate(model, loss, Matrix<double>(3, 0), Labels(0)); },
                           "empty dataset");
  rejects<InvalidArgument>([&] { evaluate(model, loss, x, Labels(Labels::Zero(4))); },
                           "inputs have 5 samples but targets have 4");
  Labels bad = y;
  bad(2) = 4;
  rejects<InvalidArgument>([&] { evaluate(model, loss, x, bad); }, "label 4 of sample 2 is out of range");
  bad(2) = -1;
  rejects<InvalidArgument>([&] { evaluate(model, loss, x, bad); }, "label -1");
  Matrix<double> with_inf = x;
  with_inf(1, 1) = inf;
  rejects<InvalidArgument>([&] { evaluate(model, loss, with_inf, y); }, "inputs contain NaN or Inf");
  CHECK(predict(model, x).allFinite());
}

TEST_CASE("fit: non-finite options and bad policies") {
  Generator gen(4);
  Sequential<double> model(2);
  model.add(Dense<double>(2, 2, gen));
  SGD<double> sgd(model.parameters(), SGDOptions(0.1));
  SoftmaxCrossEntropy<double> loss;
  const Matrix<double> x = Matrix<double>::Ones(2, 4);
  Labels y(4);
  y << 0, 1, 0, 1;
  FitOptions<double> options;
  options.nonfinite.max_consecutive_skips = -3;
  rejects<InvalidArgument>([&] { fit(model, loss, sgd, x, y, gen, options); },
                           "max_consecutive_skips must be >= 1, got -3");
  options = {};
  options.clip_grad_norm = -1.0;
  rejects<InvalidArgument>([&] { fit(model, loss, sgd, x, y, gen, options); },
                           "gradient clipping thresholds must be finite and > 0");
  options.clip_grad_norm = not_a_number;
  rejects<InvalidArgument>([&] { fit(model, loss, sgd, x, y, gen, options); }, "gradient clipping");
  options = {};
  options.epochs = -1;
  rejects<InvalidArgument>([&] { fit(model, loss, sgd, x, y, gen, options); }, "epochs must be >= 0");
  CHECK(sgd.step_count() == 0);
}

TEST_CASE("optimizers: learning rate, step count, parameter lists") {
  Generator gen(5);
  Sequential<float> model(2);
  model.add(Dense<float>(2, 2, gen));
  model.add(BatchNorm<float>(2));
  Adam<float> adam(model.parameters());
  for (float lr : {-1.0f, std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()})
    rejects<InvalidArgument>([&] { adam.set_learning_rate(lr); }, "lr must be finite and >= 0");
  rejects<InvalidArgument>([&] { adam.set_step_count(-1); }, "step count must be >= 0, got -1");
  rejects<InvalidArgument>([] { SGD<float>(ParameterList<float>{}, SGDOptions(0.1)); },
                           "no parameters to optimize");
  // Buffers have no gradient: an optimizer over them is a mistake, caught at construction.
  rejects<InvalidArgument>([&] { Adam<float>(model.buffers()); }, "has no value or gradient");
  rejects<InvalidArgument>([&] { SGD<float>(model.parameters(), SGDOptions(-0.1)); }, "lr");
  CHECK(adam.learning_rate() == doctest::Approx(1e-3));
}

TEST_CASE("gradient_check rejects a non-positive step") {
  Generator gen(6);
  Sequential<double> model(2);
  model.add(Dense<double>(2, 2, gen));
  SoftmaxCrossEntropy<double> loss;
  Labels y(1);
  y << 1;
  GradientCheckOptions options;
  for (double step : {0.0, -1e-4}) {
    options.step = step;
    rejects<InvalidArgument>([&] { gradient_check(model, loss, Matrix<double>(Matrix<double>::Ones(2, 1)), y, gen, options); },
                             "step must be > 0");
  }
}

TEST_CASE("LayerRegistry and ElementBudget") {
  auto registry = LayerRegistry<float>::builtin();
  rejects<InvalidArgument>([&] { registry.add("", LayerRegistry<float>::Factory{}); }, "needs a kind name");
  rejects<InvalidArgument>([&] { registry.add("X", nullptr); }, "needs a kind name and a factory");
  ElementBudget budget(10);
  budget.take(6, "six");
  rejects<FormatError>([&] { budget.take(5, "five"); }, "five would allocate 5 elements; the file can justify only 4");
  CHECK(budget.left() == 4);
  registry.add("Null", [](const LayerConfig&, ElementBudget&) { return LayerPtr<float>(); });
  rejects<FormatError>([&] { registry.build({"Null", {}, {}}, budget); }, "the factory returned no layer");
  rejects<FormatError>([] { LayerConfig{"Dense", {}, {}}.number("in"); }, "missing field 'in'");
  rejects<FormatError>([] { LayerConfig{"Dense", {}, {}}.string("activation"); }, "missing field 'activation'");
}

TEST_CASE("normalize and PixelStandardizer: bad statistics and misuse") {
  Matrix<float> x = Matrix<float>::Ones(3, 2);
  const float fnan = std::numeric_limits<float>::quiet_NaN();
  rejects<InvalidArgument>([&] { normalize(x, fnan, 1.0f); }, "needs a finite mean");
  rejects<InvalidArgument>([&] { normalize(x, 0.0f, -1.0f); }, "stddev > 0");
  rejects<InvalidArgument>([] { PixelStandardizer<float> s(0.0f); }, "min_stddev must be > 0");
  PixelStandardizer<float> standardizer;
  rejects<InvalidArgument>([&] { standardizer.apply(x); }, "call fit first");
  rejects<InvalidArgument>([&] { standardizer.fit(Matrix<float>(3, 0)); }, "empty data");
  CHECK(x.isOnes());
}

TEST_CASE("bad-input count for tests/README.md") {
  MESSAGE("test_bad_input: ", g_bad_inputs, " bad inputs tried");
  CHECK(g_bad_inputs > 50);
}
