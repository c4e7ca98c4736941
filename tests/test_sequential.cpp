// Sequential: shapes, summary, forward/backward, and finite-difference gradient checks of Dense
// with every activation under every loss.

#include <doctest/doctest.h>

#include <dropnet/dropnet.hpp>
#include <stdexcept>
#include <string>

using namespace dropnet;

namespace {

Matrix<double> random_matrix(Index rows, Index cols, Generator& gen, double scale = 1.0) {
  Matrix<double> m(rows, cols);
  for (Index i = 0; i < m.size(); ++i) m.data()[i] = gen.normal<double>(0.0, scale);
  return m;
}

Labels random_labels(Index count, Index classes, Generator& gen) {
  Labels labels(count);
  for (Index i = 0; i < count; ++i) labels(i) = static_cast<int>(gen.below(std::uint64_t(classes)));
  return labels;
}

template <class Activation>
void check_dense_gradient(Activation activation = {}) {
  Generator gen(11);
  Sequential<double> model(5);
  model.add(Dense<double, Activation>(5, 7, gen, Init::xavier_normal, activation));
  model.add(Dense<double>(7, 3, gen));
  const Matrix<double> x = random_matrix(5, 4, gen);
  const Labels y = random_labels(4, 3, gen);
  GradientCheckOptions options;
  options.check_input = true;
  const auto result = gradient_check(model, SoftmaxCrossEntropy<double>(), x, y, gen, options);
  INFO(std::string(Activation::kind), ": worst ", result.worst, " analytic ", result.worst_analytic,
       " numeric ", result.worst_numeric);
  CHECK(result.entries_checked == 5 * 7 + 7 + 7 * 3 + 3 + 5 * 4);
  CHECK(result.max_relative_error <= 1e-6);
}

}  // namespace

TEST_CASE("summary of the chapter's 784-128-64-10 MLP reports 109,386 parameters") {
  Generator gen(1);
  Sequential<float> model(784);
  model.add(Dense<float, ReLU>(784, 128, gen));
  model.add(Dense<float, ReLU>(128, 64, gen));
  model.add(Dense<float>(64, 10, gen));
  CHECK(model.parameter_count() == 109386);
  const std::string summary = model.summary();
  CHECK(summary.find("109,386") != std::string::npos);
  CHECK(summary.find("Dense(784->128, ReLU)") != std::string::npos);
  CHECK(model.output_features() == 10);
  CHECK(model.layer_output_rows(0) == 128);
  CHECK(model.layer_output_rows(1) == 64);
  CHECK(model.layer_output_rows(2) == 10);
  CHECK_THROWS_AS(model.layer_output_rows(3), std::out_of_range);
}

TEST_CASE("Dense gradients match finite differences for every activation") {
  check_dense_gradient<Identity>();
  check_dense_gradient<ReLU>();
  check_dense_gradient<LeakyReLU>(LeakyReLU(0.1));
  check_dense_gradient<ELU>(ELU(0.7));
  check_dense_gradient<SELU>();
  check_dense_gradient<Sigmoid>();
  check_dense_gradient<Tanh>();
  check_dense_gradient<Swish>();
  check_dense_gradient<GELU>();
  check_dense_gradient<GELUTanh>();
  check_dense_gradient<Softplus>();
  check_dense_gradient<Softmax>();
}

TEST_CASE("standalone activation layers back-propagate like the fused ones") {
  Generator gen(3);
  Sequential<double> model(4);
  model.add(Dense<double>(4, 6, gen));
  model.add(ActivationLayer<double, Tanh>());
  model.add(Dense<double>(6, 2, gen));
  model.add(ActivationLayer<double, Softmax>());
  const Matrix<double> x = random_matrix(4, 3, gen);
  Matrix<double> target = Matrix<double>::Constant(2, 3, 0.5);
  GradientCheckOptions options;
  options.check_input = true;
  const auto result = gradient_check(model, MeanSquaredError<double>(), x, target, gen, options);
  INFO(result.worst);
  CHECK(result.max_relative_error <= 1e-6);
}

TEST_CASE("every loss back-propagates through a network") {
  Generator gen(5);
  Sequential<double> model(3);
  model.add(Dense<double, Tanh>(3, 5, gen));
  model.add(Dense<double>(5, 4, gen));
  const Matrix<double> x = random_matrix(3, 6, gen);
  GradientCheckOptions options;
  options.check_input = true;

  SUBCASE("mse") {
    const auto r = gradient_check(model, MeanSquaredError<double>(), x, random_matrix(4, 6, gen), gen, options);
    CHECK(r.max_relative_error <= 1e-6);
  }
  SUBCASE("softmax cross-entropy with labels and smoothing") {
    const auto r = gradient_check(model, SoftmaxCrossEntropy<double>(0.1), x, random_labels(6, 4, gen), gen, options);
    CHECK(r.max_relative_error <= 1e-6);
  }
  SUBCASE("softmax cross-entropy with probability targets") {
    Matrix<double> q = random_matrix(4, 6, gen).array().exp();
    q.array().rowwise() /= q.colwise().sum().array();
    const auto r = gradient_check(model, SoftmaxCrossEntropy<double>(0.2), x, q, gen, options);
    CHECK(r.max_relative_error <= 1e-6);
  }
  SUBCASE("binary cross-entropy from logits") {
    Matrix<double> t = (random_matrix(4, 6, gen).array() > 0).cast<double>();
    const auto r = gradient_check(model, BinaryCrossEntropyWithLogits<double>(), x, t, gen, options);
    CHECK(r.max_relative_error <= 1e-6);
  }
}

TEST_CASE("L1/L2 penalties enter the loss and the gradient") {
  Generator gen(9);
  Sequential<double> model(3);
  model.add(Dense<double, Tanh>(3, 4, gen)).with_l2(0.05);
  model.add(Dense<double>(4, 2, gen)).with_l1(0.03);
  const Matrix<double> x = random_matrix(3, 5, gen);
  const auto r = gradient_check(model, SoftmaxCrossEntropy<double>(), x, random_labels(5, 2, gen), gen);
  CHECK(r.max_relative_error <= 1e-6);
  CHECK(model.penalty() > 0.0);
}

TEST_CASE("shape mismatches are rejected with the layer's name and leave the model unchanged") {
  Generator gen(2);
  Sequential<float> model(784);
  model.add(Dense<float, ReLU>(784, 120, gen));
  try {
    model.add(Dense<float>(100, 10, gen));
    FAIL("expected InvalidArgument");
  } catch (const InvalidArgument& e) {
    const std::string message = e.what();
    CHECK(message.find("Dense(100->10") != std::string::npos);
    CHECK(message.find("120") != std::string::npos);
    CHECK(message.find("100") != std::string::npos);
  }
  CHECK(model.size() == 1);
  CHECK_THROWS_AS(model.forward(Matrix<float>::Zero(700, 2), Mode::eval), InvalidArgument);
  CHECK_THROWS_AS(model.forward(Matrix<float>::Zero(784, 0), Mode::eval), InvalidArgument);
  CHECK_THROWS_WITH_AS(Dense<float>(0, 3, gen), doctest::Contains("in=0"), InvalidArgument);
  CHECK_THROWS_AS(Sequential<float>().forward(Matrix<float>::Zero(1, 1), Mode::eval), InvalidArgument);
}

TEST_CASE("backward before forward and gradients of the wrong shape are rejected") {
  Generator gen(2);
  Sequential<double> model(3);
  model.add(Dense<double>(3, 2, gen));
  CHECK_THROWS_AS(model.backward(Matrix<double>::Zero(2, 1)), InvalidArgument);
  model.forward(Matrix<double>::Zero(3, 4), Mode::train, gen);
  CHECK_THROWS_WITH_AS(model.backward(Matrix<double>::Zero(2, 3)), doctest::Contains("Dense(3->2"), InvalidArgument);
}

TEST_CASE_TEMPLATE("forward works in float and double", T, float, double) {
  Generator gen(4);
  Sequential<T> model(2);
  model.add(Dense<T, ReLU>(2, 3, gen));
  model.add(Dense<T>(3, 1, gen));
  Matrix<T> x(2, 2);
  x << 1, 2, 3, 4;
  const Matrix<T>& y = model.forward(x, Mode::eval);
  CHECK(y.rows() == 1);
  CHECK(y.cols() == 2);
  CHECK(y.allFinite());
}
