// Fashion-MNIST with dropnet: the seed notebook (a 784-120-60-10 ReLU MLP trained with and
// without dropout) as a command-line program, plus a small CNN. Trains a model, reports its test
// accuracy per class with a confusion matrix, draws the learning curves, compares dropout
// settings (--study dropout on the MLP, --study spatial on the CNN's conv blocks) and measures
// Monte-Carlo dropout uncertainty (--mc-samples). --help lists every option.

#include <Eigen/Core>
#include <chrono>
#include <cstdio>
#include <dropnet/io/model_file.hpp>
#include <dropnet/io/model_load.hpp>
#include <dropnet/io/onnx_export.hpp>
#include <exception>

#include "cli.hpp"
#include "data.hpp"
#include "model.hpp"
#include "plot.hpp"
#include "progress.hpp"
#include "report.hpp"
#include "search_study.hpp"
#include "study.hpp"
#include "training.hpp"
#include "uncertainty.hpp"

namespace fmnist {

namespace {

using Clock = std::chrono::steady_clock;

constexpr int below_min_accuracy_status = 3;

void set_threads(int threads) {
#ifdef _OPENMP
  Eigen::setNbThreads(threads);
#else
  if (threads > 1)
    std::fprintf(stderr, "note: built without OpenMP, --threads %d runs on one thread\n", threads);
#endif
}

void print_setup(std::FILE* out, const Options& o, const Data& data) {
  std::fprintf(out, "Fashion-MNIST from %s: %s train, %s valid, %s test images (%s)\n",
               o.data.dir.c_str(), thousands(data.train.size()).c_str(),
               thousands(data.valid.size()).c_str(), thousands(data.test.size()).c_str(),
               o.data.normalization == "per-pixel" ? "per-pixel standardized"
                                                   : "normalized (x - 0.5) / 0.5");
  const TrainSpec& t = o.train;
  std::fprintf(out, "Training: %s lr %g", t.optimizer.c_str(), t.lr);
  if (t.weight_decay > 0) std::fprintf(out, " weight decay %g", t.weight_decay);
  std::fprintf(out, ", schedule %s, batch %td, %d epochs", t.schedule.c_str(), t.batch_size,
               t.epochs);
  if (t.label_smoothing > 0)  // the test loss is evaluate_on's plain cross-entropy
    std::fprintf(out,
                 ", label smoothing %g (included in the train and valid losses, not in the test "
                 "loss)",
                 t.label_smoothing);
  if (t.augment_shift > 0) std::fprintf(out, ", random shifts up to %d px", t.augment_shift);
  if (t.augment_flip) std::fprintf(out, ", random flips");
  if (t.patience > 0) std::fprintf(out, ", early stopping (patience %d)", t.patience);
  std::fprintf(out, ", seed %llu, %d Eigen thread%s, SIMD %s\n",
               static_cast<unsigned long long>(o.seed), Eigen::nbThreads(),
               Eigen::nbThreads() == 1 ? "" : "s", dropnet::simd_level_name(dropnet::simd_level()));
}

/// CSV and figure of one model's history, as asked.
void write_curves(std::FILE* out, const Options& o, const dropnet::History& history) {
  std::string csv = o.history_path;
  if (csv.empty() && !o.plot_path.empty()) csv = with_extension(o.plot_path, ".csv");
  if (csv.empty() || history.epochs.empty()) return;
  write_history_csv(csv, history);
  std::fprintf(out, "\nCurves: %s\n", csv.c_str());
  if (o.plot_path.empty()) return;
  const std::string title = "Fashion-MNIST, " + o.model.label + " (" + architecture(o.model) + ")";
  const std::string image = plot_history(csv, o.plot_path, title, history.epochs.size());
  if (!image.empty()) std::fprintf(out, "Figure: %s\n", image.c_str());
}

int run_single(const Options& o, Data& data, dropnet::Generator& gen, std::FILE* out,
               Clock::time_point start, double cpu_start) {
  dropnet::Sequential<float> model = build_model(o.model, gen);
  std::fprintf(out, "Model '%s': %s\n%s", o.model.label.c_str(), describe(o.model).c_str(),
               model.summary().c_str());
  if (!o.load_path.empty()) {
    // The model file describes its own architecture: the file's network replaces the flags'.
    model = dropnet::load<float>(o.load_path);
    std::fprintf(out, "Loaded the model in %s:\n%s", o.load_path.c_str(), model.summary().c_str());
  }
  std::fprintf(out, "\n");

  Progress progress(out, progress_style(o.progress), "");
  const TrainOutcome outcome = train(model, o.train, data, gen, {&progress});
  if (outcome.best_epoch >= 0)
    std::fprintf(out, "Early stopping: restored the weights of epoch %d (best val_loss)\n",
                 outcome.best_epoch + 1);

  const TestResult test = evaluate_on(model, data.test);
  print_test_report(out, test.loss, confusion_of(test.logits, data.test.labels));
  if (o.mc_samples > 0)
    print_uncertainty(out, mc_uncertainty(model, data.test, o.mc_samples, gen), test.accuracy);
  if (!o.save_path.empty()) {
    dropnet::save(model, o.save_path);
    std::fprintf(out, "\nSaved the model (architecture and weights) to %s\n", o.save_path.c_str());
  }
  if (!o.export_path.empty()) {
    dropnet::export_onnx(model, o.export_path);
    std::fprintf(out, "\nExported the model to %s (ONNX opset %lld)\n", o.export_path.c_str(),
                 static_cast<long long>(dropnet::onnx_opset));
  }
  write_curves(out, o, outcome.history);
  print_timing(out, progress.train_seconds(), progress.samples(),
               std::chrono::duration<double>(Clock::now() - start).count(),
               cpu_seconds() - cpu_start);

  if (test.accuracy < o.min_accuracy) {
    std::fprintf(stderr, "fashion_mnist: test accuracy %.4f is below --min-accuracy %.4f\n",
                 test.accuracy, o.min_accuracy);
    return below_min_accuracy_status;
  }
  return 0;
}

int run(const Options& o) {
  const auto start = Clock::now();
  const double cpu_start = cpu_seconds();
  std::FILE* out = stdout;
  set_threads(o.threads);
  dropnet::Generator gen(o.seed);
  Data data = load_data(o.data, gen);
  print_setup(out, o, data);
  if (!o.search.empty()) return run_search_study(o, data, out);
  if (!o.study.empty()) return run_study(o, data, gen, out);
  return run_single(o, data, gen, out, start, cpu_start);
}

}  // namespace

}  // namespace fmnist

int main(int argc, char** argv) {
  const fmnist::ParsedCommandLine parsed = fmnist::parse_command_line(argc, argv);
  if (parsed.exit) return parsed.exit_code;
  try {
    return fmnist::run(parsed.options);
  } catch (const std::exception& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "fashion_mnist: %s\n", e.what());
    return 1;
  }
}
