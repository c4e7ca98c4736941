#pragma once
// Metrics on class probabilities: can a classifier's confidence be trusted?
//
// Every function takes `probabilities` (classes x samples, each column a distribution: a model's
// softmax, mc_predict's mean or an ensemble's mean) and integer `labels` (one per column). With
// p_j the column of sample j, y_j its label, yhat_j = argmax_k p_jk (first maximum on ties) and
// c_j = p_j,yhat_j its confidence:
//   calibration        bins of the confidences, each with count n_b, mean confidence conf_b and
//                      accuracy acc_b (fraction with yhat = y);
//                      ECE = sum_b (n_b / n) |acc_b - conf_b|,  MCE = max_b |acc_b - conf_b|
//                      over non-empty bins (Guo et al. 2017). Equal-width bins are
//                      ((b-1)/B, b/B]; equal-mass bins hold the sorted confidences in B runs of
//                      floor or ceil(n / B) samples.
//   nll                (1/n) sum_j -log max(p_j,y_j, 1e-12)  (the floor keeps one underflowed
//                      probability from making the mean infinite; sklearn's log_loss clips too)
//   brier_score        (1/n) sum_j sum_k (p_jk - [k = y_j])^2, in [0, 2] (Brier 1950, summed
//                      over classes as in Lakshminarayanan et al. 2017)
//   accuracy_coverage  selective prediction: keep the samples whose uncertainty u_j is at most a
//                      threshold; one point (coverage, accuracy) per distinct u, lowest first
//   auroc              P(score of a random positive > score of a random negative), ties 1/2
//                      (the Mann-Whitney statistic with average ranks)
//   misclassification_auroc   auroc of u with the misclassified samples as positives: 1 when
//                      every mistake is more uncertain than every correct prediction, 0.5 chance
// Throws InvalidArgument when the sizes disagree, a set is empty, a label is outside
// [0, classes) or bins < 1. auroc returns NaN when there are no positives or no negatives (a
// classifier without mistakes has no misclassification AUROC).

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

#include "../core/error.hpp"
#include "../core/types.hpp"

namespace dropnet {

/// How calibration() groups the confidences.
enum class Binning {
  equal_width,  ///< B intervals of width 1/B (the usual reliability diagram)
  equal_mass,   ///< B runs of equally many samples, sorted by confidence (adaptive ECE)
};

/// Binning of calibration(): 15 equal-width bins by default, as Guo et al. 2017.
struct CalibrationOptions {
  int bins = 15;                           ///< B >= 1
  Binning binning = Binning::equal_width;  ///< equal-width or equal-mass bins
};

/// One bar of a reliability diagram.
struct ReliabilityBin {
  double lower = 0.0;            ///< equal-width: the interval (lower, upper]; equal-mass: the
  double upper = 0.0;            ///< smallest and largest confidence in the bin
  Index count = 0;               ///< samples in the bin
  double mean_confidence = 0.0;  ///< mean of their confidences (0 when empty)
  double accuracy = 0.0;         ///< fraction of them classified correctly (0 when empty)
};

/// calibration()'s result: the diagram's bins and the two errors computed from them.
struct Calibration {
  std::vector<ReliabilityBin> bins;  ///< B bins, lowest confidence first (empty ones included)
  double ece = 0.0;                  ///< expected calibration error, in [0, 1]
  double mce = 0.0;                  ///< maximum calibration error over non-empty bins
};

/// One point of the accuracy-coverage curve.
struct CoveragePoint {
  double threshold = 0.0;  ///< keep the samples with uncertainty <= threshold
  double coverage = 0.0;   ///< fraction of samples kept, in (0, 1]
  double accuracy = 0.0;   ///< accuracy on the kept samples
};

namespace detail {

/// Checks that `probabilities` and `labels` describe the same non-empty set of samples.
template <class T>
void require_probabilities(const char* where, const Matrix<T>& probabilities,
                           const Labels& labels) {
  require(probabilities.cols() > 0 && probabilities.rows() > 0, where, "empty probabilities (",
          probabilities.rows(), "x", probabilities.cols(), ")");
  require(labels.size() == probabilities.cols(), where, labels.size(), " labels for ",
          probabilities.cols(), " samples (columns)");
  for (Index j = 0; j < labels.size(); ++j)
    require(labels(j) >= 0 && labels(j) < probabilities.rows(), where, "label ", labels(j),
            " of sample ", j, " is outside [0, ", probabilities.rows(), ")");
}

/// Sample indices sorted by `key`, ascending; ties keep index order (reproducible).
template <class Key>
std::vector<Index> order_by(const Key& key) {
  std::vector<Index> order(static_cast<std::size_t>(key.size()));
  std::iota(order.begin(), order.end(), Index{0});
  std::stable_sort(order.begin(), order.end(), [&](Index a, Index b) { return key(a) < key(b); });
  return order;
}

/// Adds sample j to bin b (sums first; finish_bins turns them into means).
inline void add_to_bin(ReliabilityBin& bin, double confidence, bool correct) {
  ++bin.count;
  bin.mean_confidence += confidence;
  bin.accuracy += correct ? 1.0 : 0.0;
}

inline Calibration finish_bins(std::vector<ReliabilityBin> bins, Index samples) {
  Calibration result;
  for (ReliabilityBin& bin : bins) {
    if (bin.count == 0) continue;
    bin.mean_confidence /= static_cast<double>(bin.count);
    bin.accuracy /= static_cast<double>(bin.count);
    const double gap = std::abs(bin.accuracy - bin.mean_confidence);
    result.ece += static_cast<double>(bin.count) / static_cast<double>(samples) * gap;
    result.mce = std::max(result.mce, gap);
  }
  result.bins = std::move(bins);
  return result;
}

}  // namespace detail

/// argmax_k of each column (the first maximum on ties): the predicted classes.
template <class T>
Labels predicted_classes(const Matrix<T>& probabilities) {
  Labels predicted(probabilities.cols());
  for (Index j = 0; j < probabilities.cols(); ++j) {
    Index k = 0;
    probabilities.col(j).maxCoeff(&k);
    predicted(j) = static_cast<Labels::Scalar>(k);
  }
  return predicted;
}

/// max_k p_jk of each column: the confidence of the predicted class.
template <class T>
Vector<double> confidences(const Matrix<T>& probabilities) {
  return probabilities.colwise().maxCoeff().transpose().template cast<double>();
}

/// Reliability-diagram bins, ECE and MCE of the confidences (see the header comment).
template <class T>
Calibration calibration(const Matrix<T>& probabilities, const Labels& labels,
                        const CalibrationOptions& options = {}) {
  detail::require_probabilities("calibration", probabilities, labels);
  detail::require(options.bins >= 1, "calibration", "bins must be >= 1, got ", options.bins);
  const Index n = probabilities.cols();
  const auto b_count = static_cast<std::size_t>(options.bins);
  const Vector<double> confidence = confidences(probabilities);
  const Labels predicted = predicted_classes(probabilities);
  std::vector<ReliabilityBin> bins(b_count);
  if (options.binning == Binning::equal_width) {
    for (std::size_t b = 0; b < b_count; ++b) {
      bins[b].lower = static_cast<double>(b) / static_cast<double>(b_count);
      bins[b].upper = static_cast<double>(b + 1) / static_cast<double>(b_count);
    }
    for (Index j = 0; j < n; ++j) {
      // Bin b holds ((b-1)/B, b/B] (1-based): ceil(c B) - 1, clamped for c = 0.
      const double scaled = std::ceil(confidence(j) * static_cast<double>(b_count)) - 1.0;
      const auto b =
          static_cast<std::size_t>(std::clamp(scaled, 0.0, static_cast<double>(b_count - 1)));
      detail::add_to_bin(bins[b], confidence(j), predicted(j) == labels(j));
    }
  } else {
    const std::vector<Index> order = detail::order_by(confidence);
    for (std::size_t b = 0; b < b_count; ++b) {
      // Samples [b n / B, (b+1) n / B) of the sorted order: sizes differ by at most one.
      const Index first = static_cast<Index>(b) * n / options.bins;
      const Index last = static_cast<Index>(b + 1) * n / options.bins;
      if (first == last) continue;
      bins[b].lower = confidence(order[static_cast<std::size_t>(first)]);
      bins[b].upper = confidence(order[static_cast<std::size_t>(last - 1)]);
      for (Index r = first; r < last; ++r) {
        const Index j = order[static_cast<std::size_t>(r)];
        detail::add_to_bin(bins[b], confidence(j), predicted(j) == labels(j));
      }
    }
  }
  return detail::finish_bins(std::move(bins), n);
}

/// Mean negative log-likelihood of the labels, in nats (see the header comment).
template <class T>
double nll(const Matrix<T>& probabilities, const Labels& labels) {
  detail::require_probabilities("nll", probabilities, labels);
  double total = 0.0;
  for (Index j = 0; j < labels.size(); ++j)
    total -= std::log(std::max(static_cast<double>(probabilities(labels(j), j)), 1e-12));
  return total / static_cast<double>(labels.size());
}

/// Mean over samples of the squared distance between p_j and the one-hot label, in [0, 2].
template <class T>
double brier_score(const Matrix<T>& probabilities, const Labels& labels) {
  detail::require_probabilities("brier_score", probabilities, labels);
  double total = 0.0;
  for (Index j = 0; j < labels.size(); ++j) {
    const double p_true = static_cast<double>(probabilities(labels(j), j));
    // sum_k (p_k - [k = y])^2 = sum_k p_k^2 - 2 p_y + 1.
    total += probabilities.col(j).template cast<double>().squaredNorm() - 2.0 * p_true + 1.0;
  }
  return total / static_cast<double>(labels.size());
}

/// The accuracy-coverage curve of selective prediction: sort by `uncertainty` (one per sample,
/// lower = more certain), then for each distinct value u the coverage and accuracy of the samples
/// with uncertainty <= u. The last point has coverage 1 and the plain accuracy.
template <class T, class U>
std::vector<CoveragePoint> accuracy_coverage(const Matrix<T>& probabilities, const Labels& labels,
                                             const Eigen::MatrixBase<U>& uncertainty) {
  detail::require_probabilities("accuracy_coverage", probabilities, labels);
  detail::require(uncertainty.size() == labels.size(), "accuracy_coverage", uncertainty.size(),
                  " uncertainties for ", labels.size(), " samples");
  const Vector<double> u = uncertainty.derived().template cast<double>();
  const Labels predicted = predicted_classes(probabilities);
  const std::vector<Index> order = detail::order_by(u);
  const auto n = static_cast<double>(labels.size());
  std::vector<CoveragePoint> curve;
  Index correct = 0;
  for (std::size_t r = 0; r < order.size(); ++r) {
    const Index j = order[r];
    correct += predicted(j) == labels(j) ? 1 : 0;
    // Samples with equal uncertainty cannot be separated by a threshold: one point for all.
    if (r + 1 < order.size() && u(order[r + 1]) == u(j)) continue;
    const auto kept = static_cast<double>(r + 1);
    curve.push_back({u(j), kept / n, static_cast<double>(correct) / kept});
  }
  return curve;
}

/// Area under the ROC curve of `score` for telling `positive` samples (true) from the others:
/// the Mann-Whitney U / (positives x negatives) with average ranks for ties. NaN when either
/// class is empty. Throws InvalidArgument when the sizes differ or there are no samples.
template <class S>
double auroc(const Eigen::MatrixBase<S>& score, const std::vector<bool>& positive) {
  detail::require(score.size() > 0 && static_cast<std::size_t>(score.size()) == positive.size(),
                  "auroc", score.size(), " scores for ", positive.size(), " labels");
  const Vector<double> s = score.derived().template cast<double>();
  const std::vector<Index> order = detail::order_by(s);
  double positive_rank_sum = 0.0;
  Index positives = 0;
  for (std::size_t first = 0; first < order.size();) {
    std::size_t last = first + 1;  // [first, last) share one score: each gets their mean rank
    while (last < order.size() && s(order[last]) == s(order[first])) ++last;
    const double mean_rank = 0.5 * static_cast<double>(first + 1 + last);
    for (std::size_t r = first; r < last; ++r)
      if (positive[static_cast<std::size_t>(order[r])]) {
        positive_rank_sum += mean_rank;
        ++positives;
      }
    first = last;
  }
  const auto p = static_cast<double>(positives);
  const double negatives = static_cast<double>(order.size()) - p;
  if (positives == 0 || negatives == 0) return std::numeric_limits<double>::quiet_NaN();
  return (positive_rank_sum - p * (p + 1) / 2) / (p * negatives);
}

/// auroc of `uncertainty` with the misclassified samples (argmax != label) as positives.
template <class T, class U>
double misclassification_auroc(const Matrix<T>& probabilities, const Labels& labels,
                               const Eigen::MatrixBase<U>& uncertainty) {
  detail::require_probabilities("misclassification_auroc", probabilities, labels);
  const Labels predicted = predicted_classes(probabilities);
  std::vector<bool> wrong(static_cast<std::size_t>(labels.size()));
  for (Index j = 0; j < labels.size(); ++j)
    wrong[static_cast<std::size_t>(j)] = predicted(j) != labels(j);
  return auroc(uncertainty, wrong);
}

/// Fraction of samples whose argmax is their label.
template <class T>
double accuracy(const Matrix<T>& probabilities, const Labels& labels) {
  detail::require_probabilities("accuracy", probabilities, labels);
  return static_cast<double>((predicted_classes(probabilities).array() == labels.array()).count()) /
         static_cast<double>(labels.size());
}

}  // namespace dropnet
