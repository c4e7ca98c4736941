#pragma once
// DataParallel<T>: what fit does differently when FitOptions::communicator is set (see
// docs/distributed.md). Every rank holds the whole dataset and calls fit with the same arguments.
//
//   start    the ranks check that their models, optimizers and fit arguments describe the same
//            computation (else InvalidArgument on every rank, naming the first difference), then
//            rank 0's parameters, buffers and optimizer state are copied to every rank, and
//            every rank draws one number from its Generator: rank 0's is the run's seed.
//   data     every epoch, every rank draws the same permutation from (seed, epoch); a global
//            batch is batch_size x world size samples, and rank r takes its r-th slice of
//            batch_size. The last, shorter global batch is split as evenly as the ranks allow
//            (a tail of fewer samples than ranks leaves ranks empty: they join with a count of 0).
//   step     forward and backward on the rank's slice; an allreduce of seven scalars (the
//            slice's size and its square, loss and correct count, the failure, skip and stop
//            flags). The gradients are weighted by the slice's size, unless every slice has the
//            same size (every global batch but the tail): then the sum over the ranks is
//            divided by the world size. With an elementwise optimizer (every built-in one) the
//            step is sharded (ZeRO stage 1): a reduce-scatter gives rank r the sum of its
//            1/size() share of the gradients, its optimizer updates that share only, and an
//            allgather of the values gives every rank the whole model (the bytes of one
//            allreduce, 1/size() of the update); both work in place in the layers' gradients
//            and parameters (Communicator's runs), nothing is packed. The gradients outside the
//            rank's share are then left unspecified. Otherwise the gradients are packed into
//            one allreduce, and every rank makes the whole update. The optimizer state is
//            gathered at the end of each epoch (synchronize_optimizer).
//   masks    dropout and noise masks come from rank_generator(seed, rank).
//   errors   an exception on one rank becomes an exception on every rank (agree_on_failure);
//            a non-finite skip or stop on one rank is a skip or stop on every rank (a stop copies
//            the state restored by the lowest stopping rank to the others).
//   epoch    the buffers (BatchNorm's running statistics) are averaged across ranks, so that
//            evaluation and checkpoints see one model; each rank validates its slice of the
//            validation set and the sums are reduced.
// A world of one (SingleProcess) reduces nothing: the step is train_step's.
//
// Sharded inference, at the end of this header: predict(model, x, comm), evaluate(model, loss,
// x, y, comm) and mc_predict(model, x, passes, gen, comm) split x's columns across the ranks as
// a batch is split, and every rank returns the whole result.

#include <algorithm>
#include <cmath>
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
#include "mc_dropout.hpp"
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

/// Collective: throws InvalidArgument on every rank, prefixed by `where`, unless every rank's
/// `lines` equal rank 0's (the message names the first difference).
inline void require_same_on_every_rank(distributed::Communicator& comm, const std::string& where,
                                       const std::vector<std::string>& lines) {
  const std::string difference = first_difference_from_root(comm, lines);
  if (!difference.empty()) throw InvalidArgument(where + ": " + difference);
}

/// One line per tensor of the model ("0.Dense.weight 8x4"): what must agree across ranks.
template <class T>
std::vector<std::string> describe_tensors(const ModelState<T>& state) {
  std::vector<std::string> lines;
  for (const auto& t : state.tensors()) lines.push_back(concat(t.name, " ", t.rows, "x", t.cols));
  return lines;
}

/// Rank `rank`'s slice (first, count) of the `count` samples from `first`, split over `ranks`
/// into consecutive slices, in rank order, whose sizes differ by at most one.
inline std::pair<Index, Index> shard_of(Index first, Index count, Index rank, Index ranks) {
  const Index base = count / ranks, extra = count % ranks;
  return {first + rank * base + std::min(rank, extra), base + (rank < extra ? 1 : 0)};
}

/// The sizes of the `ranks` shares of n scalars laid end to end (shard_of), in rank order: the
/// counts of the sharded step's reduce-scatter and allgather.
inline std::vector<std::size_t> share_counts(Index n, int ranks) {
  std::vector<std::size_t> counts;
  counts.reserve(static_cast<std::size_t>(ranks));
  for (int r = 0; r < ranks; ++r)
    counts.push_back(static_cast<std::size_t>(shard_of(0, n, r, ranks).second));
  return counts;
}

/// Every parameter's `member` array (&ParameterView::value or ::grad) as a run, in the state's
/// order: the parameters laid end to end for Communicator's in-place collectives.
template <class T>
std::vector<distributed::Run<T>> parameter_runs(const ModelState<T>& state,
                                                T* ParameterView<T>::*member) {
  std::vector<distributed::Run<T>> runs;
  runs.reserve(state.parameters().size());
  for (const ParameterView<T>& p : state.parameters())
    runs.push_back({p.*member, static_cast<std::size_t>(p.size())});
  return runs;
}

/// Collective: every rank draws one number from its `gen`; rank 0's is returned on every rank.
inline std::uint64_t shared_seed(distributed::Communicator& comm, Generator& gen) {
  std::uint64_t seed = gen.next_u64();
  comm.broadcast(&seed, sizeof seed, 0);
  return seed;
}

/// Collective: `all` becomes rows x samples (a Vector: samples, rows == 1) holding every rank's
/// columns; this rank's, `mine` (rows x count), go to the columns from `first`.
template <class Dense>
void gather_columns(distributed::Communicator& comm, const Dense& mine, Index first, Index count,
                    Index rows, Index samples, Dense& all) {
  using T = typename Dense::Scalar;
  if constexpr (Dense::ColsAtCompileTime == 1)
    all.resize(samples);
  else
    all.resize(rows, samples);
  if (count > 0)
    Eigen::Map<Matrix<T>>(all.data(), rows, samples).middleCols(first, count) =
        Eigen::Map<const Matrix<T>>(mine.data(), rows, count);
  // Column-major: rank r's columns are one block, right after ranks 0 .. r-1's.
  std::vector<std::size_t> bytes(static_cast<std::size_t>(comm.size()));
  for (int r = 0; r < comm.size(); ++r)
    bytes[static_cast<std::size_t>(r)] =
        sizeof(T) * static_cast<std::size_t>(rows * shard_of(0, samples, r, comm.size()).second);
  comm.allgather(all.data(), bytes.data());
}

/// Collective: the largest `rows` over the ranks (a rank without samples knows no output size).
inline Index max_over_ranks(distributed::Communicator& comm, Index rows) {
  double value = static_cast<double>(rows);
  comm.allreduce(&value, 1, distributed::ReduceOp::max);
  return static_cast<Index>(value);
}

/// Collective opening of a sharded inference call (predict, evaluate, mc_predict over a
/// communicator): `check` runs on every rank (an exception on one ends every rank), then the
/// ranks must agree on the model's tensors and `layout` (InvalidArgument on every rank
/// otherwise). Returns this rank's slice (first, count) of the `samples` columns.
template <class T, class Check>
std::pair<Index, Index> open_sharded(distributed::Communicator& comm, const std::string& where,
                                     Sequential<T>& model, Index samples,
                                     const std::vector<std::string>& layout, Check&& check) {
  distributed::collectively(&comm, where, [&] {
    require(samples > 0, where, "empty input (0 columns)");
    check();
  });
  std::vector<std::string> lines = describe_tensors(ModelState<T>(model));
  lines.insert(lines.end(), layout.begin(), layout.end());
  require_same_on_every_rank(comm, where + " (distributed): the ranks' models or inputs differ", lines);
  return shard_of(0, samples, comm.rank(), comm.size());
}

/// Collective: evaluate with every rank evaluating its `slice` of (x, y), the sums reduced: the
/// whole set's loss and accuracy on every rank. An exception on one rank ends every rank.
template <class T, class Target>
Evaluation sharded_evaluate(distributed::Communicator& comm, const std::string& where,
                            Sequential<T>& model, const Loss<T>& loss, const MatrixView<T>& x,
                            const Target& y, Index batch_size, std::pair<Index, Index> slice) {
  const Index first = slice.first, count = slice.second;  // (a lambda cannot capture a binding)
  double sums[3] = {0.0, 0.0, static_cast<double>(count)};  // loss x count, correct, count
  distributed::collectively(&comm, where, [&] {
    if (count == 0) return;
    Target slice_y;
    slice_into(y, first, count, slice_y);
    const Evaluation e =
        detail::evaluate<T, Target>(model, loss, x.middleCols(first, count), slice_y, batch_size);
    sums[0] = e.loss * sums[2];
    sums[1] = std::round(e.accuracy * sums[2]);  // the correct count, an integer
  });
  comm.allreduce(sums, 3, distributed::ReduceOp::sum);
  return {sums[0] / sums[2], sums[1] / sums[2]};
}

}  // namespace detail

/// The Generator of rank `rank` in a distributed run seeded `seed` (rank 0's draw): its dropout,
/// DropConnect and noise masks, keyed by (seed, rank). fit's steps and the distributed
/// mc_predict use it; given the seed, any process can reproduce a rank's masks.
inline Generator rank_generator(std::uint64_t seed, int rank) {
  return Generator(
      detail::mix_seed(seed ^ detail::mix_seed(static_cast<std::uint64_t>(rank) + 1)));
}

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
    detail::require_same_on_every_rank(
        comm_, "fit (distributed): the ranks' models, optimizers or data differ", lines);
    broadcast_state(0);
    seed_ = detail::shared_seed(comm_, gen);
    local_gen_ = rank_generator(seed_, comm_.rank());
    if (comm_.size() > 1 && optimizer_.is_elementwise() && state_slots() >= 0) shard_optimizer();
  }
  DataParallel(const DataParallel&) = delete;             ///< it narrows the optimizer once
  DataParallel& operator=(const DataParallel&) = delete;  ///< it narrows the optimizer once
  /// Gives the optimizer back its whole range (a sharded step narrows it to this rank's share).
  ~DataParallel() {
    if (sharded_) optimizer_.restrict_step(0, state_.gradient_count());
  }

  /// True when each rank updates only its share of the parameters (see the file comment):
  /// on more than one rank with an elementwise optimizer (Optimizer::is_elementwise).
  bool sharded() const { return sharded_; }

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
    return detail::shard_of(first, count, comm_.rank(), comm_.size());
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
    const double count = contributes ? static_cast<double>(local_count) : 0.0;
    // The scalars first (in double: the counts and their squares stay exact), so that a failure,
    // skip or stop is known before the gradients move.
    double tail[kTail] = {count,
                          count * count,
                          contributes ? local.loss * static_cast<double>(local_count) : 0.0,
                          contributes ? static_cast<double>(local.correct) : 0.0,
                          error ? 1.0 : 0.0,
                          local.action == NonFiniteAction::skip ? 1.0 : 0.0,
                          local.action == NonFiniteAction::stop ? 1.0 : 0.0};
    comm_.allreduce(tail, kTail, distributed::ReduceOp::sum);

    StepResult global;
    if (tail[4] > 0) distributed::agree_on_failure(comm_, error, "fit");
    if (tail[6] > 0) {
      // The stopping rank(s) put back the last good state; the lowest one's becomes everyone's.
      synchronize_optimizer();
      broadcast_state(distributed::lowest_rank_where(comm_, local.action == NonFiniteAction::stop));
      global.action = NonFiniteAction::stop;
      return global;
    }
    if (tail[5] > 0) {
      global.action = NonFiniteAction::skip;
      return global;
    }
    // The mean over the global batch: sum_r m_r g_r / M, or, when every m_r is the same
    // (size() x sum m_r^2 == M^2, exact in double), sum_r g_r / size(), which spares the
    // weighting pass.
    const bool equal = static_cast<double>(comm_.size()) * tail[1] == tail[0] * tail[0];
    const T weight = equal ? T(1) : static_cast<T>(count);
    const T scale = static_cast<T>((equal ? count : 1.0) / tail[0]);
    if (sharded_) {
      for (const distributed::Run<T>& run : gradient_runs_) {  // a rank without samples adds 0
        Eigen::Map<Vector<T>> grad(run.data, to_index(run.size));
        if (!contributes) grad.setZero();
        else if (weight != T(1)) grad *= weight;
      }
      update_share(scale, options);
    } else {
      const Index n = state_.gradient_count();
      reduced_.resize(n);
      if (contributes)
        state_.pack_gradients(reduced_.data(), weight);
      else
        reduced_.setZero();
      comm_.allreduce(reduced_.data(), static_cast<std::size_t>(n), distributed::ReduceOp::sum);
      state_.unpack_gradients(reduced_.data(), scale);
      apply_gradients(model_, optimizer_, options);
    }
    global.loss = tail[2] / tail[0];
    global.correct = static_cast<Index>(tail[3]);
    return global;
  }

  /// Collective: after sharded steps each rank's optimizer state is current on its share only;
  /// this copies every share to every rank (one allgather per state vector of a parameter), so
  /// that the optimizer can be saved, broadcast or used alone. fit calls it at the end of each
  /// epoch. Nothing to do unless sharded().
  void synchronize_optimizer() {
    if (!sharded_) return;
    const std::vector<Vector<T>*> state = optimizer_.state();
    const auto slots = static_cast<std::size_t>(state_slots());
    for (std::size_t slot = 0; slot < slots; ++slot) {
      std::vector<distributed::Run<T>> runs;  // the slot's vectors, laid out as the parameters
      for (std::size_t k = slot; k < state.size(); k += slots)
        runs.push_back({state[k]->data(), static_cast<std::size_t>(state[k]->size())});
      comm_.allgather(runs.data(), runs.size(), share_counts_.data());
    }
  }

  /// Collective: the Evaluation of (x, y) with each rank evaluating its slice (as shard()
  /// splits a batch): the whole set's loss and accuracy, the same on every rank.
  template <class Target>
  Evaluation evaluate(const Loss<T>& loss, const MatrixView<T>& x, const Target& y, Index batch_size) {
    if (comm_.size() == 1) return dropnet::evaluate(model_, loss, x, y, batch_size);
    return detail::sharded_evaluate(comm_, "fit (validation)", model_, loss, x, y, batch_size,
                                    shard(0, x.cols()));
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
  // count, count squared, loss sum, correct, failed, skipped, stopped
  static constexpr std::size_t kTail = 7;

  static Index to_index(std::size_t n) { return static_cast<Index>(n); }

  // The optimizer's state vectors per parameter (state() lists them parameter by parameter,
  // each of the parameter's size, as every built-in optimizer does), or -1 when they are laid
  // out otherwise: then the state cannot be split by shares and the step is not sharded.
  int state_slots() const {
    const std::vector<Vector<T>*> state = optimizer_.state();
    const ParameterList<T>& params = state_.parameters();
    if (state.size() % params.size() != 0) return -1;
    const std::size_t slots = state.size() / params.size();
    for (std::size_t k = 0; k < state.size(); ++k)
      if (state[k]->size() != params[k / slots].size()) return -1;
    return static_cast<int>(slots);
  }

  // ZeRO stage 1: rank r owns the r-th of size() consecutive shares of the parameters laid end
  // to end (sizes differing by at most one element); its optimizer updates that share only.
  void shard_optimizer() {
    const Index n = state_.gradient_count();
    share_counts_ = detail::share_counts(n, comm_.size());
    gradient_runs_ = detail::parameter_runs(state_, &ParameterView<T>::grad);
    value_runs_ = detail::parameter_runs(state_, &ParameterView<T>::value);
    const auto [begin, count] = detail::shard_of(0, n, comm_.rank(), comm_.size());
    share_begin_ = begin;
    share_end_ = begin + count;
    share_ = pieces(share_begin_, share_end_);
    optimizer_.restrict_step(share_begin_, share_end_);
    sharded_ = true;
  }

  // The elements [begin, end) of the parameters laid end to end, as views of the pieces of the
  // parameters the range cuts across (each piece a column).
  ParameterList<T> pieces(Index begin, Index end) const {
    ParameterList<T> list;
    for (const ParameterSegment& s : segments_of(state_.parameters(), begin, end)) {
      ParameterView<T> piece = state_.parameters()[s.parameter];
      piece.value += s.offset;
      piece.grad += s.offset;
      piece.rows = s.length;
      piece.cols = 1;
      list.push_back(piece);
    }
    return list;
  }

  // The sharded update, from the weighted gradients: a reduce-scatter in place in the layers'
  // gradients gives this rank the sum over the ranks of its share, scaled into the mean in the
  // same pass, which it clips (by norm: the sum of squares over all shares) and steps; an
  // allgather in place in the layers' parameters gives every rank every share. Same bytes as
  // one allreduce, 1/size() of the optimizer's work, and no copy besides the messages.
  void update_share(T scale, const StepOptions<T>& options) {
    comm_.reduce_scatter(gradient_runs_.data(), gradient_runs_.size(), share_counts_.data(),
                         distributed::ReduceOp::sum, scale);
    detail::clip_and_step(optimizer_, share_, options, [&](double sum) {
      comm_.allreduce(&sum, 1, distributed::ReduceOp::sum);
      return sum;
    });
    comm_.allgather(value_runs_.data(), value_runs_.size(), share_counts_.data());
    model_.apply_constraints();
  }

  // One line per tensor and per optimizer state vector: what must agree across ranks.
  std::vector<std::string> describe() const {
    std::vector<std::string> lines = detail::describe_tensors(state_);
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
  Vector<T> reduced_;  // the unsharded step's allreduce buffer: the weighted gradients, packed
  bool sharded_ = false;
  Index share_begin_ = 0, share_end_ = 0;                // this rank's share, in pack order
  ParameterList<T> share_;                               // this rank's share, as pieces of parameters
  std::vector<std::size_t> share_counts_;                // every rank's share, in scalars
  std::vector<distributed::Run<T>> gradient_runs_, value_runs_;  // every parameter's, in order
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

/// Collective, the sharded predict: every rank of `comm` calls it with the same model and x;
/// rank r computes the outputs of its slice of x's columns (consecutive slices in rank order,
/// sizes differing by at most one: any number of columns >= 1 works, ranks beyond it idle), and
/// every rank returns the outputs of all columns, as predict(model, x, batch_size) would within
/// rounding. Every rank must hold the same parameters (after a distributed fit they do).
/// Throws what predict throws, on every rank (RemoteError on the ranks that did not fail), and
/// InvalidArgument on every rank when the ranks' models (tensor names, shapes) or x's shape
/// differ.
template <class T>
Matrix<T> predict(Sequential<T>& model, const detail::ViewArg<T>& x, distributed::Communicator& comm,
                  Index batch_size = 1024) {
  const std::pair<Index, Index> slice = detail::open_sharded(
      comm, "predict", model, x.cols(),
      {detail::concat("predict ", x.rows(), "x", x.cols(), " batch_size ", batch_size)}, [] {});
  const Index first = slice.first, count = slice.second;  // (a lambda cannot capture a binding)
  Matrix<T> local, out;
  distributed::collectively(&comm, "predict", [&] {
    if (count > 0) local = predict(model, x.middleCols(first, count), batch_size);
  });
  detail::gather_columns(comm, local, first, count, detail::max_over_ranks(comm, local.rows()),
                         x.cols(), out);
  return out;
}

/// Collective, the sharded evaluate: every rank of `comm` calls it with the same model, loss,
/// x and y; rank r evaluates its slice of the columns (split as the sharded predict splits
/// them) and the sums are reduced, so every rank returns the Evaluation of the whole set:
/// evaluate(model, loss, x, y, batch_size)'s within rounding (the accuracy exactly). Throws what
/// evaluate throws, on every rank, and InvalidArgument on every rank when the ranks' models or
/// data shapes differ.
template <class T, class Target>
Evaluation evaluate(Sequential<T>& model, const Loss<T>& loss, const detail::ViewArg<T>& x,
                    const Target& y, distributed::Communicator& comm, Index batch_size = 1024) {
  if constexpr (detail::require_target_type<T, Target>()) {
    const std::pair<Index, Index> slice = detail::open_sharded(
        comm, "evaluate", model, x.cols(),
        {detail::concat("evaluate ", x.rows(), "x", x.cols(), " batch_size ", batch_size)},
        [&] { detail::require_dataset("evaluate", x, y); });
    return detail::sharded_evaluate(comm, "evaluate", model, loss, MatrixView<T>(x), y, batch_size,
                                    slice);
  } else {
    return {};
  }
}

/// Collective, the sharded mc_predict: every rank of `comm` calls it with the same model, x,
/// passes and options; rank r runs the `passes` stochastic passes over its slice of the columns
/// (split as the sharded predict splits them) with rank_generator(seed, r), seed being rank 0's
/// draw from `gen` (every rank draws one number from its own `gen`), and every rank returns the
/// McPrediction of all columns. It is exactly, bit for bit, the concatenation over r of
/// mc_predict(model, slice r of x, passes, rank_generator(seed, r), options): reproducible
/// from rank 0's Generator and the world size, and not the single-process draw (other masks),
/// which it matches in distribution. Throws what mc_predict throws, on every rank, and
/// InvalidArgument on every rank when the ranks' models, x's shape, passes or options differ.
template <class T>
McPrediction<T> mc_predict(Sequential<T>& model, const detail::ViewArg<T>& x, int passes,
                           Generator& gen, distributed::Communicator& comm,
                           const McDropoutOptions& options = {}) {
  const std::pair<Index, Index> slice = detail::open_sharded(
      comm, "mc_predict", model, x.cols(),
      {detail::concat("mc_predict ", x.rows(), "x", x.cols(), " passes ", passes, " batch_size ",
                      options.batch_size, " outputs ", static_cast<int>(options.outputs))},
      [] {});
  const Index first = slice.first, count = slice.second;
  Generator local_gen = rank_generator(detail::shared_seed(comm, gen), comm.rank());
  McPrediction<T> local, out;
  distributed::collectively(&comm, "mc_predict", [&] {
    if (count > 0)
      local = mc_predict(model, Matrix<T>(x.middleCols(first, count)), passes, local_gen, options);
  });
  const Index rows = detail::max_over_ranks(comm, local.mean.rows()), samples = x.cols();
  auto gather = [&](const auto& mine, auto& all, Index field_rows) {
    detail::gather_columns(comm, mine, first, count, field_rows, samples, all);
  };
  out.passes = passes;
  gather(local.mean, out.mean, rows);
  gather(local.variance, out.variance, rows);
  if (options.outputs != McOutputs::regression) {
    gather(local.probabilities, out.probabilities, rows);
    gather(local.predictive_entropy, out.predictive_entropy, 1);
    gather(local.expected_entropy, out.expected_entropy, 1);
    gather(local.mutual_information, out.mutual_information, 1);
  }
  return out;
}

}  // namespace dropnet
