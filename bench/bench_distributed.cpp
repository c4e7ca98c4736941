// W3 (784-512-256-10, Dense -> BatchNorm -> ReLU, dropout 0.3, Adam 1e-3, global batch 128) on
// Fashion-MNIST, trained data-parallel on MPI: seconds per epoch and the share of the step's
// gradient exchange (reduce-scatter + allgather: the step is sharded, docs/distributed.md).
// Not a Google Benchmark: every rank must make the same collective calls, so the epochs are
// timed by a fixed loop. Rank 0 prints one line.
//
//   mpirun -np 2 ./build/bench/bench_distributed --threads 1   2 ranks x 1 Eigen thread
//   ./build/bench/bench_distributed --threads 1                 1 process (plain fit) x 1 thread
//   ./build/bench/bench_distributed --threads 2                 1 process x 2 threads
//   mpirun -np 2 ./build/bench/bench_distributed --allreduce-only   the exchanges alone (no data):
//                                      one allreduce, and one reduce-scatter + allgather
//   ./build/bench/bench_distributed --threads 1 --batch 64   another global batch (default 128):
//                                      one process at a rank's batch, to compare its compute
//
// Open MPI's transport settings go on the mpirun line, e.g. `--mca
// btl_vader_single_copy_mechanism none` (copy through shared buffers instead of CMA); on the
// development VM see docs/distributed.md, Performance. As root add --allow-run-as-root; with
// other work on the machine --oversubscribe (waiting ranks yield the core).
// The global batch stays 128 (64 per rank on 2 ranks) unless --batch says otherwise, so the
// runs train the same model.
// Environment: DROPNET_BENCH_EPOCHS (timed epochs, default 3), DROPNET_BENCH_SHORT=1 (subset),
// DROPNET_FASHION_MNIST_DIR (bench_workloads.hpp).

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include <dropnet/distributed/mpi.hpp>

#include "bench_workloads.hpp"

namespace {

std::string load_average() {
  std::ifstream in("/proc/loadavg");
  std::string one, five, fifteen;
  in >> one >> five >> fifteen;
  return one + " " + five + " " + fifteen;
}

/// Best and median seconds of `exchange` over `repeats` calls (after one call as a warm-up and
/// a barrier): the median, not the mean, because on a shared machine a few calls wait for a
/// descheduled rank.
template <class Exchange>
std::pair<double, double> median_seconds(int repeats, Exchange&& exchange) {
  exchange();
  std::vector<double> seconds;
  for (int i = 0; i < repeats; ++i) {
    const auto start = std::chrono::steady_clock::now();
    exchange();
    seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(seconds.begin(), seconds.end());
  return {seconds.front(), seconds[seconds.size() / 2]};
}

/// Best and median seconds of one allreduce (sum) of `count` floats: the unsharded step's
/// exchange.
std::pair<double, double> allreduce_seconds(dropnet::distributed::Communicator& comm,
                                            dropnet::Index count, int repeats) {
  dropnet::Vector<float> buffer = dropnet::Vector<float>::Ones(count);
  const auto n = static_cast<std::size_t>(count);
  return median_seconds(repeats, [&] {
    comm.allreduce(buffer.data(), n, dropnet::distributed::ReduceOp::sum);
  });
}

/// Best and median seconds of the sharded step's exchange over `model`'s parameters, as
/// DataParallel makes it: a reduce-scatter (sum) in place in the gradients, then an allgather
/// in place in the values, in the shares DataParallel uses. The values must be the same on
/// every rank (they stay so).
std::pair<double, double> scatter_gather_seconds(dropnet::distributed::Communicator& comm,
                                                 dropnet::Sequential<float>& model, int repeats) {
  const dropnet::ModelState<float> state(model);
  std::vector<dropnet::distributed::Run<float>> gradients =
      dropnet::detail::parameter_runs(state, &dropnet::ParameterView<float>::grad);
  std::vector<dropnet::distributed::Run<float>> values =
      dropnet::detail::parameter_runs(state, &dropnet::ParameterView<float>::value);
  const std::vector<std::size_t> counts =
      dropnet::detail::share_counts(state.gradient_count(), comm.size());
  return median_seconds(repeats, [&] {
    comm.reduce_scatter(gradients.data(), gradients.size(), counts.data(),
                        dropnet::distributed::ReduceOp::sum,
                        1.0f / static_cast<float>(comm.size()));
    comm.allgather(values.data(), values.size(), counts.data());
  });
}

}  // namespace

int main(int argc, char** argv) {
  using namespace dropnet;
  distributed::MpiEnvironment mpi(argc, argv);
  distributed::MpiCommunicator world;
  int threads = 1;
  bool allreduce_only = false;
  dropnet::Index batch = bench::w3.batch;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--threads") == 0 && i + 1 < argc) threads = std::atoi(argv[i + 1]);
    if (std::strcmp(argv[i], "--batch") == 0 && i + 1 < argc) batch = std::atoi(argv[i + 1]);
    if (std::strcmp(argv[i], "--allreduce-only") == 0) allreduce_only = true;
  }
  Eigen::setNbThreads(threads);
  if (allreduce_only) {
    Generator gen(7);
    Sequential<float> model = bench::build_dropnet(bench::w3, gen);
    const Index gradients = ModelState<float>(model).gradient_count();
    const auto [best, median] = allreduce_seconds(world, gradients, 200);
    const auto [sg_best, sg_median] = scatter_gather_seconds(world, model, 200);
    if (world.is_root())
      std::printf("allreduce ranks=%d floats=%ld best_ms=%.3f median_ms=%.3f "
                  "reduce_scatter+allgather best_ms=%.3f median_ms=%.3f load=%s\n",
                  world.size(), static_cast<long>(gradients), best * 1e3, median * 1e3,
                  sg_best * 1e3, sg_median * 1e3, load_average().c_str());
    return 0;
  }

  const bench::Dataset& data = bench::dataset();
  if (!data.error.empty()) {
    if (world.is_root()) std::printf("skipped: %s\n", data.error.c_str());
    return 0;
  }
  const bench::Workload& w = bench::w3;
  Generator gen(7);
  Sequential<float> model = bench::build_dropnet(w, gen);
  Adam<float> adam(model.parameters(), AdamOptions(1e-3));
  const SoftmaxCrossEntropy<float> loss;
  FitOptions<float> options;
  options.epochs = 1;
  options.batch_size = batch / world.size();
  options.eval_batch_size = bench::eval_batch;
  if (world.size() > 1) options.communicator = &world;
  const ValidationData<float, Labels> valid{data.valid_x, data.valid_y};

  fit(model, loss, adam, data.train_x, data.train_y, gen, options, valid);  // warm-up
  const int epochs = bench::epochs_per_run(3);
  double total = 0, best = 1e300;
  EpochLogs last;
  for (int e = 0; e < epochs; ++e) {
    last = fit(model, loss, adam, data.train_x, data.train_y, gen, options, valid).epochs.at(0);
    total += last.seconds;
    best = std::min(best, last.seconds);
  }
  const double per_epoch = total / epochs;
  const Index gradients = ModelState<float>(model).gradient_count();
  // The step's exchange: reduce-scatter + allgather when the step is sharded (Adam is).
  const double reduce = world.size() > 1 ? scatter_gather_seconds(world, model, 50).second : 0.0;
  const double steps = std::ceil(double(data.train_x.cols()) / double(batch));
  if (world.is_root())
    std::printf(
        "W3 ranks=%d threads=%d batch=%ld epochs=%d s_per_epoch=%.3f best=%.3f exchange_median_ms=%.3f "
        "(%ld floats) exchange_share=%.1f%% train_loss=%.4f val_acc=%.4f load=%s\n",
        world.size(), Eigen::nbThreads(), static_cast<long>(batch), epochs, per_epoch, best, reduce * 1e3,
        static_cast<long>(gradients), world.size() > 1 ? 100.0 * reduce * steps / per_epoch : 0.0,
        last.loss, last.val_accuracy, load_average().c_str());
  return 0;
}
