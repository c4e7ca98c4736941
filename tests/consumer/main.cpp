// A program that uses dropnet the way an adopter would: only through <dropnet/dropnet.hpp>.
// It defines a small MLP, trains it on three Gaussian blobs, evaluates it on held-out data, saves
// its weights to a file and loads them into a second model, and exits non-zero unless the model
// learned and the copy predicts exactly as the original (so a build that "works" but computes
// nonsense fails). It is also the translation unit whose compile time scripts/ci_consumers.sh
// reports; load<T>(path), which can rebuild every layer type and so instantiates all of them,
// would triple that time, so the round trip uses save_weights / load_weights.

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

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

// A 2-16-3 MLP with fresh weights from `gen`.
dropnet::Sequential<float> make_model(dropnet::Generator& gen) {
  using namespace dropnet;
  Sequential<float> model(2);
  model.add(Dense<float, ReLU>(2, 16, gen));
  model.add(Dense<float>(16, 3, gen));  // logits
  return model;
}

// The runtime SIMD dispatch seen from a consumer's build (scripts/ci_consumers.sh builds one
// with the compiler's default flags): the level selected is DROPNET_CONSUMER_EXPECT_SIMD when
// set (the script reads it from /proc/cpuinfo), and the model predicts at the baseline level
// what it predicts at the selected one, within rounding (the products' sums are ordered
// differently; the logits are O(10), their float rounding well under 1e-3).
bool dispatch_ok(dropnet::Sequential<float>& model, const dropnet::Matrix<float>& x) {
  using namespace dropnet;
  const SimdLevel selected = simd_level();
  std::printf("SIMD level %s (CPU supports %s)\n", simd_level_name(selected),
              simd_level_name(cpu_simd_level()));
  const char* expected = std::getenv("DROPNET_CONSUMER_EXPECT_SIMD");
  if (expected != nullptr && std::string(expected) != simd_level_name(selected)) {
    std::printf("expected SIMD level %s\n", expected);
    return false;
  }
  const Matrix<float> at_selected = predict(model, x);
  set_simd_level(SimdLevel::baseline);
  const Matrix<float> at_baseline = predict(model, x);
  set_simd_level(selected);
  const float difference = (at_selected - at_baseline).cwiseAbs().maxCoeff();
  std::printf("largest difference from the baseline level: %g\n", double(difference));
  return difference < 1e-3f;
}

}  // namespace

int main() {
  using namespace dropnet;
  Generator gen(2024);
  Matrix<float> x_train, x_test;
  Labels y_train, y_test;
  make_blobs(300, gen, x_train, y_train);
  make_blobs(100, gen, x_test, y_test);

  Sequential<float> model = make_model(gen);
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

  const std::filesystem::path file = std::filesystem::temp_directory_path() /
                                     ("dropnet_consumer_" + std::to_string(gen.next_u32()) + ".dnwt");
  save_weights(model, file.string());
  Sequential<float> copy = make_model(gen);  // same architecture, other initial weights
  load_weights(copy, file.string());
  std::filesystem::remove(file);
  const bool same = predict(copy, x_test) == predict(model, x_test);
  std::printf("saved and loaded %s: %s\n", file.string().c_str(),
              same ? "same predictions" : "DIFFERENT predictions");
  return test.accuracy > 0.9 && same && dispatch_ok(model, x_test) ? 0 : 1;
}
