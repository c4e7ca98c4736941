#pragma once
// predict and evaluate: batched inference in eval mode.

#include <algorithm>
#include <cmath>

#include "../losses/loss.hpp"
#include "batching.hpp"
#include "../model/sequential.hpp"

namespace dropnet {

/// What evaluate returns: mean loss and accuracy over a dataset.
struct Evaluation {
  double loss = 0.0;      ///< mean data loss + the model's penalty (Keras reports both)
  double accuracy = 0.0;  ///< fraction of correct predictions, in [0, 1]
};

namespace detail {

/// Calls visit(outputs, first, count) with the model's eval-mode outputs on consecutive slices
/// of `count` <= batch_size columns of x, read in place (Sequential::infer): the batching loop
/// of predict and evaluate.
template <class T, class Visit>
void for_each_inference(Sequential<T>& model, const MatrixView<T>& x, Index batch_size,
                        Visit&& visit) {
  for (Index first = 0; first < x.cols(); first += batch_size) {
    const Index count = std::min(batch_size, x.cols() - first);
    visit(model.infer(x.middleCols(first, count)), first, count);
  }
}

}  // namespace detail

/// Writes into `out` the outputs of the model on every column of `x` (features x samples: a
/// Matrix<T>, or a Map or block read in place) in eval mode, `batch_size` columns at a time
/// (Sequential::infer: no copy of x). `out` is resized to outputs x samples, allocating only when
/// its shape changes, so repeated calls (one sample at a time, say) allocate nothing.
template <class T>
void predict_into(Sequential<T>& model, const detail::ViewArg<T>& x, Matrix<T>& out,
                  Index batch_size = 1024) {
  detail::require(batch_size > 0, "predict", "batch_size must be > 0, got ", batch_size);
  detail::require(x.cols() > 0, "predict", "empty input (0 columns)");
  detail::require_input_features("predict", x, model.input_features());
  detail::for_each_inference(model, x, batch_size, [&](const Matrix<T>& y, Index first,
                                                       Index count) {
    if (first == 0) out.resize(y.rows(), x.cols());
    out.middleCols(first, count) = y;
  });
}

/// Outputs of the model on every column of `x` (features x samples: a Matrix<T>, or a Map or
/// block read in place) in eval mode, `batch_size` columns at a time; see predict_into.
template <class T>
Matrix<T> predict(Sequential<T>& model, const detail::ViewArg<T>& x, Index batch_size = 1024) {
  Matrix<T> out;
  predict_into(model, x, out, batch_size);
  return out;
}

namespace detail {

template <class T, class Target>
Evaluation evaluate(Sequential<T>& model, const Loss<T>& loss, const MatrixView<T>& x,
                    const Target& y, Index batch_size) {
  detail::require(batch_size > 0, "evaluate", "batch_size must be > 0, got ", batch_size);
  detail::require_dataset("evaluate", x, y);
  detail::require_input_features("evaluate", x, model.input_features());
  loss.require_targets(y, "evaluate");
  double total_loss = 0.0;
  Index correct = 0;
  Target batch_targets;
  detail::for_each_inference(model, x, batch_size, [&](const Matrix<T>& out, Index first,
                                                       Index count) {
    detail::slice_into(y, first, count, batch_targets);
    total_loss += static_cast<double>(loss.compute(out, batch_targets, nullptr)) * double(count);
    correct += loss.correct(out, batch_targets);
  });
  const double n = static_cast<double>(x.cols());
  return {total_loss / n + static_cast<double>(model.penalty()), static_cast<double>(correct) / n};
}

}  // namespace detail

/// Mean loss and accuracy of the model on (x, y) in eval mode; x as predict takes it, y Labels or
/// a Matrix<T> of targets (anything else fails the build with a static_assert that says so).
template <class T, class Target>
Evaluation evaluate(Sequential<T>& model, const Loss<T>& loss, const detail::ViewArg<T>& x,
                    const Target& y, Index batch_size = 1024) {
  if constexpr (detail::require_target_type<T, Target>())
    return detail::evaluate<T, Target>(model, loss, x, y, batch_size);
  else
    return {};
}

}  // namespace dropnet
