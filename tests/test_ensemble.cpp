// Deep ensembles: the mean of the members' probabilities, the members' spread, and seeds.

#include <doctest/doctest.h>

#include <cmath>
#include <dropnet/dropnet.hpp>
#include <vector>

using namespace dropnet;

namespace {

/// 3 inputs -> 5 tanh -> 4 logits, weights from `gen`.
template <class T>
Sequential<T> small_classifier(Generator& gen) {
  Sequential<T> model(3);
  model.add(Dense<T, Tanh>(3, 5, gen));
  model.add(Dense<T>(5, 4, gen));
  return model;
}

template <class T>
Matrix<T> inputs(Index cols, std::uint64_t seed) {
  Generator gen(seed);
  Matrix<T> x(3, cols);
  for (Index i = 0; i < x.size(); ++i) x.data()[i] = gen.normal<T>();
  return x;
}

double entropy(const Vector<double>& p) {
  double h = 0.0;
  for (Index k = 0; k < p.size(); ++k) h -= p(k) > 0 ? p(k) * std::log(p(k)) : 0.0;
  return h;
}

}  // namespace

TEST_CASE_TEMPLATE("ensemble_predict: mean of the members' softmax, their spread, BALD", T, float,
                   double) {
  std::vector<std::uint64_t> seeds;
  auto members = train_ensemble<T>(
      3, 100, [](Generator& gen) { return small_classifier<T>(gen); },
      [&](Sequential<T>&, Generator& gen) { seeds.push_back(gen.seed()); });
  CHECK(seeds == std::vector<std::uint64_t>{100, 101, 102});
  const Matrix<T> x = inputs<T>(7, 9);
  const McPrediction<T> p = ensemble_predict(members, x);
  CHECK(p.passes == 3);

  // By hand: softmax of each member's logits, written out.
  const double tol = std::is_same_v<T, float> ? 1e-5 : 1e-12;
  for (Index j = 0; j < x.cols(); ++j) {
    Vector<double> mean_p = Vector<double>::Zero(4), mean_y = Vector<double>::Zero(4);
    Vector<double> second = Vector<double>::Zero(4);
    double mean_h = 0.0;
    for (auto& member : members) {
      const Vector<double> z = predict(member, x).col(j).template cast<double>();
      const Vector<double> e = (z.array() - z.maxCoeff()).exp().matrix();
      const Vector<double> q = e / e.sum();
      mean_p += q / 3.0;
      mean_y += z / 3.0;
      second += z.cwiseProduct(z) / 3.0;
      mean_h += entropy(q) / 3.0;
    }
    for (Index k = 0; k < 4; ++k) {
      CHECK(double(p.probabilities(k, j)) == doctest::Approx(mean_p(k)).epsilon(tol));
      CHECK(double(p.mean(k, j)) == doctest::Approx(mean_y(k)).epsilon(tol));
      // Population variance E[y^2] - E[y]^2 (computed here the naive way, in double).
      CHECK(double(p.variance(k, j)) ==
            doctest::Approx(second(k) - mean_y(k) * mean_y(k)).epsilon(1e-4));
    }
    CHECK(double(p.predictive_entropy(j)) == doctest::Approx(entropy(mean_p)).epsilon(tol));
    CHECK(double(p.expected_entropy(j)) == doctest::Approx(mean_h).epsilon(tol));
    CHECK(double(p.mutual_information(j)) ==
          doctest::Approx(entropy(mean_p) - mean_h).epsilon(1e-4));
  }
}

TEST_CASE("ensemble_predict: identical members agree, so no disagreement is reported") {
  auto same_seed = [](Generator&) {
    Generator fixed(5);
    return small_classifier<double>(fixed);
  };
  auto members = train_ensemble<double>(4, 1, same_seed, [](Sequential<double>&, Generator&) {});
  const Matrix<double> x = inputs<double>(6, 2);
  const McPrediction<double> p = ensemble_predict(members, x);
  CHECK(p.variance.cwiseAbs().maxCoeff() < 1e-12);
  CHECK(p.mutual_information.maxCoeff() < 1e-12);
  Matrix<double> alone;
  Softmax{}.forward(predict(members[0], x), alone);
  CHECK((p.probabilities - alone).cwiseAbs().maxCoeff() < 1e-12);
}

TEST_CASE("train_ensemble: members differ, and the ensemble is reproducible from its seed") {
  auto build = [](Generator& gen) { return small_classifier<double>(gen); };
  auto nothing = [](Sequential<double>&, Generator&) {};
  auto a = train_ensemble<double>(2, 7, build, nothing);
  auto b = train_ensemble<double>(2, 7, build, nothing);
  const Matrix<double> x = inputs<double>(4, 3);
  CHECK(predict(a[0], x) == predict(b[0], x));
  CHECK(predict(a[1], x) == predict(b[1], x));
  CHECK(predict(a[0], x) != predict(a[1], x));
  CHECK_THROWS_AS(train_ensemble<double>(0, 7, build, nothing), InvalidArgument);
  std::vector<Sequential<double>> none;
  CHECK_THROWS_AS(ensemble_predict(none, x), InvalidArgument);
}

TEST_CASE("ensemble_predict: members must agree on the output size") {
  Generator gen(1);
  std::vector<Sequential<double>> members;
  members.push_back(small_classifier<double>(gen));
  Sequential<double> other(3);
  other.add(Dense<double>(3, 2, gen));
  members.push_back(std::move(other));
  CHECK_THROWS_AS(ensemble_predict(members, inputs<double>(3, 1)), InvalidArgument);
}
