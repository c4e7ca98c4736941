// fashion_mnist_mpi: the Fashion-MNIST MLP trained data-parallel on MPI, the sibling of
// fashion_mnist for several processes or machines (docs/distributed.md).
//
//   mpirun -np 2 ./build/examples/fashion_mnist/fashion_mnist_mpi --epochs 5
//   mpirun -np 8 --hostfile hosts ./fashion_mnist_mpi --batchnorm --sync-bn
//   (as root: mpirun --allow-run-as-root, or OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1)
//
// Every rank loads the data and builds the model from the same seed; fit broadcasts rank 0's
// weights, shards each global batch (--batch samples, split over the ranks) and averages the
// gradients. Only rank 0 prints and writes --save.

#include <CLI/CLI.hpp>

#include <cstdio>
#include <exception>

#include <dropnet/distributed/mpi.hpp>
#include <dropnet/dropnet.hpp>
#include <dropnet/io/fashion_mnist.hpp>  // default_directory

#include "data.hpp"
#include "model.hpp"

namespace {

/// Prints each epoch's global metrics on rank 0.
struct RootProgress : dropnet::Callback<float> {
  explicit RootProgress(bool root) : root_(root) {}
  void on_epoch_end(dropnet::TrainingContext<float>&, const dropnet::EpochLogs& logs) override {
    if (!root_) return;
    std::printf("epoch %2d  loss %.4f  acc %.4f  val_loss %.4f  val_acc %.4f  %.2f s\n",
                logs.epoch + 1, logs.loss, logs.accuracy, logs.val_loss, logs.val_accuracy,
                logs.seconds);
    std::fflush(stdout);
  }
  bool root_;
};

}  // namespace

int main(int argc, char** argv) {
  using namespace dropnet;
  distributed::MpiEnvironment mpi(argc, argv);
  CLI::App app{"Fashion-MNIST MLP, data-parallel on MPI"};
  fmnist::DataSpec data_spec;
  data_spec.dir = fashion_mnist::default_directory;
  fmnist::ModelSpec model_spec;
  int epochs = 10, threads = 1;
  Index batch = 64;
  double lr = 1e-3;
  std::uint64_t seed = 42;
  bool sync_bn = false, reproducible = false;
  std::string save_path;
  app.add_option("--data-dir", data_spec.dir, "Fashion-MNIST IDX files");
  app.add_option("--train-limit", data_spec.train_limit, "use only this many training images (0: all)");
  app.add_option("--epochs", epochs, "epochs")->check(CLI::NonNegativeNumber);
  app.add_option("--batch", batch, "global batch size (split over the ranks)")->check(CLI::PositiveNumber);
  app.add_option("--lr", lr, "Adam learning rate")->check(CLI::PositiveNumber);
  app.add_option("--hidden", model_spec.hidden, "hidden layer sizes");
  app.add_option("--dropout", model_spec.dropout, "dropout rate per dense layer's input");
  app.add_flag("--batchnorm", model_spec.batchnorm, "Dense -> BatchNorm -> activation");
  app.add_flag("--sync-bn", sync_bn, "BatchNorm with the global batch's statistics (SyncBatchNorm)");
  app.add_flag("--reproducible", reproducible, "ordered reductions: bit-identical reruns");
  app.add_option("--seed", seed, "seed of the data split, the weights and the run");
  app.add_option("--threads", threads, "Eigen threads per rank");
  app.add_option("--save", save_path, "write the trained model here (rank 0)");
  CLI11_PARSE(app, argc, argv);

  distributed::MpiCommunicator world(
      MPI_COMM_WORLD, reproducible ? distributed::Reduction::ordered : distributed::Reduction::fast);
  Eigen::setNbThreads(threads);
  try {
    detail::require(batch % world.size() == 0, "fashion_mnist_mpi", "--batch ", batch,
            " is not a multiple of the ", world.size(), " ranks");
    Generator gen(seed);
    const fmnist::Data data = fmnist::load_data(data_spec, gen);
    Sequential<float> model = fmnist::build_model(model_spec, gen);
    if (sync_bn)
      for (Index i = 0; i < model.size(); ++i)
        if (auto* bn = dynamic_cast<BatchNorm<float>*>(&model.layer(i))) bn->synchronize(&world);
    Adam<float> adam(model.parameters(), AdamOptions(lr));
    const SoftmaxCrossEntropy<float> loss;
    RootProgress progress(world.is_root());
    FitOptions<float> options;
    options.epochs = epochs;
    options.batch_size = batch / world.size();
    options.communicator = &world;
    options.callbacks = {&progress};
    if (world.is_root())
      std::printf("%d ranks x %d threads, global batch %ld (%ld per rank), %s\n", world.size(),
                  threads, static_cast<long>(batch), static_cast<long>(options.batch_size),
                  fmnist::describe(model_spec).c_str());
    fit(model, loss, adam, data.train.images, data.train.labels, gen, options,
        ValidationData<float, Labels>{data.valid.images, data.valid.labels});
    const Evaluation test = evaluate(model, loss, data.test.images, data.test.labels);
    if (world.is_root()) {
      std::printf("test loss %.4f  test accuracy %.4f\n", test.loss, test.accuracy);
      if (!save_path.empty()) save(model, save_path);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fashion_mnist_mpi (rank %d): %s\n", world.rank(), e.what());
    return 1;
  }
  return 0;
}
