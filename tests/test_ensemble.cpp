// Deep ensembles: the mean of the members' probabilities, the members' spread, and seeds.

#include <doctest/doctest.h>

#include <algorithm>
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

// One implementation of the averaging (issue 16): mc_predict and ensemble_predict both reduce
// their draws with detail::PredictionAverage, so fed the same draws they agree bit for bit.
TEST_CASE("mc_predict and ensemble_predict share one averaging: same draws, same bits") {
  Generator gen(11);
  Sequential<double> model(3);
  model.add(Dropout<double>(0.3));
  model.add(Dense<double, Tanh>(3, 5, gen));
  model.add(Dense<double>(5, 4, gen));
  const Matrix<double> x = inputs<double>(9, 4);
  const int passes = 6;

  McDropoutOptions options;
  options.outputs = McOutputs::logits;
  options.batch_size = 4;  // three column blocks: 4, 4 and 1
  Generator mc_gen(21);
  const McPrediction<double> mc = mc_predict(model, x, passes, mc_gen, options);

  // The same passes drawn by hand, block by block, into the shared average.
  Generator hand_gen(21);
  detail::PredictionAverage<double> by_hand(x.cols(), McOutputs::logits);
  for (Index first = 0; first < x.cols(); first += 4) {
    const Index count = std::min<Index>(4, x.cols() - first);
    const Matrix<double> block = x.middleCols(first, count);
    for (int t = 0; t < passes; ++t)
      by_hand.add(model.forward_borrowed(block, Mode::mc_sample, &hand_gen), first, t + 1);
  }
  const McPrediction<double> hand = by_hand.finish(passes);
  CHECK(mc.passes == hand.passes);
  CHECK(mc.mean == hand.mean);
  CHECK(mc.variance == hand.variance);
  CHECK(mc.probabilities == hand.probabilities);
  CHECK(mc.predictive_entropy == hand.predictive_entropy);
  CHECK(mc.mutual_information == hand.mutual_information);

  // An ensemble is the same average with one eval-mode member per draw.
  auto members = train_ensemble<double>(
      3, 30, [](Generator& g) { return small_classifier<double>(g); },
      [](Sequential<double>&, Generator&) {});
  detail::PredictionAverage<double> of_members(x.cols(), McOutputs::logits);
  for (Index m = 0; m < 3; ++m)
    of_members.add(predict(members[static_cast<std::size_t>(m)], x), 0, m + 1);
  const McPrediction<double> expected = of_members.finish(3);
  const McPrediction<double> ensemble = ensemble_predict(members, x);
  CHECK(ensemble.passes == 3);
  CHECK(ensemble.mean == expected.mean);
  CHECK(ensemble.variance == expected.variance);
  CHECK(ensemble.probabilities == expected.probabilities);
  CHECK(ensemble.expected_entropy == expected.expected_entropy);
  CHECK(ensemble.mutual_information == expected.mutual_information);
}
