// The machine's fp32 FMA peak on one core: the ceiling every GFLOP/s figure is measured against.
// Twelve independent FMA chains on whole SIMD registers (more than latency x pipes on current
// x86 cores), no memory traffic.

#include "kernels.hpp"

namespace bench::kernels {
namespace {

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

}  // namespace

void register_fma_peak() { benchmark::RegisterBenchmark("machine/fma_peak_fp32", fma_peak); }

}  // namespace bench::kernels
