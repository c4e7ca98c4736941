#pragma once
// dropnet: a header-only C++17 neural-network library on Eigen. This header includes all of it.

#include "version.hpp"

#include "core/error.hpp"
#include "core/generator.hpp"
#include "core/parameter.hpp"
#include "core/types.hpp"

#include "activations/activation.hpp"
#include "activations/elu.hpp"
#include "activations/relu.hpp"
#include "activations/sigmoid.hpp"
#include "activations/softmax.hpp"
#include "activations/swish.hpp"

#include "layers/alpha_dropout.hpp"
#include "layers/bernoulli_mask.hpp"
#include "layers/dense.hpp"
#include "layers/drop_connect.hpp"
#include "layers/dropout.hpp"
#include "layers/dropout_base.hpp"
#include "layers/gaussian_dropout.hpp"
#include "layers/gaussian_noise.hpp"
#include "layers/initializers.hpp"
#include "layers/layer.hpp"
#include "layers/spatial_dropout.hpp"

#include "losses/binary_cross_entropy.hpp"
#include "losses/loss.hpp"
#include "losses/mse.hpp"
#include "losses/softmax_cross_entropy.hpp"

#include "optimizers/adagrad.hpp"
#include "optimizers/adam.hpp"
#include "optimizers/adamw.hpp"
#include "optimizers/optimizer.hpp"
#include "optimizers/rmsprop.hpp"
#include "optimizers/schedules.hpp"
#include "optimizers/sgd.hpp"

#include "regularizers/max_norm.hpp"
#include "regularizers/weight_penalty.hpp"

#include "training/callback.hpp"
#include "training/evaluate.hpp"
#include "training/fit.hpp"
#include "training/gradient_check.hpp"
#include "training/history.hpp"
#include "training/mc_dropout.hpp"
#include "training/sequential.hpp"
