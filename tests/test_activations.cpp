// Activations: values against hand-computed numbers, scalar derivatives against finite
// differences, and the vectorized matrix forms against the scalar references.

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <dropnet/dropnet.hpp>
#include <vector>

using namespace dropnet;

namespace {

const std::vector<double> probe_points = {-30.0, -5.0, -1.5, -0.3, -1e-3, 1e-3, 0.2, 0.9, 2.5, 7.0, 30.0};

/// Matrix forward/backward agree with the scalar value/derivative at every probe point, and the
/// scalar derivative agrees with a central difference of the scalar value.
template <class T, class Activation>
void check_against_scalar(Activation act = {}, double tolerance = 1e-12) {
  Matrix<T> z(static_cast<Index>(probe_points.size()), 1);
  for (Index i = 0; i < z.rows(); ++i) z(i, 0) = T(probe_points[static_cast<std::size_t>(i)]);
  Matrix<T> a, dz;
  act.forward(z, a);
  const Matrix<T> da = Matrix<T>::Constant(z.rows(), 1, T(1.5));
  act.backward(z, a, da, dz);
  for (Index i = 0; i < z.rows(); ++i) {
    const double x = double(z(i, 0));
    INFO(std::string(Activation::kind), " at z = ", x);
    CHECK(double(a(i, 0)) == doctest::Approx(double(act.value(z(i, 0)))).epsilon(tolerance));
    CHECK(double(dz(i, 0)) == doctest::Approx(1.5 * double(act.derivative(z(i, 0)))).epsilon(tolerance));
    if (std::abs(x) > 1e-2) {  // away from kinks at 0
      const double h = 1e-6;
      const double numeric = (double(act.value(x + h)) - double(act.value(x - h))) / (2 * h);
      CHECK(double(act.derivative(x)) == doctest::Approx(numeric).epsilon(1e-6).scale(1.0));
    }
  }
}

}  // namespace

/// Sweeps 4,001 points of [-20, 20] through the matrix forms, so full SIMD packets (and the
/// scalar tail) are exercised, and compares them with the scalar references evaluated in double.
/// Each matrix form is at most a dozen roundings (half an ulp each) of quantities bounded by
/// max(1, |z|), plus Eigen's vectorized exp/expm1/erf/tanh/logistic, which Eigen documents to a few
/// ulp: 32 ulp of max(1, |z|) bounds the error with room, whatever the SIMD width. The largest
/// errors measured for float (AVX-512, -march=native) were 4.2e-6 (GELUTanh backward, |z| near
/// 20) and 2.4e-6 (Swish backward), against a bound of 3.8e-5 there.
template <class T, class Activation>
void check_sweep(Activation act = {}) {
  const Index n = 4001;
  Matrix<T> z(n, 1);
  for (Index i = 0; i < n; ++i) z(i, 0) = T(-20.0 + 40.0 * double(i) / double(n - 1));
  Matrix<T> a, dz;
  const Matrix<T> da = Matrix<T>::Constant(n, 1, T(1));
  act.forward(z, a);
  act.backward(z, a, da, dz);
  const double ulp = std::numeric_limits<T>::epsilon() / 2;
  double worst_forward = 0, worst_backward = 0;
  for (Index i = 0; i < n; ++i) {
    const double x = double(z(i, 0));
    const double bound = 32 * ulp * std::max(1.0, std::abs(x));
    worst_forward = std::max(worst_forward, std::abs(double(a(i, 0)) - act.value(x)) / bound);
    worst_backward = std::max(worst_backward, std::abs(double(dz(i, 0)) - act.derivative(x)) / bound);
  }
  INFO(std::string(Activation::kind), ": worst error / bound, forward ", worst_forward, ", backward ", worst_backward);
  CHECK(worst_forward <= 1.0);
  CHECK(worst_backward <= 1.0);
}

TEST_CASE_TEMPLATE("vectorized matrix forms stay within 32 ulp of max(1, |z|) over [-20, 20]", T, double, float) {
  check_sweep<T, ReLU>();
  check_sweep<T, LeakyReLU>(LeakyReLU(0.2));
  check_sweep<T, ELU>(ELU(0.5));
  check_sweep<T, SELU>();
  check_sweep<T, Sigmoid>();
  check_sweep<T, Tanh>();
  check_sweep<T, Swish>();
  check_sweep<T, GELU>();
  check_sweep<T, GELUTanh>();
  check_sweep<T, Softplus>();
}

TEST_CASE("activation values against hand-computed numbers") {
  CHECK(ReLU{}.value(-2.0) == 0.0);
  CHECK(ReLU{}.value(3.0) == 3.0);
  CHECK(ReLU{}.derivative(0.0) == 0.0);
  CHECK(LeakyReLU(0.1).value(-2.0) == doctest::Approx(-0.2));
  CHECK(ELU(1.0).value(-1.0) == doctest::Approx(std::exp(-1.0) - 1.0));  // -0.6321205588
  CHECK(ELU(1.0).value(-1.0) == doctest::Approx(-0.6321205588));
  CHECK(SELU{}.value(1.0) == doctest::Approx(1.0507009874));
  CHECK(SELU{}.value(-1.0) == doctest::Approx(-1.1113307378));  // lambda*alpha*(e^-1 - 1)
  CHECK(Sigmoid{}.value(0.0) == 0.5);
  CHECK(Sigmoid{}.value(2.0) == doctest::Approx(0.8807970780));
  CHECK(Sigmoid{}.value(-800.0) >= 0.0);
  CHECK(Tanh{}.value(0.5) == doctest::Approx(0.4621171573));
  CHECK(Swish{}.value(1.0) == doctest::Approx(0.7310585786));
  CHECK(GELU{}.value(1.0) == doctest::Approx(0.8413447461));     // Phi(1)
  CHECK(GELU{}.value(-1.0) == doctest::Approx(-0.1586552539));
  CHECK(GELUTanh{}.value(1.0) == doctest::Approx(0.8411919906));  // PyTorch approximate='tanh'
  CHECK(Softplus{}.value(0.0) == doctest::Approx(std::log(2.0)));
  CHECK(Softplus{}.value(1000.0) == doctest::Approx(1000.0));     // no overflow
  CHECK(Softplus{}.value(-1000.0) >= 0.0);
}

TEST_CASE_TEMPLATE("matrix forms match scalar forms and derivatives match finite differences", T, double, float) {
  const double tol = std::is_same_v<T, double> ? 1e-12 : 2e-5;
  check_against_scalar<T, Identity>({}, tol);
  check_against_scalar<T, ReLU>({}, tol);
  check_against_scalar<T, LeakyReLU>(LeakyReLU(0.2), tol);
  check_against_scalar<T, ELU>(ELU(0.5), tol);
  check_against_scalar<T, SELU>({}, tol);
  check_against_scalar<T, Sigmoid>({}, tol);
  check_against_scalar<T, Tanh>({}, tol);
  check_against_scalar<T, Swish>({}, tol);
  check_against_scalar<T, GELU>({}, tol);
  check_against_scalar<T, GELUTanh>({}, tol);
  check_against_scalar<T, Softplus>({}, tol);
}

TEST_CASE_TEMPLATE("softmax is stable, sums to one and back-propagates through its Jacobian", T, double, float) {
  Matrix<T> z(3, 2);
  z << 1, 1000, 2, 1001, 3, 1002;  // the second column would overflow a naive exp
  Matrix<T> a;
  Softmax{}.forward(z, a);
  CHECK(a.allFinite());
  for (Index j = 0; j < 2; ++j) CHECK(double(a.col(j).sum()) == doctest::Approx(1.0));
  // softmax(1,2,3) = (0.0900306, 0.2447285, 0.6652410); shifting by 999 changes nothing
  CHECK(double(a(0, 0)) == doctest::Approx(0.0900305732));
  CHECK(double(a(2, 1)) == doctest::Approx(0.6652409558));

  // dz = J^T da with J_ik = a_i (delta_ik - a_k)
  Matrix<T> da(3, 2);
  da << 0.3, -1, 0.1, 2, -0.5, 0.5;
  Matrix<T> dz;
  Softmax{}.backward(z, a, da, dz);
  for (Index j = 0; j < 2; ++j)
    for (Index i = 0; i < 3; ++i) {
      double expected = 0;
      for (Index k = 0; k < 3; ++k)
        expected += double(da(k, j)) * double(a(k, j)) * ((i == k ? 1.0 : 0.0) - double(a(i, j)));
      CHECK(double(dz(i, j)) == doctest::Approx(expected).epsilon(1e-5));
    }
}

TEST_CASE("sigmoid matrix form saturates without NaN at extreme inputs") {
  Matrix<double> z(2, 1);
  z << -1e4, 1e4;
  Matrix<double> a;
  Sigmoid{}.forward(z, a);
  CHECK(a(0, 0) == doctest::Approx(0.0));
  CHECK(a(1, 0) == doctest::Approx(1.0));
  Softplus{}.forward(z, a);
  CHECK(a.allFinite());
  CHECK(a(1, 0) == doctest::Approx(1e4));
}

TEST_CASE_TEMPLATE("log-softmax is stable and its backward pass matches finite differences", T, double, float) {
  Matrix<T> z(4, 3);
  z << 1, 1000, -3, 2, 1001, 0.5, 3, 1002, 7, -1, 998, 2;  // the second column overflows a naive exp
  Matrix<T> a;
  LogSoftmax{}.forward(z, a);
  for (Index j = 0; j < z.cols(); ++j) CHECK(double(a.col(j).array().exp().sum()) == doctest::Approx(1.0));
  // log softmax(1, 2, 3, -1) by hand: z - log(e + e^2 + e^3 + e^-1).
  CHECK(double(a(0, 0)) == doctest::Approx(1.0 - std::log(std::exp(1.0) + std::exp(2.0) + std::exp(3.0) + std::exp(-1.0))));
  CHECK(double(a(0, 1)) == doctest::Approx(double(a(0, 0))).epsilon(1e-5));  // shift invariant
  Matrix<T> da(4, 3);
  da << 0.3, -1, 0.1, 2, -0.5, 0.5, 0.7, 0.2, -0.4, 1.1, 0.9, -2;
  Matrix<T> dz;
  LogSoftmax{}.backward(z, a, da, dz);
  // d/dz_i of sum_k da_k log_softmax(z)_k, centrally differenced in double.
  const auto objective = [&](const Matrix<double>& x) {
    Matrix<double> out;
    LogSoftmax{}.forward(x, out);
    return (da.template cast<double>().array() * out.array()).sum();
  };
  const Matrix<double> zd = z.template cast<double>();
  const double h = 1e-6;
  for (Index j = 0; j < z.cols(); ++j)
    for (Index i = 0; i < z.rows(); ++i) {
      Matrix<double> up = zd, down = zd;
      up(i, j) += h;
      down(i, j) -= h;
      const double numeric = (objective(up) - objective(down)) / (2 * h);
      CHECK(double(dz(i, j)) == doctest::Approx(numeric).epsilon(1e-5).scale(1.0));
    }
}
