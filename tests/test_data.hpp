#pragma once
// Small synthetic data shared by the tests.

#include <dropnet/core/generator.hpp>
#include <dropnet/core/types.hpp>

namespace dropnet::test {

/// rows x cols entries drawn from N(mean, stddev^2) by `gen`, in column-major order.
template <class T>
Matrix<T> normal_matrix(Index rows, Index cols, Generator& gen, double mean = 0.0,
                        double stddev = 1.0) {
  Matrix<T> m(rows, cols);
  for (Index i = 0; i < m.size(); ++i) m.data()[i] = gen.normal<T>(T(mean), T(stddev));
  return m;
}

}  // namespace dropnet::test
