#pragma once
// DataParallel<T>: what fit does differently when FitOptions::communicator is set (see
// docs/distributed.md). Every rank holds the whole dataset and calls fit with the same arguments.
//
//   start    the ranks check that their models, optimizers and fit arguments describe the same
//            computation (else InvalidArgument on every rank, naming the first difference), then
//            rank 0's parameters, buffers and optimizer state are copied to every rank, and rank
//            0's Generator gives the run its seed (one draw).
//   data     every epoch, every rank draws the same permutation from (seed, epoch); a global
//            batch is batch_size x world size samples, and rank r takes its r-th slice of
//            batch_size. The last, shorter global batch is split as evenly as the ranks allow
//            (a tail of fewer samples than ranks leaves ranks empty: they join with a count of 0).
//   step     forward and backward on the rank's slice, then ONE allreduce of the packed
//            gradients weighted by the slice's size, with the loss, the correct count and the
//            ranks' failure, skip and stop flags appended; every rank then makes the same update.
//   masks    dropout and noise masks come from a Generator keyed by (seed, rank).
//   errors   an exception on one rank becomes an exception on every rank (agree_on_failure);
//            a non-finite skip or stop on one rank is a skip or stop on every rank (a stop copies
//            the state restored by the lowest stopping rank to the others).
//   epoch    the buffers (BatchNorm's running statistics) are averaged across ranks, so that
//            evaluation and checkpoints see one model; each rank validates its slice of the
//            validation set and the sums are reduced.
// A world of one (SingleProcess) reduces nothing: the step is train_step's.

#include <cstdint>
#include <cstring>
#include <exception>
#include <string>
#include <utility>
#include <vector>

#include "../distributed/communicator.hpp"
#include "../layers/batch_norm.hpp"
#include "../model/model_state.hpp"
#include "batching.hpp"
#include "evaluate.hpp"
#include "train_step.hpp"

namespace dropnet {

namespace detail {

/// SplitMix64's finalizer: a bijective 64-bit mix, to derive independent seeds.
inline std::uint64_t mix_seed(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

/// FNV-1a over `size` bytes, continuing from `hash`.
inline std::uint64_t fnv1a(const void* data, std::size_t size,
                           std::uint64_t hash = 0xCBF29CE484222325ULL) {
  const auto* bytes = static_cast<const unsigned char*>(data);
  for (std::size_t i = 0; i < size; ++i) hash = (hash ^ bytes[i]) * 0x100000001B3ULL;
  return hash;
}

/// True when `hash` is the same on every rank (two allreduces of its 32-bit halves, exact in
/// double).
inline bool same_on_every_rank(distributed::Communicator& comm, std::uint64_t hash) {
  double low[2] = {static_cast<double>(hash & 0xFFFFFFFFULL), static_cast<double>(hash >> 32)};
  double high[2] = {low[0], low[1]};
  comm.allreduce(low, 2, distributed::ReduceOp::min);
  comm.allreduce(high, 2, distributed::ReduceOp::max);
  return low[0] == high[0] && low[1] == high[1];
}

/// Every rank's line of `lines` that first differs from rank 0's, or "" when all agree.
inline std::string first_difference_from_root(distributed::Communicator& comm,
                                              const std::vector<std::string>& lines) {
  std::string mine;
  for (const auto& line : lines) mine += line + '\n';
  if (same_on_every_rank(comm, fnv1a(mine.data(), mine.size()))) return {};
  std::string root = mine;
  distributed::broadcast_string(comm, root, 0);
  std::size_t i = 0;
  std::size_t start = 0;
  for (; i < lines.size(); ++i) {
    const std::string line = lines[i] + '\n';
    if (root.compare(start, line.size(), line) != 0) break;
    start += line.size();
  }
  const std::size_t end = root.find('\n', start);
  const std::string theirs = start < root.size() ? root.substr(start, end - start) : "(nothing)";
  const std::string ours = i < lines.size() ? lines[i] : "(nothing)";
  if (theirs == ours && mine == root) return "another rank differs from rank 0";
  return concat("rank 0 has '", theirs, "', rank ", comm.rank(), " has '", ours, "'");
}

}  // namespace detail

/// Data-parallel training state of one rank; see the file comment. fit builds it when
/// FitOptions::communicator is set; a custom loop may use it the same way.
template <class T>
class DataParallel {
 public:
  /// Collective. Checks that every rank describes the same model, optimizer and `layout` (a
  /// description of the run, e.g. the dataset's shape and the batch size), throwing
  /// InvalidArgument on every rank if not; then copies rank 0's state and seed to every rank.
  DataParallel(distributed::Communicator& comm, Sequential<T>& model, Optimizer<T>& optimizer,
               Generator& gen, const std::vector<std::string>& layout)
      : comm_(comm), model_(model), optimizer_(optimizer), state_(model) {
    std::vector<std::string> lines = describe();
    lines.insert(lines.end(), layout.begin(), layout.end());
    const std::string difference = detail::first_difference_from_root(comm_, lines);
    if (!difference.empty())
      throw InvalidArgument("fit (distributed): the ranks' models, optimizers or data differ: " +
                            difference);
    broadcast_state(0);
    if (comm_.is_root()) seed_ = gen.next_u64();
    comm_.broadcast(&seed_, sizeof seed_, 0);
    local_gen_.reseed(detail::mix_seed(seed_ ^ detail::mix_seed(static_cast<std::uint64_t>(comm_.rank()) + 1)));
  }

  /// The communicator.
  distributed::Communicator& communicator() const { return comm_; }
  /// The run's seed (rank 0's draw), the same on every rank.
  std::uint64_t seed() const { return seed_; }
  /// This rank's Generator for masks and noise, keyed by (seed, rank).
  Generator& generator() { return local_gen_; }
  /// Samples in a global batch: `batch_size` per rank.
  Index global_batch(Index batch_size) const { return batch_size * comm_.size(); }

  /// `order` becomes the epoch's permutation of 0..size-1, the same on every rank.
  void shuffle(std::vector<Index>& order, int epoch) const {
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = static_cast<Index>(i);
    Generator epoch_gen(detail::mix_seed(seed_ + static_cast<std::uint64_t>(epoch) + 1));
    dropnet::shuffle(order.begin(), order.size(), epoch_gen);
  }

  /// This rank's slice (first, count) of the global batch (first, count): the rank-th of
  /// size() consecutive slices whose sizes differ by at most one (batch_size each in a full
  /// global batch).
  std::pair<Index, Index> shard(Index first, Index count) const {
    const Index ranks = comm_.size(), rank = comm_.rank();
    const Index base = count / ranks, extra = count % ranks;
    return {first + rank * base + std::min(rank, extra), base + (rank < extra ? 1 : 0)};
  }

  /// The smallest non-empty slice of `samples` in global batches of batch_size x `world`.
  static Index smallest_shard(Index samples, Index batch_size, int world) {
    const Index tail = samples % (batch_size * world);
    return tail == 0 ? std::min(samples, batch_size) : std::max<Index>(tail / world, 1);
  }
  /// True when the tail is shorter than the world, so that some rank gets no sample.
  static bool has_idle_rank(Index samples, Index batch_size, int world) {
    const Index tail = samples % (batch_size * world);
    return tail != 0 && tail < world;
  }

  /// Throws InvalidArgument when a synchronized BatchNorm would wait for a rank that sits out
  /// the tail (has_idle_rank): every rank must run its collectives.
  static void require_no_idle_synced_layer(Sequential<T>& model, bool idle_rank) {
    if (!idle_rank) return;
    for (Index i = 0; i < model.size(); ++i) {
      auto* bn = dynamic_cast<BatchNorm<T>*>(&model.layer(i));
      detail::require(!bn || !bn->communicator(), "fit (distributed)", "layer ", i, " ", model.layer(i).name(),
                      " is synchronized, but the last global batch has fewer samples than ranks: "
                      "change batch_size or drop samples so that every rank gets one");
    }
  }

  /// Collective: one training step on this rank's slice (`local_count` samples, 0 for none),
  /// then the weighted allreduce and the update. Returns the global result: the loss as the
  /// mean over the global batch, the correct count summed, the action agreed by all ranks.
  /// Throws on every rank when any rank's step throws.
  template <class Target>
  StepResult step(const Loss<T>& loss, const Matrix<T>& batch_x, const Target& batch_y,
                  Index local_count, const StepOptions<T>& options) {
    StepResult local;
    std::exception_ptr error;
    if (local_count > 0) {
      try {
        local = compute_gradients(model_, loss, batch_x, batch_y, local_gen_, options);
      } catch (...) {
        error = std::current_exception();
      }
    }
    if (comm_.size() == 1) {  // nothing to reduce: train_step's path
      if (error) std::rethrow_exception(error);
      if (local.action == NonFiniteAction::proceed) apply_gradients(model_, optimizer_, options);
      return local;
    }
    const bool contributes = local_count > 0 && !error && local.action == NonFiniteAction::proceed;
    // One pass packs the gradients, weighted by the slice's size, into the allreduce buffer;
    // the sum is reduced in place and one pass writes it back divided by the total count.
    const Index n = state_.gradient_count();
    reduced_.resize(n + kTail);
    if (contributes)
      state_.pack_gradients(reduced_.data(), static_cast<T>(local_count));
    else
      reduced_.head(n).setZero();
    reduced_.tail(kTail) << static_cast<T>(contributes ? local_count : 0),
        static_cast<T>(contributes ? local.loss * static_cast<double>(local_count) : 0.0),
        static_cast<T>(contributes ? local.correct : 0), flag(error != nullptr),
        flag(local.action == NonFiniteAction::skip), flag(local.action == NonFiniteAction::stop);
    comm_.allreduce(reduced_.data(), static_cast<std::size_t>(reduced_.size()),
                    distributed::ReduceOp::sum);

    StepResult global;
    if (reduced_(n + 3) > 0) distributed::agree_on_failure(comm_, error, "fit");
    if (reduced_(n + 5) > 0) {
      // The stopping rank(s) put back the last good state; the lowest one's becomes everyone's.
      broadcast_state(distributed::lowest_rank_where(comm_, local.action == NonFiniteAction::stop));
      global.action = NonFiniteAction::stop;
      return global;
    }
    if (reduced_(n + 4) > 0) {
      global.action = NonFiniteAction::skip;
      return global;
    }
    const T total = reduced_(n);
    state_.unpack_gradients(reduced_.data(), T(1) / total);
    apply_gradients(model_, optimizer_, options);
    global.loss = static_cast<double>(reduced_(n + 1)) / static_cast<double>(total);
    global.correct = static_cast<Index>(reduced_(n + 2));
    return global;
  }

  /// Collective: the Evaluation of (x, y) with each rank evaluating its slice (as shard()
  /// splits a batch): the whole set's loss and accuracy, the same on every rank.
  template <class Target>
  Evaluation evaluate(const Loss<T>& loss, const MatrixView<T>& x, const Target& y, Index batch_size) {
    if (comm_.size() == 1) return dropnet::evaluate(model_, loss, x, y, batch_size);
    const std::pair<Index, Index> slice = shard(0, x.cols());  // (a lambda cannot capture a binding)
    const Index first = slice.first, count = slice.second;
    double sums[3] = {0.0, 0.0, static_cast<double>(count)};  // loss x count, correct, count
    distributed::collectively(&comm_, "fit (validation)", [&] {
      if (count == 0) return;
      Target slice_y;
      detail::slice_into(y, first, count, slice_y);
      const MatrixView<T> slice_x = x.middleCols(first, count);  // a view: no copy
      const Evaluation e = dropnet::evaluate(model_, loss, slice_x, slice_y, batch_size);
      sums[0] = e.loss * sums[2];
      sums[1] = e.accuracy * sums[2];
    });
    comm_.allreduce(sums, 3, distributed::ReduceOp::sum);
    return {sums[0] / sums[2], sums[1] / sums[2]};
  }

  /// Collective: every buffer (BatchNorm's running statistics) becomes its mean over the ranks.
  void average_buffers() {
    if (comm_.size() == 1 || state_.buffers().empty()) return;
    for (const auto& b : state_.buffers()) {
      comm_.allreduce(b.value, static_cast<std::size_t>(b.size()), distributed::ReduceOp::sum);
      Eigen::Map<Vector<T>>(b.value, b.size()) /= static_cast<T>(comm_.size());
    }
  }

  /// Collective: copies the parameters, buffers and optimizer state of rank `root` to every rank.
  void broadcast_state(int root) {
    if (comm_.size() == 1) return;
    state_.pack_values(values_);
    comm_.broadcast(values_.data(), sizeof(T) * static_cast<std::size_t>(values_.size()), root);
    state_.unpack_values(values_);
    for (Vector<T>* s : optimizer_.state())
      comm_.broadcast(s->data(), sizeof(T) * static_cast<std::size_t>(s->size()), root);
    std::int64_t steps = optimizer_.step_count();
    comm_.broadcast(&steps, sizeof steps, root);
    optimizer_.set_step_count(steps);
  }

 private:
  static constexpr Index kTail = 6;  // count, loss sum, correct, failed, skipped, stopped
  static T flag(bool set) { return set ? T(1) : T(0); }

  // One line per tensor and per optimizer state vector: what must agree across ranks.
  std::vector<std::string> describe() const {
    std::vector<std::string> lines;
    for (const auto& t : state_.tensors())
      lines.push_back(detail::concat(t.name, " ", t.rows, "x", t.cols));
    lines.push_back("optimizer " + optimizer_.kind());
    for (Vector<T>* s : optimizer_.state()) lines.push_back(detail::concat("optimizer state ", s->size()));
    lines.push_back(detail::concat("scalar bytes ", sizeof(T)));
    return lines;
  }

  distributed::Communicator& comm_;
  Sequential<T>& model_;
  Optimizer<T>& optimizer_;
  ModelState<T> state_;
  std::uint64_t seed_ = 0;
  Generator local_gen_;
  Vector<T> values_;   // broadcast_state's buffer
  Vector<T> reduced_;  // the step's allreduce buffer: the weighted gradients, then kTail scalars
};

/// Collective: true when every rank's parameters and buffers are bit-identical (a checksum of
/// the packed values, compared across ranks): the debug check of data-parallel training.
template <class T>
bool replicas_identical(distributed::Communicator& comm, Sequential<T>& model) {
  Vector<T> values;
  ModelState<T>(model).pack_values(values);
  const std::uint64_t hash =
      detail::fnv1a(values.data(), sizeof(T) * static_cast<std::size_t>(values.size()));
  return detail::same_on_every_rank(comm, hash);
}

}  // namespace dropnet
