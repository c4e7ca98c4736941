// The communicator interface without MPI: a world of one (SingleProcess) must change nothing,
// and a failure turned collective must keep its type and message. The multi-rank behaviour is
// tested under mpirun by tests/mpi/test_mpi_fit.cpp.

#include <doctest/doctest.h>

#include <dropnet/dropnet.hpp>

using namespace dropnet;
using distributed::SingleProcess;

namespace {

Vector<double> train(distributed::Communicator* comm, bool dropout) {
  Generator init(3);
  Sequential<double> model(4);
  model.add(Dense<double, ReLU>(4, 8, init));
  model.add(BatchNorm<double>(8));
  if (dropout) model.add(Dropout<double>(0.2));
  model.add(Dense<double>(8, 3, init));
  SGD<double> optimizer(model.parameters(), SGDOptions(0.1).momentum(0.9));
  SoftmaxCrossEntropy<double> loss;
  Generator data(5);
  Matrix<double> x = Matrix<double>::Zero(4, 30);
  Labels y(30);
  for (Index j = 0; j < 30; ++j) {
    y(j) = static_cast<int>(j % 3);
    for (Index i = 0; i < 4; ++i) x(i, j) = data.normal<double>() + double(y(j) == i);
  }
  FitOptions<double> options;
  options.epochs = 2;
  options.batch_size = 8;
  options.shuffle = false;
  options.communicator = comm;
  Generator gen(9);
  fit(model, loss, optimizer, x, y, gen, options);
  Vector<double> values;
  ModelState<double>(model).pack_values(values);
  return values;
}

}  // namespace

TEST_CASE("fit with SingleProcess is plain fit, bit for bit (no randomness, no shuffle)") {
  SingleProcess alone;
  const Vector<double> plain = train(nullptr, false), single = train(&alone, false);
  CHECK((plain.array() == single.array()).all());
  // With dropout the masks come from the (seed, rank) Generator: different, yet finite.
  CHECK(train(&alone, true).allFinite());
}

TEST_CASE("collectively: a world of one rethrows the exception itself") {
  SingleProcess alone;
  CHECK_THROWS_AS(distributed::collectively(&alone, "here", [] { throw NumericalError("nan"); }),
                  NumericalError);
  CHECK_THROWS_WITH(distributed::collectively(&alone, "here", [] { throw InvalidArgument("bad"); }),
                    "bad");
  int runs = 0;
  distributed::collectively(nullptr, "here", [&] { ++runs; });
  distributed::collectively(&alone, "here", [&] { ++runs; });
  CHECK(runs == 2);
}

TEST_CASE("BatchNorm synchronized over a world of one is BatchNorm") {
  Generator gen(1);
  const Matrix<double> x = Matrix<double>::Random(6, 5), dy = Matrix<double>::Random(6, 5);
  SingleProcess alone;
  BatchNorm<double> plain(3, 2), synced(3, 2);
  synced.synchronize(&alone);
  CHECK(synced.communicator() == &alone);
  const Matrix<double> y_plain = plain.forward(x, Mode::train, &gen);
  const Matrix<double> y_synced = synced.forward(x, Mode::train, &gen);
  CHECK((y_plain - y_synced).cwiseAbs().maxCoeff() <= 1e-15);
  const Matrix<double> dx_plain = plain.backward(dy, true), dx_synced = synced.backward(dy, true);
  CHECK((dx_plain - dx_synced).cwiseAbs().maxCoeff() <= 1e-14);
  CHECK((plain.gamma_grad() - synced.gamma_grad()).cwiseAbs().maxCoeff() == 0.0);
  CHECK((plain.running_var() - synced.running_var()).cwiseAbs().maxCoeff() == 0.0);
}

namespace {

/// inputs -> hidden (ReLU) -> [Dropout(dropout)] -> outputs, initialized from `seed`.
Sequential<double> mlp(Index inputs, Index hidden, Index outputs, double dropout, std::uint64_t seed) {
  Generator init(seed);
  Sequential<double> model(inputs);
  model.add(Dense<double, ReLU>(inputs, hidden, init));
  if (dropout > 0) model.add(Dropout<double>(dropout));
  model.add(Dense<double>(hidden, outputs, init));
  return model;
}

}  // namespace

TEST_CASE("Sharded predict, evaluate and mc_predict over a world of one are the plain ones") {
  Sequential<double> model = mlp(4, 8, 3, 0.25, 3);
  const Matrix<double> x = Matrix<double>::Random(4, 21);
  Labels y(21);
  for (Index j = 0; j < 21; ++j) y(j) = static_cast<int>(j % 3);
  SingleProcess alone;
  CHECK((predict(model, x, alone, 8).array() == predict(model, x, 8).array()).all());
  const SoftmaxCrossEntropy<double> loss;
  const Evaluation plain = evaluate(model, loss, x, y, 8), single = evaluate(model, loss, x, y, alone, 8);
  CHECK(single.loss == doctest::Approx(plain.loss).epsilon(1e-14));
  CHECK(single.accuracy == plain.accuracy);
  // mc_predict: the masks of rank 0, rank_generator(first draw of gen, 0).
  McDropoutOptions options;
  options.batch_size = 8;
  options.outputs = McOutputs::logits;
  Generator gen(12), rank_gen = rank_generator(Generator(12).next_u64(), 0);
  const McPrediction<double> sharded = mc_predict(model, x, 4, gen, alone, options);
  const McPrediction<double> direct = mc_predict(model, x, 4, rank_gen, options);
  CHECK((sharded.mean.array() == direct.mean.array()).all());
  CHECK((sharded.variance.array() == direct.variance.array()).all());
  CHECK((sharded.mutual_information.array() == direct.mutual_information.array()).all());
  // Bad input throws as it does alone.
  CHECK_THROWS_WITH_AS(predict(model, Matrix<double>(4, 0), alone), doctest::Contains("empty input"),
                       InvalidArgument);
  CHECK_THROWS_AS(evaluate(model, loss, x, Labels(20), alone), InvalidArgument);
}

TEST_CASE("ModelState packs gradients with a weight into a buffer and unpacks them scaled") {
  Sequential<double> model = mlp(3, 2, 2, 0.0, 1);
  ModelState<double> state(model);
  Vector<double> plain = Vector<double>::LinSpaced(state.gradient_count(), 1.0, 2.0);
  state.unpack_gradients(plain);
  Vector<double> buffer = Vector<double>::Constant(state.gradient_count() + 2, -1.0);
  state.pack_gradients(buffer.data(), 3.0);
  CHECK((buffer.head(state.gradient_count()).array() == 3.0 * plain.array()).all());
  CHECK(buffer.tail(2).isConstant(-1.0));  // nothing written past gradient_count()
  state.unpack_gradients(buffer.data(), 0.5);
  Vector<double> back;
  state.pack_gradients(back);
  CHECK((back.array() == 1.5 * plain.array()).all());
}
