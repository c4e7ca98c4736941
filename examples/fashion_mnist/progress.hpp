#pragma once
// Progress: what the user sees while a model trains, and the training throughput it measures.
//
// Style::bar redraws one line per epoch on a terminal (batches done, running loss and accuracy,
// images/s, ETA) at most ten times a second; Style::lines prints nothing until the epoch ends.
// Both then print one summary line per epoch, so logs and CI output stay readable.

#include <chrono>
#include <cstdio>
#include <dropnet/training/callback.hpp>
#include <string>

namespace fmnist {

class Progress : public dropnet::Callback<float> {
 public:
  enum class Style { bar, lines };

  /// `label` prefixes every line (the model's name in a study); may be empty.
  Progress(std::FILE* out, Style style, std::string label);

  void on_epoch_begin(dropnet::TrainingContext<float>& context, int epoch) override;
  void on_batch_end(dropnet::TrainingContext<float>& context,
                    const dropnet::BatchLogs& logs) override;
  void on_epoch_end(dropnet::TrainingContext<float>& context,
                    const dropnet::EpochLogs& logs) override;

  /// Seconds spent in training steps (validation passes excluded) over every epoch so far.
  double train_seconds() const { return train_seconds_; }
  /// Training images processed over every epoch so far.
  long images() const { return images_; }

 private:
  using Clock = std::chrono::steady_clock;
  void draw_bar(int epoch, int epochs, const dropnet::BatchLogs& logs, double elapsed);

  std::FILE* out_;
  Style style_;
  std::string label_;
  Clock::time_point epoch_start_, last_batch_, last_draw_;
  long epoch_images_ = 0;
  double train_seconds_ = 0.0;
  long images_ = 0;
};

/// Style::bar when `requested` is "bar", or "auto" and `out` is a terminal; else Style::lines.
Progress::Style progress_style(const std::string& requested, std::FILE* out);

/// 1234567 -> "1,234,567".
std::string thousands(long n);

}  // namespace fmnist
