// simd/: the vectorized kernels give exactly what their scalar references give (Philox), and the
// elementwise kernels what their scalar formulas give at every SIMD level.

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <dropnet/activations/swish.hpp>
#include <dropnet/simd/dispatch.hpp>
#include <dropnet/simd/elementwise.hpp>
#include <dropnet/simd/philox.hpp>
#include <limits>
#include <string>
#include <vector>

using namespace dropnet::simd;

TEST_CASE("philox_blocks equals philox_block, for every count and across a 2^32 counter carry") {
  const PhiloxKey key = {0x12345678u, 0x9abcdef0u};
  for (std::uint64_t first : {std::uint64_t{0}, std::uint64_t{5}, (std::uint64_t{1} << 32) - 7}) {
    for (std::size_t count :
         {std::size_t{0}, std::size_t{1}, std::size_t{7}, std::size_t{8}, std::size_t{15},
          std::size_t{16}, std::size_t{17}, std::size_t{64}, std::size_t{101}}) {
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
// contract by default), so there each level must equal the reference within the rounding of
// the contracted terms (GCC 12 contracts Adam's avx2 and avx512 loops differently since its
// constants are held by value: no bitwise check between those two).

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

TEST_CASE_TEMPLATE("philox_thresholded compares philox_block's words, at every level and length",
                   T, float, double) {
  LevelGuard guard;
  const PhiloxKey key = {0x2468ace0u, 0x13579bdfu};
  const std::uint32_t last = 0x9999999au;  // keeps 60% of the words
  for (SimdLevel level : supported_levels()) {
    dropnet::set_simd_level(level);
    for (std::uint64_t first : {std::uint64_t{3}, (std::uint64_t{1} << 32) - 9}) {
      // Whole 32-block passes, 8-block passes, a partial block, and the stack buffer's 256.
      for (std::ptrdiff_t n : {0, 1, 5, 31, 32, 33, 127, 128, 161, 256, 300, 1001}) {
        std::vector<T> out(static_cast<std::size_t>(n) + 1, T(7));
        philox_thresholded(key, first, n, last, T(2.5), T(-1), out.data());
        bool ok = out.back() == T(7);  // nothing written past the end
        for (std::ptrdiff_t i = 0; i < n; ++i) {
          const auto word = philox_block(key, first + std::uint64_t(i / 4))[std::size_t(i % 4)];
          ok = ok && out[std::size_t(i)] == (word <= last ? T(2.5) : T(-1));
        }
        CHECK_MESSAGE(ok, dropnet::simd_level_name(level), " first ", first, " n ", n);
      }
    }
  }
}

/// Whether the avx2 and avx512 kernels must agree bit for bit: they run the same operations,
/// and in a translation unit compiled for the x86-64 baseline GCC contracts them alike. Under
/// -march=native (the *_native build of this test) GCC 12 contracts the two levels' multiply-
/// adds differently (80 of 105k checks differ, every one within the reference bounds), so
/// there only the bounds apply.
#if defined(__AVX2__)
constexpr bool same_contractions = false;
#else
constexpr bool same_contractions = true;
#endif

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
  // n == 0: an empty vector's data() may be null, which memcmp must not receive (UBSan).
  return n == 0 || std::memcmp(a.data(), b.data(), static_cast<std::size_t>(n) * sizeof(T)) == 0;
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
    CHECK_MESSAGE(same_bits(out, expected, n), std::string(what), " at ",
                  std::string(dropnet::simd_level_name(level)), ", n = ", n);
    CHECK_MESSAGE(out[static_cast<std::size_t>(n)] == T(12345), std::string(what),
                  " wrote past the end");
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
      check_levels<T>(
          z, max_ref, n, [&](T* out) { max_scaled(z.data(), out, n, slope); }, "max_scaled");
      check_levels<T>(
          d, scale_ref, n, [&](T* out) { scale_non_positive(z.data(), out, out, n, slope); },
          "scale_non_positive (in place)");
    }
    std::vector<T> product_ref(z.size());
    for (std::size_t i = 0; i < z.size(); ++i) product_ref[i] = z[i] * d[i];
    check_levels<T>(
        z, product_ref, n, [&](T* out) { multiply(out, d.data(), out, n); }, "multiply");
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
    check_levels<T>(
        z, expected, rows * cols, [&](T* out) { add_to_columns(out, rows, cols, bias.data()); },
        "add_to_columns");
  }
}

TEST_CASE_TEMPLATE("adam_update agrees with its scalar formulas at every level", T, float, double) {
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
      for (auto* a : {&p0, &g, &m0})
        std::replace_if(
            a->begin(), a->end(), [](T x) { return std::isnan(x); }, T(0.5));
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
      for (SimdLevel level : supported_levels()) {
        dropnet::set_simd_level(level);
        std::vector<T> lp = p0, lm = m0, lv = v0, lvmax = vmax0;
        lp.push_back(T(7));
        adam_update(lp.data(), g.data(), lm.data(), lv.data(), amsgrad ? lvmax.data() : nullptr, n,
                    c);
        CHECK(lp[static_cast<std::size_t>(n)] == T(7));
        // Contracting a multiply-add changes one rounding of each moment (relative eps) and so
        // of the step m / sqrt(v) by at most about 3 eps of its size; p moves by the step only.
        for (std::size_t i = 0; i < p.size(); ++i) {
          const T step = std::abs(c.step_size * m[i] /
                                  (std::sqrt(amsgrad ? vmax[i] : v[i]) * c.inv_bc2_sqrt + c.eps));
          REQUIRE_MESSAGE(std::abs(lp[i] - p[i]) <= 8 * eps * (std::abs(p[i]) + step),
                          std::string(dropnet::simd_level_name(level)), " i ", i, " variant ",
                          variant);
          REQUIRE(std::abs(lm[i] - m[i]) <= 4 * eps * (std::abs(m[i]) + std::abs(g[i]) + 1));
          REQUIRE(std::abs(lv[i] - v[i]) <= 4 * eps * (std::abs(v[i]) + g[i] * g[i] + 1));
          if (amsgrad)  // max(v, v_max): v's bound
            REQUIRE(std::abs(lvmax[i] - vmax[i]) <=
                    4 * eps * (std::abs(vmax[i]) + g[i] * g[i] + 1));
        }
      }
    }
  }
}

namespace {

/// Runs `update(tensors)` at every supported level on copies of `init`, checks every tensor
/// against `expected` within `bound(k, i)` (tensor k, element i), and, unless `avx_alike` is
/// false, avx2 against avx512 bit for bit (the same operations, contracted alike). The column
/// kernels pass false: GCC contracts their whole and partial registers differently, and an
/// element sits in a partial register at one width and in a whole one at the other.
template <class T, class Update, class Bound>
void check_update(const std::vector<std::vector<T>>& init,
                  const std::vector<std::vector<T>>& expected, Update update, Bound bound,
                  const char* what, bool avx_alike = true) {
  LevelGuard guard;
  std::vector<std::vector<std::vector<T>>> results;
  for (SimdLevel level : supported_levels()) {
    dropnet::set_simd_level(level);
    std::vector<std::vector<T>> tensors = init;
    update(tensors);
    for (std::size_t k = 0; k < tensors.size(); ++k)
      for (std::size_t i = 0; i < tensors[k].size(); ++i)
        REQUIRE_MESSAGE(std::abs(tensors[k][i] - expected[k][i]) <= bound(k, i), std::string(what),
                        " at ", std::string(dropnet::simd_level_name(level)), ": tensor ", k,
                        " element ", i);
    results.push_back(tensors);
  }
  if (results.size() == 3 && same_contractions && avx_alike)
    CHECK_MESSAGE(results[1] == results[2], std::string(what), ": avx2 != avx512");
}

}  // namespace

TEST_CASE_TEMPLATE("sgd_update and rmsprop_update agree with their scalar formulas at every level",
                   T, float, double) {
  const T eps = std::numeric_limits<T>::epsilon();
  for (Index n : {Index(0), Index(5), Index(16), Index(37), Index(120)}) {
    std::vector<T> p = values<T>(n, 11), g = values<T>(n, 12), b = values<T>(n, 13);
    std::vector<T> v = values<T>(n, 14), avg = values<T>(n, 15);
    for (auto* a : {&p, &g, &b, &v, &avg})
      std::replace_if(
          a->begin(), a->end(), [](T x) { return std::isnan(x); }, T(0.5));
    for (auto& x : v) x = x * x + T(1);  // v >= 1 > g_avg^2 below: the centered root is real
    for (auto& x : avg) x = x / T(4);
    for (int variant = 0; variant < 8; ++variant) {
      const bool momentum = variant & 1, decay = variant & 2, third = variant & 4;
      SgdConstants<T> s{};
      s.lr = T(0.1), s.momentum = T(0.9), s.one_minus_dampening = T(0.75);
      s.weight_decay = T(0.01), s.coupled_decay = decay, s.first = third && !momentum;
      s.nesterov = third && momentum;
      std::vector<T> sp = p, sb = b;
      for (std::size_t i = 0; i < p.size(); ++i) {
        const T grad = decay ? g[i] + s.weight_decay * p[i] : g[i];
        T step = grad;
        if (momentum) {
          sb[i] = s.first ? grad : s.momentum * sb[i] + s.one_minus_dampening * grad;
          step = s.nesterov ? grad + s.momentum * sb[i] : sb[i];
        }
        sp[i] = sp[i] - s.lr * step;
      }
      // One contracted pair per formula: one rounding of the terms' size, scaled by lr in p.
      const auto sgd_bound = [&](std::size_t, std::size_t i) {
        return 4 * eps * (std::abs(p[i]) + std::abs(g[i]) + std::abs(b[i]) + 1);
      };
      check_update<T>(
          {p, g, b}, {sp, g, momentum ? sb : b},
          [&](std::vector<std::vector<T>>& t) {
            sgd_update(t[0].data(), t[1].data(), momentum ? t[2].data() : nullptr, n, s);
          },
          sgd_bound, "sgd_update");

      RmspropConstants<T> r{};
      r.lr = T(0.01), r.alpha = T(0.99), r.one_minus_alpha = T(0.01), r.eps = T(1e-8);
      r.momentum = T(0.9), r.weight_decay = T(0.01), r.coupled_decay = decay;
      const bool centered = third;
      std::vector<T> rp = p, rb = b, rv = v, ravg = avg;
      for (std::size_t i = 0; i < p.size(); ++i) {
        const T grad = decay ? g[i] + r.weight_decay * p[i] : g[i];
        rv[i] = r.alpha * rv[i] + r.one_minus_alpha * (grad * grad);
        T variance = rv[i];
        if (centered) {
          ravg[i] = r.alpha * ravg[i] + r.one_minus_alpha * grad;
          variance = rv[i] - ravg[i] * ravg[i];
        }
        const T denominator = std::sqrt(variance) + r.eps;
        if (momentum) {
          rb[i] = r.momentum * rb[i] + grad / denominator;
          rp[i] = rp[i] - r.lr * rb[i];
        } else {
          rp[i] = rp[i] - r.lr * grad / denominator;
        }
      }
      // v >= 1 keeps the denominator >= about 0.3, so a contracted pair moves the quotient by a
      // few eps of its size (<= 10): bound every tensor by 64 eps of its scale.
      const auto rms_bound = [&](std::size_t, std::size_t i) {
        return 64 * eps * (std::abs(p[i]) + std::abs(b[i]) + std::abs(v[i]) + 1);
      };
      check_update<T>(
          {p, g, v, b, avg}, {rp, g, rv, momentum ? rb : b, centered ? ravg : avg},
          [&](std::vector<std::vector<T>>& t) {
            rmsprop_update(t[0].data(), t[1].data(), t[2].data(), momentum ? t[3].data() : nullptr,
                           centered ? t[4].data() : nullptr, n, r);
          },
          rms_bound, "rmsprop_update");
    }
  }
}

TEST_CASE_TEMPLATE("column kernels (bias gradient, BatchNorm) agree with their formulas at every "
                   "level",
                   T, float, double) {
  const T eps = std::numeric_limits<T>::epsilon();
  for (Index rows : {Index(1), Index(7), Index(16), Index(33), Index(120)}) {
    for (Index cols : {Index(1), Index(2), Index(9)}) {
      const auto n = static_cast<std::size_t>(rows * cols), r = static_cast<std::size_t>(rows);
      std::vector<T> x = values<T>(rows * cols, 21), y = values<T>(rows * cols, 22);
      std::vector<T> mean = values<T>(rows, 23), scale = values<T>(rows, 24);
      std::vector<T> gamma = values<T>(rows, 25), beta = values<T>(rows, 26);
      for (auto* a : {&x, &y, &mean, &scale, &gamma, &beta})
        std::replace_if(
            a->begin(), a->end(), [](T v) { return std::isnan(v); }, T(0.5));
      const auto at = [rows](Index i, Index j) { return static_cast<std::size_t>(j * rows + i); };
      // The references, column after column as the kernels add them.
      std::vector<T> sum(r, T(0)), products(r, T(0)), squares(r, T(0)), abs_products(r, T(0));
      std::vector<T> xhat(n), out(n), out_eval(n), dx(n);
      for (Index j = 0; j < cols; ++j)
        for (Index i = 0; i < rows; ++i) {
          const auto k = static_cast<std::size_t>(i);
          const T value = x[at(i, j)], centered = value - mean[k];
          sum[k] = sum[k] + value;
          products[k] = products[k] + value * y[at(i, j)];
          abs_products[k] += std::abs(value * y[at(i, j)]);
          squares[k] = squares[k] + centered * centered;
          xhat[at(i, j)] = centered * scale[k];
          out[at(i, j)] = xhat[at(i, j)] * gamma[k] + beta[k];
          out_eval[at(i, j)] = xhat[at(i, j)] + beta[k];
          dx[at(i, j)] = ((y[at(i, j)] - x[at(i, j)] * scale[k]) - mean[k]) * gamma[k];
        }
      // Adds alone round alike at every level: the plain sums are exact copies. A contracted
      // product moves each partial sum by one rounding of its size: at most cols eps of the
      // sum of the terms' magnitudes in all.
      check_levels<T>(
          std::vector<T>(r, T(7)), sum, rows,
          [&](T* s) { sum_columns<T>(x.data(), nullptr, rows, cols, s, nullptr); }, "sum_columns");
      const auto sum_bound = [&](std::size_t, std::size_t i) {
        return T(cols + 1) * eps * abs_products[i];
      };
      // Every output starts as 7s, so a kernel that skips an element fails.
      const std::vector<T> row_garbage(r, T(7)), garbage(n, T(7));
      check_update<T>(
          {row_garbage, row_garbage}, {sum, products},
          [&](std::vector<std::vector<T>>& t) {
            sum_columns(x.data(), y.data(), rows, cols, t[0].data(), t[1].data());
          },
          sum_bound, "sum_columns with products", false);
      const auto square_bound = [&](std::size_t, std::size_t i) {
        return T(cols + 1) * eps * squares[i];
      };
      check_update<T>(
          {row_garbage}, {squares},
          [&](std::vector<std::vector<T>>& t) {
            centered_square_sums(x.data(), mean.data(), rows, cols, t[0].data());
          },
          square_bound, "centered_square_sums", false);
      // One contracted pair: one rounding of the product's size, |xhat gamma|.
      const auto normalize_bound = [&](std::size_t k, std::size_t e) {
        const T term = k == 1 ? std::abs(xhat[e] * gamma[e % r]) : T(0);
        return eps * (term + std::abs(out[e]));
      };
      check_update<T>(
          {garbage, garbage}, {xhat, out},
          [&](std::vector<std::vector<T>>& t) {
            normalize_columns(x.data(), mean.data(), scale.data(), gamma.data(), beta.data(), rows,
                              cols, t[0].data(), t[1].data());
          },
          normalize_bound, "normalize_columns", false);
      const auto eval_bound = [&](std::size_t, std::size_t e) {
        return eps * (std::abs(xhat[e]) + std::abs(out_eval[e]));
      };
      check_update<T>(
          {x}, {out_eval},
          [&](std::vector<std::vector<T>>& t) {
            normalize_columns<T>(t[0].data(), mean.data(), scale.data(), nullptr, beta.data(), rows,
                                 cols, nullptr, t[0].data());
          },
          eval_bound, "normalize_columns without gamma, in place", false);
      const auto gradient_bound = [&](std::size_t, std::size_t e) {
        const auto k = e % r;
        return 4 * eps * std::abs(gamma[k]) *
               (std::abs(y[e]) + std::abs(x[e] * scale[k]) + std::abs(mean[k]));
      };
      check_update<T>(
          {garbage}, {dx},
          [&](std::vector<std::vector<T>>& t) {
            batch_norm_input_gradient(y.data(), x.data(), mean.data(), scale.data(), gamma.data(),
                                      rows, cols, t[0].data());
          },
          gradient_bound, "batch_norm_input_gradient", false);
    }
  }
}

TEST_CASE_TEMPLATE("adagrad_update agrees with its scalar formulas at every level", T, float,
                   double) {
  const T eps = std::numeric_limits<T>::epsilon();
  for (Index n : {Index(0), Index(5), Index(16), Index(37), Index(120)}) {
    std::vector<T> p = values<T>(n, 31), g = values<T>(n, 32), s = values<T>(n, 33);
    for (auto* a : {&p, &g, &s})
      std::replace_if(
          a->begin(), a->end(), [](T x) { return std::isnan(x); }, T(0.5));
    for (auto& x : s) x = x * x;  // a sum of squares
    for (bool decay : {false, true}) {
      AdagradConstants<T> c{};
      c.lr = T(0.1), c.eps = T(1e-10), c.weight_decay = T(0.05), c.coupled_decay = decay;
      std::vector<T> ap = p, as = s;
      for (std::size_t i = 0; i < p.size(); ++i) {
        const T grad = decay ? g[i] + c.weight_decay * p[i] : g[i];
        as[i] = as[i] + grad * grad;
        ap[i] = ap[i] - c.lr * grad / (std::sqrt(as[i]) + c.eps);
      }
      // A contracted g^2 + s moves s by one rounding, and the step lr g / sqrt(s) (<= lr) by
      // a few: bound both by 8 eps of their scale.
      const auto bound = [&](std::size_t, std::size_t i) {
        return 8 * eps * (std::abs(p[i]) + std::abs(s[i]) + g[i] * g[i] + 1);
      };
      check_update<T>(
          {p, g, s}, {ap, g, as},
          [&](std::vector<std::vector<T>>& t) {
            adagrad_update(t[0].data(), t[1].data(), t[2].data(), n, c);
          },
          bound, "adagrad_update");
    }
  }
}

// ---- exp and the activations built on it: errors in ulp of the correctly rounded result,
// against std:: functions evaluated in long double, over dense sweeps, at every level. The
// bounds are the measured maxima rounded up (docs/performance.md quotes them).

namespace {

/// |got - exact| in units of the spacing of T at exact (the denormal spacing below the normals),
/// or at `floor` where |exact| is smaller (floor 1: ulp of max(1, |exact|), for results that
/// cancel, as 1 + erf(z) does for negative z).
template <class T>
double ulps(T got, long double exact, T floor = T(0)) {
  const T rounded = static_cast<T>(exact);
  if (std::isinf(rounded)) return got == rounded ? 0.0 : 1e9;
  const T magnitude = std::max(std::abs(rounded), floor);
  const long double spacing =
      static_cast<long double>(std::nextafter(magnitude, std::numeric_limits<T>::infinity())) -
      static_cast<long double>(magnitude);
  return static_cast<double>(std::abs(static_cast<long double>(got) - exact) / spacing);
}

/// n points evenly spread over [low, high], both included.
template <class T>
std::vector<T> sweep(T low, T high, Index n) {
  std::vector<T> x(static_cast<std::size_t>(n));
  for (Index i = 0; i < n; ++i)
    x[static_cast<std::size_t>(i)] =
        static_cast<T>(low + (high - low) * static_cast<long double>(i) / (n - 1));
  return x;
}

/// The largest error in ulp of kernel(x, out) over x against exact(x), at the current level.
template <class T, class Kernel, class Exact>
double max_ulps(const std::vector<T>& x, Kernel kernel, Exact exact, T floor) {
  std::vector<T> out(x.size());
  kernel(x.data(), out.data(), static_cast<Index>(x.size()));
  double worst = 0;
  for (std::size_t i = 0; i < x.size(); ++i)
    worst = std::max(worst, ulps<T>(out[i], exact(static_cast<long double>(x[i])), floor));
  return worst;
}

/// Calls f() at every supported level, restoring the process's level afterwards.
template <class F>
void at_every_level(F f) {
  LevelGuard guard;
  for (SimdLevel level : supported_levels()) {
    dropnet::set_simd_level(level);
    f();
  }
}

/// Checks kernel against exact within `bound` ulp (of max(floor, |exact|)) at every supported
/// level; prints the maxima.
template <class T, class Kernel, class Exact>
void check_ulps(const std::vector<T>& x, Kernel kernel, Exact exact, double bound,
                const char* what, T floor = T(0)) {
  LevelGuard guard;
  for (SimdLevel level : supported_levels()) {
    dropnet::set_simd_level(level);
    const double worst = max_ulps<T>(x, kernel, exact, floor);
    const std::string where = std::string(what) +
                              (sizeof(T) == 4 ? " (float) at " : " (double) at ") +
                              dropnet::simd_level_name(level);
    MESSAGE(where, ": ", worst, " ulp");
    CHECK_MESSAGE(worst <= bound, where);
  }
}

}  // namespace

TEST_CASE_TEMPLATE("exponential is within 2 ulp of exp at every level, with its edge values", T,
                   float, double) {
  const T low = ExpConstants<T>::low, high = ExpConstants<T>::high;
  check_ulps<T>(
      sweep<T>(low, high, 200001),
      [](const T* x, T* out, Index n) { exponential(x, out, n); },
      [](long double x) { return std::exp(x); }, 2.0, "exp");
  check_ulps<T>(
      sweep<T>(T(-1), T(1), 20001),
      [](const T* x, T* out, Index n) { exponential(x, out, n); },
      [](long double x) { return std::exp(x); }, 2.0, "exp on [-1, 1]");
  const T inf = std::numeric_limits<T>::infinity();
  const std::vector<T> edges = {-inf, T(-1000), T(0), -T(0), T(1000), inf,
                                std::numeric_limits<T>::quiet_NaN()};
  at_every_level([&] {
    std::vector<T> out(edges.size());
    exponential(edges.data(), out.data(), Index(edges.size()));
    CHECK(out[0] == T(0));
    CHECK(out[1] == T(0));
    CHECK(out[2] == T(1));
    CHECK(out[3] == T(1));
    CHECK(out[4] == inf);
    CHECK(out[5] == inf);
    CHECK(std::isnan(out[6]));
  });
}

TEST_CASE_TEMPLATE("expm1 (ELU's negative side) within 2 ulp, sigmoid and tanh within 3", T,
                   float, double) {
  const T low = ExpConstants<T>::low;
  // ELU with scale 1 and alpha 1 is expm1 on z <= 0, including the tiny values near 0.
  auto elu = [](const T* x, T* out, Index n) {
    exponential_branch(x, x, out, n, T(1), T(1), true);
  };
  auto expm1 = [](long double x) { return x > 0 ? x : std::expm1(x); };
  check_ulps<T>(sweep<T>(low, T(0), 200001), elu, expm1, 2.0, "expm1");
  check_ulps<T>(sweep<T>(T(-1e-3), T(1e-3), 20001), elu, expm1, 2.0, "expm1 near 0");
  auto sigmoid = [](const T* x, T* out, Index n) { logistic(x, static_cast<const T*>(nullptr), out, n); };
  check_ulps<T>(
      sweep<T>(T(-80), T(80), 200001), sigmoid,
      [](long double x) { return 1 / (1 + std::exp(-x)); }, 3.0, "sigmoid");
  auto tanh = [](const T* x, T* out, Index n) { hyperbolic_tangent(x, out, n); };
  auto exact_tanh = [](long double x) { return std::tanh(x); };
  check_ulps<T>(sweep<T>(T(-20), T(20), 200001), tanh, exact_tanh, 3.0, "tanh");
  check_ulps<T>(sweep<T>(T(-1e-3), T(1e-3), 20001), tanh, exact_tanh, 3.0, "tanh near 0");
  const std::vector<T> edges = {-std::numeric_limits<T>::infinity(), -T(0),
                                std::numeric_limits<T>::infinity(),
                                std::numeric_limits<T>::quiet_NaN()};
  at_every_level([&] {
    std::vector<T> out(edges.size());
    hyperbolic_tangent(edges.data(), out.data(), Index(edges.size()));
    CHECK(out[0] == T(-1));
    CHECK((out[1] == T(0) && std::signbit(out[1])));
    CHECK(out[2] == T(1));
    CHECK(std::isnan(out[3]));
    logistic(edges.data(), static_cast<const T*>(nullptr), out.data(), Index(edges.size()));
    CHECK(out[0] == T(0));
    CHECK(out[1] == T(0.5));
    CHECK(out[2] == T(1));
    CHECK(std::isnan(out[3]));
    exponential_branch(edges.data(), edges.data(), out.data(), Index(edges.size()), T(1), T(2),
                       true);
    CHECK(out[0] == T(-2));
    CHECK(out[2] == std::numeric_limits<T>::infinity());
    CHECK(std::isnan(out[3]));
  });
}

TEST_CASE_TEMPLATE("softplus, the gated activations (Swish, GELUTanh), GELU and their gradients", T,
                   float, double) {
  const std::vector<T> x = sweep<T>(T(-30), T(30), 200001);
  // Softplus and its gradient sigmoid(z) da (da = 1: the product is exact), in ulp of the result
  // (measured 2.52 and 2.22 in float, 2.39 and 1.87 in double).
  check_ulps<T>(
      sweep<T>(T(-80), T(80), 200001), [](const T* z, T* out, Index n) { softplus(z, out, n); },
      [](long double z) { return std::max(z, 0.0L) + std::log1p(std::exp(-std::abs(z))); }, 3.0,
      "softplus");
  const std::vector<T> ones(x.size(), T(1));
  check_ulps<T>(
      x, [&](const T* z, T* out, Index n) { logistic(z, ones.data(), out, n); },
      [](long double z) { return 1 / (1 + std::exp(-z)); }, 3.0, "sigmoid times da");
  // z sigmoid(z (a1 + a3 z^2)) and its gradient, in ulp of max(1, |f|): the gradient has zeros
  // (Swish's at z = -1.28), and the gate's rounding moves sigmoid by |g| ulp for large |z|.
  // Measured maxima (AVX-512 machine): 1.84 forward, 1.82 gradient (Swish); 1.82, 1.88
  // (GELUTanh).
  const long double k = dropnet::GELUTanh::k, c = dropnet::GELUTanh::c;
  const T a1 = T(2 * k), a3 = T(2 * k * c);
  check_ulps<T>(
      x, [](const T* z, T* out, Index n) { gated_linear(z, out, n, T(1), T(0)); },
      [](long double z) { return z / (1 + std::exp(-z)); }, 3.0, "swish", T(1));
  check_ulps<T>(
      x, [&](const T* z, T* out, Index n) { gated_linear_gradient(z, ones.data(), out, n, T(1), T(0)); },
      [](long double z) {
        const long double s = 1 / (1 + std::exp(-z));
        return s * (1 + z * (1 - s));
      },
      3.0, "swish gradient", T(1));
  check_ulps<T>(
      x, [&](const T* z, T* out, Index n) { gated_linear(z, out, n, a1, a3); },
      [&](long double z) { return z / 2 * (1 + std::tanh(k * (z + c * z * z * z))); }, 4.0,
      "gelu_tanh", T(1));
  check_ulps<T>(
      x, [&](const T* z, T* out, Index n) { gated_linear_gradient(z, ones.data(), out, n, a1, a3); },
      [&](long double z) {
        const long double t = std::tanh(k * (z + c * z * z * z));
        return (1 + t) / 2 + z / 2 * (1 - t * t) * k * (1 + 3 * c * z * z);
      },
      3.0, "gelu_tanh gradient", T(1));
  if constexpr (std::is_same_v<T, float>) {
    // The rational erf is a few ulp of 1 off, and z/2 (1 + erf) multiplies that by |z|/2 where
    // 1 + erf cancels (z < 0): 7.7 ulp of max(1, |f|) measured (the Eigen expression GELU ran
    // before used the same erf); the gradient, 1.95.
    check_ulps<T>(
        x, [](const T* z, T* out, Index n) { gaussian_error_linear(z, nullptr, out, n); },
        [](long double z) { return z / 2 * (1 + std::erf(z / std::sqrt(2.0L))); }, 8.0, "gelu",
        T(1));
    check_ulps<T>(
        x, [&](const T* z, T* out, Index n) { gaussian_error_linear(z, ones.data(), out, n); },
        [](long double z) {
          return (1 + std::erf(z / std::sqrt(2.0L))) / 2 +
                 z * std::exp(-z * z / 2) / std::sqrt(2 * 3.14159265358979323846L);
        },
        4.0, "gelu gradient", T(1));
  }
  const T inf = std::numeric_limits<T>::infinity(), nan = std::numeric_limits<T>::quiet_NaN();
  const std::vector<T> edges = {-inf, T(-1000), T(0), T(1000), inf, nan};
  at_every_level([&] {
    std::vector<T> out(edges.size());
    softplus(edges.data(), out.data(), Index(edges.size()));
    CHECK(out[0] == T(0));
    CHECK(out[1] == T(0));
    CHECK(std::abs(out[2] - static_cast<T>(std::log(2.0L))) <= std::numeric_limits<T>::epsilon());
    CHECK(out[3] == T(1000));
    CHECK(out[4] == inf);
    CHECK(std::isnan(out[5]));
    gated_linear(edges.data(), out.data(), Index(edges.size()), a1, a3);
    CHECK(out[1] == T(0));
    CHECK(out[3] == T(1000));
    CHECK(out[4] == inf);
    CHECK(std::isnan(out[5]));
  });
}
