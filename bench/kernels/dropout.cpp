// Dropout at p = 0.4: mask generation alone, the layer's forward (mask + apply) and backward
// (apply), on 784x64 (W2's input dropout) and 512x128 (W3's first hidden layer). The plain
// version draws from std::mt19937 as plain_eigen_mlp.hpp does; random masks are checked by their
// keep rate.

#include <cmath>
#include <random>
#include <string>
#include <utility>

#include "kernels.hpp"

namespace bench::kernels {
namespace {

using dropnet::Generator;
using dropnet::Mode;

constexpr double p = 0.4;

struct PlainMask {
  std::mt19937 rng{5};
  void fill(Mat& mask, Index rows, Index cols) {
    std::uniform_real_distribution<float> uniform(0.f, 1.f);
    const float scale = 1.f / (1.f - float(p));
    mask = Mat::NullaryExpr(rows, cols, [&] { return uniform(rng) < float(p) ? 0.f : scale; });
  }
};

/// Fails the benchmark unless the mask keeps 1 - p of its entries, within 6 standard deviations.
bool keep_rate_ok(benchmark::State& state, const Mat& mask) {
  const double kept = double((mask.array() != 0.f).count()) / double(mask.size());
  const double sd = std::sqrt(p * (1 - p) / double(mask.size()));
  if (std::abs(kept - (1 - p)) > 6 * sd + 1e-9) {
    fail(state, "keep rate " + std::to_string(kept) + ", expected " + std::to_string(1 - p));
    return false;
  }
  return true;
}

void mask_generation(benchmark::State& state) {
  const Index rows = state.range(0), cols = state.range(1);
  Generator gen(3);
  const dropnet::KeepThreshold keep("bench", p);
  const float scale = float(1 / (1 - p));
  Mat mask(rows, cols), mask_ref;
  PlainMask plain;
  dropnet::draw_bernoulli(gen, keep, scale, 0.f, mask.data(), mask.size());
  plain.fill(mask_ref, rows, cols);
  if (!keep_rate_ok(state, mask) || !keep_rate_ok(state, mask_ref)) return;
  paired(
      state, "eigen",
      [&] {
        dropnet::draw_bernoulli(gen, keep, scale, 0.f, mask.data(), mask.size());
        benchmark::DoNotOptimize(mask.data());
      },
      [&] {
        plain.fill(mask_ref, rows, cols);
        benchmark::DoNotOptimize(mask_ref.data());
      },
      Work::items(double(mask.size())));
}

void dropout_layer(benchmark::State& state, bool backward) {
  const Index rows = state.range(0), cols = state.range(1);
  const Mat x = random_matrix(rows, cols, 1, 2.f);
  const Mat dy = random_matrix(rows, cols, 2);
  Generator gen(3);
  dropnet::Dropout<float> layer(p);
  PlainMask plain;
  Mat mask_ref, y_ref, dx_ref;
  auto plain_forward = [&] {
    plain.fill(mask_ref, rows, cols);
    y_ref = x.cwiseProduct(mask_ref);
  };
  const Mat& y = layer.forward(x, Mode::train, &gen);
  plain_forward();
  if (!keep_rate_ok(state, layer.mask()) ||
      !same(state, y, x.cwiseProduct(layer.mask()), "forward", 1e-5))
    return;
  if (!backward) {
    paired(
        state, "eigen",
        [&] { benchmark::DoNotOptimize(layer.forward(x, Mode::train, &gen).data()); },
        [&] {
          plain_forward();
          benchmark::DoNotOptimize(y_ref.data());
        },
        Work::items(double(x.size())));
    return;
  }
  if (!same(state, layer.backward(dy, true), dy.cwiseProduct(layer.mask()), "backward", 1e-5))
    return;
  paired(
      state, "eigen", [&] { benchmark::DoNotOptimize(layer.backward(dy, true).data()); },
      [&] {
        dx_ref = dy.cwiseProduct(mask_ref);
        benchmark::DoNotOptimize(dx_ref.data());
      },
      Work::items(double(x.size())));
}

}  // namespace

void register_dropout() {
  for (const auto& [rows, cols] : {std::pair<Index, Index>{784, 64}, {512, 128}}) {
    benchmark::RegisterBenchmark("dropout/mask_generation", mask_generation)
        ->ArgNames({"rows", "batch"})
        ->Args({rows, cols})
        ->UseManualTime();
    benchmark::RegisterBenchmark("dropout/forward", dropout_layer, false)
        ->ArgNames({"rows", "batch"})
        ->Args({rows, cols})
        ->UseManualTime();
    benchmark::RegisterBenchmark("dropout/backward_apply", dropout_layer, true)
        ->ArgNames({"rows", "batch"})
        ->Args({rows, cols})
        ->UseManualTime();
  }
}

}  // namespace bench::kernels
