#include "recurrent_model.hpp"

#include <dropnet/io/fashion_mnist.hpp>
#include <dropnet/layers/dense.hpp>
#include <dropnet/layers/lstm.hpp>
#include <sstream>

namespace fmnist {

namespace {

dropnet::Index lstm_units(const ModelSpec& spec) { return spec.hidden.empty() ? 128 : spec.hidden[0]; }

}  // namespace

void add_lstm_layers(dropnet::Sequential<float>& model, const ModelSpec& spec,
                     dropnet::Generator& gen) {
  namespace fm = dropnet::fashion_mnist;
  const dropnet::SequenceShape rows{fm::image_height, fm::image_width};
  const RecurrentSpec& r = spec.recurrent;
  model.add(dropnet::LSTM<float>(rows, lstm_units(spec), gen,
                                 dropnet::RecurrentOptions()
                                     .dropout(r.dropout)
                                     .recurrent_dropout(r.recurrent_dropout)
                                     .mask_mode(r.per_step_masks ? dropnet::MaskMode::per_step
                                                                 : dropnet::MaskMode::per_sequence)
                                     .zoneout(r.zoneout_c, r.zoneout_h)));
  model.add(dropnet::Dense<float>(lstm_units(spec), fm::classes, gen));
}

std::string lstm_architecture(const ModelSpec& spec) {
  std::ostringstream out;
  out << "LSTM 28x28 rows -> " << lstm_units(spec) << " -> 10";
  return out.str();
}

std::string recurrent_dropout_text(const RecurrentSpec& r) {
  std::ostringstream out;
  out << "dropout " << r.dropout << " / recurrent " << r.recurrent_dropout
      << (r.per_step_masks ? " (per-step masks)" : " (variational)") << ", zoneout c " << r.zoneout_c << " h " << r.zoneout_h;
  return out.str();
}

}  // namespace fmnist
