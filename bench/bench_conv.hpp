#pragma once
// What bench_conv.cpp and compare/torch_conv.cpp share: the convolution shapes and the
// Fashion-MNIST cnn preset network.

#include <string>

#include "bench_common.hpp"

namespace bench {

using dropnet::ImageShape;

/// One convolution: C x H x W input, O output channels, k x k kernel, stride s, padding p.
struct Shape {
  const char* name;
  Index c, h, w, o, k, s, p, batch;
  ImageShape input() const { return {c, h, w}; }
  Index out_h() const { return (h + 2 * p - k) / s + 1; }
  Index out_w() const { return (w + 2 * p - k) / s + 1; }
  Index out_spatial() const { return out_h() * out_w(); }
  /// Multiply-adds of one forward over the batch.
  double macs() const { return double(o * out_spatial() * c * k * k * batch); }
  std::string label() const { return std::string(name) + "/batch:" + std::to_string(batch); }
};

/// The cnn preset's two convolutions at batch 64, and a strided one.
inline const Shape shapes[] = {
    {"1x28x28->32,k3,p1", 1, 28, 28, 32, 3, 1, 1, 64},
    {"32x14x14->64,k3,p1", 32, 14, 14, 64, 3, 1, 1, 64},
    {"32x28x28->32,k3,s2,p1", 32, 28, 28, 32, 3, 2, 1, 64},
};

/// The Fashion-MNIST cnn preset: two conv blocks (Conv2D 3x3 pad 1 -> BatchNorm -> ReLU ->
/// SpatialDropout -> MaxPool 2) on 1x28x28, 32 then 64 channels, then Flatten ->
/// Dense(3136, 128, ReLU) -> Dropout(0.5) -> Dense(128, 10) logits.
inline dropnet::Sequential<float> cnn_preset(dropnet::Generator& gen, double p_conv = 0.1,
                                             double p_dense = 0.5) {
  using namespace dropnet;
  Sequential<float> model;
  Index channels = 1, side = 28;
  for (const Index out : {32, 64}) {
    model.add(
        Conv2D<float>(ImageShape{channels, side, side}, out, 3, gen, ConvOptions().padding(1)));
    model.add(BatchNorm<float>(out, side * side));
    model.add(ActivationLayer<float, ReLU>());
    model.add(SpatialDropout<float>(p_conv, out));
    model.add(MaxPool2D<float>(ImageShape{out, side, side}, 2));
    channels = out;
    side /= 2;
  }
  model.add(Flatten<float>(ImageShape{64, 7, 7}));
  model.add(Dense<float, ReLU>(64 * 7 * 7, 128, gen));
  model.add(Dropout<float>(p_dense));
  model.add(Dense<float>(128, 10, gen));
  return model;
}

}  // namespace bench
