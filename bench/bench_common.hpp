#pragma once
// What every benchmark binary shares: CI's short mode, the failure flag the process exits with,
// seeded random data, the check that two implementations agree before they are timed, the timer
// that runs implementations alternately (race, and paired for two with a ratio), and main.
//
// Environment:
//   DROPNET_BENCH_SHORT=1   CI mode: each binary checks that its cases run and agree, not how fast
//                           (smaller batches or data, fewer iterations, as each binary says).

#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <ctime>
#include <dropnet/dropnet.hpp>
#include <functional>
#include <random>
#include <string>
#include <utility>
#include <vector>

namespace bench {

using dropnet::Index;
using Mat = dropnet::Matrix<float>;
using Vec = dropnet::Vector<float>;
using clock_type = std::chrono::steady_clock;

inline bool short_mode() {
  const char* value = std::getenv("DROPNET_BENCH_SHORT");
  return value != nullptr && *value != '\0' && std::string(value) != "0";
}

/// Set by fail(): the process then exits non-zero, which is what CI's short runs check.
inline bool failed = false;

inline void fail(benchmark::State& state, const std::string& message) {
  failed = true;
  state.SkipWithError(message.c_str());
}

/// Fails the benchmark unless `got` has `expected`'s shape and agrees with it to `tolerance`
/// relative to expected's largest magnitude (or absolute, below 1).
template <class A, class B>
bool same(benchmark::State& state, const Eigen::MatrixBase<A>& got,
          const Eigen::MatrixBase<B>& expected, const std::string& what, double tolerance = 1e-4) {
  using Scalar = typename B::Scalar;
  if (got.rows() != expected.rows() || got.cols() != expected.cols()) {
    fail(state, what + ": the results differ in shape");
    return false;
  }
  const Scalar scale = std::max(Scalar(1), expected.cwiseAbs().maxCoeff());
  const Scalar diff = (got - expected).cwiseAbs().maxCoeff();
  if (!(diff <= Scalar(tolerance) * scale)) {  // also fails on NaN
    fail(state, what + ": the results differ by " + std::to_string(diff));
    return false;
  }
  return true;
}

/// Fails the benchmark if `value` (a loss, a sum of outputs) is NaN or infinite.
inline void check_finite(benchmark::State& state, double value, const char* what) {
  if (!std::isfinite(value)) fail(state, std::string("non-finite ") + what);
}

/// rows x cols values drawn from normal(0, sd): the same for a given seed.
template <class T = float>
dropnet::Matrix<T> random_matrix(Index rows, Index cols, unsigned seed, T sd = T(1)) {
  std::mt19937 rng(seed);
  std::normal_distribution<T> normal(T(0), sd);
  return dropnet::Matrix<T>::NullaryExpr(rows, cols, [&] { return normal(rng); });
}

inline double seconds_since(clock_type::time_point start) {
  return std::chrono::duration<double>(clock_type::now() - start).count();
}

/// CPU time of the whole process (all threads). On a machine shared with other work, the CPU
/// time of a single-threaded run is close to its wall time on an idle machine, while the wall
/// time grows with the load: the cpu_* counters are the load-robust figures at 1 thread.
inline double process_cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return double(t.tv_sec) + 1e-9 * double(t.tv_nsec);
}

// ---------------------------------------------------------------------------------------------
// Timing implementations against each other

/// One of the implementations a benchmark times against the others.
struct Contender {
  std::function<void(int)> run;  ///< calls the implementation n times
  double seconds = 0;            ///< after race(): its mean time per call
};

/// `fn` as a contender: a block of calls is one loop the compiler sees, with no indirect call
/// per call to weigh on small kernels.
template <class F>
Contender contender(F&& fn) {
  return {[fn = std::forward<F>(fn)](int n) mutable {
    for (int i = 0; i < n; ++i) fn();
  }};
}

/// Which clock race() reads.
enum class Clock {
  wall,  ///< steady_clock: what a user waits, load included
  cpu    ///< the process's CPU time (process_cpu_seconds): single-threaded contenders on a
         ///< loaded machine, where the wall time counts the time other work held the core
};

/// With several threads, the contenders may run on different thread pools (Eigen's products on
/// OpenMP, dropnet's on core/parallel.hpp's WorkerPool), and a pool's idle threads keep spinning
/// after their turn: libgomp's for about 5 ms after a parallel product (measured on the
/// development VM), holding the core the next contender's worker needs. Alternated 50 us blocks
/// then timed every contender against the other's spinning threads: bench_gemm's 784 -> 120
/// product on two threads took 93-116 us raced against Eigen's, 52 us with
/// OMP_WAIT_POLICY=passive. So before each timed block, race() runs the contender untimed for
/// longer than that spin, and times blocks of at least pool_block seconds.
inline constexpr double pool_settle = 8e-3, pool_block = 4e-3;

/// Calls c in blocks of `reps` until `seconds` have passed.
inline void run_for(const Contender& c, int reps, double seconds) {
  const auto start = clock_type::now();
  do c.run(reps);
  while (seconds_since(start) < seconds);
}

/// Times the contenders alternately, in blocks of calls of at least `block` seconds (long enough
/// for the clock) and in rotating order, so that all see the same machine load. all[0]'s time
/// is the benchmark's (manual) time. Leaves each contender's mean time per call in `seconds`.
inline void race(benchmark::State& state, std::vector<Contender>& all, double block = 20e-6,
                 Clock clock = Clock::wall) {
  const auto now = [clock] {
    return clock == Clock::cpu
               ? process_cpu_seconds()
               : std::chrono::duration<double>(clock_type::now().time_since_epoch()).count();
  };
  const bool pools = Eigen::nbThreads() > 1;
  if (pools) block = std::max(block, pool_block);
  for (auto& c : all) c.run(1);  // sizes every buffer
  const double t0 = now();
  all[0].run(1);
  const double one = std::max(1e-9, now() - t0);
  const int reps = static_cast<int>(std::clamp(block / one, 1.0, pools ? 1e6 : 1000.0));
  // One batch of iterations is one block of all[0]'s calls: the manual time is the block's, so
  // Google Benchmark's time per iteration is the time per call, and --benchmark_min_time counts
  // all[0]'s timed calls (the other contenders' blocks and the settling come on top).
  std::size_t first = 0, blocks = 0;
  while (state.KeepRunningBatch(reps)) {
    for (std::size_t i = 0; i < all.size(); ++i) {
      Contender& c = all[(first + i) % all.size()];
      if (pools) run_for(c, reps, pool_settle);
      const double start = now();
      c.run(reps);
      const double seconds = now() - start;
      c.seconds += seconds / reps;
      if (&c == &all[0]) state.SetIterationTime(seconds);
      benchmark::ClobberMemory();
    }
    first = (first + 1) % all.size();
    ++blocks;
  }
  for (auto& c : all) c.seconds /= static_cast<double>(std::max<std::size_t>(blocks, 1));
}

/// What one call of a timed implementation does, for its rate counters.
struct Work {
  double items_per_call = 0;  ///< Google Benchmark's items_per_second
  double flops_per_call = 0;  ///< the GFLOPS counter
  static Work items(double n) { return {n, 0}; }
  static Work flops(double n) { return {0, n}; }
};

/// Races `ours` (the benchmark's time) against `theirs`. Counters: <theirs>_ns (their time per
/// call), ratio = ours / theirs (< 1: ours is faster), and ours' rates from `work`.
template <class Ours, class Theirs>
void paired(benchmark::State& state, const std::string& theirs, Ours&& ours_fn, Theirs&& theirs_fn,
            Work work = {}) {
  std::vector<Contender> all;
  all.push_back(contender(std::forward<Ours>(ours_fn)));
  all.push_back(contender(std::forward<Theirs>(theirs_fn)));
  race(state, all);
  const double ours = all[0].seconds, calls = static_cast<double>(state.iterations());
  state.counters[theirs + "_ns"] = all[1].seconds * 1e9;
  state.counters["ratio"] = ours / all[1].seconds;
  if (work.items_per_call > 0)
    state.SetItemsProcessed(static_cast<std::int64_t>(calls * work.items_per_call));
  if (work.flops_per_call > 0) state.counters["GFLOPS"] = work.flops_per_call / ours * 1e-9;
}

// ---------------------------------------------------------------------------------------------

/// Every benchmark binary's main: `register_all()` registers its cases (Eigen single-threaded
/// unless a case sets otherwise); exits non-zero if a case failed.
inline int run(int argc, char** argv, void (*register_all)()) {
  Eigen::setNbThreads(1);
  register_all();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return failed ? 1 : 0;
}

}  // namespace bench
