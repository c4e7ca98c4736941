// Gemm against a naive triple loop accumulated in double, for every op combination, float and
// double, and shapes covering every edge of the packed kernel (rows around 16 and 32, columns
// around 4, 8 and 12, K around its 256 block, C wider than its 4092-column block) plus the
// workloads' shapes. Also: beta, bit-identical results whatever the column split or thread
// count, and no allocation after the first call at a shape.
//
// Which kernel runs depends on the build (DROPNET_USE_BLAS or not) and on simd_level()
// (DROPNET_SIMD=avx512|avx2|baseline forces one): every test holds for each, the first message
// names the one under test. tests/test_dispatch.cpp compares the levels with each other.

// Allocation witnesses (Eigen's malloc guard, a counting operator new), shared with
// test_allocation.cpp.
#include "allocation_witness.hpp"  // first: it configures Eigen

#include <doctest/doctest.h>

#include <array>
#include <cmath>
#include <dropnet/core/gemm.hpp>
#include <dropnet/core/generator.hpp>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

using namespace dropnet;

namespace {

using Shape = std::array<Index, 3>;  // m, n, k of C (m x n) = op(A) (m x k) op(B) (k x n)

template <class T>
Matrix<T> random(Index rows, Index cols, Generator& gen) {
  Matrix<T> m(rows, cols);
  for (Index i = 0; i < m.size(); ++i) m.data()[i] = gen.normal<T>();
  return m;
}

template <class T, Op OpA, Op OpB>
struct Operands {
  Matrix<T> a, b;
  Operands(Index m, Index n, Index k, Generator& gen)
      : a(OpA == Op::none ? random<T>(m, k, gen) : random<T>(k, m, gen)),
        b(OpB == Op::none ? random<T>(k, n, gen) : random<T>(n, k, gen)) {}
};

/// The first element of c that differs from beta c0 + op(a) op(b), computed by a triple loop in
/// double, by more than the rounding bound of a k-term float (or double) dot product,
/// 2 k eps sum |terms|; (-1, -1) when none does.
template <class T, Op OpA, Op OpB>
std::array<Index, 2> first_wrong(const Operands<T, OpA, OpB>& x, const Matrix<T>& c0, T beta,
                                 const Matrix<T>& c) {
  const double eps = std::numeric_limits<T>::epsilon();
  // op(A)^T and op(B) in double, so that each dot product runs down two contiguous columns.
  const Matrix<double> at = OpA == Op::none ? Matrix<double>(x.a.transpose().template cast<double>())
                                            : Matrix<double>(x.a.template cast<double>());
  const Matrix<double> b = OpB == Op::none ? Matrix<double>(x.b.template cast<double>())
                                           : Matrix<double>(x.b.transpose().template cast<double>());
  const Index k = at.rows();
  for (Index j = 0; j < c.cols(); ++j)
    for (Index i = 0; i < c.rows(); ++i) {
      double sum = beta == T(0) ? 0.0 : double(beta) * double(c0(i, j));
      double magnitude = std::abs(sum);
      const double* a_row = at.data() + i * k;
      const double* b_col = b.data() + j * k;
      for (Index p = 0; p < k; ++p) {
        sum += a_row[p] * b_col[p];
        magnitude += std::abs(a_row[p] * b_col[p]);
      }
      const double bound = 2.0 * double(k + 2) * eps * magnitude + std::numeric_limits<T>::min();
      if (!(std::abs(double(c(i, j)) - sum) <= bound)) return {i, j};
    }
  return {-1, -1};
}

template <class T, Op OpA, Op OpB>
void check_shape(Gemm<T>& gemm, Shape shape, Generator& gen, T beta = T(0)) {
  const Index m = shape[0], n = shape[1], k = shape[2];
  const Operands<T, OpA, OpB> x(m, n, k, gen);
  Matrix<T> c0 = random<T>(m, n, gen);
  if (beta == T(0)) c0.fill(std::numeric_limits<T>::quiet_NaN());  // must not be read
  Matrix<T> c = c0;
  if (beta == T(0)) gemm.template multiply<OpA, OpB>(x.a, x.b, c);
  else gemm.template multiply<OpA, OpB>(x.a, x.b, c, beta);
  REQUIRE(c.rows() == m);
  REQUIRE(c.cols() == n);
  const auto wrong = first_wrong(x, c0, beta, c);
  CHECK_MESSAGE(wrong[0] < 0, "m n k ", m, " ", n, " ", k, " ops ", int(OpA), int(OpB), " beta ",
                double(beta), ": wrong at ", wrong[0], ",", wrong[1]);
}

template <class T>
void check_all_ops(Gemm<T>& gemm, Shape shape, Generator& gen, T beta = T(0)) {
  check_shape<T, Op::none, Op::none>(gemm, shape, gen, beta);
  check_shape<T, Op::none, Op::transpose>(gemm, shape, gen, beta);
  check_shape<T, Op::transpose, Op::none>(gemm, shape, gen, beta);
  check_shape<T, Op::transpose, Op::transpose>(gemm, shape, gen, beta);
}

/// Sizes around every register and tile boundary of the packed kernel, within 1..70.
const std::vector<Index> edge_rows = {1, 3, 4, 5, 8, 15, 16, 17, 31, 32, 33, 47, 48, 49, 63, 64, 65, 70};
const std::vector<Index> edge_cols = {1, 2, 3, 4, 5, 7, 8, 9, 11, 12, 13, 23, 24, 25, 36, 64, 70};

/// The workloads' products (W1, W3 training, W4 inference), with the ops their layers use.
const std::vector<Shape> forward_shapes = {{120, 64, 784}, {60, 64, 120},  {10, 64, 60},
                                           {512, 128, 784}, {256, 128, 512}, {10, 128, 256},
                                           {120, 1000, 784}, {60, 1000, 120}, {10, 1000, 60}};
const std::vector<Shape> weight_grad_shapes = {{120, 784, 64}, {60, 120, 64},  {10, 60, 64},
                                               {512, 784, 128}, {256, 512, 128}, {10, 256, 128}};
const std::vector<Shape> input_grad_shapes = {{120, 64, 60}, {60, 64, 10}, {512, 128, 256},
                                              {256, 128, 10}};

/// Whether Gemm's packed kernel runs (float and double, more than 16 rows) at this level.
bool packed_runs() { return simd::gemm_packed_serves(simd_level()); }

std::string kernel_name() {
#if defined(DROPNET_USE_BLAS)
  return "BLAS";
#else
  return packed_runs() ? std::string("packed ") + simd_level_name(simd_level()) + " (float, double)"
                       : std::string("Eigen's");
#endif
}

}  // namespace

TEST_CASE("the reference check can fail") {
  Generator gen(1);
  const Operands<float, Op::none, Op::transpose> x(20, 13, 9, gen);
  Matrix<float> c = x.a * x.b.transpose();
  const Matrix<float> unused;
  CHECK(first_wrong(x, unused, 0.f, c)[0] < 0);
  c(17, 12) += 1e-3f * std::abs(c(17, 12)) + 1e-6f;
  CHECK(first_wrong(x, unused, 0.f, c) == std::array<Index, 2>{17, 12});
}

TEST_CASE_TEMPLATE("Gemm equals the naive product at every edge shape in 1..70", T, float, double) {
  MESSAGE("kernel under test: ", kernel_name());
  Generator gen(3);
  Gemm<T> gemm;  // one object across shapes: its buffers must follow
  for (Index m : edge_rows)
    for (Index n : edge_cols) check_all_ops<T>(gemm, {m, n, 1 + Index(gen.below(70))}, gen);
  for (Index k = 1; k <= 70; ++k) check_all_ops<T>(gemm, {1 + k % 37, 70 - k % 29, k}, gen);
}

TEST_CASE_TEMPLATE("Gemm across K and column blocks", T, float, double) {
  Generator gen(4);
  Gemm<T> gemm;
  for (Index k : {255, 256, 257, 511, 513}) check_all_ops<T>(gemm, {33, 13, k}, gen);
  check_all_ops<T>(gemm, {300, 29, 300}, gen);  // two row blocks of 256
  check_all_ops<T>(gemm, {17, 4100, 3}, gen);   // two column blocks of 4092
}

TEST_CASE_TEMPLATE("Gemm equals the naive product on the workloads' shapes", T, float, double) {
  Generator gen(5);
  Gemm<T> gemm;
  for (const Shape& s : forward_shapes) check_shape<T, Op::none, Op::none>(gemm, s, gen);
  for (const Shape& s : weight_grad_shapes) check_shape<T, Op::none, Op::transpose>(gemm, s, gen);
  for (const Shape& s : input_grad_shapes) check_shape<T, Op::transpose, Op::none>(gemm, s, gen);
  check_shape<T, Op::transpose, Op::transpose>(gemm, {120, 64, 784}, gen);
}

TEST_CASE_TEMPLATE("Gemm with beta adds to C", T, float, double) {
  Generator gen(6);
  Gemm<T> gemm;
  for (T beta : {T(1), T(0.5), T(-2)})
    for (const Shape& s : {Shape{37, 13, 300}, Shape{5, 70, 9}, Shape{2, 9, 4}, Shape{16, 1, 5}})
      check_all_ops<T>(gemm, s, gen, beta);
  Matrix<T> a = random<T>(4, 5, gen), b = random<T>(5, 6, gen), c(4, 5);
  const auto wrong_c = [&] { gemm.template multiply<Op::none, Op::none>(a, b, c, T(1)); };
  const auto wrong_k = [&] { gemm.template multiply<Op::none, Op::none>(a, a, c); };
  CHECK_THROWS_AS(wrong_c(), InvalidArgument);
  CHECK_THROWS_AS(wrong_k(), InvalidArgument);
}

namespace {

/// op(a) op(b) where a, b and c are row blocks of taller matrices, so that every leading
/// dimension exceeds the rows (Conv2D passes Maps; a block is the general case): the result
/// must match, and c's parent outside the block must keep its values.
template <class T, Op OpA, Op OpB>
void check_blocks(Gemm<T>& gemm, Shape shape, Generator& gen, T beta) {
  const Index m = shape[0], n = shape[1], k = shape[2], pad = 3;
  const Operands<T, OpA, OpB> x(m, n, k, gen);
  Matrix<T> a_parent = random<T>(x.a.rows() + 2 * pad, x.a.cols(), gen);
  Matrix<T> b_parent = random<T>(x.b.rows() + 2 * pad, x.b.cols(), gen);
  Matrix<T> c_parent = random<T>(m + 2 * pad, n, gen);
  a_parent.middleRows(pad, x.a.rows()) = x.a;
  b_parent.middleRows(pad, x.b.rows()) = x.b;
  if (beta == T(0)) c_parent.middleRows(pad, m).fill(std::numeric_limits<T>::quiet_NaN());
  const Matrix<T> before = c_parent, c0 = c_parent.middleRows(pad, m);
  gemm.template multiply<OpA, OpB>(a_parent.middleRows(pad, x.a.rows()),
                                   b_parent.middleRows(pad, x.b.rows()),
                                   c_parent.middleRows(pad, m), beta);
  const auto wrong = first_wrong(x, c0, beta, Matrix<T>(c_parent.middleRows(pad, m)));
  CHECK_MESSAGE(wrong[0] < 0, "blocks, m n k ", m, " ", n, " ", k, " ops ", int(OpA), int(OpB),
                " beta ", double(beta), ": wrong at ", wrong[0], ",", wrong[1]);
  CHECK(c_parent.topRows(pad) == before.topRows(pad));
  CHECK(c_parent.bottomRows(pad) == before.bottomRows(pad));
}

}  // namespace

TEST_CASE_TEMPLATE("Gemm reads and writes blocks through their leading dimensions", T, float,
                   double) {
  Generator gen(8);
  Gemm<T> gemm;
  // The packed kernel (more than 16 rows), Eigen's kernel (16 or fewer) and the GEMV path.
  for (const Shape& s : {Shape{37, 13, 50}, Shape{9, 13, 20}, Shape{20, 2, 7}, Shape{3, 20, 9}})
    for (T beta : {T(0), T(1), T(0.5)}) {
      check_blocks<T, Op::none, Op::none>(gemm, s, gen, beta);
      check_blocks<T, Op::none, Op::transpose>(gemm, s, gen, beta);
      check_blocks<T, Op::transpose, Op::none>(gemm, s, gen, beta);
      check_blocks<T, Op::transpose, Op::transpose>(gemm, s, gen, beta);
    }
}

namespace {

/// C computed in one call, then column block by column block (as threads split it): the bits
/// must agree. Threads split C at multiples of 4 columns; the packed kernel (C with more than
/// 16 rows) claims more, any split. (A BLAS build makes no such claim: skipped there.)
template <class T, Op OpA, Op OpB>
void check_split(Shape shape, Generator& gen) {
  const Index m = shape[0], n = shape[1], k = shape[2];
  const Operands<T, OpA, OpB> x(m, n, k, gen);
  Gemm<T> gemm;
  Matrix<T> whole, part;
  gemm.template multiply<OpA, OpB>(x.a, x.b, whole);
  std::vector<Index> splits = {4, 8, (n / 2 + 3) / 4 * 4};
  if (packed_runs() && m > 32) splits.insert(splits.end(), {1, 5, n / 3});
  for (Index first : splits) {
    if (first <= 0 || first >= n) continue;
    for (const auto& range : {std::array<Index, 2>{0, first}, {first, n - first}}) {
      const Index begin = range[0], cols = range[1];
      if (cols < 4) continue;  // matrix-vector shapes take another kernel: no bitwise claim
      const Matrix<T> b_part = OpB == Op::none ? Matrix<T>(x.b.middleCols(begin, cols))
                                               : Matrix<T>(x.b.middleRows(begin, cols));
      gemm.template multiply<OpA, OpB>(x.a, b_part, part);
      CHECK_MESSAGE(part == whole.middleCols(begin, cols), "m n k ", m, " ", n, " ", k, " columns ",
                    begin, "+", cols);
    }
  }
}

template <class T, Op OpA, Op OpB>
void check_threads(Shape shape, Generator& gen) {
  const Index m = shape[0], n = shape[1], k = shape[2];
  const Operands<T, OpA, OpB> x(m, n, k, gen);
  Gemm<T> gemm;
  Matrix<T> one, two;
  Eigen::setNbThreads(1);
  gemm.template multiply<OpA, OpB>(x.a, x.b, one);
  Eigen::setNbThreads(2);
  gemm.template multiply<OpA, OpB>(x.a, x.b, two);
  Eigen::setNbThreads(1);
  CHECK_MESSAGE(one == two, "m n k ", m, " ", n, " ", k, " ops ", int(OpA), int(OpB));
}

template <class T, template <class, Op, Op> class Check>
void for_split_shapes(Generator& gen) {
  // Two threads start at 256K multiply-adds: 120x64x784, 70x333x200, 16x2001x131 (Eigen's
  // kernel, 16 rows) and 33x29x300 get them, with odd column counts; the others run on one.
  for (const Shape& s : {Shape{120, 64, 784}, Shape{70, 333, 200}, Shape{16, 2001, 131},
                         Shape{10, 60, 64}, Shape{33, 29, 300}, Shape{5, 9, 7}}) {
    Check<T, Op::none, Op::none>::run(s, gen);
    Check<T, Op::none, Op::transpose>::run(s, gen);
    Check<T, Op::transpose, Op::none>::run(s, gen);
    Check<T, Op::transpose, Op::transpose>::run(s, gen);
  }
}

template <class T, Op OpA, Op OpB>
struct Split {
  static void run(Shape s, Generator& gen) { check_split<T, OpA, OpB>(s, gen); }
};
template <class T, Op OpA, Op OpB>
struct Threads {
  static void run(Shape s, Generator& gen) { check_threads<T, OpA, OpB>(s, gen); }
};

}  // namespace

TEST_CASE_TEMPLATE("Gemm's columns do not depend on how C is split", T, float, double) {
#if defined(DROPNET_USE_BLAS)
  MESSAGE("BLAS build: the BLAS decides its own splits and makes no bitwise claim");
#else
  Generator gen(7);
  for_split_shapes<T, Split>(gen);
#endif
}

TEST_CASE_TEMPLATE("Gemm gives the same bits with 1 and 2 threads", T, float, double) {
#if defined(_OPENMP)
  Generator gen(8);
  for_split_shapes<T, Threads>(gen);
#else
  MESSAGE("built without OpenMP: one thread only (the column-split test covers the kernel)");
#endif
}

namespace {

/// b with its stored column j multiplied by s's column j % s.cols(): the copy that
/// multiply_scaled never writes.
template <class T>
Matrix<T> scaled_copy(const Matrix<T>& b, const Eigen::Ref<const Matrix<T>>& s) {
  Matrix<T> out(b.rows(), b.cols());
  for (Index j = 0; j < b.cols(); ++j) out.col(j) = b.col(j).cwiseProduct(s.col(j % s.cols()));
  return out;
}

/// multiply_scaled against multiply on the scaled copy, bit for bit: the packed kernel
/// multiplies the same values in while packing (one rounding each, as the copy), the other
/// kernels run on such a copy. The scale is a block of a taller matrix (its leading dimension
/// exceeds b's rows) with `period` columns, which repeat where b has more.
template <class T, Op OpA, Op OpB>
void check_scaled(Shape shape, Index period, T beta, int threads, Generator& gen) {
  const Index m = shape[0], n = shape[1], k = shape[2];
  const Operands<T, OpA, OpB> x(m, n, k, gen);
  const Matrix<T> s_parent = random<T>(x.b.rows() + 5, period, gen);
  const auto s = s_parent.middleRows(2, x.b.rows());
  const Matrix<T> c0 = random<T>(m, n, gen);
  Matrix<T> expected = c0, got = c0;
  Gemm<T> plain, scaled;
  Eigen::setNbThreads(threads);
  plain.template multiply<OpA, OpB>(x.a, scaled_copy<T>(x.b, s), expected, beta);
  scaled.template multiply_scaled<OpA, OpB>(x.a, x.b, s, got, beta);
  Eigen::setNbThreads(1);
  CHECK_MESSAGE(got == expected, "m n k ", m, " ", n, " ", k, " period ", period, " ops ", int(OpA),
                int(OpB), " beta ", double(beta), " threads ", threads);
}

template <class T>
void check_scaled_all_ops(Shape shape, Index period, T beta, int threads, Generator& gen) {
  check_scaled<T, Op::none, Op::none>(shape, period, beta, threads, gen);
  check_scaled<T, Op::none, Op::transpose>(shape, period, beta, threads, gen);
  check_scaled<T, Op::transpose, Op::none>(shape, period, beta, threads, gen);
  check_scaled<T, Op::transpose, Op::transpose>(shape, period, beta, threads, gen);
}

}  // namespace

TEST_CASE_TEMPLATE("Gemm::multiply_scaled is the product of b times the repeated scale", T, float,
                   double) {
  Generator gen(10);
  // The packed kernel (panel edges, two row blocks, K blocks past 256, two column blocks of
  // 4092), few rows, the GEMV path; with beta 0 and 1.
  for (const Shape& sh : {Shape{37, 13, 50}, Shape{300, 29, 300}, Shape{33, 13, 513},
                          Shape{17, 4100, 3}, Shape{9, 13, 20}, Shape{20, 2, 7}})
    for (T beta : {T(0), T(1)}) check_scaled_all_ops<T>(sh, 7, beta, 1, gen);
  // The recurrent layers' shapes: a step's product (the mask's columns are the batch's) and a
  // weight gradient over 28 steps (b transposed: the mask repeats along K).
  check_scaled<T, Op::none, Op::none>({128, 64, 128}, 64, T(1), 1, gen);
  check_scaled<T, Op::none, Op::transpose>({128, 128, 28 * 64}, 64, T(0), 1, gen);
#if defined(_OPENMP)
  check_scaled_all_ops<T>({120, 64, 784}, 5, T(0), 2, gen);  // each thread's share of columns
#endif
  Matrix<T> a = random<T>(4, 5, gen), b = random<T>(5, 6, gen), c(4, 6);
  const Matrix<T> wrong_rows = random<T>(4, 2, gen), no_column(5, 0);
  const auto with = [&](const Matrix<T>& s) {
    Gemm<T> gemm;
    gemm.template multiply_scaled<Op::none, Op::none>(a, b, s, c, T(0));
  };
  CHECK_THROWS_AS(with(wrong_rows), InvalidArgument);
  CHECK_THROWS_AS(with(no_column), InvalidArgument);
}

TEST_CASE("Gemm allocates nothing after the first call at its largest shape") {
  // The packed kernel's and the BLAS's buffers only grow, so a forward Gemm alternating between
  // the training and the validation batch stays allocation-free; Eigen's kernel re-sizes its
  // blocking at each change of shape, so for it only a stable shape is claimed.
#if defined(DROPNET_USE_BLAS)
  const bool alternate = true;
#else
  const bool alternate = packed_runs();
#endif
  Generator gen(9);
  for (int threads : {1, 2}) {
    Eigen::setNbThreads(threads);
    Gemm<float> forward, weight_grad, input_grad;
    const Operands<float, Op::none, Op::none> train(120, 64, 784, gen), valid(120, 1000, 784, gen);
    const Matrix<float> dz = random<float>(120, 64, gen);
    Matrix<float> z_train, z_valid, dw, dx;
    const auto step = [&] {
      forward.multiply<Op::none, Op::none>(train.a, train.b, z_train);
      weight_grad.multiply<Op::none, Op::transpose>(dz, train.b, dw);
      input_grad.multiply<Op::transpose, Op::none>(train.a, dz, dx);
      weight_grad.multiply<Op::none, Op::transpose>(dz, train.b, dw, 0.5f);
    };
    const auto validate = [&] { forward.multiply<Op::none, Op::none>(valid.a, valid.b, z_valid); };
    if (alternate) validate();
    step();
    std::string error;
    long news = 0;
    {
      NoAllocationScope guard;  // no doctest macro inside: they may allocate
      try {
        for (int i = 0; i < 3; ++i) {
          if (alternate) validate();
          step();
        }
      } catch (const std::runtime_error& e) {
        error = e.what();
      }
      news = guard.new_calls();
    }
    CHECK_MESSAGE(error.empty(), "Gemm allocated through Eigen (threads ", threads, "): ", error);
    CHECK_MESSAGE(news == 0, "threads ", threads);
  }
  Eigen::setNbThreads(1);
}
