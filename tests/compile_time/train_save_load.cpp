// The program whose compile time README quotes (scripts/compile_time.sh): README's first model on
// synthetic data. It trains an MLP with validation data, evaluates it, saves the model file and
// rebuilds it with load<float> (which can rebuild every layer kind, so it instantiates all of
// them), and exits non-zero unless the copy predicts exactly as the original. Built header-only
// or against dropnet::compiled, the same source.

#include <cstdio>
#include <filesystem>
#include <string>

#include <dropnet/dropnet.hpp>

namespace {

// `n` samples per class around `classes` centres in `features` dimensions; one column each.
void make_blobs(dropnet::Index n, dropnet::Index features, int classes, dropnet::Generator& gen,
                dropnet::Matrix<float>& x, dropnet::Labels& y) {
  x.resize(features, classes * n);
  y.resize(classes * n);
  for (dropnet::Index j = 0; j < x.cols(); ++j) {
    const auto label = static_cast<int>(j % classes);
    for (dropnet::Index i = 0; i < features; ++i) {
      const float centre = i % classes == label ? 2.0f : 0.0f;
      x(i, j) = centre + gen.normal(0.0f, 0.8f);
    }
    y(j) = label;
  }
}

// README's first model at a smaller width: two ReLU layers, dropout, logits.
dropnet::Sequential<float> make_model(dropnet::Index features, int classes,
                                      dropnet::Generator& gen) {
  using namespace dropnet;
  Sequential<float> model(features);
  model.add(Dense<float, ReLU>(features, 64, gen));
  model.add(Dropout<float>(0.2));
  model.add(Dense<float, ReLU>(64, 32, gen));
  model.add(Dense<float>(32, classes, gen));  // logits
  return model;
}

// Mean of the per-epoch validation accuracies of the last `last` epochs.
double recent_val_accuracy(const dropnet::History& history, std::size_t last) {
  double sum = 0.0;
  std::size_t n = 0;
  for (std::size_t e = history.size() > last ? history.size() - last : 0; e < history.size(); ++e) {
    sum += history.epochs[e].val_accuracy;
    ++n;
  }
  return n > 0 ? sum / static_cast<double>(n) : 0.0;
}

}  // namespace

int main() {
  using namespace dropnet;
  constexpr Index features = 20;
  constexpr int classes = 4;
  Generator gen(7);
  Matrix<float> x_train, x_valid, x_test;
  Labels y_train, y_valid, y_test;
  make_blobs(250, features, classes, gen, x_train, y_train);
  make_blobs(50, features, classes, gen, x_valid, y_valid);
  make_blobs(100, features, classes, gen, x_test, y_test);

  Sequential<float> model = make_model(features, classes, gen);
  SoftmaxCrossEntropy<float> loss;
  Adam<float> optimizer(model.parameters(), AdamOptions(1e-3));
  FitOptions<float> options;
  options.epochs = 8;
  options.batch_size = 64;
  const History history = fit(model, loss, optimizer, x_train, y_train, gen, options,
                              ValidationData<float, Labels>{x_valid, y_valid});
  const Evaluation test = evaluate(model, loss, x_test, y_test);
  std::printf("%zu epochs, validation accuracy %.3f (last 3), test loss %.3f, accuracy %.3f\n",
              history.size(), recent_val_accuracy(history, 3), test.loss, test.accuracy);

  const std::filesystem::path file = std::filesystem::temp_directory_path() /
                                     ("dropnet_compile_time_" + std::to_string(gen.next_u32()) +
                                      ".dnm");
  save(model, file.string());
  Sequential<float> restored = load<float>(file.string());
  std::filesystem::remove(file);
  const bool same = predict(restored, x_test) == predict(model, x_test);
  std::printf("save + load<float>: %s\n", same ? "same predictions" : "DIFFERENT predictions");
  return test.accuracy > 0.9 && same ? 0 : 1;
}
