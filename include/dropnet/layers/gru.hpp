#pragma once
// GRU<T>: gated recurrent unit over sequences (SequenceShape), PyTorch's nn.GRU cell (the reset
// gate applied to the hidden product, after its bias) and tensor layout, Keras' dropout /
// recurrent_dropout (variational), and Zoneout of h.
//
//   r = s(a_r), z = s(a_z),  a = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh   (gates r, z, n)
//   n = tanh(W_in x_t + b_in + r (W_hn h_{t-1} + b_hn)),   h_t = (1 - z) n + z h_{t-1}
//
//   GRU<float> gru(SequenceShape{28, 28}, 128, gen, RecurrentOptions().dropout(0.2));
//
// Everything else (options, masks, Zoneout, errors, layout, performance) is recurrent.hpp's.

#include "recurrent.hpp"

namespace dropnet {

/// The GRU layer: RecurrentLayer with the GRU cell (see recurrent.hpp).
template <class T>
using GRU = RecurrentLayer<T, CellKind::gru>;

}  // namespace dropnet
