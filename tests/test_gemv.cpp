// The small-batch inference path: simd/gemv.hpp's kernel against the exact product at every SIMD
// level that has it, Dense at batch <= simd::small_batch_columns against its own batched path, and
// Sequential::infer / predict_into reading their input in place.
//
// Rounding bound: each element of Z = W X + b is a sum of k products and the bias, so computed
// in T it is within (k + 1) u (sum_p |W(i, p) X(p, j)| + |b_i|) of the exact value (u = eps / 2,
// the unit roundoff; twice that where the level has no FMA and rounds each product too); the
// tests use (k + 2) eps, which covers both. Two computations within it of the exact value are
// within twice it of each other. On the avx2 and avx512 levels the kernel sums in the packed
// GEMM's order, so it must give the batched forward's bits wherever that runs the packed kernel
// (every layer in a default-flags build; layers of more than 16 outputs under -march=native,
// where Gemm leaves the narrower ones to Eigen's kernel).

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <dropnet/activations/sigmoid.hpp>
#include <dropnet/layers/dense.hpp>
#include <dropnet/layers/dropout.hpp>
#include <dropnet/layers/gaussian_dropout.hpp>
#include <dropnet/model/sequential.hpp>
#include <dropnet/simd/gemv.hpp>
#include <dropnet/training/evaluate.hpp>
#include <limits>
#include <string>
#include <vector>

#include "test_checks.hpp"
#include "test_data.hpp"

using namespace dropnet;
using dropnet::test::SimdLevelScope;
using dropnet::test::supported_levels;

namespace {

template <class T>
Matrix<T> random_matrix(Index rows, Index cols, Generator& gen) {
  return test::normal_matrix<T>(rows, cols, gen);
}

/// The levels small_batch_affine has a kernel for, on this CPU.
std::vector<SimdLevel> kernel_levels() {
  std::vector<SimdLevel> levels;
  for (SimdLevel level : supported_levels())
    if (simd::small_batch_affine_serves(level)) levels.push_back(level);
  return levels;
}

/// A wider type for the exact reference: double for float, long double for double.
template <class T>
using Wide = std::conditional_t<std::is_same_v<T, float>, double, long double>;

/// The kernel's activation, written out: max(slope z, z), +0 for ReLU's negative side.
template <class T>
T max_scaled(T z, T slope) {
  const T scaled = slope == T(0) ? T(0) : slope * z;
  return scaled > z ? scaled : z;
}

/// True when the batched forward of a layer with `outputs` rows runs the packed GEMM at `level`
/// (core/gemm.hpp), so that the small-batch kernel must give its bits.
bool batched_runs_packed(SimdLevel level, Index outputs) {
  if (!simd::gemm_packed_serves(level)) return false;
#if defined(EIGEN_VECTORIZE_AVX512)
  return outputs > 16;
#else
  return outputs > 0;
#endif
}

}  // namespace

TEST_CASE_TEMPLATE(
    "small_batch_affine is W X + b within the rounding bound, Y = max(slope Z, Z) "
    "exactly, at every level, and writes nothing else",
    T, float, double) {
  Generator gen(11);
  const T sentinel = T(-12345.5);
  const T eps = std::numeric_limits<T>::epsilon();
  int cases = 0;
  for (SimdLevel level : kernel_levels()) {
    for (Index m : {1, 10, 17, 60, 120, 200})
      for (Index k : {1, 60, 257, 784})
        for (Index n : {1, 3, 4, 7}) {
          const T slope = std::vector<T>{T(0), T(1), T(0.25)}[std::size_t(cases % 3)];
          const bool with_y = cases % 4 != 3;
          ++cases;
          // Padded leading dimensions, the padding filled with a sentinel that must survive.
          const Index ldw = m + 3, ldx = k + 2, ldz = m + 5, ldy = m + 1;
          const Matrix<T> w = random_matrix<T>(ldw, k, gen), x = random_matrix<T>(ldx, n, gen);
          const Matrix<T> b = random_matrix<T>(m, 1, gen);
          Matrix<T> z = Matrix<T>::Constant(ldz, n, sentinel);
          Matrix<T> y = Matrix<T>::Constant(ldy, n, sentinel);
          simd::small_batch_affine<T>(
              level, {m, n, k, w.data(), ldw, x.data(), ldx, b.data(), z.data(), ldz,
                      with_y ? y.data() : nullptr, ldy, slope});
          INFO("level ", simd_level_name(level), " m ", m, " k ", k, " n ", n);
          double worst = 0;
          bool y_exact = true, padding_kept = true;
          for (Index j = 0; j < n; ++j) {
            for (Index i = 0; i < m; ++i) {
              Wide<T> exact = b(i), magnitude = std::abs(Wide<T>(b(i)));
              for (Index p = 0; p < k; ++p) {
                exact += Wide<T>(w(i, p)) * Wide<T>(x(p, j));
                magnitude += std::abs(Wide<T>(w(i, p)) * Wide<T>(x(p, j)));
              }
              const Wide<T> bound = Wide<T>(k + 2) * Wide<T>(eps) * magnitude;
              worst = std::max(worst, double(std::abs(Wide<T>(z(i, j)) - exact) / bound));
              if (with_y) y_exact &= y(i, j) == max_scaled(z(i, j), slope);
            }
            for (Index i = m; i < ldz; ++i) padding_kept &= z(i, j) == sentinel;
            for (Index i = with_y ? m : 0; i < ldy; ++i) padding_kept &= y(i, j) == sentinel;
          }
          CHECK(worst <= 1.0);
          CHECK(y_exact);
          CHECK(padding_kept);
        }
  }
  CHECK(cases == 96 * int(kernel_levels().size()));
}

TEST_CASE_TEMPLATE("small_batch_affine gives the same bits wherever W lies against a cache line", T,
                   float, double) {
  // The kernel cuts its first register short so that the others load whole lines of W
  // (gemv_lead): how the rows fall into registers depends on W's address, the sums must not.
  Generator gen(17);
  const T sentinel = T(-777.25);
  for (SimdLevel level : kernel_levels()) {
    for (Index m : {9, 17, 60, 120, 200})
      for (Index ldw : {m, m + 8})
        for (Index n : {1, 4, 6}) {
          const Index k = 257;
          const Matrix<T> w = random_matrix<T>(ldw, k, gen), x = random_matrix<T>(k, n, gen);
          const Matrix<T> b = random_matrix<T>(m, 1, gen);
          std::vector<T> storage(std::size_t(ldw * k + 64));
          Matrix<T> z0, y0;
          for (Index offset = 0; offset < 16; ++offset) {
            T* moved = storage.data() + offset;
            std::copy(w.data(), w.data() + w.size(), moved);
            Matrix<T> z = Matrix<T>::Constant(m + 2, n, sentinel);
            Matrix<T> y = Matrix<T>::Constant(m + 2, n, sentinel);
            simd::small_batch_affine<T>(level, {m, n, k, moved, ldw, x.data(), k, b.data(),
                                                z.data() + 1, m + 2, y.data() + 1, m + 2, T(0)});
            INFO("level ", simd_level_name(level), " m ", m, " ldw ", ldw, " n ", n, " offset ",
                 offset);
            CHECK((z.row(0).array() == sentinel).all());
            CHECK((z.row(m + 1).array() == sentinel).all());
            CHECK((y.row(0).array() == sentinel).all());
            CHECK((y.row(m + 1).array() == sentinel).all());
            if (offset == 0) {
              z0 = z;
              y0 = y;
            }
            CHECK(z == z0);
            CHECK(y == y0);
          }
        }
  }
}

TEST_CASE("small_batch_affine on a product worked by hand: ReLU, LeakyReLU, identity") {
  // W = [1 2; 3 4], x = (1, -1), b = (0.5, -0.5): Z = (-0.5, -1.5).
  const float w[] = {1, 3, 2, 4}, x[] = {1, -1}, b[] = {0.5f, -0.5f};
  for (SimdLevel level : kernel_levels()) {
    for (float slope : {0.0f, 0.5f, 1.0f}) {
      float z[2] = {}, y[2] = {};
      simd::small_batch_affine<float>(level, {2, 1, 2, w, 2, x, 2, b, z, 2, y, 2, slope});
      CHECK(z[0] == -0.5f);
      CHECK(z[1] == -1.5f);
      CHECK(y[0] == -0.5f * slope);
      CHECK(y[1] == -1.5f * slope);
      if (slope == 0.0f) CHECK(!std::signbit(y[0]));  // ReLU gives +0, as max(0, z) does
    }
  }
}

namespace {

/// Every batch of 1 to small_batch_columns columns of x through `layer` against the same
/// columns in the batched forward of all of x: within twice the rounding bound, times the
/// activation's Lipschitz constant `lipschitz`, plus `slack` eps |y| for the activation's own
/// rounding; bit for bit where the batched forward runs the packed kernel.
template <class T, class Layer>
void check_small_batches(Layer& layer, const Matrix<T>& x, double lipschitz, double slack) {
  const T eps = std::numeric_limits<T>::epsilon();
  const Matrix<T> batched = layer.forward(x, Mode::eval, nullptr);
  const Matrix<T> abs_w = layer.weight().cwiseAbs();
  const Index k = layer.in_features();
  for (Index n : {Index(1), Index(2), Index(5), simd::small_batch_columns}) {
    const Matrix<T> columns = x.leftCols(n);
    const Matrix<T> small = layer.forward(columns, Mode::eval, nullptr);
    REQUIRE(small.rows() == batched.rows());
    REQUIRE(small.cols() == n);
    const Matrix<T> magnitude = (abs_w * columns.cwiseAbs()).colwise() + layer.bias().cwiseAbs();
    double worst = 0;
    for (Index j = 0; j < n; ++j)
      for (Index i = 0; i < small.rows(); ++i) {
        const double bound =
            lipschitz * 2.0 * double(k + 2) * double(eps) * double(magnitude(i, j)) +
            slack * double(eps) * std::abs(double(batched(i, j)));
        worst = std::max(worst, std::abs(double(small(i, j)) - double(batched(i, j))) / bound);
      }
    INFO(layer.name(), " at ", simd_level_name(simd_level()), ", batch ", n);
    CHECK(worst <= 1.0);
    if (batched_runs_packed(simd_level(), layer.out_features()))
      CHECK(small == batched.leftCols(n));
  }
}

}  // namespace

TEST_CASE_TEMPLATE(
    "Dense at batch <= small_batch_columns computes what its batched forward computes, at every "
    "level",
    T, float, double) {
  Generator gen(5);
  const Matrix<T> x784 = random_matrix<T>(784, 40, gen), x60 = random_matrix<T>(60, 40, gen);
  Dense<T, ReLU> relu(784, 120, gen);  // W1's first layer: fused ReLU
  Dense<T> logits(60, 10, gen);        // identity, fused; <= 16 outputs
  Dense<T, LeakyReLU> leaky(60, 33, gen, Init::he_normal, LeakyReLU(0.2));  // fused
  Dense<T, LeakyReLU> steep(60, 17, gen, Init::he_normal, LeakyReLU(1.5));  // not fused
  Dense<T, Sigmoid> sigmoid(60, 24, gen);  // not fused: the activation's own pass
  relu.bias() = random_matrix<T>(120, 1, gen);
  logits.bias() = random_matrix<T>(10, 1, gen);
  leaky.bias() = random_matrix<T>(33, 1, gen);
  steep.bias() = random_matrix<T>(17, 1, gen);
  sigmoid.bias() = random_matrix<T>(24, 1, gen);
  for (SimdLevel level : supported_levels()) {
    const SimdLevelScope scope(level);  // baseline: Eigen's product for both paths
    check_small_batches<T>(relu, x784, 1.0, 0.0);
    check_small_batches<T>(logits, x60, 1.0, 0.0);
    check_small_batches<T>(leaky, x60, 1.0, 0.0);
    check_small_batches<T>(steep, x60, 1.5, 0.0);
    check_small_batches<T>(sigmoid, x60, 0.25, 8.0);
  }
}

TEST_CASE("Dense's backward after a small-batch forward is its backward after a batched one") {
  // The small-batch forward caches Z and Y as the batched one does: the gradients agree within
  // the forward's rounding (here both paths are compared through the same dY).
  Generator gen(9);
  Dense<double, ReLU> layer(30, 20, gen);
  layer.bias() = random_matrix<double>(20, 1, gen);
  const Matrix<double> x = random_matrix<double>(30, 3, gen),
                       dy = random_matrix<double>(20, 3, gen);
  Matrix<double> padded(30, 12);
  padded << x, random_matrix<double>(30, 9, gen);
  layer.forward(padded, Mode::train, nullptr);  // batched
  const Matrix<double> batched_dx =
      layer.backward((Matrix<double>(20, 12) << dy, Matrix<double>::Zero(20, 9)).finished(), true);
  const Matrix<double> batched_dw = layer.weight_grad();
  layer.forward(x, Mode::train, nullptr);  // small batch
  const Matrix<double> dx = layer.backward(dy, true);
  CHECK((dx - batched_dx.leftCols(3)).cwiseAbs().maxCoeff() < 1e-12);
  CHECK((layer.weight_grad() - batched_dw).cwiseAbs().maxCoeff() < 1e-12);
}

TEST_CASE("Sequential::infer reads a Map or a block of columns in place and matches forward") {
  Generator gen(3);
  Sequential<float> model(20);
  model.add(Dense<float, ReLU>(20, 16, gen));
  model.add(Dropout<float>(0.5));  // the identity in eval mode
  model.add(Dense<float>(16, 4, gen));
  const Matrix<float> x = random_matrix<float>(20, 6, gen);
  std::vector<float> buffer(x.data(), x.data() + x.size());
  const Eigen::Map<const Matrix<float>> map(buffer.data(), 20, 6);
  const Matrix<float> expected = model.forward(x, Mode::eval);
  CHECK(model.infer(map) == expected);
  CHECK(model.infer(x.col(4)) == model.forward(Matrix<float>(x.col(4)), Mode::eval));
  const Matrix<float> block = model.infer(x.middleCols(1, 3));
  CHECK(block == model.forward(Matrix<float>(x.middleCols(1, 3)), Mode::eval));
  CHECK(predict(model, map, 4) == expected);
  Matrix<float> by_column(4, 6), out;
  for (Index j = 0; j < 6; ++j) by_column.col(j) = model.infer(x.col(j));
  predict_into(model, x, out, 1);
  CHECK(out == by_column);

  // Nothing is cached for backward: it throws until the next forward, then works.
  model.infer(x);
  test::expect_invalid([&] { model.backward(Matrix<float>::Zero(4, 6)); },
                       {"Sequential::backward", "before forward"});
  model.forward(x, Mode::train, gen);
  model.backward(Matrix<float>::Ones(4, 6));

  test::expect_invalid([&] { model.infer(Matrix<float>::Zero(21, 2)); },
                       {"Sequential::forward", "21 features", "expected 20"});
  Dense<float> dense(20, 4, gen);
  test::expect_invalid([&] { dense.forward_view(Matrix<float>::Zero(19, 1)); },
                       {"Dense(20->4, Identity)", "19 rows", "expected 20"});
  dense.forward_view(x);
  test::expect_invalid([&] { dense.backward(Matrix<float>::Zero(4, 6), true); },
                       {"Dense(20->4, Identity)", "forward_view"});
}

TEST_CASE("Sequential::infer copies the input once when the first layer cannot read a view") {
  Generator gen(4);
  Sequential<float> model(10);
  model.add(ActivationLayer<float, Tanh>());  // no forward_view: the fallback copy
  model.add(Dense<float, ReLU>(10, 5, gen));
  const Matrix<float> x = random_matrix<float>(10, 7, gen);
  CHECK(model.infer(x.middleCols(2, 4)) ==
        model.forward(Matrix<float>(x.middleCols(2, 4)), Mode::eval));
}

namespace {

/// A layer that records where the view handed to forward_view points (the identity otherwise).
struct ViewRecorder : Layer<float> {
  const float* seen = nullptr;
  Matrix<float> output;
  std::string name() const override { return "ViewRecorder"; }
  Index output_rows(Index input_rows) const override { return input_rows; }
  const Matrix<float>& forward(const Matrix<float>& x, Mode, Generator*) override {
    return output = x;
  }
  const Matrix<float>* forward_view(const MatrixView<float>& x) override {
    seen = x.data();
    output = x;
    return &output;
  }
  const Matrix<float>& backward(const Matrix<float>& dy, bool) override { return dy; }
  LayerConfig config() const override { return {"ViewRecorder", {}, {}}; }
};

}  // namespace

TEST_CASE("Sequential::infer and predict hand the first layer the caller's memory, not a copy") {
  Generator gen(6);
  Sequential<float> model(12);
  ViewRecorder& recorder = model.add(ViewRecorder());
  model.add(Dense<float>(12, 3, gen));
  const Matrix<float> x = random_matrix<float>(12, 9, gen);
  model.infer(x.col(5));
  CHECK(recorder.seen == x.col(5).data());
  std::vector<float> buffer(x.data(), x.data() + x.size());
  const Eigen::Map<const Matrix<float>> map(buffer.data(), 12, 9);
  predict(model, map, 4);  // batches of 4, 4, 1 columns: the last one starts at column 8
  CHECK(recorder.seen == buffer.data() + Index(8) * 12);
}

TEST_CASE("Sequential::infer hands the caller's memory past the dropout layers in front") {
  // Eval-mode dropout is the identity: the first layer after them reads the batch in place.
  Generator gen(7);
  Sequential<float> model(12);
  model.add(Dropout<float>(0.25));
  model.add(GaussianDropout<float>(0.1));
  ViewRecorder& recorder = model.add(ViewRecorder());
  model.add(Dense<float>(12, 3, gen));
  const Matrix<float> x = random_matrix<float>(12, 9, gen);
  const Matrix<float> out = model.infer(x.col(5));
  CHECK(recorder.seen == x.col(5).data());
  CHECK(out == model.forward(Matrix<float>(x.col(5)), Mode::eval));
  // Dropout alone: the last layer still runs (on a copy), and passes the batch through.
  Sequential<float> dropout_only(12);
  dropout_only.add(Dropout<float>(0.5));
  CHECK(dropout_only.infer(x.middleCols(1, 3)) == x.middleCols(1, 3));
}
