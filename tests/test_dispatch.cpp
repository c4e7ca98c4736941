// Runtime SIMD dispatch (simd/dispatch.hpp): the level detected, the DROPNET_SIMD override and
// set_simd_level, and that every level this machine supports computes what the others do:
// products within the rounding bound of a k-term dot product (and AVX-512 = AVX2 bit for bit,
// since both packed kernels run the same FMA chains), dropout masks bit for bit.
//
// Built with the default flags (x86-64 baseline) as CMake builds every test: on an AVX-512
// machine the packed AVX-512 kernel must still be the one selected. ctest also runs this binary
// with DROPNET_SIMD set (tests/CMakeLists.txt) to check the environment override.

#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <dropnet/activations/elu.hpp>
#include <dropnet/activations/sigmoid.hpp>
#include <dropnet/activations/softmax.hpp>
#include <dropnet/activations/swish.hpp>
#include <dropnet/core/gemm.hpp>
#include <dropnet/core/generator.hpp>
#include <dropnet/layers/bernoulli_mask.hpp>
#include <dropnet/simd/dispatch.hpp>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

using namespace dropnet;

namespace {

/// Restores the process's level when a test case that forces one ends.
struct LevelGuard {
  SimdLevel saved = simd_level();
  ~LevelGuard() { set_simd_level(saved); }
};

/// The levels this CPU supports, baseline first.
std::vector<SimdLevel> supported_levels() {
  std::vector<SimdLevel> levels;
  for (SimdLevel level : {SimdLevel::baseline, SimdLevel::avx2, SimdLevel::avx512})
    if (level <= cpu_simd_level()) levels.push_back(level);
  return levels;
}

/// The level the kernel reports from /proc/cpuinfo's flags (an independent witness of cpuid);
/// -1 where there is no such file (not Linux) or not x86.
int proc_cpuinfo_level() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("flags", 0) != 0) continue;
    std::istringstream words(line.substr(line.find(':') + 1));
    bool avx512f = false, avx2 = false, fma = false;
    for (std::string w; words >> w;)
      avx512f |= w == "avx512f", avx2 |= w == "avx2", fma |= w == "fma";
    return avx512f ? 2 : avx2 && fma ? 1 : 0;
  }
  return -1;
}

template <class T>
Matrix<T> random(Index rows, Index cols, Generator& gen) {
  Matrix<T> m(rows, cols);
  for (Index i = 0; i < m.size(); ++i) m.data()[i] = gen.normal<T>();
  return m;
}

/// Largest |c - d| / (2 k eps sum_p |op(a)(i, p) op(b)(p, j)|) over C: at most 1 when both are
/// within the rounding bound of a k-term dot product of the exact value, and so of each other.
template <class T>
double bound_ratio(const Matrix<T>& opa, const Matrix<T>& opb, const Matrix<T>& c,
                   const Matrix<T>& d) {
  const Matrix<double> abs_product =
      opa.template cast<double>().cwiseAbs() * opb.template cast<double>().cwiseAbs();
  const double scale = 2.0 * double(opa.cols()) * double(std::numeric_limits<T>::epsilon());
  double worst = 0;
  for (Index i = 0; i < c.size(); ++i) {
    const double diff = std::abs(double(c.data()[i]) - double(d.data()[i]));
    worst = std::max(worst, diff / (scale * abs_product.data()[i] + 1e-300));
  }
  return worst;
}

/// One product C = op(A) op(B) of shape m x n x k through Gemm at the current level.
template <class T, Op OpA, Op OpB>
Matrix<T> product_at(SimdLevel level, const Matrix<T>& a, const Matrix<T>& b) {
  set_simd_level(level);
  Gemm<T> gemm;
  Matrix<T> c;
  gemm.template multiply<OpA, OpB>(a, b, c);
  return c;
}

/// Every supported level against the baseline, and avx512 against avx2 bit for bit. Returns the
/// largest bound_ratio of a level against the baseline, per level.
template <class T, Op OpA, Op OpB>
std::vector<double> compare_levels(Index m, Index n, Index k, Generator& gen) {
  const Matrix<T> a = OpA == Op::none ? random<T>(m, k, gen) : random<T>(k, m, gen);
  const Matrix<T> b = OpB == Op::none ? random<T>(k, n, gen) : random<T>(n, k, gen);
  const Matrix<T> opa = OpA == Op::none ? a : Matrix<T>(a.transpose());
  const Matrix<T> opb = OpB == Op::none ? b : Matrix<T>(b.transpose());
  std::vector<Matrix<T>> results;
  for (SimdLevel level : supported_levels())
    results.push_back(product_at<T, OpA, OpB>(level, a, b));
  std::vector<double> worst(results.size(), 0.0);
  for (std::size_t l = 1; l < results.size(); ++l) {
    worst[l] = bound_ratio(opa, opb, results[0], results[l]);
    CHECK_MESSAGE(worst[l] <= 1.0, "level ", std::string(simd_level_name(supported_levels()[l])),
                  " m n k ", m, " ", n, " ", k, " ops ", int(OpA), int(OpB));
  }
  if (results.size() == 3)
    CHECK_MESSAGE(results[1] == results[2], "avx2 != avx512: m n k ", m, " ", n, " ", k, " ops ",
                  int(OpA), int(OpB));
  return worst;
}

/// compare_levels for the four op combinations; folds the worst ratios into `worst`.
template <class T>
void compare_all_ops(Index m, Index n, Index k, Generator& gen, std::vector<double>& worst) {
  for (const auto& w : {compare_levels<T, Op::none, Op::none>(m, n, k, gen),
                        compare_levels<T, Op::none, Op::transpose>(m, n, k, gen),
                        compare_levels<T, Op::transpose, Op::none>(m, n, k, gen),
                        compare_levels<T, Op::transpose, Op::transpose>(m, n, k, gen)})
    for (std::size_t l = 0; l < w.size(); ++l) worst[l] = std::max(worst[l], w[l]);
}

}  // namespace

TEST_CASE("the level detected matches the CPU, and the default build selects it") {
  MESSAGE("cpu_simd_level ", std::string(simd_level_name(cpu_simd_level())), ", simd_level ",
          std::string(simd_level_name(simd_level())), ", DROPNET_SIMD ",
          std::string(std::getenv("DROPNET_SIMD") ? std::getenv("DROPNET_SIMD") : "(unset)"));
  const int witness = proc_cpuinfo_level();
#if defined(DROPNET_SIMD_X86)
  if (witness >= 0) CHECK(int(cpu_simd_level()) == witness);
#else
  MESSAGE("x86 kernels not compiled; /proc/cpuinfo's level: ", witness);
  CHECK(cpu_simd_level() == SimdLevel::baseline);
#endif
  if (std::getenv("DROPNET_SIMD") == nullptr) CHECK(simd_level() == cpu_simd_level());
#if defined(DROPNET_SIMD_X86) && !defined(__AVX512F__)
  // The point of the dispatch: a binary built for the x86-64 baseline runs the packed kernels.
  if (cpu_simd_level() == SimdLevel::avx512 && std::getenv("DROPNET_SIMD") == nullptr)
    CHECK(simd::gemm_packed_serves(simd_level()));
#endif
}

// With DROPNET_COMPILED_LIB the kernels run in dropnet::compiled (src/kernels.cpp), and this file
// neither compiles them nor includes <immintrin.h> (its point: compile time); the cases above
// and below then check the library's kernels through the declared entry points.
TEST_CASE("a file built with DROPNET_COMPILED_LIB leaves the kernels to the library") {
#if defined(DROPNET_COMPILED_LIB)
  CHECK(DROPNET_KERNELS_DECLARED == 1);
#if !defined(__AVX__)  // with AVX on, Eigen includes <immintrin.h> itself
#if defined(_IMMINTRIN_H_INCLUDED) || defined(__IMMINTRIN_H)
  FAIL("<immintrin.h> was included by a file built with DROPNET_COMPILED_LIB");
#endif
#endif
#elif defined(DROPNET_KERNELS_DECLARED)
  FAIL("header-only build, yet the kernels are declared only");
#else
  MESSAGE("header-only build: the kernels are compiled in this file");
#endif
}

TEST_CASE("DROPNET_SIMD picks the level, clamped to the CPU's; an unknown value is ignored") {
  const char* env = std::getenv("DROPNET_SIMD");
  SimdLevel expected = cpu_simd_level();
  if (env != nullptr) {
    if (std::strcmp(env, "baseline") == 0) expected = SimdLevel::baseline;
    if (std::strcmp(env, "avx2") == 0) expected = std::min(SimdLevel::avx2, cpu_simd_level());
  }
  // The first call read the environment; later set_simd_level calls are undone by their guards.
  CHECK(simd_level() == expected);
}

TEST_CASE("set_simd_level forces any supported level and refuses one above the CPU's") {
  LevelGuard guard;
  for (SimdLevel level : supported_levels()) {
    set_simd_level(level);
    CHECK(simd_level() == level);
  }
  const SimdLevel above = SimdLevel(int(cpu_simd_level()) + 1);
  CHECK_THROWS_AS(set_simd_level(above), InvalidArgument);
  CHECK(simd_level() == supported_levels().back());  // unchanged by the refused call
  CHECK(std::string(simd_level_name(SimdLevel::avx512)) == "avx512");
  CHECK(std::string(simd_level_name(SimdLevel::avx2)) == "avx2");
  CHECK(std::string(simd_level_name(SimdLevel::baseline)) == "baseline");
}

TEST_CASE_TEMPLATE("Gemm agrees across levels on W1's products and on edge shapes", T, float,
                   double) {
  LevelGuard guard;
  Generator gen(17);
  std::vector<double> worst(supported_levels().size(), 0.0);
  // W1 (784-120-60-10, batch 64): forward W X, weight gradient dZ X^T, input gradient W^T dZ;
  // then C taller than a 256-row block, K over two blocks, 4 columns, and odd edges.
  for (const auto& s : std::vector<std::array<Index, 3>>{{120, 64, 784},
                                                         {60, 64, 120},
                                                         {120, 784, 64},
                                                         {60, 120, 64},
                                                         {120, 64, 60},
                                                         {784, 64, 120},
                                                         {33, 29, 300},
                                                         {17, 13, 5},
                                                         {70, 4, 513}})
    compare_all_ops<T>(s[0], s[1], s[2], gen, worst);
  for (std::size_t l = 1; l < worst.size(); ++l)
    MESSAGE(std::string(simd_level_name(supported_levels()[l])),
            " vs baseline: largest |difference| / (2 k eps sum |terms|) = ", worst[l]);
}

TEST_CASE("Philox blocks and dropout masks are bit-identical at every level") {
  LevelGuard guard;
  const simd::PhiloxKey key = {0x2468ace0u, 0x13579bdfu};
  const std::uint64_t first = (std::uint64_t{1} << 32) - 37;  // crosses the high-word carry
  const std::size_t count = 64 + 16 + 8 + 3;                  // every loop of every level
  const KeepThreshold keep("test", 0.4);
  std::vector<std::vector<std::uint32_t>> words;
  std::vector<std::vector<float>> masks;
  for (SimdLevel level : supported_levels()) {
    set_simd_level(level);
    words.emplace_back(4 * count);
    simd::philox_blocks(key, first, count, words.back().data());
    const Generator gen(2024);
    masks.emplace_back(784 * 64);
    fill_bernoulli(gen, 11, keep, 1.f / 0.6f, 0.f, masks.back().data(), Index(784 * 64));
  }
  for (std::size_t b = 0; b < count; ++b) {
    const auto reference = simd::philox_block(key, first + b);
    for (std::size_t w = 0; w < 4; ++w) REQUIRE(words[0][4 * b + w] == reference[w]);
  }
  for (std::size_t l = 1; l < words.size(); ++l) {
    CHECK_MESSAGE(words[l] == words[0], simd_level_name(supported_levels()[l]));
    CHECK_MESSAGE(
        std::memcmp(masks[l].data(), masks[0].data(), masks[0].size() * sizeof(float)) == 0,
        simd_level_name(supported_levels()[l]));
  }
}

namespace {

/// Runs act's forward and backward passes on z (40 x 100, z in [-20, 20]) at every supported
/// level and checks that each level's a and dz are within 2 `bound` ulp of max(1, |value|) of
/// the baseline's: each level is within `bound` of the exact values (tests/test_simd.cpp
/// measures the kernels; the column steps of LogSoftmax add a few roundings).
template <class Activation>
void check_activation_levels(Activation act, double bound) {
  LevelGuard guard;
  Matrix<float> z(40, 100), da(40, 100);
  for (Index i = 0; i < z.size(); ++i) {
    z.data()[i] = -20.f + 40.f * float(i) / float(z.size() - 1);
    da.data()[i] = 1.f - 0.5f * float(i % 3);
  }
  std::vector<Matrix<float>> a, dz;
  for (SimdLevel level : supported_levels()) {
    set_simd_level(level);
    a.emplace_back();
    dz.emplace_back();
    act.forward(z, a.back());
    act.backward(z, a.back(), da, dz.back());
  }
  const double ulp = std::numeric_limits<float>::epsilon() / 2;
  for (std::size_t l = 1; l < a.size(); ++l)
    for (const auto& [results, what] : {std::pair{&a, "forward"}, std::pair{&dz, "backward"}}) {
      double worst = 0;
      for (Index i = 0; i < z.size(); ++i) {
        const double base = (*results)[0].data()[i], other = (*results)[l].data()[i];
        worst = std::max(worst, std::abs(other - base) / (ulp * std::max(1.0, std::abs(base))));
      }
      const std::string where = std::string(Activation::kind) + " " + what + " at " +
                                simd_level_name(supported_levels()[l]) + ": " +
                                std::to_string(worst) + " ulp from baseline";
      CHECK_MESSAGE(worst <= 2 * bound, where);
    }
}

}  // namespace

TEST_CASE("the exp-based activations agree across levels within their ulp bounds") {
  check_activation_levels(Sigmoid{}, 3);
  check_activation_levels(Tanh{}, 3);
  check_activation_levels(Swish{}, 3);
  check_activation_levels(GELUTanh{}, 3);
  check_activation_levels(GELU{}, 8);
  check_activation_levels(Softplus{}, 3);
  check_activation_levels(ELU(0.5), 3);
  check_activation_levels(SELU{}, 3);
  check_activation_levels(LogSoftmax{}, 8);
}
