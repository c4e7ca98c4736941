// mc_predict: Monte-Carlo dropout predictive mean, variance, entropy and mutual information.
//
// Statistical checks use fixed seeds and 5-sigma bounds from the sampling distribution of the
// estimator for T passes (see each test).

#include <doctest/doctest.h>

#include <cmath>
#include <dropnet/dropnet.hpp>

#include "test_data.hpp"
#include <string>
#include <vector>

using namespace dropnet;
using test::kSigmas;
using test::normal_matrix;

namespace {

/// An identity layer that records the modes and generators it is run with.
class ModeProbe : public Layer<double> {
 public:
  std::vector<Mode> modes;
  std::vector<Index> batch_sizes;
  bool always_had_generator = true;

  std::string name() const override { return "ModeProbe"; }
  Index output_rows(Index rows) const override { return rows; }
  bool is_stochastic() const override { return true; }
  const Matrix<double>& forward(const Matrix<double>& x, Mode mode, Generator* gen) override {
    modes.push_back(mode);
    batch_sizes.push_back(x.cols());
    always_had_generator = always_had_generator && gen != nullptr;
    return x;
  }
  const Matrix<double>& backward(const Matrix<double>& dy, bool) override { return dy; }
  LayerConfig config() const override { return {"ModeProbe", {}, {}}; }
};

double entropy(const Vector<double>& p) {
  double h = 0.0;
  for (Index k = 0; k < p.size(); ++k)
    if (p(k) > 0) h -= p(k) * std::log(p(k));
  return h;
}

/// Classifier: 6 inputs -> 10 ReLU -> dropout -> 4 logits, weights from `seed`.
Sequential<double> classifier(std::uint64_t seed, double p, bool softmax_output = false) {
  Generator gen(seed);
  Sequential<double> model(6);
  model.add(Dense<double, ReLU>(6, 10, gen));
  model.add(Dropout<double>(p));
  model.add(Dense<double>(10, 4, gen));
  if (softmax_output) model.add(ActivationLayer<double, Softmax>());
  return model;
}

template <class F>
void expect_invalid(F call, const std::string& part) {
  try {
    call();
    FAIL("expected InvalidArgument containing '", part, "'");
  } catch (const InvalidArgument& e) {
    const std::string message = e.what();
    INFO(message);
    CHECK(message.rfind("mc_predict", 0) == 0);
    CHECK(message.find(part) != std::string::npos);
  }
}

}  // namespace

TEST_CASE("mc_predict rejects bad arguments and deterministic models") {
  Generator gen(1);
  Sequential<double> model = classifier(1, 0.5);
  const Matrix<double> x = normal_matrix<double>(6, 3, gen);
  expect_invalid([&] { mc_predict(model, x, 0, gen); }, "passes T must be >= 1, got 0");
  McDropoutOptions bad_batch;
  bad_batch.batch_size = 0;
  expect_invalid([&] { mc_predict(model, x, 5, gen, bad_batch); }, "batch_size must be > 0");
  expect_invalid([&] { mc_predict(model, Matrix<double>(6, 0), 5, gen); }, "empty input");
  Sequential<double> deterministic(6);
  deterministic.add(Dense<double>(6, 2, gen));
  expect_invalid([&] { mc_predict(deterministic, x, 5, gen); }, "no stochastic layer");
  CHECK_THROWS_WITH_AS(mc_predict(model, Matrix<double>(Matrix<double>::Ones(5, 3)), 2, gen),
                       doctest::Contains("input has 5 features"), InvalidArgument);
}

TEST_CASE("mc_predict runs every batch T times in mc_sample mode with the Generator") {
  Generator gen(2);
  Sequential<double> model(3);
  auto& probe = model.add(ModeProbe());
  McDropoutOptions options;
  options.batch_size = 4;
  const auto r = mc_predict(model, normal_matrix<double>(3, 10, gen), 7, gen, options);
  CHECK(r.passes == 7);
  REQUIRE(probe.modes.size() == 3 * 7);  // batches of 4, 4, 2
  for (Mode mode : probe.modes) CHECK(mode == Mode::mc_sample);
  CHECK(probe.always_had_generator);
  CHECK(probe.batch_sizes.front() == 4);
  CHECK(probe.batch_sizes.back() == 2);
}

TEST_CASE("input dropout, linear model: MC mean -> eval output, MC variance -> sum w^2 x^2 p/q") {
  // y = W (x * m / q) + b: E[y_i] = (W x + b)_i, the eval output (inverted dropout), and
  // Var[y_i] = sum_k W_ik^2 x_k^2 p / q. Over T passes the MC mean has sd sqrt(Var / T). The MC
  // variance (1/T normalization) has mean (T-1)/T Var and sd sqrt((mu4 - Var^2) / T), where
  // mu4 = 3 Var^2 + sum_k kappa4_k and kappa4_k = c_k^4 q p (1 - 6 q p) / q^4, c_k = W_ik x_k,
  // is the fourth cumulant of the Bernoulli term c_k m_k / q.
  const double p = 0.3, q = 1.0 - p;
  const int passes = 4000;
  Generator gen(3);
  Sequential<double> model(20);
  model.add(Dropout<double>(p));
  auto& dense = model.add(Dense<double>(20, 4, gen));
  dense.bias().setConstant(0.5);
  const Matrix<double> x = normal_matrix<double>(20, 5, gen);
  const Matrix<double> eval = predict(model, x);
  const McPrediction<double> r = mc_predict(model, x, passes, gen);
  REQUIRE(r.mean.rows() == 4);
  REQUIRE(r.mean.cols() == 5);
  CHECK(r.probabilities.size() == 0);
  double worst_mean = 0, worst_var = 0;
  for (Index j = 0; j < x.cols(); ++j) {
    for (Index i = 0; i < 4; ++i) {
      const Eigen::ArrayXd c = dense.weight().row(i).transpose().array() * x.col(j).array();
      const double var = (c.square() * p / q).sum();
      const double kappa4 = (c.pow(4) * q * p * (1 - 6 * q * p) / std::pow(q, 4)).sum();
      const double var_sd = std::sqrt((2 * var * var + kappa4) / passes);
      const double mean_z = std::abs(r.mean(i, j) - eval(i, j)) / std::sqrt(var / passes);
      const double var_z = std::abs(r.variance(i, j) - var * (passes - 1) / passes) / var_sd;
      worst_mean = std::max(worst_mean, mean_z);
      worst_var = std::max(worst_var, var_z);
    }
  }
  INFO("largest deviations in sd: mean ", worst_mean, ", variance ", worst_var);
  CHECK(worst_mean <= kSigmas);
  CHECK(worst_var <= kSigmas);
}

TEST_CASE("DropConnect in mc_predict: the MC mean converges to the mean-field eval output") {
  // Identity activation: E[(M * W) v + b] = q W v + b = mean-field; Var = q p sum W^2 v^2.
  const double p = 0.5, q = 1.0 - p;
  const int passes = 3000;
  Generator gen(4);
  Sequential<double> model(10);
  auto& layer = model.add(DropConnectDense<double>(10, 3, p, gen));
  layer.with_per_sample_masks();
  const Matrix<double> x = normal_matrix<double>(10, 4, gen);
  const Matrix<double> mean_field = predict(model, x);
  const McPrediction<double> r = mc_predict(model, x, passes, gen);
  const Matrix<double> var =
      q * p * layer.weight().array().square().matrix() * x.array().square().matrix();
  const double worst =
      ((r.mean - mean_field).array().abs() / (var / passes).array().sqrt()).maxCoeff();
  INFO("largest |MC mean - mean-field| in sd: ", worst);
  CHECK(worst <= kSigmas);
  // A variance estimate from T near-normal draws has relative sd ~ sqrt(2 / T) = 0.026: 0.2 is
  // more than 7 of those, with room for the sums' excess kurtosis.
  CHECK(((r.variance.array() - var.array()).abs() <= 0.2 * var.array()).all());
}

TEST_CASE("p = 0: zero variance, the eval output, zero mutual information") {
  Generator gen(5);
  Sequential<double> model = classifier(5, 0.0);
  const Matrix<double> x = normal_matrix<double>(6, 7, gen);
  const Matrix<double> eval = predict(model, x);
  McDropoutOptions options;
  options.outputs = McOutputs::logits;
  const McPrediction<double> r = mc_predict(model, x, 20, gen, options);
  CHECK(r.mean == eval);
  CHECK(r.variance.isZero(0.0));
  // Identical passes: only the rounding of averaging 20 equal probabilities remains.
  CHECK(r.mutual_information.maxCoeff() <= 1e-14);
  Matrix<double> softmax;
  Softmax{}.forward(eval, softmax);
  CHECK((r.probabilities - softmax).cwiseAbs().maxCoeff() <= 1e-14);
  CHECK((r.predictive_entropy - r.expected_entropy).cwiseAbs().maxCoeff() <= 1e-13);
}

TEST_CASE("classifier statistics match their definitions on replayed passes") {
  const int passes = 50;
  Generator gen(6);
  Sequential<double> model = classifier(6, 0.5);
  const Matrix<double> x = normal_matrix<double>(6, 9, gen);
  McDropoutOptions options;
  options.outputs = McOutputs::logits;
  options.batch_size = 4;  // batches of 4, 4, 1
  Generator replay = gen;
  const McPrediction<double> r = mc_predict(model, x, passes, gen, options);

  // Replay: same draws (batch by batch, pass by pass), statistics by their textbook formulas.
  Matrix<double> sum = Matrix<double>::Zero(4, 9), sum_sq = Matrix<double>::Zero(4, 9);
  Matrix<double> prob_sum = Matrix<double>::Zero(4, 9);
  Vector<double> entropy_sum = Vector<double>::Zero(9);
  for (Index first = 0; first < 9; first += 4) {
    const Index count = std::min<Index>(4, 9 - first);
    const Matrix<double> batch = x.middleCols(first, count);
    for (int t = 0; t < passes; ++t) {
      const Matrix<double> y = model.forward(batch, Mode::mc_sample, replay);
      Matrix<double> probs;
      Softmax{}.forward(y, probs);
      sum.middleCols(first, count) += y;
      sum_sq.middleCols(first, count) += y.cwiseAbs2();
      prob_sum.middleCols(first, count) += probs;
      for (Index j = 0; j < count; ++j) entropy_sum(first + j) += entropy(probs.col(j));
    }
  }
  CHECK(replay.position() == gen.position());
  const Matrix<double> mean = sum / passes;
  const Matrix<double> variance = sum_sq / passes - mean.cwiseAbs2();
  const Matrix<double> pbar = prob_sum / passes;
  Vector<double> h(9);
  for (Index j = 0; j < 9; ++j) h(j) = entropy(pbar.col(j));
  const Vector<double> expected_h = entropy_sum / passes;

  CHECK((r.mean - mean).cwiseAbs().maxCoeff() <= 1e-12);
  CHECK((r.variance - variance).cwiseAbs().maxCoeff() <= 1e-10);
  CHECK((r.probabilities - pbar).cwiseAbs().maxCoeff() <= 1e-12);
  CHECK((r.predictive_entropy - h).cwiseAbs().maxCoeff() <= 1e-12);
  CHECK((r.expected_entropy - expected_h).cwiseAbs().maxCoeff() <= 1e-12);
  CHECK((r.mutual_information - (h - expected_h)).cwiseAbs().maxCoeff() <= 1e-12);

  // Bounds: 0 <= MI <= H <= log K, E[H] <= H (entropy is concave), and dropout makes MI > 0.
  const double log_k = std::log(4.0);
  CHECK((r.mutual_information.array() >= 0.0).all());
  CHECK((r.predictive_entropy.array() <= log_k + 1e-12).all());
  CHECK((r.expected_entropy.array() <= r.predictive_entropy.array() + 1e-12).all());
  CHECK((r.mutual_information.array() <= r.predictive_entropy.array()).all());
  INFO("mutual information: ", r.mutual_information.transpose());
  CHECK(r.mutual_information.minCoeff() > 1e-4);
  CHECK(((r.probabilities.colwise().sum().array() - 1.0).abs() <= 1e-12).all());
}

TEST_CASE("probability outputs give the same statistics as logits plus softmax") {
  Generator data(7);
  const Matrix<double> x = normal_matrix<double>(6, 5, data);
  Sequential<double> logits_model = classifier(8, 0.4);
  Sequential<double> probs_model = classifier(8, 0.4, true);
  McDropoutOptions options;
  Generator g1(9), g2(9);
  options.outputs = McOutputs::logits;
  const auto a = mc_predict(logits_model, x, 30, g1, options);
  options.outputs = McOutputs::probabilities;
  const auto b = mc_predict(probs_model, x, 30, g2, options);
  CHECK((a.probabilities - b.probabilities).cwiseAbs().maxCoeff() <= 1e-12);
  CHECK((a.mutual_information - b.mutual_information).cwiseAbs().maxCoeff() <= 1e-12);
  CHECK((a.predictive_entropy - b.predictive_entropy).cwiseAbs().maxCoeff() <= 1e-12);
  CHECK((b.mean - b.probabilities).cwiseAbs().maxCoeff() <= 1e-12);  // outputs are probabilities
}

TEST_CASE("a single logit is a binary classifier (sigmoid, entropy <= log 2)") {
  Generator gen(10);
  Sequential<double> model(4);
  model.add(Dense<double, Tanh>(4, 8, gen));
  model.add(Dropout<double>(0.5));
  model.add(Dense<double>(8, 1, gen));
  const Matrix<double> x = normal_matrix<double>(4, 6, gen);
  McDropoutOptions options;
  options.outputs = McOutputs::logits;
  const auto r = mc_predict(model, x, 200, gen, options);
  REQUIRE(r.probabilities.rows() == 1);
  CHECK((r.probabilities.array() > 0.0).all());
  CHECK((r.probabilities.array() < 1.0).all());
  CHECK((r.predictive_entropy.array() <= std::log(2.0) + 1e-12).all());
  CHECK((r.mutual_information.array() >= 0.0).all());
  CHECK(r.mutual_information.maxCoeff() > 0.0);
  for (Index j = 0; j < 6; ++j) {
    const double pj = r.probabilities(0, j);
    CHECK(r.predictive_entropy(j) ==
          doctest::Approx(-pj * std::log(pj) - (1 - pj) * std::log(1 - pj)).epsilon(1e-12));
  }
}

TEST_CASE_TEMPLATE("mc_predict works in float and double; one pass has zero variance", T, float,
                   double) {
  Generator gen(11);
  Sequential<T> model(5);
  model.add(Dense<T, ReLU>(5, 16, gen));
  model.add(Dropout<T>(0.5));
  model.add(Dense<T>(16, 3, gen));
  const Matrix<T> x = normal_matrix<T>(5, 40, gen);
  McDropoutOptions options;
  options.outputs = McOutputs::logits;
  options.batch_size = 16;
  const auto one = mc_predict(model, x, 1, gen, options);
  CHECK(one.variance.isZero(0));
  CHECK(one.mutual_information.isZero(0));
  const auto many = mc_predict(model, x, 25, gen, options);
  CHECK(many.mean.allFinite());
  CHECK(many.variance.allFinite());
  CHECK((many.variance.array() >= T(0)).all());
  CHECK((many.variance.array() > T(0)).any());
  CHECK((many.predictive_entropy.array() <= T(std::log(3.0) + 1e-5)).all());
  CHECK((many.mutual_information.array() >= T(0)).all());
}
