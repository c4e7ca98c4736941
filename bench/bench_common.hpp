#pragma once
// What every benchmark binary shares: the workloads W1-W4 of the performance issue, the real
// Fashion-MNIST data they train on, and the short mode CI runs.
//
// Environment:
//   DROPNET_BENCH_SHORT=1        CI mode: a small real subset (2,000 train / 500 valid images),
//                                one timed epoch, no repetitions; checks the programs, not timings.
//   DROPNET_FASHION_MNIST_DIR    where the IDX files are (default: Debian's
//                                /usr/share/datasets/fashion-mnist, package dataset-fashion-mnist).
//
// Data: the 60,000 official training images, pixels scaled to [-1, 1] as the seed notebook's
// Normalize((0.5,), (0.5,)), split 50,000 / 10,000 by a seeded permutation (random_split).

#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdlib>
#include <ctime>
#include <string>
#include <vector>

#include <dropnet/io/fashion_mnist.hpp>

namespace bench {

using dropnet::Index;
using dropnet::Labels;
using Mat = dropnet::Matrix<float>;

inline bool short_mode() {
  const char* value = std::getenv("DROPNET_BENCH_SHORT");
  return value != nullptr && *value != '\0' && std::string(value) != "0";
}

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

inline double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

/// CPU time of the whole process (all threads). On a machine shared with other work, the CPU
/// time of a single-threaded run is close to its wall time on an idle machine, while the wall
/// time grows with the load: the cpu_* counters are the load-robust figures at 1 thread.
inline double process_cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return double(t.tv_sec) + 1e-9 * double(t.tv_nsec);
}

/// Runs `infer()` (which handles `images` images) once per benchmark iteration and reports
/// images_per_s (batches) or us_per_image (single images), from wall and from CPU time.
template <class Infer>
void run_inference(benchmark::State& state, double images, bool single, Infer&& infer) {
  const auto start = std::chrono::steady_clock::now();
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

}  // namespace bench
