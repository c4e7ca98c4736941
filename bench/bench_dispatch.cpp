// Gemm<float> at each SIMD level this machine supports (simd/dispatch.hpp), on every product of
// W1 (784-120-60-10, batch 64), W2's input dropout mask (Philox), and the elementwise kernels
// (simd/elementwise.hpp: ReLU, bias, dropout product, Adam, Adagrad, BatchNorm, exp, sigmoid,
// tanh, ELU, GELU, GELUTanh, Softplus) on W1's and W3's shapes, in one binary built with the compiler's default flags
// (x86-64 baseline: what a user of find_package or pkg-config gets). The levels run
// alternately, block by block in rotating order, so they share the machine's load, and each is
// summed up by its median block: only the ratios between levels, measured in the same run, mean
// anything on a busy machine.
//
// Counters:  <level>_gflops          2 m n k / median time per call at that level
//            <level>_gvalues_per_s   mask values per second (10^9)
//            <level>_speedup         baseline's median time / that level's (> 1: faster)
//            <level>_vs_eigen        the replaced Eigen expression's median time / that level's
//                                    (exp, sigmoid, tanh, GELU, GELUTanh, Softplus)
// The benchmark's own time is the highest level's. Before timing, every level's C is checked
// against the baseline's (relative 1e-4) and every mask must equal the baseline's bit for bit;
// a mismatch fails the benchmark and the process exits non-zero.

#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <dropnet/activations/swish.hpp>
#include <dropnet/core/gemm.hpp>
#include <dropnet/core/generator.hpp>
#include <dropnet/layers/bernoulli_mask.hpp>
#include <dropnet/simd/dispatch.hpp>
#include <dropnet/simd/elementwise.hpp>
#include <string>
#include <unsupported/Eigen/SpecialFunctions>  // the Eigen erf GELU used before
#include <vector>

namespace {

using dropnet::Index;
using dropnet::Op;
using dropnet::SimdLevel;
using Mat = dropnet::Matrix<float>;

bool g_failed = false;

/// One product of W1: C (m x n) = op(A) op(B), op(A) m x k.
struct Product {
  const char* name;
  Index m, n, k;
  Op op_a, op_b;
};

/// Forward W X, weight gradients dZ X^T and input gradients W^T dZ of W1 at batch 64 (the first
/// layer's input gradient is never computed).
const std::vector<Product> w1_products = {
    {"fwd1", 120, 64, 784, Op::none, Op::none},    {"fwd2", 60, 64, 120, Op::none, Op::none},
    {"fwd3", 10, 64, 60, Op::none, Op::none},      {"dW1", 120, 784, 64, Op::none, Op::transpose},
    {"dW2", 60, 120, 64, Op::none, Op::transpose}, {"dW3", 10, 60, 64, Op::none, Op::transpose},
    {"dX2", 120, 64, 60, Op::transpose, Op::none}, {"dX3", 60, 64, 10, Op::transpose, Op::none}};

/// The levels this CPU supports, baseline first.
std::vector<SimdLevel> supported_levels() {
  std::vector<SimdLevel> levels;
  for (SimdLevel l : {SimdLevel::baseline, SimdLevel::avx2, SimdLevel::avx512})
    if (l <= dropnet::cpu_simd_level()) levels.push_back(l);
  return levels;
}

/// The median of `times` (reordered).
double median(std::vector<double>& times) {
  const auto middle = times.begin() + static_cast<std::ptrdiff_t>(times.size() / 2);
  std::nth_element(times.begin(), middle, times.end());
  return *middle;
}

/// Times run(i) with set_simd_level(levels[i]) for each supported level, alternately in blocks
/// of at least 100 us in rotating order, and reports each level's throughput (`work` units per
/// call, e.g. flops) and its speedup over the baseline, from the median block: on a shared
/// machine a preempted block costs a whole time slice, which swamps a mean. With `with_eigen`,
/// run(levels.size()) is the plain Eigen expression the kernel replaced, raced in the same
/// rotation, and each level's <level>_vs_eigen is Eigen's median time over the level's. The
/// benchmark's time is the highest level's.
template <class Run>
void race_levels(benchmark::State& state, Run&& run, double work, const char* unit,
                 bool with_eigen = false) {
  using clock = std::chrono::steady_clock;
  const std::vector<SimdLevel> levels = supported_levels();
  const std::size_t contenders = levels.size() + (with_eigen ? 1 : 0);
  const auto timed = [&](std::size_t i, int reps) {
    dropnet::set_simd_level(levels[std::min(i, levels.size() - 1)]);
    const auto start = clock::now();
    for (int r = 0; r < reps; ++r) run(i);
    return std::chrono::duration<double>(clock::now() - start).count() / reps;
  };
  const int reps = static_cast<int>(std::clamp(100e-6 / std::max(timed(0, 1), 1e-9), 1.0, 1e4));
  std::vector<std::vector<double>> times(contenders);
  std::size_t first = 0;
  for (auto _ : state) {
    for (std::size_t j = 0; j < contenders; ++j) {
      const std::size_t i = (first + j) % contenders;
      times[i].push_back(timed(i, reps));
      if (i + 1 == levels.size()) state.SetIterationTime(times[i].back());
      benchmark::ClobberMemory();
    }
    first = (first + 1) % contenders;
  }
  const double baseline = median(times[0]);
  const double eigen = with_eigen ? median(times.back()) : 0.0;
  if (with_eigen) state.counters[std::string("eigen_") + unit] = work / eigen * 1e-9;
  for (std::size_t i = 0; i < levels.size(); ++i) {
    const std::string name = dropnet::simd_level_name(levels[i]);
    const double seconds = median(times[i]);
    state.counters[name + "_" + unit] = work / seconds * 1e-9;
    if (i > 0) state.counters[name + "_speedup"] = baseline / seconds;
    if (with_eigen) state.counters[name + "_vs_eigen"] = eigen / seconds;
  }
  dropnet::set_simd_level(dropnet::cpu_simd_level());
}

/// One product of W1 at every level, each with its own Gemm (its own buffers); every level's C
/// is checked against the baseline's first.
template <Op OpA, Op OpB>
void bench_product(benchmark::State& state, Product p) {
  dropnet::Generator gen(5);
  const auto random = [&](Index rows, Index cols) {
    return Mat(Mat::NullaryExpr(rows, cols, [&] { return gen.normal<float>(); }));
  };
  const Mat a = OpA == Op::none ? random(p.m, p.k) : random(p.k, p.m);
  const Mat b = OpB == Op::none ? random(p.k, p.n) : random(p.n, p.k);
  const std::vector<SimdLevel> levels = supported_levels();
  std::vector<dropnet::Gemm<float>> gemms(levels.size());
  std::vector<Mat> c(levels.size());
  const auto run = [&](std::size_t i) { gemms[i].template multiply<OpA, OpB>(a, b, c[i]); };
  for (std::size_t i = 0; i < levels.size(); ++i) {
    dropnet::set_simd_level(levels[i]);
    run(i);
    const float scale = std::max(1.f, c[0].cwiseAbs().maxCoeff());
    if ((c[i] - c[0]).cwiseAbs().maxCoeff() > 1e-4f * scale) {
      g_failed = true;
      state.SkipWithError((std::string(dropnet::simd_level_name(levels[i])) + " differs").c_str());
      return;
    }
  }
  race_levels(state, run, 2.0 * double(p.m) * double(p.n) * double(p.k), "gflops");
}

/// W2's input dropout mask (784 x 64 floats, keep 0.75) at every level; the masks must match.
void bench_mask(benchmark::State& state) {
  constexpr Index n = 784 * 64;
  const dropnet::Generator gen(3);
  const dropnet::KeepThreshold keep("bench", 0.25);
  const std::vector<SimdLevel> levels = supported_levels();
  std::vector<std::vector<float>> masks(levels.size(), std::vector<float>(n));
  const auto run = [&](std::size_t i) {
    dropnet::fill_bernoulli(gen, 0, keep, 1.f / 0.75f, 0.f, masks[i].data(), n);
  };
  for (std::size_t i = 0; i < levels.size(); ++i) {
    dropnet::set_simd_level(levels[i]);
    run(i);
    if (masks[i] != masks[0]) {
      g_failed = true;
      state.SkipWithError((std::string(dropnet::simd_level_name(levels[i])) + " differs").c_str());
      return;
    }
  }
  race_levels(state, run, double(n), "gvalues_per_s");
}

/// An elementwise kernel (simd/elementwise.hpp) over n floats at every level, each level on
/// its own copy of the inputs: `kernel(buffers)` updates buffers in place (buffers[0] is the
/// output). Every level's output must equal the baseline's within `tolerance` (relative; 0:
/// bit for bit) before timing. `eigen`, when not null, computes the same with the Eigen
/// expression the kernel replaced, on one more copy: it is checked within `tolerance` too, and
/// raced with the levels.
template <class Kernel>
void bench_elementwise(benchmark::State& state, Index n, std::size_t arrays, float tolerance,
                       Kernel kernel, void (*eigen)(float*, Index) = nullptr) {
  dropnet::Generator gen(7);
  std::vector<float> init(static_cast<std::size_t>(n) * arrays);
  for (float& x : init) x = gen.normal<float>();
  for (std::size_t i = static_cast<std::size_t>(n) * 3; i < init.size(); ++i)
    init[i] = init[i] * init[i];  // a 4th or 5th array is a second moment: >= 0
  const std::vector<SimdLevel> levels = supported_levels();
  std::vector<std::vector<float>> buffers(levels.size() + 1, init);
  const auto run = [&](std::size_t i) {
    if (i < levels.size())
      kernel(buffers[i].data(), n);
    else
      eigen(buffers[i].data(), n);
  };
  for (std::size_t i = 0; i < levels.size() + (eigen != nullptr ? 1 : 0); ++i) {
    dropnet::set_simd_level(levels[std::min(i, levels.size() - 1)]);
    run(i);
    for (Index k = 0; k < n; ++k) {
      const float a = buffers[i][static_cast<std::size_t>(k)];
      const float b = buffers[0][static_cast<std::size_t>(k)];
      if (!(std::abs(a - b) <= tolerance * std::max(1.f, std::abs(b)))) {
        g_failed = true;
        state.SkipWithError(
            (std::string(i < levels.size() ? dropnet::simd_level_name(levels[i]) : "eigen") +
             " differs")
                .c_str());
        return;
      }
    }
  }
  race_levels(state, run, double(n), "gvalues_per_s", eigen != nullptr);
}

/// n floats at p as an Eigen array, for the Eigen expressions the kernels replaced.
Eigen::Map<Eigen::ArrayXf> array(float* p, Index n) { return {p, n}; }

/// The elementwise kernels on W1's and W3's shapes: ReLU forward and backward on the first
/// hidden layer (120 x 64), Dense's bias on it, W2's input dropout product (784 x 64), Adam's and
/// Adagrad's updates of all of W1's 102,070 parameters, and the kernels listed below.
void register_elementwise() {
  using namespace dropnet::simd;
  const auto add = [](const char* name, Index n, std::size_t arrays, float tolerance, auto kernel,
                      void (*eigen)(float*, Index) = nullptr) {
    benchmark::RegisterBenchmark(name, [=](benchmark::State& state) {
      bench_elementwise(state, n, arrays, tolerance, kernel, eigen);
    })->UseManualTime();
  };
  add("dispatch/elementwise/relu_forward/120x64", 120 * 64, 2, 0.f,
      [](float* b, Index n) { max_scaled(b + n, b, n, 0.f); });
  add("dispatch/elementwise/relu_backward/120x64", 120 * 64, 3, 0.f,
      [](float* b, Index n) { scale_non_positive(b + n, b + 2 * n, b, n, 0.f); });
  add("dispatch/elementwise/bias/120x64", 120 * 64, 2, 0.f,
      [](float* b, Index n) { add_to_columns(b, Index(120), n / 120, b + n); });
  add("dispatch/elementwise/dropout_product/784x64", 784 * 64, 2, 0.f,
      [](float* b, Index n) { multiply(b + n, b + n, b, n); });
  add("dispatch/elementwise/adam/W1", 102070, 4, 1e-5f, [](float* b, Index n) {
    AdamConstants<float> c{};
    c.step_size = 1e-3f, c.inv_bc2_sqrt = 10.f, c.beta1 = 0.9f, c.beta2 = 0.999f;
    c.one_minus_beta1 = 0.1f, c.one_minus_beta2 = 1e-3f, c.eps = 1e-8f;
    adam_update(b, b + n, b + 2 * n, b + 3 * n, static_cast<float*>(nullptr), n, c);
  });
  add("dispatch/elementwise/adagrad/W1", 102070, 4, 1e-5f, [](float* b, Index n) {
    AdagradConstants<float> c{};
    c.lr = 1e-2f, c.eps = 1e-10f;
    adagrad_update(b, b + n, b + 3 * n, n, c);
  });
  // W3's first BatchNorm (512 features, batch 128): the statistics' sums, the normalization
  // (xhat and y) and the input gradient; per-row vectors sit at the start of the last array.
  constexpr Index bn_rows = 512;
  add("dispatch/elementwise/batch_norm_sums/512x128", bn_rows * 128, 3, 1e-4f,
      [](float* b, Index n) {
        sum_columns(b + n, b + 2 * n, bn_rows, n / bn_rows, b, b + bn_rows);
      });
  add("dispatch/elementwise/batch_norm_forward/512x128", bn_rows * 128, 4, 1e-5f,
      [](float* b, Index n) {
        const float* row = b + 3 * n;
        normalize_columns(b + n, row, row + bn_rows, row + 2 * bn_rows, row + 3 * bn_rows, bn_rows,
                          n / bn_rows, b + 2 * n, b);
      });
  add("dispatch/elementwise/batch_norm_backward/512x128", bn_rows * 128, 4, 1e-5f,
      [](float* b, Index n) {
        const float* row = b + 3 * n;
        batch_norm_input_gradient(b + n, b + 2 * n, row, row + bn_rows, row + 2 * bn_rows, bn_rows,
                                  n / bn_rows, b);
      });
  // The softmax cross-entropy's exponentials on W1's logits (10 x 64), and the exp-based
  // activations on W1's first hidden layer.
  add("dispatch/elementwise/exp/10x64", 10 * 64, 2, 1e-6f,
      [](float* b, Index n) { exponential(b + n, b, n); },
      [](float* b, Index n) { array(b, n) = array(b + n, n).exp(); });
  add("dispatch/elementwise/exp/120x64", 120 * 64, 2, 1e-6f,
      [](float* b, Index n) { exponential(b + n, b, n); },
      [](float* b, Index n) { array(b, n) = array(b + n, n).exp(); });
  add("dispatch/elementwise/sigmoid/120x64", 120 * 64, 2, 1e-6f,
      [](float* b, Index n) { logistic(b + n, static_cast<const float*>(nullptr), b, n); },
      [](float* b, Index n) { array(b, n) = array(b + n, n).logistic(); });
  add("dispatch/elementwise/tanh/120x64", 120 * 64, 2, 1e-6f,
      [](float* b, Index n) { hyperbolic_tangent(b + n, b, n); },
      [](float* b, Index n) { array(b, n) = array(b + n, n).tanh(); });
  add("dispatch/elementwise/elu_forward/120x64", 120 * 64, 2, 1e-6f,
      [](float* b, Index n) { exponential_branch(b + n, b + n, b, n, 1.f, 1.f, true); });
  // The activations that ran Eigen's packets before (the Eigen expression each replaced):
  // GELU (erf) forward and backward, GELUTanh forward, Softplus forward and backward.
  add("dispatch/elementwise/gelu_forward/120x64", 120 * 64, 2, 1e-6f,
      [](float* b, Index n) { gaussian_error_linear(b + n, nullptr, b, n); },
      [](float* b, Index n) {
        const auto x = array(b + n, n);
        array(b, n) = 0.5f * x * (1.f + (x * 0.70710678118654752440f).erf());
      });
  add("dispatch/elementwise/gelu_backward/120x64", 120 * 64, 3, 1e-6f,
      [](float* b, Index n) { gaussian_error_linear(b + n, b + 2 * n, b, n); },
      [](float* b, Index n) {
        const auto x = array(b + n, n);
        const auto cdf = 0.5f * (1.f + (x * 0.70710678118654752440f).erf());
        const auto pdf = 0.39894228040143267794f * (-0.5f * x.square()).exp();
        array(b, n) = array(b + 2 * n, n) * (cdf + x * pdf);
      });
  add("dispatch/elementwise/gelu_tanh_forward/120x64", 120 * 64, 2, 1e-6f,
      [](float* b, Index n) {
        gated_linear(b + n, b, n, float(2 * dropnet::GELUTanh::k),
                     float(2 * dropnet::GELUTanh::k * dropnet::GELUTanh::c));
      },
      [](float* b, Index n) {
        const auto x = array(b + n, n);
        const float k = float(dropnet::GELUTanh::k), c = float(dropnet::GELUTanh::c);
        array(b, n) = 0.5f * x * (1.f + (k * (x + c * x.cube())).tanh());
      });
  add("dispatch/elementwise/softplus_forward/120x64", 120 * 64, 2, 1e-6f,
      [](float* b, Index n) { softplus(b + n, b, n); },
      [](float* b, Index n) {
        array(b, n) = array(b + n, n).max(0.f) + (-array(b + n, n).abs()).exp().log1p();
      });
  add("dispatch/elementwise/softplus_backward/120x64", 120 * 64, 3, 1e-6f,
      [](float* b, Index n) { logistic(b + n, b + 2 * n, b, n); },
      [](float* b, Index n) { array(b, n) = array(b + 2 * n, n) * array(b + n, n).logistic(); });
}

void register_w1() {
  for (const Product& p : w1_products) {
    const std::string name = std::string("dispatch/float/W1/") + p.name + "/" +
                             std::to_string(p.m) + "x" + std::to_string(p.n) + "x" +
                             std::to_string(p.k);
    const int ops = (p.op_a == Op::transpose ? 2 : 0) + (p.op_b == Op::transpose ? 1 : 0);
    const auto fn = ops == 0   ? &bench_product<Op::none, Op::none>
                    : ops == 1 ? &bench_product<Op::none, Op::transpose>
                    : ops == 2 ? &bench_product<Op::transpose, Op::none>
                               : &bench_product<Op::transpose, Op::transpose>;
    benchmark::RegisterBenchmark(name.c_str(), fn, p)->UseManualTime();
  }
  benchmark::RegisterBenchmark("dispatch/mask/W2/input/784x64", bench_mask)->UseManualTime();
}

}  // namespace

int main(int argc, char** argv) {
  Eigen::setNbThreads(1);
  std::printf("simd: cpu %s, selected %s, translation unit compiled %s\n",
              dropnet::simd_level_name(dropnet::cpu_simd_level()),
              dropnet::simd_level_name(dropnet::simd_level()),
#if defined(__AVX512F__) || defined(__AVX2__)
              "with AVX flags (-march)"
#else
              "for the x86-64 baseline (default flags)"
#endif
  );
  register_w1();
  register_elementwise();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return g_failed ? 1 : 0;
}
