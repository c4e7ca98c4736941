// docs/training_loop.md's code: a hand-written training loop with train_step, and the same step
// spelled out (forward, loss, backward, step, constraints). Both must train exactly as fit does
// with shuffle off, bit for bit. scripts/ci_docs.sh checks that every `guide:` region below is a
// code block of the guide.

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <vector>

#include <dropnet/dropnet.hpp>

#include "test_data.hpp"

using namespace dropnet;

namespace {

constexpr Index features = 5;
constexpr Index samples = 70;  // 4 full batches of 16 and one of 6

struct Data {
  Matrix<float> x;
  Labels y;
};

Data blobs() {
  Generator gen(31);
  Data d{test::normal_matrix<float>(features, samples, gen), Labels(samples)};
  for (Index j = 0; j < samples; ++j) d.y(j) = d.x(0, j) + d.x(1, j) > 0 ? 1 : 0;
  return d;
}

Sequential<float> make_model() {
  Generator gen(32);
  Sequential<float> model(features);
  model.add(Dense<float, ReLU>(features, 8, gen)).with_max_norm(1.5f);
  model.add(Dropout<float>(0.25));
  model.add(Dense<float>(8, 2, gen));
  return model;
}

/// Every parameter of the model, in order, as one vector.
std::vector<float> weights_of(Sequential<float>& model) {
  std::vector<float> all;
  for (const auto& p : model.parameters())
    all.insert(all.end(), p.value, p.value + p.rows * p.cols);
  return all;
}

// guide:begin train_step_loop
void train_with_train_step(Sequential<float>& model, const Matrix<float>& x, const Labels& y,
                           int epochs, Index batch_size, Generator& gen) {
  SoftmaxCrossEntropy<float> loss;
  Adam<float> optimizer(model.parameters(), AdamOptions(1e-2));
  Matrix<float> batch_x;  // kept alive across the step: the layers read it in place
  Labels batch_y;
  for (int epoch = 0; epoch < epochs; ++epoch) {
    double loss_sum = 0.0;
    Index correct = 0, batches = 0;
    for (Index first = 0; first < x.cols(); first += batch_size) {
      const Index count = std::min(batch_size, x.cols() - first);
      batch_x = x.middleCols(first, count);
      batch_y = y.segment(first, count);
      const StepResult r = train_step(model, loss, optimizer, batch_x, batch_y, gen);
      loss_sum += r.loss;
      correct += r.correct;
      ++batches;
    }
    std::printf("epoch %d: loss %.4f, accuracy %.3f\n", epoch + 1, loss_sum / double(batches),
                double(correct) / double(x.cols()));
  }
}
// guide:end train_step_loop

// guide:begin step_by_hand
void train_by_hand(Sequential<float>& model, const Matrix<float>& x, const Labels& y, int epochs,
                   Index batch_size, Generator& gen) {
  SoftmaxCrossEntropy<float> loss;
  Adam<float> optimizer(model.parameters(), AdamOptions(1e-2));
  Matrix<float> batch_x, dloss_dout;
  Labels batch_y;
  for (int epoch = 0; epoch < epochs; ++epoch) {
    for (Index first = 0; first < x.cols(); first += batch_size) {
      const Index count = std::min(batch_size, x.cols() - first);
      batch_x = x.middleCols(first, count);
      batch_y = y.segment(first, count);
      // 1. forward in train mode: dropout draws its masks from gen
      const Matrix<float>& out = model.forward(batch_x, Mode::train, gen);
      // 2. the loss and its gradient with respect to the output (the penalty is reported only:
      //    the layers add its gradient themselves in backward)
      const float batch_loss = loss.compute(out, batch_y, &dloss_dout) + model.penalty();
      if (!std::isfinite(batch_loss)) throw NumericalError("loss is not finite");
      // 3. backward: every parameter's gradient
      model.backward(dloss_dout);
      // 4. the optimizer's step, then 5. the layers' constraints (max-norm)
      optimizer.step();
      model.apply_constraints();
    }
  }
}
// guide:end step_by_hand

}  // namespace

TEST_CASE("the guide's loops train exactly as fit with shuffle off") {
  const Data d = blobs();
  Sequential<float> by_fit = make_model();
  {
    SoftmaxCrossEntropy<float> loss;
    Adam<float> optimizer(by_fit.parameters(), AdamOptions(1e-2));
    Generator gen(33);
    FitOptions<float> options;
    options.epochs = 3;
    options.batch_size = 16;
    options.shuffle = false;
    fit(by_fit, loss, optimizer, d.x, d.y, gen, options);
  }
  Sequential<float> by_step = make_model();
  Sequential<float> by_hand = make_model();
  Generator gen_step(33), gen_hand(33);
  train_with_train_step(by_step, d.x, d.y, 3, 16, gen_step);
  train_by_hand(by_hand, d.x, d.y, 3, 16, gen_hand);
  const std::vector<float> expected = weights_of(by_fit);
  CHECK(weights_of(by_step) == expected);
  CHECK(weights_of(by_hand) == expected);
  Sequential<float> untrained = make_model();
  CHECK(weights_of(untrained) != expected);  // training changed the weights
}
