#pragma once
// Gemm<T>: C = op(A) op(B) (+ beta C) with packing buffers that persist between calls.
//
// Kernels, first available wins:
//   1. cblas_sgemm/dgemm, when built with DROPNET_USE_BLAS (CMake option, links BLAS);
//   2. matrix-vector shapes (fewer than 4 rows or columns in C): Eigen's product, whose GEMV
//      allocates nothing and streams A once (packing A would read it twice);
//   3. float and double when simd_level() (simd/dispatch.hpp) is avx512 or avx2 (in a
//      translation unit compiled for AVX-512, only with more than 16 rows in C):
//      simd/gemm_packed.hpp's packed kernel for that level (AVX-512: about 1.1-1.3x Eigen's
//      -march=native throughput on the dense layers' shapes, bench_gemm). The level is read
//      once per call; a default-flags build runs it too (function target attributes, not -m
//      flags);
//   4. Eigen's own GEMM kernel (general_matrix_matrix_product) everywhere else, compiled for the
//      translation unit's own flags.
//
// `c.noalias() = a * b` heap-allocates Eigen's packing buffers on every call once they exceed
// EIGEN_STACK_ALLOCATION_LIMIT (a 120x784 float block already does). A layer owns one Gemm per
// product; the buffers are sized on the first call at a shape and reused, so a training step
// allocates nothing (the packed kernel's buffers only grow, so alternating between a training
// and a validation batch size allocates nothing either). With OpenMP and Eigen::nbThreads() > 1,
// the columns of C are split between threads (each with its own buffers, core/parallel.hpp),
// which also makes the result independent of scheduling: every column is computed by the same
// sequential kernel whatever the thread count. (The BLAS path leaves threading to the BLAS:
// OpenBLAS splits C, never K, but the bit-for-bit guarantee is then OpenBLAS's, not dropnet's.)
// Operands may be Maps or blocks of a column-major matrix (anything an Eigen::Ref binds without
// a copy: unit inner stride), so a layer that views its buffers through Maps (Conv2D's per-sample
// columns) gets the same allocation-free kernels.
// multiply_scaled reads B times an elementwise scale whose columns repeat (a recurrent layer's
// per-sample dropout mask over a time-major sequence): the packed kernel multiplies it in while
// packing B, the other kernels on a copy of B the Gemm keeps.
// Needs Eigen >= 3.4 for the direct kernel; older versions fall back to the plain product.

#include <Eigen/Core>
#include <algorithm>
#include <memory>
#include <type_traits>
#include <vector>

#include "../simd/gemm_packed.hpp"
#include "error.hpp"
#include "parallel.hpp"
#include "types.hpp"

#if defined(DROPNET_USE_BLAS)
#include <cblas.h>
#endif

namespace dropnet {

/// Whether a Gemm operand is used as stored or transposed.
enum class Op {
  none,      ///< use the matrix as stored
  transpose  ///< use its transpose (no copy: the kernel reads it row-major)
};

/// C = op(A) op(B) (or beta C + op(A) op(B)) with packing buffers that persist between calls, so a
/// layer's products allocate nothing after the first call at a shape (see the file comment).
template <class T>
class Gemm {
 public:
  /// A read-only operand: a matrix, a Map or a block with unit inner stride (never copied).
  using In = Eigen::Ref<const Matrix<T>>;
  /// The product's destination: a matrix, a Map or a block with unit inner stride.
  using Out = Eigen::Ref<Matrix<T>>;

  /// c = op(a) * op(b); c is resized (allocating only when its shape changes).
  /// Throws InvalidArgument when the inner dimensions of op(a) and op(b) differ.
  template <Op OpA, Op OpB>
  void multiply(const In& a, const In& b, Matrix<T>& c) {
    check_inner<OpA, OpB>(a, b);
    c.resize(op_rows<OpA>(a), op_cols<OpB>(b));
    Out out(c);
    run<OpA, OpB>(a, b, out, T(0));
  }

  /// c = op(a) * op(b) as above, then epilogue(first, cols) on each share of c's columns
  /// [first, first + cols), right after the thread that computed the share did, on that thread
  /// (once over all columns where the product is not split). A layer adds its bias and applies
  /// its activation there while the share is in that core's cache, instead of in passes over c
  /// on the calling thread. The epilogue must act on its columns only (then the result does not
  /// depend on the split) and must not throw.
  template <Op OpA, Op OpB, class Epilogue,
            std::enable_if_t<std::is_invocable_v<Epilogue&, Index, Index>, int> = 0>
  void multiply(const In& a, const In& b, Matrix<T>& c, Epilogue&& epilogue) {
    check_inner<OpA, OpB>(a, b);
    c.resize(op_rows<OpA>(a), op_cols<OpB>(b));
    Out out(c);
    run<OpA, OpB>(a, b, out, T(0), nullptr, epilogue);
  }

  /// c = beta * c + op(a) * op(b), c already of shape rows(op(a)) x cols(op(b)); beta == 0
  /// ignores c's old values (NaN included). With beta = 1 a layer can fill c with its bias first
  /// and get W X + b from one pass over c.
  /// Throws InvalidArgument on mismatched inner dimensions or a c of the wrong shape.
  template <Op OpA, Op OpB>
  void multiply(const In& a, const In& b, Out c, T beta) {
    check_inner<OpA, OpB>(a, b);
    detail::require_shape("Gemm::multiply", "c", long(c.rows()), long(c.cols()),
                          long(op_rows<OpA>(a)), long(op_cols<OpB>(b)));
    run<OpA, OpB>(a, b, c, beta);
  }

  /// c = beta * c + op(a) * op(b .* s), where `s` has b's rows and its columns repeat: b's stored
  /// column j (op(b)'s row j when transposed) is multiplied elementwise by s's column
  /// j % s.cols(). A recurrent layer's dropout mask (one column per sample) over every step of a
  /// time-major sequence, without a masked copy of b: the packed kernel multiplies s in while
  /// packing b, which it reads anyway; the other kernels multiply into a buffer this Gemm keeps
  /// (sized at the first call at a shape). The products are those of the masked copy, bit for
  /// bit. Throws InvalidArgument as multiply does, and when s's rows are not b's or s is empty.
  template <Op OpA, Op OpB>
  void multiply_scaled(const In& a, const In& b, const In& s, Out c, T beta) {
    check_inner<OpA, OpB>(a, b);
    // (require, not require_shape: its std::string would allocate for this longer name.)
    const Index rows = op_rows<OpA>(a), cols = op_cols<OpB>(b);
    detail::require(c.rows() == rows && c.cols() == cols, "Gemm::multiply_scaled", "c has shape ",
                    c.rows(), "x", c.cols(), ", expected ", rows, "x", cols);
    detail::require(s.rows() == b.rows() && s.cols() > 0, "Gemm::multiply_scaled",
                    "the scale needs b's ", b.rows(), " rows and a column, got ", s.rows(), " x ",
                    s.cols());
    run<OpA, OpB>(a, b, c, beta, &s);
  }

 private:
  static constexpr Index gemv_columns = 4;
  /// Up to 16 rows (an output layer of 10 classes), the packed kernel fills at most one register
  /// of rows and pays for packing all of B for it; Eigen's kernel compiled for AVX-512 was
  /// measured faster there on a Zen 4 (bench_gemm -march=native, W1/fwd3 and W1/dW3). Eigen's
  /// kernel compiled for narrower registers (the default flags' SSE2) is 1.9-3.5x slower than
  /// the packed AVX2 and AVX-512 kernels on those shapes (Zen 5): then the packed kernel takes
  /// them all.
#if defined(EIGEN_VECTORIZE_AVX512)
  static constexpr Index eigen_max_rows = 16;
#else
  static constexpr Index eigen_max_rows = 0;
#endif
  /// Whether the packed kernels serve this scalar type.
  static constexpr bool packed = std::is_same_v<T, float> || std::is_same_v<T, double>;

  template <Op O>
  static Index op_rows(const In& x) {
    return O == Op::none ? x.rows() : x.cols();
  }
  template <Op O>
  static Index op_cols(const In& x) {
    return O == Op::none ? x.cols() : x.rows();
  }

  template <Op OpA, Op OpB>
  static void check_inner(const In& a, const In& b) {
    const Index ka = op_cols<OpA>(a), kb = op_rows<OpB>(b);
    detail::require(ka == kb, "Gemm::multiply", "op(a) has ", ka, " columns but op(b) has ", kb,
                    " rows");
  }

  /// Whether run() takes the packed kernel for a c of this shape, and at which `level`.
  static bool packed_for(const Out& c, SimdLevel& level) {
#if !defined(DROPNET_USE_BLAS)  // with it, the BLAS takes float and double
    if constexpr (packed) {
      if (c.cols() >= gemv_columns && c.rows() >= gemv_columns) {
        level = simd_level();
        return c.rows() > eigen_max_rows && simd::gemm_packed_serves(level);
      }
    }
#endif
    (void)c, (void)level;
    return false;
  }

  /// The epilogue of the products without one.
  struct NoEpilogue {
    void operator()(Index, Index) const {}
  };

  /// The product, b scaled by *scale (multiply_scaled) unless scale is null, then `epilogue` on
  /// each share of c's columns (see the multiply that takes one).
  template <Op OpA, Op OpB, class Epilogue = NoEpilogue>
  void run(const In& a, const In& b, Out& c, T beta, const In* scale = nullptr,
           Epilogue&& epilogue = {}) {
    if (c.size() == 0) return;
    SimdLevel level = SimdLevel::baseline;
    if (packed_for(c, level)) {
      run_packed<OpA, OpB>(level, a, b, c, beta, scale, epilogue);
      return;
    }
    run_unpacked<OpA, OpB>(a, b, c, beta, scale, epilogue);
  }

  /// run() on the kernels other than the packed one.
  template <Op OpA, Op OpB, class Epilogue>
  void run_unpacked(const In& a, const In& b, Out& c, T beta, const In* scale,
                    Epilogue& epilogue) {
    if (scale != nullptr) {  // the other kernels read b as stored: scale a copy of it
      scaled_b_.resize(b.rows(), b.cols());
      for (Index j = 0; j < b.cols(); ++j)
        scaled_b_.col(j) = b.col(j).cwiseProduct(scale->col(j % scale->cols()));
      run<OpA, OpB>(a, scaled_b_, c, beta, nullptr, epilogue);
      return;
    }
#if defined(DROPNET_USE_BLAS)
    if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double>) {
      blas<OpA, OpB>(a, b, c, beta);
      epilogue(Index(0), c.cols());
      return;
    }
#endif
    if (c.cols() < gemv_columns || c.rows() < gemv_columns) {
      product<OpA, OpB>(a, b, c, beta);
      epilogue(Index(0), c.cols());
      return;
    }
    run_eigen<OpA, OpB>(a, b, c, beta, epilogue);
  }

  Matrix<T> scaled_b_;  // b times the scale, for the kernels that cannot scale while packing

  /// Calls f(thread, first column, columns) on each thread's share of C's n columns. Shares are
  /// whole groups of 4 columns (the last excepted), so Eigen's kernel, which handles a group of
  /// 4 columns and a leftover column differently, sees the same groups whatever the split.
  template <class F>
  static void split_columns(Index n, int threads, F&& f) {
    detail::for_each_piece(n, 4, threads,
                           [&](int t, Index first, Index end) { f(t, first, end - first); });
  }

  /// Column `first` of op(B): B's column `first`, or B's row `first` when transposed.
  template <Op OpB>
  static const T* column_of_op_b(const In& b, Index first) {
    return OpB == Op::none ? b.data() + first * b.outerStride() : b.data() + first;
  }

  /// The packed kernel of `level` (gemm_packed_serves(level) holds) on each thread's columns,
  /// b scaled by *scale unless it is null. (Splitting the rows instead, so that each thread
  /// packs half of a layer's weights rather than all of them, measured slower on W3's products:
  /// 1.6-1.7x on two threads against 1.8-1.9x, since each thread then packs, transposing, the
  /// whole batch.)
  template <Op OpA, Op OpB, class Epilogue>
  void run_packed(SimdLevel level, const In& a, const In& b, Out& c, T beta, const In* scale,
                  Epilogue& epilogue) {
    const Index m = c.rows(), n = c.cols(), k = op_cols<OpA>(a);
    const int threads = thread_count(m, n, k);
    if (workspaces_.size() < static_cast<std::size_t>(threads))
      workspaces_.resize(static_cast<std::size_t>(threads));
    for (int t = 0; t < threads; ++t)
      workspaces_[static_cast<std::size_t>(t)].reserve(m, detail::piece_length(n, threads, 4), k);
    split_columns(n, threads, [&](int t, Index first, Index cols) {
      simd::GemmScale<T> share_scale;
      if (scale != nullptr) {  // a share starts at op(b)'s column first: b's column or row
        share_scale = {scale->data(), scale->outerStride(), scale->cols(), 0, 0};
        share_scale =
            OpB == Op::none ? share_scale.shifted(0, first) : share_scale.shifted(first, 0);
      }
      simd::gemm_packed<T, OpA == Op::transpose, OpB == Op::transpose>(
          level, m, cols, k, a.data(), a.outerStride(), column_of_op_b<OpB>(b, first),
          b.outerStride(), beta, c.data() + first * c.outerStride(), c.outerStride(),
          workspaces_[static_cast<std::size_t>(t)], share_scale);
      epilogue(first, cols);
    });
  }

  std::vector<simd::GemmWorkspace<T>> workspaces_;  // one per thread, grown only

  /// Matrix-vector shapes through Eigen's product (its GEMV for a single column).
  template <Op OpA, Op OpB>
  static void product(const In& a, const In& b, Out& c, T beta) {
    if (beta == T(0)) {
      assign<OpA, OpB>(a, b, c);
      return;
    }
    if (beta != T(1)) c *= beta;
    if constexpr (OpA == Op::none && OpB == Op::none) c.noalias() += a * b;
    if constexpr (OpA == Op::none && OpB == Op::transpose) c.noalias() += a * b.transpose();
    if constexpr (OpA == Op::transpose && OpB == Op::none) c.noalias() += a.transpose() * b;
    if constexpr (OpA == Op::transpose && OpB == Op::transpose)
      c.noalias() += a.transpose() * b.transpose();
  }

  template <Op OpA, Op OpB>
  static void assign(const In& a, const In& b, Out& c) {
    if constexpr (OpA == Op::none && OpB == Op::none) c.noalias() = a * b;
    if constexpr (OpA == Op::none && OpB == Op::transpose) c.noalias() = a * b.transpose();
    if constexpr (OpA == Op::transpose && OpB == Op::none) c.noalias() = a.transpose() * b;
    if constexpr (OpA == Op::transpose && OpB == Op::transpose)
      c.noalias() = a.transpose() * b.transpose();
  }

#if defined(DROPNET_USE_BLAS)
  template <Op OpA, Op OpB>
  static void blas(const In& a, const In& b, Out& c, T beta) {
    const auto op = [](Op o) { return o == Op::none ? CblasNoTrans : CblasTrans; };
    const auto m = static_cast<int>(c.rows()), n = static_cast<int>(c.cols());
    const auto k = static_cast<int>(op_cols<OpA>(a));
    const auto lda = static_cast<int>(std::max<Index>(1, a.outerStride()));
    const auto ldb = static_cast<int>(std::max<Index>(1, b.outerStride()));
    const auto ldc = static_cast<int>(std::max<Index>(1, c.outerStride()));
    if constexpr (std::is_same_v<T, float>)
      cblas_sgemm(CblasColMajor, op(OpA), op(OpB), m, n, k, 1.f, a.data(), lda, b.data(), ldb, beta,
                  c.data(), ldc);
    else
      cblas_dgemm(CblasColMajor, op(OpA), op(OpB), m, n, k, 1.0, a.data(), lda, b.data(), ldb, beta,
                  c.data(), ldc);
  }
#endif

  /// Two threads only pay off on products big enough to amortize handing a piece to the second
  /// one: from 256K multiply-adds (W1's 120->60 products at batch 64, about 10 us on one thread,
  /// ran 1.66-1.87x faster on two; its 60->10 ones, 38K, stay on one). Under OpenMP's fork and
  /// barrier the threshold had to be 4M (smaller products ran 1.3-20x slower on two threads);
  /// core/parallel.hpp's pool costs far less per loop. The count depends on the shape only, and
  /// the column split does not change the bits, so results stay thread-count independent.
  static int thread_count(Index m, Index n, Index k) {
    const int wanted = detail::available_threads();
    const double macs = double(m) * double(n) * double(k);
    return wanted > 1 && n >= Index{4} * wanted && macs >= parallel_macs ? wanted : 1;
  }
  static constexpr double parallel_macs = 256.0 * 1024;

#if EIGEN_VERSION_AT_LEAST(3, 4, 0)
  using Blocking = Eigen::internal::gemm_blocking_space<Eigen::ColMajor, T, T, Eigen::Dynamic,
                                                        Eigen::Dynamic, Eigen::Dynamic, 1, false>;
  template <Op OpA, Op OpB>
  using Kernel = Eigen::internal::general_matrix_matrix_product<
      Index, T, OpA == Op::none ? Eigen::ColMajor : Eigen::RowMajor, false, T,
      OpB == Op::none ? Eigen::ColMajor : Eigen::RowMajor, false, Eigen::ColMajor, 1>;

  /// Eigen's kernel accumulates (C += A B): scale or clear C first.
  template <Op OpA, Op OpB, class Epilogue>
  void run_eigen(const In& a, const In& b, Out& c, T beta, Epilogue& epilogue) {
    const Index m = c.rows(), n = c.cols(), k = op_cols<OpA>(a);
    if (beta == T(0))
      c.setZero();
    else if (beta != T(1))
      c *= beta;
    const int threads = thread_count(m, n, k);
    prepare(m, n, k, threads);
    split_columns(n, threads, [&](int t, Index first, Index cols) {
      Kernel<OpA, OpB>::run(m, cols, k, a.data(), a.outerStride(), column_of_op_b<OpB>(b, first),
                            b.outerStride(), c.data() + first * c.outerStride(), 1, c.outerStride(),
                            T(1), *blocking_[static_cast<std::size_t>(t)]);
      epilogue(first, cols);
    });
  }

  /// Every thread's blocking is computed for the whole product: Eigen derives its K block from
  /// the shape, and a K block that changed with the thread count would change the sums.
  void prepare(Index m, Index n, Index k, int threads) {
    if (m == m_ && n == n_ && k == k_ && threads == threads_) return;
    blocking_.clear();
    for (int t = 0; t < threads; ++t) {
      blocking_.push_back(std::make_unique<Blocking>(m, n, k, 1, true));
      blocking_.back()->allocateAll();
    }
    m_ = m, n_ = n, k_ = k, threads_ = threads;
  }

  std::vector<std::unique_ptr<Blocking>> blocking_;
  Index m_ = -1, n_ = -1, k_ = -1;
  int threads_ = 0;
#else
  template <Op OpA, Op OpB, class Epilogue>
  void run_eigen(const In& a, const In& b, Out& c, T beta, Epilogue& epilogue) {
    product<OpA, OpB>(a, b, c, beta);
    epilogue(Index(0), c.cols());
  }
#endif
};

}  // namespace dropnet
