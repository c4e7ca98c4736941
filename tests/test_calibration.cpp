// Calibration metrics and temperature scaling, against values worked out by hand.
//
// The four-sample case used throughout (3 classes, one sample per column):
//   sample  p                    label  argmax  confidence  correct
//   0       (0.70, 0.20, 0.10)   0      0       0.70        yes
//   1       (0.28, 0.62, 0.10)   2      1       0.62        no
//   2       (0.09, 0.09, 0.82)   2      2       0.82        yes
//   3       (0.25, 0.25, 0.50)   0      2       0.50        no

#include <doctest/doctest.h>

#include <cmath>
#include <dropnet/dropnet.hpp>
#include <vector>

using namespace dropnet;

namespace {

template <class T>
Matrix<T> four_samples() {
  Matrix<T> p(3, 4);
  p << T(0.70), T(0.28), T(0.09), T(0.25),  //
      T(0.20), T(0.62), T(0.09), T(0.25),   //
      T(0.10), T(0.10), T(0.82), T(0.50);
  return p;
}

Labels four_labels() {
  Labels y(4);
  y << 0, 2, 2, 0;
  return y;
}

Vector<double> values(std::initializer_list<double> list) {
  Vector<double> v(static_cast<Index>(list.size()));
  Index i = 0;
  for (double x : list) v(i++) = x;
  return v;
}

}  // namespace

TEST_CASE_TEMPLATE("calibration: equal-width bins, ECE and MCE by hand", T, float, double) {
  const Matrix<T> p = four_samples<T>();
  const Labels y = four_labels();
  const double tol = std::is_same_v<T, float> ? 1e-6 : 1e-12;

  SUBCASE("two bins: (0, 0.5] holds sample 3, (0.5, 1] the other three") {
    const Calibration c = calibration(p, y, {2, Binning::equal_width});
    REQUIRE(c.bins.size() == 2);
    CHECK(c.bins[0].count == 1);
    CHECK(c.bins[0].mean_confidence == doctest::Approx(0.5).epsilon(tol));
    CHECK(c.bins[0].accuracy == 0.0);
    CHECK(c.bins[1].count == 3);
    CHECK(c.bins[1].mean_confidence == doctest::Approx(2.14 / 3).epsilon(tol));
    CHECK(c.bins[1].accuracy == doctest::Approx(2.0 / 3).epsilon(tol));
    CHECK(c.bins[1].lower == 0.5);
    CHECK(c.bins[1].upper == 1.0);
    // ECE = 1/4 |0 - 0.5| + 3/4 |2/3 - 2.14/3| = 0.125 + 0.035; MCE = 0.5.
    CHECK(c.ece == doctest::Approx(0.16).epsilon(tol));
    CHECK(c.mce == doctest::Approx(0.5).epsilon(tol));
  }
  SUBCASE("fifteen bins (the default): every sample alone, ECE = mean |correct - confidence|") {
    const Calibration c = calibration(p, y);
    REQUIRE(c.bins.size() == 15);
    // 0.5 -> bin 7 = (7/15, 8/15], 0.62 -> 9, 0.7 -> 10, 0.82 -> 12.
    for (std::size_t b : {7u, 9u, 10u, 12u}) CHECK(c.bins[b].count == 1);
    Index total = 0;
    for (const auto& bin : c.bins) total += bin.count;
    CHECK(total == 4);
    // (0.3 + 0.62 + 0.18 + 0.5) / 4
    CHECK(c.ece == doctest::Approx(0.4).epsilon(tol));
    CHECK(c.mce == doctest::Approx(0.62).epsilon(tol));
  }
  SUBCASE("a confidence on a bin edge goes to the bin it closes") {
    Matrix<T> edge(2, 1);
    edge << T(0.75), T(0.25);
    Labels first(1);
    first << 0;
    const Calibration c = calibration(edge, first, {4, Binning::equal_width});
    CHECK(c.bins[2].count == 1);  // (0.5, 0.75]
    CHECK(c.ece == doctest::Approx(0.25));
  }
}

TEST_CASE_TEMPLATE("calibration: equal-mass bins by hand", T, float, double) {
  const Matrix<T> p = four_samples<T>();
  const Labels y = four_labels();
  SUBCASE("two bins of two: {0.5, 0.62} both wrong, {0.7, 0.82} both right") {
    const Calibration c = calibration(p, y, {2, Binning::equal_mass});
    REQUIRE(c.bins.size() == 2);
    CHECK(c.bins[0].count == 2);
    CHECK(c.bins[0].lower == doctest::Approx(0.5));
    CHECK(c.bins[0].upper == doctest::Approx(0.62));
    CHECK(c.bins[0].mean_confidence == doctest::Approx(0.56));
    CHECK(c.bins[0].accuracy == 0.0);
    CHECK(c.bins[1].mean_confidence == doctest::Approx(0.76));
    CHECK(c.bins[1].accuracy == 1.0);
    // ECE = 1/2 * 0.56 + 1/2 * 0.24; MCE = 0.56.
    CHECK(c.ece == doctest::Approx(0.40));
    CHECK(c.mce == doctest::Approx(0.56));
  }
  SUBCASE("three bins of four samples: sizes 1, 1, 2") {
    const Calibration c = calibration(p, y, {3, Binning::equal_mass});
    CHECK(c.bins[0].count == 1);
    CHECK(c.bins[1].count == 1);
    CHECK(c.bins[2].count == 2);
    // |0 - 0.5|/4 + |0 - 0.62|/4 + 2/4 |1 - 0.76|
    CHECK(c.ece == doctest::Approx((0.5 + 0.62) / 4 + 0.12));
  }
  SUBCASE("more bins than samples: the extra bins stay empty and do not count") {
    const Calibration c = calibration(p, y, {6, Binning::equal_mass});
    Index nonempty = 0;
    for (const auto& bin : c.bins) nonempty += bin.count > 0 ? 1 : 0;
    CHECK(nonempty == 4);
    CHECK(c.ece == doctest::Approx(0.4));
  }
}

TEST_CASE_TEMPLATE("nll, Brier score and accuracy by hand", T, float, double) {
  const Matrix<T> p = four_samples<T>();
  const Labels y = four_labels();
  // -(log 0.7 + log 0.1 + log 0.82 + log 0.25) / 4 = 4.244005 / 4
  CHECK(nll(p, y) == doctest::Approx(1.0610013).epsilon(1e-6));
  // (0.14 + 1.2728 + 0.0486 + 0.875) / 4: e.g. sample 1: 0.28^2 + 0.62^2 + 0.9^2.
  CHECK(brier_score(p, y) == doctest::Approx(0.5841).epsilon(1e-6));
  CHECK(accuracy(p, y) == 0.5);

  SUBCASE("a zero probability of the label costs -log 1e-12, not infinity") {
    Matrix<T> certain(2, 1);
    certain << T(1), T(0);
    Labels wrong(1);
    wrong << 1;
    CHECK(nll(certain, wrong) == doctest::Approx(-std::log(1e-12)));
    CHECK(brier_score(certain, wrong) == doctest::Approx(2.0));
  }
}

TEST_CASE("accuracy_coverage: one point per distinct uncertainty, most certain first") {
  const Matrix<double> p = four_samples<double>();
  const Labels y = four_labels();
  SUBCASE("uncertainty 1 - confidence: the two right answers are the most certain") {
    const Vector<double> u = Vector<double>::Ones(4) - confidences(p);
    const auto curve = accuracy_coverage(p, y, u);
    REQUIRE(curve.size() == 4);
    CHECK(curve[0].coverage == 0.25);
    CHECK(curve[0].accuracy == 1.0);
    CHECK(curve[0].threshold == doctest::Approx(0.18));
    CHECK(curve[1].accuracy == 1.0);
    CHECK(curve[2].coverage == 0.75);
    CHECK(curve[2].accuracy == doctest::Approx(2.0 / 3));
    CHECK(curve[3].coverage == 1.0);
    CHECK(curve[3].accuracy == 0.5);
  }
  SUBCASE("tied uncertainties enter together") {
    const auto curve = accuracy_coverage(p, y, values({0.1, 0.1, 0.2, 0.3}));
    REQUIRE(curve.size() == 3);
    CHECK(curve[0].coverage == 0.5);
    CHECK(curve[0].accuracy == 0.5);  // samples 0 (right) and 1 (wrong)
    CHECK(curve[1].accuracy == doctest::Approx(2.0 / 3));
  }
  CHECK_THROWS_AS(accuracy_coverage(p, y, values({0.1, 0.2})), InvalidArgument);
}

TEST_CASE("auroc: the Mann-Whitney statistic, ties counted one half") {
  SUBCASE("one positive above two of three negatives: 2/3") {
    CHECK(auroc(values({0.1, 0.4, 0.35, 0.8}), {false, true, false, false}) ==
          doctest::Approx(2.0 / 3));
  }
  SUBCASE("ties: positives 0.5 and 0.9 against negatives 0.5 and 0.2 win 3.5 of 4 pairs") {
    CHECK(auroc(values({0.5, 0.5, 0.2, 0.9}), {true, false, false, true}) ==
          doctest::Approx(0.875));
  }
  SUBCASE("a reversed score gives 1 - AUROC; a constant one gives 0.5") {
    CHECK(auroc(values({0.9, 0.6, 0.65, 0.2}), {false, true, false, false}) ==
          doctest::Approx(1.0 / 3));
    CHECK(auroc(values({1, 1, 1, 1}), {true, false, false, true}) == doctest::Approx(0.5));
  }
  SUBCASE("one class only: NaN") {
    CHECK(std::isnan(auroc(values({0.1, 0.2}), {true, true})));
    CHECK(std::isnan(auroc(values({0.1, 0.2}), {false, false})));
  }
  CHECK_THROWS_AS(auroc(values({0.1, 0.2}), {true}), InvalidArgument);
}

TEST_CASE("misclassification_auroc: the mistakes as positives") {
  const Matrix<double> p = four_samples<double>();
  const Labels y = four_labels();
  // 1 - confidence ranks both mistakes (0.38, 0.5) above both right answers (0.3, 0.18).
  CHECK(misclassification_auroc(p, y, Vector<double>::Ones(4) - confidences(p)) == 1.0);
  // An uncertainty that ranks sample 1 (a mistake) lowest: mistakes win 2 of 4 pairs.
  CHECK(misclassification_auroc(p, y, values({0.5, 0.1, 0.3, 0.9})) == doctest::Approx(0.5));
}

TEST_CASE("calibration metrics reject inconsistent inputs") {
  const Matrix<double> p = four_samples<double>();
  Labels short_labels(3);
  short_labels << 0, 1, 2;
  Labels bad = four_labels();
  bad(1) = 3;
  CHECK_THROWS_AS(calibration(p, short_labels), InvalidArgument);
  CHECK_THROWS_AS(nll(p, bad), InvalidArgument);
  CHECK_THROWS_AS(brier_score(p, bad), InvalidArgument);
  CHECK_THROWS_AS(calibration(p, four_labels(), {0, Binning::equal_width}), InvalidArgument);
  CHECK_THROWS_AS(calibration(Matrix<double>(3, 0), Labels(0)), InvalidArgument);
}

TEST_CASE_TEMPLATE("fit_temperature: the closed-form optimum of a two-class case", T, float,
                   double) {
  // Every sample has logits (4, 0); 3 of 4 are class 0. NLL(T) is minimal where
  // sigmoid(4 / T) = 3/4, i.e. T = 4 / log 3 = 3.6410.
  Matrix<T> logits(2, 4);
  logits.row(0).setConstant(T(4));
  logits.row(1).setZero();
  Labels y(4);
  y << 0, 0, 0, 1;
  const TemperatureFit fit = fit_temperature(logits, y);
  CHECK(fit.temperature == doctest::Approx(4.0 / std::log(3.0)).epsilon(2e-4));
  CHECK_FALSE(fit.at_bound);
  // At the optimum NLL = H(3/4) = -(3/4 log 3/4 + 1/4 log 1/4); at T = 1, -(3/4) log sigmoid(4)
  // - (1/4) log sigmoid(-4).
  CHECK(fit.nll_after == doctest::Approx(-(0.75 * std::log(0.75) + 0.25 * std::log(0.25))));
  const double s = 1.0 / (1.0 + std::exp(-4.0));
  CHECK(fit.nll_before == doctest::Approx(-(0.75 * std::log(s) + 0.25 * std::log(1.0 - s))));
  CHECK(fit.evaluations < 40);
}

TEST_CASE("fit_temperature: a stationary point of NLL on random logits, and the bracket") {
  Generator gen(7);
  Matrix<double> logits(5, 200);
  Labels y(200);
  for (Index j = 0; j < 200; ++j) {
    for (Index k = 0; k < 5; ++k) logits(k, j) = gen.normal(0.0, 3.0);
    Index top = 0;
    logits.col(j).maxCoeff(&top);
    // The argmax 70% of the time, else a random class: a finite optimal T.
    y(j) = static_cast<Labels::Scalar>(gen.uniform() < 0.7 ? top : Index(gen.below(5)));
  }
  const TemperatureFit fit = fit_temperature(logits, y);
  const double t = fit.temperature, h = 1e-3 * t;
  const double slope =
      (temperature_nll(logits, y, t + h) - temperature_nll(logits, y, t - h)) / (2 * h);
  CHECK(std::abs(slope) < 1e-4);
  CHECK(fit.nll_after <= temperature_nll(logits, y, 0.99 * t));
  CHECK(fit.nll_after <= temperature_nll(logits, y, 1.01 * t));
  CHECK(fit.nll_after < fit.nll_before);
  CHECK_FALSE(fit.at_bound);

  SUBCASE("a minimum outside the bracket is reported at its end") {
    // The optimum lies above 0.1 (logits x 10 are absurdly over-confident): the search stops
    // at the bracket's upper end and says so.
    REQUIRE(t > 0.2);
    const TemperatureFit narrow = fit_temperature(logits, y, {0.05, 0.1, 1e-4});
    CHECK(narrow.at_bound);
    CHECK(narrow.temperature == doctest::Approx(0.1).epsilon(1e-3));
  }
  CHECK_THROWS_AS(fit_temperature(logits, y, {2.0, 1.0, 1e-4}), InvalidArgument);
  CHECK_THROWS_AS(temperature_nll(logits, y, 0.0), InvalidArgument);
}

TEST_CASE_TEMPLATE("TemperatureScaling layer: divides the logits, keeps the argmax", T, float,
                   double) {
  Generator gen(3);
  Sequential<T> model(4);
  model.add(Dense<T>(4, 3, gen));
  Matrix<T> x(4, 5);
  for (Index i = 0; i < x.size(); ++i) x.data()[i] = gen.normal<T>();
  const Matrix<T> logits = predict(model, x);
  model.add(TemperatureScaling<T>(2.5));
  const Matrix<T> scaled = predict(model, x);
  CHECK((scaled - logits / T(2.5)).cwiseAbs().maxCoeff() < T(1e-6));
  CHECK(predicted_classes(scaled) == predicted_classes(logits));

  const LayerConfig config = model.layer(1).config();
  CHECK(config.kind == "TemperatureScaling");
  CHECK(config.number("temperature") == 2.5);
  ElementBudget budget(0);  // the layer allocates nothing: an empty budget suffices
  const LayerPtr<T> rebuilt = TemperatureScaling<T>::from_config(config, budget);
  CHECK(rebuilt->config().number("temperature") == 2.5);
  CHECK_THROWS_AS(TemperatureScaling<T>(0.0), InvalidArgument);
  CHECK_THROWS_AS(TemperatureScaling<T>(std::nan("")), InvalidArgument);
}

TEST_CASE("TemperatureScaling layer: gradient check in double") {
  Generator gen(11);
  Sequential<double> model(3);
  model.add(Dense<double>(3, 4, gen));
  model.add(TemperatureScaling<double>(0.7));
  Matrix<double> x(3, 6);
  for (Index i = 0; i < x.size(); ++i) x.data()[i] = gen.normal<double>();
  Labels y(6);
  y << 0, 1, 2, 3, 0, 1;
  GradientCheckOptions options;
  options.check_input = true;
  const auto result = gradient_check(model, SoftmaxCrossEntropy<double>(), x, y, gen, options);
  CHECK(result.max_relative_error < 1e-7);
}
