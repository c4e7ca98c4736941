#pragma once
// Builds the network a ModelSpec describes.

#include <dropnet/core/generator.hpp>
#include <dropnet/model/sequential.hpp>
#include <string>

#include "options.hpp"

namespace fmnist {

/// mlp: 784 -> [Dropout] -> for each hidden size h: Dense(h) [-> BatchNorm] -> activation
/// [-> Dropout] -> Dense(10) logits. cnn: the same dense layers after, for each conv channel
/// count c: Conv2D(c, 3x3, padding 1) -> BatchNorm -> activation [-> Dropout or SpatialDropout]
/// -> MaxPool2D(2), and Flatten. Weights are drawn from `gen` (dense layers: He init for the ReLU
/// family; convolutions: Xavier uniform, BatchNorm follows them).
dropnet::Sequential<float> build_model(const ModelSpec& spec, dropnet::Generator& gen);

/// "784-120-60-10 relu"; "conv 32-64 (3x3, BatchNorm, max-pool 2) -> 3136-128-10 relu".
std::string architecture(const ModelSpec& spec);

/// "784-120-60-10 relu, dropout 0.25/0.4/0.4, BatchNorm"; a cnn adds its conv dropout
/// ("conv dropout spatial 0.1, dense dropout 0/0.25").
std::string describe(const ModelSpec& spec);

/// "0.25/0.4/0.4", or "none".
std::string dropout_text(const std::vector<double>& rates);

/// "spatial 0.1", "standard 0.1", or "none".
std::string conv_dropout_text(const ConvSpec& conv);

/// True if any layer of the model drops units in training (Monte-Carlo dropout needs one).
bool has_dropout(const ModelSpec& spec);

/// What the first dense layer reads: 784 pixels (mlp), or the last conv block's pooled maps.
dropnet::Index flattened_features(const ModelSpec& spec);

}  // namespace fmnist
