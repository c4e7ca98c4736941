// Kernel benchmarks: each dropnet kernel against a plain Eigen expression of the same math, in
// the same binary and the same run.
//
// Every benchmark times the dropnet kernel and the plain Eigen one alternately, block by block,
// so both see the same machine load; the reported time is dropnet's and the counters are
//   eigen_ns  the plain Eigen expression's time per call
//   ratio     dropnet time / plain Eigen time (< 1: dropnet is faster)
// Before timing, each pair is checked to compute the same thing (same values, or for random
// masks the same keep rate); a mismatch fails the benchmark and the process exits non-zero, which
// is what CI's short run (--benchmark_min_time=0.01) checks.
//
// Shapes: features x batch as in the workloads: 120x64 (W1's first hidden layer, batch 64) and
// 512x128 (W3's, batch 128); Dense 784->120 at batch 64 and 512->256 at batch 128.

#include <benchmark/benchmark.h>

#include <unsupported/Eigen/SpecialFunctions>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <random>
#include <string>

#include <dropnet/dropnet.hpp>
#include <dropnet/layers/dropout.hpp>

namespace {

using dropnet::Generator;
using dropnet::Index;
using dropnet::Labels;
using dropnet::Mode;
using Mat = dropnet::Matrix<float>;
using Vec = dropnet::Vector<float>;
using clock_type = std::chrono::steady_clock;

bool g_failed = false;

void fail(benchmark::State& state, const std::string& message) {
  g_failed = true;
  state.SkipWithError(message.c_str());
}

/// Fails the benchmark unless the two results agree to a relative tolerance.
bool same(benchmark::State& state, const Mat& dropnet_result, const Mat& eigen_result,
          float tolerance = 1e-5f) {
  if (dropnet_result.rows() != eigen_result.rows() || dropnet_result.cols() != eigen_result.cols()) {
    fail(state, "dropnet and plain Eigen results differ in shape");
    return false;
  }
  const float scale = std::max(1.f, eigen_result.cwiseAbs().maxCoeff());
  const float diff = (dropnet_result - eigen_result).cwiseAbs().maxCoeff();
  if (!(diff <= tolerance * scale)) {
    fail(state, "dropnet and plain Eigen results differ by " + std::to_string(diff));
    return false;
  }
  return true;
}

Mat random_matrix(Index rows, Index cols, unsigned seed, float scale = 2.f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.f, scale);
  return Mat::NullaryExpr(rows, cols, [&] { return normal(rng); });
}

double seconds(clock_type::time_point a, clock_type::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

/// Times `dropnet_fn` and `eigen_fn` alternately (in blocks of calls long enough for the clock),
/// reports dropnet's time per call and the counters eigen_ns and ratio.
template <class F, class G>
void paired(benchmark::State& state, F&& dropnet_fn, G&& eigen_fn, double items_per_call) {
  dropnet_fn();  // sizes the buffers of both
  eigen_fn();
  const auto t0 = clock_type::now();
  dropnet_fn();
  const double one = std::max(1e-9, seconds(t0, clock_type::now()));
  const int reps = static_cast<int>(std::clamp(20e-6 / one, 1.0, 1000.0));  // blocks of >= 20 us
  double dropnet_total = 0, eigen_total = 0;
  bool eigen_first = false;
  for (auto _ : state) {
    double dropnet_time = 0, eigen_time = 0;
    for (int pass = 0; pass < 2; ++pass) {
      const bool run_eigen = (pass == 0) == eigen_first;
      const auto start = clock_type::now();
      if (run_eigen) {
        for (int r = 0; r < reps; ++r) eigen_fn();
        eigen_time = seconds(start, clock_type::now()) / reps;
      } else {
        for (int r = 0; r < reps; ++r) dropnet_fn();
        dropnet_time = seconds(start, clock_type::now()) / reps;
      }
      benchmark::ClobberMemory();
    }
    eigen_first = !eigen_first;
    state.SetIterationTime(dropnet_time);
    dropnet_total += dropnet_time;
    eigen_total += eigen_time;
  }
  const double n = static_cast<double>(state.iterations());
  state.counters["eigen_ns"] = eigen_total / n * 1e9;
  state.counters["ratio"] = dropnet_total / eigen_total;
  state.SetItemsProcessed(static_cast<std::int64_t>(n * items_per_call));
}

// ---------------------------------------------------------------------------------------------
// Activations: dropnet's functor (Activation::forward/backward) against what a user would write.

template <class Activation, class Forward, class Backward>
void activation_pair(benchmark::State& state, Activation act, Forward eigen_forward,
                     Backward eigen_backward, bool backward) {
  const Index rows = state.range(0), cols = state.range(1);
  const Mat z = random_matrix(rows, cols, 1);
  const Mat da = random_matrix(rows, cols, 2, 1.f);
  Mat a, a_ref, dz, dz_ref;
  act.forward(z, a);
  eigen_forward(z, a_ref);
  if (!same(state, a, a_ref, 1e-5f)) return;
  if (!backward) {
    paired(state, [&] { act.forward(z, a); benchmark::DoNotOptimize(a.data()); },
           [&] { eigen_forward(z, a_ref); benchmark::DoNotOptimize(a_ref.data()); },
           double(z.size()));
    return;
  }
  act.backward(z, a, da, dz);
  eigen_backward(z, a_ref, da, dz_ref);
  if (!same(state, dz, dz_ref, 1e-5f)) return;
  paired(state, [&] { act.backward(z, a, da, dz); benchmark::DoNotOptimize(dz.data()); },
         [&] { eigen_backward(z, a_ref, da, dz_ref); benchmark::DoNotOptimize(dz_ref.data()); },
         double(z.size()));
}

template <class Activation, class Forward, class Backward>
void register_activation(const std::string& name, Activation act, Forward f, Backward b) {
  for (const bool backward : {false, true}) {
    benchmark::RegisterBenchmark(
        ("activation/" + name + (backward ? "/backward" : "/forward")).c_str(),
        [=](benchmark::State& state) { activation_pair(state, act, f, b, backward); })
        ->ArgNames({"rows", "batch"})
        ->Args({120, 64})
        ->Args({512, 128})
        ->UseManualTime();
  }
}

// The plain Eigen expressions: one line each, as written without a library.
using A = Eigen::ArrayXXf;

void register_activations() {
  register_activation(
      "ReLU", dropnet::ReLU{}, [](const Mat& z, Mat& a) { a = z.cwiseMax(0.f); },
      [](const Mat& z, const Mat&, const Mat& da, Mat& dz) {
        dz = da.cwiseProduct((z.array() > 0.f).cast<float>().matrix());
      });
  register_activation(
      "LeakyReLU", dropnet::LeakyReLU{0.01},
      [](const Mat& z, Mat& a) { a = z.array().max(0.01f * z.array()).matrix(); },
      [](const Mat& z, const Mat&, const Mat& da, Mat& dz) {
        dz = (z.array() > 0.f).select(da.array(), 0.01f * da.array()).matrix();
      });
  register_activation(
      "ELU", dropnet::ELU{1.0},
      [](const Mat& z, Mat& a) {
        a = (z.array() > 0.f).select(z.array(), z.array().exp() - 1.f).matrix();
      },
      [](const Mat& z, const Mat&, const Mat& da, Mat& dz) {
        dz = (z.array() > 0.f).select(da.array(), da.array() * z.array().exp()).matrix();
      });
  register_activation(
      "SELU", dropnet::SELU{},
      [](const Mat& z, Mat& a) {
        const float l = 1.0507009873554805f, al = 1.6732632423543772f * l;
        a = (z.array() > 0.f).select(l * z.array(), al * (z.array().exp() - 1.f)).matrix();
      },
      [](const Mat& z, const Mat&, const Mat& da, Mat& dz) {
        const float l = 1.0507009873554805f, al = 1.6732632423543772f * l;
        dz = (da.array() * (z.array() > 0.f).select(A::Constant(z.rows(), z.cols(), l),
                                                    al * z.array().exp()))
                 .matrix();
      });
  register_activation(
      "Sigmoid", dropnet::Sigmoid{},
      [](const Mat& z, Mat& a) { a = (1.f + (-z.array()).exp()).inverse().matrix(); },
      [](const Mat&, const Mat& a, const Mat& da, Mat& dz) {
        dz = (da.array() * a.array() * (1.f - a.array())).matrix();
      });
  register_activation(
      "Tanh", dropnet::Tanh{}, [](const Mat& z, Mat& a) { a = z.array().tanh().matrix(); },
      [](const Mat&, const Mat& a, const Mat& da, Mat& dz) {
        dz = (da.array() * (1.f - a.array().square())).matrix();
      });
  register_activation(
      "Softplus", dropnet::Softplus{},
      [](const Mat& z, Mat& a) {
        a = (z.array().max(0.f) + (-z.array().abs()).exp().log1p()).matrix();
      },
      [](const Mat& z, const Mat&, const Mat& da, Mat& dz) {
        dz = (da.array() / (1.f + (-z.array()).exp())).matrix();
      });
  register_activation(
      "Swish", dropnet::Swish{},
      [](const Mat& z, Mat& a) { a = (z.array() / (1.f + (-z.array()).exp())).matrix(); },
      [](const Mat& z, const Mat&, const Mat& da, Mat& dz) {
        const A s = (1.f + (-z.array()).exp()).inverse();
        dz = (da.array() * (s + z.array() * s * (1.f - s))).matrix();
      });
  register_activation(
      "GELU", dropnet::GELU{},
      [](const Mat& z, Mat& a) {
        a = (0.5f * z.array() * (1.f + (z.array() * 0.70710678f).erf())).matrix();
      },
      [](const Mat& z, const Mat&, const Mat& da, Mat& dz) {
        dz = (da.array() * (0.5f * (1.f + (z.array() * 0.70710678f).erf()) +
                            z.array() * 0.39894228f * (-0.5f * z.array().square()).exp()))
                 .matrix();
      });
  register_activation(
      "GELUTanh", dropnet::GELUTanh{},
      [](const Mat& z, Mat& a) {
        const A x = z.array();
        a = (0.5f * x * (1.f + (0.7978845608f * (x + 0.044715f * x.cube())).tanh())).matrix();
      },
      [](const Mat& z, const Mat&, const Mat& da, Mat& dz) {
        const A x = z.array();
        const A t = (0.7978845608f * (x + 0.044715f * x.cube())).tanh();
        dz = (da.array() * (0.5f * (1.f + t) + 0.5f * x * (1.f - t.square()) * 0.7978845608f *
                                                   (1.f + 3.f * 0.044715f * x.square())))
                 .matrix();
      });
}

// ---------------------------------------------------------------------------------------------
// Dropout: mask generation alone, the layer's forward (mask + apply) and backward (apply).
// The plain version draws from std::mt19937 as plain_eigen_mlp.hpp does.

struct PlainMask {
  std::mt19937 rng{5};
  void fill(Mat& mask, Index rows, Index cols, float p) {
    std::uniform_real_distribution<float> uniform(0.f, 1.f);
    const float scale = 1.f / (1.f - p);
    mask = Mat::NullaryExpr(rows, cols, [&] { return uniform(rng) < p ? 0.f : scale; });
  }
};

bool keep_rate_ok(benchmark::State& state, const Mat& mask, double p) {
  const double kept = double((mask.array() != 0.f).count()) / double(mask.size());
  const double sd = std::sqrt(p * (1 - p) / double(mask.size()));
  if (std::abs(kept - (1 - p)) > 6 * sd + 1e-9) {
    fail(state, "keep rate " + std::to_string(kept) + ", expected " + std::to_string(1 - p));
    return false;
  }
  return true;
}

void mask_generation(benchmark::State& state) {
  const Index rows = state.range(0), cols = state.range(1);
  const double p = 0.4;
  Generator gen(3);
  const dropnet::KeepThreshold keep("bench", p);
  const float scale = float(1 / (1 - p));
  Mat mask(rows, cols), mask_ref;
  PlainMask plain;
  dropnet::draw_bernoulli(gen, keep, scale, 0.f, mask.data(), mask.size());
  plain.fill(mask_ref, rows, cols, float(p));
  if (!keep_rate_ok(state, mask, p) || !keep_rate_ok(state, mask_ref, p)) return;
  paired(state,
         [&] {
           dropnet::draw_bernoulli(gen, keep, scale, 0.f, mask.data(), mask.size());
           benchmark::DoNotOptimize(mask.data());
         },
         [&] {
           plain.fill(mask_ref, rows, cols, float(p));
           benchmark::DoNotOptimize(mask_ref.data());
         },
         double(mask.size()));
}

void dropout_layer(benchmark::State& state, bool backward) {
  const Index rows = state.range(0), cols = state.range(1);
  const double p = 0.4;
  const Mat x = random_matrix(rows, cols, 1);
  const Mat dy = random_matrix(rows, cols, 2, 1.f);
  Generator gen(3);
  dropnet::Dropout<float> layer(p);
  PlainMask plain;
  Mat mask_ref, y_ref, dx_ref;
  auto plain_forward = [&] {
    plain.fill(mask_ref, rows, cols, float(p));
    y_ref = x.cwiseProduct(mask_ref);
  };
  const Mat& y = layer.forward(x, Mode::train, &gen);
  plain_forward();
  if (!keep_rate_ok(state, layer.mask(), p) || !same(state, y, x.cwiseProduct(layer.mask())))
    return;
  if (!backward) {
    paired(state, [&] { benchmark::DoNotOptimize(layer.forward(x, Mode::train, &gen).data()); },
           [&] { plain_forward(); benchmark::DoNotOptimize(y_ref.data()); }, double(x.size()));
    return;
  }
  if (!same(state, layer.backward(dy, true), dy.cwiseProduct(layer.mask()))) return;
  paired(state, [&] { benchmark::DoNotOptimize(layer.backward(dy, true).data()); },
         [&] {
           dx_ref = dy.cwiseProduct(mask_ref);
           benchmark::DoNotOptimize(dx_ref.data());
         },
         double(x.size()));
}

// ---------------------------------------------------------------------------------------------
// BatchNorm (one statistic per row), train-mode forward and backward, eval-mode forward.

struct PlainBatchNorm {
  Vec gamma, beta, running_mean, running_var, inv_std, dgamma, dbeta;
  Mat xhat, y, dx;
  float eps = 1e-5f;
  explicit PlainBatchNorm(Index n)
      : gamma(Vec::Ones(n)), beta(Vec::Zero(n)), running_mean(Vec::Zero(n)),
        running_var(Vec::Ones(n)) {}

  void forward_train(const Mat& x) {
    const float m = float(x.cols());
    const Vec mean = x.rowwise().mean();
    xhat = x.colwise() - mean;
    const Vec var = xhat.array().square().rowwise().sum() / m;
    inv_std = (var.array() + eps).rsqrt();
    xhat = xhat.array().colwise() * inv_std.array();
    y = (xhat.array().colwise() * gamma.array()).colwise() + beta.array();
    running_mean = 0.9f * running_mean + 0.1f * mean;
    running_var = 0.9f * running_var + 0.1f * var * (m / (m - 1.f));
  }
  void forward_eval(const Mat& x) {
    const Vec scale = gamma.cwiseProduct((running_var.array() + eps).rsqrt().matrix());
    y = ((x.colwise() - running_mean).array().colwise() * scale.array()).colwise() +
        beta.array();
  }
  void backward(const Mat& dy) {
    const float m = float(dy.cols());
    dbeta = dy.rowwise().sum();
    dgamma = dy.cwiseProduct(xhat).rowwise().sum();
    const Vec k = gamma.cwiseProduct(inv_std) / m;
    dx = ((m * dy.array() - xhat.array().colwise() * dgamma.array()).colwise() - dbeta.array())
             .colwise() *
         k.array();
  }
};

enum class BnPass { train_forward, backward, eval_forward };

void batch_norm(benchmark::State& state, BnPass pass) {
  const Index rows = state.range(0), cols = state.range(1);
  const Mat x = random_matrix(rows, cols, 1);
  const Mat dy = random_matrix(rows, cols, 2, 1.f);
  dropnet::BatchNorm<float> layer(rows);
  PlainBatchNorm plain(rows);
  if (!same(state, layer.forward(x, Mode::train, nullptr), (plain.forward_train(x), plain.y), 1e-4f))
    return;
  if (pass == BnPass::train_forward) {
    paired(state, [&] { benchmark::DoNotOptimize(layer.forward(x, Mode::train, nullptr).data()); },
           [&] { plain.forward_train(x); benchmark::DoNotOptimize(plain.y.data()); },
           double(x.size()));
  } else if (pass == BnPass::backward) {
    if (!same(state, layer.backward(dy, true), (plain.backward(dy), plain.dx), 1e-4f)) return;
    paired(state, [&] { benchmark::DoNotOptimize(layer.backward(dy, true).data()); },
           [&] { plain.backward(dy); benchmark::DoNotOptimize(plain.dx.data()); },
           double(x.size()));
  } else {
    if (!same(state, layer.forward(x, Mode::eval, nullptr), (plain.forward_eval(x), plain.y), 1e-4f))
      return;
    paired(state, [&] { benchmark::DoNotOptimize(layer.forward(x, Mode::eval, nullptr).data()); },
           [&] { plain.forward_eval(x); benchmark::DoNotOptimize(plain.y.data()); },
           double(x.size()));
  }
}

// ---------------------------------------------------------------------------------------------
// Softmax cross-entropy on 10 x batch logits: loss and gradient (training) or loss only (eval).

float plain_softmax_ce(const Mat& logits, const Labels& y, Mat& probs, Mat* grad) {
  const Index m = logits.cols();
  probs = (logits.rowwise() - logits.colwise().maxCoeff()).array().exp();
  probs.array().rowwise() /= probs.colwise().sum().array();
  float total = 0.f;
  for (Index j = 0; j < m; ++j) total -= std::log(probs(y(j), j));
  if (grad) {
    *grad = probs;
    for (Index j = 0; j < m; ++j) (*grad)(y(j), j) -= 1.f;
    *grad /= float(m);
  }
  return total / float(m);
}

void softmax_ce(benchmark::State& state, bool with_grad) {
  const Index classes = state.range(0), cols = state.range(1);
  const Mat logits = random_matrix(classes, cols, 1, 3.f);
  Labels y(cols);
  for (Index j = 0; j < cols; ++j) y(j) = static_cast<std::int32_t>((j * 7) % classes);
  const dropnet::SoftmaxCrossEntropy<float> loss;
  Mat grad, grad_ref, probs;
  const float l = loss.compute(logits, y, with_grad ? &grad : nullptr);
  const float l_ref = plain_softmax_ce(logits, y, probs, with_grad ? &grad_ref : nullptr);
  if (std::abs(l - l_ref) > 1e-4f * std::max(1.f, std::abs(l_ref))) {
    fail(state, "losses differ: " + std::to_string(l) + " vs " + std::to_string(l_ref));
    return;
  }
  if (with_grad && !same(state, grad, grad_ref)) return;
  float sink = 0;
  paired(state, [&] { sink += loss.compute(logits, y, with_grad ? &grad : nullptr); },
         [&] { sink += plain_softmax_ce(logits, y, probs, with_grad ? &grad_ref : nullptr); },
         double(cols));
  benchmark::DoNotOptimize(sink);
}

// ---------------------------------------------------------------------------------------------
// Dense<float, ReLU>: forward (GEMM + bias + ReLU) and backward (ReLU', dW, db, dX).

void dense(benchmark::State& state, bool backward) {
  const Index in = state.range(0), out = state.range(1), cols = state.range(2);
  Eigen::setNbThreads(static_cast<int>(state.range(3)));
  Generator gen(1);
  dropnet::Dense<float, dropnet::ReLU> layer(in, out, gen);
  layer.bias() = random_matrix(out, 1, 9, 0.1f);
  const Mat W = layer.weight();
  const Vec b = layer.bias();
  const Mat x = random_matrix(in, cols, 2, 1.f);
  const Mat dy = random_matrix(out, cols, 3, 1.f);
  Mat z, a, dz, dW, dx;
  Vec db;
  auto plain_forward = [&] {
    z.noalias() = W * x;
    z.colwise() += b;
    a = z.cwiseMax(0.f);
  };
  auto plain_backward = [&] {
    dz = (z.array() > 0.f).select(dy, 0.f);
    dW.noalias() = dz * x.transpose();
    db = dz.rowwise().sum();
    dx.noalias() = W.transpose() * dz;
  };
  plain_forward();
  if (!same(state, layer.forward(x, Mode::train, nullptr), a, 1e-4f)) return;
  if (!backward) {
    paired(state, [&] { benchmark::DoNotOptimize(layer.forward(x, Mode::train, nullptr).data()); },
           [&] { plain_forward(); benchmark::DoNotOptimize(a.data()); },
           2.0 * double(in) * double(out) * double(cols));
  } else {
    plain_backward();
    if (!same(state, layer.backward(dy, true), dx, 1e-4f) ||
        !same(state, layer.weight_grad(), dW, 1e-4f))
      return;
    paired(state, [&] { benchmark::DoNotOptimize(layer.backward(dy, true).data()); },
           [&] { plain_backward(); benchmark::DoNotOptimize(dx.data()); },
           4.0 * double(in) * double(out) * double(cols));
  }
  Eigen::setNbThreads(1);
}

// ---------------------------------------------------------------------------------------------
// Adam step over W1's parameters (784-120-60-10: 101,770 values).

void adam_step(benchmark::State& state) {
  Generator gen(1);
  dropnet::Sequential<float> model(784);
  model.add(dropnet::Dense<float, dropnet::ReLU>(784, 120, gen));
  model.add(dropnet::Dense<float, dropnet::ReLU>(120, 60, gen));
  model.add(dropnet::Dense<float>(60, 10, gen));
  auto params = model.parameters();
  Index total = 0;
  for (auto& p : params) {
    p.flat_grad() = random_matrix(p.size(), 1, unsigned(total + 1), 0.01f);
    total += p.size();
  }
  dropnet::Adam<float> adam(params, dropnet::AdamOptions(1e-3));
  // plain copy of the same parameters, with its own moments
  std::vector<Vec> value, grad, m, v;
  for (auto& p : params) {
    value.push_back(p.flat_value());
    grad.push_back(p.flat_grad());
    m.push_back(Vec::Zero(p.size()));
    v.push_back(Vec::Zero(p.size()));
  }
  long t = 0;
  auto plain_step = [&] {
    ++t;
    const float b1 = 0.9f, b2 = 0.999f, eps = 1e-8f, lr = 1e-3f;
    const float step = lr / (1.f - std::pow(b1, float(t)));
    const float bc2 = std::sqrt(1.f - std::pow(b2, float(t)));
    for (std::size_t i = 0; i < value.size(); ++i) {
      m[i] = b1 * m[i] + (1.f - b1) * grad[i];
      v[i] = b2 * v[i] + (1.f - b2) * grad[i].cwiseProduct(grad[i]);
      value[i].array() -= step * m[i].array() / (v[i].array().sqrt() / bc2 + eps);
    }
  };
  adam.step();
  plain_step();
  for (std::size_t i = 0; i < value.size(); ++i)
    if (!same(state, params[i].flat_value(), value[i], 1e-5f)) return;
  paired(state, [&] { adam.step(); }, [&] { plain_step(); }, double(total));
}

// ---------------------------------------------------------------------------------------------
// The machine's fp32 FMA peak on one core: the ceiling every GFLOP/s figure is measured against.
// Twelve independent FMA chains on whole SIMD registers (more than latency x pipes on current
// x86 cores), no memory traffic.

void fma_peak(benchmark::State& state) {
  using Packet = Eigen::internal::packet_traits<float>::type;
  constexpr int chains = 12;
  constexpr long steps = 1 << 20;
  constexpr int lanes = Eigen::internal::packet_traits<float>::size;
  Packet acc[chains];
  for (int c = 0; c < chains; ++c) acc[c] = Eigen::internal::pset1<Packet>(float(c));
  const Packet a = Eigen::internal::pset1<Packet>(0.999999f);
  const Packet b = Eigen::internal::pset1<Packet>(1e-7f);
  for (auto _ : state) {
    for (long i = 0; i < steps; ++i)
      for (int c = 0; c < chains; ++c) acc[c] = Eigen::internal::pmadd(acc[c], a, b);
    float sum = 0;
    for (int c = 0; c < chains; ++c) sum += Eigen::internal::predux(acc[c]);
    benchmark::DoNotOptimize(sum);
  }
  const double flops = 2.0 * lanes * chains * steps * double(state.iterations());
  state.counters["gflops"] = benchmark::Counter(flops / 1e9, benchmark::Counter::kIsRate);
  state.counters["lanes"] = lanes;
}

void register_all() {
  register_activations();
  for (const auto& [rows, cols] : {std::pair<Index, Index>{784, 64}, {512, 128}}) {
    benchmark::RegisterBenchmark("dropout/mask_generation", mask_generation)
        ->ArgNames({"rows", "batch"})->Args({rows, cols})->UseManualTime();
    benchmark::RegisterBenchmark("dropout/forward", dropout_layer, false)
        ->ArgNames({"rows", "batch"})->Args({rows, cols})->UseManualTime();
    benchmark::RegisterBenchmark("dropout/backward_apply", dropout_layer, true)
        ->ArgNames({"rows", "batch"})->Args({rows, cols})->UseManualTime();
  }
  for (const auto& [name, pass] : {std::pair<const char*, BnPass>{"batch_norm/train_forward",
                                                                  BnPass::train_forward},
                                   {"batch_norm/backward", BnPass::backward},
                                   {"batch_norm/eval_forward", BnPass::eval_forward}}) {
    benchmark::RegisterBenchmark(name, batch_norm, pass)
        ->ArgNames({"rows", "batch"})->Args({512, 128})->Args({256, 128})->UseManualTime();
  }
  benchmark::RegisterBenchmark("softmax_ce/loss_and_grad", softmax_ce, true)
      ->ArgNames({"classes", "batch"})->Args({10, 64})->Args({10, 128})->UseManualTime();
  benchmark::RegisterBenchmark("softmax_ce/loss_only", softmax_ce, false)
      ->ArgNames({"classes", "batch"})->Args({10, 1000})->UseManualTime();
  for (const bool backward : {false, true}) {
    benchmark::RegisterBenchmark(backward ? "dense_relu/backward" : "dense_relu/forward", dense,
                                 backward)
        ->ArgNames({"in", "out", "batch", "threads"})
        ->Args({784, 120, 64, 1})
        ->Args({784, 120, 64, 2})
        ->Args({120, 60, 64, 1})
        ->Args({512, 256, 128, 1})
        ->Args({512, 256, 128, 2})
        ->UseManualTime();
  }
  benchmark::RegisterBenchmark("adam/step_W1", adam_step)->UseManualTime();
  benchmark::RegisterBenchmark("machine/fma_peak_fp32", fma_peak);
}

}  // namespace

int main(int argc, char** argv) {
  Eigen::setNbThreads(1);
  register_all();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return g_failed ? 1 : 0;
}
