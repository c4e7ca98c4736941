// Kernel benchmarks: each dropnet kernel against a plain Eigen expression of the same math, in
// the same binary and the same run. One file per kernel family in kernels/.
//
// Every benchmark times the dropnet kernel and the plain Eigen one alternately, block by block,
// so both see the same machine load (bench::paired); the reported time is dropnet's and the
// counters are
//   eigen_ns  the plain Eigen expression's time per call
//   ratio     dropnet time / plain Eigen time (< 1: dropnet is faster)
// Before timing, each pair is checked to compute the same thing (same values, or for random
// masks the same keep rate); a mismatch fails the benchmark and the process exits non-zero, which
// is what CI's short run (--benchmark_min_time=0.01) checks.
//
// Shapes: features x batch as in the workloads: 120x64 (W1's first hidden layer, batch 64) and
// 512x128 (W3's, batch 128); Dense 784->120 at batch 64 and 512->256 at batch 128.

#include "kernels/kernels.hpp"

int main(int argc, char** argv) {
  return bench::run(argc, argv, [] {
    using namespace bench::kernels;
    register_activations();
    register_dropout();
    register_batch_norm();
    register_softmax_ce();
    register_dense();
    register_adam();
    register_gather();
    register_fma_peak();
    register_core_round_trip();
  });
}
