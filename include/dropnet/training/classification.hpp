#pragma once
// Classification helpers: the predicted class of each sample, and a confusion matrix with
// per-class precision, recall and F1.
//
//   Labels predicted = predict_classes(model, x_test);
//   ConfusionMatrix confusion = confusion_matrix(y_test, predicted, 10);
//   confusion.f1(3), confusion.macro_f1(), confusion.accuracy()
//
// precision(c) = TP / (TP + FP), recall(c) = TP / (TP + FN), F1 = 2 P R / (P + R), each 0 when
// its denominator is 0 (the convention of scikit-learn's zero_division=0).

#include <string>

#include "../core/error.hpp"
#include "../core/types.hpp"
#include "evaluate.hpp"

namespace dropnet {

/// The index of the largest entry of each column of `scores` (outputs x samples), the first
/// one on ties; for a single row (a binary model's logit), 1 where the score is > 0, else 0.
template <class X>
Labels argmax(const Eigen::MatrixBase<X>& scores) {
  Labels classes(scores.cols());
  for (Index j = 0; j < scores.cols(); ++j) {
    Index best = 0;
    if (scores.rows() == 1)
      best = scores(0, j) > 0 ? 1 : 0;
    else
      scores.col(j).maxCoeff(&best);
    classes(j) = static_cast<Labels::Scalar>(best);
  }
  return classes;
}

/// argmax of the model's outputs on `x` in eval mode (as predict computes them).
template <class T>
Labels predict_classes(Sequential<T>& model, const detail::ViewArg<T>& x,
                       Index batch_size = 1024) {
  return argmax(predict(model, x, batch_size));
}

/// counts(t, p): samples of true class t predicted as class p; see the file comment.
class ConfusionMatrix {
 public:
  /// The tallies, classes x classes (rows: true class, columns: predicted class).
  Eigen::Matrix<long, Eigen::Dynamic, Eigen::Dynamic> counts;

  /// All zeros for `classes` > 0 classes. Throws InvalidArgument otherwise.
  explicit ConfusionMatrix(Index classes) {
    detail::require(classes > 0, "ConfusionMatrix", "classes must be > 0, got ", classes);
    counts.setZero(classes, classes);
  }

  /// Number of classes.
  Index classes() const { return counts.rows(); }
  /// Samples tallied.
  long total() const { return counts.sum(); }
  /// Samples predicted as their true class.
  long correct() const { return counts.diagonal().sum(); }
  /// correct() / total() (0 when empty).
  double accuracy() const { return ratio(correct(), total()); }
  /// Samples whose true class is `c` (TP + FN).
  long class_total(Index c) const { return counts.row(c).sum(); }
  /// Samples predicted as `c` (TP + FP).
  long predicted_total(Index c) const { return counts.col(c).sum(); }
  /// TP / (TP + FP) for class c.
  double precision(Index c) const { return ratio(counts(c, c), predicted_total(c)); }
  /// TP / (TP + FN) for class c: the class's accuracy.
  double recall(Index c) const { return ratio(counts(c, c), class_total(c)); }
  /// 2 P R / (P + R) for class c.
  double f1(Index c) const {
    const double p = precision(c), r = recall(c);
    return p + r > 0 ? 2 * p * r / (p + r) : 0.0;
  }
  /// The mean of f1 over the classes (unweighted).
  double macro_f1() const {
    double sum = 0.0;
    for (Index c = 0; c < classes(); ++c) sum += f1(c);
    return sum / static_cast<double>(classes());
  }
  /// The class most often predicted for true class c, other than c (the first on ties).
  Index most_confused_with(Index c) const {
    Index worst = c == 0 ? 1 : 0;
    for (Index p = 0; p < classes(); ++p)
      if (p != c && counts(c, p) > counts(c, worst)) worst = p;
    return worst;
  }

 private:
  static double ratio(long part, long whole) {
    return whole > 0 ? static_cast<double>(part) / static_cast<double>(whole) : 0.0;
  }
};

/// Tallies predicted(j) against truth(j). Throws InvalidArgument naming the sample when the
/// lengths differ or a label is outside [0, classes).
inline ConfusionMatrix confusion_matrix(const Labels& truth, const Labels& predicted,
                                        Index classes) {
  detail::require(truth.size() == predicted.size(), "confusion_matrix", "truth has ",
                  truth.size(), " labels but predicted has ", predicted.size());
  ConfusionMatrix m(classes);
  for (Index j = 0; j < truth.size(); ++j) {
    detail::require(truth(j) >= 0 && truth(j) < classes && predicted(j) >= 0 &&
                        predicted(j) < classes,
                    "confusion_matrix", "sample ", j, ": labels ", truth(j), " (true) and ",
                    predicted(j), " (predicted) must be in [0, ", classes, ")");
    ++m.counts(truth(j), predicted(j));
  }
  return m;
}

}  // namespace dropnet
