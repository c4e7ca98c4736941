// Numerical guards: stable forms under extreme inputs (logits of +-1e4, zero-variance BatchNorm
// inputs) and fit's non-finite policies (throw with the epoch, batch and layer; skip the batch;
// stop and restore the last good weights), including huge learning rates.

#include <doctest/doctest.h>

#include <cmath>
#include <dropnet/dropnet.hpp>
#include <limits>
#include <set>
#include <string>
#include <vector>

using namespace dropnet;

namespace {

template <class T>
Matrix<T> column(std::initializer_list<T> values) {
  Matrix<T> m(static_cast<Index>(values.size()), 1);
  Index i = 0;
  for (T v : values) m(i++, 0) = v;
  return m;
}

template <class T>
bool all_finite(const Matrix<T>& m) {
  return m.allFinite();
}

/// An elementwise activation evaluated at +-big and 0 through its matrix forward and backward.
template <class T, class A>
void check_activation_extremes(A activation, T big) {
  INFO(A::kind, " at +-", big);
  Matrix<T> z(1, 5);
  z << -big, -big / 2, T(0), big / 2, big;
  Matrix<T> a, dz;
  activation.forward(z, a);
  const Matrix<T> da = Matrix<T>::Ones(1, 5);
  activation.backward(z, a, da, dz);
  CHECK(all_finite(a));
  CHECK(all_finite(dz));
}

template <class T, class A>
void check_bounded_activation(A activation, T big, T low, T high) {
  Matrix<T> z(1, 2);
  z << -big, big;
  Matrix<T> a;
  activation.forward(z, a);
  CHECK(a(0, 0) == doctest::Approx(static_cast<double>(low)));
  CHECK(a(0, 1) == doctest::Approx(static_cast<double>(high)));
}

}  // namespace

// ------------------------------------------------------------------------ extreme logits

TEST_CASE_TEMPLATE("softmax cross-entropy is exact and finite for logits of +-1e4", T, float, double) {
  const T big = T(1e4);
  SoftmaxCrossEntropy<T> loss;
  Matrix<T> z(3, 2);
  z << big, -big, -big, big, T(0), T(0);
  Labels right(2), wrong(2);
  right << 0, 1;
  wrong << 1, 0;
  Matrix<T> grad;
  CHECK(loss.compute(z, right, &grad) == doctest::Approx(0.0));
  CHECK(all_finite(grad));
  // The true class is 2e4 below the winner: loss = logsumexp - z_label = 1e4 - (-1e4).
  CHECK(static_cast<double>(loss.compute(z, wrong, &grad)) == doctest::Approx(2e4));
  CHECK(all_finite(grad));
  CHECK(grad(0, 1) == doctest::Approx(-0.5));  // (softmax - onehot) / batch
  CHECK(grad(1, 1) == doctest::Approx(0.5));
  // Dense targets and label smoothing go through the same log-sum-exp.
  SoftmaxCrossEntropy<T> smoothed(T(0.1));
  Matrix<T> target = Matrix<T>::Zero(3, 2);
  target(1, 0) = target(0, 1) = T(1);
  CHECK(std::isfinite(static_cast<double>(smoothed.compute(z, target, &grad))));
  CHECK(all_finite(grad));
  // All logits equal and huge: uniform softmax, loss log(3).
  const Matrix<T> flat = Matrix<T>::Constant(3, 1, big);
  Labels first(1);
  first << 0;
  CHECK(static_cast<double>(loss.compute(flat, first, &grad)) == doctest::Approx(std::log(3.0)).epsilon(1e-3));
}

TEST_CASE_TEMPLATE("binary cross-entropy from logits is finite for +-1e4", T, float, double) {
  BinaryCrossEntropyWithLogits<T> loss;
  Matrix<T> z(1, 4), t(1, 4);
  z << T(1e4), T(-1e4), T(1e4), T(-1e4);
  t << T(1), T(0), T(0), T(1);
  Matrix<T> grad;
  // Two exact hits (0) and two misses by 1e4 each, averaged over 4.
  CHECK(static_cast<double>(loss.compute(z, t, &grad)) == doctest::Approx(5e3));
  CHECK(all_finite(grad));
  CHECK(grad(0, 2) == doctest::Approx(0.25));
  CHECK(grad(0, 3) == doctest::Approx(-0.25));
}

TEST_CASE_TEMPLATE("mean squared error of huge outputs overflows only where the math does", T, float,
                   double) {
  MeanSquaredError<T> loss;
  Matrix<T> y(1, 1), t(1, 1);
  y << T(1e4);
  t << T(-1e4);
  Matrix<T> grad;
  CHECK(static_cast<double>(loss.compute(y, t, &grad)) == doctest::Approx(4e8));
  CHECK(all_finite(grad));
}

TEST_CASE_TEMPLATE("every activation stays finite at +-1e4 and saturates correctly", T, float, double) {
  const T big = T(1e4);
  check_activation_extremes<T>(Identity{}, big);
  check_activation_extremes<T>(ReLU{}, big);
  check_activation_extremes<T>(LeakyReLU(0.1), big);
  check_activation_extremes<T>(ELU(1.0), big);
  check_activation_extremes<T>(SELU{}, big);
  check_activation_extremes<T>(Sigmoid{}, big);
  check_activation_extremes<T>(Tanh{}, big);
  check_activation_extremes<T>(Softplus{}, big);
  check_activation_extremes<T>(Swish{}, big);
  check_activation_extremes<T>(GELU{}, big);
  check_activation_extremes<T>(GELUTanh{}, big);
  check_bounded_activation<T>(Sigmoid{}, big, T(0), T(1));
  check_bounded_activation<T>(Tanh{}, big, T(-1), T(1));
  check_bounded_activation<T>(ELU(1.0), big, T(-1), big);
  check_bounded_activation<T>(Softplus{}, big, T(0), big);
  check_bounded_activation<T>(Swish{}, big, T(0), big);
  check_bounded_activation<T>(GELU{}, big, T(0), big);
  check_bounded_activation<T>(GELUTanh{}, big, T(0), big);
  // Scalar reference forms too.
  CHECK(Sigmoid{}.value(-big) == T(0));
  CHECK(Sigmoid{}.value(big) == T(1));
  CHECK(std::isfinite(static_cast<double>(Softplus{}.value(big))));
  CHECK(std::isfinite(static_cast<double>(ELU(1.0).derivative(-big))));
}

TEST_CASE_TEMPLATE("softmax subtracts the column max: +-1e4 gives a valid distribution", T, float,
                   double) {
  Matrix<T> z(3, 2);
  z << T(1e4), T(-1e4), T(-1e4), T(-1e4), T(0), T(-1e4);
  Matrix<T> a, dz;
  Softmax{}.forward(z, a);
  CHECK(all_finite(a));
  CHECK(a(0, 0) == T(1));
  CHECK(a(0, 1) == doctest::Approx(1.0 / 3));
  Softmax{}.backward(z, a, Matrix<T>(Matrix<T>::Ones(3, 2)), dz);
  CHECK(all_finite(dz));
}

TEST_CASE_TEMPLATE("a training step on +-1e4 logits keeps every gradient finite", T, float, double) {
  Generator gen(1);
  Sequential<T> model(2);
  auto& dense = model.add(Dense<T>(2, 3, gen));
  dense.weight() << T(1e4), T(0), T(-1e4), T(0), T(0), T(1);
  Matrix<T> x(2, 4);
  x << T(1), T(-1), T(1), T(0), T(0), T(1), T(0), T(1);
  Labels y(4);
  y << 1, 0, 2, 2;
  SoftmaxCrossEntropy<T> loss;
  SGD<T> sgd(model.parameters(), SGDOptions(0.1));
  FitOptions<T> options;
  options.epochs = 3;
  options.batch_size = 2;
  const History history = fit(model, loss, sgd, x, y, gen, options);
  CHECK(std::isfinite(history.epochs.back().loss));
  CHECK(dense.weight().allFinite());
  const Evaluation e = evaluate(model, loss, x, y);
  CHECK(std::isfinite(e.loss));
}

TEST_CASE("Monte-Carlo entropies stay finite for saturated logits") {
  Generator gen(2);
  Sequential<double> model(2);
  auto& dense = model.add(Dense<double>(2, 3, gen));
  dense.weight() << 1e4, 0, -1e4, 0, 0, 0;
  model.add(Dropout<double>(0.5));
  Matrix<double> x(2, 3);
  x << 1, -1, 0, 0, 1, 0;
  McDropoutOptions options;
  options.outputs = McOutputs::logits;
  const McPrediction<double> p = mc_predict(model, x, 20, gen, options);
  CHECK(p.probabilities.allFinite());
  CHECK(p.predictive_entropy.allFinite());
  CHECK(p.mutual_information.allFinite());
  CHECK((p.mutual_information.array() >= 0.0).all());
}

// ------------------------------------------------------------- zero-variance BatchNorm

TEST_CASE_TEMPLATE("BatchNorm on zero-variance inputs: y = beta, finite gradients, finite eval", T,
                   float, double) {
  for (T level : {T(0), T(3), T(1e4), T(-1e6)}) {
    INFO("constant input ", level);
    BatchNorm<T> bn(3);
    bn.beta() << T(0.5), T(-1), T(2);
    const Matrix<T> x = Matrix<T>::Constant(3, 8, level);
    Generator gen(1);
    const Matrix<T>& y = bn.forward(x, Mode::train, &gen);
    REQUIRE(y.allFinite());
    for (Index j = 0; j < y.cols(); ++j) CHECK(y.col(j).isApprox(bn.beta()));
    Matrix<T> dy(3, 8);
    for (Index i = 0; i < dy.size(); ++i) dy.data()[i] = gen.normal<T>();
    const Matrix<T>& dx = bn.backward(dy, true);
    CHECK(dx.allFinite());
    CHECK(bn.gamma_grad().allFinite());
    CHECK(bn.running_var().allFinite());
    CHECK((bn.running_var().array() >= T(0)).all());
    const Matrix<T> y_eval = bn.forward(x, Mode::eval, nullptr);
    CHECK(y_eval.allFinite());
  }
  // One feature constant, the others not: only that row collapses to beta.
  BatchNorm<T> bn(2);
  Matrix<T> x(2, 4);
  x << T(1), T(1), T(1), T(1), T(-1), T(0), T(1), T(2);
  Generator gen(3);
  const Matrix<T>& y = bn.forward(x, Mode::train, &gen);
  CHECK(y.allFinite());
  CHECK(y.row(0).isZero());
  CHECK(y.row(1).squaredNorm() == doctest::Approx(4.0).epsilon(1e-3));
}

TEST_CASE_TEMPLATE("fit through BatchNorm with a constant feature stays finite", T, float, double) {
  Generator gen(4);
  Sequential<T> model(3);
  model.add(BatchNorm<T>(3));
  model.add(Dense<T, ReLU>(3, 4, gen));
  model.add(BatchNorm<T>(4));
  model.add(Dense<T>(4, 2, gen));
  Matrix<T> x(3, 32);
  for (Index j = 0; j < 32; ++j) x.col(j) << T(7), gen.normal<T>(), T(j % 2);
  Labels y(32);
  for (Index j = 0; j < 32; ++j) y(j) = static_cast<int>(j % 2);
  Adam<T> adam(model.parameters(), AdamOptions(1e-2));
  FitOptions<T> options;
  options.epochs = 5;
  options.batch_size = 8;
  SoftmaxCrossEntropy<T> loss;
  const History h = fit(model, loss, adam, x, y, gen, options);
  CHECK(std::isfinite(h.epochs.back().loss));
  for (const auto& v : model.parameters()) CHECK(v.flat_value().allFinite());
  for (const auto& v : model.buffers()) CHECK(v.flat_value().allFinite());
}

// ------------------------------------------------------------------ non-finite policies

namespace {

/// Softmax cross-entropy that returns NaN on chosen calls (0-based), to inject a bad batch.
template <class T>
class FlakyLoss : public SoftmaxCrossEntropy<T> {
 public:
  explicit FlakyLoss(std::set<int> bad) : bad_(std::move(bad)) {}
  T compute(const Matrix<T>& z, const Labels& y, Matrix<T>* grad) const override {
    const T value = SoftmaxCrossEntropy<T>::compute(z, y, grad);
    return bad_.count(calls_++) ? std::numeric_limits<T>::quiet_NaN() : value;
  }
  int calls() const { return calls_; }

 private:
  std::set<int> bad_;
  mutable int calls_ = 0;
};

/// y = x + b with one trainable bias whose gradient is NaN on chosen backward calls.
template <class T>
class NaNGradient : public Layer<T> {
 public:
  NaNGradient(Index features, std::set<int> bad)
      : bias_(Vector<T>::Zero(features)), grad_(Vector<T>::Zero(features)), bad_(std::move(bad)) {}
  std::string name() const override { return "NaNGradient"; }
  Index output_rows(Index rows) const override { return rows; }
  const Matrix<T>& forward(const Matrix<T>& x, Mode, Generator*) override {
    y_ = x.colwise() + bias_;
    return y_;
  }
  const Matrix<T>& backward(const Matrix<T>& dy, bool) override {
    grad_ = dy.rowwise().sum();
    if (bad_.count(calls_++)) grad_(0) = std::numeric_limits<T>::quiet_NaN();
    return dy;
  }
  ParameterList<T> parameters() override { return {view_of<T>("bias", bias_, &grad_, ParameterRole::bias)}; }
  LayerConfig config() const override { return {"NaNGradient", {}, {}}; }

 private:
  Vector<T> bias_, grad_;
  Matrix<T> y_;
  std::set<int> bad_;
  int calls_ = 0;
};

struct Data {
  Matrix<double> x;
  Labels y;
};

Data blobs(Index n, Generator& gen) {
  Data d{Matrix<double>(4, n), Labels(n)};
  for (Index j = 0; j < n; ++j) {
    d.y(j) = static_cast<int>(j % 3);
    for (Index i = 0; i < 4; ++i) d.x(i, j) = gen.normal<double>() + (i == d.y(j) ? 2.0 : 0.0);
  }
  return d;
}

Sequential<double> small_model(Generator& gen, std::set<int> bad_gradients = {}) {
  Sequential<double> model(4);
  model.add(Dense<double, ReLU>(4, 6, gen));
  model.add(NaNGradient<double>(6, std::move(bad_gradients)));
  model.add(BatchNorm<double>(6));
  model.add(Dense<double>(6, 3, gen));
  return model;
}

std::vector<double> everything(Sequential<double>& model) {
  std::vector<double> values;
  const ModelState<double> state(model);
  for (const auto& v : state.tensors())
    values.insert(values.end(), v.value, v.value + v.size());
  return values;
}

/// Records every parameter and buffer after each batch.
struct Recorder : Callback<double> {
  std::vector<std::vector<double>> after_batch;
  void on_batch_end(TrainingContext<double>& c, const BatchLogs&) override {
    after_batch.push_back(everything(c.model));
  }
};

}  // namespace

TEST_CASE("a NaN loss throws by default, naming the epoch and the batch") {
  Generator gen(5);
  const Data d = blobs(40, gen);
  Sequential<double> model = small_model(gen);
  FlakyLoss<double> loss({6});  // batch 3 of epoch 2 with 4 batches per epoch... (0-based call 6)
  SGD<double> sgd(model.parameters(), SGDOptions(0.05));
  FitOptions<double> options;
  options.epochs = 3;
  options.batch_size = 10;
  CHECK_THROWS_WITH_AS(fit(model, loss, sgd, d.x, d.y, gen, options),
                       doctest::Contains("non-finite loss nan (parameters and every layer output "
                                         "finite in eval mode: the loss overflowed) at epoch 2, batch 3"),
                       NumericalError);
}

TEST_CASE("a NaN gradient throws by default, naming the layer and the parameter") {
  Generator gen(6);
  const Data d = blobs(40, gen);
  Sequential<double> model = small_model(gen, {5});
  SoftmaxCrossEntropy<double> loss;
  Adam<double> adam(model.parameters());
  FitOptions<double> options;
  options.epochs = 2;
  options.batch_size = 10;
  options.clip_grad_norm = 1.0;  // the policy fires before clipping would
  CHECK_THROWS_WITH_AS(fit(model, loss, adam, d.x, d.y, gen, options),
                       doctest::Contains("non-finite gradient in layer 1 NaNGradient, parameter "
                                         "1.NaNGradient.bias at epoch 2, batch 2"),
                       NumericalError);
}

TEST_CASE("a non-finite weight or an overflowing layer is named in the loss message") {
  Generator gen(7);
  const Data d = blobs(20, gen);
  SoftmaxCrossEntropy<double> loss;
  FitOptions<double> options;
  options.epochs = 1;
  options.batch_size = 10;
  {
    Sequential<double> model = small_model(gen);
    dynamic_cast<Dense<double>&>(model.layer(3)).weight()(1, 2) = std::numeric_limits<double>::infinity();
    SGD<double> sgd(model.parameters(), SGDOptions(0.1));
    CHECK_THROWS_WITH_AS(fit(model, loss, sgd, d.x, d.y, gen, options),
                         doctest::Contains("the value of layer 3 Dense(6->3, Identity), parameter "
                                           "3.Dense.weight is non-finite) at epoch 1, batch 1"),
                         NumericalError);
  }
  {
    // Finite weights whose product overflows float: the first infinite output is layer 1's.
    Sequential<float> model(4);
    model.add(Dense<float, ReLU>(4, 4, gen)).weight().setConstant(1e20f);
    model.add(Dense<float, ReLU>(4, 4, gen)).weight().setConstant(1e20f);
    model.add(Dense<float>(4, 3, gen));
    const Matrix<float> x = d.x.cast<float>().cwiseAbs();
    SGD<float> sgd(model.parameters(), SGDOptions(0.1));
    FitOptions<float> o;
    o.epochs = 1;
    o.batch_size = 10;
    SoftmaxCrossEntropy<float> floss;
    CHECK_THROWS_WITH_AS(fit(model, floss, sgd, x, d.y, gen, o),
                         doctest::Contains("first non-finite output: layer 1 Dense(4->4, ReLU)"),
                         NumericalError);
  }
}

TEST_CASE("skip_batch drops the bad batch, restores BatchNorm statistics and continues") {
  Generator gen(8);
  const Data d = blobs(40, gen);
  SoftmaxCrossEntropy<double> good_loss;
  FitOptions<double> options;
  options.epochs = 1;
  options.batch_size = 40;  // one batch: a skipped batch must change nothing at all
  options.nonfinite.policy = NonFinitePolicy::skip_batch;
  NonFiniteLog log;
  options.nonfinite.log = &log;
  {
    Sequential<double> model = small_model(gen);
    const std::vector<double> before = everything(model);
    FlakyLoss<double> loss({0});
    SGD<double> sgd(model.parameters(), SGDOptions(0.1));
    const History h = fit(model, loss, sgd, d.x, d.y, gen, options);
    CHECK(everything(model) == before);  // weights and running statistics untouched
    CHECK(sgd.step_count() == 0);
    CHECK(log.skipped_batches == 1);
    REQUIRE(log.events.size() == 1);
    CHECK(log.events[0].epoch == 0);
    CHECK(log.events[0].batch == 0);
    REQUIRE(h.size() == 1);
    CHECK(std::isnan(h.epochs[0].loss));  // nothing accepted: no loss to report, not 0
  }
  {
    // A NaN gradient in batch 2 of 4: three steps, and the epoch loss averages three batches.
    log = NonFiniteLog{};
    Sequential<double> model = small_model(gen, {1});
    SGD<double> sgd(model.parameters(), SGDOptions(0.1));
    options.batch_size = 10;
    options.epochs = 2;
    const History h = fit(model, good_loss, sgd, d.x, d.y, gen, options);
    CHECK(sgd.step_count() == 7);
    CHECK(log.skipped_batches == 1);
    CHECK(log.events.at(0).what.find("1.NaNGradient.bias") != std::string::npos);
    CHECK(std::isfinite(h.epochs[0].loss));
    CHECK(h.epochs[0].accuracy <= 1.0);
    for (double v : everything(model)) CHECK(std::isfinite(v));
  }
}

TEST_CASE("skip_batch gives up after max_consecutive_skips batches in a row") {
  Generator gen(9);
  const Data d = blobs(40, gen);
  Sequential<double> model = small_model(gen);
  std::set<int> always;
  for (int i = 0; i < 100; ++i) always.insert(i);
  FlakyLoss<double> loss(always);
  SGD<double> sgd(model.parameters(), SGDOptions(0.1));
  FitOptions<double> options;
  options.epochs = 10;
  options.batch_size = 10;
  options.nonfinite.policy = NonFinitePolicy::skip_batch;
  options.nonfinite.max_consecutive_skips = 5;
  CHECK_THROWS_WITH_AS(fit(model, loss, sgd, d.x, d.y, gen, options),
                       doctest::Contains("5 batches skipped in a row"), NumericalError);
  CHECK(loss.calls() == 6);
  options.nonfinite.max_consecutive_skips = 0;
  CHECK_THROWS_AS(fit(model, loss, sgd, d.x, d.y, gen, options), InvalidArgument);
}

TEST_CASE("stop_and_restore returns to the weights of the last good batch and stops") {
  Generator gen(10);
  const Data d = blobs(40, gen);
  Sequential<double> model = small_model(gen);
  const std::vector<double> initial = everything(model);
  FlakyLoss<double> loss({5});  // epoch 2, batch 2 (0-based call 5 with 4 batches per epoch)
  SGD<double> sgd(model.parameters(), SGDOptions(0.1).momentum(0.9));
  Recorder recorder;
  FitOptions<double> options;
  options.epochs = 5;
  options.batch_size = 10;
  options.callbacks = {&recorder};
  options.nonfinite.policy = NonFinitePolicy::stop_and_restore;
  NonFiniteLog log;
  options.nonfinite.log = &log;
  const History h = fit(model, loss, sgd, d.x, d.y, gen, options);
  CHECK(log.stopped);
  CHECK(h.size() == 1);                  // epoch 2 was interrupted, not recorded
  REQUIRE(recorder.after_batch.size() == 5);  // batches 0-4 stepped
  // Batch 5 failed; batch 4 was the last whose loss and gradients were finite, so the weights
  // are those before its step, i.e. after batch 3's step (BatchNorm statistics from batch 4's
  // forward).
  const std::vector<double> restored = everything(model);
  const std::vector<double>& after3 = recorder.after_batch[3];
  const std::size_t params = static_cast<std::size_t>(model.parameter_count());
  CHECK(std::vector<double>(restored.begin(), restored.begin() + static_cast<long>(params)) ==
        std::vector<double>(after3.begin(), after3.begin() + static_cast<long>(params)));
  CHECK(restored != initial);
}

TEST_CASE_TEMPLATE("huge learning rates: each policy ends in a defined state", T, float, double) {
  Generator gen(11);
  Matrix<T> x(4, 64);
  Labels y(64);
  for (Index j = 0; j < 64; ++j) {
    y(j) = static_cast<int>(j % 3);
    for (Index i = 0; i < 4; ++i) x(i, j) = gen.normal<T>();
  }
  auto make = [](Generator& g) {
    Sequential<T> model(4);
    model.add(Dense<T, ReLU>(4, 16, g));
    model.add(Dense<T, ReLU>(16, 16, g));
    model.add(Dense<T>(16, 3, g));
    return model;
  };
  SoftmaxCrossEntropy<T> loss;
  FitOptions<T> options;
  options.epochs = 50;
  options.batch_size = 8;
  const double lr = 1e30;
  {
    Sequential<T> model = make(gen);
    SGD<T> sgd(model.parameters(), SGDOptions(lr));
    CHECK_THROWS_WITH_AS(fit(model, loss, sgd, x, y, gen, options), doctest::Contains("at epoch"),
                         NumericalError);
  }
  {
    Sequential<T> model = make(gen);
    SGD<T> sgd(model.parameters(), SGDOptions(lr));
    NonFiniteLog log;
    options.nonfinite = {NonFinitePolicy::stop_and_restore, 100, &log};
    const History h = fit(model, loss, sgd, x, y, gen, options);
    CHECK(log.stopped);
    CHECK(h.size() < 50);
    for (const auto& v : model.parameters()) CHECK(v.flat_value().allFinite());
    // The restored weights give a finite loss on the data.
    CHECK(std::isfinite(evaluate(model, loss, x, y).loss));
  }
  {
    Sequential<T> model = make(gen);
    SGD<T> sgd(model.parameters(), SGDOptions(lr));
    options.nonfinite = {NonFinitePolicy::skip_batch, 20, nullptr};
    CHECK_THROWS_WITH_AS(fit(model, loss, sgd, x, y, gen, options),
                         doctest::Contains("skipped in a row"), NumericalError);
  }
  {
    // Adam normalizes the step, so even lr = 1e30 moves weights by ~lr per step: finite in
    // double for a while, and the policy still stops cleanly when they overflow.
    Sequential<T> model = make(gen);
    Adam<T> adam(model.parameters(), AdamOptions(1e30));
    NonFiniteLog log;
    options.nonfinite = {NonFinitePolicy::stop_and_restore, 100, &log};
    fit(model, loss, adam, x, y, gen, options);
    for (const auto& v : model.parameters()) CHECK(v.flat_value().allFinite());
  }
}
