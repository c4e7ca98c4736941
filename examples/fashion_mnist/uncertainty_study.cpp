#include "uncertainty_study.hpp"

#include <chrono>
#include <cmath>
#include <dropnet/dropnet.hpp>
#include <fstream>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "model.hpp"
#include "plot.hpp"
#include "progress.hpp"
#include "report.hpp"
#include "training.hpp"

namespace fmnist {

namespace {

using dropnet::Matrix;
using dropnet::McPrediction;
using dropnet::Sequential;
using Prediction = McPrediction<float>;

constexpr int mc_passes = 30;
constexpr int ensemble_size = 5;

/// The test images and two shifted copies no training image looks like.
struct Sets {
  const dropnet::LabeledImages<float>& test;
  Matrix<float> rotated;   ///< each image turned by 90 degrees (transposed)
  Matrix<float> inverted;  ///< -x: under the (x - 0.5) / 0.5 normalization, 1 - pixel
};

Matrix<float> rotated(const dropnet::LabeledImages<float>& set) {
  Matrix<float> out(set.images.rows(), set.images.cols());
  for (dropnet::Index j = 0; j < set.images.cols(); ++j)
    Eigen::Map<Matrix<float>>(out.col(j).data(), set.height, set.width) =
        Eigen::Map<const Matrix<float>>(set.images.col(j).data(), set.height, set.width)
            .transpose();
  return out;
}

/// One method's predictions on the three sets.
struct Method {
  std::string label;
  Prediction test, rotated, inverted;
};

using Predictor = std::function<Prediction(const Matrix<float>&)>;

Method predict_all(const std::string& label, const Sets& sets, const Predictor& predict) {
  return {label, predict(sets.test.images), predict(sets.rotated), predict(sets.inverted)};
}

/// AUROC of the predictive entropy for telling shifted images (positives) from test images.
double ood_auroc(const Prediction& in, const Prediction& out) {
  Eigen::VectorXd score(in.predictive_entropy.size() + out.predictive_entropy.size());
  score << in.predictive_entropy.cast<double>(), out.predictive_entropy.cast<double>();
  std::vector<bool> shifted(static_cast<std::size_t>(score.size()), false);
  std::fill(shifted.begin() + in.predictive_entropy.size(), shifted.end(), true);
  return dropnet::auroc(score, shifted);
}

void print_table(std::FILE* out, const std::vector<Method>& methods, const dropnet::Labels& y) {
  std::fprintf(out, "\n%-26s %8s %7s %7s %7s %9s | %8s %8s %8s | %9s %9s\n", "method", "accuracy",
               "NLL", "Brier", "ECE", "AUROC err", "H test", "H rot", "H inv", "AUROC rot",
               "AUROC inv");
  for (const Method& m : methods) {
    const auto& p = m.test.probabilities;
    std::fprintf(out, "%-26s %8.4f %7.4f %7.4f %7.4f %9.4f | %8.3f %8.3f %8.3f | %9.4f %9.4f\n",
                 m.label.c_str(), dropnet::accuracy(p, y), dropnet::nll(p, y),
                 dropnet::brier_score(p, y), dropnet::calibration(p, y).ece,
                 dropnet::misclassification_auroc(p, y, m.test.predictive_entropy),
                 m.test.predictive_entropy.mean(), m.rotated.predictive_entropy.mean(),
                 m.inverted.predictive_entropy.mean(), ood_auroc(m.test, m.rotated),
                 ood_auroc(m.test, m.inverted));
  }
  std::fprintf(out,
               "ECE: 15 equal-width bins. AUROC err: predictive entropy telling misclassified from "
               "correct test images.\nH: mean predictive entropy (nats) on the test, rotated and "
               "inverted images; AUROC rot/inv: entropy telling them from the test images.\n");
}

/// bin, then per method its bins' mean confidence and accuracy (empty where a bin is empty).
void write_reliability_csv(const std::string& path, const std::vector<Method>& methods,
                           const dropnet::Labels& y) {
  std::vector<dropnet::Calibration> c;
  for (const Method& m : methods) c.push_back(dropnet::calibration(m.test.probabilities, y));
  std::ofstream csv(path);
  if (!csv) throw std::runtime_error("cannot write '" + path + "'");
  csv << "bin";
  for (const Method& m : methods) csv << ',' << m.label << " confidence," << m.label << " accuracy";
  csv << '\n';
  for (std::size_t b = 0; b < c[0].bins.size(); ++b) {
    csv << b;
    for (const auto& cal : c) {
      const auto& bin = cal.bins[b];
      if (bin.count == 0)
        csv << ",,";
      else
        csv << ',' << bin.mean_confidence << ',' << bin.accuracy;
    }
    csv << '\n';
  }
}

std::string plot_reliability(const std::string& csv, const std::string& image,
                             const std::vector<Method>& methods) {
  std::string s =
      "set datafile separator ','\nset title 'Reliability diagram, Fashion-MNIST test set (15 "
      "bins)'\nset xlabel 'Confidence (mean of the bin)'\nset ylabel 'Accuracy'\n"
      "set grid\nset key top left\nset xrange [0.1:1]\nset yrange [0:1]\nplot x with lines dt 2 "
      "lc rgb '#888888' title 'perfect calibration'";
  for (std::size_t m = 0; m < methods.size(); ++m)
    s += ", '" + csv + "' skip 1 using " + std::to_string(2 + 2 * m) + ":" +
         std::to_string(3 + 2 * m) + " with linespoints lw 2 pt 7 title '" + methods[m].label + "'";
  return plot_commands(image, s + "\n");
}

/// The notebook's MLP with every Dropout replaced by Concrete dropout on the next Dense's
/// input, at Gal et al.'s settings for N training images: prior length-scale 1e-4,
/// weight_regularizer l^2 / N, dropout_regularizer 2 / N, initial p 0.1.
Sequential<float> concrete_model(const ModelSpec& spec, double n, dropnet::Generator& gen) {
  dropnet::ConcreteDropoutOptions o;
  o.weight_regularizer = 1e-8 / n;
  o.dropout_regularizer = 2.0 / n;
  Sequential<float> model(784);
  dropnet::Index in = 784;
  for (const auto width : spec.hidden) {
    model.add(dropnet::ConcreteDropoutDense<float, dropnet::ReLU>(in, width, gen, o));
    in = width;
  }
  model.add(dropnet::ConcreteDropoutDense<float>(in, class_count, gen, o));
  return model;
}

std::string learned_rates(Sequential<float>& model) {
  std::string rates;
  for (dropnet::Index i = 0; i < model.size(); ++i) {
    const auto* layer =
        dynamic_cast<const dropnet::ConcreteDropoutDense<float, dropnet::ReLU>*>(&model.layer(i));
    const double p =
        layer ? layer->p()
              : dynamic_cast<const dropnet::ConcreteDropoutDense<float>&>(model.layer(i)).p();
    char text[16];
    std::snprintf(text, sizeof text, "%s%.3f", rates.empty() ? "" : "/", p);
    rates += text;
  }
  return rates;
}

Prediction mc(Sequential<float>& model, const Matrix<float>& x, dropnet::Generator& gen) {
  dropnet::McDropoutOptions o;
  o.outputs = dropnet::McOutputs::logits;
  return dropnet::mc_predict(model, x, mc_passes, gen, o);
}

}  // namespace

int run_uncertainty_study(const Options& options, Data& data, std::FILE* out) {
  const auto start = std::chrono::steady_clock::now();
  const double cpu_start = cpu_seconds();
  ModelSpec spec = options.model;
  if (spec.dropout.empty()) {  // MC dropout needs dropout: the notebook's rates
    spec.dropout.assign(spec.hidden.size() + 1, 0.4);
    spec.dropout[0] = 0.25;
  }
  const Sets sets{data.test, rotated(data.test), -data.test.images};
  std::fprintf(out, "Uncertainty study: %s, %d epochs per model, seed %llu\n",
               describe(spec).c_str(), options.train.epochs,
               static_cast<unsigned long long>(options.seed));

  int member = 0;
  auto train_member = [&](Sequential<float>& model, dropnet::Generator& gen) {
    Progress progress(out, progress_style(options.progress),
                      "member " + std::to_string(++member));
    train(model, options.train, data, gen, {&progress});
  };
  auto members = dropnet::train_ensemble<float>(
      ensemble_size, options.seed, [&](dropnet::Generator& gen) { return build_model(spec, gen); },
      train_member);
  std::vector<Method> methods;
  methods.push_back(predict_all("ensemble of 5", sets, [&](const Matrix<float>& x) {
    return dropnet::ensemble_predict(members, x);
  }));

  // Member 0 alone is the plain network; MC dropout and temperature scaling start from it.
  std::vector<Sequential<float>> one;
  one.push_back(std::move(members[0]));
  methods.insert(methods.begin(), predict_all("plain", sets, [&](const Matrix<float>& x) {
                   return dropnet::ensemble_predict(one, x);
                 }));
  dropnet::Generator mc_gen(options.seed + 1000);
  methods.push_back(predict_all("MC dropout (30)", sets,
                                [&](const Matrix<float>& x) { return mc(one[0], x, mc_gen); }));
  const auto fit =
      dropnet::fit_temperature(dropnet::predict(one[0], data.valid.images), data.valid.labels);
  one[0].add(dropnet::TemperatureScaling<float>(fit.temperature));
  methods.insert(
      methods.begin() + 1,
      predict_all("temperature T=" + std::to_string(fit.temperature).substr(0, 4), sets,
                  [&](const Matrix<float>& x) { return dropnet::ensemble_predict(one, x); }));
  std::fprintf(out,
               "\nTemperature fitted on the validation set: T = %.4f (NLL %.4f -> %.4f, %d "
               "evaluations%s)\n",
               fit.temperature, fit.nll_before, fit.nll_after, fit.evaluations,
               fit.at_bound ? ", at the bracket's end" : "");

  if (spec.kind == "mlp") {
    dropnet::Generator gen(options.seed + 2000);
    Sequential<float> concrete = concrete_model(spec, double(data.train.size()), gen);
    train_member(concrete, gen);
    std::fprintf(out, "Concrete dropout: learned rates %s (input first)\n",
                 learned_rates(concrete).c_str());
    methods.push_back(predict_all("Concrete dropout MC (30)", sets,
                                  [&](const Matrix<float>& x) { return mc(concrete, x, gen); }));
  }

  print_table(out, methods, data.test.labels);
  if (!options.plot_path.empty()) {
    const std::string csv = with_extension(options.plot_path, ".csv");
    write_reliability_csv(csv, methods, data.test.labels);
    std::fprintf(out, "\nReliability bins: %s\n", csv.c_str());
    const std::string image = plot_reliability(csv, options.plot_path, methods);
    if (!image.empty()) std::fprintf(out, "Figure: %s\n", image.c_str());
  }
  std::fprintf(out, "\nWhole study: %.0f s wall, %.0f s CPU\n",
               std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(),
               cpu_seconds() - cpu_start);
  return 0;
}

}  // namespace fmnist
