#pragma once
// The three networks the peer checks (tests/peers/*) move between dropnet, PyTorch and ONNX
// Runtime, built in dropnet; torch_models.py builds the same ones in PyTorch, module for module.
//
//   mlp  the seed notebook's 784-120-60-10 ReLU network
//   bn   784-64 -> BatchNorm -> GELU -> Dropout -> 64-32 Tanh -> 32-10
//   cnn  the fashion_mnist cnn preset's network: two blocks of Conv2D 3x3 (padding 1) ->
//        BatchNorm -> ReLU -> SpatialDropout -> MaxPool 2 (32 then 64 channels), Flatten,
//        3136-128 ReLU, Dropout, 128-10
//   zoo  every layer kind and activation export_onnx translates, for ONNX Runtime only: strided
//        and 1x1 convolutions, average, max and global pooling, BatchNorm over feature maps,
//        the dropout family, DropConnect (mean-field), every activation, temperature, LogSoftmax
// BatchNorm statistics are set to random values, so that eval mode depends on every buffer.

#include <dropnet/activations/elu.hpp>
#include <dropnet/activations/relu.hpp>
#include <dropnet/activations/sigmoid.hpp>
#include <dropnet/activations/softmax.hpp>
#include <dropnet/activations/swish.hpp>
#include <dropnet/layers/alpha_dropout.hpp>
#include <dropnet/layers/batch_norm.hpp>
#include <dropnet/layers/conv2d.hpp>
#include <dropnet/layers/dense.hpp>
#include <dropnet/layers/drop_connect.hpp>
#include <dropnet/layers/dropout.hpp>
#include <dropnet/layers/flatten.hpp>
#include <dropnet/layers/gaussian_dropout.hpp>
#include <dropnet/layers/pooling.hpp>
#include <dropnet/layers/spatial_dropout.hpp>
#include <dropnet/layers/temperature_scaling.hpp>
#include <dropnet/model/sequential.hpp>
#include <stdexcept>
#include <string>

namespace peers {

using namespace dropnet;

/// Random BatchNorm parameters and statistics (variances in [0.5, 1.5]).
inline void randomize_batch_norm(Sequential<float>& model, Generator& gen) {
  for (Index i = 0; i < model.size(); ++i) {
    if (model.layer(i).kind() != "BatchNorm") continue;
    auto& bn = dynamic_cast<BatchNorm<float>&>(model.layer(i));
    for (Index c = 0; c < bn.channels(); ++c) {
      bn.gamma()(c) = gen.uniform<float>(0.5f, 1.5f);
      bn.beta()(c) = gen.normal<float>(0.0f, 0.1f);
      bn.running_mean()(c) = gen.normal<float>(0.0f, 0.1f);
      bn.running_var()(c) = gen.uniform<float>(0.5f, 1.5f);
    }
  }
}

/// The network `kind` names ("mlp", "bn", "cnn"), with weights drawn from `seed`.
inline Sequential<float> build(const std::string& kind, std::uint64_t seed) {
  Generator gen(seed);
  Sequential<float> m(784);
  if (kind == "mlp") {
    m.add(Dense<float, ReLU>(784, 120, gen));
    m.add(Dense<float, ReLU>(120, 60, gen));
    m.add(Dense<float>(60, 10, gen));
  } else if (kind == "bn") {
    m.add(Dense<float>(784, 64, gen));
    m.add(BatchNorm<float>(64));
    m.add(ActivationLayer<float, GELU>());
    m.add(Dropout<float>(0.2));
    m.add(Dense<float, Tanh>(64, 32, gen));
    m.add(Dense<float>(32, 10, gen));
  } else if (kind == "cnn") {
    ImageShape maps{1, 28, 28};
    for (const Index channels : {32, 64}) {
      auto& conv = m.add(Conv2D<float>(maps, channels, 3, gen, ConvOptions().padding(1)));
      maps = conv.output_shape();
      m.add(BatchNorm<float>(maps.channels, maps.spatial()));
      m.add(ActivationLayer<float, ReLU>());
      m.add(SpatialDropout<float>(0.1, maps.channels));
      maps = m.add(MaxPool2D<float>(maps, 2)).output_shape();
    }
    m.add(Flatten<float>(maps));
    m.add(Dense<float, ReLU>(maps.size(), 128, gen));
    m.add(Dropout<float>(0.25));
    m.add(Dense<float>(128, 10, gen));
  } else if (kind == "zoo") {
    m.add(Conv2D<float, ELU>({1, 28, 28}, 4, 3, gen, ConvOptions().stride(2).padding(1), ELU(0.7)));
    m.add(AvgPool2D<float>({4, 14, 14}, 3, PoolOptions().stride(2).padding(1)));  // 4x7x7
    m.add(BatchNorm<float>(4, 49));
    m.add(ActivationLayer<float, SELU>());
    m.add(SpatialDropout<float>(0.2, 4));
    m.add(MaxPool2D<float>({4, 7, 7}, 2));  // 4x3x3
    m.add(Conv2D<float, Swish>({4, 3, 3}, 6, 1, gen));
    m.add(GlobalAvgPool<float>({6, 3, 3}));
    m.add(Dense<float, LeakyReLU>(6, 16, gen, Init::he_normal, LeakyReLU(0.1)));
    m.add(DropConnectDense<float, GELUTanh>(16, 16, 0.3, gen));
    m.add(Dense<float, Sigmoid>(16, 16, gen));
    m.add(GaussianDropout<float>(0.3));
    m.add(Dense<float, Softplus>(16, 16, gen));
    m.add(AlphaDropout<float>(0.1));
    m.add(Dense<float, Tanh>(16, 16, gen));
    m.add(Dense<float, GELU>(16, 12, gen));
    m.add(Dense<float, ReLU>(12, 12, gen));
    m.add(Dense<float>(12, 10, gen));
    m.add(TemperatureScaling<float>(1.7));
    m.add(ActivationLayer<float, LogSoftmax>());
  } else {
    throw std::invalid_argument("unknown peer model '" + kind + "'");
  }
  randomize_batch_norm(m, gen);
  return m;
}

}  // namespace peers
