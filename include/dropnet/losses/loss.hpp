#pragma once
// Loss<T>: the contract of every loss.
//
// compute(output, target, grad) returns the mean loss over the batch and, when `grad` is not
// null, writes d loss / d output into it (same shape as output). Targets are either a dense
// matrix (one column per sample) or integer class labels (one per sample).
// correct(output, target) counts the samples a classifier got right, for accuracy.

#include <cmath>
#include <string>

#include "../core/error.hpp"
#include "../core/types.hpp"

namespace dropnet {

/// Base class of every loss: mean loss over a batch and its gradient wrt the model's output
/// (contract in the file comment above).
template <class T>
class Loss {
 public:
  virtual ~Loss() = default;
  /// The loss's name in messages and model files, e.g. "SoftmaxCrossEntropy".
  virtual std::string name() const = 0;

  /// The loss for dense targets (output's shape, one column per sample), averaged as the loss
  /// defines it (over samples or over elements); when grad is not null, writes d loss / d output
  /// into it (output's shape). Throws InvalidArgument naming the loss on an empty batch or a
  /// shape mismatch.
  virtual T compute(const Matrix<T>& output, const Matrix<T>& target, Matrix<T>* grad) const = 0;
  /// The loss for integer class labels (one per column of output), averaged as above; when grad
  /// is not null, writes d loss / d output into it (output's shape). Throws InvalidArgument
  /// naming the loss on an empty batch, a label count other than output.cols() or a label out of
  /// range.
  virtual T compute(const Matrix<T>& output, const Labels& labels, Matrix<T>* grad) const = 0;

  /// Correct predictions: argmax against the label (or the target's argmax) for several
  /// outputs; for a single output, the output against decision_threshold() and the target
  /// against 0.5.
  Index correct(const Matrix<T>& output, const Labels& labels) const {
    check(labels.size() == output.cols(), "got ", labels.size(), " labels for a batch of ",
          output.cols(), " samples");
    Index hits = 0;
    for (Index j = 0; j < output.cols(); ++j) hits += predicted_class(output, j) == labels(j);
    return hits;
  }
  /// Correct predictions against dense targets: argmax of each target column, or target > 0.5 for a
  /// single output. Throws InvalidArgument if the column counts differ.
  Index correct(const Matrix<T>& output, const Matrix<T>& target) const {
    check(target.cols() == output.cols(), "got ", target.cols(), " targets for a batch of ",
          output.cols(), " samples");
    Index hits = 0;
    for (Index j = 0; j < output.cols(); ++j) {
      Index truth = 0;
      if (target.rows() == 1) {
        truth = target(0, j) > T(0.5) ? 1 : 0;
      } else {
        target.col(j).maxCoeff(&truth);
      }
      hits += predicted_class(output, j) == truth;
    }
    return hits;
  }

  /// Throws InvalidArgument naming `where`, the loss and the first bad sample unless every
  /// target is one this loss accepts (finite; losses narrow it, e.g. [0, 1] for binary cross-
  /// entropy). fit and evaluate call it on the whole dataset before the first batch.
  virtual void require_targets(const Matrix<T>& target, const std::string& where) const {
    require_targets_where(target, where, "finite", [](T t) { return std::isfinite(t); });
  }
  /// Labels: their range depends on the model's outputs, which fit checks.
  void require_targets(const Labels&, const std::string&) const {}

 protected:
  /// Throws unless `accepted(t)` holds for every target t; `what` describes the accepted values.
  template <class Accepted>
  void require_targets_where(const Matrix<T>& target, const std::string& where, const char* what,
                             Accepted accepted) const {
    for (Index j = 0; j < target.cols(); ++j)
      for (Index i = 0; i < target.rows(); ++i)
        if (!accepted(target(i, j)))
          throw InvalidArgument(detail::concat(where, ": ", name(), ": target ", target(i, j),
                                               " (row ", i, " of sample ", j, ") is not ", what));
  }

  /// Throws InvalidArgument("<loss name>: <parts>") unless `condition` holds; the name (a
  /// string) is built only on failure, so a passing check allocates nothing.
  template <class... Parts>
  void check(bool condition, const Parts&... parts) const {
    if (!condition) throw InvalidArgument(detail::concat(name(), ": ", parts...));
  }

  /// The output value that separates class 0 from class 1 for a single-output model.
  virtual T decision_threshold() const { return T(0.5); }

  /// The class predicted for sample `column`: argmax of the column, or, for a single output,
  /// whether it exceeds decision_threshold().
  Index predicted_class(const Matrix<T>& output, Index column) const {
    if (output.rows() == 1) return output(0, column) > decision_threshold() ? 1 : 0;
    Index best = 0;
    output.col(column).maxCoeff(&best);
    return best;
  }

  /// Throws InvalidArgument naming the loss on an empty batch or unless target has output's shape.
  void require_same_shape(const Matrix<T>& output, const Matrix<T>& target) const {
    check(output.size() > 0, "empty batch");
    check(target.rows() == output.rows() && target.cols() == output.cols(), "target has shape ",
          target.rows(), "x", target.cols(), ", expected ", output.rows(), "x", output.cols());
  }
  /// Throws InvalidArgument naming the loss on an empty batch, unless there is one label per column
  /// of output, and on a label outside [0, classes).
  void require_labels(const Matrix<T>& output, const Labels& labels, Index classes) const {
    check(output.size() > 0, "empty batch");
    check(labels.size() == output.cols(), "got ", labels.size(),
                    " labels for a batch of ", output.cols(), " samples");
    for (Index j = 0; j < labels.size(); ++j)
      if (labels(j) < 0 || labels(j) >= classes)
        throw InvalidArgument(detail::concat(name(), ": label ", labels(j), " of sample ", j,
                                             " is out of range [0, ", classes, ")"));
  }
};

}  // namespace dropnet
