#pragma once
// The "lstm" model kind: each 28x28 image read as a sequence of its 28 rows (28 steps of 28
// pixels; the image's row-major column is already dropnet's time-major sequence layout), an
// LSTM over it, and a dense layer from its last hidden state to the 10 logits.

#include <dropnet/core/generator.hpp>
#include <dropnet/model/sequential.hpp>
#include <string>

#include "options.hpp"

namespace fmnist {

/// 784 (28 steps x 28 features) -> LSTM(spec.hidden[0], spec.recurrent's dropout and Zoneout)
/// -> Dense(10) logits, weights drawn from `gen` (Xavier input weights, orthogonal recurrent
/// weights, forget bias 1, as Keras').
void add_lstm_layers(dropnet::Sequential<float>& model, const ModelSpec& spec,
                     dropnet::Generator& gen);

/// "LSTM 28x28 rows -> 128 -> 10".
std::string lstm_architecture(const ModelSpec& spec);

/// "dropout 0 / recurrent 0.25 (variational), zoneout c 0 h 0" ("(per-step masks)" when naive).
std::string recurrent_dropout_text(const RecurrentSpec& spec);

}  // namespace fmnist
