// Gemm: every transpose combination and shape (a batch of one included) gives Eigen's product,
// and reusing one Gemm across shapes stays correct.

#include <doctest/doctest.h>

#include <dropnet/core/gemm.hpp>
#include <dropnet/core/generator.hpp>
#include <array>
#include <type_traits>

using namespace dropnet;

namespace {

template <class T>
Matrix<T> random(Index rows, Index cols, Generator& gen) {
  Matrix<T> m(rows, cols);
  for (Index i = 0; i < m.size(); ++i) m.data()[i] = gen.normal<T>();
  return m;
}

template <class T, Op OpA, Op OpB>
void check_shape(Gemm<T>& gemm, Index m, Index n, Index k, Generator& gen) {
  const Matrix<T> a = OpA == Op::none ? random<T>(m, k, gen) : random<T>(k, m, gen);
  const Matrix<T> b = OpB == Op::none ? random<T>(k, n, gen) : random<T>(n, k, gen);
  const Matrix<T> op_a = OpA == Op::none ? a : Matrix<T>(a.transpose());
  const Matrix<T> op_b = OpB == Op::none ? b : Matrix<T>(b.transpose());
  const Matrix<T> expected = op_a * op_b;
  Matrix<T> c;
  gemm.template multiply<OpA, OpB>(a, b, c);
  REQUIRE(c.rows() == m);
  REQUIRE(c.cols() == n);
  const double tolerance = std::is_same_v<T, float> ? 1e-4 : 1e-12;
  CHECK(double((c - expected).cwiseAbs().maxCoeff()) <= tolerance * double(k));
}

}  // namespace

TEST_CASE_TEMPLATE("Gemm equals Eigen's product for every op and shape", T, float, double) {
  Generator gen(3);
  Gemm<T> gemm;  // one object across shapes: its buffers must follow
  for (auto [m, n, k] : {std::array<Index, 3>{120, 64, 784}, {60, 64, 120}, {10, 1, 60},
                         {1, 7, 5}, {3, 3, 3}, {784, 120, 64}, {17, 33, 9}, {120, 64, 784}}) {
    check_shape<T, Op::none, Op::none>(gemm, m, n, k, gen);
    check_shape<T, Op::none, Op::transpose>(gemm, m, n, k, gen);
    check_shape<T, Op::transpose, Op::none>(gemm, m, n, k, gen);
    check_shape<T, Op::transpose, Op::transpose>(gemm, m, n, k, gen);
  }
}
