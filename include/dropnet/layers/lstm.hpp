#pragma once
// LSTM<T>: long short-term memory over sequences (SequenceShape), PyTorch's nn.LSTM cell and
// tensor layout, Keras' dropout / recurrent_dropout (variational), and Zoneout of c and h.
//
//   i = s(a_i), f = s(a_f), g = tanh(a_g), o = s(a_o),  a = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh
//   c_t = f c_{t-1} + i g,   h_t = o tanh(c_t)          (gates i, f, g, o in rows k*H of W, b)
//
//   LSTM<float> lstm(SequenceShape{28, 28}, 128, gen,
//                    RecurrentOptions().recurrent_dropout(0.25).zoneout(0.1, 0.05));
//
// Everything else (options, masks, Zoneout, errors, layout, performance) is recurrent.hpp's.

#include "recurrent.hpp"

namespace dropnet {

/// The LSTM layer: RecurrentLayer with the LSTM cell (see recurrent.hpp).
template <class T>
using LSTM = RecurrentLayer<T, CellKind::lstm>;

}  // namespace dropnet
