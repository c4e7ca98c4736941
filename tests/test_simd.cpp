// simd/: the vectorized kernels give exactly what their scalar references give (Philox), and the
// elementwise kernels what their scalar formulas give at every SIMD level.

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <dropnet/simd/dispatch.hpp>
#include <dropnet/simd/elementwise.hpp>
#include <dropnet/simd/philox.hpp>
#include <limits>
#include <vector>

using namespace dropnet::simd;

TEST_CASE("philox_blocks equals philox_block, for every count and across a 2^32 counter carry") {
  const PhiloxKey key = {0x12345678u, 0x9abcdef0u};
  for (std::uint64_t first : {std::uint64_t{0}, std::uint64_t{5}, (std::uint64_t{1} << 32) - 7}) {
    for (std::size_t count : {std::size_t{0}, std::size_t{1}, std::size_t{7}, std::size_t{8},
                              std::size_t{15}, std::size_t{16}, std::size_t{17}, std::size_t{64},
                              std::size_t{101}}) {
      std::vector<std::uint32_t> out(4 * count + 4, 0xdeadbeefu);
      philox_blocks(key, first, count, out.data());
      for (std::size_t b = 0; b < count; ++b) {
        const auto words = philox_block(key, first + b);
        for (std::size_t k = 0; k < 4; ++k) REQUIRE(out[4 * b + k] == words[k]);
      }
      CHECK(out[4 * count] == 0xdeadbeefu);  // nothing written past the end
    }
  }
}

TEST_CASE("philox_block matches the Random123 known-answer vectors") {
  // Philox4x32-10 known-answer test from Random123 (kat_vectors): counter 0, key 0.
  // Our counter uses lanes 0-1 for the index and 2-3 = 0, so index 0 is counter (0,0,0,0).
  const auto words = philox_block({0u, 0u}, 0);
  CHECK(words[0] == 0x6627e8d5u);
  CHECK(words[1] == 0xe169c58du);
  CHECK(words[2] == 0xbc57ac4cu);
  CHECK(words[3] == 0x9b00dbd8u);
}

// ---- The elementwise kernels (simd/elementwise.hpp) at every level this CPU supports ----
// Each level against a scalar reference written here, on every length up to a few registers
// (whole registers and every tail), with a guard past the end. Kernels made only of a multiply,
// an add, a max or a select cannot be contracted, so every level must equal the reference bit
// for bit; Adam's multiply-adds may become FMAs on the avx2 and avx512 levels (GNU dialects
// contract by default), so there avx2 must equal avx512 bit for bit and both the reference
// within the rounding of the contracted terms.

namespace {

using dropnet::SimdLevel;
using Eigen::Index;

/// The levels this CPU supports, baseline first.
std::vector<SimdLevel> supported_levels() {
  std::vector<SimdLevel> levels;
  for (SimdLevel level : {SimdLevel::baseline, SimdLevel::avx2, SimdLevel::avx512})
    if (level <= dropnet::cpu_simd_level()) levels.push_back(level);
  return levels;
}

/// Restores the process's level when a test case that forces one ends.
struct LevelGuard {
  SimdLevel saved = dropnet::simd_level();
  ~LevelGuard() { dropnet::set_simd_level(saved); }
};

/// Lengths covering empty, partial, whole and whole-plus-partial registers at every level.
const std::vector<Index> lengths = {0, 1, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 64, 67, 120};

/// n values in [-2, 2), with exact zeros, -0 and a NaN mixed in when there is room.
template <class T>
std::vector<T> values(Index n, unsigned seed) {
  std::vector<T> v(static_cast<std::size_t>(n));
  std::uint32_t state = seed * 2654435761u + 1u;
  for (auto& x : v) {
    state = state * 1664525u + 1013904223u;
    x = T(4) * T(state >> 8) / T(1 << 24) - T(2);
  }
  if (n > 5) v[1] = T(0), v[3] = -T(0), v[5] = std::numeric_limits<T>::quiet_NaN();
  return v;
}

/// Bitwise equality of the first n values, and the guard value untouched at v[n].
template <class T>
bool same_bits(const std::vector<T>& a, const std::vector<T>& b, Index n) {
  return std::memcmp(a.data(), b.data(), static_cast<std::size_t>(n) * sizeof(T)) == 0;
}

/// Runs `kernel(out)` at every supported level on a fresh copy of `init` (n values plus one
/// guard) and checks each result bit for bit against `expected` and the guard.
template <class T, class Kernel>
void check_levels(const std::vector<T>& init, const std::vector<T>& expected, Index n,
                  Kernel kernel, const char* what) {
  LevelGuard guard;
  for (SimdLevel level : supported_levels()) {
    dropnet::set_simd_level(level);
    std::vector<T> out = init;
    out.push_back(T(12345));
    kernel(out.data());
    CHECK_MESSAGE(same_bits(out, expected, n), what, " at ", dropnet::simd_level_name(level),
                  ", n = ", n);
    CHECK_MESSAGE(out[static_cast<std::size_t>(n)] == T(12345), what, " wrote past the end");
  }
}

}  // namespace

TEST_CASE_TEMPLATE("activation kernels equal their scalar formulas at every level", T, float,
                   double) {
  for (Index n : lengths) {
    const std::vector<T> z = values<T>(n, 1), d = values<T>(n, 2);
    for (T slope : {T(0), T(0.01), T(-0.5), T(1.5)}) {
      std::vector<T> max_ref(z.size()), scale_ref(z.size());
      for (std::size_t i = 0; i < z.size(); ++i) {
        const T scaled = slope == T(0) ? T(0) : slope * z[i];
        max_ref[i] = scaled > z[i] ? scaled : z[i];  // x86 max: the second operand on NaN
        scale_ref[i] = z[i] > T(0) ? d[i] : (slope == T(0) ? T(0) : slope * d[i]);
      }
      check_levels<T>(z, max_ref, n, [&](T* out) { max_scaled(z.data(), out, n, slope); },
                      "max_scaled");
      check_levels<T>(d, scale_ref, n,
                      [&](T* out) { scale_non_positive(z.data(), out, out, n, slope); },
                      "scale_non_positive (in place)");
    }
    std::vector<T> product_ref(z.size());
    for (std::size_t i = 0; i < z.size(); ++i) product_ref[i] = z[i] * d[i];
    check_levels<T>(z, product_ref, n, [&](T* out) { multiply(out, d.data(), out, n); },
                    "multiply");
  }
}

TEST_CASE("ReLU through max_scaled keeps NaN and gives +0, not -0, for negative inputs") {
  const std::vector<float> z = {-3.f, -0.f, 0.f, 2.f, std::numeric_limits<float>::quiet_NaN()};
  LevelGuard guard;
  for (SimdLevel level : supported_levels()) {
    dropnet::set_simd_level(level);
    std::vector<float> a(z.size());
    max_scaled(z.data(), a.data(), Index(z.size()), 0.f);
    CHECK(a[0] == 0.f);
    CHECK(!std::signbit(a[0]));
    CHECK(a[3] == 2.f);
    CHECK(std::isnan(a[4]));
    std::vector<float> dz(z.size());
    const std::vector<float> da(z.size(), std::numeric_limits<float>::infinity());
    scale_non_positive(z.data(), da.data(), dz.data(), Index(z.size()), 0.f);
    CHECK(dz[0] == 0.f);  // an exact 0, not 0 * inf
    CHECK(dz[3] == std::numeric_limits<float>::infinity());
    CHECK(dz[4] == 0.f);
  }
}

TEST_CASE_TEMPLATE("add_to_columns adds the bias to every column at every level", T, float,
                   double) {
  for (Index rows : {Index(1), Index(7), Index(16), Index(33), Index(120)}) {
    const Index cols = 5;
    const std::vector<T> z = values<T>(rows * cols, 3), bias = values<T>(rows, 4);
    std::vector<T> expected = z;
    for (Index j = 0; j < cols; ++j)
      for (Index i = 0; i < rows; ++i)
        expected[static_cast<std::size_t>(j * rows + i)] += bias[static_cast<std::size_t>(i)];
    check_levels<T>(z, expected, rows * cols,
                    [&](T* out) { add_to_columns(out, rows, cols, bias.data()); },
                    "add_to_columns");
  }
}

TEST_CASE_TEMPLATE("adam_update agrees with its scalar formulas at every level", T, float,
                   double) {
  AdamConstants<T> c{};
  c.step_size = T(1e-3 / (1 - 0.9 * 0.9));
  c.inv_bc2_sqrt = T(1 / std::sqrt(1 - 0.999 * 0.999));
  c.decay = T(1 - 1e-3 * 1e-2);
  c.coupled_wd = T(1e-2);
  c.beta1 = T(0.9), c.beta2 = T(0.999);
  c.one_minus_beta1 = T(0.1), c.one_minus_beta2 = T(1e-3);
  c.eps = T(1e-8);
  const T eps = std::numeric_limits<T>::epsilon();
  for (Index n : lengths) {
    for (int variant = 0; variant < 4; ++variant) {  // plain, AdamW decay, Adam L2, amsgrad
      c.decoupled_decay = variant == 1;
      c.coupled_decay = variant == 2;
      const bool amsgrad = variant == 3;
      std::vector<T> p0 = values<T>(n, 5), g = values<T>(n, 6), m0 = values<T>(n, 7);
      std::vector<T> v0 = values<T>(n, 8), vmax0 = values<T>(n, 9);
      for (auto* a : {&p0, &g, &m0}) std::replace_if(a->begin(), a->end(), [](T x) { return std::isnan(x); }, T(0.5));
      for (auto* a : {&v0, &vmax0})
        for (auto& x : *a) x = std::isnan(x) ? T(0.25) : x * x;  // second moments are >= 0
      // The reference, formula by formula as optimizers/adam.hpp documents it.
      std::vector<T> p = p0, m = m0, v = v0, vmax = vmax0;
      for (std::size_t i = 0; i < p.size(); ++i) {
        T grad = g[i];
        if (c.decoupled_decay) p[i] = p[i] * c.decay;
        if (c.coupled_decay) grad = grad + c.coupled_wd * p[i];
        m[i] = c.beta1 * m[i] + c.one_minus_beta1 * grad;
        v[i] = c.beta2 * v[i] + c.one_minus_beta2 * (grad * grad);
        if (amsgrad) vmax[i] = v[i] > vmax[i] ? v[i] : vmax[i];
        const T second = amsgrad ? vmax[i] : v[i];
        p[i] = p[i] - c.step_size * m[i] / (std::sqrt(second) * c.inv_bc2_sqrt + c.eps);
      }
      LevelGuard guard;
      std::vector<std::vector<T>> results;
      for (SimdLevel level : supported_levels()) {
        dropnet::set_simd_level(level);
        std::vector<T> lp = p0, lm = m0, lv = v0, lvmax = vmax0;
        lp.push_back(T(7));
        adam_update(lp.data(), g.data(), lm.data(), lv.data(), amsgrad ? lvmax.data() : nullptr,
                    n, c);
        CHECK(lp[static_cast<std::size_t>(n)] == T(7));
        // Contracting a multiply-add changes one rounding of each moment (relative eps) and so
        // of the step m / sqrt(v) by at most about 3 eps of its size; p moves by the step only.
        for (std::size_t i = 0; i < p.size(); ++i) {
          const T step = std::abs(c.step_size * m[i] / (std::sqrt(amsgrad ? vmax[i] : v[i]) *
                                                            c.inv_bc2_sqrt + c.eps));
          REQUIRE_MESSAGE(std::abs(lp[i] - p[i]) <= 8 * eps * (std::abs(p[i]) + step),
                          dropnet::simd_level_name(level), " i ", i, " variant ", variant);
          REQUIRE(std::abs(lm[i] - m[i]) <= 4 * eps * (std::abs(m[i]) + std::abs(g[i]) + 1));
          REQUIRE(std::abs(lv[i] - v[i]) <= 4 * eps * (std::abs(v[i]) + g[i] * g[i] + 1));
        }
        lp.pop_back();
        results.push_back(lp);
        results.push_back(lm);
        results.push_back(lv);
        results.push_back(lvmax);
      }
      if (results.size() == 12)  // avx2 and avx512 run the same operations: the same bits
        for (std::size_t k = 0; k < 4; ++k)
          CHECK_MESSAGE(same_bits(results[4 + k], results[8 + k], n), "tensor ", k);
    }
  }
}
