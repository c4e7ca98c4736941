// Determinism: the same seed (and thread count) gives bit-identical weights after training, and
// random draws (dropout masks, Gaussian noise) do not depend on how many threads produce them.

#include <doctest/doctest.h>

#include <cstring>
#include <dropnet/dropnet.hpp>
#include <thread>
#include <vector>

using namespace dropnet;

namespace {

template <class T>
Sequential<T> stochastic_model(Generator& gen) {
  Sequential<T> model(8);
  model.add(Dense<T, ReLU>(8, 16, gen));
  model.add(BatchNorm<T>(16));
  model.add(Dropout<T>(0.3));
  model.add(DropConnectDense<T, SELU>(16, 16, 0.2, gen));
  model.add(AlphaDropout<T>(0.1));
  model.add(Dense<T, Tanh>(16, 12, gen));
  model.add(GaussianDropout<T>(0.2));
  model.add(SpatialDropout<T>(0.25, 4));
  model.add(DropConnectDense<T, ReLU>(12, 8, 0.3, gen)).with_per_sample_masks();
  model.add(Dense<T>(8, 4, gen));
  return model;
}

/// Everything that must be reproducible after training: parameters, buffers, optimizer state,
/// the generator's position, the loss history, as raw bytes.
template <class T>
std::string train_from_seed(std::uint64_t seed, int epochs = 3) {
  Generator gen(seed);
  Sequential<T> model = stochastic_model<T>(gen);
  Matrix<T> x(8, 96);
  Labels y(96);
  for (Index j = 0; j < 96; ++j) {
    y(j) = static_cast<int>(gen.below(4));
    for (Index i = 0; i < 8; ++i) x(i, j) = gen.normal<T>() + (i == y(j) ? T(1.5) : T(0));
  }
  Adam<T> adam(model.parameters(), AdamOptions(1e-2));
  SoftmaxCrossEntropy<T> loss;
  FitOptions<T> options;
  options.epochs = epochs;
  options.batch_size = 16;
  const History h = fit(model, loss, adam, x, y, gen, options);

  std::string bytes;
  auto append = [&](const void* p, std::size_t n) { bytes.append(static_cast<const char*>(p), n); };
  for (const auto& v : model.parameters()) append(v.value, sizeof(T) * static_cast<std::size_t>(v.size()));
  for (const auto& v : model.buffers()) append(v.value, sizeof(T) * static_cast<std::size_t>(v.size()));
  for (const Vector<T>* s : adam.state()) append(s->data(), sizeof(T) * static_cast<std::size_t>(s->size()));
  const std::uint64_t position = gen.position();
  append(&position, sizeof position);
  for (const auto& e : h.epochs) {
    append(&e.loss, sizeof e.loss);
    append(&e.accuracy, sizeof e.accuracy);
  }
  return bytes;
}

}  // namespace

TEST_CASE_TEMPLATE("the same seed gives bit-identical weights, statistics and history", T, float,
                   double) {
  const std::string a = train_from_seed<T>(42);
  const std::string b = train_from_seed<T>(42);
  CHECK(a.size() > 1000);
  CHECK(a == b);
  // The comparison can fail: another seed changes the bytes.
  CHECK(train_from_seed<T>(43) != a);
}

TEST_CASE("training in parallel threads matches training alone (no hidden shared state)") {
  const std::string alone = train_from_seed<float>(7, 2);
  std::vector<std::string> results(3);
  std::vector<std::thread> threads;
  for (std::size_t t = 0; t < results.size(); ++t)
    threads.emplace_back([&results, t] { results[t] = train_from_seed<float>(7, 2); });
  for (auto& th : threads) th.join();
  for (const auto& r : results) CHECK(r == alone);
}

TEST_CASE_TEMPLATE("a dropout mask filled by 1 to 8 threads equals the single-threaded draw", T,
                   float, double) {
  const Index n = 10007;  // not a multiple of 4 words or of any chunk
  const KeepThreshold keep("test", 0.35);
  Generator gen(2024);
  gen.reserve_blocks(17);  // start mid-stream
  Generator serial_gen = gen;
  std::vector<T> serial(static_cast<std::size_t>(n));
  const std::uint64_t first = draw_bernoulli(serial_gen, keep, T(1) / T(0.65), T(0), serial.data(), n);
  for (int threads = 1; threads <= 8; ++threads) {
    std::vector<T> parallel(static_cast<std::size_t>(n), T(-1));
    // Split on block boundaries (4 words per block), as a parallel kernel would.
    const Index blocks = static_cast<Index>(mask_blocks(n));
    const Index per = (blocks + threads - 1) / threads;
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) {
      const Index b0 = std::min(blocks, per * t), b1 = std::min(blocks, per * (t + 1));
      const Index w0 = 4 * b0, w1 = std::min(n, 4 * b1);
      if (w0 >= w1) continue;
      pool.emplace_back([&, w0, w1, b0] {
        fill_bernoulli(gen, first + static_cast<std::uint64_t>(b0), keep, T(1) / T(0.65), T(0),
                       parallel.data() + w0, w1 - w0);
      });
    }
    for (auto& th : pool) th.join();
    CHECK_MESSAGE(parallel == serial, threads, " threads");
  }
  // Normal noise (GaussianDropout, DropConnect inference) is counter-based the same way.
  Generator ng(5);
  std::vector<T> normal_serial(static_cast<std::size_t>(n));
  const std::uint64_t nfirst = draw_normal(ng, T(1), T(0.5), normal_serial.data(), n);
  std::vector<T> normal_split(static_cast<std::size_t>(n));
  std::thread low([&] { fill_normal(ng, nfirst, T(1), T(0.5), normal_split.data(), 5000); });
  std::thread high([&] {
    fill_normal(ng, nfirst + 2500, T(1), T(0.5), normal_split.data() + 5000, n - 5000);
  });
  low.join();
  high.join();
  CHECK(normal_split == normal_serial);
}

TEST_CASE("a Dropout layer's mask depends only on (seed, position)") {
  Generator g1(99), g2(99);
  Dropout<double> a(0.5), b(0.5);
  const Matrix<double> x = Matrix<double>::Ones(33, 7);
  a.forward(x, Mode::train, &g1);
  b.forward(x, Mode::train, &g2);
  CHECK(a.mask() == b.mask());
  CHECK(g1.position() == g2.position());
  // A second draw differs from the first (the stream advanced).
  const Matrix<double> first = a.mask();
  a.forward(x, Mode::train, &g1);
  CHECK(a.mask() != first);
}

#ifdef _OPENMP
TEST_CASE("with OpenMP, the same thread count gives the same weights; masks ignore it") {
  for (int threads : {1, 2}) {
    Eigen::setNbThreads(threads);
    CHECK(train_from_seed<double>(3, 1) == train_from_seed<double>(3, 1));
  }
  Eigen::setNbThreads(1);
  Generator g1(1), g2(1);
  Dropout<float> a(0.5), b(0.5);
  const Matrix<float> x = Matrix<float>::Ones(64, 64);
  a.forward(x, Mode::train, &g1);
  Eigen::setNbThreads(2);
  b.forward(x, Mode::train, &g2);
  CHECK(a.mask() == b.mask());
  Eigen::setNbThreads(0);
}
#endif
