#pragma once
// Gemm<T>: C = op(A) op(B) with Eigen's GEMM kernel and packing buffers that persist.
//
// `c.noalias() = a * b` heap-allocates Eigen's packing buffers on every call once they exceed
// EIGEN_STACK_ALLOCATION_LIMIT (a 120x784 float block already does). A layer owns one Gemm per
// product; the buffers are sized on the first call at a shape and reused, so a training step
// allocates nothing. With OpenMP and Eigen::nbThreads() > 1, the columns of C are split between
// threads (each with its own buffers), which also makes the result independent of scheduling:
// every column is computed by the same sequential kernel whatever the thread count.
// Needs Eigen >= 3.4 for the direct kernel; older versions fall back to the plain product.

#include <Eigen/Core>
#include <algorithm>
#include <memory>
#include <vector>

#include "types.hpp"

namespace dropnet {

/// Whether a Gemm operand is used as stored or transposed.
enum class Op {
  none,      ///< use the matrix as stored
  transpose  ///< use its transpose (no copy: the kernel reads it row-major)
};

/// C = op(A) op(B) with Eigen's GEMM kernel and packing buffers that persist between calls, so a
/// layer's products allocate nothing after the first call at a shape (see the file comment).
template <class T>
class Gemm {
 public:
  /// c = op(a) * op(b); c is resized (allocating only when its shape changes).
  template <Op OpA, Op OpB>
  void multiply(const Matrix<T>& a, const Matrix<T>& b, Matrix<T>& c) {
    const Index m = OpA == Op::none ? a.rows() : a.cols();
    const Index k = OpA == Op::none ? a.cols() : a.rows();
    const Index n = OpB == Op::none ? b.cols() : b.rows();
    c.resize(m, n);
#if EIGEN_VERSION_AT_LEAST(3, 4, 0)
    if (n < gemv_columns || m < gemv_columns) {
      // Matrix-vector shapes (a batch of one): Eigen's GEMV is faster and allocates nothing.
      product<OpA, OpB>(a, b, c);
      return;
    }
    c.setZero();  // the kernel accumulates: C += A B
    const int threads = thread_count(n);
    prepare(m, n, k, threads);
    const Index per_thread = (n + threads - 1) / threads;
#if defined(_OPENMP)
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
#endif
    for (int t = 0; t < threads; ++t) {
      const Index first = per_thread * t;
      const Index cols = std::min(per_thread, n - first);
      if (cols <= 0) continue;
      // Column `first` of op(B): B's column `first`, or B's row `first` when transposed.
      const T* b_start = OpB == Op::none ? b.data() + first * b.rows() : b.data() + first;
      Kernel<OpA, OpB>::run(m, cols, k, a.data(), a.rows(), b_start, b.rows(),
                            c.data() + first * m, 1, m, T(1), *blocking_[static_cast<std::size_t>(t)]);
    }
#else
    product<OpA, OpB>(a, b, c);
#endif
  }

 private:
  static constexpr Index gemv_columns = 4;

  template <Op OpA, Op OpB>
  static void product(const Matrix<T>& a, const Matrix<T>& b, Matrix<T>& c) {
    if constexpr (OpA == Op::none && OpB == Op::none) c.noalias() = a * b;
    if constexpr (OpA == Op::none && OpB == Op::transpose) c.noalias() = a * b.transpose();
    if constexpr (OpA == Op::transpose && OpB == Op::none) c.noalias() = a.transpose() * b;
    if constexpr (OpA == Op::transpose && OpB == Op::transpose) c.noalias() = a.transpose() * b.transpose();
  }

#if EIGEN_VERSION_AT_LEAST(3, 4, 0)
  using Blocking = Eigen::internal::gemm_blocking_space<Eigen::ColMajor, T, T, Eigen::Dynamic,
                                                        Eigen::Dynamic, Eigen::Dynamic, 1, false>;
  template <Op OpA, Op OpB>
  using Kernel = Eigen::internal::general_matrix_matrix_product<
      Index, T, OpA == Op::none ? Eigen::ColMajor : Eigen::RowMajor, false, T,
      OpB == Op::none ? Eigen::ColMajor : Eigen::RowMajor, false, Eigen::ColMajor, 1>;

  /// Two threads only pay off on products big enough to amortize the fork (about 1 MFLOP).
  static int thread_count(Index n) {
#if defined(_OPENMP)
    const int wanted = Eigen::nbThreads();
    return wanted > 1 && n >= 2 * wanted ? wanted : 1;
#else
    (void)n;
    return 1;
#endif
  }

  void prepare(Index m, Index n, Index k, int threads) {
    if (m == m_ && n == n_ && k == k_ && threads == threads_) return;
    blocking_.clear();
    const Index cols = (n + threads - 1) / threads;
    for (int t = 0; t < threads; ++t) {
      blocking_.push_back(std::make_unique<Blocking>(m, cols, k, 1, true));
      blocking_.back()->allocateAll();
    }
    m_ = m, n_ = n, k_ = k, threads_ = threads;
  }

  std::vector<std::unique_ptr<Blocking>> blocking_;
  Index m_ = -1, n_ = -1, k_ = -1;
  int threads_ = 0;
#endif
};

}  // namespace dropnet
