#pragma once
// AdamW<T>: Adam with decoupled weight decay (Loshchilov & Hutter 2019), exactly as
// torch.optim.AdamW: before each Adam update, p <- p * (1 - lr * weight_decay), and the decay
// never enters the moments. Default weight_decay is 1e-2; everything else (formula, defaults,
// state order, what it throws) is as in adam.hpp.
//
// Usage: AdamW<float> opt(model.parameters(), AdamWOptions(1e-3).weight_decay(0.05));

#include "adam.hpp"

namespace dropnet {

/// AdamW's hyperparameters: Adam's, with decoupled weight decay defaulting to 1e-2.
using AdamWOptions = BasicAdamOptions<true>;

/// Adam with decoupled weight decay (Loshchilov & Hutter 2019), as torch.optim.AdamW.
template <class T>
using AdamW = BasicAdam<T, true>;

}  // namespace dropnet
