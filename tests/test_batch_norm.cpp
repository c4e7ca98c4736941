// BatchNorm: forward, backward and running statistics against values derived by hand, train vs
// eval, the feature and channel layouts, finite-difference gradient checks and bad input (its
// no-allocation check is in test_allocation.cpp, which instantiates the layers with the witness).

#include <doctest/doctest.h>

#include <cmath>
#include <dropnet/dropnet.hpp>
#include <limits>
#include <string>

using namespace dropnet;

namespace {

Matrix<double> random_matrix(Index rows, Index cols, Generator& gen, double scale = 1.0,
                             double shift = 0.0) {
  Matrix<double> m(rows, cols);
  for (Index i = 0; i < m.size(); ++i) m.data()[i] = shift + gen.normal<double>(0.0, scale);
  return m;
}

Labels random_labels(Index count, Index classes, Generator& gen) {
  Labels labels(count);
  for (Index i = 0; i < count; ++i) labels(i) = static_cast<int>(gen.below(std::uint64_t(classes)));
  return labels;
}

template <class T>
Matrix<T> matrix(Index rows, Index cols, std::initializer_list<double> row_major) {
  Matrix<T> m(rows, cols);
  auto it = row_major.begin();
  for (Index i = 0; i < rows; ++i)
    for (Index j = 0; j < cols; ++j) m(i, j) = static_cast<T>(*it++);
  return m;
}

template <class T>
void check_close(const Matrix<T>& actual, const Matrix<T>& expected, double tolerance) {
  REQUIRE(actual.rows() == expected.rows());
  REQUIRE(actual.cols() == expected.cols());
  for (Index i = 0; i < actual.rows(); ++i)
    for (Index j = 0; j < actual.cols(); ++j) {
      INFO("entry (", i, ", ", j, ")");
      CHECK(double(actual(i, j)) == doctest::Approx(double(expected(i, j))).epsilon(tolerance));
    }
}

template <class T>
double tolerance() {
  return std::is_same_v<T, float> ? 1e-6 : 1e-14;
}

// The hand example. Two features, a batch of 4:
//   row 0: x = 1 2 3 6   mean 3, deviations -2 -1 0 3, squares sum 14
//   row 1: x = 5 0 1 2   mean 2, deviations  3 -2 -1 0, squares sum 14
// Biased variance 14/4 = 3.5 in both rows, unbiased 14/3. With eps = 0.5 the standard deviation
// is sqrt(3.5 + 0.5) = 2, so xhat = deviation / 2:
//   row 0: xhat = -1 -0.5 0 1.5      row 1: xhat = 1.5 -1 -0.5 0
// gamma = (2, 0.5), beta = (1, -1):  y = gamma xhat + beta
//   row 0: y = -1 0 1 4              row 1: y = -0.25 -1.5 -1.25 -1
// Running statistics from (0, 1) with momentum 0.1:
//   running_mean = 0.1 * (3, 2) = (0.3, 0.2)
//   running_var  = 0.9 * 1 + 0.1 * 14/3 = 1.3666...  (both rows; the unbiased variance)
// Backward with dy row 0 = 1 0 0 0, row 1 = 0 2 0 0 (n = 4):
//   row 0: dbeta = 1, dgamma = sum dy xhat = -1, k = gamma/std = 1
//          dx = k (dy - 1/4 - xhat (-1/4)) = 0.5 -0.375 -0.25 0.125
//   row 1: dbeta = 2, dgamma = 2 * (-1) = -2, k = 0.5/2 = 0.25
//          dx = 0.25 (dy - 2/4 - xhat (-2/4)) = 0.0625 0.25 -0.1875 -0.125
// (each row of dx sums to 0: a shift of the inputs does not change the normalized output).
template <class T>
Matrix<T> hand_x() {
  return matrix<T>(2, 4, {1, 2, 3, 6, 5, 0, 1, 2});
}
template <class T>
Matrix<T> hand_dy() {
  return matrix<T>(2, 4, {1, 0, 0, 0, 0, 2, 0, 0});
}
template <class T>
void set_hand_affine(BatchNorm<T>& bn) {
  bn.gamma() << T(2), T(0.5);
  bn.beta() << T(1), T(-1);
}

/// The same values in the channel layout: 2 channels x 2 positions, a batch of 2. Channel c owns
/// rows 2c and 2c+1; its 4 values are those of row c of the hand example.
template <class T>
Matrix<T> to_channel_layout(const Matrix<T>& m) {
  Matrix<T> out(4, 2);
  for (Index c = 0; c < 2; ++c)
    for (Index k = 0; k < 4; ++k) out(2 * c + k % 2, k / 2) = m(c, k);
  return out;
}

/// x (C*S x N, channel-major) as C x (S*N): column j*S + s holds position s of sample j.
Matrix<double> channels_as_features(const Matrix<double>& x, Index channels, Index spatial) {
  Matrix<double> out(channels, spatial * x.cols());
  for (Index j = 0; j < x.cols(); ++j)
    for (Index c = 0; c < channels; ++c)
      for (Index s = 0; s < spatial; ++s) out(c, j * spatial + s) = x(c * spatial + s, j);
  return out;
}

}  // namespace

TEST_CASE_TEMPLATE(
    "BatchNorm train forward, running statistics and backward match the hand example", T, float,
    double) {
  BatchNorm<T> bn(2);
  bn.with_eps(T(0.5));
  set_hand_affine(bn);
  const Matrix<T> x = hand_x<T>();
  const Matrix<T>& y = bn.forward(x, Mode::train, nullptr);
  check_close<T>(y, matrix<T>(2, 4, {-1, 0, 1, 4, -0.25, -1.5, -1.25, -1}), tolerance<T>());
  CHECK(double(bn.running_mean()(0)) == doctest::Approx(0.3).epsilon(tolerance<T>()));
  CHECK(double(bn.running_mean()(1)) == doctest::Approx(0.2).epsilon(tolerance<T>()));
  for (Index c = 0; c < 2; ++c)
    CHECK(double(bn.running_var()(c)) ==
          doctest::Approx(0.9 + 0.1 * 14.0 / 3.0).epsilon(tolerance<T>()));

  const Matrix<T>& dx = bn.backward(hand_dy<T>(), true);
  check_close<T>(dx, matrix<T>(2, 4, {0.5, -0.375, -0.25, 0.125, 0.0625, 0.25, -0.1875, -0.125}),
                 tolerance<T>());
  CHECK(double(bn.beta_grad()(0)) == doctest::Approx(1.0));
  CHECK(double(bn.beta_grad()(1)) == doctest::Approx(2.0));
  CHECK(double(bn.gamma_grad()(0)) == doctest::Approx(-1.0).epsilon(tolerance<T>()));
  CHECK(double(bn.gamma_grad()(1)) == doctest::Approx(-2.0).epsilon(tolerance<T>()));
}

TEST_CASE_TEMPLATE("BatchNorm channel layout pools batch x spatial per channel", T, float, double) {
  BatchNorm<T> bn(2, 2);
  bn.with_eps(T(0.5));
  set_hand_affine(bn);
  CHECK(bn.features() == 4);
  const Matrix<T> x = to_channel_layout(hand_x<T>());
  const Matrix<T>& y = bn.forward(x, Mode::train, nullptr);
  // Same values as the feature layout, moved with the inputs; per-row statistics would differ
  // (rows 0 and 1 of this x have means 2 and 4, not 3).
  check_close<T>(y, to_channel_layout(matrix<T>(2, 4, {-1, 0, 1, 4, -0.25, -1.5, -1.25, -1})),
                 tolerance<T>());
  REQUIRE(bn.running_mean().size() == 2);
  CHECK(double(bn.running_mean()(0)) == doctest::Approx(0.3).epsilon(tolerance<T>()));
  CHECK(double(bn.running_mean()(1)) == doctest::Approx(0.2).epsilon(tolerance<T>()));
  // n = batch * spatial = 4, so the unbiased variance is again 14/3.
  CHECK(double(bn.running_var()(1)) ==
        doctest::Approx(0.9 + 0.1 * 14.0 / 3.0).epsilon(tolerance<T>()));

  const Matrix<T>& dx = bn.backward(to_channel_layout(hand_dy<T>()), true);
  check_close<T>(dx,
                 to_channel_layout(
                     matrix<T>(2, 4, {0.5, -0.375, -0.25, 0.125, 0.0625, 0.25, -0.1875, -0.125})),
                 tolerance<T>());
  CHECK(double(bn.gamma_grad()(1)) == doctest::Approx(-2.0).epsilon(tolerance<T>()));
  CHECK(double(bn.beta_grad()(1)) == doctest::Approx(2.0));
}

TEST_CASE_TEMPLATE("BatchNorm eval and mc_sample use the running statistics and update nothing", T,
                   float, double) {
  BatchNorm<T> bn(2);
  bn.with_eps(T(0.5));
  set_hand_affine(bn);
  // std = sqrt(running_var + eps) = (2, 3).
  bn.running_mean() << T(1), T(-1);
  bn.running_var() << T(3.5), T(8.5);
  const Matrix<T> x = hand_x<T>();
  // row 0: (x - 1)/2 = 0 .5 1 2.5 -> y = 2 xhat + 1 = 1 2 3 6
  // row 1: (x + 1)/3 = 2 1/3 2/3 1 -> y = 0.5 xhat - 1 = 0 -5/6 -2/3 -0.5
  const Matrix<T> expected = matrix<T>(2, 4, {1, 2, 3, 6, 0, -5.0 / 6, -2.0 / 3, -0.5});
  for (Mode mode : {Mode::eval, Mode::mc_sample}) {
    INFO(to_string(mode));
    check_close<T>(bn.forward(x, mode, nullptr), expected, tolerance<T>());
    CHECK(bn.running_mean() == matrix<T>(2, 1, {1, -1}));
    CHECK(bn.running_var() == matrix<T>(2, 1, {3.5, 8.5}));
    // The statistics are constants here: dx = gamma / std * dy = (1, 1/6) * dy.
    const Matrix<T>& dx = bn.backward(hand_dy<T>(), true);
    check_close<T>(dx, matrix<T>(2, 4, {1, 0, 0, 0, 0, 2.0 / 6, 0, 0}), tolerance<T>());
    CHECK(double(bn.gamma_grad()(0)) == doctest::Approx(0.0));  // dy . xhat = 1 * 0
    CHECK(double(bn.gamma_grad()(1)) ==
          doctest::Approx(2.0 / 3).epsilon(tolerance<T>()));  // 2 * 1/3
    CHECK(double(bn.beta_grad()(1)) == doctest::Approx(2.0));
  }
  // A single sample is fine outside training.
  CHECK(bn.forward(x.leftCols(1), Mode::eval, nullptr).cols() == 1);
}

TEST_CASE("BatchNorm running statistics follow m = 0.1 over several batches; with_keras_momentum") {
  Generator gen(7);
  BatchNorm<double> bn(3);
  double mean0 = 0.0, var0 = 1.0;
  for (int step = 0; step < 5; ++step) {
    const Matrix<double> x = random_matrix(3, 6, gen, 2.0, 1.0);
    bn.forward(x, Mode::train, nullptr);
    const double m = x.row(0).mean();
    const double unbiased = (x.row(0).array() - m).square().sum() / 5.0;
    mean0 = 0.9 * mean0 + 0.1 * m;
    var0 = 0.9 * var0 + 0.1 * unbiased;
  }
  CHECK(bn.running_mean()(0) == doctest::Approx(mean0).epsilon(1e-13));
  CHECK(bn.running_var()(0) == doctest::Approx(var0).epsilon(1e-13));

  BatchNorm<double> keras(1);
  keras.with_keras_momentum(0.99);
  CHECK(keras.momentum() == doctest::Approx(0.01));
  keras.forward(matrix<double>(1, 2, {0, 2}), Mode::train, nullptr);
  CHECK(keras.running_mean()(0) == doctest::Approx(0.01));            // 0.99 * 0 + 0.01 * 1
  CHECK(keras.running_var()(0) == doctest::Approx(0.99 + 0.01 * 2));  // unbiased var of {0, 2} = 2
}

TEST_CASE("BatchNorm output has zero mean and unit variance per channel with gamma 1, beta 0") {
  Generator gen(8);
  BatchNorm<double> bn(3, 5);
  const Matrix<double> x = random_matrix(15, 7, gen, 3.0, -2.0);
  const Matrix<double> y = channels_as_features(bn.forward(x, Mode::train, nullptr), 3, 5);
  for (Index c = 0; c < 3; ++c) {
    const double mean = y.row(c).mean();
    const double var = (y.row(c).array() - mean).square().mean();
    CHECK(std::abs(mean) < 1e-12);
    const Matrix<double> xc = channels_as_features(x, 3, 5);
    const double xvar = (xc.row(c).array() - xc.row(c).mean()).square().mean();
    CHECK(var == doctest::Approx(xvar / (xvar + 1e-5)).epsilon(1e-12));
  }
}

TEST_CASE("BatchNorm(channels, spatial) equals BatchNorm(channels) on the unfolded batch") {
  Generator gen(9);
  const Index channels = 3, spatial = 4, batch = 5;
  BatchNorm<double> conv(channels, spatial), flat(channels);
  for (auto* bn : {&conv, &flat}) {
    bn->gamma() << 0.5, -1.5, 2.0;
    bn->beta() << 0.1, 0.2, -0.3;
  }
  const Matrix<double> x = random_matrix(channels * spatial, batch, gen, 1.5, 0.5);
  const Matrix<double> dy = random_matrix(channels * spatial, batch, gen);
  const Matrix<double> y = conv.forward(x, Mode::train, nullptr);
  const Matrix<double> dx = conv.backward(dy, true);
  const Matrix<double> y_flat =
      flat.forward(channels_as_features(x, channels, spatial), Mode::train, nullptr);
  const Matrix<double> dx_flat = flat.backward(channels_as_features(dy, channels, spatial), true);
  CHECK((channels_as_features(y, channels, spatial) - y_flat).cwiseAbs().maxCoeff() < 1e-13);
  CHECK((channels_as_features(dx, channels, spatial) - dx_flat).cwiseAbs().maxCoeff() < 1e-13);
  CHECK((conv.gamma_grad() - flat.gamma_grad()).cwiseAbs().maxCoeff() < 1e-12);
  CHECK((conv.beta_grad() - flat.beta_grad()).cwiseAbs().maxCoeff() < 1e-12);
  CHECK((conv.running_var() - flat.running_var()).cwiseAbs().maxCoeff() < 1e-13);
}

TEST_CASE("BatchNorm gradients match finite differences") {
  GradientCheckOptions options;
  options.check_input = true;
  Generator gen(12);

  SUBCASE("feature layout, train mode, first layer and after a tanh layer") {
    Sequential<double> model(4);
    model.add(BatchNorm<double>(4));
    model.add(Dense<double, Tanh>(4, 5, gen, Init::xavier_normal));
    model.add(BatchNorm<double>(5));
    model.add(Dense<double>(5, 3, gen));
    auto& bn = dynamic_cast<BatchNorm<double>&>(model.layer(2));
    bn.gamma() << 1.5, 0.5, -1.0, 2.0, 0.8;
    bn.beta() << 0.1, -0.2, 0.3, 0.0, 0.5;
    const Matrix<double> x = random_matrix(4, 6, gen, 2.0, 1.0);
    const auto r = gradient_check(model, SoftmaxCrossEntropy<double>(), x, random_labels(6, 3, gen),
                                  gen, options);
    INFO(r.worst, " analytic ", r.worst_analytic, " numeric ", r.worst_numeric);
    CHECK(r.entries_checked == 4 + 4 + 20 + 5 + 5 + 5 + 15 + 3 + 24);
    CHECK(r.max_relative_error <= 1e-6);
  }
  SUBCASE("channel layout, train mode") {
    Sequential<double> model(12);
    model.add(BatchNorm<double>(3, 4));
    model.add(Dense<double, Tanh>(12, 4, gen, Init::xavier_normal));
    model.add(Dense<double>(4, 2, gen));
    auto& bn = dynamic_cast<BatchNorm<double>&>(model.layer(0));
    bn.gamma() << 1.5, -0.5, 0.7;
    bn.beta() << 0.1, -0.2, 0.3;
    const Matrix<double> x = random_matrix(12, 3, gen, 1.5, -0.5);
    const auto r = gradient_check(model, MeanSquaredError<double>(), x, random_matrix(2, 3, gen),
                                  gen, options);
    INFO(r.worst, " analytic ", r.worst_analytic, " numeric ", r.worst_numeric);
    CHECK(r.max_relative_error <= 1e-6);
  }
  SUBCASE("eval mode, with trained running statistics") {
    Sequential<double> model(4);
    model.add(Dense<double, Tanh>(4, 6, gen, Init::xavier_normal));
    model.add(BatchNorm<double>(3, 2));
    model.add(Dense<double>(6, 3, gen));
    for (int i = 0; i < 3; ++i) model.forward(random_matrix(4, 8, gen, 2.0, 0.5), Mode::train, gen);
    options.mode = Mode::eval;
    const Matrix<double> x = random_matrix(4, 5, gen);
    const auto r = gradient_check(model, SoftmaxCrossEntropy<double>(), x, random_labels(5, 3, gen),
                                  gen, options);
    INFO(r.worst, " analytic ", r.worst_analytic, " numeric ", r.worst_numeric);
    CHECK(r.max_relative_error <= 1e-6);
  }
}

TEST_CASE("BatchNorm parameters, buffers, config and name") {
  Sequential<float> model(6);
  model.add(BatchNorm<float>(3, 2)).with_momentum(0.2f).with_eps(1e-3f);
  const auto params = model.parameters();
  REQUIRE(params.size() == 2);
  CHECK(params[0].name == "0.BatchNorm.gamma");
  CHECK(params[0].role == ParameterRole::scale);
  CHECK(params[1].name == "0.BatchNorm.beta");
  CHECK(params[1].role == ParameterRole::shift);
  CHECK(params[0].flat_value() == Vector<float>::Ones(3));
  CHECK(params[1].flat_value() == Vector<float>::Zero(3));
  const auto buffers = model.buffers();
  REQUIRE(buffers.size() == 2);
  CHECK(buffers[0].name == "0.BatchNorm.running_mean");
  CHECK(buffers[1].name == "0.BatchNorm.running_var");
  for (const auto& b : buffers) {
    CHECK(b.grad == nullptr);
    CHECK(b.role == ParameterRole::buffer);
    CHECK(b.size() == 3);
  }
  CHECK(model.parameter_count() == 6);
  const LayerConfig config = model.layer(0).config();
  CHECK(config.kind == "BatchNorm");
  CHECK(config.number("features") == 6);
  CHECK(config.number("channels") == 3);
  CHECK(config.number("spatial") == 2);
  CHECK(config.number("momentum") == doctest::Approx(0.2));
  CHECK(config.number("eps") == doctest::Approx(1e-3));
  CHECK(model.layer(0).name() == "BatchNorm(3 channels x 2)");
  CHECK(BatchNorm<float>(5).name() == "BatchNorm(5)");
  CHECK(BatchNorm<float>(5).config().number("momentum") == doctest::Approx(0.1));
  CHECK(BatchNorm<float>(5).config().number("eps") == doctest::Approx(1e-5));
}

TEST_CASE("BatchNorm rejects bad sizes, hyperparameters and batches, naming the layer") {
  CHECK_THROWS_AS(BatchNorm<float>(0), InvalidArgument);
  CHECK_THROWS_AS(BatchNorm<float>(3, 0), InvalidArgument);
  CHECK_THROWS_AS(BatchNorm<float>(-1, 2), InvalidArgument);
  BatchNorm<double> bn(4);
  CHECK_THROWS_WITH_AS(bn.with_momentum(-0.1), doctest::Contains("BatchNorm(4): momentum"),
                       InvalidArgument);
  CHECK_THROWS_AS(bn.with_momentum(1.5), InvalidArgument);
  CHECK_THROWS_AS(bn.with_momentum(std::numeric_limits<double>::quiet_NaN()), InvalidArgument);
  CHECK_NOTHROW(bn.with_momentum(0.0));
  CHECK_NOTHROW(bn.with_momentum(1.0));
  CHECK_THROWS_AS(bn.with_eps(0.0), InvalidArgument);
  CHECK_THROWS_AS(bn.with_eps(-1e-5), InvalidArgument);
  CHECK_THROWS_AS(bn.with_eps(std::numeric_limits<double>::infinity()), InvalidArgument);

  // Variance of a single value per feature is undefined in training (PyTorch refuses too).
  CHECK_THROWS_WITH_AS(bn.forward(Matrix<double>::Ones(4, 1), Mode::train, nullptr),
                       doctest::Contains("BatchNorm(4): a train-mode batch needs at least 2"),
                       InvalidArgument);
  const Vector<double> mean_before = bn.running_mean();
  CHECK(bn.running_mean() == mean_before);
  // ...but one sample with 3 spatial positions per channel is enough.
  BatchNorm<double> conv(2, 3);
  CHECK_NOTHROW(conv.forward(Matrix<double>::Random(6, 1), Mode::train, nullptr));
  CHECK_THROWS_AS(
      BatchNorm<double>(2, 1).forward(Matrix<double>::Random(2, 1), Mode::train, nullptr),
      InvalidArgument);

  CHECK_THROWS_WITH_AS(bn.forward(Matrix<double>::Ones(3, 5), Mode::train, nullptr),
                       doctest::Contains("BatchNorm(4)"), InvalidArgument);
  CHECK_THROWS_AS(bn.forward(Matrix<double>::Ones(4, 0), Mode::eval, nullptr), InvalidArgument);
  CHECK_THROWS_AS(BatchNorm<double>(4).backward(Matrix<double>::Ones(4, 2), true), InvalidArgument);
  bn.forward(Matrix<double>::Random(4, 3), Mode::train, nullptr);
  CHECK_THROWS_AS(bn.backward(Matrix<double>::Ones(4, 2), true), InvalidArgument);

  Sequential<float> model(5);
  CHECK_THROWS_WITH_AS(model.add(BatchNorm<float>(2, 2)),
                       doctest::Contains("BatchNorm(2 channels x 2)"), InvalidArgument);
  CHECK(model.size() == 0);
}

TEST_CASE("a BatchNorm MLP trains with fit and predicts in eval mode") {
  Generator gen(14);
  const Index n = 256;
  Matrix<double> x = random_matrix(2, n, gen);
  Labels y(n);
  for (Index j = 0; j < n; ++j) {
    y(j) = x(0, j) * x(1, j) > 0 ? 1 : 0;  // XOR of the signs
    x(0, j) = 50.0 + 10.0 * x(0, j);       // badly scaled input: BatchNorm's job
  }
  Sequential<double> model(2);
  model.add(BatchNorm<double>(2));
  model.add(Dense<double, ReLU>(2, 16, gen));
  model.add(BatchNorm<double>(16));
  model.add(Dense<double>(16, 2, gen));
  Adam<double> adam(model.parameters(), AdamOptions(0.02));
  FitOptions<double> options;
  options.epochs = 60;
  options.batch_size = 32;
  fit(model, SoftmaxCrossEntropy<double>(), adam, x, y, gen, options);
  const auto result = evaluate(model, SoftmaxCrossEntropy<double>(), x, y);
  MESSAGE("BatchNorm MLP on scaled XOR: eval accuracy ", result.accuracy);
  CHECK(result.accuracy > 0.9);
  auto& first = dynamic_cast<BatchNorm<double>&>(model.layer(0));
  CHECK(first.running_mean()(0) == doctest::Approx(x.row(0).mean()).epsilon(0.05));
}
