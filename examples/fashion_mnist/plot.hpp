#pragma once
// Learning curves: the history as CSV, and pictures drawn by gnuplot from that CSV, as the
// notebook's plot_train_val (loss and accuracy per epoch, train vs valid) and its comparison cell.
//
// gnuplot runs as a child process fed a script on its standard input. A .png name uses the
// pngcairo terminal; if this gnuplot lacks it, the picture is written as SVG next to it (the
// name with .svg). Plot failures are reported on stderr and returned, never thrown: the CSV is
// already on disk by then, and training results matter more than the picture.

#include <dropnet/callbacks/csv_logger.hpp>
#include <dropnet/training/history.hpp>
#include <string>
#include <vector>

namespace fmnist {

/// epoch,loss,accuracy,val_loss,val_accuracy,learning_rate,seconds (the library's CsvLogger
/// format); epochs 1-based, accuracies as fractions. Throws std::runtime_error.
using dropnet::write_history_csv;

/// A curve set for the study: one model's label and history.
struct Curves {
  std::string label;
  const dropnet::History* history = nullptr;
};

/// epoch, then loss, accuracy, val_loss, val_accuracy for each model in turn (columns named
/// "<label> loss" and so on). Throws std::runtime_error if the file cannot be written.
void write_study_csv(const std::string& path, const std::vector<Curves>& models);

/// Draws `csv` (from write_history_csv, `epochs` rows) into `image`. Returns the path written, or
/// "" after printing why not on stderr.
std::string plot_history(const std::string& csv, const std::string& image, const std::string& title,
                         std::size_t epochs);

/// Draws `csv` (from write_study_csv, with these labels in order) into `image`, every model's
/// curves in one figure. Returns the path written, or "".
std::string plot_study(const std::string& csv, const std::string& image,
                       const std::vector<std::string>& labels, const std::string& title,
                       std::size_t epochs);

/// Draws a figure from gnuplot commands `body` (plots of CSV files) into `image`, after the
/// terminal and output lines; the picture is 1280x520. Returns the path written, or "".
std::string plot_commands(const std::string& image, const std::string& body);

/// `text` as a gnuplot single-quoted string (a quote inside is doubled).
std::string quoted(const std::string& text);

/// True if `path` ends in .png or .svg (case-insensitive).
bool is_plot_name(const std::string& path);

/// `path` with its extension replaced by `extension` (".csv").
std::string with_extension(const std::string& path, const std::string& extension);

}  // namespace fmnist
