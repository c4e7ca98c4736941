// The dropout family: Dropout, SpatialDropout, AlphaDropout, GaussianDropout, DropConnectDense.
//
// Statistical checks use fixed seeds and bounds derived from the sampling distribution of the
// statistic (binomial counts, means and variances of n i.i.d. draws), at 5 standard deviations
// unless stated: a correct layer fails with probability < 6e-7 per check, a wrong scale or a
// wrong mask misses by tens of sigma.

#include <doctest/doctest.h>

#include <cmath>
#include <cstdlib>
#include <dropnet/dropnet.hpp>

#include "test_data.hpp"
#include <limits>
#include <new>
#include <string>
#include <vector>

using namespace dropnet;
using test::kSigmas;
using test::normal_matrix;
using test::within_binomial;

namespace {

template <class T>
Matrix<T> uniform_matrix(Index rows, Index cols, Generator& gen, double low, double high) {
  Matrix<T> m(rows, cols);
  for (Index i = 0; i < m.size(); ++i) m.data()[i] = gen.uniform<T>(T(low), T(high));
  return m;
}

template <class T>
double mean_of(const Matrix<T>& m) {
  return m.template cast<double>().mean();
}

template <class T>
double variance_of(const Matrix<T>& m) {
  const Eigen::ArrayXXd a = m.template cast<double>().array();
  return (a - a.mean()).square().mean();
}

/// Fourth central moment, for the standard error of a sample variance.
template <class T>
double fourth_moment_of(const Matrix<T>& m) {
  const Eigen::ArrayXXd a = m.template cast<double>().array();
  return (a - a.mean()).square().square().mean();
}

/// Binomial(n, p) count bound: |count - n p| <= 5 sqrt(n p (1 - p)).
/// The shape-preserving dropouts, with p, taking inputs whose rows are a multiple of 4.
template <class T>
std::vector<LayerPtr<T>> shape_preserving_dropouts(double p) {
  std::vector<LayerPtr<T>> layers;
  layers.push_back(std::make_unique<Dropout<T>>(p));
  layers.push_back(std::make_unique<SpatialDropout<T>>(p, 4));
  layers.push_back(std::make_unique<AlphaDropout<T>>(p));
  layers.push_back(std::make_unique<GaussianDropout<T>>(p));
  return layers;
}

/// Expects InvalidArgument whose message starts with `prefix` and contains `part`.
template <class F>
void expect_invalid(F make, const std::string& prefix, const std::string& part) {
  try {
    make();
    FAIL("expected InvalidArgument starting with '", prefix, "'");
  } catch (const InvalidArgument& e) {
    const std::string message = e.what();
    INFO(message);
    CHECK(message.rfind(prefix, 0) == 0);
    CHECK(message.find(part) != std::string::npos);
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Masks

TEST_CASE("keep threshold quantizes 1 - p to 2^-32") {
  CHECK(KeepThreshold("t", 0.0).keep_probability() == 1.0);
  CHECK(KeepThreshold("t", 0.5).keep_probability() == 0.5);
  for (double p : {0.1, 0.3, 1.0 / 3.0, 0.9, 0.999999})
    CHECK(std::abs(KeepThreshold("t", p).keep_probability() - (1.0 - p)) <= 0x1.0p-33);
  expect_invalid([] { KeepThreshold("Dropout", 1.0 - 1e-12); }, "Dropout:", "rounds to 0");
}

TEST_CASE("a mask does not depend on how its block range is split (threads, chunks)") {
  Generator gen(5);
  const KeepThreshold keep("t", 0.3);
  const Index n = 1001;
  const std::uint64_t first = gen.reserve_blocks(mask_blocks(n));
  std::vector<float> whole(n), parts(n);
  fill_bernoulli(gen, first, keep, 1.0f, 0.0f, whole.data(), n);
  // Two "threads": entries [0, 300) from block first, [300, n) from block first + 75.
  fill_bernoulli(gen, first, keep, 1.0f, 0.0f, parts.data(), 300);
  fill_bernoulli(gen, first + 75, keep, 1.0f, 0.0f, parts.data() + 300, n - 300);
  CHECK(whole == parts);
  // Entry i is word i % 4 of block first + i / 4, thresholded.
  for (Index i : {Index(0), Index(7), Index(255), Index(256), Index(1000)}) {
    const auto word = gen.block(first + std::uint64_t(i / 4))[std::size_t(i % 4)];
    CHECK(whole[std::size_t(i)] == (word <= keep.last_kept_word() ? 1.0f : 0.0f));
  }
}

// ---------------------------------------------------------------------------------------------
// Dropout

TEST_CASE_TEMPLATE("Dropout zeroes a fraction p of units and scales the rest by 1/(1-p)", T, float,
                   double) {
  for (double p : {0.1, 0.5, 0.8}) {
    Generator gen(42);
    Dropout<T> layer(p);
    const Matrix<T> x = uniform_matrix<T>(400, 500, gen, 0.5, 1.5);  // never 0
    const Matrix<T>& y = layer.forward(x, Mode::train, &gen);
    // n independent Bernoulli(p) drops: count ~ Binomial(n, p), sd = sqrt(n p (1 - p)).
    const double n = double(x.size());
    const double dropped = double((y.array() == T(0)).count());
    INFO("p=", p, " dropped fraction ", dropped / n, " (sd ", std::sqrt(p * (1 - p) / n), ")");
    CHECK(within_binomial(dropped, n, p));
    const T scale = static_cast<T>(1.0 / (1.0 - p));
    CHECK(((y.array() == T(0)) || (y.array() == x.array() * scale)).all());
  }
}

TEST_CASE_TEMPLATE("Dropout preserves the mean in expectation", T, float, double) {
  for (double p : {0.2, 0.6}) {
    Generator gen(7);
    Dropout<T> layer(p);
    const Matrix<T> x = normal_matrix<T>(300, 400, gen, 1.0, 1.0);
    const Matrix<T>& y = layer.forward(x, Mode::train, &gen);
    // D = mean(y) - mean(x) = (1/n) sum x_i (m_i / q - 1) with E = 0 and
    // Var = (1/n^2) sum x_i^2 Var(m_i / q) = (1/n^2) sum x_i^2 p / q.
    const double n = double(x.size());
    const double sd = std::sqrt(x.template cast<double>().squaredNorm() * p / (1.0 - p)) / n;
    const double d = mean_of(y) - mean_of(x);
    INFO("p=", p, " mean(y) - mean(x) = ", d, ", sd ", sd);
    CHECK(std::abs(d) <= kSigmas * sd);
  }
}

// ---------------------------------------------------------------------------------------------
// Identity: eval mode and p = 0

TEST_CASE_TEMPLATE("eval mode is the identity: the input object itself, no draws", T, float,
                   double) {
  Generator gen(1);
  const Matrix<T> x = normal_matrix<T>(8, 5, gen);
  const Matrix<T> dy = normal_matrix<T>(8, 5, gen);
  for (auto& layer : shape_preserving_dropouts<T>(0.5)) {
    INFO(layer->name());
    CHECK(layer->is_stochastic());
    const std::uint64_t position = gen.position();
    CHECK(&layer->forward(x, Mode::eval, nullptr) == &x);
    CHECK(&layer->forward(x, Mode::eval, &gen) == &x);
    CHECK(gen.position() == position);
    CHECK(&layer->backward(dy, true) == &dy);
    CHECK(layer->backward(dy, false).size() == 0);
  }
}

TEST_CASE_TEMPLATE("p = 0 is the identity in every mode", T, float, double) {
  Generator gen(1);
  const Matrix<T> x = normal_matrix<T>(8, 5, gen);
  const Matrix<T> dy = normal_matrix<T>(8, 5, gen);
  for (auto& layer : shape_preserving_dropouts<T>(0.0)) {
    INFO(layer->name());
    for (Mode mode : {Mode::train, Mode::mc_sample}) {
      CHECK(&layer->forward(x, mode, &gen) == &x);
      CHECK(&layer->backward(dy, true) == &dy);
    }
  }
  AlphaDropout<T> alpha(0.0);
  CHECK(alpha.a() == 1.0);
  CHECK(alpha.b() == 0.0);
}

// ---------------------------------------------------------------------------------------------
// Backward: same mask as forward

TEST_CASE("every dropout back-propagates through the forward's mask (finite differences)") {
  const double p = 0.5;
  for (Mode mode : {Mode::train, Mode::mc_sample}) {
    for (auto& dropout : shape_preserving_dropouts<double>(p)) {
      Generator gen(17);
      Sequential<double> model(6);
      model.add(Dense<double, Tanh>(6, 8, gen, Init::xavier_normal));
      Layer<double>& layer = *dropout;
      model.add(std::move(dropout));
      model.add(Dense<double>(8, 3, gen));
      const Matrix<double> x = normal_matrix<double>(6, 5, gen);
      const Matrix<double> target = normal_matrix<double>(3, 5, gen);
      GradientCheckOptions options;
      options.check_input = true;
      options.mode = mode;
      const auto r = gradient_check(model, MeanSquaredError<double>(), x, target, gen, options);
      INFO(layer.name(), " in ", std::string(to_string(mode)), ": worst ", r.worst, " analytic ",
           r.worst_analytic, " numeric ", r.worst_numeric, " rel. error ", r.max_relative_error);
      CHECK(r.entries_checked == 6 * 8 + 8 + 8 * 3 + 3 + 6 * 5);
      CHECK(r.max_relative_error <= 1e-6);
      // The check is only meaningful if the noise was not trivial: the last forward (a frozen
      // replay) must have changed the activations.
      Generator frozen = gen;
      const Matrix<double> hidden = model.layer(0).forward(x, mode, &frozen);
      const Matrix<double>& noisy = layer.forward(hidden, mode, &frozen);
      CHECK((noisy - hidden).cwiseAbs().maxCoeff() > 1e-3);
    }
  }
}

TEST_CASE_TEMPLATE("backward multiplies by the forward's own mask", T, float, double) {
  Generator gen(3);
  const Matrix<T> x = normal_matrix<T>(12, 7, gen);
  const Matrix<T> dy = normal_matrix<T>(12, 7, gen);
  Dropout<T> dropout(0.4);
  dropout.forward(x, Mode::train, &gen);
  CHECK(dropout.backward(dy, true) == Matrix<T>(dy.array() * dropout.mask().array()));
  AlphaDropout<T> alpha(0.4);
  alpha.forward(x, Mode::train, &gen);
  CHECK(alpha.backward(dy, true) == Matrix<T>(dy.array() * alpha.mask().array()));
  GaussianDropout<T> gaussian(0.4);
  gaussian.forward(x, Mode::train, &gen);
  CHECK(gaussian.backward(dy, true) == Matrix<T>(dy.array() * gaussian.noise().array()));
}

TEST_CASE_TEMPLATE("a Dropout whose mask nobody read stores none, and regenerates it exactly",
                   T, float, double) {
  // Below a model's first trainable layer (on the input) a Dropout never gets a backward pass:
  // from its second batch on it writes y = x m without m. Its mask, then read by backward or
  // mask(), is regenerated from its first block: the mask that drew y, bit for bit.
  Generator gen(8), copy(8);
  const Matrix<T> x = normal_matrix<T>(37, 9, gen);  // 333 entries: not a whole number of blocks
  const Matrix<T> dy = normal_matrix<T>(37, 9, gen);
  copy.reserve_blocks(gen.position() - copy.position());
  Dropout<T> lazy(0.3), eager(0.3);
  for (int batch = 0; batch < 3; ++batch) {
    const Matrix<T> y = lazy.forward(x, Mode::train, &gen);  // mask unread before batches 1, 2
    const Matrix<T> expected = eager.forward(x, Mode::train, &copy);
    eager.mask();  // read: eager stores every mask
    CHECK(y == expected);
    if (batch == 2) {
      CHECK(lazy.backward(dy, true) == eager.backward(dy, true));
      CHECK(lazy.mask() == eager.mask());
    }
  }
  // The mask was read by backward: the next forward stores it again, and it is the same.
  const Matrix<T> y = lazy.forward(x, Mode::train, &gen);
  CHECK(y == eager.forward(x, Mode::train, &copy));
  CHECK(lazy.mask() == eager.mask());
  CHECK(gen.position() == copy.position());
}

// ---------------------------------------------------------------------------------------------
// SpatialDropout

TEST_CASE_TEMPLATE("SpatialDropout drops whole channels only", T, float, double) {
  const Index channels = 6, hw = 10, batch = 400;
  const double p = 0.3;
  Generator gen(11);
  SpatialDropout<T> layer(p, channels);
  const Matrix<T> x = uniform_matrix<T>(channels * hw, batch, gen, 0.5, 1.5);  // never 0
  const Matrix<T>& y = layer.forward(x, Mode::train, &gen);
  REQUIRE(layer.mask().rows() == channels);
  REQUIRE(layer.mask().cols() == batch);
  const T scale = static_cast<T>(1.0 / (1.0 - p));
  Index dropped = 0, mixed = 0, samples_with_both = 0;
  for (Index j = 0; j < batch; ++j) {
    Index dropped_here = 0;
    for (Index c = 0; c < channels; ++c) {
      const auto in = x.block(c * hw, j, hw, 1).array();
      const auto out = y.block(c * hw, j, hw, 1).array();
      const bool all_zero = (out == T(0)).all();
      const bool all_kept = (out == in * scale).all();
      mixed += !(all_zero || all_kept);
      dropped += all_zero;
      dropped_here += all_zero;
      CHECK((layer.mask()(c, j) == T(0)) == all_zero);
    }
    samples_with_both += dropped_here > 0 && dropped_here < channels;
  }
  CHECK(mixed == 0);
  // One Bernoulli(p) per (channel, sample): n = channels * batch draws.
  INFO("dropped channel fraction ", double(dropped) / double(channels * batch));
  CHECK(within_binomial(double(dropped), double(channels * batch), p));
  // Channels of a sample are independent: a sample with 6 channels keeps some and drops some
  // with probability 1 - 0.7^6 - 0.3^6 = 0.88.
  CHECK(samples_with_both > batch / 2);
}

TEST_CASE("SpatialDropout preserves the mean in expectation") {
  const Index channels = 8, hw = 16, batch = 600;
  const double p = 0.4;
  Generator gen(12);
  SpatialDropout<double> layer(p, channels);
  const Matrix<double> x = normal_matrix<double>(channels * hw, batch, gen, 1.0, 1.0);
  const Matrix<double>& y = layer.forward(x, Mode::train, &gen);
  // D = (1/n) sum_{c,j} S_cj (m_cj / q - 1), S_cj the channel's sum: Var = (1/n^2) sum S^2 p/q.
  const Eigen::Map<const Matrix<double>> groups(x.data(), hw, channels * batch);
  const double n = double(x.size());
  const double sd = std::sqrt(groups.colwise().sum().squaredNorm() * p / (1.0 - p)) / n;
  const double d = mean_of(y) - mean_of(x);
  INFO("mean(y) - mean(x) = ", d, ", sd ", sd);
  CHECK(std::abs(d) <= kSigmas * sd);
}

// ---------------------------------------------------------------------------------------------
// AlphaDropout

TEST_CASE("AlphaDropout's affine constants are Klambauer's") {
  // a = ((1 - p)(1 + p alpha'^2))^(-1/2), b = -a alpha' p, alpha' = -lambda alpha (SELU).
  CHECK(AlphaDropout<double>::alpha_prime ==
        doctest::Approx(-SELU::lambda * SELU::alpha).epsilon(1e-15));
  AlphaDropout<double> layer(0.1);
  CHECK(layer.a() == doctest::Approx(0.9212845161497115).epsilon(1e-14));
  CHECK(layer.b() == doctest::Approx(0.16197097005757022).epsilon(1e-14));
}

TEST_CASE_TEMPLATE("AlphaDropout keeps mean 0 and variance 1 on SELU outputs of N(0, 1) inputs", T,
                   float, double) {
  for (double p : {0.05, 0.1, 0.2}) {
    Generator gen(21);
    AlphaDropout<T> layer(p);
    Matrix<T> selu;
    SELU{}.forward(normal_matrix<T>(500, 600, gen), selu);  // mean 0, variance 1
    const Matrix<T>& y = layer.forward(selu, Mode::train, &gen);
    // n i.i.d. outputs: the sample mean has sd sqrt(var / n); the sample variance has
    // sd sqrt((mu4 - var^2) / n), with mu4 the fourth central moment (estimated from y).
    const double n = double(y.size());
    const double mean = mean_of(y), var = variance_of(y);
    const double mean_sd = std::sqrt(var / n);
    const double var_sd = std::sqrt((fourth_moment_of(y) - var * var) / n);
    INFO("p=", p, " mean ", mean, " (sd ", mean_sd, "), variance ", var, " (sd ", var_sd, ")");
    CHECK(std::abs(mean) <= kSigmas * mean_sd);
    CHECK(std::abs(var - 1.0) <= kSigmas * var_sd);
    // Dropped units sit at a alpha' + b; their count is Binomial(n, p).
    const T dropped_value = static_cast<T>(layer.a() * AlphaDropout<T>::alpha_prime + layer.b());
    const double dropped = double((layer.mask().array() == T(0)).count());
    CHECK(((layer.mask().array() != T(0)) || (y.array() == dropped_value)).all());
    CHECK(within_binomial(dropped, n, p));
  }
}

TEST_CASE("SELU + LeCun-normal + AlphaDropout self-normalizes through 8 layers") {
  // 256 units, 1024 samples, p = 0.2. Klambauer et al.'s fixed point is (mean, var) = (0, 1)
  // and attracting. Deviations at a layer come from (i) sampling, sd ~ 1/sqrt(256 * 1024) =
  // 0.002 for the mean, and (ii) the finite-width weight draw: each unit's incoming squared
  // norm is chi^2_256 / 256, sd sqrt(2/256) = 0.09, averaging to ~0.006 over 256 units. Bounds
  // |mean| <= 0.05 and |var - 1| <= 0.1 are > 10 of those sd, yet a wrong AlphaDropout leaves
  // them: plain inverted dropout (control below) inflates the variance to ~1/(1 - p) = 1.25.
  const Index width = 256, batch = 1024;
  const double p = 0.2;
  auto run = [&](bool alpha, std::vector<double>& means, std::vector<double>& vars) {
    Generator gen(99);
    Sequential<double> model(width);
    for (int l = 0; l < 8; ++l) {
      model.add(Dense<double, SELU>(width, width, gen));  // default init: lecun_normal
      if (alpha) {
        model.add(AlphaDropout<double>(p));
      } else {
        model.add(Dropout<double>(p));
      }
    }
    const Matrix<double> x = normal_matrix<double>(width, batch, gen);
    const Matrix<double>* a = &x;
    for (Index i = 0; i < model.size(); ++i) {
      a = &model.layer(i).forward(*a, Mode::train, &gen);
      if (i % 2 == 1) {
        means.push_back(mean_of(*a));
        vars.push_back(variance_of(*a));
      }
    }
  };
  std::vector<double> means, vars;
  run(true, means, vars);
  REQUIRE(means.size() == 8);
  for (std::size_t l = 0; l < 8; ++l) {
    INFO("layer ", l + 1, ": mean ", means[l], ", variance ", vars[l]);
    CHECK(std::abs(means[l]) <= 0.05);
    CHECK(std::abs(vars[l] - 1.0) <= 0.1);
  }
  std::vector<double> control_means, control_vars;
  run(false, control_means, control_vars);
  INFO("with plain Dropout, variance after layer 8: ", control_vars.back());
  CHECK(std::abs(control_vars.back() - 1.0) > 0.1);
}

// ---------------------------------------------------------------------------------------------
// GaussianDropout

TEST_CASE_TEMPLATE("GaussianDropout noise is N(1, p / (1 - p))", T, float, double) {
  for (double p : {0.2, 0.5}) {
    Generator gen(31);
    GaussianDropout<T> layer(p);
    const Matrix<T> ones = Matrix<T>::Ones(400, 500);
    const Matrix<T>& e = layer.forward(ones, Mode::train, &gen);  // y = 1 * e
    const double n = double(e.size());
    const double var = p / (1.0 - p);
    // Normal sample of size n: mean sd = sqrt(var / n); sample variance sd = var sqrt(2 / (n-1)).
    const double mean = mean_of(e), sample_var = variance_of(e);
    INFO("p=", p, " noise mean ", mean, ", variance ", sample_var, " (expected ", var, ")");
    CHECK(std::abs(mean - 1.0) <= kSigmas * std::sqrt(var / n));
    CHECK(std::abs(sample_var - var) <= kSigmas * var * std::sqrt(2.0 / (n - 1.0)));
    // Shape: the fraction within one sd of the mean is Binomial(n, 0.682689).
    const double sd = std::sqrt(var);
    const double inside = double(((e.array() - T(1)).abs() < T(sd)).count());
    CHECK(within_binomial(inside, n, 0.6826894921370859));
  }
}

// ---------------------------------------------------------------------------------------------
// DropConnect

TEST_CASE_TEMPLATE("DropConnectDense drops a fraction p of weights, one mask per batch", T, float,
                   double) {
  const double p = 0.4;
  Generator gen(41);
  DropConnectDense<T> layer(200, 300, p, gen);
  Matrix<T> x(200, 4);
  x.col(0) = normal_matrix<T>(200, 1, gen);
  for (Index j = 1; j < 4; ++j) x.col(j) = x.col(0);  // identical samples
  const Matrix<T>& y = layer.forward(x, Mode::train, &gen);
  const double n = double(layer.mask().size());
  const double dropped = double((layer.mask().array() == T(0)).count());
  INFO("dropped weight fraction ", dropped / n);
  CHECK(within_binomial(dropped, n, p));
  const Matrix<T> expected =
      (layer.weight().array() * layer.mask().array()).matrix() * x + layer.bias().replicate(1, 4);
  CHECK((y - expected).cwiseAbs().maxCoeff() <= T(1e-5) * expected.cwiseAbs().maxCoeff());
  for (Index j = 1; j < 4; ++j) CHECK(y.col(j) == y.col(0));  // same mask for the whole batch
}

TEST_CASE("DropConnectDense per-sample masks: each sample its own mask, mean = mean-field") {
  const double p = 0.5, q = 1.0 - p;
  const Index in = 30, out = 5, samples = 4000;
  Generator gen(43);
  DropConnectDense<double> layer(in, out, p, gen);
  layer.with_per_sample_masks();
  layer.bias().setConstant(0.25);
  const Matrix<double> v = normal_matrix<double>(in, 1, gen);
  const Matrix<double> x = v.replicate(1, samples);
  const Matrix<double> y = layer.forward(x, Mode::train, &gen);
  CHECK(y.col(0) != y.col(1));
  // The last sample's mask is the one left in mask().
  const Vector<double> last =
      (layer.weight().array() * layer.mask().array()).matrix() * v + layer.bias();
  CHECK((y.col(samples - 1) - last).cwiseAbs().maxCoeff() <= 1e-12);
  // Identity activation: E[y_i] = q (W v)_i + b_i, Var = q (1 - q) sum_k W_ik^2 v_k^2 per sample;
  // the mean of `samples` independent samples has sd sqrt(Var / samples).
  const Vector<double> mean_field = q * layer.weight() * v + layer.bias();
  const Vector<double> var =
      q * (1 - q) * layer.weight().array().square().matrix() * v.array().square().matrix();
  const Vector<double> mc = y.rowwise().mean();
  for (Index i = 0; i < out; ++i) {
    INFO("unit ", i, ": MC mean ", mc(i), ", mean-field ", mean_field(i), ", sd ",
         std::sqrt(var(i) / samples));
    CHECK(std::abs(mc(i) - mean_field(i)) <= kSigmas * std::sqrt(var(i) / samples));
  }
  CHECK((layer.forward(v, Mode::eval, nullptr) - mean_field).cwiseAbs().maxCoeff() <= 1e-12);
}

TEST_CASE("DropConnectDense gradients match finite differences in every configuration") {
  struct Case {
    const char* what;
    bool per_sample;
    Mode mode;
  };
  for (const Case& c :
       {Case{"per-batch mask", false, Mode::train}, Case{"per-sample masks", true, Mode::train},
        Case{"per-sample masks, mc_sample", true, Mode::mc_sample},
        Case{"mean-field eval", false, Mode::eval}}) {
    Generator gen(47);
    Sequential<double> model(5);
    auto& dc = model.add(DropConnectDense<double, Tanh>(5, 7, 0.5, gen, Init::xavier_normal));
    dc.with_per_sample_masks(c.per_sample).with_l2(0.01);
    dc.bias() = normal_matrix<double>(7, 1, gen, 0.0, 0.1);
    model.add(Dense<double>(7, 3, gen));
    const Matrix<double> x = normal_matrix<double>(5, 6, gen);
    const Labels labels = (Labels(6) << 0, 1, 2, 0, 1, 2).finished();
    GradientCheckOptions options;
    options.check_input = true;
    options.mode = c.mode;
    const auto r = gradient_check(model, SoftmaxCrossEntropy<double>(), x, labels, gen, options);
    INFO(std::string(c.what), ": worst ", r.worst, " analytic ", r.worst_analytic, " numeric ",
         r.worst_numeric, " rel. error ", r.max_relative_error);
    CHECK(r.entries_checked == 5 * 7 + 7 + 7 * 3 + 3 + 5 * 6);
    CHECK(r.max_relative_error <= 1e-6);
    if (c.mode != Mode::eval) CHECK((dc.mask().array() == 0.0).any());
  }
}

TEST_CASE("DropConnectDense per-sample and per-batch gradients differ but agree in expectation") {
  // dW from per-batch masks is M * (dZ X^T); per sample it is sum_j M_j * (dz_j x_j^T). With a
  // linear layer and dL/dy = 1 (loss = sum y) both have expectation q * 1 x^T summed over samples.
  const double p = 0.3, q = 1.0 - p;
  const Index in = 4, out = 3, batch = 6, repeats = 3000;
  Generator gen(53);
  const Matrix<double> x = normal_matrix<double>(in, batch, gen);
  const Matrix<double> ones = Matrix<double>::Ones(out, batch);
  const Matrix<double> expected = q * ones * x.transpose();
  for (bool per_sample : {false, true}) {
    DropConnectDense<double> layer(in, out, p, gen);
    layer.with_per_sample_masks(per_sample);
    Matrix<double> sum = Matrix<double>::Zero(out, in), sum_sq = Matrix<double>::Zero(out, in);
    for (int r = 0; r < repeats; ++r) {
      layer.forward(x, Mode::train, &gen);
      layer.backward(ones, false);
      sum += layer.weight_grad();
      sum_sq.array() += layer.weight_grad().array().square();
    }
    const Matrix<double> mean = sum / repeats;
    // Per-entry standard error of the mean from the sample variance of the repeats.
    const Matrix<double> se =
        ((sum_sq / repeats).array() - mean.array().square()).max(0.0).sqrt() / std::sqrt(repeats);
    INFO(std::string(per_sample ? "per-sample" : "per-batch"), " max |mean dW - q sum x^T| / se ",
         ((mean - expected).array().abs() / se.array()).maxCoeff());
    CHECK(((mean - expected).array().abs() <= kSigmas * se.array()).all());
  }
}

TEST_CASE("DropConnectDense Gaussian inference converges to mean-field for a linear activation") {
  const double p = 0.5, q = 1.0 - p;
  const Index in = 40, out = 6;
  Generator gen(59);
  DropConnectDense<double> layer(in, out, p, gen);
  layer.bias().setConstant(-0.1);
  const Matrix<double> v = normal_matrix<double>(in, 3, gen);
  const Matrix<double> mean_field = layer.forward(v, Mode::eval, nullptr);
  const Matrix<double> var =
      q * (1 - q) * layer.weight().array().square().matrix() * v.array().square().matrix();
  for (int z : {25, 2500}) {
    layer.with_gaussian_inference(z);
    const Matrix<double>& g = layer.forward(v, Mode::eval, &gen);
    // With f = identity the estimate is mean + sd * (average of Z standard normals):
    // exactly normal with sd sqrt(var / Z).
    const Matrix<double> sd = (var / double(z)).array().sqrt();
    INFO("Z=", z, " max |gaussian - mean-field| / sd = ",
         ((g - mean_field).array().abs() / sd.array()).maxCoeff());
    CHECK(((g - mean_field).array().abs() <= kSigmas * sd.array()).all());
    CHECK((g - mean_field).cwiseAbs().maxCoeff() > 0.0);
  }
  expect_invalid([&] { layer.forward(v, Mode::eval, nullptr); }, "DropConnectDense(40->6",
                 "needs a Generator");
  expect_invalid([&] { layer.backward(Matrix<double>::Ones(out, 3), true); },
                 "DropConnectDense(40->6", "not defined");
  layer.with_mean_field_inference();
  CHECK(layer.forward(v, Mode::eval, nullptr) == mean_field);
}

TEST_CASE("for ReLU, Gaussian moment matching beats mean-field at the true DropConnect mean") {
  // The mean-field estimate f(E[u]) misses E[f(u)] by the Jensen gap; moment matching models
  // u's spread. Truth: the average over 20000 per-sample masks (sd of that average ~ 0.004).
  const double p = 0.5;
  const Index in = 64, out = 8, samples = 20000;
  Generator gen(61);
  DropConnectDense<double, ReLU> layer(in, out, p, gen);
  const Matrix<double> v = normal_matrix<double>(in, 1, gen);
  layer.with_per_sample_masks();
  const Vector<double> truth =
      layer.forward(v.replicate(1, samples), Mode::train, &gen).rowwise().mean();
  const Vector<double> mean_field = layer.forward(v, Mode::eval, nullptr);
  layer.with_gaussian_inference(20000);
  const Vector<double> gaussian = layer.forward(v, Mode::eval, &gen);
  const double mf_error = (mean_field - truth).cwiseAbs().mean();
  const double g_error = (gaussian - truth).cwiseAbs().mean();
  INFO("mean |error|: mean-field ", mf_error, ", Gaussian ", g_error);
  CHECK(g_error < 0.5 * mf_error);
  CHECK(g_error < 0.02);
}

// ---------------------------------------------------------------------------------------------
// Reproducibility

TEST_CASE("same seed, same masks; another seed or the next batch, other masks") {
  auto layers = [] {
    Generator init(2);
    std::vector<LayerPtr<double>> all = shape_preserving_dropouts<double>(0.5);
    all.push_back(std::make_unique<DropConnectDense<double>>(8, 8, 0.5, init));
    auto per_sample = std::make_unique<DropConnectDense<double>>(8, 8, 0.5, init);
    per_sample->with_per_sample_masks();
    all.push_back(std::move(per_sample));
    return all;
  };
  Generator data(1);
  const Matrix<double> x = normal_matrix<double>(8, 6, data);
  auto a = layers(), b = layers();
  for (std::size_t i = 0; i < a.size(); ++i) {
    INFO(a[i]->name());
    Generator g1(123), g2(123), g3(124);
    const Matrix<double> y1 = a[i]->forward(x, Mode::train, &g1);
    const Matrix<double> y2 = b[i]->forward(x, Mode::train, &g2);
    CHECK(y1 == y2);
    CHECK(g1.position() == g2.position());
    CHECK(g1.position() > 0);
    CHECK(b[i]->forward(x, Mode::train, &g3) != y1);
    CHECK(a[i]->forward(x, Mode::train, &g1) != y1);
  }
}

// ---------------------------------------------------------------------------------------------
// Bad inputs

TEST_CASE("invalid p is rejected naming the layer and the value") {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  Generator gen(1);
  for (double p : {1.0, -0.1, 1.5, nan, inf}) {
    const std::string value = detail::concat("p=", p);
    expect_invalid([&] { Dropout<float> l(p); }, "Dropout:", value);
    expect_invalid([&] { SpatialDropout<float> l(p, 3); }, "SpatialDropout:", value);
    expect_invalid([&] { AlphaDropout<float> l(p); }, "AlphaDropout:", value);
    expect_invalid([&] { GaussianDropout<float> l(p); }, "GaussianDropout:", value);
    expect_invalid([&] { DropConnectDense<float> l(3, 2, p, gen); }, "DropConnectDense:", value);
  }
  expect_invalid([] { Dropout<double> l(1.0); }, "Dropout:", "drop every unit");
}

TEST_CASE("SpatialDropout rejects bad channel counts and mismatched inputs") {
  expect_invalid([] { SpatialDropout<float> l(0.5, 0); }, "SpatialDropout:", "got 0");
  expect_invalid([] { SpatialDropout<float> l(0.5, -2); }, "SpatialDropout:", "got -2");
  SpatialDropout<float> layer(0.5, 3);
  Generator gen(1);
  const Matrix<float> x = Matrix<float>::Ones(10, 2);
  for (Mode mode : {Mode::train, Mode::eval}) {
    expect_invalid([&] { layer.forward(x, mode, &gen); }, "SpatialDropout(p=0.5, channels=3)",
                   "input has 10 rows, expected a multiple of channels=3");
  }
  Sequential<float> model(10);
  expect_invalid([&] { model.add(SpatialDropout<float>(0.5, 3)); }, "Sequential::add (layer 0)",
                 "SpatialDropout(p=0.5, channels=3): input has 10 rows");
  CHECK(model.size() == 0);
}

TEST_CASE("sampling modes without a Generator, and misuse of backward, are rejected") {
  Generator gen(1);
  std::vector<LayerPtr<double>> layers = shape_preserving_dropouts<double>(0.3);
  layers.push_back(std::make_unique<DropConnectDense<double>>(8, 8, 0.3, gen));
  const Matrix<double> x = Matrix<double>::Ones(8, 2);
  for (auto& layer : layers) {
    const std::string name = layer->name();
    expect_invalid([&] { layer->backward(Matrix<double>::Ones(8, 2), true); }, name,
                   "backward called before forward");
    for (Mode mode : {Mode::train, Mode::mc_sample})
      expect_invalid([&] { layer->forward(x, mode, nullptr); }, name,
                     std::string("a ") + to_string(mode) + "-mode forward needs a Generator");
    layer->forward(x, Mode::train, &gen);
    expect_invalid([&] { layer->backward(Matrix<double>::Ones(8, 3), true); }, name,
                   "output gradient has shape 8x3, expected 8x2");
    expect_invalid([&] { layer->forward(Matrix<double>(8, 0), Mode::train, &gen); }, name, "");
  }
  Sequential<double> model(8);
  model.add(Dropout<double>(0.5));
  expect_invalid([&] { model.forward(x, Mode::train); }, "Dropout(p=0.5)", "needs a Generator");
  CHECK_NOTHROW(model.forward(x, Mode::eval));
}

TEST_CASE("DropConnectDense rejects bad sizes, inputs and options") {
  Generator gen(1);
  expect_invalid([&] { DropConnectDense<float> l(0, 3, 0.5, gen); }, "DropConnectDense:", "in=0");
  DropConnectDense<float, ReLU> layer(4, 3, 0.5, gen);
  CHECK(layer.name() == "DropConnectDense(4->3, ReLU, p=0.5)");
  expect_invalid([&] { layer.with_gaussian_inference(0); }, "DropConnectDense(4->3", "got 0");
  expect_invalid([&] { layer.forward(Matrix<float>::Ones(5, 2), Mode::train, &gen); },
                 "DropConnectDense(4->3", "input has 5 rows (features), expected 4");
}

// ---------------------------------------------------------------------------------------------
// Names, configs, allocation

TEST_CASE("names and configs carry the hyperparameters") {
  Generator gen(1);
  CHECK(Dropout<float>(0.4).name() == "Dropout(p=0.4)");
  CHECK(SpatialDropout<float>(0.2, 16).name() == "SpatialDropout(p=0.2, channels=16)");
  CHECK(AlphaDropout<float>(0.1).name() == "AlphaDropout(p=0.1)");
  CHECK(GaussianDropout<float>(0.5).name() == "GaussianDropout(p=0.5)");
  CHECK(Dropout<float>(0.4).config().kind == "Dropout");
  CHECK(Dropout<float>(0.4).config().number("p") == 0.4);
  const LayerConfig spatial = SpatialDropout<float>(0.2, 16).config();
  CHECK(spatial.kind == "SpatialDropout");
  CHECK(spatial.number("channels") == 16);
  CHECK(AlphaDropout<float>(0.1).config().kind == "AlphaDropout");
  CHECK(GaussianDropout<float>(0.3).config().number("p") == 0.3);
  DropConnectDense<float, ReLU> dc(4, 3, 0.5, gen);
  dc.with_per_sample_masks().with_gaussian_inference(50);
  const LayerConfig c = dc.config();
  CHECK(c.kind == "DropConnectDense");
  CHECK(c.number("p") == 0.5);
  CHECK(c.number("per_sample") == 1.0);
  CHECK(c.number("gaussian_samples") == 50);
  CHECK(c.string("activation") == "ReLU");
  CHECK(dc.parameter_count() == 4 * 3 + 3);
}
