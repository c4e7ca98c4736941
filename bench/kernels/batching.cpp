// fit's batch gather (training/batching.hpp, gather_into) on W1's shape: 64 columns of 784 floats
// drawn in a shuffled order from a training set of 50,000 (157 MB, as Fashion-MNIST), against
// the plain Eigen column copy it replaced (the same loop without the cache hints, always on one
// thread; gather_into splits the columns between threads as fit does). Each call gathers the
// next batch of the order, so every column comes from memory, as in an epoch.

#include <algorithm>
#include <numeric>
#include <random>
#include <vector>

#include "kernels.hpp"

namespace bench::kernels {
namespace {

void gather(benchmark::State& state) {
  Eigen::setNbThreads(static_cast<int>(state.range(0)));
  const Index features = 784, batch = 64, samples = short_mode() ? 2000 : 50000;
  const Mat x = Mat::NullaryExpr(features, samples, [](Index i, Index j) {
    return static_cast<float>((i * 7 + j * 13) % 1009);
  });
  // Each contender walks its own shuffled order: columns one of them just fetched are no more
  // likely to be cached for the other (a shared order hands the second one warm columns).
  const auto shuffled = [&](unsigned seed) {
    std::vector<Index> order(static_cast<std::size_t>(samples));
    std::iota(order.begin(), order.end(), Index{0});
    std::shuffle(order.begin(), order.end(), std::mt19937(seed));
    return order;
  };
  const std::vector<Index> our_order = shuffled(5), their_order = shuffled(6);
  const Index batches = samples / batch;
  const auto next_batch = [&](const std::vector<Index>& order, Index& next) {  // cycling
    const Index* first = order.data() + (next % batches) * batch;
    ++next;
    return first;
  };
  Mat ours, theirs(features, batch);
  Index our_next = 0, their_next = 0;
  const auto plain = [&](const Index* index) {
    for (Index j = 0; j < batch; ++j) theirs.col(j) = x.col(index[j]);
  };
  dropnet::detail::gather_into(x, our_order.data(), batch, ours);
  plain(our_order.data());
  if (!same(state, ours, theirs, "gathered batch", 0.0)) return;
  paired(
      state, "eigen",
      [&] { dropnet::detail::gather_into(x, next_batch(our_order, our_next), batch, ours); },
      [&] { plain(next_batch(their_order, their_next)); }, Work::items(double(batch)));
}

}  // namespace

void register_gather() {
  benchmark::RegisterBenchmark("gather/W1_batch64", gather)
      ->ArgNames({"threads"})
      ->Arg(1)
      ->Arg(2)
      ->UseManualTime();
}

}  // namespace bench::kernels
