// XOR: the problem a single perceptron cannot solve (its classes are not linearly separable),
// solved by a 2-layer MLP with a hidden layer of 4 tanh units.

#include <cstdio>

#include <dropnet/dropnet.hpp>

int main() {
  using namespace dropnet;
  Generator gen(7);

  Matrix<double> x(2, 4);
  x << 0, 0, 1, 1,
       0, 1, 0, 1;
  Matrix<double> y(1, 4);
  y << 0, 1, 1, 0;

  Sequential<double> model(2);
  model.add(Dense<double, Tanh>(2, 4, gen));
  model.add(Dense<double>(4, 1, gen));  // one logit
  std::printf("%s\n", model.summary().c_str());

  BinaryCrossEntropyWithLogits<double> loss;
  Adam<double> optimizer(model.parameters(), AdamOptions(0.05));
  FitOptions<double> options;
  options.epochs = 500;
  options.batch_size = 4;
  const History history = fit(model, loss, optimizer, x, y, gen, options);

  const Matrix<double> logits = predict(model, x);
  std::printf(" x1 x2 | target | P(1)\n");
  for (Index j = 0; j < 4; ++j) {
    const double p = Sigmoid{}.value(logits(0, j));
    std::printf(" %2.0f %2.0f |   %.0f    | %.3f\n", x(0, j), x(1, j), y(0, j), p);
  }
  const Evaluation result = evaluate(model, loss, x, y);
  std::printf("final loss %.4f, accuracy %.0f%%\n", result.loss, 100.0 * result.accuracy);
  return result.accuracy == 1.0 ? 0 : 1;
}
