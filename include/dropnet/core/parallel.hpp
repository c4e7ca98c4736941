#pragma once
// Splitting a loop between the threads chosen with Eigen::setNbThreads (OpenMP), for Gemm
// (core/gemm.hpp), the elementwise kernels (simd/elementwise.hpp), the optimizers' steps
// (optimizers/optimizer.hpp) and the dropout masks (layers/bernoulli_mask.hpp); and a loop the
// idle workers run in the background (fit's next batch, training/batching.hpp).
//
// A loop is cut into one contiguous piece per thread, each a whole number of `align` units long
// (the last excepted), and every piece runs the same sequential code it would run as part of
// the whole loop. Callers only split loops whose elements do not depend on one another (an
// element's value never depends on which piece computed it), so results are bit-identical
// whatever the thread count. A loop goes parallel only when each thread gets at least
// `min_per_thread` elements: below that, waking the second thread costs more than it saves.
// Inside a parallel region (a caller's own OpenMP loop, or a piece of dropnet's own) everything
// runs on the calling thread.
//
// Why not `#pragma omp parallel for`: its closing barrier waits for every thread of the team,
// including one the OS has not scheduled yet. A training step runs a few dozen such loops
// between serial code, and libgomp's waiting threads spin (OMP_WAIT_POLICY's default): as soon
// as a third runnable thread shares the two cores, a spinning thread holds the core the late one
// needs, and each loop can cost a scheduler time slice: W3 trained 5.6-8.6x slower on two threads
// than on one at load 6-8 (docs/performance.md, "Threads"). WorkerPool below lets the calling
// thread take every piece nobody has started: it only ever waits for a piece another thread is
// running, and its workers spin briefly, then sleep.
//
// A worker with no loop to run takes pieces of the pool's background job (BackgroundLoop below),
// one at a time, so a loop it is asked to join waits for one short piece at most: fit gathers
// the next batch's inputs there while the current batch trains, in the time the worker would
// otherwise spin through the training step's serial code.

#include <Eigen/Core>
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "types.hpp"

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace dropnet::detail {

/// True on a thread running a piece of a parallel loop (nested loops then run serially).
inline bool& in_parallel_piece() {
  thread_local bool inside = false;
  return inside;
}

/// Runs f() as a piece of a parallel loop: loops inside it run on this thread.
template <class F>
void as_piece(F&& f) {
  bool& inside = in_parallel_piece();
  const bool outer = inside;
  inside = true;
  f();
  inside = outer;
}

/// Threads dropnet's loops may use here: Eigen::nbThreads() with OpenMP outside a parallel
/// region (OpenMP's or a piece of a dropnet loop), else 1. OpenMP only decides the count (and
/// whether threads are wanted at all); the loops run on WorkerPool.
inline int available_threads() {
#if defined(_OPENMP)
  if (omp_in_parallel() || in_parallel_piece()) return 1;
  return std::clamp(Eigen::nbThreads(), 1, 0xFFFF);  // WorkerPool numbers pieces in 16 bits
#else
  return 1;
#endif
}

/// Threads for a loop of n elements: available_threads(), but no more than leave every thread
/// min_per_thread elements (at least 1).
inline int threads_for(Index n, Index min_per_thread) {
  if (min_per_thread > 0 && n < 2 * min_per_thread) return 1;  // before asking OpenMP: batch 1
  const int wanted = available_threads();
  if (wanted <= 1 || min_per_thread <= 0) return wanted;
  return static_cast<int>(std::clamp<Index>(n / min_per_thread, 1, wanted));
}

/// Length of each thread's piece of n elements: n / threads rounded up to a multiple of align.
inline Index piece_length(Index n, int threads, Index align) {
  return ((n + threads - 1) / threads + align - 1) / align * align;
}

/// CPU hint inside a spin loop (x86 PAUSE): frees the core's resources and saves power.
inline void spin_pause() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

/// Worker threads that run the pieces of one loop at a time alongside the calling thread. The
/// caller runs piece 0 (so consecutive loops over the same data keep their first piece in one
/// core's cache), then the pieces are claimed one by one from a shared ticket, by the caller
/// too, so a worker that is late (not scheduled, or asleep) never delays the loop: the caller
/// runs its pieces.
class WorkerPool {
 public:
  /// The process's pool, created at the first parallel loop (its workers at the first loop
  /// that needs them; they live until the process exits).
  static WorkerPool& instance() {
    static WorkerPool pool;
    return pool;
  }

  WorkerPool() = default;
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  ~WorkerPool() {
    {
      std::lock_guard<std::mutex> lock(sleep_mutex_);
      stop_.store(true);
    }
    wake_.notify_all();
    for (std::thread& t : workers_) t.join();
  }

  /// Runs task(context, piece) for every piece < pieces, on the calling thread and up to
  /// pieces - 1 workers, and returns once all have finished. Returns false, running nothing,
  /// when another thread's loop holds the pool (the caller then runs its loop itself). Allocates
  /// only to start workers. task must not throw.
  bool run(int pieces, void (*task)(void*, int), void* context) {
    std::unique_lock<std::mutex> busy(busy_, std::try_to_lock);
    if (!busy.owns_lock()) return false;
    start_workers(pieces - 1);
    // Piece 0 is always the caller's: the data it writes stays in this core.
    const std::uint64_t generation = loop_.post(pieces, 1, task, context);
    wake_sleepers();
    task(context, 0);
    loop_.done.fetch_add(1, std::memory_order_relaxed);
    while (loop_.run_piece(generation)) {
    }
    loop_.wait_for(pieces);
    return true;
  }

  /// Posts task(context, piece) for every piece < pieces as the background job: workers with no
  /// loop to run take its pieces one at a time, until finish_background. `workers`: the threads
  /// besides the caller (at least 1 is started). Returns false, posting nothing, when another
  /// background job is pending (one at a time). task must not throw.
  bool post_background(int pieces, int workers, void (*task)(void*, int), void* context) {
    start_workers(std::max(workers, 1));  // before taking the job: it may throw
    if (background_owned_.exchange(true, std::memory_order_acquire)) return false;
    background_.post(pieces, 0, task, context);
    wake_sleepers();
    return true;
  }

  /// Runs every piece of the background job that no worker has started, waits for those that
  /// have, and frees the pool for the next background job.
  void finish_background() {
    while (background_.run_piece(background_.current())) {
    }
    background_.wait_for(background_.pieces());
    background_owned_.store(false, std::memory_order_release);
  }

 private:
  /// Spins of an idle worker before it sleeps: about 100 us on the development machine's
  /// AMD EPYC (a PAUSE costs 25 ns there), longer than the serial code between a training step's
  /// loops, much shorter than a scheduler time slice (256 left W1 on two threads 1.1-1.2x slower).
  static constexpr unsigned idle_spins = 4096;

  /// One job of pieces: a loop, or the background job.
  struct Job {
    // generation << 32 | pieces << 16 | next piece to claim
    std::atomic<std::uint64_t> ticket{0};
    std::atomic<void (*)(void*, int)> task{nullptr};
    std::atomic<void*> context{nullptr};
    std::atomic<int> done{0};
    std::uint64_t generation = 0;  // written only by the thread posting the job

    /// Publishes a new run of `pieces` pieces, the first `first` of them already the poster's;
    /// returns its generation.
    std::uint64_t post(int pieces, int first, void (*f)(void*, int), void* c) {
      task.store(f, std::memory_order_relaxed);
      context.store(c, std::memory_order_relaxed);
      done.store(0, std::memory_order_relaxed);
      generation = (generation + 1) & 0xFFFFFFFFu;
      ticket.store(generation << 32 | std::uint64_t(pieces) << 16 | std::uint64_t(first),
                   std::memory_order_seq_cst);
      return generation;
    }

    /// The generation of the run posted last.
    std::uint64_t current() const { return ticket.load(std::memory_order_acquire) >> 32; }

    /// The pieces of the run posted last.
    int pieces() const {
      return static_cast<int>(ticket.load(std::memory_order_acquire) >> 16 & 0xFFFFu);
    }

    /// True while the run posted last has a piece nobody has claimed.
    bool has_piece() const {
      const std::uint64_t t = ticket.load(std::memory_order_acquire);
      return (t & 0xFFFFu) < (t >> 16 & 0xFFFFu);
    }

    /// Claims and runs one piece of run `run`; false when it has none left (or is not current).
    bool run_piece(std::uint64_t run) {
      std::uint64_t t = ticket.load(std::memory_order_acquire);
      for (;;) {
        const std::uint64_t pieces = t >> 16 & 0xFFFFu, next = t & 0xFFFFu;
        if (t >> 32 != run || next >= pieces) return false;
        if (ticket.compare_exchange_weak(t, t + 1, std::memory_order_acq_rel,
                                         std::memory_order_acquire))
          break;
      }
      task.load(std::memory_order_relaxed)(context.load(std::memory_order_relaxed),
                                           static_cast<int>(t & 0xFFFFu));
      done.fetch_add(1, std::memory_order_acq_rel);
      return true;
    }

    /// Waits until `pieces` pieces have finished (the caller has no piece left to claim).
    void wait_for(int pieces) const {
      for (unsigned spins = 1; done.load(std::memory_order_acquire) < pieces; ++spins) {
        if (spins % 256 == 0)
          std::this_thread::yield();  // the piece's thread may be waiting for this core
        else
          spin_pause();
      }
    }
  };

  /// Starts workers until there are `count` (loops start them under busy_, background jobs
  /// outside it: hence the lock, taken only while workers are missing).
  void start_workers(int count) {
    if (started_.load(std::memory_order_acquire) >= count) return;
    std::lock_guard<std::mutex> lock(workers_mutex_);
    while (static_cast<int>(workers_.size()) < count) {
      workers_.emplace_back([this] { serve(); });
      started_.store(static_cast<int>(workers_.size()), std::memory_order_release);
    }
  }

  void wake_sleepers() {
    if (sleepers_.load(std::memory_order_seq_cst) > 0) {
      std::lock_guard<std::mutex> lock(sleep_mutex_);
      wake_.notify_all();
    }
  }

  /// A worker: runs the pieces of each new loop, and between loops the background job's.
  void serve() {
    std::uint64_t seen = loop_.current();
    for (;;) {
      std::uint64_t generation = seen;
      for (unsigned spins = 0; generation == seen; ++spins) {
        if (stop_.load(std::memory_order_acquire)) return;
        if (background_.run_piece(background_.current())) {
          spins = 0;
        } else if (spins < idle_spins) {
          spin_pause();
        } else {
          std::unique_lock<std::mutex> lock(sleep_mutex_);
          sleepers_.fetch_add(1, std::memory_order_seq_cst);
          wake_.wait(lock, [&] {
            return stop_.load() || loop_.current() != seen || background_.has_piece();
          });
          sleepers_.fetch_sub(1, std::memory_order_seq_cst);
        }
        generation = loop_.current();
      }
      seen = generation;
      while (loop_.run_piece(generation)) {
      }
    }
  }

  std::mutex busy_;  // held by the loop running now
  std::mutex workers_mutex_;
  std::vector<std::thread> workers_;
  std::atomic<int> started_{0};  // workers_.size(), read without the lock
  Job loop_;        // the running loop, written under busy_
  Job background_;  // the background job, written by its owner
  std::atomic<bool> background_owned_{false};
  std::mutex sleep_mutex_;
  std::condition_variable wake_;
  std::atomic<int> sleepers_{0};
  std::atomic<bool> stop_{false};
};

/// Calls f(t, begin, end) for each piece t < threads of [0, n) (piece_length long, the last one
/// shorter; empty pieces are skipped), the pieces in parallel on WorkerPool. Which thread runs a
/// piece varies; piece t's bounds do not. f must not throw.
template <class F>
void for_each_piece(Index n, Index align, int threads, F&& f) {
  const Index piece = piece_length(n, threads, align);
  struct Context {
    F* f;
    Index n, piece;
  } context{&f, n, piece};
  const auto task = [](void* c, int t) {
    const Context& ctx = *static_cast<Context*>(c);
    const Index begin = std::min(ctx.n, ctx.piece * t), end = std::min(ctx.n, begin + ctx.piece);
    if (begin >= end) return;
    as_piece([&] { (*ctx.f)(t, begin, end); });
  };
  if (threads > 1 && WorkerPool::instance().run(threads, task, &context)) return;
  for (int t = 0; t < threads; ++t) task(&context, t);
}

/// f(begin, end) over [0, n) in pieces of whole `align` units, on threads_for(n, min_per_thread)
/// threads. f must not throw.
template <class F>
void parallel_for(Index n, Index align, Index min_per_thread, F&& f) {
  if (n <= 0) return;
  const int threads = threads_for(n, min_per_thread);
  if (threads <= 1) {
    f(Index(0), n);
    return;
  }
  for_each_piece(n, align, threads, [&](int, Index begin, Index end) { f(begin, end); });
}

/// Elements per thread below which an elementwise or per-column loop stays on one thread: a few
/// microseconds of work (W3's 512 x 128 activations split in two, W1's 120 x 64 do not), about
/// what handing a piece to the second thread and waiting for it costs.
inline constexpr Index parallel_elements = 16384;

/// f(first column, end column) over the cols columns of a rows x cols column-major loop, split
/// between the threads once each gets parallel_elements elements.
template <class F>
void parallel_for_columns(Index rows, Index cols, F&& f) {
  const Index per_thread = (parallel_elements + rows - 1) / std::max<Index>(rows, 1);
  parallel_for(cols, 1, per_thread, f);
}

/// A loop that idle workers run while the calling thread goes on: f(begin, end) over [0, n) in
/// pieces of `piece` elements (WorkerPool's background job). The caller calls finish() before it
/// reads what the loop writes; finish runs the pieces no worker has started and waits for the
/// others, and the destructor calls it, so an exception never leaves a piece writing into freed
/// memory. f must not throw, and must not touch what the caller uses until finish().
template <class F>
class BackgroundLoop {
 public:
  explicit BackgroundLoop(F f) : f_(std::move(f)) {}
  BackgroundLoop(const BackgroundLoop&) = delete;
  BackgroundLoop& operator=(const BackgroundLoop&) = delete;
  ~BackgroundLoop() { finish(); }

  /// Posts the loop over [0, n) after finishing the previous one. Returns false, running
  /// nothing, when no second thread is available here (available_threads()) or the pool's
  /// background job is taken (another thread's): the caller then runs the loop itself.
  bool start(Index n, Index piece) {
    finish();
    const int threads = available_threads();
    if (threads <= 1 || n <= 0) return false;
    n_ = n;
    piece_ = std::max(piece, (n + 0xFFFE) / 0xFFFF);  // WorkerPool numbers pieces in 16 bits
    const auto pieces = static_cast<int>((n + piece_ - 1) / piece_);
    posted_ = WorkerPool::instance().post_background(pieces, threads - 1, &run, this);
    return posted_;
  }

  /// Waits until the loop started last has run (at once when none is pending).
  void finish() {
    if (!posted_) return;
    WorkerPool::instance().finish_background();
    posted_ = false;
  }

 private:
  static void run(void* self, int piece) {
    auto& loop = *static_cast<BackgroundLoop*>(self);
    const Index begin = loop.piece_ * piece, end = std::min(loop.n_, begin + loop.piece_);
    as_piece([&] { loop.f_(begin, end); });
  }

  F f_;
  Index n_ = 0, piece_ = 1;
  bool posted_ = false;  // a job of this loop is pending in the pool
};

}  // namespace dropnet::detail
