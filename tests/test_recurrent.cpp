// LSTM and GRU: PyTorch equivalence, BPTT gradient checks for every option, variational dropout
// masks, Zoneout, Monte-Carlo over sequences, bad input (no allocation per step: test_allocation).

#include <doctest/doctest.h>

#include <cmath>
#include <dropnet/dropnet.hpp>
#include <dropnet/io/layer_registry.hpp>
#include <dropnet/layers/gru.hpp>
#include <dropnet/layers/lstm.hpp>
#include <dropnet/training/gradient_check.hpp>
#include <dropnet/training/mc_dropout.hpp>

#include "test_data.hpp"
#include <string>
#include <vector>

#include "test_checks.hpp"

#include "reference/recurrent_reference.hpp"

using namespace dropnet;
using test::normal_matrix;
using dropnet::test::expect_invalid;

namespace {

namespace ref = recurrent_reference;

/// The reference script's value(k, salt) = 0.5 sin(0.7 k + salt).
double value(Index k, double salt) { return 0.5 * std::sin(0.7 * double(k) + salt); }

/// A PyTorch row-major (rows x cols) tensor of the script's values, as a dropnet matrix.
Matrix<double> tensor(Index rows, Index cols, double salt) {
  Matrix<double> m(rows, cols);
  for (Index r = 0; r < rows; ++r)
    for (Index c = 0; c < cols; ++c) m(r, c) = value(r * cols + c, salt);
  return m;
}

/// Checks that `got` equals the flat row-major PyTorch tensor `want` of shape rows x cols.
void check_tensor(const Matrix<double>& got, const double* want, Index rows, Index cols,
                  const char* what) {
  REQUIRE(got.rows() == rows);
  REQUIRE(got.cols() == cols);
  double worst = 0;
  for (Index r = 0; r < rows; ++r)
    for (Index c = 0; c < cols; ++c) worst = std::max(worst, std::abs(got(r, c) - want[r * cols + c]));
  INFO(what);
  CHECK(worst < 1e-12);
}

/// PyTorch's (T, B, N) tensor (flat) as dropnet's T*N x B sequence batch.
Matrix<double> sequence_batch(const double* flat, Index steps, Index batch, Index n) {
  Matrix<double> m(steps * n, batch);
  for (Index t = 0; t < steps; ++t)
    for (Index b = 0; b < batch; ++b)
      for (Index i = 0; i < n; ++i) m(t * n + i, b) = flat[(t * batch + b) * n + i];
  return m;
}

template <class Layer>
void check_against_pytorch(const double* output, const double* w_ih, const double* w_hh,
                           const double* b_ih, const double* b_hh, const double* dx) {
  const Index steps = ref::steps, batch = ref::batch, f = ref::features, h = ref::units;
  const Index g = Layer::gates * h;
  Generator gen(0);
  Layer layer(SequenceShape{steps, f}, h, gen, RecurrentOptions().return_sequences(true));
  layer.weight_ih() = tensor(g, f, 0.1);
  layer.weight_hh() = tensor(g, h, 1.2);
  layer.bias_ih() = tensor(g, 1, 2.3);
  layer.bias_hh() = tensor(g, 1, 3.4);
  std::vector<double> x_flat(static_cast<std::size_t>(steps * batch * f));
  std::vector<double> coef_flat(static_cast<std::size_t>(steps * batch * h));
  for (std::size_t k = 0; k < x_flat.size(); ++k) x_flat[k] = value(Index(k), 4.5);
  for (std::size_t k = 0; k < coef_flat.size(); ++k) coef_flat[k] = value(Index(k), 5.0);
  const Matrix<double> x = sequence_batch(x_flat.data(), steps, batch, f);
  const Matrix<double> y = layer.forward(x, Mode::train, nullptr);
  const Matrix<double> want = sequence_batch(output, steps, batch, h);
  CHECK((y - want).cwiseAbs().maxCoeff() < 1e-12);
  const Matrix<double> dx_got = layer.backward(sequence_batch(coef_flat.data(), steps, batch, h), true);
  check_tensor(layer.weight_ih_grad(), w_ih, g, f, "weight_ih grad");
  check_tensor(layer.weight_hh_grad(), w_hh, g, h, "weight_hh grad");
  check_tensor(Eigen::Map<Matrix<double>>(layer.parameters()[2].grad, g, 1), b_ih, g, 1, "bias_ih grad");
  check_tensor(Eigen::Map<Matrix<double>>(layer.parameters()[3].grad, g, 1), b_hh, g, 1, "bias_hh grad");
  CHECK((dx_got - sequence_batch(dx, steps, batch, f)).cwiseAbs().maxCoeff() < 1e-12);
}

/// gradient_check of `model` on a random regression batch, parameters and input.
GradientCheckResult check_gradients(Sequential<double>& model, Generator& gen, Mode mode = Mode::train) {
  const Index batch = 3;
  const Matrix<double> x = normal_matrix(model.input_features(), batch, gen);
  const Index out = model.forward(x, Mode::eval).rows();
  const Matrix<double> target = normal_matrix(out, batch, gen);
  GradientCheckOptions options;
  options.check_input = true;
  options.mode = mode;
  // Entries of gradients below 1e-5 compare by absolute error (< 1e-11): the five-point
  // difference of an O(1) loss carries ~1e-12 of rounding, which is 1e-5 of a 1e-7 gradient.
  options.floor = 1e-5;
  return gradient_check(model, MeanSquaredError<double>(), x, target, gen, options);
}

template <class Layer>
void gradient_checks_of_every_option() {
  const SequenceShape shape{4, 3};
  const Index units = 5;
  struct Case {
    const char* name;
    RecurrentOptions options;
  };
  std::vector<Case> cases = {
      {"no dropout", RecurrentOptions().forget_bias(false)},
      {"input dropout, untied", RecurrentOptions().dropout(0.4)},
      {"input dropout, tied", RecurrentOptions().dropout(0.4).tied_masks(true)},
      {"recurrent dropout, untied", RecurrentOptions().recurrent_dropout(0.4)},
      {"recurrent dropout, tied", RecurrentOptions().recurrent_dropout(0.4).tied_masks(true)},
      {"both dropouts, return_sequences",
       RecurrentOptions().dropout(0.3).recurrent_dropout(0.3).return_sequences(true)},
      {"both dropouts, per-step masks, untied",
       RecurrentOptions().dropout(0.3).recurrent_dropout(0.4).mask_mode(MaskMode::per_step)},
      {"both dropouts, per-step masks, tied, return_sequences",
       RecurrentOptions().dropout(0.4).recurrent_dropout(0.3).mask_mode(MaskMode::per_step)
           .tied_masks(true).return_sequences(true)},
      {"zoneout", RecurrentOptions().zoneout(Layer::gates == 4 ? 0.3 : 0.0, 0.4)},
      {"zoneout and return_sequences, Xavier recurrent",
       RecurrentOptions().zoneout(Layer::gates == 4 ? 0.2 : 0.0, 0.3).return_sequences(true)
           .orthogonal_recurrent(false)},
  };
  for (const Case& c : cases) {
    for (const Mode mode : {Mode::train, Mode::eval}) {
      Generator gen(42);
      Sequential<double> model(shape.size());
      model.add(Layer(shape, units, gen, c.options));
      const auto r = check_gradients(model, gen, mode);
      INFO(Layer::cell_kind, " ", c.name, " ", to_string(mode), ": worst ", r.worst, " analytic ",
           r.worst_analytic, " numeric ", r.worst_numeric);
      CHECK(r.max_relative_error < 1e-6);
    }
  }
  // Stacked: a sequence-returning layer feeds a second one, both with every dropout.
  Generator gen(43);
  Sequential<double> model(shape.size());
  model.add(Layer(shape, units, gen,
                  RecurrentOptions().return_sequences(true).dropout(0.2).recurrent_dropout(0.3)
                      .zoneout(Layer::gates == 4 ? 0.1 : 0.0, 0.2)));
  model.add(Layer(SequenceShape{shape.steps, units}, 4, gen, RecurrentOptions().recurrent_dropout(0.2)));
  const auto r = check_gradients(model, gen);
  INFO(Layer::cell_kind, " stacked: worst ", r.worst, " analytic ", r.worst_analytic, " numeric ",
       r.worst_numeric);
  CHECK(r.max_relative_error < 1e-6);
}

double sigmoid(double a) { return 1 / (1 + std::exp(-a)); }

}  // namespace

TEST_CASE("LSTM equals PyTorch's nn.LSTM: outputs and every gradient (double)") {
  check_against_pytorch<LSTM<double>>(ref::lstm_output, ref::lstm_weight_ih_grad,
                                      ref::lstm_weight_hh_grad, ref::lstm_bias_ih_grad,
                                      ref::lstm_bias_hh_grad, ref::lstm_input_grad);
}

TEST_CASE("GRU equals PyTorch's nn.GRU: outputs and every gradient (double)") {
  check_against_pytorch<GRU<double>>(ref::gru_output, ref::gru_weight_ih_grad,
                                     ref::gru_weight_hh_grad, ref::gru_bias_ih_grad,
                                     ref::gru_bias_hh_grad, ref::gru_input_grad);
}

TEST_CASE("LSTM gradients match finite differences for every option, in train and eval modes") {
  gradient_checks_of_every_option<LSTM<double>>();
}

TEST_CASE("GRU gradients match finite differences for every option, in train and eval modes") {
  gradient_checks_of_every_option<GRU<double>>();
}

namespace {

/// The LSTM's last h from plain Eigen, independent of the layer's code: its weights, no input
/// dropout, and h_{t-1} times the recurrent masks of its last forward (recurrent_mask(): tied or
/// per gate; per sample, or per step and sample when it has T*batch columns) in gate k's product
/// only. Where the layer applies another mask at some step, its output differs.
Matrix<double> lstm_with_masks(LSTM<double>& lstm, const Matrix<double>& x) {
  const SequenceShape shape = lstm.input_shape();
  const Index h = lstm.units(), batch = x.cols(), f = shape.features;
  const Matrix<double>& mask = lstm.recurrent_mask();
  const bool tied = mask.rows() == h, per_step = mask.cols() == shape.steps * batch;
  const Matrix<double> w_ih = lstm.weight_ih(), w_hh = lstm.weight_hh();
  const Vector<double> bias = Vector<double>(lstm.bias_ih()) + Vector<double>(lstm.bias_hh());
  Matrix<double> hs = Matrix<double>::Zero(h, batch), cs = hs, a(4 * h, batch);
  const auto sigmoid = [](double v) { return 1 / (1 + std::exp(-v)); };
  for (Index t = 0; t < shape.steps; ++t) {
    const Matrix<double> m = mask.middleCols(per_step ? t * batch : 0, batch);
    for (Index k = 0; k < 4; ++k) {
      const Matrix<double> masked = hs.cwiseProduct(m.middleRows(tied ? 0 : k * h, h));
      a.middleRows(k * h, h) =
          w_ih.middleRows(k * h, h) * x.middleRows(t * f, f) + w_hh.middleRows(k * h, h) * masked;
    }
    a.colwise() += bias;
    for (Index n = 0; n < batch; ++n)
      for (Index u = 0; u < h; ++u) {
        const double i = sigmoid(a(u, n)), fg = sigmoid(a(h + u, n)),
                     g = std::tanh(a(2 * h + u, n)), o = sigmoid(a(3 * h + u, n));
        cs(u, n) = fg * cs(u, n) + i * g;
        hs(u, n) = o * std::tanh(cs(u, n));
      }
  }
  return hs;
}

}  // namespace

TEST_CASE("the recurrent mask is applied at every step, differs between samples and batches") {
  const SequenceShape shape{6, 3};
  const Index units = 50, batch = 40;
  const double p = 0.3;
  Generator gen(7);
  for (const bool tied : {true, false}) {
    LSTM<double> lstm(shape, units, gen, RecurrentOptions().recurrent_dropout(p).tied_masks(tied));
    const Matrix<double> x = normal_matrix(shape.size(), batch, gen);
    const Matrix<double> y = lstm.forward(x, Mode::train, &gen);
    const Matrix<double> mask = lstm.recurrent_mask();
    const Index rows = mask.rows();
    REQUIRE(rows == (tied ? 1 : 4) * units);
    REQUIRE(mask.cols() == batch);
    // The output is that of the cell with this one mask at every step (the reference applies
    // it by hand; a layer that drew or applied another at some step would differ).
    CHECK((y - lstm_with_masks(lstm, x)).cwiseAbs().maxCoeff() < 1e-12);
    CHECK((y - lstm.forward(x, Mode::eval, nullptr)).cwiseAbs().maxCoeff() > 1e-3);
    auto dropped = [&](const Matrix<double>& m, Index n, Index i) { return m(i, n) == 0.0; };
    Index zeros = 0;
    for (Index n = 0; n < batch; ++n)
      for (Index i = 0; i < rows; ++i) {
        CHECK((mask(i, n) == 0.0 || mask(i, n) == doctest::Approx(1 / (1 - p))));
        zeros += dropped(mask, n, i);
      }
    // Drop count: binomial(rows*batch, p).
    CHECK(test::within_binomial(double(zeros), double(rows * batch), p));
    // Samples differ: sample 0's mask is not sample 1's.
    Index differ = 0;
    for (Index i = 0; i < rows; ++i) differ += dropped(mask, 0, i) != dropped(mask, 1, i);
    CHECK(differ > 0);
    // The next batch draws new masks.
    lstm.forward(x, Mode::train, &gen);
    const Matrix<double>& next = lstm.recurrent_mask();
    Index changed = 0;
    for (Index i = 0; i < rows; ++i) changed += dropped(next, 0, i) != dropped(mask, 0, i);
    CHECK(changed > 0);
  }
}

TEST_CASE("per-step masks (naive dropout): a fresh recurrent mask at every step") {
  const SequenceShape shape{6, 3};
  const Index units = 50, batch = 40, steps = shape.steps;
  const double p = 0.3;
  Generator gen(17);
  for (const bool tied : {true, false}) {
    LSTM<double> lstm(
        shape, units, gen,
        RecurrentOptions().recurrent_dropout(p).tied_masks(tied).mask_mode(MaskMode::per_step));
    const Matrix<double> x = normal_matrix(shape.size(), batch, gen);
    const Matrix<double> y = lstm.forward(x, Mode::train, &gen);
    const Matrix<double>& mask = lstm.recurrent_mask();
    const Index rows = mask.rows();
    REQUIRE(rows == (tied ? 1 : 4) * units);
    REQUIRE(mask.cols() == steps * batch);
    // Step t's block of the mask is the one applied at step t.
    CHECK((y - lstm_with_masks(lstm, x)).cwiseAbs().maxCoeff() < 1e-12);
    auto dropped = [&](Index t, Index n, Index i) { return mask(i, t * batch + n) == 0.0; };
    Index zeros = 0, differ = 0;
    for (Index n = 0; n < batch; ++n)
      for (Index i = 0; i < rows; ++i) {
        for (Index t = 0; t < steps; ++t) zeros += dropped(t, n, i);
        differ += dropped(0, n, i) != dropped(steps - 1, n, i);
      }
    // Two independent masks differ at an entry with probability 2 p (1 - p); the drop fraction
    // over all steps is binomial(rows*batch*T, p).
    const double entries = double(rows * batch);
    CHECK(test::within_binomial(double(differ), entries, 2 * p * (1 - p)));
    CHECK(test::within_binomial(double(zeros), entries * double(steps), p));
  }
}

TEST_CASE("per-step input masks: the step-t mask is the one applied to x_t") {
  const SequenceShape shape{5, 30};
  const Index batch = 20;
  const double p = 0.5;
  Generator gen(18);
  LSTM<double> lstm(shape, 4, gen,
                    RecurrentOptions().dropout(p).tied_masks(true).mask_mode(MaskMode::per_step));
  const Matrix<double> x = Matrix<double>::Ones(shape.size(), batch);
  const Matrix<double> y = lstm.forward(x, Mode::train, &gen);
  const Matrix<double> dx = lstm.backward(Matrix<double>::Ones(y.rows(), y.cols()), true);
  const Matrix<double>& mask = lstm.input_mask();
  REQUIRE(mask.rows() == shape.features);
  REQUIRE(mask.cols() == shape.steps * batch);
  Index differ = 0;
  for (Index n = 0; n < batch; ++n)
    for (Index t = 0; t < shape.steps; ++t)
      for (Index f = 0; f < shape.features; ++f) {
        CHECK((dx(t * shape.features + f, n) == 0.0) == (mask(f, t * batch + n) == 0.0));
        differ += (mask(f, n) == 0.0) != (mask(f, (shape.steps - 1) * batch + n) == 0.0);
      }
  CHECK(differ > 0);  // P(no difference) = 0.5^600
}

TEST_CASE("the input mask is per sample and the same at every step") {
  const SequenceShape shape{5, 30};
  const Index batch = 20;
  const double p = 0.5;
  Generator gen(8);
  GRU<double> gru(shape, 4, gen, RecurrentOptions().dropout(p).tied_masks(true).return_sequences(true));
  Matrix<double> x = Matrix<double>::Ones(shape.size(), batch);
  const Matrix<double> y = gru.forward(x, Mode::train, &gen);
  const Matrix<double> dx = gru.backward(Matrix<double>::Ones(y.rows(), y.cols()), true);
  const Matrix<double>& mask = gru.input_mask();
  REQUIRE(mask.rows() == shape.features);
  for (Index n = 0; n < batch; ++n)
    for (Index t = 0; t < shape.steps; ++t)
      for (Index f = 0; f < shape.features; ++f) {
        // dx is zero exactly where the one tied mask dropped the feature, at every step.
        CHECK((dx(t * shape.features + f, n) == 0.0) == (mask(f, n) == 0.0));
        CHECK((mask(f, n) == 0.0 || mask(f, n) == doctest::Approx(1 / (1 - p))));
      }
}

TEST_CASE("Zoneout at inference is the expectation p s_{t-1} + (1 - p) s~_t") {
  // A scalar reference LSTM, independent of the layer's code: one unit, one feature.
  const SequenceShape shape{4, 1};
  const double pc = 0.3, ph = 0.6;
  Generator gen(9);
  LSTM<double> lstm(shape, 1, gen, RecurrentOptions().zoneout(pc, ph));
  const Vector<double> wi = lstm.weight_ih().col(0), wh = lstm.weight_hh().col(0);
  const Vector<double> b = Vector<double>(lstm.parameters()[2].flat_value()) +
                           Vector<double>(lstm.parameters()[3].flat_value());
  Matrix<double> x(4, 1);
  x << 0.5, -1.0, 2.0, 0.25;
  double h = 0, c = 0;
  for (Index t = 0; t < 4; ++t) {
    auto a = [&](Index k) { return wi(k) * x(t, 0) + wh(k) * h + b(k); };
    const double i = sigmoid(a(0)), f = sigmoid(a(1)), g = std::tanh(a(2)), o = sigmoid(a(3));
    const double c_new = f * c + i * g, h_new = o * std::tanh(c_new);
    c = pc * c + (1 - pc) * c_new;
    h = ph * h + (1 - ph) * h_new;
  }
  CHECK(lstm.forward(x, Mode::eval, nullptr)(0, 0) == doctest::Approx(h).epsilon(1e-12));
  // Zoneout with p = 0 is the plain cell, and the layer is then deterministic.
  LSTM<double> plain(shape, 1, gen, RecurrentOptions().zoneout(0, 0));
  CHECK_FALSE(plain.is_stochastic());
  CHECK(plain.forward(x, Mode::train, nullptr)(0, 0) == plain.forward(x, Mode::eval, nullptr)(0, 0));
}

TEST_CASE("Zoneout in training keeps each unit's state or takes the new one, fresh every step") {
  const SequenceShape shape{8, 2};
  const Index units = 30, batch = 10;
  Generator gen(10);
  GRU<double> gru(shape, units, gen, RecurrentOptions().zoneout(0, 0.5).return_sequences(true));
  const Matrix<double> x = normal_matrix(shape.size(), batch, gen);
  const Matrix<double> y = gru.forward(x, Mode::train, &gen);
  // h_t equals h_{t-1} exactly where the unit zoned out; the pattern changes between steps.
  Index kept = 0, total = 0, pattern_changes = 0;
  for (Index n = 0; n < batch; ++n)
    for (Index u = 0; u < units; ++u) {
      bool last = false;
      for (Index t = 1; t < shape.steps; ++t) {
        const bool same = y(t * units + u, n) == y((t - 1) * units + u, n);
        kept += same;
        ++total;
        if (t > 1) pattern_changes += same != last;
        last = same;
      }
    }
  const double fraction = double(kept) / double(total);
  CHECK(std::abs(fraction - 0.5) < 5 * std::sqrt(0.25 / double(total)));
  CHECK(pattern_changes > total / 4);
}

TEST_CASE("mc_predict samples recurrent models: each pass draws its own masks") {
  Generator gen(11);
  const SequenceShape shape{5, 3};
  Sequential<float> model(shape.size());
  model.add(LSTM<float>(shape, 8, gen, RecurrentOptions().recurrent_dropout(0.3).zoneout(0.1, 0.1)));
  model.add(Dense<float>(8, 3, gen));
  const Matrix<float> x = normal_matrix<float>(shape.size(), 6, gen);
  McDropoutOptions options;
  options.outputs = McOutputs::logits;
  const McPrediction<float> prediction = mc_predict(model, x, 20, gen, options);
  CHECK(prediction.mean.rows() == 3);
  CHECK(prediction.variance.minCoeff() > 0.0f);  // passes differ
  CHECK(prediction.mutual_information.minCoeff() >= 0.0f);
}

TEST_CASE("bad input and bad options throw errors naming the layer") {
  Generator gen(12);
  expect_invalid([&] { LSTM<float>(SequenceShape{0, 3}, 4, gen); }, {"LSTM", "steps=0"});
  expect_invalid([&] { GRU<float>(SequenceShape{3, 3}, 0, gen); }, {"GRU", "units"});
  expect_invalid([&] { LSTM<float>(SequenceShape{3, 3}, 4, gen, RecurrentOptions().dropout(1.0)); },
                 {"LSTM", "p=1"});
  expect_invalid(
      [&] { GRU<float>(SequenceShape{3, 3}, 4, gen, RecurrentOptions().recurrent_dropout(-0.1)); },
      {"GRU", "-0.1"});
  expect_invalid([&] { GRU<float>(SequenceShape{3, 3}, 4, gen, RecurrentOptions().zoneout(0.1, 0)); },
                 {"GRU", "no cell state"});
  LSTM<float> lstm(SequenceShape{3, 4}, 5, gen, RecurrentOptions().recurrent_dropout(0.2));
  expect_invalid([&] { lstm.forward(Matrix<float>::Zero(11, 2), Mode::eval, nullptr); },
                 {"LSTM(3x4->5", "11 rows", "expected 12", "3 steps x 4 features"});
  expect_invalid([&] { lstm.forward(Matrix<float>::Zero(12, 0), Mode::eval, nullptr); },
                 {"LSTM", "empty"});
  expect_invalid([&] { lstm.forward(Matrix<float>::Zero(12, 2), Mode::train, nullptr); },
                 {"LSTM", "Generator"});
  expect_invalid([&] { lstm.backward(Matrix<float>::Zero(5, 2), true); }, {"LSTM", "before forward"});
  lstm.forward(Matrix<float>::Zero(12, 2), Mode::eval, nullptr);
  expect_invalid([&] { lstm.backward(Matrix<float>::Zero(5, 3), true); }, {"LSTM", "gradient"});
}

TEST_CASE("recurrent layers save and load through the registry and appear in summary()") {
  Generator gen(13);
  const SequenceShape shape{4, 3};
  Sequential<float> model(shape.size());
  model.add(LSTM<float>(shape, 6, gen,
                        RecurrentOptions().return_sequences(true).dropout(0.1).recurrent_dropout(0.2)
                            .tied_masks(true).zoneout(0.05, 0.1).forget_bias(false)));
  model.add(GRU<float>(SequenceShape{4, 6}, 5, gen,
                       RecurrentOptions().zoneout(0, 0.2).dropout(0.1).mask_mode(MaskMode::per_step)));
  model.add(Dense<float>(5, 2, gen));
  const std::string summary = model.summary();
  INFO(summary);
  CHECK(summary.find("LSTM(4x3->6, seq, dropout=0.1") != std::string::npos);
  CHECK(summary.find("(24, batch)") != std::string::npos);
  CHECK(summary.find("GRU(4x6->5, dropout=0.1, per-step masks") != std::string::npos);
  // The default mask mode writes no field, so files of per-sequence layers are unchanged.
  for (const auto& field : model.layer(0).config().strings) CHECK(field.first != "mask_mode");
  LayerConfig bad = model.layer(1).config();
  for (auto& field : bad.strings)
    if (field.first == "mask_mode") field.second = "sometimes";
  ElementBudget bad_budget(1u << 20);
  CHECK_THROWS_AS(LayerRegistry<float>::builtin().build(bad, bad_budget), FormatError);
  const auto registry = LayerRegistry<float>::builtin();
  for (Index i = 0; i < 2; ++i) {
    ElementBudget budget(1u << 20);
    const LayerConfig config = model.layer(i).config();
    LayerPtr<float> rebuilt = registry.build(config, budget);
    CHECK(rebuilt->name() == model.layer(i).name());
    CHECK(rebuilt->parameter_count() == model.layer(i).parameter_count());
  }
}

TEST_CASE("orthogonal recurrent init and the forget bias") {
  Generator gen(14);
  LSTM<double> lstm(SequenceShape{2, 3}, 6, gen);
  const Matrix<double> w = lstm.weight_hh();
  for (Index k = 0; k < 4; ++k) {
    const Matrix<double> q = w.middleRows(k * 6, 6);
    CHECK((q.transpose() * q - Matrix<double>::Identity(6, 6)).cwiseAbs().maxCoeff() < 1e-12);
  }
  const Vector<double> b = lstm.bias_ih();
  CHECK(b.segment(6, 6).isOnes());
  CHECK(b.head(6).isZero());
  CHECK(b.tail(12).isZero());
}
