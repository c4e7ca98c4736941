// dropnet's convolution against libtorch's, in the same binary and the same run.
//
//   conv/forward/<shape>, conv/backward/<shape>
//       dropnet's Conv2D against torch::conv2d and at::convolution_backward (input, weight and
//       bias gradients) on the same data, checked equal first. Counters: libtorch_ns, ratio =
//       dropnet / libtorch (< 1: dropnet is faster), GFLOPS (dropnet's).
//   cnn/train_step/batch:64
//       one training step (forward, cross-entropy, backward, Adam) of the Fashion-MNIST cnn
//       preset (bench_conv.hpp) in both libraries, same counters.
//   cnn/epoch/<library>
//       one epoch of that network on the real data (bench_workloads.hpp: 50,000 training images at
//       batch 64, then 10,000 validation images), seconds and CPU seconds per epoch.
// Both libraries run single-threaded (torch::set_num_threads(1) and OpenBLAS's own threads, as in
// bench_libtorch.cpp). Pairs alternate block by block, so both see the same machine load.

#include <benchmark/benchmark.h>
#include <dlfcn.h>
#include <torch/torch.h>

#include <string>
#include <tuple>
#include <vector>

#include "bench_conv.hpp"
#include "bench_workloads.hpp"

namespace {

using namespace bench;
using dropnet::Generator;
using dropnet::Mode;

/// Single-threaded libtorch and OpenBLAS; labels the run with libtorch's convolution backend.
void set_single_thread(benchmark::State& state) {
  Eigen::setNbThreads(1);
  torch::set_num_threads(1);
  using SetThreads = void (*)(int);
  if (auto set = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads")))
    set(1);
  state.SetLabel(at::hasMKLDNN() ? "libtorch with oneDNN" : "libtorch without oneDNN");
}

/// A features x batch matrix of images as an N x C x H x W tensor (the same bytes).
torch::Tensor as_images(const Mat& x, const ImageShape& shape) {
  return torch::from_blob(const_cast<float*>(x.data()),
                          {x.cols(), shape.channels, shape.height, shape.width}, torch::kFloat32);
}

/// The tensor's N samples as a features x N matrix.
Mat as_matrix(const torch::Tensor& t) {
  const torch::Tensor c = t.contiguous();
  return Eigen::Map<const Mat>(c.data_ptr<float>(), c.numel() / c.size(0), c.size(0));
}

// ---------------------------------------------------------------------------------------------
// One convolution

void conv_pair(benchmark::State& state, const Shape& g, bool backward) {
  set_single_thread(state);
  torch::NoGradGuard no_grad;
  Generator gen(1);
  dropnet::Conv2D<float> conv(g.input(), g.o, g.k, gen,
                              dropnet::ConvOptions().stride(g.s).padding(g.p));
  conv.bias() = random_matrix(g.o, 1, 9);
  const Mat x = random_matrix(g.input().size(), g.batch, 2);
  const Mat dy = random_matrix(g.o * g.out_spatial(), g.batch, 3);
  // dropnet's W is O x C*k*k column-major; torch's [O, C, k, k] is the same matrix row-major.
  const Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> w_rows =
      conv.weight();
  const torch::Tensor w = torch::from_blob(const_cast<float*>(w_rows.data()), {g.o, g.c, g.k, g.k});
  const torch::Tensor b = torch::from_blob(conv.bias().data(), {g.o});
  const torch::Tensor tx = as_images(x, g.input());
  const torch::Tensor tdy = as_images(dy, ImageShape{g.o, g.out_h(), g.out_w()});
  torch::Tensor ty;
  auto torch_forward = [&] { ty = torch::conv2d(tx, w, b, {g.s, g.s}, {g.p, g.p}); };

  torch_forward();
  if (!same(state, conv.forward(x, Mode::train, nullptr), as_matrix(ty), "forward")) return;
  if (!backward) {
    paired(
        state, "libtorch",
        [&] { benchmark::DoNotOptimize(conv.forward(x, Mode::train, nullptr).data()); },
        [&] {
          torch_forward();
          benchmark::DoNotOptimize(ty.data_ptr());
        },
        Work::flops(2 * g.macs()));
    return;
  }
  std::tuple<torch::Tensor, torch::Tensor, torch::Tensor> grads;
  const std::vector<std::int64_t> bias_sizes = {g.o};
  auto torch_backward = [&] {
    grads = at::convolution_backward(tdy, tx, w, bias_sizes, {g.s, g.s}, {g.p, g.p}, {1, 1}, false,
                                     {0, 0}, 1, {true, true, true});
  };
  torch_backward();
  const torch::Tensor dw = std::get<1>(grads).reshape({g.o, g.c * g.k * g.k});
  if (!same(state, conv.backward(dy, true), as_matrix(std::get<0>(grads)), "dx") ||
      !same(state, conv.weight_grad(), Mat(as_matrix(dw).transpose()), "dW") ||
      !same(state, conv.bias_grad(), as_matrix(std::get<2>(grads).reshape({1, g.o})), "db"))
    return;
  paired(
      state, "libtorch", [&] { benchmark::DoNotOptimize(conv.backward(dy, true).data()); },
      [&] {
        torch_backward();
        benchmark::DoNotOptimize(std::get<0>(grads).data_ptr());
      },
      Work::flops(4 * g.macs()));
}

// ---------------------------------------------------------------------------------------------
// The cnn preset network

torch::nn::Sequential torch_cnn() {
  namespace nn = torch::nn;
  nn::Sequential model;
  std::int64_t channels = 1;
  for (const std::int64_t out : {32, 64}) {
    model->push_back(nn::Conv2d(nn::Conv2dOptions(channels, out, 3).padding(1)));
    model->push_back(nn::BatchNorm2d(out));
    model->push_back(nn::ReLU());
    model->push_back(nn::Dropout2d(0.1));
    model->push_back(nn::MaxPool2d(2));
    channels = out;
  }
  model->push_back(nn::Flatten());
  model->push_back(nn::Linear(64 * 7 * 7, 128));
  model->push_back(nn::ReLU());
  model->push_back(nn::Dropout(0.5));
  model->push_back(nn::Linear(128, 10));
  return model;
}

void train_step_pair(benchmark::State& state) {
  set_single_thread(state);
  torch::manual_seed(7);
  Generator gen(1);
  dropnet::Sequential<float> model = cnn_preset(gen);
  dropnet::Adam<float> adam(model.parameters(), dropnet::AdamOptions(1e-3));
  const dropnet::SoftmaxCrossEntropy<float> loss;
  torch::nn::Sequential net = torch_cnn();
  torch::optim::Adam torch_adam(net->parameters(), torch::optim::AdamOptions(1e-3));
  const Mat x = random_matrix(784, 64, 4);
  dropnet::Labels y(64);
  for (Index i = 0; i < 64; ++i) y(i) = static_cast<int>(i % 10);
  const torch::Tensor tx = as_images(x, ImageShape{1, 28, 28}).clone();
  const torch::Tensor ty = torch::arange(64, torch::kInt64).remainder(10);
  Mat grad;
  paired(
      state, "libtorch",
      [&] {
        loss.compute(model.forward(x, Mode::train, gen), y, &grad);
        model.backward(grad);
        adam.step();
      },
      [&] {
        torch_adam.zero_grad();
        torch::nn::functional::cross_entropy(net->forward(tx), ty).backward();
        torch_adam.step();
      });
}

// ---------------------------------------------------------------------------------------------
// One epoch on the real data

void report_epoch(benchmark::State& state, double seconds, double cpu_seconds, double val_acc) {
  state.counters["s_per_epoch"] = seconds;
  state.counters["cpu_s_per_epoch"] = cpu_seconds;
  state.counters["val_acc"] = val_acc;
}

void dropnet_epoch(benchmark::State& state) {
  set_single_thread(state);
  const bench::Dataset& d = bench::dataset();
  if (!d.error.empty()) return fail(state, d.error);
  Generator gen(1);
  dropnet::Sequential<float> model = cnn_preset(gen);
  dropnet::Adam<float> adam(model.parameters(), dropnet::AdamOptions(1e-3));
  dropnet::FitOptions<float> options;
  options.epochs = 1;
  options.batch_size = 64;
  options.eval_batch_size = bench::eval_batch;
  for (auto _ : state) {
    const double cpu = bench::process_cpu_seconds();
    const dropnet::History h = dropnet::fit(
        model, dropnet::SoftmaxCrossEntropy<float>(), adam, d.train_x, d.train_y, gen, options,
        dropnet::ValidationData<float, dropnet::Labels>{d.valid_x, d.valid_y});
    state.SetIterationTime(h.epochs.back().seconds);
    report_epoch(state, h.epochs.back().seconds, bench::process_cpu_seconds() - cpu,
                 h.epochs.back().val_accuracy);
  }
}

void torch_epoch(benchmark::State& state) {
  set_single_thread(state);
  const bench::Dataset& d = bench::dataset();
  if (!d.error.empty()) return fail(state, d.error);
  torch::manual_seed(7);
  torch::nn::Sequential net = torch_cnn();
  torch::optim::Adam adam(net->parameters(), torch::optim::AdamOptions(1e-3));
  const torch::Tensor train_x = as_images(d.train_x, ImageShape{1, 28, 28}).clone();
  const torch::Tensor valid_x = as_images(d.valid_x, ImageShape{1, 28, 28}).clone();
  auto labels = [](const dropnet::Labels& y) {
    return torch::from_blob(const_cast<std::int32_t*>(y.data()), {y.size()}, torch::kInt32)
        .to(torch::kInt64);
  };
  const torch::Tensor train_y = labels(d.train_y), valid_y = labels(d.valid_y);
  for (auto _ : state) {
    const auto start = clock_type::now();
    const double cpu = bench::process_cpu_seconds();
    net->train();
    const std::int64_t n = train_x.size(0);
    const torch::Tensor order = torch::randperm(n, torch::kInt64);
    for (std::int64_t first = 0; first < n; first += 64) {
      const torch::Tensor index = order.narrow(0, first, std::min<std::int64_t>(64, n - first));
      adam.zero_grad();
      const torch::Tensor out = net->forward(train_x.index_select(0, index));
      torch::nn::functional::cross_entropy(out, train_y.index_select(0, index)).backward();
      adam.step();
    }
    net->eval();
    torch::InferenceMode guard;
    std::int64_t correct = 0;
    for (std::int64_t first = 0; first < valid_x.size(0); first += bench::eval_batch) {
      const std::int64_t count = std::min<std::int64_t>(bench::eval_batch, valid_x.size(0) - first);
      const torch::Tensor out = net->forward(valid_x.narrow(0, first, count));
      correct += out.argmax(1).eq(valid_y.narrow(0, first, count)).sum().item<std::int64_t>();
    }
    const double seconds = seconds_since(start);
    state.SetIterationTime(seconds);
    report_epoch(state, seconds, bench::process_cpu_seconds() - cpu,
                 double(correct) / double(valid_x.size(0)));
  }
}

void register_all() {
  for (Shape g : shapes) {
    if (short_mode()) g.batch = 4;  // CI: checks that the two libraries agree
    benchmark::RegisterBenchmark(("conv/forward/" + g.label()).c_str(), [g](benchmark::State& s) {
      conv_pair(s, g, false);
    })->UseManualTime();
    benchmark::RegisterBenchmark(("conv/backward/" + g.label()).c_str(), [g](benchmark::State& s) {
      conv_pair(s, g, true);
    })->UseManualTime();
  }
  benchmark::RegisterBenchmark("cnn/train_step/batch:64", train_step_pair)
      ->UseManualTime()
      ->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark("cnn/epoch/dropnet", dropnet_epoch)
      ->UseManualTime()
      ->Iterations(1)
      ->Unit(benchmark::kSecond);
  benchmark::RegisterBenchmark("cnn/epoch/libtorch", torch_epoch)
      ->UseManualTime()
      ->Iterations(1)
      ->Unit(benchmark::kSecond);
}

}  // namespace

int main(int argc, char** argv) { return bench::run(argc, argv, register_all); }
