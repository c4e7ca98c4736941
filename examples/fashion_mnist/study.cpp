#include "study.hpp"

#include <chrono>
#include <dropnet/training/sequential.hpp>
#include <vector>

#include "model.hpp"
#include "plot.hpp"
#include "progress.hpp"
#include "report.hpp"
#include "training.hpp"

namespace fmnist {

namespace {

/// No dropout; the notebook's 0.25 on the input and 0.4 after each hidden layer; the user's.
std::vector<ModelSpec> study_models(const Options& options) {
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

struct StudyModel {
  ModelSpec spec;
  dropnet::History history;
  double train_eval_accuracy = 0.0;
  double test_accuracy = 0.0;
};

}  // namespace

int run_dropout_study(const Options& options, Data& data, const dropnet::Generator& gen,
                      std::FILE* out) {
  const auto start = std::chrono::steady_clock::now();
  std::vector<StudyModel> runs;
  double train_seconds = 0.0;
  long images = 0;
  for (const ModelSpec& spec : study_models(options)) {
    dropnet::Generator model_gen = gen;  // same initial weights and first shuffle for every model
    dropnet::Sequential<float> model = build_model(spec, model_gen);
    std::fprintf(out, "\n%s: %s, %d epochs\n", spec.label.c_str(), describe(spec).c_str(),
                 options.train.epochs);
    Progress progress(out, progress_style(options.progress, out), spec.label);
    const TrainOutcome outcome = train(model, options.train, data, model_gen, {&progress});
    const TestResult test = evaluate_on(model, data.test);
    std::fprintf(out, "[%s] test loss %.4f, accuracy %.4f\n", spec.label.c_str(), test.loss,
                 test.accuracy);
    const double train_accuracy = evaluate_on(model, data.train).accuracy;
    runs.push_back({spec, outcome.history, train_accuracy, test.accuracy});
    train_seconds += progress.train_seconds();
    images += progress.images();
  }

  std::vector<StudyRow> rows;
  std::vector<Curves> curves;
  std::vector<std::string> labels;
  for (const StudyModel& run : runs) {
    rows.push_back({run.spec.label, &run.history, run.train_eval_accuracy, run.test_accuracy});
    curves.push_back({run.spec.label, &run.history});
    labels.push_back(run.spec.label);
  }
  std::fprintf(out, "\nDropout study: %s, %d epochs each, seed %llu\n",
               architecture(options.model).c_str(), options.train.epochs,
               static_cast<unsigned long long>(options.seed));
  print_study_table(out, rows);

  std::string csv = options.history_path;
  if (csv.empty() && !options.plot_path.empty()) csv = with_extension(options.plot_path, ".csv");
  if (!csv.empty()) {
    write_study_csv(csv, curves);
    std::fprintf(out, "\nCurves: %s\n", csv.c_str());
  }
  if (!options.plot_path.empty()) {
    const std::string title =
        "Fashion-MNIST, dropout study (" + std::to_string(options.train.epochs) + " epochs)";
    const std::string image = plot_study(csv, options.plot_path, labels, title,
                                         static_cast<std::size_t>(options.train.epochs));
    if (!image.empty()) std::fprintf(out, "Figure: %s\n", image.c_str());
  }
  const double wall =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  print_timing(out, train_seconds, images, wall);
  return 0;
}

}  // namespace fmnist
