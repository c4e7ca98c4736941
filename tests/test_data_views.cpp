// Data as users hold it: fit, evaluate and predict take Eigen views (a Map over a std::vector,
// a block, a row-major matrix) with the result of the same data in a Matrix; ValidationData{x, y}
// deduces its types; a batch in the samples x features layout gets a "transpose?" hint. (Float
// labels are a compile-time error: tests/compile_fail/float_labels.cpp.)

#include <doctest/doctest.h>

#include <string>
#include <type_traits>
#include <vector>

#include <dropnet/dropnet.hpp>

#include "test_data.hpp"

using namespace dropnet;

namespace {

constexpr Index features = 4;
constexpr Index samples = 48;

Sequential<float> small_mlp(std::uint64_t seed) {
  Generator gen(seed);
  Sequential<float> model(features);
  model.add(Dense<float, ReLU>(features, 8, gen));
  model.add(Dense<float>(8, 3, gen));
  return model;
}

Labels labels_mod3() {
  Labels y(samples);
  for (Index j = 0; j < samples; ++j) y(j) = static_cast<int>(j % 3);
  return y;
}

/// Trains a fresh small_mlp on (x, y) for 2 epochs and returns its predictions on x.
template <class X>
Matrix<float> trained_predictions(const X& x, const Labels& y, History* history = nullptr) {
  Sequential<float> model = small_mlp(3);
  SoftmaxCrossEntropy<float> loss;
  SGD<float> optimizer(model.parameters(), SGDOptions(0.1));
  Generator gen(5);
  FitOptions<float> options;
  options.epochs = 2;
  options.batch_size = 16;
  const History h = fit(model, loss, optimizer, x, y, gen, options, ValidationData{x, y});
  if (history) *history = h;
  return predict(model, x);
}

/// The message of the InvalidArgument `f` throws ("" if none).
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const InvalidArgument& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("a Map over a std::vector is viewed, not copied, and trains as the Matrix does") {
  Generator gen(11);
  const Matrix<float> x = test::normal_matrix<float>(features, samples, gen);
  const std::vector<float> buffer(x.data(), x.data() + x.size());
  const Eigen::Map<const Matrix<float>> mapped(buffer.data(), features, samples);
  const MatrixView<float> view(mapped);
  CHECK(view.data() == buffer.data());  // bound in place: no copy on the way into fit

  const Labels y = labels_mod3();
  History from_matrix, from_map;
  const Matrix<float> expected = trained_predictions(x, y, &from_matrix);
  CHECK(trained_predictions(mapped, y, &from_map) == expected);
  REQUIRE(from_map.size() == from_matrix.size());
  CHECK(from_map.epochs.back().loss == from_matrix.epochs.back().loss);
  CHECK(from_map.epochs.back().val_accuracy == from_matrix.epochs.back().val_accuracy);

  // A row-major copy and a block of columns give the same numbers too.
  const Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> row_major = x;
  CHECK(trained_predictions(row_major, y) == expected);
  const Matrix<float> wider = test::normal_matrix<float>(features, samples + 5, gen);
  Matrix<float> padded = wider;
  padded.leftCols(samples) = x;
  CHECK(trained_predictions(padded.leftCols(samples), y) == expected);
}

TEST_CASE("evaluate and predict on a Map equal evaluate and predict on the Matrix") {
  Generator gen(12);
  const Matrix<double> x = test::normal_matrix<double>(features, samples, gen);
  const Eigen::Map<const Matrix<double>> mapped(x.data(), features, samples);
  Sequential<double> model(features);
  model.add(Dense<double>(features, 3, gen));
  SoftmaxCrossEntropy<double> loss;
  const Labels y = labels_mod3();
  CHECK(predict(model, mapped, 7) == predict(model, x, 7));
  const Evaluation a = evaluate(model, loss, mapped, y, 7), b = evaluate(model, loss, x, y, 7);
  CHECK(a.loss == b.loss);
  CHECK(a.accuracy == b.accuracy);
}

TEST_CASE("ValidationData{x, y} deduces the scalar and target types") {
  const Matrix<float> x(2, 3);
  const Labels y(3);
  const Matrix<double> targets(1, 3);
  const Matrix<double> xd(2, 3);
  static_assert(std::is_same_v<decltype(ValidationData{x, y}), ValidationData<float, Labels>>);
  static_assert(std::is_same_v<decltype(ValidationData{xd, targets}),
                               ValidationData<double, Matrix<double>>>);
  const ValidationData validation{x, y};
  CHECK(validation.x.data() == x.data());  // a view of the caller's data
  CHECK(&validation.y == &y);
}

TEST_CASE("a batch in the samples x features layout gets a transpose hint") {
  Generator gen(13);
  const Matrix<float> x = test::normal_matrix<float>(features, samples, gen);
  const Matrix<float> keras_layout = x.transpose();  // samples x features
  const Labels y = labels_mod3();
  Sequential<float> model = small_mlp(3);
  SoftmaxCrossEntropy<float> loss;
  SGD<float> optimizer(model.parameters(), SGDOptions(0.1));

  const std::string fit_error =
      error_of([&] { fit(model, loss, optimizer, keras_layout, y, gen); });
  CHECK(fit_error.find("fit: inputs have 4 samples but targets have 48") == 0);
  CHECK(fit_error.find("transpose?") != std::string::npos);
  CHECK(error_of([&] { evaluate(model, loss, keras_layout, y); }).find("transpose?") !=
        std::string::npos);
  const std::string predict_error = error_of([&] { predict(model, keras_layout); });
  CHECK(predict_error.find("predict: input has 48 features (rows), the model expects 4") == 0);
  CHECK(predict_error.find("transpose?") != std::string::npos);

  // A shape that fits neither layout: the error without the hint.
  const Matrix<float> wrong = test::normal_matrix<float>(5, samples, gen);
  const std::string plain = error_of([&] { predict(model, wrong); });
  CHECK(plain.find("the model expects 4") != std::string::npos);
  CHECK(plain.find("transpose") == std::string::npos);
}
