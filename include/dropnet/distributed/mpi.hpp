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
  /// MPI_Allgatherv in place; blocks or offsets beyond INT_MAX bytes take the base class's
  /// broadcasts instead.
  void allgather(void* data, const std::size_t* bytes) override {
    std::vector<int> counts(static_cast<std::size_t>(size_)), offsets(counts.size());
    std::size_t offset = 0;
    for (std::size_t r = 0; r < counts.size(); ++r) {
      if (offset + bytes[r] > static_cast<std::size_t>(std::numeric_limits<int>::max()))
        return Communicator::allgather(data, bytes);
      counts[r] = static_cast<int>(bytes[r]);
      offsets[r] = static_cast<int>(offset);
      offset += bytes[r];
    }
    MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, data, counts.data(), offsets.data(),
                   MPI_BYTE, comm_);
  }
  /// A ring of MPI_Sendrecv that leaves this rank's block reduced in place (see scatter); the
  /// ordered sum of the whole buffer when reduction is ordered and op is sum, and the base
  /// class's allreduce when a block exceeds INT_MAX / 16 scalars.
  void reduce_scatter(double* data, const std::size_t* counts, ReduceOp op) override {
    scatter(data, counts, op, MPI_DOUBLE);
  }
  /// As the double overload.
  void reduce_scatter(float* data, const std::size_t* counts, ReduceOp op) override {
    scatter(data, counts, op, MPI_FLOAT);
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

  // A ring of size() - 1 MPI_Sendrecv: at step k rank r passes its partial sum of block
  // r - k - 1 to rank r + 1 and adds rank r - 1's partial sum of block r - k - 2 into its own,
  // so that after the last step block r holds the sum over every rank. Rank r's result is in
  // place and nothing else is copied: Open MPI's MPI_Reduce_scatter in place copies the whole
  // buffer to a temporary first, which cost as much as the update the sharded step saves.
  // The order of the additions is fixed by the world size: reproducible, but not the ordered
  // reduction's rank order, which takes the ordered allreduce instead.
  template <class S>
  void scatter(S* data, const std::size_t* counts, ReduceOp op, MPI_Datatype type) {
    if (reduction_ == Reduction::ordered && op == ReduceOp::sum)
      return Communicator::reduce_scatter(data, counts, op);
    const auto p = static_cast<std::size_t>(size_);
    std::vector<std::size_t> begin(p + 1, 0);
    std::size_t largest = 0;
    for (std::size_t r = 0; r < p; ++r) {
      if (counts[r] > static_cast<std::size_t>(count_of(counts[r])))
        return Communicator::reduce_scatter(data, counts, op);
      begin[r + 1] = begin[r] + counts[r];
      largest = std::max(largest, counts[r]);
    }
    std::vector<S>& incoming = scratch(S{});
    incoming.resize(largest);
    const int next = (rank_ + 1) % size_, previous = (rank_ + size_ - 1) % size_;
    auto block = [&](int k) { return static_cast<std::size_t>(((rank_ - k) % size_ + size_) % size_); };
    for (int k = 1; k < size_; ++k) {
      const std::size_t out = block(k), in = block(k + 1);
      MPI_Sendrecv(data + begin[out], static_cast<int>(counts[out]), type, next, 0, incoming.data(),
                   static_cast<int>(counts[in]), type, previous, 0, comm_, MPI_STATUS_IGNORE);
      S* mine = data + begin[in];
      const S* theirs = incoming.data();
      const std::size_t n = counts[in];
      switch (op) {  // plain loops: the compiler vectorizes them
        case ReduceOp::sum: for (std::size_t i = 0; i < n; ++i) mine[i] += theirs[i]; break;
        case ReduceOp::min: for (std::size_t i = 0; i < n; ++i) mine[i] = std::min(mine[i], theirs[i]); break;
        case ReduceOp::max: for (std::size_t i = 0; i < n; ++i) mine[i] = std::max(mine[i], theirs[i]); break;
      }
    }
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
};

}  // namespace dropnet::distributed
