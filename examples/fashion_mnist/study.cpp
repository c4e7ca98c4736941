#include "study.hpp"

#include <chrono>
#include <dropnet/model/sequential.hpp>
#include <vector>

#include "model.hpp"
#include "plot.hpp"
#include "progress.hpp"
#include "report.hpp"
#include "training.hpp"
#include "uncertainty_study.hpp"

namespace fmnist {

namespace {

/// No dropout; the notebook's 0.25 on the input and 0.4 after each hidden layer; the user's.
std::vector<ModelSpec> dropout_models(const Options& options) {
  ModelSpec base = options.model;
  base.dropout.clear();
  std::vector<ModelSpec> specs(3, base);
  specs[0].label = "no dropout";
  specs[1].dropout.assign(base.hidden.size() + 1, 0.4);
  specs[1].dropout[0] = 0.25;
  specs[2].dropout = options.study_dropout;
  for (std::size_t i = 1; i < specs.size(); ++i)
    specs[i].label = "dropout " + dropout_text(specs[i].dropout);
  if (specs[2].label == specs[1].label || specs[2].label == "dropout none")
    specs[2].label += " (yours)";
  return specs;
}

/// The notebook's MLP (and its dropout, if --dropout gave one) with each L2 strength
/// (course chapter 004, exercise 4).
std::vector<ModelSpec> l2_models(const Options& options) {
  std::vector<ModelSpec> specs;
  for (double l2 : options.study_l2) {
    ModelSpec spec = options.model;
    spec.l2 = l2;
    char label[32];
    std::snprintf(label, sizeof label, l2 > 0 ? "L2 %g" : "no L2", l2);
    spec.label = label;
    specs.push_back(spec);
  }
  return specs;
}

/// The cnn with no dropout, standard dropout and SpatialDropout in its conv blocks.
std::vector<ModelSpec> spatial_models(const Options& options) {
  std::vector<ModelSpec> specs;
  for (const char* kind : {"none", "standard", "spatial"}) {
    ModelSpec spec = options.model;
    spec.conv.dropout = kind;
    spec.label = "conv dropout " + conv_dropout_text(spec.conv);
    specs.push_back(spec);
  }
  return specs;
}

/// The lstm preset with no dropout; input and recurrent dropout 0.25 with a fresh mask at every
/// step (naive) and with one mask per sequence (variational, Gal and Ghahramani 2016); Zoneout
/// with Krueger et al.'s (2016) permuted-MNIST rates, 0.15 on c and 0.05 on h.
std::vector<ModelSpec> recurrent_models(const Options& options) {
  ModelSpec base = options.model;
  base.recurrent = RecurrentSpec{};
  std::vector<ModelSpec> specs(4, base);
  specs[0].label = "no dropout";
  specs[1].recurrent.dropout = specs[2].recurrent.dropout = 0.25;
  specs[1].recurrent.recurrent_dropout = specs[2].recurrent.recurrent_dropout = 0.25;
  specs[1].recurrent.per_step_masks = true;
  specs[1].label = "naive (per-step) 0.25/0.25";
  specs[2].label = "variational 0.25/0.25";
  specs[3].recurrent.zoneout_c = 0.15;
  specs[3].recurrent.zoneout_h = 0.05;
  specs[3].label = "zoneout c 0.15 / h 0.05";  // no comma: the curves CSV does not quote
  return specs;
}

struct StudyModel {
  ModelSpec spec;
  dropnet::History history;
  double train_eval_accuracy = 0.0;
  double test_accuracy = 0.0;
  double wall_seconds = 0.0, cpu_seconds = 0.0;
};

/// CSV and figure of every model's curves, as asked.
void write_study_curves(const Options& options, const std::vector<StudyModel>& runs,
                        const std::string& name, std::FILE* out) {
  std::string csv = options.history_path;
  if (csv.empty() && !options.plot_path.empty()) csv = with_extension(options.plot_path, ".csv");
  if (csv.empty()) return;
  std::vector<Curves> curves;
  std::vector<std::string> labels;
  for (const StudyModel& run : runs) {
    curves.push_back({run.spec.label, &run.history});
    labels.push_back(run.spec.label);
  }
  write_study_csv(csv, curves);
  std::fprintf(out, "\nCurves: %s\n", csv.c_str());
  if (options.plot_path.empty()) return;
  const std::string title =
      "Fashion-MNIST: " + name + " (" + std::to_string(options.train.epochs) + " epochs)";
  const std::string image = plot_study(csv, options.plot_path, labels, title,
                                       static_cast<std::size_t>(options.train.epochs));
  if (!image.empty()) std::fprintf(out, "Figure: %s\n", image.c_str());
}

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

/// Trains one model of the study from a copy of `gen`, so every model starts from the same
/// initial weights and sees the same first shuffle; `progress` prints its epochs.
StudyModel train_one(const Options& options, const ModelSpec& spec, Data& data,
                     const dropnet::Generator& gen, std::FILE* out, Progress& progress) {
  const auto start = Clock::now();
  const double cpu_start = cpu_seconds();
  dropnet::Generator model_gen = gen;
  dropnet::Sequential<float> model = build_model(spec, model_gen);
  std::fprintf(out, "\n%s: %s, %d epochs\n", spec.label.c_str(), describe(spec).c_str(),
               options.train.epochs);
  StudyModel run{spec, train(model, options.train, data, model_gen, {&progress}).history};
  const TestResult test = evaluate_on(model, data.test);
  std::fprintf(out, "[%s] test loss %.4f, accuracy %.4f\n", spec.label.c_str(), test.loss,
               test.accuracy);
  run.test_accuracy = test.accuracy;
  run.train_eval_accuracy = evaluate_on(model, data.train).accuracy;
  run.wall_seconds = seconds_since(start);
  run.cpu_seconds = cpu_seconds() - cpu_start;
  return run;
}

/// Trains each of `specs` and compares them; `name` ("Dropout study") titles the table and the
/// figure.
int compare(const Options& options, const std::vector<ModelSpec>& specs, const std::string& name,
            Data& data, const dropnet::Generator& gen, std::FILE* out) {
  const auto start = Clock::now();
  const double cpu_start = cpu_seconds();
  std::vector<StudyModel> runs;
  double train_seconds = 0.0;
  long images = 0;
  for (const ModelSpec& spec : specs) {
    Progress progress(out, progress_style(options.progress), spec.label);
    runs.push_back(train_one(options, spec, data, gen, out, progress));
    train_seconds += progress.train_seconds();
    images += progress.samples();
  }

  std::vector<StudyRow> rows;
  for (const StudyModel& run : runs)
    rows.push_back({run.spec.label, &run.history, run.train_eval_accuracy, run.test_accuracy,
                    run.wall_seconds, run.cpu_seconds});
  std::fprintf(out, "\n%s: %s, %d epochs each, seed %llu\n", name.c_str(),
               architecture(options.model).c_str(), options.train.epochs,
               static_cast<unsigned long long>(options.seed));
  print_study_table(out, rows);
  write_study_curves(options, runs, name, out);
  print_timing(out, train_seconds, images, seconds_since(start), cpu_seconds() - cpu_start);
  return 0;
}

}  // namespace

int run_study(const Options& options, Data& data, const dropnet::Generator& gen, std::FILE* out) {
  if (options.study == "uncertainty") return run_uncertainty_study(options, data, out);
  if (options.study == "perceptron") return run_perceptron_study(options, data, out);
  if (options.study == "l2")
    return compare(options, l2_models(options), "L2 study", data, gen, out);
  if (options.study == "spatial")
    return compare(options, spatial_models(options), "Spatial dropout study", data, gen, out);
  if (options.study == "recurrent")
    return compare(options, recurrent_models(options), "Recurrent dropout study", data, gen, out);
  return compare(options, dropout_models(options), "Dropout study", data, gen, out);
}

}  // namespace fmnist
