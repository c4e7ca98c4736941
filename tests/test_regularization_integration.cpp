// Integration: an over-parameterized MLP overfits a small noisy classification task, and dropout
// and L2 shrink the gap between training and validation accuracy. The numbers are printed
// (MESSAGE) so that they can be quoted; the checks are deliberately loose, as the run is one seed.

#include <doctest/doctest.h>

#include <dropnet/dropnet.hpp>
#include <string>

using namespace dropnet;

namespace {

constexpr Index features = 20, classes = 3, hidden = 256;

/// A linear teacher on Gaussian inputs, with 30% of the labels replaced by random ones: the noise
/// is what an unregularized network memorizes.
void make_task(Index samples, const Matrix<float>& teacher, Generator& gen, Matrix<float>& x,
               Labels& y) {
  x.resize(features, samples);
  y.resize(samples);
  for (Index j = 0; j < samples; ++j) {
    for (Index i = 0; i < features; ++i) x(i, j) = gen.normal<float>();
    Index label = 0;
    (teacher * x.col(j)).maxCoeff(&label);
    y(j) = gen.uniform() < 0.3 ? static_cast<int>(gen.below(classes)) : static_cast<int>(label);
  }
}

struct Outcome {
  double train_accuracy, valid_accuracy;
  double gap() const { return train_accuracy - valid_accuracy; }
};

enum class Regularizer { none, dropout, l2 };

std::string describe(Regularizer r) {
  switch (r) {
    case Regularizer::none:
      return "none";
    case Regularizer::dropout:
      return "dropout (0.2 on the inputs, 0.5 on the hidden layers)";
    case Regularizer::l2:
      return "L2 (1e-2 on every weight matrix)";
  }
  return "?";
}

Outcome train(Regularizer regularizer, const Matrix<float>& x, const Labels& y,
              const Matrix<float>& x_valid, const Labels& y_valid) {
  Generator gen(77);  // same initial weights and batch order for every configuration
  const float l2 = regularizer == Regularizer::l2 ? 1e-2f : 0.0f;
  const bool dropout = regularizer == Regularizer::dropout;
  Sequential<float> model(features);
  // Srivastava et al. (2014): p = 0.2 on the inputs, 0.5 on the hidden units.
  if (dropout) model.add(Dropout<float>(0.2));
  model.add(Dense<float, ReLU>(features, hidden, gen)).with_l2(l2);
  if (dropout) model.add(Dropout<float>(0.5));
  model.add(Dense<float, ReLU>(hidden, hidden, gen)).with_l2(l2);
  if (dropout) model.add(Dropout<float>(0.5));
  model.add(Dense<float>(hidden, classes, gen)).with_l2(l2);

  Adam<float> adam(model.parameters(), AdamOptions(1e-3));
  FitOptions<float> options;
  options.epochs = 100;
  options.batch_size = 32;
  const SoftmaxCrossEntropy<float> loss;
  fit(model, loss, adam, x, y, gen, options);
  // Both accuracies in eval mode (dropout off), so they compare the same function.
  return {evaluate(model, loss, x, y).accuracy, evaluate(model, loss, x_valid, y_valid).accuracy};
}

}  // namespace

TEST_CASE("dropout and L2 shrink the train-validation gap of an over-parameterized MLP") {
  Generator gen(2024);
  Matrix<float> teacher(classes, features);
  for (Index i = 0; i < teacher.size(); ++i) teacher.data()[i] = gen.normal<float>();
  Matrix<float> x, x_valid;
  Labels y, y_valid;
  make_task(1000, teacher, gen, x, y);
  make_task(2000, teacher, gen, x_valid, y_valid);

  Outcome outcomes[3];
  for (Regularizer r : {Regularizer::none, Regularizer::dropout, Regularizer::l2}) {
    const Outcome o = train(r, x, y, x_valid, y_valid);
    outcomes[static_cast<int>(r)] = o;
    MESSAGE("20-256-256-3 MLP, 1000 samples (30% label noise), 100 epochs of Adam, regularizer ",
            describe(r), ": train accuracy ", o.train_accuracy, ", validation accuracy ",
            o.valid_accuracy, ", gap ", o.gap());
  }
  const Outcome& none = outcomes[0];
  const Outcome& dropout = outcomes[1];
  const Outcome& l2 = outcomes[2];
  // Without regularization the network memorizes the noisy labels.
  CHECK(none.train_accuracy > 0.95);
  CHECK(none.gap() > 0.25);
  // Each regularizer closes a good part of the gap, and does not hurt validation accuracy.
  CHECK(dropout.gap() < 0.75 * none.gap());
  CHECK(l2.gap() < 0.75 * none.gap());
  CHECK(dropout.valid_accuracy >= none.valid_accuracy - 0.01);
  CHECK(l2.valid_accuracy >= none.valid_accuracy - 0.01);
}
