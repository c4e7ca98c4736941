#pragma once
// Communicator: the few collective operations data-parallel training needs, and SingleProcess,
// the world of one process that plain fit uses.
//
//   dropnet::distributed::SingleProcess alone;        rank 0 of 1; every collective is a no-op
//   dropnet::distributed::MpiCommunicator world;      <dropnet/distributed/mpi.hpp>, optional
//   options.communicator = &world;                    fit trains data-parallel (docs/distributed.md)
//
// Every call is collective: every rank of the world makes it, in the same order, with the same
// sizes, or the program hangs. fit keeps that promise even when one rank fails: it turns a local
// exception into a collective decision (agree_on_failure), so that every rank throws instead of
// one rank leaving while the others wait.
//
// This header needs only the standard library, so that any layer (SyncBatchNorm) or the training
// loop can hold a Communicator without pulling MPI into the core.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <stdexcept>
#include <string>
#include <vector>

namespace dropnet::distributed {

/// `size` scalars at `data`: one run of a buffer given as several runs laid end to end (a
/// model's parameters, each its own allocation), so that a collective reads and writes them in
/// place instead of through a packed copy.
template <class S>
struct Run {
  S* data;           ///< first scalar
  std::size_t size;  ///< number of scalars
};

/// Calls piece(data, n, offset) for each part of runs[0 .. run_count), laid end to end, that
/// falls in [from, to): n scalars at data, `offset` scalars after `from`.
template <class S, class Piece>
void for_each_run_piece(const Run<S>* runs, std::size_t run_count, std::size_t from,
                        std::size_t to, Piece&& piece) {
  std::size_t first = 0;  // of run i, in the flat order
  for (std::size_t i = 0; i < run_count && first < to; first += runs[i].size, ++i) {
    const std::size_t a = std::max(from, first), b = std::min(to, first + runs[i].size);
    if (a < b) piece(runs[i].data + (a - first), b - a, a - from);
  }
}

/// The reduction of allreduce.
enum class ReduceOp {
  sum,  ///< element-wise sum over the ranks
  min,  ///< element-wise minimum
  max   ///< element-wise maximum
};

/// Collective operations over a fixed group of processes (ranks 0 .. size()-1); see the file
/// comment. Implementations: SingleProcess here, MpiCommunicator in distributed/mpi.hpp.
class Communicator {
 public:
  virtual ~Communicator() = default;
  /// This process's rank, in [0, size()).
  virtual int rank() const = 0;
  /// Number of processes in the group (>= 1).
  virtual int size() const = 0;
  /// Replaces data[0..n) on every rank by its reduction over the ranks.
  virtual void allreduce(double* data, std::size_t n, ReduceOp op) = 0;
  /// Replaces data[0..n) on every rank by its reduction over the ranks.
  virtual void allreduce(float* data, std::size_t n, ReduceOp op) = 0;
  /// Copies `bytes` bytes at `data` from rank `root` to every other rank.
  virtual void broadcast(void* data, std::size_t bytes, int root) = 0;
  /// Every rank ends with the whole buffer at `data`: rank r contributes the block of
  /// `bytes[r]` bytes (size() entries, the same on every rank) that starts after the blocks of
  /// ranks 0 .. r-1. This default broadcasts the blocks in turn; MpiCommunicator overrides it
  /// with a ring of messages.
  virtual void allgather(void* data, const std::size_t* bytes) {
    auto* block = static_cast<char*>(data);
    for (int r = 0; r < size(); ++r) {
      if (bytes[r] > 0) broadcast(block, bytes[r], r);
      block += bytes[r];
    }
  }

  /// Rank r ends with the reduction over the ranks of its block of data: the `counts[r]`
  /// scalars (size() entries, the same on every rank) that start after the blocks of ranks
  /// 0 .. r-1; data outside its block is left unspecified. With the allgather of the blocks it
  /// moves the bytes of one allreduce. This default is an allreduce of the whole buffer;
  /// MpiCommunicator overrides it with a ring of messages.
  virtual void reduce_scatter(double* data, const std::size_t* counts, ReduceOp op) {
    allreduce(data, total_of(counts), op);
  }
  /// As the double overload.
  virtual void reduce_scatter(float* data, const std::size_t* counts, ReduceOp op) {
    allreduce(data, total_of(counts), op);
  }

  /// reduce_scatter of the buffer made of runs[0 .. run_count) laid end to end: rank r's block
  /// (`counts[r]` scalars, as above) becomes `scale` x its reduction, in place in the runs that
  /// hold it (the product rounded once after the reduction, as a separate pass would round it:
  /// the sharded step's mean costs no pass of its own). The runs' sizes must be the same on
  /// every rank. This default packs the runs into one buffer and unpacks it; MpiCommunicator's
  /// ring sends and adds the runs where they are.
  virtual void reduce_scatter(const Run<double>* runs, std::size_t run_count,
                              const std::size_t* counts, ReduceOp op, double scale) {
    packed_reduce_scatter(runs, run_count, counts, op, scale);
  }
  /// As the double overload.
  virtual void reduce_scatter(const Run<float>* runs, std::size_t run_count,
                              const std::size_t* counts, ReduceOp op, float scale) {
    packed_reduce_scatter(runs, run_count, counts, op, scale);
  }
  /// allgather of the buffer made of runs[0 .. run_count) laid end to end, rank r contributing
  /// its block of `counts[r]` scalars: every rank ends with every block, in place in the runs.
  /// The runs' sizes must be the same on every rank. This default packs, allgathers the bytes
  /// and unpacks; MpiCommunicator's ring receives straight into the runs.
  virtual void allgather(const Run<double>* runs, std::size_t run_count, const std::size_t* counts) {
    packed_allgather(runs, run_count, counts);
  }
  /// As the double overload.
  virtual void allgather(const Run<float>* runs, std::size_t run_count, const std::size_t* counts) {
    packed_allgather(runs, run_count, counts);
  }

  /// True on the rank that writes files and prints progress (rank 0).
  bool is_root() const { return rank() == 0; }

 protected:
  /// counts[0] + ... + counts[size() - 1].
  std::size_t total_of(const std::size_t* counts) const {
    std::size_t total = 0;
    for (int r = 0; r < size(); ++r) total += counts[r];
    return total;
  }

 private:
  // The runs copied into one buffer (when `in` is true), or the buffer, times `scale`, copied
  // back into them.
  template <class S>
  static void copy_runs(const Run<S>* runs, std::size_t run_count, std::vector<S>& buffer, bool in,
                        S scale = S(1)) {
    for_each_run_piece(runs, run_count, 0, buffer.size(), [&](S* data, std::size_t n, std::size_t at) {
      if (in)
        std::copy_n(data, n, buffer.data() + at);
      else if (scale == S(1))
        std::copy_n(buffer.data() + at, n, data);
      else
        for (std::size_t i = 0; i < n; ++i) data[i] = buffer[at + i] * scale;
    });
  }
  template <class S>
  void packed_reduce_scatter(const Run<S>* runs, std::size_t run_count, const std::size_t* counts,
                             ReduceOp op, S scale) {
    std::vector<S> buffer(total_of(counts));
    copy_runs(runs, run_count, buffer, true);
    reduce_scatter(buffer.data(), counts, op);
    copy_runs(runs, run_count, buffer, false, scale);
  }
  template <class S>
  void packed_allgather(const Run<S>* runs, std::size_t run_count, const std::size_t* counts) {
    std::vector<S> buffer(total_of(counts));
    std::vector<std::size_t> bytes(static_cast<std::size_t>(size()));
    for (std::size_t r = 0; r < bytes.size(); ++r) bytes[r] = sizeof(S) * counts[r];
    copy_runs(runs, run_count, buffer, true);
    allgather(buffer.data(), bytes.data());
    copy_runs(runs, run_count, buffer, false);
  }
};

/// A world of one process: rank 0 of 1, collectives leave the data as it is.
class SingleProcess final : public Communicator {
 public:
  /// Always 0.
  int rank() const override { return 0; }
  /// Always 1.
  int size() const override { return 1; }
  /// Nothing to reduce with: data is unchanged.
  void allreduce(double*, std::size_t, ReduceOp) override {}
  /// Nothing to reduce with: data is unchanged.
  void allreduce(float*, std::size_t, ReduceOp) override {}
  /// Nothing to send: data is unchanged.
  void broadcast(void*, std::size_t, int) override {}
};

/// Thrown on the ranks that did not fail when another rank did: its message names that rank
/// and repeats its exception's what(), e.g. "rank 1 failed: fit: label 12 of sample 3 ...".
class RemoteError : public std::runtime_error {
 public:
  /// `failed_rank` is the lowest rank that failed.
  RemoteError(int failed_rank, const std::string& message)
      : std::runtime_error(message), failed_rank_(failed_rank) {}
  /// The lowest rank that failed.
  int failed_rank() const { return failed_rank_; }

 private:
  int failed_rank_;
};

/// The message of an exception_ptr's exception ("unknown exception" for a non-std one).
inline std::string what_of(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "unknown exception";
  }
}

/// Lowest rank for which `mine` holds, or comm.size() when it holds nowhere (one allreduce).
inline int lowest_rank_where(Communicator& comm, bool mine) {
  double rank = mine ? comm.rank() : comm.size();
  comm.allreduce(&rank, 1, ReduceOp::min);
  return static_cast<int>(rank);
}

/// Copies `text` from rank `root` to every rank (two broadcasts: the length, then the bytes).
inline void broadcast_string(Communicator& comm, std::string& text, int root) {
  std::uint64_t length = text.size();
  comm.broadcast(&length, sizeof length, root);
  text.resize(static_cast<std::size_t>(length));
  if (length > 0) comm.broadcast(&text[0], text.size(), root);
}

/// Collective: returns when no rank passes an error. Otherwise every rank throws: a rank that
/// failed rethrows its own exception, every other rank a RemoteError carrying the lowest failing
/// rank's message, prefixed by `where`. Costs one allreduce when nothing failed.
inline void agree_on_failure(Communicator& comm, const std::exception_ptr& local,
                             const std::string& where) {
  const int failed = lowest_rank_where(comm, local != nullptr);
  if (failed == comm.size()) return;
  std::string message;
  if (comm.rank() == failed) message = what_of(local);
  broadcast_string(comm, message, failed);
  if (local) std::rethrow_exception(local);
  throw RemoteError(failed, where + ": rank " + std::to_string(failed) + " failed: " + message);
}

/// Runs `work` on every rank as one collective step: when it throws on any rank, every rank
/// throws (see agree_on_failure). With a null communicator it is just work().
template <class Work>
void collectively(Communicator* comm, const std::string& where, Work&& work) {
  if (comm == nullptr) {
    work();
    return;
  }
  std::exception_ptr local;
  try {
    work();
  } catch (...) {
    local = std::current_exception();
  }
  agree_on_failure(*comm, local, where);
}

}  // namespace dropnet::distributed
