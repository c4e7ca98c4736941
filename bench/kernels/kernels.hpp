#pragma once
// bench_kernels' kernel families, one file each (bench_kernels.cpp says what the binary measures).
// Each registers its cases: a dropnet kernel paired with a plain Eigen expression of the same
// math (bench::paired, counters eigen_ns and ratio), checked to agree before it is timed.

#include "../bench_common.hpp"

namespace bench::kernels {

void register_activations();  // activations.cpp
void register_dropout();      // dropout.cpp
void register_batch_norm();   // batch_norm.cpp
void register_softmax_ce();   // softmax_ce.cpp
void register_dense();        // dense.cpp
void register_adam();         // adam.cpp
void register_fma_peak();     // fma_peak.cpp
void register_core_round_trip();  // core_round_trip.cpp
void register_gather();       // batching.cpp

}  // namespace bench::kernels
