#pragma once
// MpiCommunicator: dropnet's Communicator on MPI (Open MPI, MPICH: only the MPI standard is
// used). Optional: not included by <dropnet/dropnet.hpp>; link the CMake target dropnet::mpi
// (or, with pkg-config, add your MPI's flags yourself, e.g. `mpicxx` or `pkg-config ompi-cxx`).
//
//   int main(int argc, char** argv) {
//     dropnet::distributed::MpiEnvironment mpi(argc, argv);   // MPI_Init ... MPI_Finalize
//     dropnet::distributed::MpiCommunicator world;            // MPI_COMM_WORLD
//     options.communicator = &world;
//     fit(model, loss, optimizer, x, y, gen, options);        // same call on every rank
//   }
//   $ mpirun -np 2 ./train
//
// Reductions: Reduction::fast is MPI_Allreduce, whose summation order an MPI library may choose
// per call (and change with the message size or the topology). Reduction::ordered gathers every
// rank's vector on rank 0, sums it in rank order and broadcasts the sum: two runs with the same
// world size and seed are then bit-identical, at the cost of p-1 messages into rank 0.

#include <mpi.h>

#include <algorithm>
#include <cstddef>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "communicator.hpp"

namespace dropnet::distributed {

/// Initializes MPI on construction (unless already initialized) and finalizes it on
/// destruction (if it initialized it): one per program, in main.
class MpiEnvironment {
 public:
  /// MPI_Init_thread with MPI_THREAD_FUNNELED (dropnet calls MPI from the main thread only).
  MpiEnvironment(int& argc, char**& argv) {
    int initialized = 0;
    MPI_Initialized(&initialized);
    if (initialized) return;
    int provided = 0;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
    owns_ = true;
  }
  MpiEnvironment(const MpiEnvironment&) = delete;             ///< one per program
  MpiEnvironment& operator=(const MpiEnvironment&) = delete;  ///< one per program
  /// MPI_Finalize, if this object initialized MPI and nobody finalized it yet.
  ~MpiEnvironment() {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (owns_ && !finalized) MPI_Finalize();
  }

 private:
  bool owns_ = false;
};

/// How MpiCommunicator sums (see the file comment).
enum class Reduction {
  fast,    ///< MPI_Allreduce: the library's order, fastest
  ordered  ///< gather, sum in rank order, broadcast: bit-reproducible
};

/// A Communicator over an MPI communicator (MPI_COMM_WORLD by default), which it does not own.
class MpiCommunicator final : public Communicator {
 public:
  /// Uses `comm` (it must outlive this object) and sums as `reduction` says.
  explicit MpiCommunicator(MPI_Comm comm = MPI_COMM_WORLD, Reduction reduction = Reduction::fast)
      : comm_(comm), reduction_(reduction) {
    MPI_Comm_rank(comm_, &rank_);
    MPI_Comm_size(comm_, &size_);
  }

  /// This process's rank in the MPI communicator.
  int rank() const override { return rank_; }
  /// Number of processes in the MPI communicator.
  int size() const override { return size_; }
  /// MPI_Allreduce, or the ordered sum when reduction is ordered and op is sum.
  void allreduce(double* data, std::size_t n, ReduceOp op) override {
    reduce(data, n, op, MPI_DOUBLE);
  }
  /// As the double overload.
  void allreduce(float* data, std::size_t n, ReduceOp op) override { reduce(data, n, op, MPI_FLOAT); }
  /// MPI_Bcast of the bytes, in chunks below INT_MAX.
  void broadcast(void* data, std::size_t bytes, int root) override {
    auto* p = static_cast<char*>(data);
    for (std::size_t done = 0; done < bytes;) {
      const int chunk = count_of(bytes - done);
      MPI_Bcast(p + done, chunk, MPI_BYTE, root, comm_);
      done += static_cast<std::size_t>(chunk);
    }
  }
  /// The ring of ring_allgather over the one buffer; blocks beyond INT_MAX / 16 bytes take the
  /// base class's broadcasts instead.
  void allgather(void* data, const std::size_t* bytes) override {
    const Run<char> run{static_cast<char*>(data), total_of(bytes)};
    if (!ring_allgather(&run, 1, bytes, MPI_BYTE)) Communicator::allgather(data, bytes);
  }
  /// ring_allgather: every block received straight into the runs (packed through the base class
  /// when a block exceeds INT_MAX / 16 scalars).
  void allgather(const Run<double>* runs, std::size_t run_count, const std::size_t* counts) override {
    if (!ring_allgather(runs, run_count, counts, MPI_DOUBLE))
      Communicator::allgather(runs, run_count, counts);
  }
  /// As the double overload.
  void allgather(const Run<float>* runs, std::size_t run_count, const std::size_t* counts) override {
    if (!ring_allgather(runs, run_count, counts, MPI_FLOAT))
      Communicator::allgather(runs, run_count, counts);
  }
  /// The ring of ring_reduce_scatter over the one buffer (see there); the ordered sum of the
  /// whole buffer when reduction is ordered and op is sum, and the base class's allreduce when a
  /// block exceeds INT_MAX / 16 scalars.
  void reduce_scatter(double* data, const std::size_t* counts, ReduceOp op) override {
    const Run<double> run{data, total_of(counts)};
    if (!ring_reduce_scatter(&run, 1, counts, op, 1.0, MPI_DOUBLE))
      Communicator::reduce_scatter(data, counts, op);
  }
  /// As the double overload.
  void reduce_scatter(float* data, const std::size_t* counts, ReduceOp op) override {
    const Run<float> run{data, total_of(counts)};
    if (!ring_reduce_scatter(&run, 1, counts, op, 1.0f, MPI_FLOAT))
      Communicator::reduce_scatter(data, counts, op);
  }
  /// ring_reduce_scatter over the runs where they are; packed through the base class in the
  /// cases the one-buffer overload hands to it.
  void reduce_scatter(const Run<double>* runs, std::size_t run_count, const std::size_t* counts,
                      ReduceOp op, double scale) override {
    if (!ring_reduce_scatter(runs, run_count, counts, op, scale, MPI_DOUBLE))
      Communicator::reduce_scatter(runs, run_count, counts, op, scale);
  }
  /// As the double overload.
  void reduce_scatter(const Run<float>* runs, std::size_t run_count, const std::size_t* counts,
                      ReduceOp op, float scale) override {
    if (!ring_reduce_scatter(runs, run_count, counts, op, scale, MPI_FLOAT))
      Communicator::reduce_scatter(runs, run_count, counts, op, scale);
  }
  /// How this communicator sums.
  Reduction reduction() const { return reduction_; }

 private:
  static int count_of(std::size_t remaining) {
    const std::size_t most = static_cast<std::size_t>(std::numeric_limits<int>::max() / 16);
    return static_cast<int>(remaining < most ? remaining : most);
  }
  static MPI_Op mpi_op(ReduceOp op) {
    switch (op) {
      case ReduceOp::min: return MPI_MIN;
      case ReduceOp::max: return MPI_MAX;
      case ReduceOp::sum: break;
    }
    return MPI_SUM;
  }

  template <class S>
  void reduce(S* data, std::size_t n, ReduceOp op, MPI_Datatype type) {
    if (reduction_ == Reduction::ordered && op == ReduceOp::sum) return ordered_sum(data, n, type);
    for (std::size_t done = 0; done < n;) {
      const int chunk = count_of(n - done);
      MPI_Allreduce(MPI_IN_PLACE, data + done, chunk, type, mpi_op(op), comm_);
      done += static_cast<std::size_t>(chunk);
    }
  }

  // The offsets of the blocks of `counts` (size() + 1 entries), or an empty vector when a block
  // is too large for one message (more than INT_MAX / 16 scalars) or the runs do not hold
  // exactly the blocks.
  template <class S>
  std::vector<std::size_t> block_offsets(const Run<S>* runs, std::size_t run_count,
                                         const std::size_t* counts) const {
    std::vector<std::size_t> begin(static_cast<std::size_t>(size_) + 1, 0);
    for (std::size_t r = 0; r + 1 < begin.size(); ++r) {
      if (counts[r] > static_cast<std::size_t>(count_of(counts[r]))) return {};
      begin[r + 1] = begin[r] + counts[r];
    }
    std::size_t held = 0;
    for (std::size_t i = 0; i < run_count; ++i) held += runs[i].size;
    if (held != begin.back())
      throw std::invalid_argument("MpiCommunicator: the runs hold " + std::to_string(held) +
                                  " scalars, the blocks " + std::to_string(begin.back()));
    return begin;
  }

  // One step of a ring: block `out` goes to the next rank and block `in` comes from the
  // previous one, one message per piece of a run (the runs are laid out alike on every rank,
  // so the pieces match), into `incoming` (the block's scalars in order) or, when it is null,
  // straight into the runs. A large piece goes by Open MPI's single copy from the sender's
  // memory into its destination: nothing is packed.
  template <class S>
  void ring_step(const Run<S>* runs, std::size_t run_count, const std::vector<std::size_t>& begin,
                 std::size_t out, std::size_t in, S* incoming, MPI_Datatype type) {
    const int next = (rank_ + 1) % size_, previous = (rank_ + size_ - 1) % size_;
    requests_.clear();
    for_each_run_piece(runs, run_count, begin[in], begin[in + 1], [&](S* data, std::size_t n, std::size_t at) {
      requests_.emplace_back();
      MPI_Irecv(incoming ? incoming + at : data, static_cast<int>(n), type, previous, 0, comm_,
                &requests_.back());
    });
    for_each_run_piece(runs, run_count, begin[out], begin[out + 1], [&](S* data, std::size_t n, std::size_t) {
      requests_.emplace_back();
      MPI_Isend(data, static_cast<int>(n), type, next, 0, comm_, &requests_.back());
    });
    MPI_Waitall(static_cast<int>(requests_.size()), requests_.data(), MPI_STATUSES_IGNORE);
  }

  // The block that rank_ sends at step k of a ring: rank_ - k (mod size_).
  std::size_t block_at(int k) const { return static_cast<std::size_t>(((rank_ - k) % size_ + size_) % size_); }

  // A ring of size() - 1 steps: at step k rank r passes its partial sum of block r - k to rank
  // r + 1 and adds rank r - 1's partial sum of block r - k - 1 into its own, so that after the
  // last step block r holds the sum over every rank, in place. Nothing else is copied: Open
  // MPI's MPI_Reduce_scatter in place copies the whole buffer to a temporary first, which cost
  // as much as the update the sharded step saves. The order of the additions is fixed by the
  // world size: reproducible, but not the ordered reduction's rank order, which takes the
  // ordered allreduce instead. The last step, which completes this rank's block, also
  // multiplies it by `scale` in the same pass. Returns false, doing nothing, in the cases the
  // callers hand to the base class (ordered sum, blocks too large).
  template <class S>
  bool ring_reduce_scatter(const Run<S>* runs, std::size_t run_count, const std::size_t* counts,
                           ReduceOp op, S scale, MPI_Datatype type) {
    if (reduction_ == Reduction::ordered && op == ReduceOp::sum) return false;
    const std::vector<std::size_t> begin = block_offsets(runs, run_count, counts);
    if (begin.empty()) return false;
    std::vector<S>& incoming = scratch(S{});
    incoming.resize(*std::max_element(counts, counts + size_));
    for (int k = 1; k < size_; ++k) {
      const std::size_t in = block_at(k + 1);
      ring_step(runs, run_count, begin, block_at(k), in, incoming.data(), type);
      const S times = k + 1 == size_ ? scale : S(1);
      for_each_run_piece(runs, run_count, begin[in], begin[in + 1], [&](S* mine, std::size_t n, std::size_t at) {
        combine(mine, incoming.data() + at, n, op, times);
      });
    }
    return true;
  }

  // A ring of size() - 1 steps: at step k rank r passes block r - k (its own, then the ones it
  // received) to rank r + 1 and receives block r - k - 1 from rank r - 1, in place. Returns
  // false, doing nothing, when a block is too large for one message.
  template <class S>
  bool ring_allgather(const Run<S>* runs, std::size_t run_count, const std::size_t* counts,
                      MPI_Datatype type) {
    const std::vector<std::size_t> begin = block_offsets(runs, run_count, counts);
    if (begin.empty()) return false;
    for (int k = 0; k + 1 < size_; ++k)
      ring_step(runs, run_count, begin, block_at(k), block_at(k + 1), static_cast<S*>(nullptr), type);
    return true;
  }

  // mine[i] = op(mine[i], theirs[i]) x scale for i < n, the product rounded after the op.
  template <class S>
  static void combine(S* mine, const S* theirs, std::size_t n, ReduceOp op, S scale) {
    switch (op) {  // plain loops: the compiler vectorizes them
      case ReduceOp::sum:
        if (scale == S(1))
          for (std::size_t i = 0; i < n; ++i) mine[i] += theirs[i];
        else
          for (std::size_t i = 0; i < n; ++i) mine[i] = (mine[i] + theirs[i]) * scale;
        return;
      case ReduceOp::min:
        for (std::size_t i = 0; i < n; ++i) mine[i] = std::min(mine[i], theirs[i]);
        break;
      case ReduceOp::max:
        for (std::size_t i = 0; i < n; ++i) mine[i] = std::max(mine[i], theirs[i]);
        break;
    }
    if (scale != S(1))
      for (std::size_t i = 0; i < n; ++i) mine[i] *= scale;
  }

  // Rank 0 receives every rank's vector and adds them in rank order; the sum is broadcast.
  template <class S>
  void ordered_sum(S* data, std::size_t n, MPI_Datatype type) {
    for (std::size_t done = 0; done < n;) {
      const int chunk = count_of(n - done);
      const auto len = static_cast<std::size_t>(chunk);
      std::vector<S>& all = scratch(S{});
      all.resize(rank_ == 0 ? len * static_cast<std::size_t>(size_) : 0);
      MPI_Gather(data + done, chunk, type, all.data(), chunk, type, 0, comm_);
      if (rank_ == 0)
        for (std::size_t i = 0; i < len; ++i) {
          S sum = all[i];
          for (int r = 1; r < size_; ++r) sum += all[static_cast<std::size_t>(r) * len + i];
          data[done + i] = sum;
        }
      MPI_Bcast(data + done, chunk, type, 0, comm_);
      done += len;
    }
  }
  std::vector<double>& scratch(double) { return scratch_double_; }
  std::vector<float>& scratch(float) { return scratch_float_; }

  MPI_Comm comm_;
  Reduction reduction_;
  int rank_ = 0, size_ = 1;
  std::vector<double> scratch_double_;
  std::vector<float> scratch_float_;
  std::vector<MPI_Request> requests_;  // a ring step's messages
};

}  // namespace dropnet::distributed
