// End-to-end workloads W1-W4 of the performance issue on real Fashion-MNIST, for dropnet and for
// a plain hand-written Eigen MLP (plain_eigen_mlp.hpp) in the same binary, at 1 and 2 threads.
//
//   W1  784-120-60-10 ReLU, batch 64, Adam(1e-3): one epoch = 50,000 training images + a
//       validation pass over 10,000 (batches of 1,000)                     counter s_per_epoch
//   W2  W1 with dropout 0.25 (input) / 0.4 / 0.4                           counter s_per_epoch
//   W3  784-512-256-10, Dense -> BatchNorm -> ReLU -> Dropout(0.3), batch 128    s_per_epoch
//   W4  inference of W1's model: batch 1,000 over the 10,000 validation images (images_per_s)
//       and one image at a time (us_per_image)
//
// Names: <workload>/<implementation>/threads:<n>. bench/run_compare.sh turns the JSON output of
// this binary and of bench/compare/bench_libtorch into the ratio table.
// DROPNET_BENCH_SHORT=1 (CI): a 2,000 / 500 image subset and one iteration each.

#include <string>
#include <vector>

#include "bench_workloads.hpp"
#include "plain_eigen_mlp.hpp"

namespace {

using bench::Workload;
using dropnet::Generator;
using dropnet::Index;
using dropnet::Labels;
using dropnet::Sequential;

/// Eigen's threads for this case (its `threads` argument), recorded as the counter eigen_threads.
/// Also labels the case with the SIMD level dropnet's dispatched kernels run at, and whether
/// the binary itself was compiled for AVX-512 (-march=native here) or with the default flags.
void set_threads(benchmark::State& state) {
  Eigen::setNbThreads(static_cast<int>(state.range(0)));
  state.counters["eigen_threads"] = Eigen::nbThreads();
#if defined(__AVX512F__)
  const char* flags = "native";
#else
  const char* flags = "default-flags";
#endif
  state.SetLabel(std::string("simd=") + dropnet::simd_level_name(dropnet::simd_level()) +
                 " build=" + flags);
}

// ---------------------------------------------------------------------------------------------
// dropnet

void train_dropnet(benchmark::State& state, const Workload* w) {
  if (!bench::data_ready(state)) return;
  set_threads(state);
  const bench::Dataset& data = bench::dataset();
  Generator gen(7);
  Sequential<float> model = bench::build_dropnet(*w, gen);
  dropnet::Adam<float> adam(model.parameters(), dropnet::AdamOptions(1e-3));
  const dropnet::SoftmaxCrossEntropy<float> loss;
  dropnet::FitOptions<float> options;
  options.epochs = 1;
  options.batch_size = w->batch;
  options.eval_batch_size = bench::eval_batch;
  const dropnet::ValidationData<float, Labels> valid{data.valid_x, data.valid_y};

  dropnet::fit(model, loss, adam, data.train_x, data.train_y, gen, options, valid);  // warm-up
  double total = 0, outside_epoch = 0;
  dropnet::EpochLogs last;
  const double cpu_start = bench::process_cpu_seconds();
  for (auto _ : state) {
    const auto start = bench::clock_type::now();
    const dropnet::History h =
        dropnet::fit(model, loss, adam, data.train_x, data.train_y, gen, options, valid);
    const double wall = bench::seconds_since(start);
    last = h.epochs.at(0);
    state.SetIterationTime(last.seconds);
    total += last.seconds;
    outside_epoch += wall - last.seconds;
  }
  const double cpu = bench::process_cpu_seconds() - cpu_start;
  // CPU time of whole fit calls; scaled to the epoch's share of their wall time.
  bench::report_epochs(state, *w, total, cpu * total / (total + outside_epoch), last.loss,
                       last.val_accuracy);
  // fit's one-time checks (finite inputs, label range) per call, not counted in s_per_epoch.
  state.counters["fit_setup_ms"] = outside_epoch / double(state.iterations()) * 1e3;
}

void infer_dropnet(benchmark::State& state, bool single) {
  if (!bench::data_ready(state)) return;
  set_threads(state);
  const bench::Dataset& data = bench::dataset();
  Generator gen(7);
  Sequential<float> model = bench::build_dropnet(bench::w1, gen);
  double sum = 0;
  if (single) {
    Index i = 0;
    bench::run_inference(state, 1, true, [&] {
      sum += model.infer(data.valid_x.col(i))(0, 0);  // the image read in place
      i = (i + 1) % data.valid_x.cols();
    });
  } else {
    dropnet::Matrix<float> out;  // reused: predict_into allocates nothing after the first call
    bench::run_inference(state, double(data.valid_x.cols()), false, [&] {
      dropnet::predict_into(model, data.valid_x, out, bench::eval_batch);
      sum += out(0, 0);
    });
  }
  bench::check_finite(state, sum, "output");
}

// ---------------------------------------------------------------------------------------------
// plain Eigen

std::vector<long> long_sizes(const Workload& w) { return {w.sizes.begin(), w.sizes.end()}; }

void train_plain(benchmark::State& state, const Workload* w) {
  if (!bench::data_ready(state)) return;
  set_threads(state);
  const bench::Dataset& data = bench::dataset();
  plain::MLP model(long_sizes(*w), w->dropout, w->batch_norm, 7);
  bench::time_epochs(state, *w, [&] {
    return model.epoch(data.train_x, data.train_y, data.valid_x, data.valid_y, w->batch,
                       bench::eval_batch, 1e-3f);
  });
}

void infer_plain(benchmark::State& state, bool single) {
  if (!bench::data_ready(state)) return;
  set_threads(state);
  const bench::Dataset& data = bench::dataset();
  plain::MLP model(long_sizes(bench::w1), {}, false, 7);
  double sum = 0;
  const Index n = data.valid_x.cols();
  if (single) {
    Index i = 0;
    bench::run_inference(state, 1, true, [&] {
      sum += model.forward(data.valid_x.col(i), false)(0, 0);
      i = (i + 1) % n;
    });
  } else {
    bench::run_inference(state, double(n), false, [&] {
      for (Index first = 0; first < n; first += bench::eval_batch)
        sum += model.forward(data.valid_x.middleCols(first, std::min(bench::eval_batch, n - first)),
                             false)(0, 0);
    });
  }
  bench::check_finite(state, sum, "output");
}

}  // namespace

int main(int argc, char** argv) {
  return bench::run(argc, argv, [] {
    bench::register_workloads(
        {{"dropnet", train_dropnet, infer_dropnet}, {"eigen", train_plain, infer_plain}});
  });
}
