#pragma once
// What the end-to-end benchmarks share (bench_training, compare/bench_libtorch,
// compare/torch_conv): the workloads W1-W4 of the performance issue, the real Fashion-MNIST data
// they train on, how they time an epoch and an inference, and their names.
//
// Environment:
//   DROPNET_BENCH_SHORT=1        CI mode: a small real subset (2,000 train / 500 valid images),
//                                one timed epoch, no repetitions; checks the programs, not timings.
//   DROPNET_BENCH_EPOCHS=N       timed epochs per training benchmark (default 6; W3 4).
//   DROPNET_FASHION_MNIST_DIR    where the IDX files are (default: Debian's
//                                /usr/share/datasets/fashion-mnist, package dataset-fashion-mnist).
//
// Data: the 60,000 official training images, pixels scaled to [-1, 1] as the seed notebook's
// Normalize((0.5,), (0.5,)), split 50,000 / 10,000 by a seeded permutation (random_split).

#include <initializer_list>
#include <string>
#include <vector>

// Outside the umbrella header: it needs zlib.
#include <dropnet/io/fashion_mnist.hpp>

#include "bench_common.hpp"

namespace bench {

using dropnet::Labels;

/// One end-to-end workload: an MLP on Fashion-MNIST, trained with Adam(lr 1e-3) and
/// softmax cross-entropy, validated after each epoch.
struct Workload {
  const char* name;
  std::vector<Index> sizes;     ///< layer widths, input first: {784, 120, 60, 10}
  std::vector<double> dropout;  ///< dropout[i] applied to the input of Dense layer i (0: none)
  bool batch_norm;              ///< Dense -> BatchNorm -> ReLU in hidden layers
  Index batch;                  ///< training batch size
};

/// W1: the seed model 784-120-60-10 ReLU, batch 64.
inline const Workload w1{"W1", {784, 120, 60, 10}, {0.0, 0.0, 0.0}, false, 64};
/// W2: W1 with the seed notebook's dropout: 0.25 on the input, 0.4 after each hidden ReLU.
inline const Workload w2{"W2", {784, 120, 60, 10}, {0.25, 0.4, 0.4}, false, 64};
/// W3: 784-512-256-10, hidden = Dense -> BatchNorm -> ReLU -> Dropout(0.3), batch 128.
inline const Workload w3{"W3", {784, 512, 256, 10}, {0.0, 0.3, 0.3}, true, 128};

/// dropnet's model of a workload (Dense layers He-initialized under BatchNorm).
inline dropnet::Sequential<float> build_dropnet(const Workload& w, dropnet::Generator& gen) {
  using namespace dropnet;
  Sequential<float> model(w.sizes.front());
  const std::size_t layers = w.sizes.size() - 1;
  for (std::size_t l = 0; l < layers; ++l) {
    if (l < w.dropout.size() && w.dropout[l] > 0) model.add(Dropout<float>(w.dropout[l]));
    const Index in = w.sizes[l], out = w.sizes[l + 1];
    if (l + 1 == layers) {
      model.add(Dense<float>(in, out, gen));  // logits
    } else if (w.batch_norm) {
      model.add(Dense<float>(in, out, gen, Init::he_normal));
      model.add(BatchNorm<float>(out));
      model.add(ActivationLayer<float, ReLU>());
    } else {
      model.add(Dense<float, ReLU>(in, out, gen));
    }
  }
  return model;
}

/// Validation (and W4 inference) batch size, the same for every implementation.
inline constexpr Index eval_batch = 1000;

/// Floating-point operations of one epoch (GEMMs only: forward, both backward products except
/// the first layer's input gradient, and the validation forward).
inline double epoch_flops(const Workload& w, Index train, Index valid) {
  double per_train = 0, per_valid = 0;
  for (std::size_t l = 0; l + 1 < w.sizes.size(); ++l) {
    const double macs = double(w.sizes[l]) * double(w.sizes[l + 1]);
    per_train += 2 * macs * (l == 0 ? 2 : 3);
    per_valid += 2 * macs;
  }
  return per_train * double(train) + per_valid * double(valid);
}

struct Dataset {
  Mat train_x, valid_x;  // 784 x N, pixels in [-1, 1]
  Labels train_y, valid_y;
  std::string error;  // non-empty when the data could not be loaded
};

inline Dataset load_dataset() {
  Dataset data;
  const char* dir_env = std::getenv("DROPNET_FASHION_MNIST_DIR");
  const std::string dir = dir_env && *dir_env ? dir_env : dropnet::fashion_mnist::default_directory;
  try {
    auto all = dropnet::fashion_mnist::load<float>(dir, dropnet::fashion_mnist::Part::train);
    dropnet::normalize(all.images, 0.5f, 0.5f);
    dropnet::Generator gen(20240601);
    auto parts = dropnet::fashion_mnist::split(all, 10000, gen);
    if (short_mode()) {
      parts.train = dropnet::fashion_mnist::take(parts.train, 2000);
      parts.valid = dropnet::fashion_mnist::take(parts.valid, 500);
    }
    data.train_x = std::move(parts.train.images);
    data.train_y = std::move(parts.train.labels);
    data.valid_x = std::move(parts.valid.images);
    data.valid_y = std::move(parts.valid.labels);
  } catch (const std::exception& e) {
    data.error = std::string("Fashion-MNIST not available (") + e.what() +
                 "); install Debian's dataset-fashion-mnist or set DROPNET_FASHION_MNIST_DIR";
  }
  return data;
}

/// Loaded once per process, on first use.
inline const Dataset& dataset() {
  static const Dataset data = load_dataset();
  return data;
}

/// Skips the benchmark (without failing the process) when the data is not installed.
inline bool data_ready(benchmark::State& state) {
  if (!dataset().error.empty()) {
    state.SkipWithError(dataset().error.c_str());
    return false;
  }
  return true;
}

/// The counters every training workload reports (times are seconds per epoch).
inline void report_epochs(benchmark::State& state, const Workload& w, double total_seconds,
                          double cpu_seconds, double train_loss, double valid_accuracy) {
  const double iterations = static_cast<double>(state.iterations());
  const double per_epoch = total_seconds / iterations;
  state.counters["s_per_epoch"] = per_epoch;
  state.counters["cpu_s_per_epoch"] = cpu_seconds / iterations;
  state.counters["GFLOPs"] =
      epoch_flops(w, dataset().train_x.cols(), dataset().valid_x.cols()) / per_epoch * 1e-9;
  state.counters["train_loss"] = train_loss;
  state.counters["val_acc"] = valid_accuracy;
  check_finite(state, train_loss, "training loss");
}

/// Times `epoch()` (which trains one epoch and returns its train_loss and valid_accuracy) once
/// per benchmark iteration, after one warm-up epoch, and reports the epoch counters.
template <class Epoch>
void time_epochs(benchmark::State& state, const Workload& w, Epoch&& epoch) {
  epoch();  // warm-up
  double total = 0;
  decltype(epoch()) last{};
  const double cpu_start = process_cpu_seconds();
  for (auto _ : state) {
    const auto start = clock_type::now();
    last = epoch();
    const double seconds = seconds_since(start);
    state.SetIterationTime(seconds);
    total += seconds;
  }
  report_epochs(state, w, total, process_cpu_seconds() - cpu_start, last.train_loss,
                last.valid_accuracy);
}

/// Runs `infer()` (which handles `images` images) once per benchmark iteration and reports
/// images_per_s (batches) or us_per_image (single images), from wall and from CPU time.
template <class Infer>
void run_inference(benchmark::State& state, double images, bool single, Infer&& infer) {
  const auto start = clock_type::now();
  const double cpu_start = process_cpu_seconds();
  for (auto _ : state) infer();
  const double wall = seconds_since(start), cpu = process_cpu_seconds() - cpu_start;
  const double n = images * static_cast<double>(state.iterations());
  if (single) {
    state.counters["us_per_image"] = wall / n * 1e6;
    state.counters["cpu_us_per_image"] = cpu / n * 1e6;
  } else {
    state.counters["images_per_s"] = n / wall;
    state.counters["cpu_images_per_s"] = n / cpu;
  }
}

inline int epochs_per_run(int full) {
  if (short_mode()) return 1;
  if (const char* env = std::getenv("DROPNET_BENCH_EPOCHS")) return std::max(1, std::atoi(env));
  return full;
}

/// One implementation of the workloads: W1-W3 trained by `train`, W4 inferred by `infer`
/// (single: one image at a time, else batches of eval_batch).
struct Implementation {
  const char* name;  ///< the middle of the names: W1/<name>/threads:1
  void (*train)(benchmark::State&, const Workload*);
  void (*infer)(benchmark::State&, bool single);
};

/// Registers <workload>/<implementation>/threads:{1,2} for W1-W3, W4_batch1000 and W4_batch1,
/// the implementations side by side within each workload. bench/run_compare.sh reads the names.
inline void register_workloads(std::initializer_list<Implementation> implementations) {
  for (const Workload* w : {&w1, &w2, &w3})
    for (const Implementation& impl : implementations)
      benchmark::RegisterBenchmark((std::string(w->name) + "/" + impl.name).c_str(), impl.train, w)
          ->ArgName("threads")
          ->Arg(1)
          ->Arg(2)
          ->UseManualTime()
          ->Iterations(epochs_per_run(w == &w3 ? 4 : 6))
          ->Unit(benchmark::kMillisecond);
  for (const bool single : {false, true})
    for (const Implementation& impl : implementations) {
      const std::string name = std::string(single ? "W4_batch1/" : "W4_batch1000/") + impl.name;
      auto* b = benchmark::RegisterBenchmark(name.c_str(), impl.infer, single)
                    ->ArgName("threads")
                    ->Arg(1)
                    ->Arg(2)
                    ->Unit(single ? benchmark::kMicrosecond : benchmark::kMillisecond);
      if (short_mode()) b->Iterations(1);
    }
}

}  // namespace bench
