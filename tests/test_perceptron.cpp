// The perceptron: the Rosenblatt rule, Novikoff's bound on separable data, cycling on XOR.

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <dropnet/dropnet.hpp>

using namespace dropnet;

namespace {

/// Points in [-1, 1]^d labelled by the side of the hyperplane u^T x + c = 0 they lie on, keeping
/// only those at distance >= `gap` from it (so the data is separable with a margin).
struct Separable {
  Matrix<double> x;
  Labels y;
  Vector<double> u;  // the separator, (u, c) of unit norm
  double c = 0.0;
};

Separable separable(Index d, Index n, double gap, std::uint64_t seed) {
  Generator gen(seed);
  Separable s;
  s.u = Vector<double>(d);
  for (Index k = 0; k < d; ++k) s.u(k) = gen.normal<double>();
  s.c = 0.3;
  const double norm = std::sqrt(s.u.squaredNorm() + s.c * s.c);
  s.u /= norm;
  s.c /= norm;
  s.x.resize(d, n);
  s.y.resize(n);
  for (Index i = 0; i < n;) {
    Vector<double> p(d);
    for (Index k = 0; k < d; ++k) p(k) = gen.uniform(-1.0, 1.0);
    const double side = s.u.dot(p) + s.c;
    if (std::abs(side) < gap) continue;
    s.x.col(i) = p;
    s.y(i++) = side > 0 ? 1 : 0;
  }
  return s;
}

}  // namespace

TEST_CASE_TEMPLATE("Perceptron: the rule of the chapter, step by step", T, float, double) {
  // Two points, 1-D: x = 2 (class 1) then x = -1 (class 0). Epoch 1: w = 0, b = 0 predicts 0
  // for x = 2 (0 > 0 is false): update w = 0.5 * 2 = 1, b = 0.5. x = -1: -1 + 0.5 < 0 -> 0,
  // right. Epoch 2 makes no mistake.
  Matrix<T> x(1, 2);
  x << T(2), T(-1);
  Labels y(2);
  y << 1, 0;
  Perceptron<T> p(1);
  PerceptronOptions options;
  options.learning_rate = 0.5;
  const PerceptronResult r = p.fit(x, y, options);
  CHECK(r.converged);
  CHECK(r.epochs == 2);
  CHECK(r.updates == 1);
  CHECK(r.mistakes == std::vector<long>{1, 0});
  CHECK(p.weights()(0) == T(1));
  CHECK(p.bias() == T(0.5));
  CHECK(p.predict(x) == y);
  CHECK(r.training_errors == 0);
}

TEST_CASE("Perceptron: converges on separable data within Novikoff's bound") {
  for (std::uint64_t seed : {1u, 2u, 3u}) {
    const Separable s = separable(5, 300, 0.1, seed);
    // R = max ||(x, 1)||; gamma = min_i s_i (u^T x_i + c) for the unit (u, c) that made the data.
    double radius = 0, margin = 1e300;
    for (Index i = 0; i < s.x.cols(); ++i) {
      radius = std::max(radius, std::sqrt(s.x.col(i).squaredNorm() + 1.0));
      const double side = s.u.dot(s.x.col(i)) + s.c;
      margin = std::min(margin, s.y(i) == 1 ? side : -side);
    }
    REQUIRE(margin >= 0.1);
    const double bound = (radius / margin) * (radius / margin);
    for (double rate : {1.0, 0.01}) {
      Perceptron<double> p(5);
      PerceptronOptions options;
      options.learning_rate = rate;
      options.max_epochs = 10000;
      const PerceptronResult r = p.fit(s.x, s.y, options);
      CAPTURE(seed);
      CAPTURE(rate);
      CHECK(r.converged);
      CHECK_FALSE(r.cycled);
      CHECK(r.training_errors == 0);
      CHECK(static_cast<double>(r.updates) <= bound);
      CHECK((p.predict(s.x).array() == s.y.array()).all());
    }
  }
}

TEST_CASE("Perceptron: XOR is not linearly separable, so the rule cycles") {
  // By hand, a = 1, order (0,0) (0,1) (1,0) (1,1) with labels 0 1 1 0:
  //   epoch 1: mistakes on (0,1) and (1,1)            -> w = (-1, 0), b = 0   (2 errors)
  //   epoch 2: mistakes on (0,1), (1,0), (1,1)        -> w = (-1, 0), b = 1   (2 errors)
  //   epoch 3: mistakes on all four                   -> w = (-1, 0), b = 1   again: a cycle.
  Matrix<double> x(2, 4);
  x << 0, 0, 1, 1,  //
      0, 1, 0, 1;
  Labels y(4);
  y << 0, 1, 1, 0;
  Perceptron<double> p(2);
  PerceptronOptions options;
  options.max_epochs = 1000;
  const PerceptronResult r = p.fit(x, y, options);
  CHECK_FALSE(r.converged);
  CHECK(r.cycled);
  CHECK(r.epochs == 3);
  CHECK(r.mistakes == std::vector<long>{2, 3, 4});
  CHECK(p.weights() == Vector<double>((Vector<double>(2) << -1, 0).finished()));
  CHECK(p.bias() == 1.0);
  CHECK(r.training_errors == 2);

  SUBCASE("the pocket returns the end-of-epoch state with the fewest errors") {
    options.pocket = true;
    const PerceptronResult best = p.fit(x, y, options);
    CHECK(best.training_errors == 2);  // both states seen make 2 errors; no line makes 0
    CHECK(p.bias() == 0.0);            // the first of them is kept
  }
}

TEST_CASE("Perceptron: bad input is rejected") {
  Perceptron<double> p(2);
  Matrix<double> x = Matrix<double>::Zero(2, 3);
  Labels y(3);
  y << 0, 1, 2;
  CHECK_THROWS_AS(p.fit(x, y), InvalidArgument);
  y(2) = 1;
  CHECK_THROWS_AS(p.fit(Matrix<double>::Zero(3, 3), y), InvalidArgument);
  PerceptronOptions options;
  options.learning_rate = 0;
  CHECK_THROWS_AS(p.fit(x, y, options), InvalidArgument);
  CHECK_THROWS_AS(Perceptron<double>(0), InvalidArgument);
}
