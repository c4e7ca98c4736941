// dropnet's LSTM and GRU against libtorch's nn::LSTM and nn::GRU, in the same binary and run.
//
//   rnn/train_step/<cell>/<library>[/recurrent_dropout]
//       one training step (forward, cross-entropy, backward, Adam) of the Fashion-MNIST lstm
//       preset's shape: each image as 28 rows of 28 pixels, 128 units, the last hidden state into
//       a 10-way dense layer, batch 64, on fixed random data. An epoch of the preset is 782 such
//       steps (50,000 images at batch 64). dropnet runs with no dropout and with recurrent
//       dropout 0.25 (variational, per-gate masks); libtorch's nn::LSTM has no recurrent dropout.
// Both libraries run single-threaded (torch::set_num_threads(1) and OpenBLAS's own threads);
// bench/run_compare.sh unsets OPENBLAS_CORETYPE so OpenBLAS picks its own kernels.

#include <benchmark/benchmark.h>
#include <dlfcn.h>
#include <torch/torch.h>

#include <dropnet/dropnet.hpp>
#include <string>

#include "bench_common.hpp"

namespace {

using dropnet::Index;
constexpr Index steps = 28, features = 28, units = 128, batch = 64, classes = 10;

void set_single_thread() {
  Eigen::setNbThreads(1);
  torch::set_num_threads(1);
  using SetThreads = void (*)(int);
  if (auto set = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads")))
    set(1);
}

template <dropnet::CellKind Cell>
void dropnet_step(benchmark::State& state, double recurrent_dropout) {
  set_single_thread();
  dropnet::Generator gen(1);
  dropnet::Sequential<float> model(steps * features);
  model.add(dropnet::RecurrentLayer<float, Cell>(
      dropnet::SequenceShape{steps, features}, units, gen,
      dropnet::RecurrentOptions().recurrent_dropout(recurrent_dropout)));
  model.add(dropnet::Dense<float>(units, classes, gen));
  dropnet::Adam<float> adam(model.parameters(), dropnet::AdamOptions(1e-3));
  dropnet::SoftmaxCrossEntropy<float> loss;
  dropnet::Matrix<float> x(steps * features, batch);
  for (Index i = 0; i < x.size(); ++i) x.data()[i] = gen.normal<float>();
  dropnet::Labels y(batch);
  for (Index j = 0; j < batch; ++j) y(j) = static_cast<int>(j % classes);
  for (auto _ : state) dropnet::train_step(model, loss, adam, x, y, gen);
}

template <class Module>
void torch_step(benchmark::State& state) {
  set_single_thread();
  torch::manual_seed(1);
  Module rnn(features, units);
  torch::nn::Linear head(units, classes);
  std::vector<torch::Tensor> params = rnn->parameters();
  for (const auto& p : head->parameters()) params.push_back(p);
  torch::optim::Adam adam(params, torch::optim::AdamOptions(1e-3));
  const torch::Tensor x = torch::randn({steps, batch, features});
  const torch::Tensor y = torch::arange(batch, torch::kInt64).remainder(classes);
  for (auto _ : state) {
    adam.zero_grad();
    const torch::Tensor out = std::get<0>(rnn->forward(x));
    const torch::Tensor loss = torch::nn::functional::cross_entropy(head->forward(out[steps - 1]), y);
    loss.backward();
    adam.step();
  }
}

void register_all() {
  auto add = [](const std::string& name, auto f) {
    benchmark::RegisterBenchmark(name.c_str(), f)->Unit(benchmark::kMillisecond)->MinTime(2.0);
  };
  add("rnn/train_step/lstm/dropnet",
      [](benchmark::State& s) { dropnet_step<dropnet::CellKind::lstm>(s, 0.0); });
  add("rnn/train_step/lstm/dropnet/recurrent_dropout",
      [](benchmark::State& s) { dropnet_step<dropnet::CellKind::lstm>(s, 0.25); });
  add("rnn/train_step/lstm/libtorch", [](benchmark::State& s) { torch_step<torch::nn::LSTM>(s); });
  add("rnn/train_step/gru/dropnet",
      [](benchmark::State& s) { dropnet_step<dropnet::CellKind::gru>(s, 0.0); });
  add("rnn/train_step/gru/dropnet/recurrent_dropout",
      [](benchmark::State& s) { dropnet_step<dropnet::CellKind::gru>(s, 0.25); });
  add("rnn/train_step/gru/libtorch", [](benchmark::State& s) { torch_step<torch::nn::GRU>(s); });
}

}  // namespace

int main(int argc, char** argv) { return bench::run(argc, argv, register_all); }
