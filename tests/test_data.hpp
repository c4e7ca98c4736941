#pragma once
// Small synthetic data shared by the tests.

#include <dropnet/core/generator.hpp>
#include <dropnet/core/types.hpp>
#include <cmath>
#include <dropnet/simd/dispatch.hpp>
#include <vector>

namespace dropnet::test {

/// Standard deviations a statistic may stray from its expectation in the statistical tests: a
/// correct sampler fails such a check with probability below 6e-7, a wrong rate or scale misses
/// it by tens of sigma.
constexpr double kSigmas = 5.0;

/// Whether `count` successes in `n` independent Bernoulli(p) trials lie within kSigmas standard
/// deviations of the binomial mean n p.
inline bool within_binomial(double count, double n, double p) {
  return std::abs(count - n * p) <= kSigmas * std::sqrt(n * p * (1.0 - p));
}

/// rows x cols entries drawn from N(mean, stddev^2) by `gen`, in column-major order.
template <class T = double>
Matrix<T> normal_matrix(Index rows, Index cols, Generator& gen, double mean = 0.0,
                        double stddev = 1.0) {
  Matrix<T> m(rows, cols);
  for (Index i = 0; i < m.size(); ++i) m.data()[i] = gen.normal<T>(T(mean), T(stddev));
  return m;
}

/// Forces a SIMD level for a scope and puts back the previous one.
class SimdLevelScope {
 public:
  explicit SimdLevelScope(SimdLevel level) : saved_(simd_level()) { set_simd_level(level); }
  ~SimdLevelScope() { set_simd_level(saved_); }
  SimdLevelScope(const SimdLevelScope&) = delete;
  SimdLevelScope& operator=(const SimdLevelScope&) = delete;

 private:
  SimdLevel saved_;
};

/// The SIMD levels this CPU supports, baseline first.
inline std::vector<SimdLevel> supported_levels() {
  std::vector<SimdLevel> levels;
  for (SimdLevel level : {SimdLevel::baseline, SimdLevel::avx2, SimdLevel::avx512})
    if (level <= cpu_simd_level()) levels.push_back(level);
  return levels;
}

}  // namespace dropnet::test
