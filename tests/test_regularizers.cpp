// Penalties and constraints: L1/L2 value and gradient by hand, biases exempt, max-norm, gradient
// clipping by global norm and by value, and the clipping options of fit.

#include <doctest/doctest.h>

#include <cmath>
#include <dropnet/dropnet.hpp>
#include <limits>

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

/// W = [1 -2; 0 3]: sum |W| = 6, sum W^2 = 14, sign(W) = [1 -1; 0 1].
template <class T>
Matrix<T> hand_weight() {
  Matrix<T> w(2, 2);
  w << T(1), T(-2), T(0), T(3);
  return w;
}

/// Two parameters whose gradients are (3, 0) and (0, 4, 0): global norm 5.
struct TwoParameters {
  Vector<double> a = Vector<double>::Zero(2), ga = (Vector<double>(2) << 3, 0).finished();
  Vector<double> b = Vector<double>::Zero(3), gb = (Vector<double>(3) << 0, 4, 0).finished();
  Vector<double> buffer = Vector<double>::Constant(2, 100.0);
  ParameterList<double> views() {
    return {view_of<double>("a", a, &ga, ParameterRole::weight),
            view_of<double>("b", b, &gb, ParameterRole::bias),
            view_of<double>("buffer", buffer, static_cast<Vector<double>*>(nullptr),
                            ParameterRole::buffer)};
  }
};

}  // namespace

TEST_CASE_TEMPLATE("WeightPenalty: value and gradient by hand", T, float, double) {
  const Matrix<T> w = hand_weight<T>();
  const WeightPenalty<T> penalty(T(0.1), T(0.01));
  // 0.1 * 6 + 0.01 * 14 = 0.74
  CHECK(double(penalty.value(w)) == doctest::Approx(0.74).epsilon(1e-6));
  CHECK(double(WeightPenalty<T>(T(0.1), T(0)).value(w)) == doctest::Approx(0.6).epsilon(1e-6));
  CHECK(double(WeightPenalty<T>(T(0), T(0.01)).value(w)) == doctest::Approx(0.14).epsilon(1e-6));

  // d/dW = 0.1 sign(W) + 0.02 W = [0.12 -0.14; 0 0.16] (sign(0) = 0: the subgradient at a kink).
  Matrix<T> dw = Matrix<T>::Constant(2, 2, T(1));
  penalty.add_gradient(w, dw);
  CHECK(double(dw(0, 0)) == doctest::Approx(1.12).epsilon(1e-6));
  CHECK(double(dw(0, 1)) == doctest::Approx(1 - 0.14).epsilon(1e-6));
  CHECK(double(dw(1, 0)) == doctest::Approx(1.0).epsilon(1e-6));
  CHECK(double(dw(1, 1)) == doctest::Approx(1.16).epsilon(1e-6));

  CHECK_FALSE(WeightPenalty<T>().active());
  CHECK(WeightPenalty<T>(T(0), T(1e-4)).active());
  CHECK_THROWS_AS(WeightPenalty<T>(T(-0.1), T(0)), InvalidArgument);
  CHECK_THROWS_AS(WeightPenalty<T>(T(0), T(-1)), InvalidArgument);
  CHECK_THROWS_AS(WeightPenalty<T>(std::numeric_limits<T>::quiet_NaN(), T(0)), InvalidArgument);
  CHECK_THROWS_AS(WeightPenalty<T>(T(0), std::numeric_limits<T>::infinity()), InvalidArgument);
}

TEST_CASE("Dense with_l1/with_l2: penalty on the weights only, gradient added to dW only") {
  Generator gen(21);
  Dense<double> plain(2, 2, gen), regularized(2, 2, gen);
  regularized.with_l1(0.1).with_l2(0.01);  // the second call keeps the first's l1
  CHECK(regularized.weight_penalty().l1 == 0.1);
  CHECK(regularized.weight_penalty().l2 == 0.01);
  for (auto* layer : {&plain, &regularized}) {
    layer->weight() = hand_weight<double>();
    layer->bias() << 5.0, -7.0;  // a large bias: exempt, so it must not change the penalty
  }
  CHECK(plain.penalty() == 0.0);
  CHECK(regularized.penalty() == doctest::Approx(0.74));

  const Matrix<double> x = random_matrix(2, 3, gen), dy = random_matrix(2, 3, gen);
  plain.forward(x, Mode::train, nullptr);
  plain.backward(dy, true);
  regularized.forward(x, Mode::train, nullptr);
  regularized.backward(dy, true);
  Matrix<double> expected_penalty_grad(2, 2);
  expected_penalty_grad << 0.12, -0.14, 0.0, 0.16;
  CHECK((regularized.weight_grad() - plain.weight_grad() - expected_penalty_grad)
            .cwiseAbs()
            .maxCoeff() < 1e-15);
  CHECK(regularized.bias_grad() == plain.bias_grad());

  // backward overwrites: a second backward gives the same gradient, not twice the penalty.
  const Matrix<double> first = regularized.weight_grad();
  regularized.backward(dy, true);
  CHECK(regularized.weight_grad() == first);
}

TEST_CASE("the penalty is in the reported loss of Sequential, evaluate and fit") {
  Generator gen(22);
  Sequential<double> model(3);
  model.add(Dense<double, Tanh>(3, 4, gen)).with_l2(0.05);
  model.add(Dense<double>(4, 2, gen)).with_l1(0.03);
  auto& first = dynamic_cast<Dense<double, Tanh>&>(model.layer(0));
  auto& second = dynamic_cast<Dense<double>&>(model.layer(1));
  const double by_hand =
      0.05 * first.weight().squaredNorm() + 0.03 * second.weight().cwiseAbs().sum();
  CHECK(model.penalty() == doctest::Approx(by_hand).epsilon(1e-14));

  const Matrix<double> x = random_matrix(3, 10, gen);
  const Labels y = random_labels(10, 2, gen);
  const SoftmaxCrossEntropy<double> loss;
  const double data_loss = loss.compute(model.forward(x, Mode::eval), y, nullptr);
  CHECK(evaluate(model, loss, x, y).loss == doctest::Approx(data_loss + by_hand).epsilon(1e-14));

  // One full batch, lr 0: fit reports exactly data loss + penalty and changes nothing.
  SGD<double> sgd(model.parameters(), SGDOptions(0.0));
  FitOptions<double> options;
  options.epochs = 1;
  options.batch_size = 10;
  const History history = fit(model, loss, sgd, x, y, gen, options);
  CHECK(history.epochs[0].loss == doctest::Approx(data_loss + by_hand).epsilon(1e-14));
}

TEST_CASE_TEMPLATE("max-norm rescales rows above c to exactly c and leaves the others untouched", T,
                   float, double) {
  Matrix<T> w(4, 2);
  w << T(3), T(4),    // norm 5 > 4: rescaled by 4/5 to (2.4, 3.2)
      T(1), T(1),     // norm sqrt(2): untouched
      T(0), T(4),     // norm exactly c: untouched
      T(-30), T(40);  // norm 50: rescaled to (-2.4, 3.2)
  const Matrix<T> before = w;
  apply_max_norm(w, T(4));
  CHECK(double(w(0, 0)) == doctest::Approx(2.4).epsilon(1e-6));
  CHECK(double(w(0, 1)) == doctest::Approx(3.2).epsilon(1e-6));
  CHECK(double(w(3, 0)) == doctest::Approx(-2.4).epsilon(1e-6));
  CHECK(double(w(3, 1)) == doctest::Approx(3.2).epsilon(1e-6));
  CHECK(double(w.row(0).norm()) == doctest::Approx(4.0).epsilon(1e-6));
  CHECK(double(w.row(3).norm()) == doctest::Approx(4.0).epsilon(1e-6));
  CHECK(w.row(1) == before.row(1));  // bit for bit
  CHECK(w.row(2) == before.row(2));
}

TEST_CASE("Dense with_max_norm is applied by apply_constraints, which fit calls after each step") {
  Generator gen(23);
  Sequential<double> model(5);
  auto& dense = model.add(Dense<double, ReLU>(5, 8, gen)).with_max_norm(0.5);
  model.add(Dense<double>(8, 3, gen));
  CHECK(dense.max_norm().value() == 0.5);
  // He init in 5 dimensions gives rows of norm ~ sqrt(2) > 0.5 before any constraint.
  CHECK(dense.weight().rowwise().norm().maxCoeff() > 0.5);
  model.apply_constraints();
  CHECK(dense.weight().rowwise().norm().maxCoeff() <= 0.5 + 1e-12);

  const Matrix<double> x = random_matrix(5, 64, gen, 3.0);
  const Labels y = random_labels(64, 3, gen);
  SGD<double> sgd(model.parameters(), SGDOptions(1.0));  // large steps push rows outward
  FitOptions<double> options;
  options.epochs = 3;
  options.batch_size = 16;
  fit(model, SoftmaxCrossEntropy<double>(), sgd, x, y, gen, options);
  CHECK(dense.weight().rowwise().norm().maxCoeff() <= 0.5 + 1e-12);
  CHECK(model.layer(0).config().number("max_norm") == 0.5);

  CHECK_THROWS_AS(Dense<double>(2, 2, gen).with_max_norm(0.0), InvalidArgument);
  CHECK_THROWS_AS(Dense<double>(2, 2, gen).with_max_norm(-3.0), InvalidArgument);
  CHECK_THROWS_AS(Dense<double>(2, 2, gen).with_max_norm(std::numeric_limits<double>::infinity()),
                  InvalidArgument);
}

TEST_CASE("clip_grad_norm scales every gradient by max_norm / (total + 1e-6), like torch") {
  TwoParameters p;
  // total = sqrt(3^2 + 4^2) = 5; coef = 1 / (5 + 1e-6) < 1.
  CHECK(clip_grad_norm(p.views(), 1.0) == doctest::Approx(5.0).epsilon(1e-15));
  const double coef = 1.0 / (5.0 + 1e-6);
  CHECK(p.ga(0) == doctest::Approx(3 * coef).epsilon(1e-15));
  CHECK(p.gb(1) == doctest::Approx(4 * coef).epsilon(1e-15));
  CHECK(p.ga(1) == 0.0);
  CHECK(std::sqrt(p.ga.squaredNorm() + p.gb.squaredNorm()) < 1.0);  // just below: the 1e-6
  CHECK(p.buffer == Vector<double>::Constant(2, 100.0));            // no gradient: not counted

  // Below the threshold (coef = 10 / 5.000001 > 1): untouched bit for bit.
  TwoParameters q;
  CHECK(clip_grad_norm(q.views(), 10.0) == doctest::Approx(5.0));
  CHECK(q.ga == (Vector<double>(2) << 3, 0).finished());
  CHECK(q.gb == (Vector<double>(3) << 0, 4, 0).finished());

  // Exactly at the threshold: coef = 5 / 5.000001 < 1 scales a hair, as torch does.
  TwoParameters r;
  clip_grad_norm(r.views(), 5.0);
  CHECK(r.ga(0) < 3.0);

  TwoParameters s;
  s.gb(2) = std::numeric_limits<double>::infinity();
  CHECK_THROWS_AS(clip_grad_norm(s.views(), 1.0, true), NumericalError);
  CHECK(s.ga(0) == 3.0);  // checked before scaling
  CHECK(std::isinf(clip_grad_norm(s.views(), 1.0)));
  CHECK_THROWS_AS(clip_grad_norm(p.views(), -1.0), InvalidArgument);
  CHECK_THROWS_AS(clip_grad_norm(p.views(), std::numeric_limits<double>::quiet_NaN()),
                  InvalidArgument);
}

TEST_CASE("clip_grad_value clamps every gradient entry to [-v, v]") {
  TwoParameters p;
  p.ga << -2.0, 0.3;
  p.gb << 0.7, -0.1, 0.5;
  clip_grad_value(p.views(), 0.5);
  CHECK(p.ga == (Vector<double>(2) << -0.5, 0.3).finished());
  CHECK(p.gb == (Vector<double>(3) << 0.5, -0.1, 0.5).finished());
  CHECK(p.buffer == Vector<double>::Constant(2, 100.0));
  CHECK_THROWS_AS(clip_grad_value(p.views(), -0.5), InvalidArgument);

  Vector<float> w = Vector<float>::Zero(3), g(3);
  g << 10.f, -10.f, 0.25f;
  clip_grad_value(ParameterList<float>{view_of<float>("w", w, &g, ParameterRole::weight)}, 1.0);
  CHECK(g == (Vector<float>(3) << 1.f, -1.f, 0.25f).finished());
}

TEST_CASE("fit clips gradients between backward and the optimizer step") {
  Generator gen(24);
  const Matrix<double> x = random_matrix(4, 32, gen, 5.0);
  const Labels y = random_labels(32, 3, gen);
  auto make_model = [](Generator& g) {
    Sequential<double> model(4);
    model.add(Dense<double, Tanh>(4, 6, g));
    model.add(Dense<double>(6, 3, g));
    return model;
  };
  auto flat = [](Sequential<double>& model) {
    Vector<double> all(model.parameter_count());
    Index at = 0;
    for (const auto& p : model.parameters()) {
      all.segment(at, p.size()) = p.flat_value();
      at += p.size();
    }
    return all;
  };
  FitOptions<double> options;
  options.epochs = 1;
  options.batch_size = 32;  // one step of plain SGD with lr 1: the change is minus the gradient
  options.shuffle = false;

  SUBCASE("by norm: the step has norm <= clip") {
    Generator init(25);
    Sequential<double> model = make_model(init);
    const Vector<double> before = flat(model);
    SGD<double> sgd(model.parameters(), SGDOptions(1.0));
    options.clip_grad_norm = 1e-3;
    fit(model, SoftmaxCrossEntropy<double>(), sgd, x, y, gen, options);
    const double step = (flat(model) - before).norm();
    CHECK(step <= 1e-3);
    CHECK(step > 0.99e-3);  // the raw gradient is far larger, so the step is the clip itself
  }
  SUBCASE("by value: no entry moves more than the clip") {
    Generator init(25);
    Sequential<double> model = make_model(init);
    const Vector<double> before = flat(model);
    SGD<double> sgd(model.parameters(), SGDOptions(1.0));
    options.clip_grad_value = 1e-4;
    fit(model, SoftmaxCrossEntropy<double>(), sgd, x, y, gen, options);
    const Vector<double> step = (flat(model) - before).cwiseAbs();
    CHECK(step.maxCoeff() <= 1e-4 * (1 + 1e-12));
    CHECK(step.maxCoeff() >= 1e-4 * (1 - 1e-12));
  }
  SUBCASE("bad thresholds are rejected before training") {
    Generator init(25);
    Sequential<double> model = make_model(init);
    SGD<double> sgd(model.parameters(), SGDOptions(1.0));
    options.clip_grad_norm = 0.0;
    CHECK_THROWS_WITH_AS(fit(model, SoftmaxCrossEntropy<double>(), sgd, x, y, gen, options),
                         doctest::Contains("clipping"), InvalidArgument);
    options.clip_grad_norm.reset();
    options.clip_grad_value = -1.0;
    CHECK_THROWS_AS(fit(model, SoftmaxCrossEntropy<double>(), sgd, x, y, gen, options),
                    InvalidArgument);
  }
}
