#pragma once
// --search grid|random|compare: hyperparameter search on the notebook's MLP (course chapter 004,
// section 14 and exercise 5), with dropnet/training/hyperparameter_search.hpp.
//
// The space, with the chapter's ranges: learning rate log-uniform on [1e-4, 1e-1], dropout
// uniform on [0, 0.5] after each hidden layer (the input untouched), L2 log-uniform on
// [1e-5, 1e-3], the first hidden layer's width an integer in [32, 256] (the second has half as
// many units), the batch size one of 32, 64, 128, 256. The rest (optimizer, schedule, epochs)
// comes from the preset and the flags. Each trial trains on the training split and is scored by
// its validation accuracy after each epoch; the test set only measures the chosen trial.
// Grid search spends the budget of --trials on the most even grid that fits
// (SearchSpace::grid_points), random search draws --trials configurations; compare runs both at
// the same budget and with the same trial seeds.

#include <cstdio>

#include "data.hpp"
#include "options.hpp"

namespace fmnist {

/// Runs the search(es) options.search names: one line per trial, the table of each search, a
/// comparison when both ran; the CSV of the trials (--history) and a figure (--plot: the best
/// validation accuracy so far against the trials, and each trial's accuracy against its learning
/// rate). Returns the exit status.
int run_search_study(const Options& options, Data& data, std::FILE* out);

}  // namespace fmnist
