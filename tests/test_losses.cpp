// Losses: values against hand-computed numbers, gradients against finite differences of the
// loss itself, stability at extreme logits, and bad input.

#include <doctest/doctest.h>

#include <cmath>
#include <dropnet/dropnet.hpp>

using namespace dropnet;

namespace {

/// Five-point central difference of loss.compute with respect to every output entry.
template <class Target>
Matrix<double> numeric_gradient(const Loss<double>& loss, Matrix<double> out, const Target& target) {
  Matrix<double> grad(out.rows(), out.cols());
  const double h = 1e-4;
  for (Index i = 0; i < out.size(); ++i) {
    const double saved = out.data()[i];
    auto at = [&](double offset) {
      out.data()[i] = saved + offset;
      return loss.compute(out, target, nullptr);
    };
    grad.data()[i] = (at(-2 * h) - 8 * at(-h) + 8 * at(h) - at(2 * h)) / (12 * h);
    out.data()[i] = saved;
  }
  return grad;
}

void check_gradient(const Matrix<double>& analytic, const Matrix<double>& numeric) {
  const double error = (analytic - numeric).cwiseAbs().maxCoeff() /
                       std::max(1e-8, numeric.cwiseAbs().maxCoeff());
  CHECK(error <= 1e-6);
}

}  // namespace

TEST_CASE("MSE value and gradient") {
  Matrix<double> y(2, 2), t(2, 2);
  y << 1, 2, 3, 4;
  t << 0, 2, 5, 4;
  MeanSquaredError<double> mse;
  Matrix<double> grad;
  // ((1-0)^2 + 0 + (3-5)^2 + 0) / 4 = 5/4
  CHECK(mse.compute(y, t, &grad) == doctest::Approx(1.25));
  CHECK(grad(0, 0) == doctest::Approx(0.5));   // 2 * 1 / 4
  CHECK(grad(1, 0) == doctest::Approx(-1.0));  // 2 * -2 / 4
  check_gradient(grad, numeric_gradient(mse, y, t));
}

TEST_CASE("binary cross-entropy from logits: value, gradient, and stability at |z| = 1e4") {
  BinaryCrossEntropyWithLogits<double> bce;
  Matrix<double> z(1, 3), t(1, 3);
  z << 0.0, 2.0, -1.0;
  t << 1.0, 0.0, 0.0;
  // log 2 + (2 + log(1 + e^-2)) + log(1 + e^-1), over 3
  const double expected = (std::log(2.0) + 2.0 + std::log1p(std::exp(-2.0)) + std::log1p(std::exp(-1.0))) / 3;
  Matrix<double> grad;
  CHECK(bce.compute(z, t, &grad) == doctest::Approx(expected));
  check_gradient(grad, numeric_gradient(bce, z, t));

  Matrix<double> extreme(1, 2), target(1, 2);
  extreme << 1e4, -1e4;
  target << 0.0, 1.0;  // both maximally wrong
  CHECK(bce.compute(extreme, target, &grad) == doctest::Approx(1e4));
  CHECK(grad.allFinite());
  Labels labels(3);
  labels << 1, 0, 0;
  CHECK(bce.compute(z, labels, nullptr) == doctest::Approx(expected));
}

TEST_CASE("softmax cross-entropy: labels, one-hot targets and label smoothing") {
  SoftmaxCrossEntropy<double> ce;
  Matrix<double> z(3, 2);
  z << 1, 0, 2, 0, 3, 0;
  Labels labels(2);
  labels << 2, 0;
  // column 0: logsumexp(1,2,3) - 3 = 0.4076059644; column 1: log 3 = 1.0986122887
  const double expected = (0.4076059644 + 1.0986122887) / 2;
  Matrix<double> grad;
  CHECK(ce.compute(z, labels, &grad) == doctest::Approx(expected));
  check_gradient(grad, numeric_gradient(ce, z, labels));

  Matrix<double> one_hot = Matrix<double>::Zero(3, 2);
  one_hot(2, 0) = 1;
  one_hot(0, 1) = 1;
  CHECK(ce.compute(z, one_hot, nullptr) == doctest::Approx(expected));

  // Smoothing 0.3 with K = 3: q = 0.7 onehot + 0.1; loss = lse - q.z
  SoftmaxCrossEntropy<double> smooth(0.3);
  const double lse0 = 3.4076059644, lse1 = 1.0986122887;
  const double smoothed = ((lse0 - (0.1 * 1 + 0.1 * 2 + 0.8 * 3)) + (lse1 - 0.0)) / 2;
  CHECK(smooth.compute(z, labels, &grad) == doctest::Approx(smoothed));
  check_gradient(grad, numeric_gradient(smooth, z, labels));
  CHECK(smooth.compute(z, one_hot, nullptr) == doctest::Approx(smoothed));
}

TEST_CASE("softmax cross-entropy is finite at logits of +-1e4") {
  SoftmaxCrossEntropy<float> ce;
  Matrix<float> z(2, 1);
  z << 1e4f, -1e4f;
  Labels labels(1);
  labels << 1;
  Matrix<float> grad;
  CHECK(double(ce.compute(z, labels, &grad)) == doctest::Approx(2e4));
  CHECK(grad.allFinite());
  labels << 0;
  CHECK(double(ce.compute(z, labels, &grad)) == doctest::Approx(0.0));
}

TEST_CASE("losses reject bad input with the loss's name") {
  SoftmaxCrossEntropy<double> ce;
  Matrix<double> z = Matrix<double>::Zero(3, 2);
  Labels labels(2);
  labels << 0, 3;
  CHECK_THROWS_WITH_AS(ce.compute(z, labels, nullptr), doctest::Contains("label 3 of sample 1 is out of range [0, 3)"), InvalidArgument);
  Labels short_labels(1);
  short_labels << 0;
  CHECK_THROWS_WITH_AS(ce.compute(z, short_labels, nullptr), doctest::Contains("1 labels for a batch of 2"), InvalidArgument);
  CHECK_THROWS_AS(ce.compute(z, Matrix<double>(Matrix<double>::Zero(2, 2)), nullptr), InvalidArgument);
  CHECK_THROWS_AS(ce.compute(Matrix<double>(3, 0), Labels(0), nullptr), InvalidArgument);
  CHECK_THROWS_AS(SoftmaxCrossEntropy<double>(1.5), InvalidArgument);
  CHECK_THROWS_AS(SoftmaxCrossEntropy<double>(std::nan("")), InvalidArgument);
  CHECK_THROWS_WITH_AS(MeanSquaredError<double>().compute(z, Matrix<double>(Matrix<double>::Zero(3, 3)), nullptr),
                       doctest::Contains("MeanSquaredError: target has shape 3x3, expected 3x2"), InvalidArgument);
  CHECK_THROWS_AS(BinaryCrossEntropyWithLogits<double>().compute(z, Matrix<double>(Matrix<double>::Constant(3, 2, 2.0)), nullptr),
                  InvalidArgument);
}

TEST_CASE("accuracy counts argmax for several outputs and the threshold for one") {
  SoftmaxCrossEntropy<double> ce;
  Matrix<double> z(3, 3);
  z << 1, 0, 0, 0, 1, 0, 0, 0, 1;
  Labels labels(3);
  labels << 0, 1, 0;
  CHECK(ce.correct(z, labels) == 2);
  BinaryCrossEntropyWithLogits<double> bce;
  Matrix<double> logits(1, 3), t(1, 3);
  logits << -0.1, 0.1, 3;
  t << 0, 1, 0;
  CHECK(bce.correct(logits, t) == 2);
}

TEST_CASE("accuracy rejects a label count that does not match the batch") {
  SoftmaxCrossEntropy<double> ce;
  Labels two(2);
  two << 0, 1;
  CHECK_THROWS_WITH_AS(ce.correct(Matrix<double>::Zero(3, 3), two), doctest::Contains("2 labels for a batch of 3"),
                       InvalidArgument);
  Generator gen(1);
  CHECK_THROWS_AS(gen.below(0), InvalidArgument);
}
