#pragma once
// Builds the network a ModelSpec describes.

#include <dropnet/core/generator.hpp>
#include <dropnet/training/sequential.hpp>
#include <string>

#include "options.hpp"

namespace fmnist {

/// 784 -> [Dropout] -> for each hidden size h: Dense(h) [-> BatchNorm] -> activation
/// [-> Dropout] -> Dense(10) logits. Weights are drawn from `gen` (He init for the ReLU family).
dropnet::Sequential<float> build_model(const ModelSpec& spec, dropnet::Generator& gen);

/// "784-120-60-10 relu".
std::string architecture(const ModelSpec& spec);

/// "784-120-60-10 relu, dropout 0.25/0.4/0.4, BatchNorm".
std::string describe(const ModelSpec& spec);

/// "0.25/0.4/0.4", or "none".
std::string dropout_text(const std::vector<double>& rates);

}  // namespace fmnist
