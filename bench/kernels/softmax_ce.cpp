// Softmax cross-entropy on 10 x batch logits: loss and gradient (training, batches 64 and 128)
// or loss only (validation, batch 1,000).

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>

#include "kernels.hpp"

namespace bench::kernels {
namespace {

using dropnet::Labels;

float plain_softmax_ce(const Mat& logits, const Labels& y, Mat& probs, Mat* grad) {
  const Index m = logits.cols();
  probs = (logits.rowwise() - logits.colwise().maxCoeff()).array().exp();
  probs.array().rowwise() /= probs.colwise().sum().array();
  float total = 0.f;
  for (Index j = 0; j < m; ++j) total -= std::log(probs(y(j), j));
  if (grad) {
    *grad = probs;
    for (Index j = 0; j < m; ++j) (*grad)(y(j), j) -= 1.f;
    *grad /= float(m);
  }
  return total / float(m);
}

void softmax_ce(benchmark::State& state, bool with_grad) {
  const Index classes = state.range(0), cols = state.range(1);
  const Mat logits = random_matrix(classes, cols, 1, 3.f);
  Labels y(cols);
  for (Index j = 0; j < cols; ++j) y(j) = static_cast<std::int32_t>((j * 7) % classes);
  const dropnet::SoftmaxCrossEntropy<float> loss;
  Mat grad, grad_ref, probs;
  const float l = loss.compute(logits, y, with_grad ? &grad : nullptr);
  const float l_ref = plain_softmax_ce(logits, y, probs, with_grad ? &grad_ref : nullptr);
  if (std::abs(l - l_ref) > 1e-4f * std::max(1.f, std::abs(l_ref))) {
    fail(state, "losses differ: " + std::to_string(l) + " vs " + std::to_string(l_ref));
    return;
  }
  if (with_grad && !same(state, grad, grad_ref, "gradient", 1e-5)) return;
  float sink = 0;
  paired(
      state, "eigen", [&] { sink += loss.compute(logits, y, with_grad ? &grad : nullptr); },
      [&] { sink += plain_softmax_ce(logits, y, probs, with_grad ? &grad_ref : nullptr); },
      Work::items(double(cols)));
  benchmark::DoNotOptimize(sink);
}

}  // namespace

void register_softmax_ce() {
  benchmark::RegisterBenchmark("softmax_ce/loss_and_grad", softmax_ce, true)
      ->ArgNames({"classes", "batch"})
      ->Args({10, 64})
      ->Args({10, 128})
      ->UseManualTime();
  benchmark::RegisterBenchmark("softmax_ce/loss_only", softmax_ce, false)
      ->ArgNames({"classes", "batch"})
      ->Args({10, 1000})
      ->UseManualTime();
}

}  // namespace bench::kernels
