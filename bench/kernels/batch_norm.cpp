// BatchNorm (one statistic per row) on 512x128 and 256x128 (W3's hidden layers): train-mode
// forward and backward, eval-mode forward.

#include <utility>

#include "kernels.hpp"

namespace bench::kernels {
namespace {

using dropnet::Mode;

struct PlainBatchNorm {
  Vec gamma, beta, running_mean, running_var, inv_std, dgamma, dbeta;
  Mat xhat, y, dx;
  float eps = 1e-5f;
  explicit PlainBatchNorm(Index n)
      : gamma(Vec::Ones(n)),
        beta(Vec::Zero(n)),
        running_mean(Vec::Zero(n)),
        running_var(Vec::Ones(n)) {}

  void forward_train(const Mat& x) {
    const float m = float(x.cols());
    const Vec mean = x.rowwise().mean();
    xhat = x.colwise() - mean;
    const Vec var = xhat.array().square().rowwise().sum() / m;
    inv_std = (var.array() + eps).rsqrt();
    xhat = xhat.array().colwise() * inv_std.array();
    y = (xhat.array().colwise() * gamma.array()).colwise() + beta.array();
    running_mean = 0.9f * running_mean + 0.1f * mean;
    running_var = 0.9f * running_var + 0.1f * var * (m / (m - 1.f));
  }
  void forward_eval(const Mat& x) {
    const Vec scale = gamma.cwiseProduct((running_var.array() + eps).rsqrt().matrix());
    y = ((x.colwise() - running_mean).array().colwise() * scale.array()).colwise() + beta.array();
  }
  void backward(const Mat& dy) {
    const float m = float(dy.cols());
    dbeta = dy.rowwise().sum();
    dgamma = dy.cwiseProduct(xhat).rowwise().sum();
    const Vec k = gamma.cwiseProduct(inv_std) / m;
    dx = ((m * dy.array() - xhat.array().colwise() * dgamma.array()).colwise() - dbeta.array())
             .colwise() *
         k.array();
  }
};

enum class BnPass { train_forward, backward, eval_forward };

void batch_norm(benchmark::State& state, BnPass pass) {
  const Index rows = state.range(0), cols = state.range(1);
  const Mat x = random_matrix(rows, cols, 1, 2.f);
  const Mat dy = random_matrix(rows, cols, 2);
  dropnet::BatchNorm<float> layer(rows);
  PlainBatchNorm plain(rows);
  // One training forward on both sides first: it fills the caches backward reads and moves the
  // running statistics eval reads.
  plain.forward_train(x);
  if (!same(state, layer.forward(x, Mode::train, nullptr), plain.y, "train forward")) return;
  const Work items = Work::items(double(x.size()));
  if (pass == BnPass::backward) {
    auto plain_backward = [&] {
      plain.backward(dy);
      benchmark::DoNotOptimize(plain.dx.data());
    };
    plain_backward();
    if (!same(state, layer.backward(dy, true), plain.dx, "backward")) return;
    paired(
        state, "eigen", [&] { benchmark::DoNotOptimize(layer.backward(dy, true).data()); },
        plain_backward, items);
    return;
  }
  const Mode mode = pass == BnPass::train_forward ? Mode::train : Mode::eval;
  auto plain_forward = [&] {
    if (mode == Mode::train)
      plain.forward_train(x);
    else
      plain.forward_eval(x);
    benchmark::DoNotOptimize(plain.y.data());
  };
  plain_forward();
  if (!same(state, layer.forward(x, mode, nullptr), plain.y, "forward")) return;
  paired(
      state, "eigen", [&] { benchmark::DoNotOptimize(layer.forward(x, mode, nullptr).data()); },
      plain_forward, items);
}

}  // namespace

void register_batch_norm() {
  for (const auto& [name, pass] :
       {std::pair<const char*, BnPass>{"batch_norm/train_forward", BnPass::train_forward},
        {"batch_norm/backward", BnPass::backward},
        {"batch_norm/eval_forward", BnPass::eval_forward}}) {
    benchmark::RegisterBenchmark(name, batch_norm, pass)
        ->ArgNames({"rows", "batch"})
        ->Args({512, 128})
        ->Args({256, 128})
        ->UseManualTime();
  }
}

}  // namespace bench::kernels
