#include "progress.hpp"

#include <unistd.h>

#include <algorithm>
#include <cmath>

namespace fmnist {

namespace {

double seconds_between(std::chrono::steady_clock::time_point a,
                       std::chrono::steady_clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

std::string minutes_seconds(double seconds) {
  const long s = std::lround(std::max(seconds, 0.0));
  char text[32];
  std::snprintf(text, sizeof text, "%ld:%02ld", s / 60, s % 60);
  return text;
}

}  // namespace

std::string thousands(long n) {
  std::string digits = std::to_string(n < 0 ? -n : n);
  for (int pos = static_cast<int>(digits.size()) - 3; pos > 0; pos -= 3)
    digits.insert(static_cast<std::size_t>(pos), ",");
  return (n < 0 ? "-" : "") + digits;
}

Progress::Style progress_style(const std::string& requested, std::FILE* out) {
  if (requested == "bar") return Progress::Style::bar;
  if (requested == "lines") return Progress::Style::lines;
  return isatty(fileno(out)) ? Progress::Style::bar : Progress::Style::lines;
}

Progress::Progress(std::FILE* out, Style style, std::string label)
    : out_(out), style_(style), label_(label.empty() ? "" : "[" + label + "] ") {}

void Progress::on_epoch_begin(dropnet::TrainingContext<float>&, int) {
  epoch_start_ = last_batch_ = last_draw_ = Clock::now();
  epoch_images_ = 0;
}

void Progress::on_batch_end(dropnet::TrainingContext<float>& context,
                            const dropnet::BatchLogs& logs) {
  last_batch_ = Clock::now();
  epoch_images_ = logs.samples;
  if (style_ != Style::bar) return;
  const bool last = logs.batch + 1 == logs.batches;
  if (!last && seconds_between(last_draw_, last_batch_) < 0.1) return;
  last_draw_ = last_batch_;
  draw_bar(logs.epoch, context.epochs, logs, seconds_between(epoch_start_, last_batch_));
}

void Progress::draw_bar(int epoch, int epochs, const dropnet::BatchLogs& logs, double elapsed) {
  constexpr int width = 20;
  const long done = logs.batch + 1;
  const int filled = static_cast<int>(width * done / std::max(logs.batches, 1L));
  const std::string bar = std::string(static_cast<std::size_t>(filled), '#') +
                          std::string(static_cast<std::size_t>(width - filled), '.');
  const double rate = elapsed > 0 ? static_cast<double>(logs.samples) / elapsed : 0.0;
  const double eta = elapsed / static_cast<double>(done) * static_cast<double>(logs.batches - done);
  // After the last batch comes the validation pass, which the bar would otherwise hide.
  const std::string tail = done == logs.batches ? "validating" : "ETA " + minutes_seconds(eta);
  // \r and "erase to end of line" redraw in place; the epoch line below overwrites it for good.
  std::fprintf(out_, "\r%s%d/%d [%s] %ld/%ld loss %.4f acc %.2f%% %s img/s %s\033[K",
               label_.c_str(), epoch + 1, epochs, bar.c_str(), done, logs.batches, logs.loss,
               100.0 * logs.accuracy, thousands(std::lround(rate)).c_str(), tail.c_str());
  std::fflush(out_);
}

void Progress::on_epoch_end(dropnet::TrainingContext<float>& context,
                            const dropnet::EpochLogs& logs) {
  train_seconds_ += seconds_between(epoch_start_, last_batch_);
  images_ += epoch_images_;
  if (style_ == Style::bar) std::fprintf(out_, "\r\033[K");
  std::fprintf(out_,
               "%sepoch %*d/%d  train loss %.4f acc %.2f%%  valid loss %.4f acc %.2f%%  "
               "lr %.2g  %.1f s\n",
               label_.c_str(), static_cast<int>(std::to_string(context.epochs).size()),
               logs.epoch + 1, context.epochs, logs.loss, 100.0 * logs.accuracy, logs.val_loss,
               100.0 * logs.val_accuracy, logs.learning_rate, logs.seconds);
  std::fflush(out_);
}

}  // namespace fmnist
