#pragma once
// CsvLogger<T>: fit's History as a CSV file, one row per epoch as it ends (Keras' CSVLogger).
//
//   CsvLogger<float> csv("history.csv");
//   options.callbacks.push_back(&csv);
//
// Columns: epoch (1-based), loss, accuracy, val_loss, val_accuracy, learning_rate, seconds;
// validation columns are "nan" without validation data. Each row is flushed, so a run that is
// stopped keeps the epochs it finished. write_history_csv writes a whole History the same way.

#include <fstream>
#include <ostream>
#include <stdexcept>
#include <string>
#include <utility>

#include "../core/error.hpp"
#include "../training/callback.hpp"

namespace dropnet {

/// The header line of the history CSV (without the newline).
inline const char* history_csv_header() {
  return "epoch,loss,accuracy,val_loss,val_accuracy,learning_rate,seconds";
}

/// One epoch as a CSV row, with its newline.
inline void write_history_csv_row(std::ostream& out, const EpochLogs& e) {
  out << e.epoch + 1 << ',' << e.loss << ',' << e.accuracy << ',' << e.val_loss << ','
      << e.val_accuracy << ',' << e.learning_rate << ',' << e.seconds << '\n';
}

/// Writes `history` to the file at `path` (header and one row per epoch). Throws
/// std::runtime_error naming the path if it cannot be written.
inline void write_history_csv(const std::string& path, const History& history) {
  std::ofstream out(path);
  out << history_csv_header() << '\n';
  for (const EpochLogs& e : history.epochs) write_history_csv_row(out, e);
  if (!out) throw std::runtime_error("write_history_csv: cannot write '" + path + "'");
}

/// Appends each epoch's logs to a CSV file as it ends; see the file comment.
template <class T>
class CsvLogger : public Callback<T> {
 public:
  /// Logs to the file at `path`, created (or truncated) when training begins.
  explicit CsvLogger(std::string path) : path_(std::move(path)) {}

  /// Opens the file and writes the header. Throws std::runtime_error if it cannot be opened.
  void on_train_begin(TrainingContext<T>&) override {
    out_.open(path_, std::ios::out | std::ios::trunc);
    if (!out_) throw std::runtime_error("CsvLogger: cannot open '" + path_ + "'");
    out_ << history_csv_header() << '\n' << std::flush;
  }
  /// Writes and flushes the epoch's row. Throws std::runtime_error on a write error.
  void on_epoch_end(TrainingContext<T>&, const EpochLogs& logs) override {
    write_history_csv_row(out_, logs);
    out_.flush();
    if (!out_) throw std::runtime_error("CsvLogger: error writing '" + path_ + "'");
  }
  /// Closes the file.
  void on_train_end(TrainingContext<T>&) override { out_.close(); }

 private:
  std::string path_;
  std::ofstream out_;
};

}  // namespace dropnet
