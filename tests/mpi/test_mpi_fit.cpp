// Data-parallel fit on MPI (run by ctest under `mpirun -np 2` and `-np 3`): equivalence with one
// process on the concatenated batch, identical replicas, reproducible ordered reductions, and
// faults on one rank that end every rank with the message instead of a hang.
//
// Every rank runs every test case in the same order, so their collectives match.

#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <dropnet/distributed/mpi.hpp>
#include <dropnet/dropnet.hpp>

#include <string>

using namespace dropnet;
using distributed::MpiCommunicator;
using distributed::Reduction;
using distributed::RemoteError;
using distributed::SingleProcess;

namespace {

constexpr Index kFeatures = 4, kClasses = 3;

/// Gaussian blobs, the same on every rank (the seed is fixed).
template <class T>
void make_blobs(Index samples, Matrix<T>& x, Labels& y) {
  Generator gen(7);
  Matrix<T> centers(kFeatures, kClasses);
  for (Index i = 0; i < centers.size(); ++i) centers.data()[i] = gen.normal<T>();
  x.resize(kFeatures, samples);
  y.resize(samples);
  for (Index j = 0; j < samples; ++j) {
    y(j) = static_cast<int>(j % kClasses);
    for (Index i = 0; i < kFeatures; ++i) x(i, j) = centers(i, y(j)) + gen.normal<T>(T(0), T(0.5));
  }
}

template <class T>
Sequential<T> small_mlp(std::uint64_t seed, Index hidden = 8) {
  Generator gen(seed);
  Sequential<T> model(kFeatures);
  model.add(Dense<T, ReLU>(kFeatures, hidden, gen));
  model.add(Dense<T>(hidden, kClasses, gen));
  return model;
}

template <class T>
Vector<T> values_of(Sequential<T>& model) {
  Vector<T> v;
  ModelState<T>(model).pack_values(v);
  return v;
}

template <class T>
double relative_difference(const Vector<T>& a, const Vector<T>& b) {
  return static_cast<double>((a - b).cwiseAbs().maxCoeff() / a.cwiseAbs().maxCoeff());
}

/// Trains with plain SGD; `comm` null is plain fit. Returns the parameters.
template <class T>
Vector<T> train_sgd(distributed::Communicator& comm, Index batch_size, const Matrix<T>& x,
                    const Labels& y, History* history = nullptr) {
  Sequential<T> model = small_mlp<T>(3);
  SGD<T> optimizer(model.parameters(), SGDOptions(0.2));
  SoftmaxCrossEntropy<T> loss;
  FitOptions<T> options;
  options.epochs = 3;
  options.batch_size = batch_size;
  options.communicator = &comm;
  Generator gen(11);
  History h = fit(model, loss, optimizer, x, y, gen, options);
  if (history) *history = h;
  return values_of(model);
}

/// Checks replicas_identical after every epoch (a collective inside on_epoch_end).
template <class T>
struct ReplicaCheck : Callback<T> {
  explicit ReplicaCheck(distributed::Communicator& c) : comm(c) {}
  void on_epoch_end(TrainingContext<T>& context, const EpochLogs&) override {
    ++epochs;
    if (replicas_identical(comm, context.model)) ++identical;
  }
  distributed::Communicator& comm;
  int epochs = 0, identical = 0;
};

/// A loss that turns NaN on one rank at its `at`-th call.
struct NanOnRank : SoftmaxCrossEntropy<double> {
  NanOnRank(bool poisoned, int at) : poisoned_(poisoned), at_(at) {}
  double compute(const Matrix<double>& out, const Labels& labels, Matrix<double>* grad) const override {
    const double value = SoftmaxCrossEntropy<double>::compute(out, labels, grad);
    return poisoned_ && ++calls_ >= at_ ? std::nan("") : value;
  }
  using SoftmaxCrossEntropy<double>::compute;

 private:
  bool poisoned_;
  int at_;
  mutable int calls_ = 0;
};

/// Runs `train` expecting every rank to throw: the failing rank `own_type`, the others
/// RemoteError; both messages contain `text`.
template <class OwnError, class Train>
void expect_every_rank_fails(MpiCommunicator& world, bool failing, const std::string& text,
                             Train&& train) {
  std::string message;
  bool right_type = false;
  try {
    train();
  } catch (const RemoteError& e) {
    message = e.what();
    right_type = !failing;
  } catch (const OwnError& e) {
    message = e.what();
    right_type = failing;
  }
  INFO("rank ", world.rank(), ": ", message);
  CHECK(right_type);
  CHECK(message.find(text) != std::string::npos);
}

}  // namespace

TEST_CASE("SGD: p ranks x batch b equals 1 process x batch p*b, uneven shards included (double)") {
  MpiCommunicator world;
  SingleProcess alone;
  Matrix<double> x;
  Labels y;
  make_blobs(50, x, y);  // 50 = 6 batches of 8 + 2 (two ranks), 4 x 12 + 2 (three): ranks idle at the tail
  History distributed_history, single_history;
  const Vector<double> distributed = train_sgd(world, 4, x, y, &distributed_history);
  const Vector<double> single = train_sgd(alone, 4 * world.size(), x, y, &single_history);
  CHECK(relative_difference(single, distributed) <= 1e-12);
  REQUIRE(distributed_history.epochs.size() == 3);
  for (std::size_t e = 0; e < 3; ++e) {
    CHECK(distributed_history.epochs[e].loss == doctest::Approx(single_history.epochs[e].loss).epsilon(1e-12));
    CHECK(distributed_history.epochs[e].accuracy == single_history.epochs[e].accuracy);
  }
}

TEST_CASE("SGD: p ranks x batch b equals 1 process x batch p*b (float)") {
  MpiCommunicator world;
  SingleProcess alone;
  Matrix<float> x;
  Labels y;
  make_blobs(50, x, y);
  CHECK(relative_difference(train_sgd(alone, 4 * world.size(), x, y), train_sgd(world, 4, x, y)) <= 1e-5);
}

TEST_CASE("Adam, BatchNorm, dropout: replicas identical every epoch; ordered mode bit-reproducible") {
  Matrix<double> x;
  Labels y;
  make_blobs(60, x, y);
  auto run = [&](MpiCommunicator& comm) {
    Generator init(5 + static_cast<std::uint64_t>(comm.rank()));  // rank 0's weights must win
    Sequential<double> model(kFeatures);
    model.add(Dense<double, ReLU>(kFeatures, 8, init));
    model.add(BatchNorm<double>(8));
    model.add(Dropout<double>(0.3));
    model.add(Dense<double>(8, kClasses, init));
    Adam<double> optimizer(model.parameters(), AdamOptions(1e-2));
    SoftmaxCrossEntropy<double> loss;
    ReplicaCheck<double> check(comm);
    FitOptions<double> options;
    options.epochs = 3;
    options.batch_size = 8;
    options.communicator = &comm;
    options.callbacks = {&check};
    Generator gen(comm.rank() == 0 ? 21 : 99);  // only rank 0's seed matters
    const History history = fit(model, loss, optimizer, x, y, gen, options,
                                ValidationData<double, Labels>{x, y});
    CHECK(check.epochs == 3);
    CHECK(check.identical == 3);
    // History is global: the same on every rank.
    double val_loss = history.epochs.back().val_loss, low = val_loss, high = val_loss;
    comm.allreduce(&low, 1, distributed::ReduceOp::min);
    comm.allreduce(&high, 1, distributed::ReduceOp::max);
    CHECK(low == high);
    CHECK(std::isfinite(val_loss));
    return values_of(model);
  };
  MpiCommunicator fast;
  run(fast);
  MpiCommunicator ordered(MPI_COMM_WORLD, Reduction::ordered);
  const Vector<double> first = run(ordered), second = run(ordered);
  CHECK((first.array() == second.array()).all());
}

TEST_CASE("Faults: bad labels on one rank end every rank with its message") {
  MpiCommunicator world;
  const bool failing = world.rank() == world.size() - 1;
  Matrix<double> x;
  Labels y;
  make_blobs(24, x, y);
  if (failing) y(5) = 12;
  Sequential<double> model = small_mlp<double>(3);
  SGD<double> optimizer(model.parameters(), SGDOptions(0.1));
  SoftmaxCrossEntropy<double> loss;
  FitOptions<double> options;
  options.communicator = &world;
  Generator gen(1);
  expect_every_rank_fails<InvalidArgument>(world, failing, "label 12 of sample 5", [&] {
    fit(model, loss, optimizer, x, y, gen, options);
  });
}

TEST_CASE("Faults: a NaN loss on one rank mid-training ends every rank") {
  MpiCommunicator world;
  const bool failing = world.rank() == world.size() - 1;
  Matrix<double> x;
  Labels y;
  make_blobs(48, x, y);
  Sequential<double> model = small_mlp<double>(3);
  SGD<double> optimizer(model.parameters(), SGDOptions(0.1));
  NanOnRank loss(failing, 4);
  FitOptions<double> options;
  options.batch_size = 4;
  options.communicator = &world;
  Generator gen(1);
  expect_every_rank_fails<NumericalError>(world, failing, "non-finite loss", [&] {
    fit(model, loss, optimizer, x, y, gen, options);
  });
}

TEST_CASE("Faults: another architecture on one rank is an error on every rank") {
  MpiCommunicator world;
  const bool odd = world.rank() == world.size() - 1;
  Matrix<double> x;
  Labels y;
  make_blobs(24, x, y);
  Sequential<double> model = small_mlp<double>(3, odd ? 7 : 8);
  SGD<double> optimizer(model.parameters(), SGDOptions(0.1));
  SoftmaxCrossEntropy<double> loss;
  FitOptions<double> options;
  options.communicator = &world;
  Generator gen(1);
  std::string message;
  try {
    fit(model, loss, optimizer, x, y, gen, options);
  } catch (const InvalidArgument& e) {
    message = e.what();
  }
  INFO("rank ", world.rank(), ": ", message);
  CHECK(message.find("models, optimizers or data differ") != std::string::npos);
  if (odd) CHECK(message.find("0.Dense.weight 8x4") != std::string::npos);
}

int main(int argc, char** argv) {
  distributed::MpiEnvironment mpi(argc, argv);
  doctest::Context context(argc, argv);
  return context.run();
}
