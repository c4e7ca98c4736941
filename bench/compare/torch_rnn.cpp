// dropnet's LSTM and GRU against libtorch's nn::LSTM and nn::GRU, in the same binary and run.
//
//   rnn/train_step/<cell>
//       one training step (forward, cross-entropy, backward, Adam) of the Fashion-MNIST lstm
//       preset's shape: each image as 28 rows of 28 pixels, 128 units, the last hidden state into
//       a 10-way dense layer, batch 64, on fixed random data. An epoch of the preset is 782 such
//       steps (50,000 images at batch 64). Three contenders run alternately, step by step in
//       rotating order (bench::race), so that all see the same machine load: dropnet with no
//       dropout (the benchmark's time), dropnet with recurrent dropout 0.25 (variational,
//       per-gate masks; libtorch's nn::LSTM has none) and libtorch. Times are the process's CPU
//       time (all three run on one thread; on the shared machine the wall time counts the time
//       other work held the core). Counters: dropout_ns, libtorch_ns (mean CPU times per step),
//       dropout_ratio = dropout / no dropout, libtorch_ratio = libtorch / dropnet (> 1: dropnet
//       is faster).
// Both libraries run single-threaded (torch::set_num_threads(1) and OpenBLAS's own threads);
// bench/run_compare.sh unsets OPENBLAS_CORETYPE so OpenBLAS picks its own kernels.

#include <benchmark/benchmark.h>
#include <dlfcn.h>
#include <torch/torch.h>

#include <dropnet/dropnet.hpp>
#include <memory>
#include <string>
#include <vector>

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

/// dropnet's model, optimizer and data for one training step (held by pointer: the Adam
/// optimizer keeps views of the model's parameters, which must not move).
template <dropnet::CellKind Cell>
struct DropnetStep {
  explicit DropnetStep(double recurrent_dropout) : gen(1), model(steps * features) {
    model.add(dropnet::RecurrentLayer<float, Cell>(
        dropnet::SequenceShape{steps, features}, units, gen,
        dropnet::RecurrentOptions().recurrent_dropout(recurrent_dropout)));
    model.add(dropnet::Dense<float>(units, classes, gen));
    adam = std::make_unique<dropnet::Adam<float>>(model.parameters(), dropnet::AdamOptions(1e-3));
    x.resize(steps * features, batch);
    for (Index i = 0; i < x.size(); ++i) x.data()[i] = gen.normal<float>();
    y.resize(batch);
    for (Index j = 0; j < batch; ++j) y(j) = static_cast<int>(j % classes);
  }
  void operator()() { dropnet::train_step(model, loss, *adam, x, y, gen); }

  dropnet::Generator gen;
  dropnet::Sequential<float> model;
  std::unique_ptr<dropnet::Adam<float>> adam;
  dropnet::SoftmaxCrossEntropy<float> loss;
  dropnet::Matrix<float> x;
  dropnet::Labels y;
};

/// The module's weights drawn from libtorch's generator seeded with 1.
template <class Module>
Module seeded() {
  torch::manual_seed(1);
  return Module(features, units);
}

/// libtorch's model, optimizer and data for one training step.
template <class Module>
struct TorchStep {
  TorchStep() : rnn(seeded<Module>()), head(units, classes) {
    std::vector<torch::Tensor> params = rnn->parameters();
    for (const auto& p : head->parameters()) params.push_back(p);
    adam = std::make_unique<torch::optim::Adam>(params, torch::optim::AdamOptions(1e-3));
    x = torch::randn({steps, batch, features});
    y = torch::arange(batch, torch::kInt64).remainder(classes);
  }
  void operator()() {
    adam->zero_grad();
    const torch::Tensor out = std::get<0>(rnn->forward(x));
    const torch::Tensor loss =
        torch::nn::functional::cross_entropy(head->forward(out[steps - 1]), y);
    loss.backward();
    adam->step();
  }

  Module rnn;
  torch::nn::Linear head;
  std::unique_ptr<torch::optim::Adam> adam;
  torch::Tensor x, y;
};

template <dropnet::CellKind Cell, class Module>
void train_step(benchmark::State& state) {
  set_single_thread();
  auto none = std::make_shared<DropnetStep<Cell>>(0.0);
  auto dropout = std::make_shared<DropnetStep<Cell>>(0.25);
  auto torch_step = std::make_shared<TorchStep<Module>>();
  std::vector<bench::Contender> all;
  all.push_back(bench::contender([none] { (*none)(); }));
  all.push_back(bench::contender([dropout] { (*dropout)(); }));
  all.push_back(bench::contender([torch_step] { (*torch_step)(); }));
  bench::race(state, all, 20e-6, bench::Clock::cpu);
  state.counters["dropout_ns"] = all[1].seconds * 1e9;
  state.counters["libtorch_ns"] = all[2].seconds * 1e9;
  state.counters["dropout_ratio"] = all[1].seconds / all[0].seconds;
  state.counters["libtorch_ratio"] = all[2].seconds / all[0].seconds;
}

void register_all() {
  auto add = [](const std::string& name, auto f) {
    benchmark::RegisterBenchmark(name.c_str(), f)
        ->Unit(benchmark::kMillisecond)
        ->UseManualTime()
        ->MinTime(bench::short_mode() ? 0.01 : 2.0);
  };
  add("rnn/train_step/lstm", train_step<dropnet::CellKind::lstm, torch::nn::LSTM>);
  add("rnn/train_step/gru", train_step<dropnet::CellKind::gru, torch::nn::GRU>);
}

}  // namespace

int main(int argc, char** argv) { return bench::run(argc, argv, register_all); }
