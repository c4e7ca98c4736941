// Sharded inference on MPI (run by ctest under `mpirun -np 2` and `-np 3`): predict, evaluate and
// mc_predict over a communicator split the columns across the ranks and give every rank the
// whole result. predict and evaluate equal one process's within rounding (the accuracy exactly);
// mc_predict equals, bit for bit, the concatenation of one-process mc_predict calls on each
// rank's slice with that rank's Generator, rank_generator(seed, r). Uneven splits, ranks without
// a sample, and faults on one rank (which end every rank with the message) are covered.
//
// Every rank runs every test case in the same order, so their collectives match.

#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <dropnet/distributed/mpi.hpp>
#include <dropnet/dropnet.hpp>

#include "mpi_test_support.hpp"

#include <string>

using namespace dropnet;
using dropnet::testing::expect_every_rank_fails;
using distributed::MpiCommunicator;

namespace {

constexpr Index kFeatures = 4, kClasses = 3;

/// `samples` Gaussian columns and labels, the same on every rank (the seed is fixed).
struct Data {
  explicit Data(Index samples) : x(kFeatures, samples), y(samples) {
    Generator gen(7);
    for (Index j = 0; j < samples; ++j) {
      y(j) = static_cast<int>(j % kClasses);
      for (Index i = 0; i < kFeatures; ++i) x(i, j) = gen.normal<double>() + double(y(j) == i);
    }
  }
  Matrix<double> x;
  Labels y;
};

/// Dense -> BatchNorm (with running statistics that are not the identity) -> [Dropout] -> Dense,
/// the same on every rank.
Sequential<double> model_with(bool dropout) {
  Generator init(3);
  Sequential<double> model(kFeatures);
  model.add(Dense<double, ReLU>(kFeatures, 8, init));
  BatchNorm<double>& bn = model.add(BatchNorm<double>(8));
  bn.running_mean() = Vector<double>::LinSpaced(8, -0.5, 0.5);
  bn.running_var() = Vector<double>::LinSpaced(8, 0.5, 2.0);
  if (dropout) model.add(Dropout<double>(0.3));
  model.add(Dense<double>(8, kClasses, init));
  return model;
}

double relative_difference(const Matrix<double>& a, const Matrix<double>& b) {
  REQUIRE(a.rows() == b.rows());
  REQUIRE(a.cols() == b.cols());
  return (a - b).cwiseAbs().maxCoeff() / a.cwiseAbs().maxCoeff();
}

/// True when `m` is bit-identical on every rank.
template <class Dense>
bool same_everywhere(distributed::Communicator& comm, const Dense& m) {
  return detail::same_on_every_rank(
      comm, detail::fnv1a(m.data(), sizeof(double) * static_cast<std::size_t>(m.size())));
}

template <class Dense>
bool bit_identical(const Dense& a, const Dense& b) {
  return a.rows() == b.rows() && a.cols() == b.cols() && (a.array() == b.array()).all();
}

}  // namespace

TEST_CASE("Sharded predict: every rank gets one process's outputs, uneven splits and idle ranks") {
  MpiCommunicator world;
  Sequential<double> model = model_with(false);
  // 53 columns: 27 + 26 on two ranks, 18 + 18 + 17 on three; then fewer columns than ranks.
  for (const Index samples : {Index{53}, Index{world.size() - 1}}) {
    CAPTURE(samples);
    const Data data(samples);
    const Matrix<double> single = predict(model, data.x, 8);
    const Matrix<double> sharded = predict(model, data.x, world, 8);
    CHECK(relative_difference(single, sharded) <= 1e-12);
    CHECK(same_everywhere(world, sharded));
  }
}

TEST_CASE("Sharded evaluate: one process's loss within rounding, its accuracy exactly") {
  MpiCommunicator world;
  Sequential<double> model = model_with(false);
  const SoftmaxCrossEntropy<double> loss;
  for (const Index samples : {Index{53}, Index{world.size() - 1}}) {
    CAPTURE(samples);
    const Data data(samples);
    const Evaluation single = evaluate(model, loss, data.x, data.y, 8);
    const Evaluation sharded = evaluate(model, loss, data.x, data.y, world, 8);
    CHECK(sharded.loss == doctest::Approx(single.loss).epsilon(1e-12));
    CHECK(sharded.accuracy == single.accuracy);
    double low = sharded.loss, high = sharded.loss;
    world.allreduce(&low, 1, distributed::ReduceOp::min);
    world.allreduce(&high, 1, distributed::ReduceOp::max);
    CHECK(low == high);
  }
}

TEST_CASE("Sharded mc_predict: bit for bit the per-slice mc_predict with rank_generator(seed, r)") {
  MpiCommunicator world;
  Sequential<double> model = model_with(true);
  for (const McOutputs outputs : {McOutputs::logits, McOutputs::regression}) {
    for (const Index samples : {Index{53}, Index{world.size() - 1}}) {
      CAPTURE(samples);
      const Data data(samples);
      McDropoutOptions options;
      options.batch_size = 8;
      options.outputs = outputs;
      // Only rank 0's Generator decides; every rank's draws one number.
      Generator gen(world.rank() == 0 ? 41 : 1000 + static_cast<std::uint64_t>(world.rank()));
      Generator after(gen.seed());
      after.next_u64();
      const McPrediction<double> sharded = mc_predict(model, data.x, 5, gen, world, options);
      CHECK(gen.next_u64() == after.next_u64());

      // What the definition says, computed on this rank alone.
      const std::uint64_t seed = Generator(41).next_u64();
      McPrediction<double> expected;
      expected.mean.resize(kClasses, samples);
      expected.variance.resize(kClasses, samples);
      expected.probabilities.resize(kClasses, samples);
      for (auto* v : {&expected.predictive_entropy, &expected.expected_entropy,
                      &expected.mutual_information})
        v->resize(samples);
      for (int r = 0; r < world.size(); ++r) {
        const auto [first, count] = detail::shard_of(0, samples, r, world.size());
        if (count == 0) continue;
        Generator rank_gen = rank_generator(seed, r);
        const McPrediction<double> part =
            mc_predict(model, Matrix<double>(data.x.middleCols(first, count)), 5, rank_gen, options);
        expected.mean.middleCols(first, count) = part.mean;
        expected.variance.middleCols(first, count) = part.variance;
        if (outputs == McOutputs::regression) continue;
        expected.probabilities.middleCols(first, count) = part.probabilities;
        expected.predictive_entropy.segment(first, count) = part.predictive_entropy;
        expected.expected_entropy.segment(first, count) = part.expected_entropy;
        expected.mutual_information.segment(first, count) = part.mutual_information;
      }
      CHECK(sharded.passes == 5);
      CHECK(bit_identical(sharded.mean, expected.mean));
      CHECK(bit_identical(sharded.variance, expected.variance));
      CHECK(sharded.variance.maxCoeff() > 0.0);  // the masks did differ between passes
      if (outputs == McOutputs::regression) {
        CHECK(sharded.probabilities.size() == 0);
        CHECK(sharded.mutual_information.size() == 0);
        continue;
      }
      CHECK(bit_identical(sharded.probabilities, expected.probabilities));
      CHECK(bit_identical(sharded.predictive_entropy, expected.predictive_entropy));
      CHECK(bit_identical(sharded.expected_entropy, expected.expected_entropy));
      CHECK(bit_identical(sharded.mutual_information, expected.mutual_information));
    }
  }
}

TEST_CASE("Sharded mc_predict: ranks draw different masks; the mean matches one process's") {
  // The slices of a constant input are the same data, so any difference between the ranks'
  // columns comes from their masks: keyed by (seed, rank), they must differ.
  MpiCommunicator world;
  Sequential<double> model = model_with(true);
  const Index samples = Index{6} * world.size();
  const Matrix<double> x = Matrix<double>::Constant(kFeatures, samples, 0.7);
  Generator gen(5);
  const McPrediction<double> sharded = mc_predict(model, x, 4, gen, world, {});
  const Index per_rank = samples / world.size();
  const bool differ = sharded.mean.leftCols(per_rank) != sharded.mean.middleCols(per_rank, per_rank);
  CHECK(differ);
  // Dropout feeds a linear layer, so the expected output of a pass is the eval output: the mean
  // of many passes must lie within 6 standard errors (its variance / passes) of it.
  const int passes = 2000;
  Generator many(9);
  const McPrediction<double> long_run = mc_predict(model, x, passes, many, world, {});
  const Matrix<double> eval = predict(model, x, world);
  const Matrix<double> six_errors = 6.0 * (long_run.variance / passes).cwiseSqrt();
  CHECK(((long_run.mean - eval).cwiseAbs().array() <= six_errors.array() + 1e-12).all());
}

TEST_CASE("Faults: a bad input on one rank ends every rank with its message") {
  MpiCommunicator world;
  const bool failing = world.rank() == world.size() - 1;
  Data data(30);
  if (failing) data.x(2, 7) = std::nan("");
  Sequential<double> model = model_with(false);
  const SoftmaxCrossEntropy<double> loss;
  expect_every_rank_fails<InvalidArgument>(world, failing, "inputs contain NaN or Inf", [&] {
    evaluate(model, loss, data.x, data.y, world);
  });
  // A model without its last layer, Dropout, on one rank (the same tensors): its mc_predict
  // throws, every rank ends.
  Generator init(2);
  Sequential<double> mc_model(kFeatures);
  mc_model.add(Dense<double, ReLU>(kFeatures, 8, init));
  mc_model.add(Dense<double>(8, kClasses, init));
  if (!failing) mc_model.add(Dropout<double>(0.5));
  Generator gen(1);
  expect_every_rank_fails<InvalidArgument>(world, failing, "no stochastic layer", [&] {
    mc_predict(mc_model, data.x, 3, gen, world);
  });
}

TEST_CASE("Faults: other input shapes or models on one rank are an error on every rank") {
  MpiCommunicator world;
  const bool odd = world.rank() == world.size() - 1;
  const Data data(odd ? 31 : 30);
  Sequential<double> model = model_with(false);
  std::string message;
  try {
    predict(model, data.x, world);
  } catch (const InvalidArgument& e) {
    message = e.what();
  }
  INFO("rank ", world.rank(), ": ", message);
  CHECK(message.find("predict (distributed): the ranks' models or inputs differ") != std::string::npos);
  if (odd) CHECK(message.find("rank 0 has 'predict 4x30") != std::string::npos);

  Sequential<double> other = model_with(false);
  Generator init(1);
  if (odd) other.add(Dense<double>(kClasses, 2, init));
  message.clear();
  try {
    predict(other, Data(30).x, world);
  } catch (const InvalidArgument& e) {
    message = e.what();
  }
  CHECK(message.find("the ranks' models or inputs differ") != std::string::npos);
}

int main(int argc, char** argv) {
  distributed::MpiEnvironment mpi(argc, argv);
  doctest::Context context(argc, argv);
  return context.run();
}
