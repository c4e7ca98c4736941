// core/parallel.hpp: the pieces of a split loop (each element once, in the documented bounds),
// WorkerPool under nesting and concurrent callers, its background job (BackgroundLoop, fit's next
// batch), and the loops that go parallel with Eigen::setNbThreads(2) under OpenMP (elementwise
// kernels, optimizer steps over all parameters, BatchNorm's column kernels, dropout masks, the
// small-batch affine kernel): the same bits as on one thread; and
// detail::all_finite, split the same way, exact on 1 and 2 threads; and Dense's batched forward
// with its bias and activation in the GEMM's epilogue, bit for bit the separate passes.

#include <doctest/doctest.h>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <dropnet/activations/relu.hpp>
#include <dropnet/activations/sigmoid.hpp>
#include <dropnet/core/finite.hpp>
#include <dropnet/core/gemm.hpp>
#include <dropnet/core/generator.hpp>
#include <dropnet/core/parallel.hpp>
#include <dropnet/layers/bernoulli_mask.hpp>
#include <dropnet/layers/dense.hpp>
#include <dropnet/layers/dropout.hpp>
#include <dropnet/losses/softmax_cross_entropy.hpp>
#include <dropnet/model/sequential.hpp>
#include <dropnet/optimizers/adagrad.hpp>
#include <dropnet/optimizers/adam.hpp>
#include <dropnet/optimizers/rmsprop.hpp>
#include <dropnet/optimizers/sgd.hpp>
#include <dropnet/training/fit.hpp>
#include <dropnet/simd/elementwise.hpp>
#include <dropnet/simd/gemv.hpp>
#include <limits>
#include <map>
#include <string>
#include <thread>
#include <vector>

using dropnet::Generator;
using dropnet::Index;
namespace detail = dropnet::detail;

namespace {

/// Runs for_each_piece and checks that each element of [0, n) was visited once, by piece t
/// within [t piece_length, (t + 1) piece_length), every piece but the last a multiple of align.
void check_pieces(Index n, Index align, int threads) {
  std::vector<int> visits(static_cast<std::size_t>(n), 0);
  std::vector<int> owner(static_cast<std::size_t>(n), -1);
  const Index piece = detail::piece_length(n, threads, align);
  std::atomic<int> bad{0};
  detail::for_each_piece(n, align, threads, [&](int t, Index begin, Index end) {
    if (begin != piece * t || (end != n && (end - begin) % align != 0)) ++bad;
    for (Index i = begin; i < end; ++i) {
      ++visits[static_cast<std::size_t>(i)];
      owner[static_cast<std::size_t>(i)] = t;
    }
  });
  CHECK_MESSAGE(bad.load() == 0, "n ", n, " align ", align, " threads ", threads);
  for (Index i = 0; i < n; ++i) {
    REQUIRE_MESSAGE(visits[static_cast<std::size_t>(i)] == 1, "element ", i, " of ", n);
    REQUIRE(owner[static_cast<std::size_t>(i)] == int(i / piece));
  }
}

}  // namespace

TEST_CASE("for_each_piece visits every element once, in whole units of align") {
  for (int threads : {1, 2, 3, 7})
    for (Index n : {1, 15, 16, 17, 100, 1000, 4099})
      for (Index align : {1, 4, 16}) check_pieces(n, align, threads);
}

TEST_CASE("WorkerPool: a loop inside a piece runs serially; concurrent callers all finish") {
  std::atomic<int> inner_threads{0};
  detail::for_each_piece(
      4, 1, 2, [&](int, Index, Index) { inner_threads.fetch_add(detail::available_threads()); });
  CHECK(inner_threads.load() == 2);  // one thread for each of the 2 non-empty pieces

  // Two threads run loops at the same time: one gets the pool, the other runs its own pieces.
  constexpr Index n = 20000;
  std::vector<long> sums(4, 0);
  const auto caller = [&](std::size_t slot) {
    for (int round = 0; round < 200; ++round) {
      std::atomic<long> sum{0};
      detail::for_each_piece(n, 16, 2, [&](int, Index begin, Index end) {
        long s = 0;
        for (Index i = begin; i < end; ++i) s += i;
        sum.fetch_add(s);
      });
      sums[slot] += sum.load() == n * (n - 1) / 2 ? 0 : 1;
    }
  };
  std::thread other(caller, 0);
  caller(1);
  other.join();
  CHECK(sums[0] == 0);
  CHECK(sums[1] == 0);
}

TEST_CASE("threads_for leaves each thread at least min_per_thread elements") {
  Eigen::setNbThreads(2);
  const int available = detail::available_threads();
  CHECK(detail::threads_for(100, 64) == 1);
  CHECK(detail::threads_for(128, 64) == available);
  CHECK(detail::threads_for(1 << 20, 64) == available);
#if defined(_OPENMP)
  CHECK(available == 2);
#else
  CHECK(available == 1);  // without OpenMP dropnet stays on one thread
#endif
  Eigen::setNbThreads(1);
}

TEST_CASE("all_finite is exact on 1 and 2 threads, wherever the non-finite entry is") {
  const float inf = std::numeric_limits<float>::infinity();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (int threads : {1, 2}) {
    Eigen::setNbThreads(threads);
    INFO("threads ", threads);
    Eigen::MatrixXf m = Eigen::MatrixXf::Ones(515, 131);  // above the threshold: split
    Eigen::VectorXf v = Eigen::VectorXf::Ones(100003);
    CHECK(detail::all_finite(m));
    CHECK(detail::all_finite(v));
    for (Index at : {Index(0), Index(515 * 65 + 7), Index(515 * 131 - 1)}) {
      for (float bad : {inf, -inf, nan}) {
        m(at) = bad;
        v(at) = bad;
        CHECK_FALSE(detail::all_finite(m));
        CHECK_FALSE(detail::all_finite(v));
        m(at) = 1.0f;
        v(at) = 1.0f;
      }
    }
    // Finite entries whose sum overflows: the exact entry-wise check answers.
    m.setConstant(3e38f);
    v.setConstant(3e38f);
    CHECK(detail::all_finite(m));
    CHECK(detail::all_finite(v));
    CHECK(detail::all_finite(m.middleCols(3, 100)));  // a block, as fit's datasets may be
  }
  Eigen::setNbThreads(1);
}

TEST_CASE("Dense's batched forward (bias and activation in the GEMM's epilogue): the bits of the "
          "separate passes, on 1 and 2 threads") {
  // W1's first layer at batch 64 (the packed kernel's column split) and its output layer (10 rows:
  // Eigen's kernel under -march=native), ReLU and Identity fused, Sigmoid after the product.
  Generator gen(41);
  const auto check = [&](auto layer, Index in, Index out) {
    layer.bias() = dropnet::Vector<float>::NullaryExpr(out, [&] { return gen.uniform(-1.0f, 1.0f); });
    const dropnet::Matrix<float> x =
        dropnet::Matrix<float>::NullaryExpr(in, 64, [&] { return gen.uniform(-1.0f, 1.0f); });
    const auto& read = layer;
    dropnet::Matrix<float> z, expected;  // the passes the epilogue replaced
    dropnet::Gemm<float> gemm;
    gemm.multiply<dropnet::Op::none, dropnet::Op::none>(read.weight(), x, z);
    dropnet::simd::add_to_columns(z.data(), z.rows(), z.cols(), read.bias().data());
    read.activation().forward(z, expected);
    for (int threads : {1, 2}) {
      Eigen::setNbThreads(threads);
      const dropnet::Matrix<float> y = layer.forward(x, dropnet::Mode::eval, nullptr);
      CHECK_MESSAGE(std::memcmp(y.data(), expected.data(), sizeof(float) * std::size_t(y.size())) == 0,
                    layer.name(), " on ", threads, " threads");
    }
    Eigen::setNbThreads(1);
  };
  check(dropnet::Dense<float, dropnet::ReLU>(784, 120, gen), 784, 120);
  check(dropnet::Dense<float, dropnet::LeakyReLU>(120, 60, gen, dropnet::Init::he_normal,
                                                  dropnet::LeakyReLU(0.2)),
        120, 60);
  check(dropnet::Dense<float>(60, 10, gen), 60, 10);
  check(dropnet::Dense<float, dropnet::Sigmoid>(784, 120, gen), 784, 120);
}

#if defined(_OPENMP)
namespace {

std::vector<float> random_floats(Index n, Generator& gen, float low = -2.0f, float high = 2.0f) {
  std::vector<float> v(static_cast<std::size_t>(n));
  for (float& x : v) x = gen.uniform(low, high);
  return v;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

}  // namespace

TEST_CASE("kernels split between 2 threads give the bits of 1 thread") {
  // Sizes well above the thresholds (detail::parallel_elements, the mask's 8,192, the small-batch
  // kernel's gemv_parallel_macs) and not multiples of a register, so pieces end on partial ones.
  Generator gen(31);
  const Index rows = 515, cols = 131, n = rows * cols;
  const std::vector<float> z = random_floats(n, gen), d = random_floats(n, gen);
  const std::vector<float> g = random_floats(n, gen), m0 = random_floats(n, gen);
  const std::vector<float> v0 = random_floats(n, gen, 0.0f, 1.0f);
  const std::vector<float> row_a = random_floats(rows, gen), row_b = random_floats(rows, gen);
  const std::vector<float> row_c = random_floats(rows, gen, 0.5f, 2.0f);
  const Index k = 784, out_rows = 120, columns = 3;
  const std::vector<float> w = random_floats(out_rows * k, gen),
                           x = random_floats(k * columns, gen);
  const std::vector<float> bias = random_floats(out_rows, gen);

  // Each kernel's outputs, by name.
  using Results = std::map<std::string, std::vector<float>>;
  const auto run = [&](int threads) {
    Eigen::setNbThreads(threads);
    const std::vector<float> empty(z.size());
    Results r{{"relu", empty}, {"product", empty}, {"logistic", empty},   {"adam_p", z},
              {"adam_m", m0},  {"adam_v", v0},     {"normalized", empty}, {"xhat", empty},
              {"grad", empty}, {"biased", z},      {"mask", empty},       {"affine_z", {}},
              {"affine_y", {}},  {"dropout_y", empty}, {"dropout_y_stored", empty},
              {"dropout_mask", empty}};
    dropnet::simd::max_scaled(z.data(), r["relu"].data(), n, 0.1f);
    dropnet::simd::multiply(z.data(), d.data(), r["product"].data(), n);
    dropnet::simd::logistic(z.data(), d.data(), r["logistic"].data(), n);
    const dropnet::simd::AdamConstants<float> adam{1e-3f, 1.2f,  1.0f,  0.0f,  0.9f, 0.999f,
                                                   0.1f,  1e-3f, 1e-8f, false, false};
    dropnet::simd::adam_update(r["adam_p"].data(), g.data(), r["adam_m"].data(), r["adam_v"].data(),
                               static_cast<float*>(nullptr), n, adam);
    dropnet::simd::normalize_columns(z.data(), row_a.data(), row_c.data(), row_b.data(),
                                     row_a.data(), rows, cols, r["xhat"].data(),
                                     r["normalized"].data());
    dropnet::simd::batch_norm_input_gradient(d.data(), z.data(), row_a.data(), row_b.data(),
                                             row_c.data(), rows, cols, r["grad"].data());
    dropnet::simd::add_to_columns(r["biased"].data(), rows, cols, row_a.data());
    const Generator mask_gen(77);
    dropnet::fill_bernoulli(mask_gen, 5, dropnet::KeepThreshold("test", 0.3), 2.0f, 0.0f,
                            r["mask"].data(), n);
    // A dropout's output with its mask stored, and without (the columns split by 4-groups).
    const dropnet::KeepThreshold dropout_keep("test", 0.4);
    dropnet::fill_bernoulli_product(mask_gen, 9, dropout_keep, 2.5f, 0.0f, z.data(),
                                    r["dropout_y"].data(), static_cast<float*>(nullptr), rows,
                                    cols);
    dropnet::fill_bernoulli_product(mask_gen, 9, dropout_keep, 2.5f, 0.0f, z.data(),
                                    r["dropout_y_stored"].data(), r["dropout_mask"].data(), rows,
                                    cols);
    r["affine_z"].assign(static_cast<std::size_t>(out_rows * columns), 0.0f);
    r["affine_y"] = r["affine_z"];
    const dropnet::SimdLevel level = dropnet::simd_level();
    if (dropnet::simd::small_batch_affine_serves(level))
      dropnet::simd::small_batch_affine<float>(
          level, {out_rows, columns, k, w.data(), out_rows, x.data(), k, bias.data(),
                  r["affine_z"].data(), out_rows, r["affine_y"].data(), out_rows, 0.0f});
    return r;
  };
  Results one = run(1), two = run(2);
  Eigen::setNbThreads(1);
  for (const auto& entry : one) {
    const std::string& name = entry.first;
    CHECK_MESSAGE(same_bits(entry.second, two[name]), name);
  }
  // The mask is the one mask_blocks addresses: entry i from word i % 4 of block 5 + i / 4.
  const Generator mask_gen(77);
  const dropnet::KeepThreshold keep("test", 0.3);
  bool mask_ok = true;
  for (Index i = 0; i < n; i += 997) {
    const auto block = mask_gen.block(5 + static_cast<std::uint64_t>(i / 4));
    const float expected =
        block[static_cast<std::size_t>(i % 4)] <= keep.last_kept_word() ? 2.0f : 0.0f;
    mask_ok = mask_ok && one["mask"][static_cast<std::size_t>(i)] == expected;
  }
  CHECK(mask_ok);
  // The dropout's mask is fill_bernoulli's, and its output x m with or without storing m.
  std::vector<float> dropout_mask(z.size()), product(z.size());
  dropnet::fill_bernoulli(mask_gen, 9, dropnet::KeepThreshold("test", 0.4), 2.5f, 0.0f,
                          dropout_mask.data(), n);
  dropnet::simd::multiply(z.data(), dropout_mask.data(), product.data(), n);
  CHECK(same_bits(one["dropout_mask"], dropout_mask));
  CHECK(same_bits(one["dropout_y"], product));
  CHECK(same_bits(one["dropout_y_stored"], product));
}
#endif

TEST_CASE("BackgroundLoop: every element once, seen after finish, while loops run meanwhile") {
  constexpr Index n = 100000;
  std::vector<int> visits(static_cast<std::size_t>(n), 0);
  std::atomic<int> outside_piece{0};
  auto mark = [&](Index begin, Index end) {
    if (!detail::in_parallel_piece()) ++outside_piece;  // nested loops must run serially
    for (Index i = begin; i < end; ++i) ++visits[static_cast<std::size_t>(i)];
  };
  Eigen::setNbThreads(2);
  {
    detail::BackgroundLoop<decltype(mark)> loop(mark);
#if defined(_OPENMP)
    REQUIRE(loop.start(n, 1000));
    // The pool is not free for a second background job until this one finishes: another
    // thread's loop is refused (and would run its own loop itself).
    detail::BackgroundLoop<decltype(mark)> other(mark);
    bool other_started = true;
    std::thread([&] { other_started = other.start(n, 1000); }).join();
    CHECK_FALSE(other_started);
    // Loops keep running while workers take background pieces between them.
    for (int round = 0; round < 50; ++round) {
      std::atomic<long> sum{0};
      detail::for_each_piece(20000, 16, 2, [&](int, Index begin, Index end) {
        long s = 0;
        for (Index i = begin; i < end; ++i) s += i;
        sum.fetch_add(s);
      });
      REQUIRE(sum.load() == 20000L * 19999L / 2);
    }
    loop.finish();
    for (Index i = 0; i < n; ++i) REQUIRE_MESSAGE(visits[static_cast<std::size_t>(i)] == 1, i);
    CHECK(outside_piece.load() == 0);
    // Finished, the pool takes the next one; destroying a started loop finishes it.
    REQUIRE(loop.start(n, 7));
#else
    CHECK_FALSE(loop.start(n, 1000));  // one thread: nothing runs in the background
#endif
  }
#if defined(_OPENMP)
  for (Index i = 0; i < n; ++i) REQUIRE_MESSAGE(visits[static_cast<std::size_t>(i)] == 2, i);
#endif
  Eigen::setNbThreads(1);
  detail::BackgroundLoop<decltype(mark)> alone(mark);
  CHECK_FALSE(alone.start(n, 1000));  // one thread: the caller runs its loop itself
}

#if defined(_OPENMP)
namespace {

/// The bytes of a model's parameters and the optimizer's state after `epochs` of fit on W1's
/// shapes (784 inputs, batch 64: the batches gathered in the background on two threads).
std::string train_w1_like(int threads, int epochs) {
  Eigen::setNbThreads(threads);
  Generator gen(5);
  dropnet::Sequential<float> model(784);
  model.add(dropnet::Dropout<float>(0.25));
  model.add(dropnet::Dense<float, dropnet::ReLU>(784, 120, gen));
  model.add(dropnet::Dense<float>(120, 10, gen));
  dropnet::Matrix<float> x(784, 1000);
  dropnet::Labels y(1000);
  for (Index i = 0; i < x.size(); ++i) x.data()[i] = gen.uniform(-1.0f, 1.0f);
  for (Index j = 0; j < y.size(); ++j) y(j) = static_cast<int>(gen.below(10));
  dropnet::Adam<float> adam(model.parameters(), dropnet::AdamOptions(1e-3));
  dropnet::FitOptions<float> options;
  options.epochs = epochs;
  options.batch_size = 64;  // 15 full batches and a last one of 40
  const dropnet::ValidationData<float, dropnet::Labels> valid{x.leftCols(300), y.head(300)};
  const dropnet::History h = dropnet::fit(model, dropnet::SoftmaxCrossEntropy<float>(), adam, x,
                                          y, gen, options, valid);
  std::string bytes;
  const auto append = [&](const void* p, std::size_t n) {
    bytes.append(static_cast<const char*>(p), n);
  };
  for (const auto& p : model.parameters()) append(p.value, sizeof(float) * std::size_t(p.size()));
  for (const auto* s : adam.state()) append(s->data(), sizeof(float) * std::size_t(s->size()));
  for (const auto& e : h.epochs) append(&e.val_loss, sizeof e.val_loss);
  Eigen::setNbThreads(1);
  return bytes;
}

/// Parameters of sizes that cut across the two threads' pieces, values and gradients random.
struct Tensors {
  std::vector<std::vector<float>> values, grads;
  explicit Tensors(Generator& gen) {
    for (Index n : {40000, 7, 20011, 3, 129}) {
      values.push_back(random_floats(n, gen));
      grads.push_back(random_floats(n, gen));
    }
  }
  dropnet::ParameterList<float> list() {
    dropnet::ParameterList<float> params;
    for (std::size_t i = 0; i < values.size(); ++i)
      params.push_back({"p" + std::to_string(i), values[i].data(), grads[i].data(),
                        Index(values[i].size()), 1, dropnet::ParameterRole::weight, -1});
    return params;
  }
};

}  // namespace

TEST_CASE("fit gathering the next batch in the background trains the bits of one thread") {
  const std::string one = train_w1_like(1, 2), two = train_w1_like(2, 2);
  REQUIRE(one.size() == two.size());
  CHECK(one == two);
}

TEST_CASE("optimizer steps over every parameter as one split loop: the bits of one thread") {
  const auto run = [](int threads, auto make, bool restricted) {
    Eigen::setNbThreads(threads);
    Generator gen(8);
    Tensors t(gen);
    auto optimizer = make(t.list());
    if (restricted) optimizer.restrict_step(5, 60013);  // cuts the first and third parameters
    for (int step = 0; step < 3; ++step) optimizer.step();
    Eigen::setNbThreads(1);
    return t.values;
  };
  const auto adam = [](dropnet::ParameterList<float> p) {
    return dropnet::Adam<float>(std::move(p), dropnet::AdamOptions(1e-2).weight_decay(0.1));
  };
  const auto sgd = [](dropnet::ParameterList<float> p) {
    return dropnet::SGD<float>(std::move(p), dropnet::SGDOptions(0.1).momentum(0.9));
  };
  const auto rmsprop = [](dropnet::ParameterList<float> p) {
    return dropnet::RMSprop<float>(std::move(p), dropnet::RMSpropOptions(1e-2).centered(true));
  };
  const auto adagrad = [](dropnet::ParameterList<float> p) {
    return dropnet::Adagrad<float>(std::move(p), dropnet::AdagradOptions(1e-2));
  };
  for (bool restricted : {false, true}) {
    INFO("restricted ", restricted);
    CHECK(run(1, adam, restricted) == run(2, adam, restricted));
    CHECK(run(1, sgd, restricted) == run(2, sgd, restricted));
    CHECK(run(1, rmsprop, restricted) == run(2, rmsprop, restricted));
    CHECK(run(1, adagrad, restricted) == run(2, adagrad, restricted));
  }
  // The restriction holds: elements outside [5, 60013) keep their values.
  Generator gen(8);
  const Tensors before(gen);
  const auto after = run(2, adam, true);
  CHECK(after[0][4] == before.values[0][4]);
  CHECK(after[0][5] != before.values[0][5]);
  CHECK(after[2][20010] == before.values[2][20010]);
  CHECK(after[4] == before.values[4]);
}
#endif
