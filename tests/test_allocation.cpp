// A training step allocates nothing once the batch size is stable. Two witnesses, read between
// consecutive on_batch_end calls of fit: a counting global operator new (std containers,
// strings) and Eigen's malloc guard (Eigen allocates with malloc, not new), which throws here.
// Then each layer on its own: after one forward and backward at a batch size, the next ones
// allocate nothing. The layers' own test files link dropnet::compiled; the witness must
// reconfigure Eigen for the code it checks, so these checks live here, header-only.

#include "allocation_witness.hpp"  // first: it configures Eigen

#include <doctest/doctest.h>

#include <cmath>
#include <dropnet/dropnet.hpp>
#include <string>
#include <vector>

#include "test_data.hpp"

using namespace dropnet;
using test::normal_matrix;

namespace {

/// Records the operator-new counter at every batch end, and forbids Eigen allocations from the
/// end of an epoch's first batch to the end of its last (the steps in between).
template <class T>
struct AllocationProbe : Callback<T> {
  std::vector<long> counts;
  void on_train_begin(TrainingContext<T>& context) override {
    counts.reserve(static_cast<std::size_t>(context.batches_per_epoch * context.epochs + 1));
  }
  void on_batch_end(TrainingContext<T>&, const BatchLogs& logs) override {
    counts.push_back(g_allocations.load());
    Eigen::internal::set_is_malloc_allowed(logs.batch == 0 || logs.batch + 1 == logs.batches);
  }
  void on_train_end(TrainingContext<T>&) override { Eigen::internal::set_is_malloc_allowed(true); }
};

template <class T>
void check_no_allocation_per_step(Sequential<T>& model, Optimizer<T>& optimizer, Generator& gen) {
  const Index features = model.input_features(), samples = 640, batch = 64;
  Matrix<T> x(features, samples);
  Labels y(samples);
  for (Index i = 0; i < x.size(); ++i) x.data()[i] = gen.normal<T>();
  for (Index j = 0; j < samples; ++j) y(j) = static_cast<int>(j % 10);
  SoftmaxCrossEntropy<T> loss;
  AllocationProbe<T> probe;
  FitOptions<T> options;
  options.epochs = 2;
  options.batch_size = batch;  // divides the sample count: every batch has the same size
  options.callbacks = {&probe};
  try {
    fit(model, loss, optimizer, x, y, gen, options);
  } catch (const std::runtime_error& e) {
    Eigen::internal::set_is_malloc_allowed(true);
    FAIL("a training step allocated through Eigen: ", e.what());
  }
  REQUIRE(probe.counts.size() == 20);
  // Batch 0 sizes the caches; every later step of the epoch must allocate nothing.
  for (std::size_t b = 2; b < 10; ++b) CHECK_MESSAGE(probe.counts[b] == probe.counts[b - 1], "batch ", b);
  for (std::size_t b = 11; b < 20; ++b) CHECK_MESSAGE(probe.counts[b] == probe.counts[b - 1], "batch ", b);
}

}  // namespace

TEST_CASE_TEMPLATE("a training step of an MLP with dropout allocates nothing", T, float, double) {
  // On 2 threads (OpenMP builds) the big products, the input mask and Adam's update of the
  // first layer are split between threads (core/parallel.hpp): still nothing per step.
  for (int threads : {1, 2}) {
    CAPTURE(threads);
    Eigen::setNbThreads(threads);
    Generator gen(1);
    Sequential<T> model(784);
    model.add(Dropout<T>(0.25));
    model.add(Dense<T, ReLU>(784, 120, gen));
    model.add(Dropout<T>(0.4));
    model.add(Dense<T, ReLU>(120, 60, gen));
    model.add(Dropout<T>(0.4));
    model.add(Dense<T>(60, 10, gen));
    Adam<T> optimizer(model.parameters(), AdamOptions(1e-3));
    check_no_allocation_per_step(model, optimizer, gen);
  }
  Eigen::setNbThreads(1);
}

TEST_CASE("a training step with BatchNorm, every dropout, penalties and max-norm allocates nothing") {
  Generator gen(2);
  Sequential<float> model(64);
  model.add(GaussianDropout<float>(0.1));
  model.add(Dense<float>(64, 48, gen)).with_l2(1e-4f).with_max_norm(3.0f);
  model.add(BatchNorm<float>(48));
  model.add(ActivationLayer<float, ReLU>());
  model.add(SpatialDropout<float>(0.2, 4));
  model.add(Dense<float, SELU>(48, 32, gen)).with_l1(1e-5f);
  model.add(AlphaDropout<float>(0.1));
  model.add(DropConnectDense<float, Tanh>(32, 16, 0.3, gen));
  model.add(Dense<float>(16, 10, gen));
  SGD<float> optimizer(model.parameters(), SGDOptions(0.01).momentum(0.9).nesterov(true));
  check_no_allocation_per_step(model, optimizer, gen);
}

TEST_CASE_TEMPLATE("a training step of stacked LSTM and GRU layers with every dropout allocates nothing",
                   T, float, double) {
  Generator gen(3);
  const SequenceShape shape{7, 5};
  Sequential<T> model(shape.size());
  model.add(LSTM<T>(shape, 16, gen,
                    RecurrentOptions().return_sequences(true).dropout(0.2).recurrent_dropout(0.2)
                        .zoneout(0.1, 0.1)));
  model.add(GRU<T>(SequenceShape{7, 16}, 12, gen,
                   RecurrentOptions().recurrent_dropout(0.3).tied_masks(true)));
  model.add(Dense<T>(12, 10, gen));
  Adam<T> optimizer(model.parameters(), AdamOptions(1e-3));
  check_no_allocation_per_step(model, optimizer, gen);
}

namespace {

/// After one forward and backward on a rows x batch input in `mode`, the next forward and
/// backward (input gradient wanted, then not: the second frees dx) allocate nothing. `rows` 0:
/// the layer's expected_input_rows().
template <class T>
void check_layer_allocates_nothing(Layer<T>& layer, Index batch, Mode mode, Generator& gen,
                                   Index rows = 0) {
  INFO(layer.name(), " in ", std::string(to_string(mode)), " mode");
  if (rows == 0) rows = layer.expected_input_rows();
  const Matrix<T> x = normal_matrix<T>(rows, batch, gen);
  const Matrix<T> dy = normal_matrix<T>(layer.output_rows(rows), batch, gen);
  layer.forward(x, mode, &gen);
  layer.backward(dy, true);
  std::string error;
  long news = 0;
  {
    NoAllocationScope guard;  // no doctest macro inside: they may allocate
    try {
      layer.forward(x, mode, &gen);
      layer.backward(dy, true);
      layer.backward(dy, false);
    } catch (const std::exception& e) {
      error = e.what();
    }
    news = guard.new_calls();
  }
  CHECK(error == "");
  CHECK(news == 0);
}

}  // namespace

TEST_CASE("after the first step at a batch size, the dropout layers allocate nothing") {
  Generator gen(1);
  std::vector<LayerPtr<float>> layers;
  layers.push_back(std::make_unique<Dropout<float>>(0.5));
  layers.push_back(std::make_unique<SpatialDropout<float>>(0.5, 4));
  layers.push_back(std::make_unique<AlphaDropout<float>>(0.5));
  layers.push_back(std::make_unique<GaussianDropout<float>>(0.5));
  layers.push_back(std::make_unique<DropConnectDense<float, ReLU>>(8, 8, 0.5, gen));
  auto per_sample = std::make_unique<DropConnectDense<float, Tanh>>(8, 8, 0.5, gen);
  per_sample->with_per_sample_masks();
  layers.push_back(std::move(per_sample));
  for (auto& layer : layers)
    for (Mode mode : {Mode::train, Mode::mc_sample, Mode::eval})
      check_layer_allocates_nothing(*layer, 300, mode, gen, 8);  // > one 256-word mask chunk
}

TEST_CASE("after the first step at a batch size, BatchNorm allocates nothing") {
  Generator gen(13);
  for (Mode mode : {Mode::train, Mode::eval}) {
    BatchNorm<double> bn(4, 3);
    check_layer_allocates_nothing(bn, 8, mode, gen);
  }
}

TEST_CASE("after the first step at a batch size, the conv layers allocate nothing") {
  Generator gen(23);
  std::vector<LayerPtr<float>> layers;
  // Eigen's GEMM packs its operands on the stack up to EIGEN_STACK_ALLOCATION_LIMIT (128 KB) and
  // on the heap beyond, in Conv2D as in Dense; the sizes here stay below that.
  layers.push_back(std::make_unique<Conv2D<float, ReLU>>(ImageShape{8, 14, 14}, 16, 3, gen,
                                                         ConvOptions().padding(1)));
  layers.push_back(
      std::make_unique<Conv2D<float>>(ImageShape{8, 9, 9}, 4, 3, gen, ConvOptions().stride(2)));
  layers.push_back(std::make_unique<Conv2D<float>>(ImageShape{8, 9, 9}, 4, 1, gen));
  layers.push_back(
      std::make_unique<MaxPool2D<float>>(ImageShape{8, 9, 9}, 3, PoolOptions().stride(2)));
  layers.push_back(std::make_unique<AvgPool2D<float>>(ImageShape{8, 9, 9}, 2));
  layers.push_back(std::make_unique<GlobalAvgPool<float>>(ImageShape{8, 9, 9}));
  layers.push_back(std::make_unique<Flatten<float>>(ImageShape{8, 9, 9}));
  for (auto& layer : layers) check_layer_allocates_nothing(*layer, 16, Mode::train, gen);
}

TEST_CASE_TEMPLATE("inference at batch 1 (Sequential::infer, predict_into) allocates nothing after "
                   "the first call",
                   T, float, double) {
  Generator gen(4);
  Sequential<T> model(784);
  model.add(Dense<T, ReLU>(784, 120, gen));
  model.add(Dense<T, ReLU>(120, 60, gen));
  model.add(Dense<T>(60, 10, gen));
  Matrix<T> x(784, 16);
  for (Index i = 0; i < x.size(); ++i) x.data()[i] = gen.normal<T>();
  Matrix<T> out;
  T sum = model.infer(x.col(0))(0, 0);  // the first call sizes the layers' outputs
  predict_into(model, x.col(0), out, 1);
  std::string error;
  long news = 0;
  {
    NoAllocationScope guard;  // no doctest macro inside: they may allocate
    try {
      for (Index j = 1; j < x.cols(); ++j) {
        sum += model.infer(x.col(j))(0, 0);  // a block of the matrix, read in place
        predict_into(model, x.col(j), out, 1);
        sum += out(0, 0);
      }
    } catch (const std::exception& e) {
      error = e.what();
    }
    news = guard.new_calls();
  }
  CHECK(error == "");
  CHECK(news == 0);
  CHECK(std::isfinite(double(sum)));
}

TEST_CASE("fit's next-batch prefetch on one thread sizes no buffer") {
  // No worker can gather in the background: start must say so before allocating a batch-sized
  // buffer it would never fill (fit then gathers each batch itself).
  Eigen::setNbThreads(1);
  const Matrix<float> x = Matrix<float>::Ones(784, 128);
  const MatrixView<float> view(x);
  detail::BatchPrefetch<float> prefetch(view);
  std::vector<Index> index(64);
  for (std::size_t j = 0; j < index.size(); ++j) index[j] = static_cast<Index>(2 * j);
  Matrix<float> batch;
  Eigen::internal::set_is_malloc_allowed(false);
  bool started = true, taken = true;
  try {
    started = prefetch.start(index.data(), 64);
    taken = prefetch.take(index.data(), 64, batch);
  } catch (const std::runtime_error& e) {
    Eigen::internal::set_is_malloc_allowed(true);
    FAIL("BatchPrefetch allocated on one thread: ", e.what());
  }
  Eigen::internal::set_is_malloc_allowed(true);
  CHECK_FALSE(started);
  CHECK_FALSE(taken);
  CHECK(batch.size() == 0);
}
