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

#include <string>
#include <type_traits>
#include <vector>

#include "bench_common.hpp"

#if defined(DROPNET_USE_BLAS)
#include <cblas.h>
#endif

namespace {

using bench::random_matrix;
using dropnet::Index;
using dropnet::Op;

template <class T>
using Mat = dropnet::Matrix<T>;

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

/// A named way of computing C, raced against the others.
template <class T>
struct Contender {
  std::string counter;  ///< its GFLOP/s counter's name
  std::function<void()> run;
  Mat<T>* result;
};

/// Checks every contender's C against Eigen's (the second), then races them with Gemm (the
/// first) as the reported time, in blocks of >= 50 us.
template <class T>
void race(benchmark::State& state, const std::vector<Contender<T>>& all, double flops) {
  for (auto& c : all) c.run();  // sizes every buffer
  for (auto& c : all)
    if (!bench::same(state, *c.result, *all[1].result, c.counter + " against Eigen's product"))
      return;
  std::vector<bench::Contender> timed;
  for (auto& c : all) timed.push_back(bench::contender(c.run));
  bench::race(state, timed, 50e-6);
  for (std::size_t i = 0; i < all.size(); ++i) {
    state.counters[all[i].counter] = flops / timed[i].seconds * 1e-9;
    if (all[i].counter == "blas_gflops")
      state.counters["blas_ratio"] = timed[0].seconds / timed[i].seconds;
  }
  state.counters["ratio"] = timed[0].seconds / timed[1].seconds;
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
  return bench::run(argc, argv, [] {
    register_type<float>("float");
    register_type<double>("double");
  });
}
