// The layer of docs/custom_layer.md ("Writing your own layer"), compiled and gradient-checked.
// The code between `// guide:begin NAME` and `// guide:end NAME` appears verbatim in the guide;
// scripts/ci_docs.sh fails when the two differ, so the guide's code is this test's code.

#include <doctest/doctest.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

#include <dropnet/dropnet.hpp>
#include <dropnet/io/layer_registry.hpp>

namespace {

// guide:begin layer
/// PReLU<T>: a leaky ReLU whose negative slope is learned, one slope per feature
/// (He et al. 2015; PyTorch nn.PReLU(num_parameters = features)).
///   forward:  y_ij  = x_ij if x_ij > 0, else a_i x_ij
///   backward: dx_ij = dy_ij if x_ij > 0, else a_i dy_ij
///             da_i  = sum_j dy_ij min(x_ij, 0)
/// Shapes: x is features x batch, y has its shape. Throws InvalidArgument on other row counts.
template <class T>
class PReLU : public dropnet::Layer<T> {
 public:
  explicit PReLU(dropnet::Index features, T initial_slope = T(0.25))
      : slope_(dropnet::Vector<T>::Constant(positive(features), initial_slope)),
        slope_grad_(dropnet::Vector<T>::Zero(features)) {}

  // Rebuilds the layer from what config() wrote, for load(). The config comes from a file, so
  // read it with the checked readers, and charge what the constructor allocates to the budget
  // (it bounds what a corrupt file can make load allocate). Both throw FormatError.
  static dropnet::LayerPtr<T> from_config(const dropnet::LayerConfig& config,
                                          dropnet::ElementBudget& budget) {
    const dropnet::Index features = config.integer("features", 1, 1 << 24);
    budget.take(2 * static_cast<std::uint64_t>(features), "PReLU");  // slope and its gradient
    return std::make_unique<PReLU>(features);
  }

  std::string name() const override { return "PReLU(" + std::to_string(slope_.size()) + ")"; }

  // Shapes, checked by Sequential::add before any data flows.
  dropnet::Index expected_input_rows() const override { return slope_.size(); }
  dropnet::Index output_rows(dropnet::Index input_rows) const override {
    if (input_rows != slope_.size())
      throw dropnet::InvalidArgument(name() + ": input has " + std::to_string(input_rows) +
                                     " features, expected " + std::to_string(slope_.size()));
    return input_rows;
  }

  const dropnet::Matrix<T>& forward(const dropnet::Matrix<T>& x, dropnet::Mode,
                                    dropnet::Generator*) override {
    this->require_input_rows(x, slope_.size());  // throws InvalidArgument naming the layer
    input_ = &x;                          // valid until backward: Sequential keeps it alive
    output_.resize(x.rows(), x.cols());   // a no-op once the batch size is stable
    output_.array() = (x.array() > T(0)).select(x.array(), x.array().colwise() * slope_.array());
    return output_;
  }

  const dropnet::Matrix<T>& backward(const dropnet::Matrix<T>& dy, bool need_dx) override {
    this->require_backward_shape(dy, output_);
    const auto x = input_->array();
    // Overwrite (never accumulate) the parameter gradient.
    slope_grad_ = (x > T(0)).select(T(0), dy.array() * x).rowwise().sum().matrix();
    if (!need_dx) {
      dx_.resize(0, 0);  // the first layer's dx is never used: skip computing it
      return dx_;
    }
    dx_.resize(dy.rows(), dy.cols());
    dx_.array() = (x > T(0)).select(dy.array(), dy.array().colwise() * slope_.array());
    return dx_;
  }

  // What the optimizer updates: a flat view of the slopes and of their gradient.
  dropnet::ParameterList<T> parameters() override {
    return {dropnet::view_of<T>("slope", slope_, &slope_grad_, dropnet::ParameterRole::scale)};
  }

  // Enough to rebuild the layer: its kind and hyperparameters.
  dropnet::LayerConfig config() const override {
    return {"PReLU", {{"features", double(slope_.size())}}, {}};
  }

  const dropnet::Vector<T>& slope() const { return slope_; }

 private:
  static dropnet::Index positive(dropnet::Index features) {
    if (features <= 0)
      throw dropnet::InvalidArgument("PReLU: features must be > 0, got " +
                                     std::to_string(features));
    return features;
  }

  dropnet::Vector<T> slope_, slope_grad_;
  const dropnet::Matrix<T>* input_ = nullptr;
  dropnet::Matrix<T> output_, dx_;
};
// guide:end layer

}  // namespace

using namespace dropnet;

TEST_CASE("custom layer: PReLU forward matches its formula") {
  PReLU<double> layer(2, 0.25);
  Matrix<double> x(2, 3);
  x << 1.0, -2.0, 0.0,
      -4.0, 3.0, -0.5;
  Generator gen(1);
  const Matrix<double>& y = layer.forward(x, Mode::train, &gen);
  Matrix<double> expected(2, 3);
  expected << 1.0, -0.5, 0.0,
             -1.0, 3.0, -0.125;
  CHECK(y.isApprox(expected));
  CHECK(layer.parameter_count() == 2);
  CHECK(layer.name() == "PReLU(2)");
  CHECK_THROWS_AS(layer.forward(Matrix<double>::Zero(3, 1), Mode::train, &gen), InvalidArgument);
}

TEST_CASE("custom layer: PReLU gradients pass the gradient check") {
  // guide:begin gradient-check
  Generator gen(42);
  Sequential<double> model(5);
  model.add(Dense<double>(5, 8, gen));
  model.add(PReLU<double>(8));
  model.add(Dense<double>(8, 3, gen));  // logits

  Matrix<double> x(5, 6);
  for (Index i = 0; i < x.size(); ++i) x.data()[i] = gen.normal<double>();
  Labels y(6);
  y << 0, 1, 2, 0, 1, 2;

  GradientCheckOptions options;
  options.check_input = true;  // d loss / d x as well as every parameter
  const GradientCheckResult result =
      gradient_check(model, SoftmaxCrossEntropy<double>(), x, y, gen, options);
  INFO("worst: ", result.worst, " analytic ", result.worst_analytic, " numeric ",
       result.worst_numeric);
  CHECK(result.max_relative_error < 1e-6);
  // guide:end gradient-check
  CHECK(result.entries_checked == 5 * 8 + 8 + 8 + 8 * 3 + 3 + 5 * 6);
}

TEST_CASE("custom layer: PReLU goes into a model, and optimizers see its slopes") {
  Generator gen(0);
  // guide:begin usage
  Sequential<float> model(784);
  model.add(Dense<float>(784, 128, gen));
  model.add(PReLU<float>(128));
  model.add(Dense<float>(128, 10, gen));
  Adam<float> optimizer(model.parameters(), AdamOptions(1e-3));  // includes "1.PReLU.slope"
  // guide:end usage
  REQUIRE(optimizer.parameters().size() == 5);
  CHECK(optimizer.parameters()[2].name == "1.PReLU.slope");
  CHECK(optimizer.parameters()[2].size() == 128);
  CHECK_THROWS_AS(model.add(PReLU<float>(64)), InvalidArgument);  // 10 outputs, not 64
}

TEST_CASE("custom layer: a model with PReLU is saved and loaded through a registry") {
  Generator gen(5);
  Sequential<double> model(4);
  model.add(Dense<double>(4, 6, gen));
  model.add(PReLU<double>(6, 0.1));
  model.add(Dense<double>(6, 2, gen));
  const std::string path =
      (std::filesystem::temp_directory_path() / ("dropnet_prelu_" + std::to_string(gen.next_u32()) +
                                                ".dnm")).string();
  // guide:begin registry
  LayerRegistry<double> registry = LayerRegistry<double>::builtin();  // dropnet's layers
  registry.add("PReLU", PReLU<double>::from_config);
  save(model, path);                                          // config() + parameters()
  Sequential<double> loaded = load<double>(path, registry);  // rebuilt, then the slopes loaded
  // guide:end registry
  std::remove(path.c_str());
  Matrix<double> x(4, 3);
  for (Index i = 0; i < x.size(); ++i) x.data()[i] = gen.normal<double>();
  CHECK(predict(loaded, x) == predict(model, x));
  CHECK_THROWS_AS(load<double>(path), FormatError);  // the file is gone
}

TEST_CASE("custom layer: a model with PReLU trains") {
  Generator gen(3);
  Matrix<double> x(2, 200);
  Labels y(200);
  for (Index j = 0; j < 200; ++j) {
    y(j) = static_cast<int>(j % 2);
    x(0, j) = (y(j) == 0 ? -1.5 : 1.5) + gen.normal<double>(0.0, 0.5);
    x(1, j) = gen.normal<double>();
  }
  Sequential<double> model(2);
  model.add(Dense<double>(2, 8, gen));
  model.add(PReLU<double>(8));
  model.add(Dense<double>(8, 2, gen));
  SoftmaxCrossEntropy<double> loss;
  Adam<double> optimizer(model.parameters(), AdamOptions(1e-2));
  FitOptions<double> options;
  options.epochs = 15;
  const History history = fit(model, loss, optimizer, x, y, gen, options);
  CHECK(history.epochs.back().loss < history.epochs.front().loss);
  CHECK(evaluate(model, loss, x, y).accuracy > 0.9);
}
