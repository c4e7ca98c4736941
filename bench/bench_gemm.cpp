// GEMM benchmarks: dropnet's Gemm<T> against Eigen's `c.noalias() = op(a) * op(b)` (and, when
// built with -DDROPNET_USE_BLAS=ON, against cblas_?gemm and the packed AVX-512 kernel called
// directly, since Gemm itself then calls the BLAS) on every product of the workloads' dense
// layers, in the same binary and the same run.
//
// The contenders run alternately, block by block, in a rotating order, so all see the same
// machine load. The reported time is Gemm's; the counters are
//   gflops, eigen_gflops, blas_gflops, packed_gflops   2 m n k / time per call
//   ratio        Gemm time / Eigen time (< 1: dropnet is faster)
//   blas_ratio   Gemm time / cblas time (BLAS builds)
// Before timing, every contender's C is checked against Eigen's (relative 1e-4 in float); a
// mismatch fails the benchmark and the process exits non-zero, which CI's short run
// (--benchmark_min_time=0.01) checks. Thread counts: `threads` sets Eigen::setNbThreads for
// Gemm and Eigen; OpenBLAS follows OPENBLAS_NUM_THREADS.

#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include <dropnet/core/gemm.hpp>

#if defined(DROPNET_USE_BLAS)
#include <cblas.h>
#endif

namespace {

using dropnet::Index;
using dropnet::Op;
using clock_type = std::chrono::steady_clock;

bool g_failed = false;

template <class T>
using Mat = dropnet::Matrix<T>;

template <class T>
Mat<T> random_matrix(Index rows, Index cols, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<T> normal(T(0), T(1));
  return Mat<T>::NullaryExpr(rows, cols, [&] { return normal(rng); });
}

/// One product of a workload: C (m x n) = op(A) op(B), op(A) m x k.
struct Shape {
  const char* name;  ///< workload and pass, e.g. "W1/fwd1"
  Index m, n, k;
  Op op_a, op_b;
};

const std::vector<Shape>& shapes() {
  constexpr Op N = Op::none, T = Op::transpose;
  static const std::vector<Shape> all = {
      {"W1/fwd1", 120, 64, 784, N, N},   {"W1/fwd2", 60, 64, 120, N, N},
      {"W1/fwd3", 10, 64, 60, N, N},     {"W1/dW1", 120, 784, 64, N, T},
      {"W1/dW2", 60, 120, 64, N, T},     {"W1/dW3", 10, 60, 64, N, T},
      {"W1/dX2", 120, 64, 60, T, N},     {"W1/dX3", 60, 64, 10, T, N},
      {"W3/fwd1", 512, 128, 784, N, N},  {"W3/fwd2", 256, 128, 512, N, N},
      {"W3/fwd3", 10, 128, 256, N, N},   {"W3/dW1", 512, 784, 128, N, T},
      {"W3/dW2", 256, 512, 128, N, T},   {"W3/dW3", 10, 256, 128, N, T},
      {"W3/dX2", 512, 128, 256, T, N},   {"W3/dX3", 256, 128, 10, T, N},
      {"W4/fwd1", 120, 1000, 784, N, N}, {"W4/fwd2", 60, 1000, 120, N, N},
      {"W4/fwd3", 10, 1000, 60, N, N}};
  return all;
}

template <Op OpA, Op OpB, class T>
void eigen_product(const Mat<T>& a, const Mat<T>& b, Mat<T>& c) {
  if constexpr (OpA == Op::none && OpB == Op::none) c.noalias() = a * b;
  if constexpr (OpA == Op::none && OpB == Op::transpose) c.noalias() = a * b.transpose();
  if constexpr (OpA == Op::transpose && OpB == Op::none) c.noalias() = a.transpose() * b;
  if constexpr (OpA == Op::transpose && OpB == Op::transpose)
    c.noalias() = a.transpose() * b.transpose();
}

/// A named way of computing C, and its accumulated time.
template <class T>
struct Contender {
  std::string counter;  ///< its GFLOP/s counter's name
  std::function<void()> run;
  Mat<T>* result;
  double seconds = 0;
};

double seconds_between(clock_type::time_point a, clock_type::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

template <class T>
bool agrees(benchmark::State& state, const Mat<T>& got, const Mat<T>& expected,
            const std::string& who) {
  const T scale = std::max(T(1), expected.cwiseAbs().maxCoeff());
  const T diff = (got - expected).cwiseAbs().maxCoeff();
  if (got.rows() == expected.rows() && got.cols() == expected.cols() && diff <= T(1e-4) * scale)
    return true;
  g_failed = true;
  state.SkipWithError((who + " differs from Eigen's product").c_str());
  return false;
}

/// Times the contenders (the first is Gemm: the reported time) in rotating order.
template <class T>
void race(benchmark::State& state, std::vector<Contender<T>>& all, double flops) {
  for (auto& c : all) c.run();  // sizes every buffer
  for (auto& c : all)
    if (!agrees(state, *c.result, *all[1].result, c.counter)) return;
  const auto t0 = clock_type::now();
  all[0].run();
  const double one = std::max(1e-9, seconds_between(t0, clock_type::now()));
  const int reps = static_cast<int>(std::clamp(50e-6 / one, 1.0, 1000.0));  // blocks of >= 50 us
  std::size_t first = 0;
  for (auto _ : state) {
    for (std::size_t i = 0; i < all.size(); ++i) {
      Contender<T>& c = all[(first + i) % all.size()];
      const auto start = clock_type::now();
      for (int r = 0; r < reps; ++r) c.run();
      const double t = seconds_between(start, clock_type::now()) / reps;
      c.seconds += t;
      if (&c == &all[0]) state.SetIterationTime(t);
      benchmark::ClobberMemory();
    }
    first = (first + 1) % all.size();
  }
  const double n = static_cast<double>(state.iterations());
  for (auto& c : all) state.counters[c.counter] = flops * n / c.seconds * 1e-9;
  state.counters["ratio"] = all[0].seconds / all[1].seconds;
  for (auto& c : all)
    if (c.counter == "blas_gflops") state.counters["blas_ratio"] = all[0].seconds / c.seconds;
}

template <class T, Op OpA, Op OpB>
void gemm_bench(benchmark::State& state, Shape s) {
  Eigen::setNbThreads(static_cast<int>(state.range(0)));
  const Mat<T> a = OpA == Op::none ? random_matrix<T>(s.m, s.k, 1) : random_matrix<T>(s.k, s.m, 1);
  const Mat<T> b = OpB == Op::none ? random_matrix<T>(s.k, s.n, 2) : random_matrix<T>(s.n, s.k, 2);
  dropnet::Gemm<T> gemm;
  Mat<T> c_gemm, c_eigen, c_blas(s.m, s.n), c_packed(s.m, s.n);
  std::vector<Contender<T>> all;
  all.push_back({"gflops", [&] { gemm.template multiply<OpA, OpB>(a, b, c_gemm); }, &c_gemm});
  all.push_back({"eigen_gflops", [&] { eigen_product<OpA, OpB>(a, b, c_eigen); }, &c_eigen});
#if defined(DROPNET_USE_BLAS)
  const auto op = [](Op o) { return o == Op::none ? CblasNoTrans : CblasTrans; };
  all.push_back({"blas_gflops", [&] {
                   if constexpr (std::is_same_v<T, float>)
                     cblas_sgemm(CblasColMajor, op(OpA), op(OpB), int(s.m), int(s.n),
                                 int(s.k), 1.f, a.data(), int(a.rows()), b.data(),
                                 int(b.rows()), 0.f, c_blas.data(), int(s.m));
                   else
                     cblas_dgemm(CblasColMajor, op(OpA), op(OpB), int(s.m), int(s.n),
                                 int(s.k), 1.0, a.data(), int(a.rows()), b.data(),
                                 int(b.rows()), 0.0, c_blas.data(), int(s.m));
                 }, &c_blas});
#if defined(__AVX512F__)
  dropnet::simd::GemmWorkspace<T> ws;
  all.push_back({"packed_gflops", [&] {
                   dropnet::simd::gemm_avx512<T, OpA == Op::transpose, OpB == Op::transpose>(
                       s.m, s.n, s.k, a.data(), a.rows(), b.data(), b.rows(), T(0),
                       c_packed.data(), s.m, ws);
                 }, &c_packed});
#endif
#endif
  race(state, all, 2.0 * double(s.m) * double(s.n) * double(s.k));
  Eigen::setNbThreads(1);
}

template <class T>
void register_type(const std::string& type) {
  for (const Shape& s : shapes()) {
    const std::string name = "gemm/" + type + "/" + s.name + "/" + std::to_string(s.m) + "x" +
                             std::to_string(s.n) + "x" + std::to_string(s.k);
    const int ops = (s.op_a == Op::transpose ? 2 : 0) + (s.op_b == Op::transpose ? 1 : 0);
    const auto fn = ops == 0   ? &gemm_bench<T, Op::none, Op::none>
                    : ops == 1 ? &gemm_bench<T, Op::none, Op::transpose>
                    : ops == 2 ? &gemm_bench<T, Op::transpose, Op::none>
                               : &gemm_bench<T, Op::transpose, Op::transpose>;
    benchmark::RegisterBenchmark(name.c_str(), fn, s)
        ->ArgNames({"threads"})
        ->Arg(1)
        ->Arg(2)
        ->UseManualTime();
  }
}

}  // namespace

int main(int argc, char** argv) {
  Eigen::setNbThreads(1);
  register_type<float>("float");
  register_type<double>("double");
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return g_failed ? 1 : 0;
}
