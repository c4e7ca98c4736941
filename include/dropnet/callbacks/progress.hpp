#pragma once
// Progress<T>: fit's progress on a terminal or in a log, as a callback.
//
//   Progress<float> progress;                     // stdout; a bar on a terminal, lines otherwise
//   options.callbacks.push_back(&progress);
//
// ProgressStyle::bar redraws one line per epoch on a terminal (epoch, bar, batches done, running
// loss and accuracy, samples/s, and the ETA of the whole run) at most ten times a second;
// ProgressStyle::lines prints nothing until an epoch ends. Both then print one line per epoch,
// so logs and CI output stay readable. ProgressStyle::automatic picks bar when the stream is a
// terminal. The whole-run ETA is the run's mean time per batch so far (validation passes
// included) times the batches left in this and the remaining epochs.

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <string>

#if defined(_WIN32)
#include <io.h>
#else
#include <unistd.h>
#endif

#include "../core/format.hpp"
#include "../training/callback.hpp"

namespace dropnet {

/// How Progress draws: see the file comment.
enum class ProgressStyle {
  automatic,  ///< bar on a terminal, lines otherwise
  bar,        ///< a redrawn line while an epoch runs, then a line per epoch
  lines,      ///< a line per epoch only
};

/// True when `out` is a terminal.
inline bool is_terminal(std::FILE* out) {
#if defined(_WIN32)
  return _isatty(_fileno(out)) != 0;
#else
  return isatty(fileno(out)) != 0;
#endif
}

/// 125.4 -> "2:05" (minutes:seconds, rounded, never negative).
inline std::string minutes_seconds(double seconds) {
  const long s = std::lround(std::max(seconds, 0.0));
  char text[32];
  std::snprintf(text, sizeof text, "%ld:%02ld", s / 60, s % 60);
  return text;
}

/// The progress of fit on a FILE (see the file comment); also measures training throughput.
template <class T>
class Progress : public Callback<T> {
 public:
  /// Writes to `out` (not owned; stdout by default) in `style`; `label`, if any, prefixes every
  /// line as "[label] " (a model's name in a study).
  explicit Progress(std::FILE* out = stdout, ProgressStyle style = ProgressStyle::automatic,
                    const std::string& label = "")
      : out_(out),
        bar_(style == ProgressStyle::bar ||
             (style == ProgressStyle::automatic && is_terminal(out))),
        label_(label.empty() ? "" : "[" + label + "] ") {}

  /// True when this Progress redraws a bar (the style resolved against the stream).
  bool draws_bar() const { return bar_; }
  /// Seconds spent in training steps (validation passes excluded) over every epoch so far.
  double train_seconds() const { return train_seconds_; }
  /// Training samples processed over every epoch so far.
  long samples() const { return samples_; }

  /// Starts the run's clock (for the whole-run ETA).
  void on_train_begin(TrainingContext<T>&) override {
    run_start_ = Clock::now();
    batches_done_ = 0;
  }
  /// Starts the epoch's clock.
  void on_epoch_begin(TrainingContext<T>&, int) override {
    epoch_start_ = last_batch_ = last_draw_ = Clock::now();
    epoch_samples_ = 0;
  }
  /// Redraws the bar (bar style, at most every 0.1 s and after the last batch).
  void on_batch_end(TrainingContext<T>& context, const BatchLogs& logs) override {
    last_batch_ = Clock::now();
    epoch_samples_ = logs.samples;
    ++batches_done_;
    if (!bar_) return;
    const bool last = logs.batch + 1 == logs.batches;
    if (!last && seconds(last_draw_, last_batch_) < 0.1) return;
    last_draw_ = last_batch_;
    draw_bar(context, logs);
  }
  /// Prints the epoch's line: train and validation loss and accuracy, learning rate, seconds.
  void on_epoch_end(TrainingContext<T>& context, const EpochLogs& logs) override {
    train_seconds_ += seconds(epoch_start_, last_batch_);
    samples_ += epoch_samples_;
    if (bar_) std::fprintf(out_, "\r\033[K");
    std::fprintf(out_,
                 "%sepoch %*d/%d  train loss %.4f acc %.2f%%  valid loss %.4f acc %.2f%%  "
                 "lr %.2g  %.1f s\n",
                 label_.c_str(), static_cast<int>(std::to_string(context.epochs).size()),
                 logs.epoch + 1, context.epochs, logs.loss, 100.0 * logs.accuracy, logs.val_loss,
                 100.0 * logs.val_accuracy, logs.learning_rate, logs.seconds);
    std::fflush(out_);
  }

  /// Seconds left in the run at this batch: the mean time per batch so far (validation
  /// included) times the batches left in this and the remaining epochs.
  static double run_eta(double elapsed, long batches_done, const BatchLogs& logs, int epochs) {
    const long left = (logs.batches - logs.batch - 1) +
                      static_cast<long>(std::max(epochs - logs.epoch - 1, 0)) * logs.batches;
    return batches_done > 0 ? elapsed / static_cast<double>(batches_done) * static_cast<double>(left)
                            : 0.0;
  }

 private:
  using Clock = std::chrono::steady_clock;

  static double seconds(Clock::time_point a, Clock::time_point b) {
    return std::chrono::duration<double>(b - a).count();
  }

  void draw_bar(const TrainingContext<T>& context, const BatchLogs& logs) {
    constexpr int width = 20;
    const long done = logs.batch + 1;
    const int filled = static_cast<int>(width * done / std::max(logs.batches, 1L));
    const std::string bar = std::string(static_cast<std::size_t>(filled), '#') +
                            std::string(static_cast<std::size_t>(width - filled), '.');
    const double elapsed = seconds(epoch_start_, last_batch_);
    const double rate = elapsed > 0 ? static_cast<double>(logs.samples) / elapsed : 0.0;
    const double eta =
        run_eta(seconds(run_start_, last_batch_), batches_done_, logs, context.epochs);
    // After an epoch's last batch comes the validation pass, which the bar would otherwise hide.
    const std::string tail = done == logs.batches ? "validating" : "ETA " + minutes_seconds(eta);
    // \r and "erase to end of line" redraw in place; the epoch line overwrites it for good.
    std::fprintf(out_, "\r%s%d/%d [%s] %ld/%ld loss %.4f acc %.2f%% %s/s %s\033[K",
                 label_.c_str(), logs.epoch + 1, context.epochs, bar.c_str(), done, logs.batches,
                 logs.loss, 100.0 * logs.accuracy, thousands(std::lround(rate)).c_str(),
                 tail.c_str());
    std::fflush(out_);
  }

  std::FILE* out_;
  bool bar_;
  std::string label_;
  Clock::time_point run_start_, epoch_start_, last_batch_, last_draw_;
  long batches_done_ = 0;
  long epoch_samples_ = 0;
  double train_seconds_ = 0.0;
  long samples_ = 0;
};

}  // namespace dropnet
