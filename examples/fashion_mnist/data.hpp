#pragma once
// The three sets the program works on, loaded, split and normalized as the notebook does.

#include <dropnet/core/generator.hpp>
#include <dropnet/io/idx.hpp>

#include "options.hpp"

namespace fmnist {

struct Data {
  dropnet::LabeledImages<float> train, valid, test;
  dropnet::Vector<float>
      blank;  ///< an all-zero image after normalization (augmentation fills with it)
};

/// Loads the official training images, splits them into train / valid with a permutation drawn
/// from `gen` (the notebook's random_split(60000 -> 50000, 10000)), applies the limits, loads the
/// test images and normalizes all three. Throws dropnet::FormatError for missing or bad files.
Data load_data(const DataSpec& spec, dropnet::Generator& gen);

}  // namespace fmnist
