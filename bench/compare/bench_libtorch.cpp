// The workloads W1-W4 in libtorch, the peer dropnet is measured against: same data (the
// same 50,000 / 10,000 split, loaded by the same code), same models, same batch sizes, Adam(1e-3)
// and cross-entropy, the training loop of the seed notebook (zero_grad, forward, loss, backward,
// step, with loss.item() and the accuracy count per batch), validation in batches of 1,000.
//
// libtorch at its fastest: torch::set_num_threads(threads) with threads = 1 and 2 (1 is its
// fastest at these sizes), inference under torch::InferenceMode, and the system OpenBLAS with its
// auto-detected kernels: bench/run_compare.sh unsets OPENBLAS_CORETYPE.
//
// Names and counters match bench_training: <workload>/libtorch/threads:<n>, s_per_epoch,
// images_per_s, us_per_image.

#include <benchmark/benchmark.h>
#include <dlfcn.h>
#include <torch/torch.h>

#include <string>

#include "bench_workloads.hpp"

namespace {

using bench::Workload;
using dropnet::Index;

/// torch::set_num_threads sizes libtorch's own pool but not OpenBLAS's (whose default is one
/// thread per core): set both, so threads:1 is single-threaded throughout. Labels the run with
/// the OpenBLAS kernel set in use (auto-detected unless OPENBLAS_CORETYPE forces one), and
/// records the counter torch_threads.
void set_threads(benchmark::State& state) {
  const int threads = static_cast<int>(state.range(0));
  torch::set_num_threads(threads);
  state.counters["torch_threads"] = torch::get_num_threads();
  using SetThreads = void (*)(int);
  using CoreName = char* (*)();
  if (auto set = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads")))
    set(threads);
  if (auto name = reinterpret_cast<CoreName>(dlsym(RTLD_DEFAULT, "openblas_get_corename")))
    state.SetLabel(std::string("OpenBLAS ") + name());
  else
    state.SetLabel("BLAS is not OpenBLAS");
}

struct TorchData {
  torch::Tensor train_x, train_y, valid_x, valid_y;  // x: N x 784 float, y: N int64
};

/// A column-major 784 x N Eigen matrix is a row-major N x 784 tensor: same bytes.
torch::Tensor images(const bench::Mat& x) {
  return torch::from_blob(const_cast<float*>(x.data()), {x.cols(), x.rows()}, torch::kFloat32)
      .clone();
}

torch::Tensor labels(const dropnet::Labels& y) {
  return torch::from_blob(const_cast<std::int32_t*>(y.data()), {y.size()}, torch::kInt32)
      .to(torch::kInt64);
}

const TorchData& torch_data() {
  static const TorchData data = [] {
    const bench::Dataset& d = bench::dataset();
    TorchData t;
    if (d.error.empty())
      t = {images(d.train_x), labels(d.train_y), images(d.valid_x), labels(d.valid_y)};
    return t;
  }();
  return data;
}

torch::nn::Sequential build(const Workload& w) {
  torch::nn::Sequential model;
  const std::size_t layers = w.sizes.size() - 1;
  for (std::size_t l = 0; l < layers; ++l) {
    if (l < w.dropout.size() && w.dropout[l] > 0) model->push_back(torch::nn::Dropout(w.dropout[l]));
    model->push_back(torch::nn::Linear(w.sizes[l], w.sizes[l + 1]));
    if (l + 1 < layers) {
      if (w.batch_norm) model->push_back(torch::nn::BatchNorm1d(w.sizes[l + 1]));
      model->push_back(torch::nn::ReLU());
    }
  }
  return model;
}

struct EpochResult {
  double train_loss = 0, valid_accuracy = 0;
};

EpochResult run_epoch(torch::nn::Sequential& model, torch::optim::Adam& adam, Index batch) {
  const TorchData& d = torch_data();
  EpochResult r;
  model->train();
  const std::int64_t n = d.train_x.size(0);
  const torch::Tensor order = torch::randperm(n, torch::kInt64);
  double loss_sum = 0;
  std::int64_t correct = 0, batches = 0;
  for (std::int64_t first = 0; first < n; first += batch, ++batches) {
    const torch::Tensor index = order.narrow(0, first, std::min<std::int64_t>(batch, n - first));
    const torch::Tensor x = d.train_x.index_select(0, index);
    const torch::Tensor y = d.train_y.index_select(0, index);
    adam.zero_grad();
    const torch::Tensor out = model->forward(x);
    torch::Tensor loss = torch::nn::functional::cross_entropy(out, y);
    loss.backward();
    adam.step();
    loss_sum += loss.item<double>();
    correct += out.argmax(1).eq(y).sum().item<std::int64_t>();
  }
  r.train_loss = loss_sum / double(batches);

  model->eval();
  torch::InferenceMode guard;
  const std::int64_t nv = d.valid_x.size(0);
  correct = 0;
  double valid_loss = 0;
  for (std::int64_t first = 0; first < nv; first += bench::eval_batch) {
    const std::int64_t count = std::min<std::int64_t>(bench::eval_batch, nv - first);
    const torch::Tensor out = model->forward(d.valid_x.narrow(0, first, count));
    const torch::Tensor y = d.valid_y.narrow(0, first, count);
    valid_loss += torch::nn::functional::cross_entropy(out, y).item<double>() * double(count);
    correct += out.argmax(1).eq(y).sum().item<std::int64_t>();
  }
  r.valid_accuracy = double(correct) / double(nv);
  return r;
}

void train(benchmark::State& state, const Workload* w) {
  if (!bench::data_ready(state)) return;
  set_threads(state);
  torch::manual_seed(7);
  torch::nn::Sequential model = build(*w);
  torch::optim::Adam adam(model->parameters(), torch::optim::AdamOptions(1e-3));
  bench::time_epochs(state, *w, [&] { return run_epoch(model, adam, w->batch); });
}

void infer(benchmark::State& state, bool single) {
  if (!bench::data_ready(state)) return;
  set_threads(state);
  torch::manual_seed(7);
  torch::nn::Sequential model = build(bench::w1);
  model->eval();
  torch::InferenceMode guard;
  const torch::Tensor& x = torch_data().valid_x;
  const std::int64_t n = x.size(0);
  double sum = 0;
  if (single) {
    std::int64_t i = 0;
    bench::run_inference(state, 1, true, [&] {
      const torch::Tensor out = model->forward(x.narrow(0, i, 1));
      sum += double(out.data_ptr<float>()[0]);
      i = (i + 1) % n;
    });
  } else {
    bench::run_inference(state, double(n), false, [&] {
      for (std::int64_t first = 0; first < n; first += bench::eval_batch) {
        const torch::Tensor out = model->forward(
            x.narrow(0, first, std::min<std::int64_t>(bench::eval_batch, n - first)));
        sum += double(out.data_ptr<float>()[0]);
      }
    });
  }
  bench::check_finite(state, sum, "output");
}

}  // namespace

int main(int argc, char** argv) {
  return bench::run(argc, argv, [] { bench::register_workloads({{"libtorch", train, infer}}); });
}
