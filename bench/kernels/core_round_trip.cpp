// The time a cache line takes to go from one core to another and back: two threads, one pinned
// to each of the first two CPUs, hand a counter back and forth. On the development VM (2 vCPUs,
// AMD EPYC) it is bimodal, about 180 ns or about 450 ns, as the host places the vCPUs, and it
// decides what a second thread is worth: every loop split between threads hands its data
// from one core to the other (docs/performance.md, "Threads"). run_compare.sh prints it before
// and after its runs.

#include <atomic>
#include <thread>

#if defined(__linux__)
#include <pthread.h>
#include <sched.h>
#endif

#include "kernels.hpp"

namespace bench::kernels {
namespace {

#if defined(__linux__)
using CpuSet = cpu_set_t;

CpuSet allowed_cpus() {
  CpuSet set;
  CPU_ZERO(&set);
  pthread_getaffinity_np(pthread_self(), sizeof(set), &set);
  return set;
}

/// The n-th CPU this thread may run on, or -1.
int nth_cpu(const CpuSet& set, int n) {
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu)
    if (CPU_ISSET(cpu, &set) && n-- == 0) return cpu;
  return -1;
}

void pin_to(int cpu) {
  CpuSet set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

void restore(const CpuSet& set) { pthread_setaffinity_np(pthread_self(), sizeof(set), &set); }
#else
// Elsewhere the probe measures whatever placement the scheduler chose.
using CpuSet = int;
CpuSet allowed_cpus() { return 0; }
int nth_cpu(const CpuSet&, int n) { return n < int(std::thread::hardware_concurrency()) ? n : -1; }
void pin_to(int) {}
void restore(const CpuSet&) {}
#endif

void core_round_trip(benchmark::State& state) {
  // Two threads on one CPU would hand the line over once per time slice: skip instead.
  const CpuSet before = allowed_cpus();
  const int first = nth_cpu(before, 0), second = nth_cpu(before, 1);
  if (second < 0) {
    state.SkipWithError("needs two CPUs");
    return;
  }
  constexpr long trips = 20000;
  alignas(64) std::atomic<long> ball{0};
  alignas(64) std::atomic<bool> stop{false};
  std::thread partner([&] {
    pin_to(second);
    for (long expected = 1;; expected += 2) {
      while (ball.load(std::memory_order_acquire) != expected)
        if (stop.load(std::memory_order_relaxed)) return;
      ball.store(expected + 1, std::memory_order_release);
    }
  });
  pin_to(first);  // restored below: the benchmarks after this one must not inherit the pin
  long next = 1;
  double seconds = 0;
  for (auto _ : state) {
    const auto start = clock_type::now();
    for (long i = 0; i < trips; ++i, next += 2) {
      ball.store(next, std::memory_order_release);
      while (ball.load(std::memory_order_acquire) != next + 1) {
      }
    }
    seconds += seconds_since(start);
  }
  stop.store(true);
  partner.join();
  restore(before);
  state.counters["round_trip_ns"] = seconds / (double(trips) * double(state.iterations())) * 1e9;
}

}  // namespace

void register_core_round_trip() {
  benchmark::RegisterBenchmark("machine/core_round_trip", core_round_trip);
}

}  // namespace bench::kernels
