#include "plot.hpp"

#include <sys/wait.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <stdexcept>

namespace fmnist {

namespace {

namespace fs = std::filesystem;

std::string lower_extension(const std::string& path) {
  std::string ext = fs::path(path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return char(std::tolower(c)); });
  return ext;
}

std::ofstream open_csv(const std::string& path) {
  std::ofstream out(path);
  if (!out) throw std::runtime_error("cannot write '" + path + "'");
  out.precision(6);
  return out;
}

/// Runs `command` through the shell and returns its first line of output ("" on failure).
std::string first_line_of(const char* command) {
  std::FILE* pipe = popen(command, "r");
  if (!pipe) return {};
  char line[256] = {};
  const bool got = std::fgets(line, sizeof line, pipe) != nullptr;
  pclose(pipe);
  return got ? std::string(line) : std::string();
}

/// "1\n" if gnuplot runs and has the pngcairo terminal, "0\n" if it runs without it, "" if
/// there is no gnuplot.
std::string probe_gnuplot() {
  return first_line_of(
      "gnuplot -e \"set print '-'; print (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0)\" 2>/dev/null");
}

/// The terminal line for `image`, switching `image` to .svg when pngcairo is missing; "" (after
/// a message) when there is no gnuplot at all.
std::string terminal_for(std::string& image) {
  const std::string probe = probe_gnuplot();
  if (probe.empty()) {
    std::fprintf(stderr,
                 "plot: gnuplot not found, no picture drawn (install gnuplot-nox; the CSV "
                 "has the numbers)\n");
    return {};
  }
  if (lower_extension(image) == ".png") {
    if (probe[0] == '1') return "set terminal pngcairo size 1280,520 enhanced font 'sans,10'";
    image = with_extension(image, ".svg");
    std::fprintf(stderr, "plot: this gnuplot has no pngcairo terminal; writing %s instead\n",
                 image.c_str());
  }
  return "set terminal svg size 1280,520 dynamic enhanced font 'sans,11' background '#ffffff'";
}

/// Feeds `script` to a gnuplot child process; returns `image` if it exited cleanly.
std::string run_gnuplot(const std::string& script, const std::string& image) {
  std::FILE* pipe = popen("gnuplot", "w");
  if (!pipe) {
    std::fprintf(stderr, "plot: cannot start gnuplot\n");
    return {};
  }
  std::fwrite(script.data(), 1, script.size(), pipe);
  const int status = pclose(pipe);
  std::error_code ignored;
  if (status != 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0 ||
      fs::file_size(image, ignored) == 0) {
    std::fprintf(stderr, "plot: gnuplot failed to draw %s (its messages are above)\n",
                 image.c_str());
    return {};
  }
  return image;
}

std::string header(const std::string& terminal, const std::string& image, const std::string& title,
                   std::size_t epochs) {
  // Whole epochs on the x axis, about ten tics whatever the run's length.
  const std::size_t step = std::max<std::size_t>(1, (epochs + 9) / 10);
  return "set datafile separator ','\n" + terminal + "\nset output " + quoted(image) +
         "\nset multiplot layout 1,2 title " + quoted(title) +
         " font ',12'\nset grid lc rgb '#dddddd'\nset xlabel 'Epoch'\nset border 3\n"
         "set tics nomirror\nset xtics " +
         std::to_string(step) +
         "\nset xrange [1:" + std::to_string(std::max<std::size_t>(epochs, 2)) + "]\n";
}

// matplotlib's first colours, as the notebook's figures.
constexpr const char* palette[] = {"#1f77b4", "#d62728", "#2ca02c",
                                   "#ff7f0e", "#9467bd", "#8c564b"};

}  // namespace

std::string quoted(const std::string& text) {
  std::string out = "'";
  for (char c : text) out += c == '\'' ? std::string("''") : std::string(1, c);
  return out + "'";
}

std::string plot_commands(const std::string& image_name, const std::string& body) {
  std::string image = image_name;
  const std::string terminal = terminal_for(image);
  if (terminal.empty()) return {};
  return run_gnuplot(terminal + "\nset output " + fmnist::quoted(image) + "\n" + body, image);
}

bool is_plot_name(const std::string& path) {
  const std::string ext = lower_extension(path);
  return ext == ".png" || ext == ".svg";
}

std::string with_extension(const std::string& path, const std::string& extension) {
  return fs::path(path).replace_extension(extension).string();
}

void write_study_csv(const std::string& path, const std::vector<Curves>& models) {
  std::ofstream out = open_csv(path);
  std::size_t epochs = 0;
  out << "epoch";
  for (const auto& m : models) {
    for (const char* column : {"loss", "accuracy", "val_loss", "val_accuracy"})
      out << ',' << m.label << ' ' << column;
    epochs = std::max(epochs, m.history->epochs.size());
  }
  out << '\n';
  for (std::size_t e = 0; e < epochs; ++e) {
    out << e + 1;
    for (const auto& m : models) {
      if (e < m.history->epochs.size()) {
        const auto& l = m.history->epochs[e];
        out << ',' << l.loss << ',' << l.accuracy << ',' << l.val_loss << ',' << l.val_accuracy;
      } else {
        out << ",,,,";  // a model stopped early: empty fields, which gnuplot skips
      }
    }
    out << '\n';
  }
  if (!out) throw std::runtime_error("error writing '" + path + "'");
}

std::string plot_history(const std::string& csv, const std::string& image_name,
                         const std::string& title, std::size_t epochs) {
  std::string image = image_name;
  const std::string terminal = terminal_for(image);
  if (terminal.empty()) return {};
  const std::string data = quoted(csv) + " skip 1 using 1:";
  const std::string style = " with linespoints lw 2 pt 7 ps 0.6 lc rgb ";
  std::string s = header(terminal, image, title, epochs);
  s += "set title 'Loss per epoch'\nset ylabel 'Loss'\nset key top right\n";
  s += "plot " + data + "2" + style + quoted(palette[0]) + " title 'Train loss', " + data + "4" +
       style + quoted(palette[3]) + " title 'Valid loss'\n";
  s += "set title 'Accuracy per epoch'\nset ylabel 'Accuracy (%)'\nset key bottom right\n";
  s += "plot " + data + "(100*$3)" + style + quoted(palette[0]) + " title 'Train accuracy', " +
       data + "(100*$5)" + style + quoted(palette[3]) + " title 'Valid accuracy'\n";
  s += "unset multiplot\n";
  return run_gnuplot(s, image);
}

std::string plot_study(const std::string& csv, const std::string& image_name,
                       const std::vector<std::string>& labels, const std::string& title,
                       std::size_t epochs) {
  std::string image = image_name;
  const std::string terminal = terminal_for(image);
  if (terminal.empty()) return {};
  // Column of model m's quantity q (0 loss, 1 accuracy, 2 val_loss, 3 val_accuracy).
  auto column = [](std::size_t m, int q) { return std::to_string(2 + 4 * m + std::size_t(q)); };
  auto curves = [&](int train_q, int valid_q, bool as_percent, const std::string& what) {
    std::string plot = "plot ";
    for (std::size_t m = 0; m < labels.size(); ++m) {
      const std::string colour = quoted(palette[m % 6]);
      for (const int q : {train_q, valid_q}) {
        const std::string y = as_percent ? "(100*$" + column(m, q) + ")" : column(m, q);
        plot += quoted(csv) + " skip 1 using 1:" + y + " with lines lw 2 " +
                (q == train_q ? "dt 2 " : "dt 1 ") + "lc rgb " + colour + " title " +
                quoted((q == train_q ? "Train " : "Valid ") + what + " (" + labels[m] + ")") +
                (m + 1 < labels.size() || q == train_q ? ", " : "\n");
      }
    }
    return plot;
  };
  std::string s = header(terminal, image, title, epochs);
  s += "set title 'Loss per epoch (dashed: train, solid: valid)'\nset ylabel 'Loss'\n"
       "set key top left font ',9'\n";
  s += curves(0, 2, false, "loss");
  s += "set title 'Accuracy per epoch (dashed: train, solid: valid)'\nset ylabel 'Accuracy (%)'\n"
       "set key bottom right font ',9'\n";
  s += curves(1, 3, true, "accuracy");
  s += "unset multiplot\n";
  return run_gnuplot(s, image);
}

}  // namespace fmnist
