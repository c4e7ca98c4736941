#include "uncertainty.hpp"

#include <algorithm>
#include <cmath>
#include <dropnet/training/mc_dropout.hpp>
#include <numeric>
#include <vector>

namespace fmnist {

using dropnet::Index;

UncertaintyReport mc_uncertainty(dropnet::Sequential<float>& model,
                                 const dropnet::LabeledImages<float>& test, int passes,
                                 dropnet::Generator& gen) {
  dropnet::McDropoutOptions options;
  options.outputs = dropnet::McOutputs::logits;
  const auto prediction = dropnet::mc_predict(model, test.images, passes, gen, options);
  const Index n = test.size();

  std::vector<bool> correct(static_cast<std::size_t>(n));
  for (Index j = 0; j < n; ++j) {
    Index predicted = 0;
    prediction.probabilities.col(j).maxCoeff(&predicted);
    correct[static_cast<std::size_t>(j)] = predicted == test.labels(j);
  }
  // Most certain first; ties keep the test set's order, so the split is reproducible.
  std::vector<Index> order(static_cast<std::size_t>(n));
  std::iota(order.begin(), order.end(), Index{0});
  const auto& entropy = prediction.predictive_entropy;
  std::stable_sort(order.begin(), order.end(),
                   [&](Index a, Index b) { return entropy(a) < entropy(b); });

  UncertaintyReport r;
  r.passes = passes;
  r.certain = static_cast<long>(n * 9 / 10);
  r.uncertain = static_cast<long>(n) - r.certain;
  long hits_certain = 0, hits_uncertain = 0, wrong = 0;
  double sum_correct = 0.0, sum_wrong = 0.0;
  for (std::size_t rank = 0; rank < order.size(); ++rank) {
    const Index j = order[rank];
    const bool hit = correct[static_cast<std::size_t>(j)];
    (static_cast<long>(rank) < r.certain ? hits_certain : hits_uncertain) += hit;
    (hit ? sum_correct : sum_wrong) += static_cast<double>(entropy(j));
    wrong += !hit;
  }
  r.entropy_cut = r.uncertain > 0
                      ? static_cast<double>(entropy(order[static_cast<std::size_t>(r.certain)]))
                      : 0.0;
  r.mc_accuracy = static_cast<double>(hits_certain + hits_uncertain) / static_cast<double>(n);
  r.certain_accuracy =
      r.certain > 0 ? static_cast<double>(hits_certain) / static_cast<double>(r.certain) : 0.0;
  r.uncertain_accuracy =
      r.uncertain > 0 ? static_cast<double>(hits_uncertain) / static_cast<double>(r.uncertain)
                      : 0.0;
  const long right = static_cast<long>(n) - wrong;
  r.entropy_correct = right > 0 ? sum_correct / static_cast<double>(right) : 0.0;
  r.entropy_wrong = wrong > 0 ? sum_wrong / static_cast<double>(wrong) : 0.0;
  return r;
}

void print_uncertainty(std::FILE* out, const UncertaintyReport& r, double eval_accuracy) {
  std::fprintf(out, "\nMonte-Carlo dropout, T = %d passes per test image\n", r.passes);
  std::fprintf(out, "  accuracy: MC mean %.4f (deterministic eval %.4f)\n", r.mc_accuracy,
               eval_accuracy);
  std::fprintf(out, "  most certain 90%%  (%ld images, entropy < %.3f nats): accuracy %.4f\n",
               r.certain, r.entropy_cut, r.certain_accuracy);
  std::fprintf(out, "  least certain 10%% (%ld images):                      accuracy %.4f\n",
               r.uncertain, r.uncertain_accuracy);
  std::fprintf(out, "  mean predictive entropy: %.3f nats when right, %.3f when wrong (max %.3f)\n",
               r.entropy_correct, r.entropy_wrong, std::log(10.0));
}

}  // namespace fmnist
