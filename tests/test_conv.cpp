// Convolution and pooling: Conv2D, MaxPool2D, AvgPool2D, GlobalAvgPool, Flatten.
//
// Forward passes are compared with direct loops written here from the definitions (not with
// the layers' im2col), gradients with finite differences (double, check_input), over strides,
// paddings, kernels, non-square inputs and several channels; then a whole conv block (Conv2D ->
// BatchNorm -> ReLU -> SpatialDropout -> MaxPool -> Flatten -> Dense) end to end and bad shapes
// (the no-allocation check is in test_allocation.cpp).

#include <doctest/doctest.h>

#include <cmath>
#include <dropnet/dropnet.hpp>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "test_checks.hpp"

using namespace dropnet;
using dropnet::test::expect_invalid;

namespace {

template <class T>
Matrix<T> random_matrix(Index rows, Index cols, Generator& gen, double scale = 1.0) {
  Matrix<T> m(rows, cols);
  for (Index i = 0; i < m.size(); ++i) m.data()[i] = gen.normal<T>(T(0), T(scale));
  return m;
}

template <class T>
double tolerance() {
  return std::is_same_v<T, float> ? 1e-5 : 1e-12;
}

template <class T>
void check_close(const Matrix<T>& actual, const Matrix<T>& expected, double tol) {
  REQUIRE(actual.rows() == expected.rows());
  REQUIRE(actual.cols() == expected.cols());
  const double scale = std::max(1.0, double(expected.cwiseAbs().maxCoeff()));
  const double error = double((actual - expected).cwiseAbs().maxCoeff());
  CHECK(error <= tol * scale);
}

/// One convolution's geometry: input C x H x W, O output channels, k x k kernel.
struct ConvCase {
  Index c, h, w, o, k, s, p;
};

std::string describe(const ConvCase& g) {
  return detail::concat("C=", g.c, " H=", g.h, " W=", g.w, " O=", g.o, " k=", g.k, " s=", g.s,
                        " p=", g.p);
}

/// The geometries every Conv2D test runs: strides 1 and 2, paddings 0 to 2, kernels 1 to 3,
/// square and non-square inputs, 1 to 3 channels in and out, a kernel as large as the padded
/// input, and a stride that leaves the last column unread.
const std::vector<ConvCase> conv_cases = {
    {1, 5, 5, 1, 3, 1, 0}, {2, 5, 7, 3, 3, 1, 1}, {3, 6, 4, 2, 3, 2, 1}, {2, 7, 5, 2, 3, 2, 2},
    {2, 4, 6, 3, 1, 1, 0}, {3, 5, 4, 2, 1, 2, 0}, {2, 4, 5, 2, 1, 1, 1}, {1, 6, 7, 2, 2, 2, 0},
    {2, 3, 4, 2, 3, 1, 2}, {1, 4, 4, 2, 4, 1, 0}, {2, 8, 7, 3, 3, 3, 1}, {1, 2, 2, 1, 4, 2, 1},
};

/// Cross-correlation straight from the definition, on the documented weight layout. (T comes
/// from x alone, so a layer's weight() and bias() windows convert.)
template <class T>
Matrix<T> direct_convolution(const Matrix<T>& x, const ConvCase& g,
                             const typename Matrix<T>::PlainObject& weight,
                             const typename Vector<T>::PlainObject& bias) {
  const Index oh_count = (g.h + 2 * g.p - g.k) / g.s + 1,
              ow_count = (g.w + 2 * g.p - g.k) / g.s + 1;
  Matrix<T> y(g.o * oh_count * ow_count, x.cols());
  for (Index n = 0; n < x.cols(); ++n)
    for (Index o = 0; o < g.o; ++o)
      for (Index oh = 0; oh < oh_count; ++oh)
        for (Index ow = 0; ow < ow_count; ++ow) {
          double sum = double(bias(o));
          for (Index c = 0; c < g.c; ++c)
            for (Index ki = 0; ki < g.k; ++ki)
              for (Index kj = 0; kj < g.k; ++kj) {
                const Index h = oh * g.s - g.p + ki, w = ow * g.s - g.p + kj;
                if (h < 0 || h >= g.h || w < 0 || w >= g.w) continue;
                sum += double(weight(o, (c * g.k + ki) * g.k + kj)) *
                       double(x(c * g.h * g.w + h * g.w + w, n));
              }
          y((o * oh_count + oh) * ow_count + ow, n) = T(sum);
        }
  return y;
}

/// Pooling straight from the definition: max (or mean with the padding counted) per window.
template <class T>
Matrix<T> direct_pool(const Matrix<T>& x, ImageShape in, Index k, Index s, Index p, bool max) {
  const Index oh_count = (in.height + 2 * p - k) / s + 1, ow_count = (in.width + 2 * p - k) / s + 1;
  Matrix<T> y(in.channels * oh_count * ow_count, x.cols());
  for (Index n = 0; n < x.cols(); ++n)
    for (Index c = 0; c < in.channels; ++c)
      for (Index oh = 0; oh < oh_count; ++oh)
        for (Index ow = 0; ow < ow_count; ++ow) {
          double best = -std::numeric_limits<double>::infinity(), sum = 0;
          for (Index h = oh * s - p; h < oh * s - p + k; ++h)
            for (Index w = ow * s - p; w < ow * s - p + k; ++w) {
              if (h < 0 || h >= in.height || w < 0 || w >= in.width) continue;
              const double v = double(x(c * in.spatial() + h * in.width + w, n));
              best = std::max(best, v);
              sum += v;
            }
          y((c * oh_count + oh) * ow_count + ow, n) = T(max ? best : sum / double(k * k));
        }
  return y;
}

/// Gradient check of `model` under MSE against a random target; every entry, and the input.
GradientCheckResult check_gradients(Sequential<double>& model, Index batch, Generator& gen) {
  const Matrix<double> x = random_matrix<double>(model.input_features(), batch, gen);
  const Matrix<double> target = random_matrix<double>(model.output_features(), batch, gen);
  GradientCheckOptions options;
  options.check_input = true;
  return gradient_check(model, MeanSquaredError<double>(), x, target, gen, options);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Geometry

TEST_CASE("SlidingWindow output sizes and the outputs each tap reads inside the image") {
  const SlidingWindow w("t", ImageShape{1, 7, 5}, 3, 2, 1);
  CHECK(w.out_height() == 4);  // floor((7 + 2 - 3) / 2) + 1
  CHECK(w.out_width() == 3);   // floor((5 + 2 - 3) / 2) + 1
  // Tap ki reads row oh*2 - 1 + ki, inside for 0 <= row < 7.
  for (Index ki = 0; ki < 3; ++ki) {
    const auto r = w.rows_inside(ki);
    for (Index oh = 0; oh < w.out_height(); ++oh) {
      const Index row = oh * 2 - 1 + ki;
      CHECK((oh >= r.first && oh < r.last) == (row >= 0 && row < 7));
    }
  }
  // A tap that never lands inside: padding 2, kernel 5, on a 1-pixel-wide image.
  const SlidingWindow thin("t", ImageShape{1, 1, 1}, 5, 1, 2);
  CHECK(thin.cols_inside(0).first == thin.cols_inside(0).last);
  CHECK(thin.cols_inside(2).last - thin.cols_inside(2).first == 1);
}

// ---------------------------------------------------------------------------------------------
// Conv2D

TEST_CASE_TEMPLATE("Conv2D forward equals a direct convolution", T, float, double) {
  for (const ConvCase& g : conv_cases) {
    INFO(describe(g));
    Generator gen(3);
    Conv2D<T> conv(ImageShape{g.c, g.h, g.w}, g.o, g.k, gen,
                   ConvOptions().stride(g.s).padding(g.p));
    conv.bias() = random_matrix<T>(g.o, 1, gen);
    const Matrix<T> x = random_matrix<T>(g.c * g.h * g.w, 3, gen);
    const Matrix<T>& y = conv.forward(x, Mode::eval, nullptr);
    check_close(y, direct_convolution(x, g, conv.weight(), conv.bias()), tolerance<T>());
    CHECK(y.rows() == conv.output_rows(x.rows()));
  }
}

TEST_CASE_TEMPLATE("Conv2D fuses its activation: f(direct convolution)", T, float, double) {
  Generator gen(4);
  const ConvCase g{2, 6, 5, 3, 3, 1, 1};
  Conv2D<T, LeakyReLU> conv(ImageShape{2, 6, 5}, 3, 3, gen, ConvOptions().padding(1),
                            LeakyReLU(0.2));
  const Matrix<T> x = random_matrix<T>(60, 2, gen);
  const Matrix<T> z = direct_convolution(x, g, conv.weight(), conv.bias());
  const Matrix<T> expected = z.unaryExpr([](T v) { return v > T(0) ? v : T(0.2) * v; });
  check_close(conv.forward(x, Mode::train, nullptr), expected, tolerance<T>());
}

TEST_CASE("Conv2D gradients match finite differences over strides, paddings and kernels") {
  for (const ConvCase& g : conv_cases) {
    INFO(describe(g));
    Generator gen(5);
    Sequential<double> model;
    auto& conv = model.add(Conv2D<double, Tanh>(ImageShape{g.c, g.h, g.w}, g.o, g.k, gen,
                                                ConvOptions().stride(g.s).padding(g.p)));
    conv.bias() = random_matrix<double>(g.o, 1, gen, 0.1);
    const auto r = check_gradients(model, 3, gen);
    INFO("worst ", r.worst, " analytic ", r.worst_analytic, " numeric ", r.worst_numeric);
    CHECK(r.max_relative_error <= 1e-6);
    CHECK(r.entries_checked == model.parameter_count() + g.c * g.h * g.w * 3);
  }
}

TEST_CASE("Conv2D with an L2 penalty: the penalty enters the loss and dW") {
  Generator gen(6);
  Sequential<double> model;
  model.add(Conv2D<double>(ImageShape{2, 5, 5}, 2, 3, gen, ConvOptions().padding(1)))
      .with_l2(0.1)
      .with_l1(0.02);
  const auto r = check_gradients(model, 2, gen);
  INFO(r.worst);
  CHECK(r.max_relative_error <= 1e-6);
  CHECK(model.penalty() > 0.0);
}

TEST_CASE("Conv2D need_dx = false skips the input gradient but not dW, db") {
  Generator gen(7);
  Conv2D<double> conv(ImageShape{2, 5, 4}, 3, 3, gen, ConvOptions().padding(1));
  const Matrix<double> x = random_matrix<double>(40, 3, gen),
                       dy = random_matrix<double>(60, 3, gen);
  conv.forward(x, Mode::train, nullptr);
  const Matrix<double> dx = conv.backward(dy, true);
  const Matrix<double> dw = conv.weight_grad();
  const Vector<double> db = conv.bias_grad();
  conv.forward(x, Mode::train, nullptr);
  CHECK(conv.backward(dy, false).size() == 0);
  CHECK(conv.weight_grad() == dw);
  CHECK(conv.bias_grad() == db);
  CHECK(dx.rows() == 40);
  // db sums dZ over positions and samples: for Identity, dZ = dy.
  for (Index o = 0; o < 3; ++o)
    CHECK(db(o) == doctest::Approx(dy.middleRows(o * 20, 20).sum()).epsilon(1e-12));
}

TEST_CASE("Conv2D initializes He normal with fan_in = C*k*k; Xavier with fan_out = O*k*k") {
  Generator gen(8);
  const Conv2D<double, ReLU> he(ImageShape{16, 8, 8}, 64, 3, gen);
  const double fan_in = 16 * 9, fan_out = 64 * 9, n = 64 * 16 * 9;
  // Sample variance of n normal draws: sd = var * sqrt(2 / n).
  const auto variance = [](const Matrix<double>& w) { return w.squaredNorm() / double(w.size()); };
  CHECK(std::abs(variance(he.weight()) - 2 / fan_in) <= 5 * (2 / fan_in) * std::sqrt(2 / n));
  CHECK(he.bias().isZero());
  CHECK(he.config().string("init") == "he_normal");
  const Conv2D<double, Tanh> xavier(ImageShape{16, 8, 8}, 64, 3, gen);  // xavier_uniform
  const double var = 2 / (fan_in + fan_out);
  // Uniform draws: Var(w^2) = 4/5 var^2, so the sample variance has sd var * sqrt(0.8 / n).
  CHECK(std::abs(variance(xavier.weight()) - var) <= 5 * var * std::sqrt(0.8 / n));
  CHECK(xavier.weight().cwiseAbs().maxCoeff() <= std::sqrt(3 * var));
  const Conv2D<double> chosen(ImageShape{1, 4, 4}, 2, 3, gen, ConvOptions().init(Init::zeros));
  CHECK(chosen.weight().isZero());
}

TEST_CASE("Conv2D name, config, parameters and shapes") {
  Generator gen(9);
  Conv2D<float, ReLU> conv(ImageShape{1, 28, 28}, 32, 3, gen, ConvOptions().padding(1));
  CHECK(conv.name() == "Conv2D(1x28x28->32x28x28, k=3, s=1, p=1, ReLU)");
  CHECK(conv.output_shape() == ImageShape{32, 28, 28});
  CHECK(conv.expected_input_rows() == 784);
  CHECK(conv.output_rows(784) == 32 * 784);
  CHECK(conv.parameter_count() == 32 * 9 + 32);
  const auto params = conv.parameters();
  REQUIRE(params.size() == 2);
  CHECK(params[0].name == "weight");
  CHECK(params[0].rows == 32);
  CHECK(params[0].cols == 9);
  CHECK(params[1].role == ParameterRole::bias);
  const LayerConfig c =
      Conv2D<float>(ImageShape{3, 9, 7}, 4, 5, gen, ConvOptions().stride(2).padding(2))
          .with_l2(0.01f)
          .config();
  CHECK(c.kind == "Conv2D");
  CHECK(c.number("channels") == 3);
  CHECK(c.number("height") == 9);
  CHECK(c.number("width") == 7);
  CHECK(c.number("out_channels") == 4);
  CHECK(c.number("kernel") == 5);
  CHECK(c.number("stride") == 2);
  CHECK(c.number("padding") == 2);
  CHECK(c.number("l2") == doctest::Approx(0.01));
  CHECK(c.number("l1") == 0);
  CHECK(c.string("activation") == "Identity");
  CHECK(c.string("init") == "xavier_uniform");
  CHECK(Conv2D<float>(ImageShape{3, 9, 7}, 4, 5, gen, ConvOptions().stride(2).padding(2))
            .output_shape() == ImageShape{4, 5, 4});
}

TEST_CASE("Conv2D rejects bad sizes and inputs, naming the layer, expected and received") {
  Generator gen(10);
  expect_invalid([&] { Conv2D<float>(ImageShape{0, 28, 28}, 8, 3, gen); }, {"Conv2D", "0x28x28"});
  expect_invalid([&] { Conv2D<float>(ImageShape{1, 28, -1}, 8, 3, gen); }, {"Conv2D", "1x28x-1"});
  expect_invalid(
      [&] {
        Conv2D<float>(ImageShape{1, 28, 28}, 0, 3, gen);
      },
      {"Conv2D", "out_channels", "got 0"});
  expect_invalid(
      [&] {
        Conv2D<float>(ImageShape{1, 28, 28}, 8, 0, gen);
      },
      {"Conv2D", "kernel", "got 0"});
  expect_invalid(
      [&] {
        Conv2D<float>(ImageShape{1, 28, 28}, 8, 3, gen, ConvOptions().stride(0));
      },
      {"Conv2D", "stride", "got 0"});
  expect_invalid(
      [&] {
        Conv2D<float>(ImageShape{1, 28, 28}, 8, 3, gen, ConvOptions().padding(-1));
      },
      {"Conv2D", "padding", "got -1"});
  expect_invalid(
      [&] {
        Conv2D<float>(ImageShape{1, 4, 9}, 8, 7, gen, ConvOptions().padding(1));
      },
      {"Conv2D", "kernel 7", "1x4x9", "expected kernel <= 6"});

  Conv2D<float> conv(ImageShape{2, 5, 5}, 3, 3, gen);
  expect_invalid([&] { conv.forward(Matrix<float>::Zero(49, 2), Mode::eval, nullptr); },
                 {"Conv2D(2x5x5->3x3x3", "49 rows", "expected 50", "2x5x5"});
  expect_invalid([&] { conv.forward(Matrix<float>::Zero(50, 0), Mode::eval, nullptr); },
                 {"Conv2D(2x5x5->3x3x3", "empty"});
  expect_invalid([&] { conv.backward(Matrix<float>::Zero(27, 2), true); },
                 {"Conv2D(2x5x5->3x3x3", "before forward"});
  conv.forward(Matrix<float>::Zero(50, 2), Mode::eval, nullptr);
  expect_invalid([&] { conv.backward(Matrix<float>::Zero(27, 3), true); },
                 {"Conv2D(2x5x5->3x3x3", "27x3", "expected 27x2"});

  Sequential<float> model;
  model.add(Conv2D<float>(ImageShape{1, 28, 28}, 8, 3, gen));  // -> 8x26x26
  expect_invalid(
      [&] {
        model.add(MaxPool2D<float>(ImageShape{8, 28, 28}, 2));
      },
      {"layer 1", "MaxPool2D(8x28x28", "5408", "expected 6272"});
  CHECK(model.size() == 1);
}

// ---------------------------------------------------------------------------------------------
// Pooling

TEST_CASE_TEMPLATE("MaxPool2D and AvgPool2D equal direct pooling, overlapping or strided apart", T,
                   float, double) {
  struct PoolCase {
    ImageShape in;
    Index k, s, p;
  };
  for (const PoolCase& g :
       {PoolCase{{2, 6, 6}, 2, 2, 0}, PoolCase{{3, 7, 5}, 3, 2, 1}, PoolCase{{1, 5, 6}, 2, 1, 0},
        PoolCase{{2, 9, 8}, 2, 3, 1}, PoolCase{{2, 5, 5}, 3, 3, 0}, PoolCase{{1, 4, 7}, 4, 1, 2}}) {
    INFO(to_string(g.in), " k=", g.k, " s=", g.s, " p=", g.p);
    Generator gen(11);
    const Matrix<T> x = random_matrix<T>(g.in.size(), 3, gen);
    const PoolOptions options = PoolOptions().stride(g.s).padding(g.p);
    MaxPool2D<T> max_pool(g.in, g.k, options);
    AvgPool2D<T> avg_pool(g.in, g.k, options);
    check_close(max_pool.forward(x, Mode::train, nullptr),
                direct_pool(x, g.in, g.k, g.s, g.p, true), 0.0);
    check_close(avg_pool.forward(x, Mode::train, nullptr),
                direct_pool(x, g.in, g.k, g.s, g.p, false), tolerance<T>());
    CHECK(max_pool.output_rows(g.in.size()) == max_pool.output_shape().size());
  }
}

TEST_CASE("pooling gradients match finite differences") {
  struct PoolCase {
    ImageShape in;
    Index k, s, p;
  };
  for (const PoolCase& g :
       {PoolCase{{2, 6, 6}, 2, 2, 0}, PoolCase{{2, 7, 5}, 3, 2, 1}, PoolCase{{1, 5, 6}, 2, 1, 0},
        PoolCase{{2, 9, 8}, 2, 3, 1}, PoolCase{{1, 4, 7}, 4, 1, 2}}) {
    INFO(to_string(g.in), " k=", g.k, " s=", g.s, " p=", g.p);
    const PoolOptions options = PoolOptions().stride(g.s).padding(g.p);
    for (bool max : {true, false}) {
      INFO((max ? "MaxPool2D" : "AvgPool2D"));
      Generator gen(12);
      Sequential<double> model;
      // A convolution first, so parameters upstream of the pool are checked too.
      model.add(Conv2D<double>(g.in, g.in.channels, 1, gen));
      if (max) {
        model.add(MaxPool2D<double>(g.in, g.k, options));
      } else {
        model.add(AvgPool2D<double>(g.in, g.k, options));
      }
      const auto r = check_gradients(model, 2, gen);
      INFO("worst ", r.worst, " analytic ", r.worst_analytic, " numeric ", r.worst_numeric);
      CHECK(r.max_relative_error <= 1e-6);
    }
  }
}

TEST_CASE("MaxPool2D ties go to the first maximum in row-major window order; NaN wins") {
  // One 2x4 channel, windows 2x2 stride 2: [1 1 | 5 3]
  //                                        [1 1 | 5 5]
  MaxPool2D<double> pool(ImageShape{1, 2, 4}, 2);
  Matrix<double> x(8, 1);
  x << 1, 1, 5, 3, 1, 1, 5, 5;
  const Matrix<double>& y = pool.forward(x, Mode::train, nullptr);
  CHECK(y(0, 0) == 1);
  CHECK(y(1, 0) == 5);
  CHECK(pool.argmax()(0, 0) == 0);  // (0, 0), not (0, 1), (1, 0) or (1, 1)
  CHECK(pool.argmax()(1, 0) == 2);  // (0, 2), not (1, 2) or (1, 3)
  Matrix<double> dy(2, 1);
  dy << 10, 20;
  Matrix<double> expected(8, 1);
  expected << 10, 0, 20, 0, 0, 0, 0, 0;
  CHECK(pool.backward(dy, true) == expected);

  x(5, 0) = std::numeric_limits<double>::quiet_NaN();
  CHECK(std::isnan(pool.forward(x, Mode::train, nullptr)(0, 0)));
  CHECK(pool.argmax()(0, 0) == 5);
}

TEST_CASE("overlapping MaxPool2D windows add their gradients; padding is never the maximum") {
  // 1x3x3, window 2, stride 1: the centre is the maximum of all four windows.
  MaxPool2D<double> pool(ImageShape{1, 3, 3}, 2, PoolOptions().stride(1));
  Matrix<double> x(9, 1);
  x << -1, -2, -3, -4, 9, -5, -6, -7, -8;
  pool.forward(x, Mode::train, nullptr);
  const Matrix<double> dx = pool.backward(Matrix<double>::Constant(4, 1, 1.5), true);
  CHECK(dx(4, 0) == 6.0);
  CHECK(dx.sum() == 6.0);
  // Negative inputs with padding 1: every window's maximum is a pixel, not the zero padding.
  MaxPool2D<double> padded(ImageShape{1, 3, 3}, 2, PoolOptions().padding(1));
  const Matrix<double>& y = padded.forward(x, Mode::train, nullptr);
  CHECK((y.array() < 0 || y.array() == 9).all());
  CHECK(y(0, 0) == -1);
}

TEST_CASE("AvgPool2D counts padding as zeros (count_include_pad)") {
  AvgPool2D<double> pool(ImageShape{1, 2, 2}, 2, PoolOptions().padding(1));  // -> 1x2x2
  Matrix<double> x(4, 1);
  x << 4, 8, 12, 16;
  Matrix<double> expected(4, 1);
  expected << 1, 2, 3, 4;  // each window holds one pixel and three zeros, divided by 4
  CHECK(pool.forward(x, Mode::eval, nullptr) == expected);
}

TEST_CASE_TEMPLATE("GlobalAvgPool averages each channel; gradients match finite differences", T,
                   float, double) {
  Generator gen(13);
  GlobalAvgPool<T> pool(ImageShape{3, 4, 5});
  const Matrix<T> x = random_matrix<T>(60, 4, gen);
  const Matrix<T>& y = pool.forward(x, Mode::train, nullptr);
  REQUIRE(y.rows() == 3);
  for (Index n = 0; n < 4; ++n)
    for (Index c = 0; c < 3; ++c)
      CHECK(double(y(c, n)) ==
            doctest::Approx(double(x.col(n).segment(c * 20, 20).mean())).epsilon(tolerance<T>()));
  CHECK(pool.name() == "GlobalAvgPool(3x4x5->3)");
  CHECK(pool.config().kind == "GlobalAvgPool");
  CHECK(pool.output_rows(60) == 3);

  Sequential<double> model;
  model.add(Conv2D<double, Tanh>(ImageShape{2, 4, 5}, 3, 3, gen, ConvOptions().padding(1)));
  model.add(GlobalAvgPool<double>(ImageShape{3, 4, 5}));
  model.add(Dense<double>(3, 2, gen));
  const auto r = check_gradients(model, 3, gen);
  INFO(r.worst);
  CHECK(r.max_relative_error <= 1e-6);
}

TEST_CASE("pooling names, configs, and bad shapes") {
  CHECK(MaxPool2D<float>(ImageShape{32, 28, 28}, 2).name() ==
        "MaxPool2D(32x28x28->32x14x14, k=2, s=2, p=0)");
  const LayerConfig c =
      AvgPool2D<float>(ImageShape{8, 9, 7}, 3, PoolOptions().stride(2).padding(1)).config();
  CHECK(c.kind == "AvgPool2D");
  CHECK(c.number("channels") == 8);
  CHECK(c.number("height") == 9);
  CHECK(c.number("width") == 7);
  CHECK(c.number("kernel") == 3);
  CHECK(c.number("stride") == 2);
  CHECK(c.number("padding") == 1);
  CHECK(MaxPool2D<float>(ImageShape{1, 28, 28}, 2).config().kind == "MaxPool2D");
  CHECK(MaxPool2D<float>(ImageShape{1, 28, 28}, 2).parameter_count() == 0);

  expect_invalid([] { MaxPool2D<float>(ImageShape{4, 0, 4}, 2); }, {"MaxPool2D", "4x0x4"});
  expect_invalid(
      [] {
        AvgPool2D<float>(ImageShape{4, 4, 4}, 0);
      },
      {"AvgPool2D", "kernel", "got 0"});
  expect_invalid(
      [] {
        MaxPool2D<float>(ImageShape{4, 4, 4}, 2, PoolOptions().stride(0));
      },
      {"MaxPool2D", "stride", "got 0"});
  expect_invalid(
      [] {
        MaxPool2D<float>(ImageShape{4, 4, 4}, 3, PoolOptions().padding(2));
      },
      {"MaxPool2D", "half the kernel (3)", "got 2"});
  expect_invalid(
      [] {
        AvgPool2D<float>(ImageShape{4, 3, 5}, 4);
      },
      {"AvgPool2D", "kernel 4", "4x3x5"});
  expect_invalid([] { GlobalAvgPool<float>(ImageShape{0, 3, 3}); }, {"GlobalAvgPool", "0x3x3"});

  MaxPool2D<float> pool(ImageShape{2, 4, 4}, 2);
  expect_invalid([&] { pool.forward(Matrix<float>::Zero(31, 1), Mode::eval, nullptr); },
                 {"MaxPool2D(2x4x4->2x2x2", "31 rows", "expected 32"});
  expect_invalid([&] { pool.backward(Matrix<float>::Zero(8, 1), true); },
                 {"MaxPool2D(2x4x4->2x2x2", "before forward"});
  GlobalAvgPool<float> global(ImageShape{2, 4, 4});
  expect_invalid([&] { global.forward(Matrix<float>::Zero(16, 1), Mode::eval, nullptr); },
                 {"GlobalAvgPool(2x4x4->2)", "16 rows", "expected 32"});
  expect_invalid([&] { global.output_rows(33); }, {"GlobalAvgPool", "33", "expected 32"});
}

// ---------------------------------------------------------------------------------------------
// Flatten

TEST_CASE_TEMPLATE("Flatten is the identity and copies nothing", T, float, double) {
  Flatten<T> flatten(ImageShape{3, 2, 4});
  const Matrix<T> x = Matrix<T>::Random(24, 5);
  const Matrix<T>& y = flatten.forward(x, Mode::train, nullptr);
  CHECK(&y == &x);
  const Matrix<T> dy = Matrix<T>::Random(24, 5);
  CHECK(&flatten.backward(dy, true) == &dy);
  CHECK(flatten.backward(dy, false).size() == 0);
  CHECK(flatten.name() == "Flatten(3x2x4->24)");
  CHECK(flatten.config().kind == "Flatten");
  CHECK(flatten.config().number("width") == 4);
  CHECK(flatten.output_rows(24) == 24);
  expect_invalid([&] { flatten.forward(Matrix<T>::Zero(25, 1), Mode::eval, nullptr); },
                 {"Flatten(3x2x4->24)", "25 rows", "expected 24"});
  expect_invalid([&] { flatten.backward(Matrix<T>::Zero(24, 4), true); },
                 {"Flatten", "24x4", "expected 24x5"});
  expect_invalid([] { Flatten<T>(ImageShape{1, 0, 1}); }, {"Flatten", "1x0x1"});
  expect_invalid(
      [] {
        Flatten<T>(ImageShape{2, 2, 2}).backward(Matrix<T>::Zero(8, 1), true);
      },
      {"Flatten", "before forward"});
}

// ---------------------------------------------------------------------------------------------
// A conv block end to end

/// Conv2D -> BatchNorm(channels, spatial) -> ReLU -> SpatialDropout -> MaxPool -> Flatten ->
/// Dense, on 2x6x5 images.
Sequential<double> conv_block(Generator& gen, double p) {
  Sequential<double> model;
  model.add(Conv2D<double>(ImageShape{2, 6, 5}, 3, 3, gen, ConvOptions().padding(1)));
  model.add(BatchNorm<double>(3, 30));
  model.add(ActivationLayer<double, ReLU>());
  model.add(SpatialDropout<double>(p, 3));
  model.add(MaxPool2D<double>(ImageShape{3, 6, 5}, 2));
  model.add(Flatten<double>(ImageShape{3, 3, 2}));
  model.add(Dense<double>(18, 4, gen));
  return model;
}

TEST_CASE("a conv block gradient-checks end to end, with frozen spatial dropout masks") {
  for (double p : {0.0, 0.5}) {
    INFO("p=", p);
    Generator gen(21);
    Sequential<double> model = conv_block(gen, p);
    CHECK(model.input_features() == 60);
    CHECK(model.output_features() == 4);
    const Matrix<double> x = random_matrix<double>(60, 4, gen);
    const Labels y = (Labels(4) << 0, 3, 1, 2).finished();
    GradientCheckOptions options;
    options.check_input = true;
    // The conv bias feeds BatchNorm, which removes it: its true gradient is 0, and the five-point
    // difference returns rounding noise: the loss is a sum of thousands of rounded terms, about
    // 1e-14 off, divided by h = 1e-4, so about 1e-10 (measured: 3e-12 to 6e-12, larger with
    // -march=native's FMA contractions). With the default floor of 1e-8 that noise alone reads
    // as a relative error of 6e-4; a floor of 1e-4 compares gradients below 1e-4 to 1e-10
    // absolute, and every larger one still to 1e-6 relative.
    options.floor = 1e-4;
    const auto r = gradient_check(model, SoftmaxCrossEntropy<double>(), x, y, gen, options);
    INFO("worst ", r.worst, " analytic ", r.worst_analytic, " numeric ", r.worst_numeric);
    CHECK(r.max_relative_error <= 1e-6);
    CHECK(r.entries_checked == model.parameter_count() + x.size());
  }
}

TEST_CASE("a conv block summary lists the layers with their output sizes") {
  Generator gen(22);
  Sequential<double> model = conv_block(gen, 0.2);
  const std::string summary = model.summary();
  INFO(summary);
  CHECK(summary.find("Conv2D(2x6x5->3x6x5, k=3, s=1, p=1, Identity)") != std::string::npos);
  CHECK(summary.find("(90, batch)") != std::string::npos);
  CHECK(summary.find("MaxPool2D(3x6x5->3x3x2") != std::string::npos);
  CHECK(summary.find("Flatten(3x3x2->18)") != std::string::npos);
}
