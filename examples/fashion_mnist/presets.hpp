#pragma once
// Named starting points for --preset: the seed notebook's two networks, our best dense one and a
// small convolutional network.
// Flags given on the command line override a preset field by field.

#include <string>
#include <vector>

#include "options.hpp"

namespace fmnist {

struct Preset {
  std::string name;
  std::string description;  ///< one line for --help
  ModelSpec model;
  TrainSpec train;
  std::string normalization = "mean-std";  ///< DataSpec::normalization
};

/// Every preset, in the order --help lists them.
const std::vector<Preset>& presets();

/// The preset called `name`; throws std::invalid_argument naming the known ones otherwise.
const Preset& find_preset(const std::string& name);

/// Names joined for messages: "seed, seed-dropout, best, cnn".
std::string preset_names();

}  // namespace fmnist
