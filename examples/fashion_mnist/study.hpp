#pragma once
// The studies: one network trained several times from the same initial weights, with one
// setting changed, and compared in a table, a CSV and a figure.
//
// --study dropout is the notebook's comparison cell: its MLP without dropout, with the notebook's
// 0.25 (input) / 0.4 (hidden) rates, and with the user's rates.
// --study l2 is the course chapter's exercise 4 next to it: the same MLP without L2 and with
// L2 1e-5, 1e-4 and 1e-3 (the chapter's range; --l2 adds a fifth), 50 epochs at a constant rate.
// --study spatial is the cnn preset with no dropout in its conv blocks, standard (element-wise)
// dropout there, and SpatialDropout (whole feature maps), at the same rate; the dense layers keep
// their dropout in all three.
// --study recurrent is the lstm preset with no dropout, naive dropout (fresh masks per step),
// variational dropout (one mask per sequence) and Zoneout.

#include <cstdio>

#include "data.hpp"
#include "options.hpp"

namespace fmnist {

/// Runs the study options.study names, with `gen` as it is after the data split (each model
/// starts from a copy). Prints progress, the comparison table and timing to `out`; writes the
/// CSV and the figure when asked. Returns the process exit status.
int run_study(const Options& options, Data& data, const dropnet::Generator& gen, std::FILE* out);

}  // namespace fmnist
