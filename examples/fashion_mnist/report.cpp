#include "report.hpp"

#include <ctime>
#include <dropnet/io/fashion_mnist.hpp>

#include "progress.hpp"

namespace fmnist {

namespace {

constexpr const char* short_names[class_count] = {
    "T-shirt", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Boot"};

const char* class_name(int c) {
  return dropnet::fashion_mnist::class_names[static_cast<std::size_t>(c)];
}

double percent(long part, long whole) {
  return whole > 0 ? 100.0 * static_cast<double>(part) / static_cast<double>(whole) : 0.0;
}

void print_per_class(std::FILE* out, const Confusion& c) {
  std::fprintf(out, "\n%-13s %9s %7s %7s %7s   %s\n", "Class", "precision", "recall", "F1",
               "images", "most often mistaken for");
  for (int t = 0; t < class_count; ++t) {
    const auto worst = c.most_confused_with(t);
    std::fprintf(out, "%-13s %8.1f%% %6.1f%% %7.3f %7ld   %s (%.1f%%)\n", class_name(t),
                 100.0 * c.precision(t), 100.0 * c.recall(t), c.f1(t), c.class_total(t),
                 class_name(static_cast<int>(worst)), percent(c.counts(t, worst), c.class_total(t)));
  }
  std::fprintf(out, "%-13s %26.3f (macro average)\n", "", c.macro_f1());
}

void print_matrix(std::FILE* out, const Confusion& c) {
  std::fprintf(out, "\nConfusion matrix (rows: true class, columns: predicted class)\n%-13s", "");
  for (const char* name : short_names) std::fprintf(out, "%9s", name);
  std::fprintf(out, "\n");
  for (int t = 0; t < class_count; ++t) {
    std::fprintf(out, "%-13s", class_name(t));
    for (int p = 0; p < class_count; ++p) std::fprintf(out, "%9ld", c.counts(t, p));
    std::fprintf(out, "\n");
  }
}

}  // namespace

Confusion confusion_of(const dropnet::Matrix<float>& logits, const dropnet::Labels& labels) {
  return dropnet::confusion_matrix(labels, dropnet::argmax(logits), class_count);
}

void print_test_report(std::FILE* out, double test_loss, const Confusion& confusion) {
  std::fprintf(out, "\nTest: loss %.4f, accuracy %.4f (%s of %s images)\n", test_loss,
               confusion.accuracy(), thousands(confusion.correct()).c_str(),
               thousands(confusion.total()).c_str());
  print_per_class(out, confusion);
  print_matrix(out, confusion);
}

double cpu_seconds() { return static_cast<double>(std::clock()) / CLOCKS_PER_SEC; }

void print_timing(std::FILE* out, double train_seconds, long images, double wall_seconds,
                  double cpu_seconds) {
  const double rate = train_seconds > 0 ? static_cast<double>(images) / train_seconds : 0.0;
  std::fprintf(out,
               "\nTime: training %.1f s for %s images (%s images/s, validation excluded); "
               "whole run %.1f s, %.1f s of CPU\n",
               train_seconds, thousands(images).c_str(), thousands(static_cast<long>(rate)).c_str(),
               wall_seconds, cpu_seconds);
}

void print_study_table(std::FILE* out, const std::vector<StudyRow>& rows) {
  std::fprintf(out, "\n%-26s %23s %16s %11s %9s   %-26s %15s\n", "", "accuracy (%)",
               "best valid loss", "final valid", "rise from", "train - valid acc (points)",
               "time (s)");
  std::fprintf(out, "%-26s %7s %7s %7s %16s %11s %9s   %12s %13s %7s %7s\n", "model", "train",
               "valid", "test", "(epoch)", "loss", "best", "as logged", "eval mode", "wall", "CPU");
  for (const StudyRow& row : rows) {
    const auto& epochs = row.history->epochs;
    if (epochs.empty()) continue;
    std::size_t best = 0;
    for (std::size_t e = 1; e < epochs.size(); ++e)
      if (epochs[e].val_loss < epochs[best].val_loss) best = e;
    const auto& last = epochs.back();
    char best_text[32];
    std::snprintf(best_text, sizeof best_text, "%.4f (%zu)", epochs[best].val_loss, best + 1);
    std::fprintf(
        out, "%-26s %7.2f %7.2f %7.2f %16s %11.4f %+8.1f%%   %+12.2f %+13.2f %7.0f %7.0f\n",
        row.label.c_str(), 100.0 * row.train_eval_accuracy, 100.0 * last.val_accuracy,
        100.0 * row.test_accuracy, best_text, last.val_loss,
        100.0 * (last.val_loss / epochs[best].val_loss - 1.0),
        100.0 * (last.accuracy - last.val_accuracy),
        100.0 * (row.train_eval_accuracy - last.val_accuracy), row.wall_seconds, row.cpu_seconds);
  }
}

}  // namespace fmnist
