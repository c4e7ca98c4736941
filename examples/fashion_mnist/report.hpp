#pragma once
// The tables printed at the end of a run: test results per class, the confusion matrix, timing,
// and the studies' comparison.

#include <array>
#include <cstdio>
#include <dropnet/core/types.hpp>
#include <dropnet/training/classification.hpp>
#include <dropnet/training/history.hpp>
#include <string>
#include <vector>

namespace fmnist {

constexpr int class_count = 10;

/// counts(t, p): test images of true class t predicted as class p (the library's).
using Confusion = dropnet::ConfusionMatrix;

/// Tallies argmax(logits column j) against labels(j).
Confusion confusion_of(const dropnet::Matrix<float>& logits, const dropnet::Labels& labels);

/// "Test: loss, accuracy", then per class: precision, recall (the class's accuracy), F1, count
/// and the most frequent mistake, then the confusion matrix with the class names.
void print_test_report(std::FILE* out, double test_loss, const Confusion& confusion);

/// CPU seconds this process has used so far, over all its threads (std::clock).
double cpu_seconds();

/// Training time (steps only), images/s, and the whole run's wall and CPU time.
void print_timing(std::FILE* out, double train_seconds, long images, double wall_seconds,
                  double cpu_seconds);

/// One row of a study's table.
struct StudyRow {
  std::string label;
  const dropnet::History* history = nullptr;
  double train_eval_accuracy = 0.0;  ///< final model on the training set, dropout off
  double test_accuracy = 0.0;
  double wall_seconds = 0.0;  ///< training and evaluating this model
  double cpu_seconds = 0.0;   ///< the same span's CPU time
};

/// Per model: final train (eval mode), valid and test accuracy; best valid loss and its epoch,
/// final valid loss and how far it rose from the best; the final train - valid accuracy gap (as
/// logged during the epoch, dropout on, the notebook's measure; and in eval mode, which shows
/// what the model memorized); wall and CPU seconds.
void print_study_table(std::FILE* out, const std::vector<StudyRow>& rows);

}  // namespace fmnist
