#pragma once
// What bench_conv.cpp and compare/torch_conv.cpp share: the convolution shapes, the Fashion-MNIST
// cnn preset network, and the paired timer that runs two implementations alternately.

#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <dropnet/dropnet.hpp>
#include <random>
#include <string>

namespace bench_conv {

using dropnet::ImageShape;
using dropnet::Index;
using Mat = dropnet::Matrix<float>;
using clock_type = std::chrono::steady_clock;

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

inline Mat random_matrix(Index rows, Index cols, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.f, 1.f);
  return Mat::NullaryExpr(rows, cols, [&] { return normal(rng); });
}

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

inline double seconds(clock_type::time_point a, clock_type::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

/// Times `ours` and `theirs` alternately in blocks of >= 20 us, so both see the same machine
/// load. Reports ours as the (manual) time, and counters <name>_ns (theirs per call), ratio =
/// ours / theirs (< 1: ours is faster) and GFLOPS (ours, from `flops` per call).
template <class F, class G>
void paired(benchmark::State& state, const std::string& name, F&& ours, G&& theirs, double flops) {
  ours();  // sizes every buffer on both sides
  theirs();
  const auto t0 = clock_type::now();
  ours();
  const double one = std::max(1e-9, seconds(t0, clock_type::now()));
  const int reps = static_cast<int>(std::clamp(20e-6 / one, 1.0, 1000.0));
  double ours_total = 0, theirs_total = 0;
  bool theirs_first = false;
  for (auto _ : state) {
    double ours_time = 0, theirs_time = 0;
    for (int pass = 0; pass < 2; ++pass) {
      const auto start = clock_type::now();
      if ((pass == 0) == theirs_first) {
        for (int r = 0; r < reps; ++r) theirs();
        theirs_time = seconds(start, clock_type::now()) / reps;
      } else {
        for (int r = 0; r < reps; ++r) ours();
        ours_time = seconds(start, clock_type::now()) / reps;
      }
      benchmark::ClobberMemory();
    }
    theirs_first = !theirs_first;
    state.SetIterationTime(ours_time);
    ours_total += ours_time;
    theirs_total += theirs_time;
  }
  const double n = static_cast<double>(state.iterations());
  state.counters[name + "_ns"] = theirs_total / n * 1e9;
  state.counters["ratio"] = ours_total / theirs_total;
  state.counters["GFLOPS"] = flops * n / ours_total * 1e-9;
}

}  // namespace bench_conv
