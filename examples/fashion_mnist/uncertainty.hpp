#pragma once
// Monte-Carlo dropout on the test set (Gal & Ghahramani 2016): is the model's uncertainty
// meaningful? Sort the test images by predictive entropy; if it is, the most certain 90% are
// classified far better than the least certain 10%.

#include <cstdio>
#include <dropnet/core/generator.hpp>
#include <dropnet/io/idx.hpp>
#include <dropnet/model/sequential.hpp>

namespace fmnist {

struct UncertaintyReport {
  int passes = 0;
  double mc_accuracy = 0.0;         ///< argmax of the mean probabilities, all images
  double certain_accuracy = 0.0;    ///< on the 90% with the lowest predictive entropy
  double uncertain_accuracy = 0.0;  ///< on the 10% with the highest
  long certain = 0, uncertain = 0;  ///< image counts of the two groups
  double entropy_cut = 0.0;         ///< entropy (nats) separating them
  double entropy_correct = 0.0;     ///< mean entropy of correctly classified images
  double entropy_wrong = 0.0;       ///< mean entropy of misclassified images
};

/// T = `passes` stochastic forward passes (dropout on) over `test`, drawing masks from `gen`.
/// Throws dropnet::InvalidArgument if the model has no dropout.
UncertaintyReport mc_uncertainty(dropnet::Sequential<float>& model,
                                 const dropnet::LabeledImages<float>& test, int passes,
                                 dropnet::Generator& gen);

void print_uncertainty(std::FILE* out, const UncertaintyReport& report, double eval_accuracy);

}  // namespace fmnist
