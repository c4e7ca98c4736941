// Data-parallel fit on MPI (run by ctest under `mpirun -np 2` and `-np 3`): equivalence with one
// process on the concatenated batch, identical replicas, reproducible ordered reductions, and
// faults on one rank that end every rank with the message instead of a hang.
//
// Every rank runs every test case in the same order, so their collectives match.

#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <dropnet/distributed/mpi.hpp>
#include <dropnet/dropnet.hpp>

#include "mpi_test_support.hpp"

#include <algorithm>
#include <cstdio>
#include <functional>
#include <memory>
#include <fstream>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

using namespace dropnet;
using dropnet::testing::expect_every_rank_fails;
using distributed::MpiCommunicator;
using distributed::Reduction;
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

/// Blobs of `samples` as Matrix<double> and Labels, the same on every rank.
struct Blobs {
  explicit Blobs(Index samples) { make_blobs(samples, x, y); }
  Matrix<double> x;
  Labels y;
};

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

/// What train_sgd runs.
struct SgdRun {
  Index batch_size = 32;  ///< per rank
  int epochs = 10;
  double lr = 0.1;
};

/// Trains `model` with plain SGD over `comm` (every rank calls it); returns its values
/// (parameters and buffers) and the History.
template <class T>
std::pair<Vector<T>, History> train_sgd(Sequential<T>& model, distributed::Communicator& comm,
                                        const Loss<T>& loss, const Matrix<T>& x, const Labels& y,
                                        const SgdRun& run) {
  SGD<T> optimizer(model.parameters(), SGDOptions(run.lr));
  FitOptions<T> options;
  options.epochs = run.epochs;
  options.batch_size = run.batch_size;
  options.communicator = &comm;
  Generator gen(11);
  History history = fit(model, loss, optimizer, x, y, gen, options);
  return {values_of(model), history};
}

/// The equivalence tests' run: small_mlp, 3 epochs of SGD(0.2) in batches of `batch_size`.
template <class T>
std::pair<Vector<T>, History> train_small(distributed::Communicator& comm, Index batch_size,
                                          const Matrix<T>& x, const Labels& y) {
  Sequential<T> model = small_mlp<T>(3);
  return train_sgd(model, comm, SoftmaxCrossEntropy<T>(), x, y, {batch_size, 3, 0.2});
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

}  // namespace

TEST_CASE("SGD: p ranks x batch b equals 1 process x batch p*b, uneven shards included (double)") {
  MpiCommunicator world;
  SingleProcess alone;
  Matrix<double> x;
  Labels y;
  make_blobs(53, x, y);  // tails: 53 = 6 x 8 + 5 (two ranks: 3 + 2), 4 x 12 + 5 (three: 2 + 2 + 1)
  const auto [parallel, parallel_history] = train_small(world, 4, x, y);
  const auto [single, single_history] = train_small(alone, Index{4} * world.size(), x, y);
  CHECK(relative_difference(single, parallel) <= 1e-12);
  REQUIRE(parallel_history.epochs.size() == 3);
  for (std::size_t e = 0; e < 3; ++e) {
    CHECK(parallel_history.epochs[e].loss == doctest::Approx(single_history.epochs[e].loss).epsilon(1e-12));
    CHECK(parallel_history.epochs[e].accuracy == single_history.epochs[e].accuracy);
  }
}

TEST_CASE("SGD: p ranks x batch b equals 1 process x batch p*b (float)") {
  MpiCommunicator world;
  SingleProcess alone;
  Matrix<float> x;
  Labels y;
  make_blobs(53, x, y);
  CHECK(relative_difference(train_small(alone, Index{4} * world.size(), x, y).first,
                            train_small(world, 4, x, y).first) <= 1e-5);
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

namespace {

/// The blocks of the collective tests: `extra` + 5 + 2r scalars for rank r, rank 1's empty.
struct TestBlocks {
  explicit TestBlocks(const distributed::Communicator& comm, std::size_t extra = 0) {
    for (int r = 0; r < comm.size(); ++r) {
      counts.push_back(r == 1 ? 0 : extra + static_cast<std::size_t>(5 + 2 * r));
      if (r < comm.rank()) begin += counts.back();
      total += counts.back();
    }
    end = begin + counts[static_cast<std::size_t>(comm.rank())];
    rank = comm.rank();
  }
  /// Writes scalar i = (rank + 1) x (i + 1) of the buffer through at(i).
  template <class At>
  void fill(At&& at) const {
    using S = std::remove_reference_t<decltype(at(0))>;
    for (std::size_t i = 0; i < total; ++i) at(i) = static_cast<S>((rank + 1) * (i + 1));
  }
  /// Scalars of this rank's block that are not `scale` x the sum of fill's values over `ranks`
  /// ranks (exact when scale is a power of two).
  template <class At>
  int wrong_sums(int ranks, At&& at, double scale = 1.0) const {
    using S = std::remove_reference_t<decltype(at(0))>;
    const int sum_of_ranks = ranks * (ranks + 1) / 2;  // of rank + 1
    const S ranks_sum = static_cast<S>(sum_of_ranks * scale);
    int wrong = 0;
    for (std::size_t i = begin; i < end; ++i) wrong += at(i) != ranks_sum * static_cast<S>(i + 1);
    return wrong;
  }
  std::vector<std::size_t> counts;  ///< every rank's block
  std::size_t total = 0;            ///< their sum
  std::size_t begin = 0, end = 0;   ///< this rank's block
  int rank = 0;                     ///< this rank
};

/// check(comm, scalar) for the fast and ordered MPI communicators and SingleProcess, in double
/// and float.
template <class Check>
void for_each_communicator(Check&& check) {
  MpiCommunicator fast;
  MpiCommunicator ordered(MPI_COMM_WORLD, Reduction::ordered);
  SingleProcess alone;
  for (distributed::Communicator* comm : {static_cast<distributed::Communicator*>(&fast),
                                          static_cast<distributed::Communicator*>(&ordered),
                                          static_cast<distributed::Communicator*>(&alone)}) {
    check(*comm, 0.0);
    check(*comm, 0.0f);
  }
}

}  // namespace

TEST_CASE("Communicator::reduce_scatter: each rank's block is the sum; uneven and empty blocks") {
  auto check = [](distributed::Communicator& comm, auto scalar) {
    using S = decltype(scalar);
    const TestBlocks blocks(comm);
    std::vector<S> data(blocks.total);
    auto at = [&](std::size_t i) -> S& { return data[i]; };
    blocks.fill(at);
    comm.reduce_scatter(data.data(), blocks.counts.data(), distributed::ReduceOp::sum);
    CHECK(blocks.wrong_sums(comm.size(), at) == 0);
  };
  for_each_communicator(check);
}

TEST_CASE("Communicator runs: reduce_scatter and allgather in place, runs cutting across blocks") {
  // Blocks of extra + 5 + 2r scalars (rank 1's empty) held by runs of 1, 8, 5, 2, 9, 6, 3, 0, ...
  // times `unit` scalars, so that blocks start and end inside runs and runs span blocks; the
  // large case's messages (up to 27,000 scalars) go by Open MPI's single copy, not its eager
  // buffers.
  auto check = [](distributed::Communicator& comm, auto scalar, std::size_t extra,
                  std::size_t unit) {
    using S = decltype(scalar);
    const TestBlocks blocks(comm, extra);
    const std::vector<std::size_t>& counts = blocks.counts;
    const std::size_t total = blocks.total;
    std::vector<std::vector<S>> storage;
    for (std::size_t held = 0, i = 0; held < total; ++i) {
      const std::size_t size = std::min<std::size_t>(total - held, unit * ((i * 7 + 1) % 10));
      storage.emplace_back(size);
      held += size;
    }
    std::vector<distributed::Run<S>> runs;
    runs.reserve(storage.size());
    for (auto& v : storage) runs.push_back({v.data(), v.size()});
    std::vector<S*> flat;  // the scalars of the runs laid end to end
    for (auto& v : storage)
      for (S& x : v) flat.push_back(&x);
    auto at = [&](std::size_t i) -> S& { return *flat[i]; };
    blocks.fill(at);
    comm.reduce_scatter(runs.data(), runs.size(), counts.data(), distributed::ReduceOp::sum,
                        S(1));
    CHECK(blocks.wrong_sums(comm.size(), at) == 0);
    blocks.fill(at);  // again, the block scaled in the same pass (the sums halve exactly)
    comm.reduce_scatter(runs.data(), runs.size(), counts.data(), distributed::ReduceOp::sum,
                        S(0.5));
    CHECK(blocks.wrong_sums(comm.size(), at, S(0.5)) == 0);
    // Allgather: each rank writes its block as 1000 x (rank + 1) plus the position; the rest is
    // garbage.
    for (std::size_t i = 0; i < total; ++i)
      at(i) = i >= blocks.begin && i < blocks.end
                  ? static_cast<S>(1000 * (comm.rank() + 1) + static_cast<int>(i))
                  : S(-1);
    comm.allgather(runs.data(), runs.size(), counts.data());
    int wrong = 0;
    std::size_t block_begin = 0;
    for (int r = 0; r < comm.size(); ++r) {
      for (std::size_t i = block_begin; i < block_begin + counts[static_cast<std::size_t>(r)]; ++i)
        wrong += at(i) != static_cast<S>(1000 * (r + 1) + static_cast<int>(i));
      block_begin += counts[static_cast<std::size_t>(r)];
    }
    CHECK(wrong == 0);
  };
  for_each_communicator([&](distributed::Communicator& comm, auto scalar) {
    check(comm, scalar, 0, 1);
    check(comm, scalar, 40000, 3001);
  });
  MpiCommunicator fast;
  distributed::Run<float> short_run{nullptr, 0};
  const std::vector<std::size_t> counts(static_cast<std::size_t>(fast.size()), 1);
  if (fast.size() > 1)  // the same mistake on every rank: every rank throws, nobody waits
    CHECK_THROWS_AS(fast.allgather(&short_run, 1, counts.data()), std::invalid_argument);
}

namespace {

/// SGD stepped as a whole (is_elementwise false): what a layer-wise optimizer would be.
struct WholeSgd : SGD<double> {
  using SGD<double>::SGD;
  bool is_elementwise() const override { return false; }
};

using MakeOptimizer = std::function<std::unique_ptr<Optimizer<double>>(const ParameterList<double>&)>;

/// The sharded-step tests' optimizers: every built-in kind with its state-heavy options, and
/// the whole-step fallback.
std::vector<MakeOptimizer> optimizer_makers() {
  return {[](const ParameterList<double>& p) {
            return std::make_unique<Adam<double>>(p, AdamOptions(1e-2).weight_decay(1e-2).amsgrad(true));
          },
          [](const ParameterList<double>& p) { return std::make_unique<AdamW<double>>(p, AdamWOptions(1e-2)); },
          [](const ParameterList<double>& p) {
            return std::make_unique<RMSprop<double>>(
                p, RMSpropOptions(1e-2).momentum(0.5).centered(true).weight_decay(1e-3));
          },
          [](const ParameterList<double>& p) { return std::make_unique<Adagrad<double>>(p, AdagradOptions(0.1)); },
          [](const ParameterList<double>& p) {
            return std::make_unique<SGD<double>>(p, SGDOptions(0.1).momentum(0.9).nesterov(true));
          },
          [](const ParameterList<double>& p) {
            return std::make_unique<WholeSgd>(p, SGDOptions(0.1).momentum(0.9));
          }};
}

/// small_mlp with a max-norm constraint on the first layer (the step applies it after the
/// update): 4*8 + 8 + 8*3 + 3 = 67 parameters, shares of 34 + 33 on two ranks, 23 + 22 + 22 on
/// three, each cutting across tensors.
Sequential<double> constrained_mlp() {
  Generator gen(3);
  Sequential<double> model(kFeatures);
  Dense<double, ReLU> first(kFeatures, 8, gen);
  first.with_max_norm(0.8);
  model.add(std::move(first));
  model.add(Dense<double>(8, kClasses, gen));
  return model;
}

}  // namespace

TEST_CASE("Sharded optimizer step: p ranks x batch b equals 1 process x batch p*b, state included") {
  MpiCommunicator world;
  SingleProcess alone;
  Matrix<double> x;
  Labels y;
  make_blobs(53, x, y);
  for (const MakeOptimizer& make : optimizer_makers()) {
    auto train = [&](distributed::Communicator& comm, Index batch_size) {
      Sequential<double> model = constrained_mlp();
      const auto optimizer = make(model.parameters());
      FitOptions<double> options;
      options.epochs = 3;
      options.batch_size = batch_size;
      options.communicator = &comm;
      options.clip_grad_value = 2.0;
      options.clip_grad_norm = 0.5;  // below the gradients' norm: clipping scales every step
      Generator gen(11);
      fit(model, SoftmaxCrossEntropy<double>(), *optimizer, x, y, gen, options);
      Vector<double> state(0);  // every state vector, gathered at the end of each epoch
      for (Vector<double>* v : optimizer->state()) {
        state.conservativeResize(state.size() + v->size());
        state.tail(v->size()) = *v;
      }
      // After fit the optimizer updates every parameter again (one more plain epoch).
      options.communicator = nullptr;
      options.batch_size = batch_size * comm.size();  // the global batch
      options.epochs = 1;
      fit(model, SoftmaxCrossEntropy<double>(), *optimizer, x, y, gen, options);
      return std::pair{state, values_of(model)};
    };
    const auto [parallel_state, parallel_values] = train(world, 4);
    const auto [single_state, single_values] = train(alone, Index{4} * world.size());
    INFO(make(small_mlp<double>(3).parameters())->name());
    CHECK(relative_difference(single_values, parallel_values) <= 1e-12);
    if (single_state.size() > 0) CHECK(relative_difference(single_state, parallel_state) <= 1e-12);
  }
}

TEST_CASE("Sharded optimizer step: on with an elementwise optimizer, off without") {
  MpiCommunicator world;
  SingleProcess alone;
  Sequential<double> model = small_mlp<double>(3);
  Generator gen(2);
  Adam<double> adam(model.parameters());
  CHECK(DataParallel<double>(world, model, adam, gen, {}).sharded());
  WholeSgd whole(model.parameters(), SGDOptions(0.1));
  CHECK_FALSE(DataParallel<double>(world, model, whole, gen, {}).sharded());
  CHECK_FALSE(DataParallel<double>(alone, model, adam, gen, {}).sharded());
}

TEST_CASE("Early stopping decides together; only rank 0 writes the checkpoint file") {
  MpiCommunicator world;
  Matrix<double> x;
  Labels y;
  make_blobs(40, x, y);
  Sequential<double> model = small_mlp<double>(3);
  SGD<double> optimizer(model.parameters(), SGDOptions(0.5));
  SoftmaxCrossEntropy<double> loss;
  // Each rank names its own file, so that a write by a rank other than 0 would show.
  const std::string path = "dropnet_test_mpi_checkpoint_rank" + std::to_string(world.rank()) + ".dnw";
  std::remove(path.c_str());
  ModelCheckpoint<double> checkpoint(ModelCheckpointOptions().monitor("val_loss").path(path));
  EarlyStopping<double> stopping(EarlyStoppingOptions().monitor("val_loss").patience(1).min_delta(1e9));
  FitOptions<double> options;
  options.epochs = 10;
  options.batch_size = 4;
  options.communicator = &world;
  options.callbacks = {&checkpoint, &stopping};
  Generator gen(2);
  const History history = fit(model, loss, optimizer, x, y, gen, options,
                              ValidationData<double, Labels>{x, y});
  CHECK(history.epochs.size() == 2);  // min_delta 1e9: no epoch improves, patience 1
  CHECK(checkpoint.saves() == 2);
  const bool written = std::ifstream(path).good();
  CHECK(written == world.is_root());
  std::remove(path.c_str());
}

TEST_CASE("Faults: bad labels on one rank end every rank with its message") {
  MpiCommunicator world;
  const bool failing = world.rank() == world.size() - 1;
  Blobs data(24);
  if (failing) data.y(5) = 12;
  Sequential<double> model = small_mlp<double>(3);
  expect_every_rank_fails<InvalidArgument>(world, failing, "label 12 of sample 5", [&] {
    train_sgd(model, world, SoftmaxCrossEntropy<double>(), data.x, data.y, {});
  });
}

TEST_CASE("Faults: a NaN loss on one rank mid-training ends every rank") {
  MpiCommunicator world;
  const bool failing = world.rank() == world.size() - 1;
  Blobs data(48);
  Sequential<double> model = small_mlp<double>(3);
  expect_every_rank_fails<NumericalError>(world, failing, "non-finite loss", [&] {
    train_sgd(model, world, NanOnRank(failing, 4), data.x, data.y, {4, 10, 0.1});
  });
}

TEST_CASE("Faults: another architecture on one rank is an error on every rank") {
  MpiCommunicator world;
  const bool odd = world.rank() == world.size() - 1;
  Blobs data(24);
  Sequential<double> model = small_mlp<double>(3, odd ? 7 : 8);
  std::string message;
  try {
    train_sgd(model, world, SoftmaxCrossEntropy<double>(), data.x, data.y, {});
  } catch (const InvalidArgument& e) {
    message = e.what();
  }
  INFO("rank ", world.rank(), ": ", message);
  CHECK(message.find("models, optimizers or data differ") != std::string::npos);
  if (odd) CHECK(message.find("0.Dense.weight 8x4") != std::string::npos);
}

TEST_CASE("SyncBatchNorm: forward, backward and running statistics of the concatenated batch") {
  MpiCommunicator world;
  const Index channels = 3, spatial = 2, rows = channels * spatial;
  // Rank r holds columns [offset, offset + 3 + r) of one global batch: uneven slices.
  Index total = 0, offset = 0;
  for (int r = 0; r < world.size(); ++r) {
    if (r == world.rank()) offset = total;
    total += 3 + r;
  }
  const Index mine = 3 + world.rank();
  Generator gen(17);
  const Matrix<double> x = Matrix<double>::Random(rows, total) * 2.0 + Matrix<double>::Ones(rows, total);
  const Matrix<double> w = Matrix<double>::Random(rows, total);  // loss = sum(w .* y) / columns

  BatchNorm<double> whole(channels, spatial);
  whole.gamma() = Vector<double>::LinSpaced(channels, 0.5, 1.5);
  const Matrix<double> y_whole = whole.forward(x, Mode::train, &gen);
  const Matrix<double> dx_whole = whole.backward(w / double(total), true);

  BatchNorm<double> part(channels, spatial);
  part.gamma() = Vector<double>::LinSpaced(channels, 0.5, 1.5);
  part.synchronize(&world);
  const Matrix<double> x_mine = x.middleCols(offset, mine);
  const Matrix<double> y_mine = part.forward(x_mine, Mode::train, &gen);
  // Each rank's loss is the mean over its own columns, as in data-parallel fit.
  const Matrix<double> dx_mine = part.backward(w.middleCols(offset, mine) / double(mine), true);

  CHECK((y_mine - y_whole.middleCols(offset, mine)).cwiseAbs().maxCoeff() <= 1e-12);
  // fit weighs rank r's gradients by m_r / M: dx in its units is the global one times M / m_r.
  CHECK((dx_mine * (double(mine) / double(total)) - dx_whole.middleCols(offset, mine)).cwiseAbs().maxCoeff() <= 1e-13);
  Vector<double> grads(2 * channels);
  grads << part.gamma_grad() * double(mine), part.beta_grad() * double(mine);
  world.allreduce(grads.data(), static_cast<std::size_t>(grads.size()), distributed::ReduceOp::sum);
  grads /= double(total);
  CHECK((grads.head(channels) - whole.gamma_grad()).cwiseAbs().maxCoeff() <= 1e-12);
  CHECK((grads.tail(channels) - whole.beta_grad()).cwiseAbs().maxCoeff() <= 1e-12);
  CHECK((part.running_mean() - whole.running_mean()).cwiseAbs().maxCoeff() <= 1e-13);
  CHECK((part.running_var() - whole.running_var()).cwiseAbs().maxCoeff() <= 1e-13);
}

TEST_CASE("SyncBatchNorm in fit: p ranks x batch b equals 1 process x batch p*b with BatchNorm") {
  Matrix<double> x;
  Labels y;
  make_blobs(54, x, y);  // tails of 6: 3 + 3 on two ranks, 2 + 2 + 2 on three
  auto train = [&](distributed::Communicator& comm, Index batch_size) {
    Generator init(5);
    Sequential<double> model(kFeatures);
    model.add(Dense<double, ReLU>(kFeatures, 8, init));
    model.add(BatchNorm<double>(8)).synchronize(&comm);
    model.add(Dense<double>(8, kClasses, init));
    // The values include the running statistics.
    return train_sgd(model, comm, SoftmaxCrossEntropy<double>(), x, y, {batch_size, 2, 0.1}).first;
  };
  MpiCommunicator world;
  SingleProcess alone;
  CHECK(relative_difference(train(alone, Index{4} * world.size()), train(world, 4)) <= 1e-11);
}

TEST_CASE("SyncBatchNorm in fit: a tail shorter than the world is refused on every rank") {
  MpiCommunicator world;
  Matrix<double> x;
  Labels y;
  make_blobs(25, x, y);  // 25 = 3 x 8 + 1 (two ranks), 2 x 12 + 1 (three): one rank gets the last
  Sequential<double> model = small_mlp<double>(3);
  model.add(BatchNorm<double>(kClasses)).synchronize(&world);
  std::string message;
  try {
    train_sgd(model, world, SoftmaxCrossEntropy<double>(), x, y, {4, 1, 0.1});
  } catch (const InvalidArgument& e) {
    message = e.what();
  }
  INFO("rank ", world.rank(), ": ", message);
  CHECK(message.find("is synchronized, but the last global batch has fewer samples than ranks") !=
        std::string::npos);
}

int main(int argc, char** argv) {
  distributed::MpiEnvironment mpi(argc, argv);
  doctest::Context context(argc, argv);
  return context.run();
}
