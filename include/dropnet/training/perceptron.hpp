#pragma once
// The perceptron of Rosenblatt (1958), as the course chapter (seed 004, section 2) states it.
//
//   predict:  yhat = 1 if w^T x + b > 0, else 0          x: features x samples, y in {0, 1}
//   fit:      w = 0, b = 0; for each epoch, for i = 1..n in order:
//               if yhat_i != y_i:  w += a (y_i - yhat_i) x_i,  b += a (y_i - yhat_i)
//             (an update on mistakes only), until an epoch makes no mistake or max_epochs.
// On linearly separable data it converges (Novikoff 1962): with R = max_i ||(x_i, 1)|| and
// gamma the margin of a unit separator (u, c) (min_i s_i (u^T x_i + c) with s_i = +-1), it makes
// at most (R / gamma)^2 updates, whatever the learning rate a > 0 (from w = 0, a only scales w).
// On data that is not separable (XOR) it never stops making mistakes. Because the rule is
// deterministic for a fixed order, a state (w, b) that recurs at the end of an epoch proves the
// run has entered a cycle: fit stops there and reports it (cycled), instead of running on.
// With options.pocket (Gallant 1990) fit returns the (w, b) that made the fewest training mistakes
// over the end-of-epoch states seen, the usual remedy on non-separable data; the updates are the
// same.
// Throws InvalidArgument when the sizes disagree, a label is not 0 or 1, the data is empty or
// non-finite, the learning rate is not > 0 or max_epochs < 1.

#include <cmath>
#include <vector>

#include "../core/error.hpp"
#include "../core/types.hpp"

namespace dropnet {

/// How Perceptron::fit runs.
struct PerceptronOptions {
  double learning_rate = 1.0;  ///< a > 0
  int max_epochs = 100;        ///< passes over the data at most
  bool pocket = false;         ///< keep the end-of-epoch weights with the fewest mistakes
};

/// What Perceptron::fit did.
struct PerceptronResult {
  int epochs = 0;              ///< passes made
  long updates = 0;            ///< mistakes corrected (= weight updates)
  bool converged = false;      ///< the last pass made no mistake: the data is separated
  bool cycled = false;         ///< an end-of-epoch state recurred: it never will converge
  std::vector<long> mistakes;  ///< mistakes made during each pass
  long training_errors = 0;    ///< mistakes of the returned (w, b) on the training data
};

/// A linear threshold unit with the Rosenblatt learning rule (see the header comment).
template <class T>
class Perceptron {
 public:
  /// w = 0 (of size `features`), b = 0. Throws InvalidArgument unless features > 0.
  explicit Perceptron(Index features) {
    detail::require(features > 0, "Perceptron", "features must be > 0, got ", features);
    weights_ = Vector<T>::Zero(features);
  }

  /// Runs the learning rule on (x, y) from w = 0, b = 0.
  PerceptronResult fit(const Matrix<T>& x, const Labels& y, const PerceptronOptions& options = {}) {
    check(x, y, options);
    weights_.setZero();
    bias_ = T(0);
    const auto rate = static_cast<T>(options.learning_rate);
    PerceptronResult result;
    std::vector<Vector<T>> seen_weights;  // end-of-epoch states, to detect a cycle
    std::vector<T> seen_biases;
    Vector<T> best_weights = weights_;
    T best_bias = bias_;
    long best_errors = -1;
    while (result.epochs < options.max_epochs) {
      long mistakes = 0;
      for (Index i = 0; i < x.cols(); ++i) {
        const int error = y(i) - predict_one(x.col(i));  // -1, 0 or 1
        if (error == 0) continue;
        weights_ += (rate * static_cast<T>(error)) * x.col(i);
        bias_ += rate * static_cast<T>(error);
        ++mistakes;
      }
      ++result.epochs;
      result.updates += mistakes;
      result.mistakes.push_back(mistakes);
      if (mistakes == 0) {
        result.converged = true;
        break;
      }
      if (options.pocket) {
        const long errors = errors_on(x, y);
        if (best_errors < 0 || errors < best_errors) {
          best_errors = errors;
          best_weights = weights_;
          best_bias = bias_;
        }
      }
      if (recurs(seen_weights, seen_biases)) {
        result.cycled = true;
        break;
      }
    }
    if (options.pocket && !result.converged) {
      weights_ = best_weights;
      bias_ = best_bias;
    }
    result.training_errors = errors_on(x, y);
    return result;
  }

  /// 1 where w^T x + b > 0, else 0, one per column of x.
  Labels predict(const Matrix<T>& x) const {
    detail::require(x.rows() == weights_.size(), "Perceptron::predict", "input has ", x.rows(),
                    " features, expected ", weights_.size());
    Labels out(x.cols());
    for (Index i = 0; i < x.cols(); ++i) out(i) = predict_one(x.col(i));
    return out;
  }

  /// w^T x + b, one per column: the signed distance to the boundary times ||w||.
  Vector<T> decision_function(const Matrix<T>& x) const {
    return (weights_.transpose() * x).transpose().array() + bias_;
  }

  const Vector<T>& weights() const { return weights_; }  ///< w
  T bias() const { return bias_; }                       ///< b

 private:
  template <class Column>
  int predict_one(const Column& column) const {
    return weights_.dot(column) + bias_ > T(0) ? 1 : 0;
  }

  long errors_on(const Matrix<T>& x, const Labels& y) const {
    return static_cast<long>((predict(x).array() != y.array()).count());
  }

  /// Records (w, b) and says whether it was seen before at the end of an epoch.
  bool recurs(std::vector<Vector<T>>& weights, std::vector<T>& biases) const {
    for (std::size_t k = 0; k < weights.size(); ++k)
      if (biases[k] == bias_ && weights[k] == weights_) return true;
    weights.push_back(weights_);
    biases.push_back(bias_);
    return false;
  }

  void check(const Matrix<T>& x, const Labels& y, const PerceptronOptions& options) const {
    const char* where = "Perceptron::fit";
    detail::require(x.cols() > 0, where, "empty data (0 columns)");
    detail::require(x.rows() == weights_.size(), where, "input has ", x.rows(),
                    " features, expected ", weights_.size());
    detail::require(y.size() == x.cols(), where, y.size(), " labels for ", x.cols(), " samples");
    detail::require(x.allFinite(), where, "non-finite input");
    detail::require((y.array() == 0 || y.array() == 1).all(), where, "labels must be 0 or 1");
    detail::require(options.learning_rate > 0 && std::isfinite(options.learning_rate), where,
                    "learning_rate must be finite and > 0, got ", options.learning_rate);
    detail::require(options.max_epochs >= 1, where, "max_epochs must be >= 1, got ",
                    options.max_epochs);
  }

  Vector<T> weights_;
  T bias_ = T(0);
};

}  // namespace dropnet
