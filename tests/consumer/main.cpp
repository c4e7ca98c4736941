// A program that uses dropnet the way an adopter would: only through <dropnet/dropnet.hpp>.
// It defines a small MLP, trains it on three Gaussian blobs, evaluates it on held-out data and
// exits non-zero unless it learned (so a consumer build that "works" but computes nonsense fails).

#include <cstdio>

#include <dropnet/dropnet.hpp>

namespace {

// `n` points per class around three centres in the plane; one column per sample.
void make_blobs(dropnet::Index n, dropnet::Generator& gen, dropnet::Matrix<float>& x,
                dropnet::Labels& y) {
  const float centres[3][2] = {{-2.0f, 0.0f}, {2.0f, 0.0f}, {0.0f, 2.5f}};
  x.resize(2, 3 * n);
  y.resize(3 * n);
  for (dropnet::Index j = 0; j < 3 * n; ++j) {
    const auto label = static_cast<int>(j % 3);
    x(0, j) = centres[label][0] + gen.normal(0.0f, 0.7f);
    x(1, j) = centres[label][1] + gen.normal(0.0f, 0.7f);
    y(j) = label;
  }
}

}  // namespace

int main() {
  using namespace dropnet;
  Generator gen(2024);
  Matrix<float> x_train, x_test;
  Labels y_train, y_test;
  make_blobs(300, gen, x_train, y_train);
  make_blobs(100, gen, x_test, y_test);

  Sequential<float> model(2);
  model.add(Dense<float, ReLU>(2, 16, gen));
  model.add(Dense<float>(16, 3, gen));  // logits
  SoftmaxCrossEntropy<float> loss;
  Adam<float> optimizer(model.parameters(), AdamOptions(1e-2));
  FitOptions<float> options;
  options.epochs = 20;
  options.batch_size = 32;
  const History history = fit(model, loss, optimizer, x_train, y_train, gen, options);

  const Evaluation test = evaluate(model, loss, x_test, y_test);
  std::printf("dropnet %s: %zu epochs, train loss %.3f, test loss %.3f, test accuracy %.1f%%\n",
              version, history.size(), history.epochs.back().loss, test.loss,
              100.0 * test.accuracy);
  return test.accuracy > 0.9 ? 0 : 1;
}
