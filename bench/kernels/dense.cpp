// Dense<float, ReLU>: forward (GEMM + bias + ReLU) and backward (ReLU', dW, db, dX) on the
// workloads' layers: 784->120 and 120->60 at batch 64 (W1), 512->256 at batch 128 (W3); counts
// items as floating-point operations.

#include "kernels.hpp"

namespace bench::kernels {
namespace {

using dropnet::Mode;

void dense(benchmark::State& state, bool backward) {
  const Index in = state.range(0), out = state.range(1), cols = state.range(2);
  Eigen::setNbThreads(static_cast<int>(state.range(3)));
  dropnet::Generator gen(1);
  dropnet::Dense<float, dropnet::ReLU> layer(in, out, gen);
  layer.bias() = random_matrix(out, 1, 9, 0.1f);
  const Mat W = layer.weight();
  const Vec b = layer.bias();
  const Mat x = random_matrix(in, cols, 2);
  const Mat dy = random_matrix(out, cols, 3);
  Mat z, a, dz, dW, dx;
  Vec db;
  auto plain_forward = [&] {
    z.noalias() = W * x;
    z.colwise() += b;
    a = z.cwiseMax(0.f);
    benchmark::DoNotOptimize(a.data());
  };
  auto plain_backward = [&] {
    dz = (z.array() > 0.f).select(dy, 0.f);
    dW.noalias() = dz * x.transpose();
    db = dz.rowwise().sum();
    dx.noalias() = W.transpose() * dz;
    benchmark::DoNotOptimize(dx.data());
  };
  const double flops = 2.0 * double(in) * double(out) * double(cols);  // of the forward GEMM
  plain_forward();
  if (!same(state, layer.forward(x, Mode::train, nullptr), a, "forward")) return;
  if (!backward) {
    paired(
        state, "eigen",
        [&] { benchmark::DoNotOptimize(layer.forward(x, Mode::train, nullptr).data()); },
        plain_forward, Work::items(flops));
  } else {
    plain_backward();
    if (!same(state, layer.backward(dy, true), dx, "dX") ||
        !same(state, layer.weight_grad(), dW, "dW"))
      return;
    paired(
        state, "eigen", [&] { benchmark::DoNotOptimize(layer.backward(dy, true).data()); },
        plain_backward, Work::items(2 * flops));
  }
  Eigen::setNbThreads(1);
}

}  // namespace

void register_dense() {
  for (const bool backward : {false, true}) {
    benchmark::RegisterBenchmark(backward ? "dense_relu/backward" : "dense_relu/forward", dense,
                                 backward)
        ->ArgNames({"in", "out", "batch", "threads"})
        ->Args({784, 120, 64, 1})
        ->Args({784, 120, 64, 2})
        ->Args({120, 60, 64, 1})
        ->Args({512, 256, 128, 1})
        ->Args({512, 256, 128, 2})
        ->UseManualTime();
  }
}

}  // namespace bench::kernels
