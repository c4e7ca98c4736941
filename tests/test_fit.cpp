// fit: training end to end on synthetic data, history, callbacks, determinism and bad input.

#include <doctest/doctest.h>

#include <dropnet/dropnet.hpp>
#include <dropnet/training/schedule_callback.hpp>

using namespace dropnet;

namespace {

/// `classes` Gaussian blobs in `features` dimensions: centers ~ N(0, 1), noise N(0, noise^2).
template <class T>
void make_blobs(Index features, Index classes, Index samples, double noise, Generator& gen,
                Matrix<T>& x, Labels& y) {
  Matrix<T> centers(features, classes);
  for (Index i = 0; i < centers.size(); ++i) centers.data()[i] = gen.normal<T>();
  x.resize(features, samples);
  y.resize(samples);
  for (Index j = 0; j < samples; ++j) {
    y(j) = static_cast<int>(j % classes);
    for (Index i = 0; i < features; ++i) x(i, j) = centers(i, y(j)) + gen.normal<T>(T(0), T(noise));
  }
}

template <class T>
Sequential<T> chapter_mlp(Generator& gen) {
  Sequential<T> model(784);
  model.add(Dense<T, ReLU>(784, 128, gen));
  model.add(Dense<T, ReLU>(128, 64, gen));
  model.add(Dense<T>(64, 10, gen));
  return model;
}

/// Stops training once the training accuracy reaches a target.
template <class T>
struct StopAtAccuracy : Callback<T> {
  double target;
  int epoch_begins = 0, epoch_ends = 0;
  long batch_ends = 0;
  explicit StopAtAccuracy(double t) : target(t) {}
  void on_epoch_begin(TrainingContext<T>&, int) override { ++epoch_begins; }
  void on_batch_end(TrainingContext<T>&, const BatchLogs&) override { ++batch_ends; }
  void on_epoch_end(TrainingContext<T>& context, const EpochLogs& logs) override {
    ++epoch_ends;
    if (logs.accuracy >= target) context.stop_training = true;
  }
};

}  // namespace

TEST_CASE_TEMPLATE("a 784-128-64-10 MLP learns 10 noisy blobs", T, float, double) {
  Generator gen(2024);
  Matrix<T> all;
  Labels labels;
  // Noise 3 per coordinate against unit-scale centers: the classes overlap in every coordinate
  // and only the 784-dimensional direction separates them.
  make_blobs<T>(784, 10, 1600, 3.0, gen, all, labels);
  const Matrix<T> x = all.leftCols(1200), x_valid = all.rightCols(400);
  const Labels y = labels.head(1200), y_valid = labels.tail(400);

  Sequential<T> model = chapter_mlp<T>(gen);
  SoftmaxCrossEntropy<T> loss;
  Adam<T> optimizer(model.parameters(), AdamOptions(1e-3));
  FitOptions<T> options;
  options.epochs = 5;
  options.batch_size = 64;
  const History history = fit(model, loss, optimizer, x, y, gen, options, ValidationData<T, Labels>{x_valid, y_valid});
  REQUIRE(history.size() == 5);
  CHECK(history.epochs.back().loss < history.epochs.front().loss);
  CHECK(history.epochs.back().accuracy >= 0.95);
  CHECK(history.epochs.back().val_accuracy >= 0.95);
  MESSAGE("784-128-64-10 on blobs: first loss ", history.epochs.front().loss, ", last loss ",
          history.epochs.back().loss, ", last accuracy ", history.epochs.back().accuracy);
}

TEST_CASE("fit calls the callbacks and stops when asked") {
  Generator gen(5);
  Matrix<double> x;
  Labels y;
  make_blobs<double>(8, 3, 90, 0.3, gen, x, y);
  Sequential<double> model(8);
  model.add(Dense<double, Tanh>(8, 16, gen));
  model.add(Dense<double>(16, 3, gen));
  SoftmaxCrossEntropy<double> loss;
  SGD<double> optimizer(model.parameters(), SGDOptions(0.1).momentum(0.9));
  StopAtAccuracy<double> stopper(0.99);
  FitOptions<double> options;
  options.epochs = 200;
  options.batch_size = 32;
  options.callbacks = {&stopper};
  const History history = fit(model, loss, optimizer, x, y, gen, options);
  CHECK(history.size() < 200);
  CHECK(stopper.epoch_ends == static_cast<int>(history.size()));
  CHECK(stopper.epoch_begins == stopper.epoch_ends);
  CHECK(stopper.batch_ends == 3 * stopper.epoch_ends);  // ceil(90 / 32) batches per epoch
  CHECK(history.epochs.back().accuracy >= 0.99);
  CHECK(std::isnan(history.epochs.back().val_loss));
}

TEST_CASE("same seed, same weights; another seed, other weights") {
  auto train = [](std::uint64_t seed) {
    Generator data(1);
    Matrix<float> x;
    Labels y;
    make_blobs<float>(6, 3, 100, 0.5, data, x, y);
    Generator gen(seed);
    Sequential<float> model(6);
    model.add(Dense<float, ReLU>(6, 12, gen));
    model.add(Dense<float>(12, 3, gen));
    SoftmaxCrossEntropy<float> loss;
    Adam<float> optimizer(model.parameters(), AdamOptions(1e-2));
    FitOptions<float> options;
    options.epochs = 3;
    options.batch_size = 16;
    fit(model, loss, optimizer, x, y, gen, options);
    return Matrix<float>(model.parameters()[0].matrix_value());
  };
  CHECK(train(7) == train(7));
  CHECK(train(7) != train(8));
}

TEST_CASE("fit rejects bad input before touching the model") {
  Generator gen(3);
  Sequential<double> model(4);
  model.add(Dense<double>(4, 2, gen));
  const Matrix<double> before = model.parameters()[0].matrix_value();
  SoftmaxCrossEntropy<double> loss;
  SGD<double> optimizer(model.parameters(), SGDOptions(0.1));
  FitOptions<double> options;
  Labels y(3);
  y << 0, 1, 0;
  CHECK_THROWS_WITH_AS(fit(model, loss, optimizer, Matrix<double>(Matrix<double>::Zero(5, 3)), y, gen, options),
                       doctest::Contains("5 features"), InvalidArgument);
  CHECK_THROWS_WITH_AS(fit(model, loss, optimizer, Matrix<double>(Matrix<double>::Zero(4, 2)), y, gen, options),
                       doctest::Contains("2 samples but targets have 3"), InvalidArgument);
  Matrix<double> with_nan = Matrix<double>::Zero(4, 3);
  with_nan(1, 1) = std::nan("");
  CHECK_THROWS_WITH_AS(fit(model, loss, optimizer, with_nan, y, gen, options), doctest::Contains("NaN"), InvalidArgument);
  Labels bad(3);
  bad << 0, 5, 1;
  CHECK_THROWS_WITH_AS(fit(model, loss, optimizer, Matrix<double>(Matrix<double>::Zero(4, 3)), bad, gen, options),
                       doctest::Contains("label 5"), InvalidArgument);
  options.batch_size = 0;
  CHECK_THROWS_AS(fit(model, loss, optimizer, Matrix<double>(Matrix<double>::Zero(4, 3)), y, gen, options), InvalidArgument);
  CHECK(Matrix<double>(model.parameters()[0].matrix_value()) == before);
}

TEST_CASE("ScheduleCallback steps the schedule once per epoch") {
  Generator gen(5);
  Matrix<double> x;
  Labels y;
  make_blobs<double>(4, 2, 40, 0.3, gen, x, y);
  Sequential<double> model(4);
  model.add(Dense<double>(4, 2, gen));
  SoftmaxCrossEntropy<double> loss;
  SGD<double> optimizer(model.parameters(), SGDOptions(1.0));
  StepLR<double> schedule(optimizer, 2, 0.1);
  ScheduleCallback<double> stepper(schedule);
  FitOptions<double> options;
  options.epochs = 5;
  options.callbacks = {&stepper};
  const History history = fit(model, loss, optimizer, x, y, gen, options);
  // StepLR(2, 0.1) from 1: epochs 0..4 train at 1, 1, 0.1, 0.1, 0.01
  const std::vector<double> expected = {1, 1, 0.1, 0.1, 0.01};
  for (std::size_t e = 0; e < expected.size(); ++e)
    CHECK(history.epochs[e].learning_rate == doctest::Approx(expected[e]));
  CHECK_THROWS_AS(ScheduleCallback<double>(schedule, "val_los"), InvalidArgument);
}
