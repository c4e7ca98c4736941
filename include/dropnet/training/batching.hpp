#pragma once
// Helpers that cut datasets into batches: a contiguous slice or a gather by index.

#include <algorithm>
#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

#include "../core/error.hpp"
#include "../core/finite.hpp"
#include "../core/parallel.hpp"
#include "../core/types.hpp"

namespace dropnet {

namespace detail {

/// `X` itself, in a context the compiler does not deduce template arguments from: T comes from
/// the model, and any Eigen expression of T then converts to a MatrixView<T>.
template <class X>
struct NonDeduced {
  using type = X;  ///< X unchanged
};
/// The view parameter of fit, evaluate and predict.
template <class T>
using ViewArg = typename NonDeduced<MatrixView<T>>::type;

/// True for the targets fit and evaluate accept with a Matrix<T> model: integer class labels
/// (Labels) or a Matrix<T> of targets.
template <class T, class Target>
inline constexpr bool is_target_v =
    std::is_same_v<Target, Labels> || std::is_same_v<Target, Matrix<T>>;

/// Fails the build with a sentence, rather than with errors from inside the batching code, when
/// y is neither Labels nor Matrix<T> (e.g. Eigen::VectorXf or Eigen::VectorXi of another width).
/// Returns is_target_v, for an `if constexpr` that keeps the rest from being instantiated.
template <class T, class Target>
constexpr bool require_target_type() {
  static_assert(is_target_v<T, Target>,
                "dropnet: targets y must be dropnet::Labels (Eigen::Matrix<std::int32_t, "
                "Eigen::Dynamic, 1>, one class index per sample) or a dropnet::Matrix<T> of "
                "targets (outputs x samples, same scalar as the model); for class labels held "
                "as floats, pass y.cast<std::int32_t>()");
  return is_target_v<T, Target>;
}

/// Number of samples in a target: columns of a matrix, entries of a label vector.
template <class T>
Index sample_count(const Matrix<T>& y) {
  return y.cols();
}
inline Index sample_count(const Labels& y) { return y.size(); }

template <class T>
void slice_into(const Matrix<T>& y, Index first, Index count, Matrix<T>& out) {
  out = y.middleCols(first, count);
}
inline void slice_into(const Labels& y, Index first, Index count, Labels& out) {
  out = y.segment(first, count);
}

/// Columns ahead of the one being copied whose lines gather_into asks the cache for.
inline constexpr Index gather_prefetch_columns = 4;
/// Bytes between two of those hints along a column (every 8th line: the hardware prefetcher
/// fetches the lines between once a column's stream has started).
inline constexpr Index gather_prefetch_stride = 512;

/// Hints the cache to fetch the line at p (GCC and Clang; a no-op elsewhere). Never faults.
inline void prefetch_line(const char* p) {
#if defined(__GNUC__)
  __builtin_prefetch(p);
#else
  (void)p;
#endif
}

/// Hints the cache to fetch column `col` of y, when y's columns lie in memory (a Matrix, a Map,
/// a block of columns); nothing for other expressions.
template <class X>
void prefetch_column(const Eigen::MatrixBase<X>& y, Index col) {
  if constexpr ((Eigen::internal::traits<X>::Flags & Eigen::DirectAccessBit) != 0 &&
                !X::IsRowMajor) {
    const char* first = reinterpret_cast<const char*>(y.derived().data() + col * y.outerStride());
    const Index bytes = y.rows() * Index(sizeof(typename X::Scalar));
    for (Index at = 0; at < bytes; at += gather_prefetch_stride) prefetch_line(first + at);
  } else {
    (void)y, (void)col;
  }
}

/// out.col(j) = y.col(index[j]) for j in [first, end), hinting the cache at the column
/// gather_prefetch_columns ahead while that is before `hint_end`. The columns come from anywhere
/// in the training set (157 MB for Fashion-MNIST), so each starts with a trip to memory: the
/// hints overlap those trips. out has its final shape.
template <class X, class T>
void gather_columns(const Eigen::MatrixBase<X>& y, const Index* index, Index first, Index end,
                    Index hint_end, Matrix<T>& out) {
  for (Index j = first; j < end; ++j) {
    if (j + gather_prefetch_columns < hint_end)
      prefetch_column(y, index[j + gather_prefetch_columns]);
    out.col(j) = y.col(index[j]);
  }
}

// Split between threads as the per-column kernels are (detail::parallel_for_columns): W1's 784 x 64
// batch goes to two, each gathering the columns its share of the first product reads; a thread
// hints only at its own columns. bench_kernels' gather/W1_batch64 (64 random columns of 784
// floats out of 50,000) races this against the same copy without the hints: 0.68-0.74x its time
// on one thread (15-21 against 21-28 us per batch, three runs at load 1.3-1.4).
template <class X, class T>
void gather_into(const Eigen::MatrixBase<X>& y, const Index* index, Index count, Matrix<T>& out) {
  out.resize(y.rows(), count);
  detail::parallel_for_columns(y.rows(), count, [&](Index first, Index end) {
    gather_columns(y, index, first, end, end, out);
  });
}

/// Elements of x a worker gathers per background piece (about 16 KB of floats): short enough
/// that a loop the worker is asked to join waits little for it.
inline constexpr Index background_gather_elements = 4096;

/// fit's next batch: its inputs gathered by an idle worker (BackgroundLoop) while the current
/// batch trains, in the time the worker would otherwise spin through the step's serial code.
/// With one thread nothing is gathered ahead. The gathered columns are the same bits either way.
template <class T>
class BatchPrefetch {
 public:
  explicit BatchPrefetch(const MatrixView<T>& x) : x_(&x), loop_(Gather{this}) {}

  /// Starts gathering x's columns index[0..count) (index must stay valid until take);
  /// returns false, gathering nothing, when no idle worker can.
  bool start(const Index* index, Index count) {
    loop_.finish();
    pending_ = false;
    if (available_threads() <= 1) return false;  // before sizing a buffer nobody would fill
    index_ = index;
    count_ = count;
    next_.resize(x_->rows(), count);
    const Index rows = std::max<Index>(x_->rows(), 1);
    pending_ = loop_.start(count, (background_gather_elements + rows - 1) / rows);
    return pending_;
  }

  /// Swaps into `batch` the columns index[0..count) gathered since start, once they are all
  /// there; false, leaving `batch` alone, unless start was called with exactly these (the
  /// caller then gathers them itself).
  bool take(const Index* index, Index count, Matrix<T>& batch) {
    loop_.finish();
    const bool ready = pending_ && index == index_ && count == count_;
    pending_ = false;
    if (ready) batch.swap(next_);
    return ready;
  }

  /// Waits for a gather still running (fit's loop left before taking its batch).
  void cancel() {
    loop_.finish();
    pending_ = false;
  }

 private:
  struct Gather {
    BatchPrefetch* self;
    void operator()(Index first, Index end) const {
      // Hints run across pieces: the worker that copies one piece usually copies the next.
      gather_columns(*self->x_, self->index_, first, end, self->count_, self->next_);
    }
  };

  const MatrixView<T>* x_;
  const Index* index_ = nullptr;
  Index count_ = 0;
  bool pending_ = false;
  Matrix<T> next_;
  BackgroundLoop<Gather> loop_;  // last: destroyed (finished) before the buffers it writes
};

inline void gather_into(const Labels& y, const Index* index, Index count, Labels& out) {
  out.resize(count);
  for (Index j = 0; j < count; ++j) out(j) = y(index[j]);
}

/// Batches of `batch_size` over `samples` (the last may be smaller); no overflow near the
/// largest Index.
inline Index batch_count(Index samples, Index batch_size) {
  return samples / batch_size + (samples % batch_size != 0 ? 1 : 0);
}

/// The size of the smallest of those batches.
inline Index smallest_batch(Index samples, Index batch_size) {
  const Index tail = samples % batch_size;
  return tail != 0 ? tail : std::min(samples, batch_size);
}

/// Calls visit(batch, first, count) for consecutive slices of `count` <= batch_size columns
/// of x, each copied into one buffer that lives until the end: mc_predict's batching loop
/// (its forward runs in mc_sample mode; the eval-mode loop of predict and evaluate,
/// for_each_inference in evaluate.hpp, reads x in place).
template <class X, class Visit>
void for_each_batch(const Eigen::MatrixBase<X>& x, Index batch_size, Visit&& visit) {
  using T = typename X::Scalar;
  Matrix<T> batch;
  for (Index first = 0; first < x.cols(); first += batch_size) {
    const Index count = std::min(batch_size, x.cols() - first);
    batch = x.middleCols(first, count);
    visit(static_cast<const Matrix<T>&>(batch), first, count);
  }
}

/// The hint for a batch in the Keras layout (samples x features), where dropnet takes features x
/// samples: empty unless `x` would fit with rows and columns swapped.
inline std::string transpose_hint(Index rows, Index cols, bool transposed_fits) {
  if (!transposed_fits) return "";
  return concat(" (x is ", rows, " x ", cols,
                ": samples x features? dropnet takes features x samples, one sample per column:"
                " transpose? pass x.transpose())");
}

template <class X, class Target>
void require_dataset(const std::string& where, const Eigen::MatrixBase<X>& x, const Target& y) {
  require(x.cols() > 0, where, "empty dataset (0 samples)");
  const Index n = sample_count(y);
  require(n == x.cols(), where, "inputs have ", x.cols(), " samples but targets have ", n,
          transpose_hint(x.rows(), x.cols(), n == x.rows()));
  require(all_finite(x), where, "inputs contain NaN or Inf");
}

/// x must have the model's `features` rows (0: not known yet).
template <class X>
void require_input_features(const std::string& where, const Eigen::MatrixBase<X>& x,
                            Index features) {
  require(features == 0 || x.rows() == features, where, "input has ", x.rows(),
          " features (rows), the model expects ", features,
          transpose_hint(x.rows(), x.cols(), x.cols() == features));
}

/// Labels must name one of the model's outputs (0 or 1 for a single-output model).
inline void require_labels_in_range(const std::string& where, const Labels& y, Index outputs) {
  const Index classes = outputs == 1 ? 2 : outputs;
  for (Index j = 0; j < y.size(); ++j)
    if (y(j) < 0 || y(j) >= classes)
      throw InvalidArgument(
          concat(where, ": label ", y(j), " of sample ", j, " is out of range [0, ", classes, ")"));
}
template <class T>
void require_labels_in_range(const std::string&, const Matrix<T>&, Index) {}

}  // namespace detail
}  // namespace dropnet
