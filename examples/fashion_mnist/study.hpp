#pragma once
// --study dropout: the notebook's comparison cell. Trains the same network without dropout, with
// the notebook's 0.25 (input) / 0.4 (hidden) rates, and with the user's rates, each from the same
// initial weights, and compares their learning curves and test accuracy.

#include <cstdio>

#include "data.hpp"
#include "options.hpp"

namespace fmnist {

/// Runs the study with `gen` as it is after the data split (each model starts from a copy).
/// Prints progress, the comparison table and timing to `out`; writes the CSV and the figure when
/// asked. Returns the process exit status.
int run_dropout_study(const Options& options, Data& data, const dropnet::Generator& gen,
                      std::FILE* out);

}  // namespace fmnist
