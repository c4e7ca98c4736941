#pragma once
// The studies of issue 16: can the uncertainty be trusted (--study uncertainty), and the
// perceptron of the course chapter on two Fashion-MNIST classes (--study perceptron).
//
// --study uncertainty trains an ensemble of 5 copies of the model (seeds seed .. seed+4; the
// notebook's dropout 0.25/0.4/0.4 when the model has none) and one network with Concrete dropout,
// then compares on the test set, and on rotated and inverted test images (out of distribution):
// the plain network (member 0), member 0 temperature-scaled on the validation set, member 0 with
// MC dropout (30 passes), the ensemble, and the Concrete dropout network (30 MC passes).

#include <cstdio>

#include "data.hpp"
#include "options.hpp"

namespace fmnist {

/// Runs --study uncertainty: prints the table, writes the reliability diagram's CSV and figure
/// next to options.plot_path when given. Returns the exit status.
int run_uncertainty_study(const Options& options, Data& data, std::FILE* out);

/// Runs --study perceptron: Trouser against Bag, on the 784 pixels and on their 2-D principal
/// components, whose decision boundary is drawn into options.plot_path when given.
int run_perceptron_study(const Options& options, Data& data, std::FILE* out);

}  // namespace fmnist
