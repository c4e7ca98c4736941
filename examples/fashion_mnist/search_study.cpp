#include "search_study.hpp"

#include <chrono>
#include <dropnet/dropnet.hpp>
#include <fstream>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "model.hpp"
#include "plot.hpp"
#include "report.hpp"
#include "training.hpp"

namespace fmnist {

namespace {

using dropnet::Configuration;
using dropnet::SearchResult;

/// The chapter's ranges (section 14, table 3), in the order the grid nests them.
dropnet::SearchSpace search_space() {
  dropnet::SearchSpace space;
  space.log_uniform("lr", 1e-4, 1e-1).uniform("dropout", 0.0, 0.5).log_uniform("l2", 1e-5, 1e-3);
  space.integer("width", 32, 256).choice("batch", {32, 64, 128, 256});
  return space;
}

/// The MLP a configuration describes: widths w and w/2, its dropout after each hidden layer.
ModelSpec model_of(const Options& options, const Configuration& c) {
  ModelSpec spec = options.model;
  const auto width = static_cast<std::ptrdiff_t>(c.integer("width"));
  spec.hidden = {width, std::max<std::ptrdiff_t>(1, width / 2)};
  spec.dropout = {0.0, c.at("dropout"), c.at("dropout")};
  spec.l2 = c.at("l2");
  return spec;
}

/// One search: which, its trials, and the test accuracy of each trial's final model.
struct Search {
  std::string name;  ///< "grid" or "random"
  SearchResult result;
  std::vector<double> test_accuracy;
  double wall_seconds = 0.0, cpu_seconds = 0.0;
};

void print_trial(std::FILE* out, int index, int trials, const Configuration& c,
                 const dropnet::TrialMonitor& monitor, double test, const char* note) {
  std::fprintf(out,
               "trial %2d/%d: lr %.2e dropout %.3f l2 %.2e width %3lld batch %3lld | %zu "
               "epoch%s, valid %.4f, test %.4f%s\n",
               index + 1, trials, c.at("lr"), c.at("dropout"), c.at("l2"), c.integer("width"),
               c.integer("batch"), monitor.scores().size(), monitor.scores().size() == 1 ? "" : "s",
               monitor.scores().empty() ? 0.0 : monitor.scores().back(), test, note);
  std::fflush(out);
}

Search run_one(const Options& options, const std::string& name, Data& data, std::FILE* out) {
  const auto start = std::chrono::steady_clock::now();
  const double cpu_start = cpu_seconds();
  const dropnet::SearchSpace space = search_space();
  const std::vector<Configuration> configs = name == "grid"
                                                 ? space.grid(space.grid_points(options.trials))
                                                 : space.random(options.trials, options.seed);
  dropnet::SearchOptions search_options = dropnet::SearchOptions().seed(options.seed);
  if (options.prune_after > 0)
    search_options.prune_from_epoch(options.prune_after)
        .prune_below_median(3)
        .prune_below(options.prune_below);
  std::fprintf(out, "\n%s search: %zu trials of %d epoch%s at most\n",
               name == "grid" ? "Grid" : "Random", configs.size(), options.train.epochs,
               options.train.epochs == 1 ? "" : "s");

  Search search;
  search.name = name;
  auto objective = [&](const Configuration& c, dropnet::Generator& gen,
                       dropnet::TrialMonitor& monitor) {
    TrainSpec train_spec = options.train;
    train_spec.lr = c.at("lr");
    train_spec.batch_size = static_cast<std::ptrdiff_t>(c.integer("batch"));
    dropnet::Sequential<float> model = build_model(model_of(options, c), gen);
    dropnet::TrialCallback<float> report(monitor, "val_accuracy");
    const char* note = "";
    try {
      train(model, train_spec, data, gen, {&report});
      if (monitor.pruned()) note = " (pruned)";
    } catch (const dropnet::NumericalError&) {
      note = " (diverged: a NaN or infinite loss)";  // the trial keeps the epochs it reported
    }
    search.test_accuracy.push_back(evaluate_on(model, data.test).accuracy);
    print_trial(out, static_cast<int>(search.test_accuracy.size()) - 1,
                static_cast<int>(configs.size()), c, monitor, search.test_accuracy.back(), note);
  };
  search.result = dropnet::run_search(configs, objective, search_options);
  search.wall_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  search.cpu_seconds = cpu_seconds() - cpu_start;
  std::fprintf(out, "\n%s", dropnet::search_table(search.result).c_str());
  return search;
}

/// How many distinct values of each dimension a search tried: "lr 2, dropout 2, ...".
std::string distinct_values(const SearchResult& result) {
  std::string text;
  const auto& names = result.trials.front().config.names;
  for (std::size_t d = 0; d < names.size(); ++d) {
    std::set<double> values;
    for (const auto& t : result.trials) values.insert(t.config.values[d]);
    text += (d ? ", " : "") + names[d] + " " + std::to_string(values.size());
  }
  return text;
}

void print_comparison(std::FILE* out, const std::vector<Search>& searches) {
  std::fprintf(out, "\n%-7s %6s %6s %10s %9s %9s %9s   %s\n", "search", "trials", "pruned",
               "best valid", "its test", "wall (s)", "CPU (s)", "distinct values tried");
  for (const Search& s : searches) {
    const dropnet::Trial& best = s.result.best();
    long pruned = 0;
    for (const auto& t : s.result.trials) pruned += t.pruned;
    std::fprintf(out, "%-7s %6zu %6ld %10.4f %9.4f %9.1f %9.1f   %s\n", s.name.c_str(),
                 s.result.trials.size(), pruned, best.score(),
                 s.test_accuracy[static_cast<std::size_t>(best.index)], s.wall_seconds,
                 s.cpu_seconds, distinct_values(s.result).c_str());
  }
}

/// The trials' CSV: `base` for one search, with "_grid" / "_random" before the extension for two.
std::string csv_path(const std::string& base, const std::string& name, bool several) {
  if (!several) return base;
  const std::string stem = with_extension(base, "");
  return stem + "_" + name + base.substr(stem.size());
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream file(path);
  file << text;
  if (!file) throw std::runtime_error("cannot write '" + path + "'");
}

/// Left: the best validation accuracy of the completed trials so far, against the trials run.
/// Right: each trial's validation accuracy against its learning rate (open circles: pruned).
std::string plot_searches(const std::string& image, const std::vector<Search>& searches,
                          const std::vector<std::string>& csvs) {
  // The search CSV's columns: 1 trial, 3 lr, 9 score, 10 pruned.
  std::string s =
      "set datafile separator ','\nset multiplot layout 1,2 title 'Hyperparameter search on "
      "Fashion-MNIST (validation accuracy)'\nset grid\nset key bottom right\n"
      "set xlabel 'Trials run'\nset ylabel 'Best validation accuracy so far'\nplot ";
  for (std::size_t i = 0; i < searches.size(); ++i)
    s += (i ? ", " : "") + quoted(csvs[i]) + " skip 1 using ($1+1):(m" + std::to_string(i) +
         " = ($10 == 0 && $9 > m" + std::to_string(i) + ") ? $9 : m" + std::to_string(i) +
         ") with steps lw 2 title " + quoted(searches[i].name);
  std::string init;
  for (std::size_t i = 0; i < searches.size(); ++i) init += "m" + std::to_string(i) + " = 0\n";
  s = init + s +
      "\nset logscale x\nset xlabel 'Learning rate'\nset ylabel 'Validation accuracy'\n"
      "set key bottom left\nplot ";
  for (std::size_t i = 0; i < searches.size(); ++i) {
    const std::string data = quoted(csvs[i]) + " skip 1 using 3:";
    s += (i ? ", " : "") + data + "($10 == 0 ? $9 : 1/0) with points pt 7 lc " +
         std::to_string(i + 1) + " title " + quoted(searches[i].name) + ", " + data +
         "($10 == 1 ? $9 : 1/0) with points pt 6 lc " + std::to_string(i + 1) + " title " +
         quoted(searches[i].name + " (pruned)");
  }
  return plot_commands(image, s + "\nunset multiplot\n");
}

void write_outputs(const Options& options, const std::vector<Search>& searches, std::FILE* out) {
  std::string base = options.history_path;
  if (base.empty() && !options.plot_path.empty()) base = with_extension(options.plot_path, ".csv");
  if (base.empty()) return;
  std::vector<std::string> csvs;
  for (const Search& s : searches) {
    csvs.push_back(csv_path(base, s.name, searches.size() > 1));
    write_text(csvs.back(), dropnet::search_csv(s.result));
    std::fprintf(out, "Trials: %s\n", csvs.back().c_str());
  }
  if (options.plot_path.empty()) return;
  const std::string image = plot_searches(options.plot_path, searches, csvs);
  if (!image.empty()) std::fprintf(out, "Figure: %s\n", image.c_str());
}

}  // namespace

int run_search_study(const Options& options, Data& data, std::FILE* out) {
  std::fprintf(out,
               "Search space: lr log-uniform [1e-4, 1e-1], dropout uniform [0, 0.5], l2 "
               "log-uniform [1e-5, 1e-3], width integer [32, 256] (then width/2), batch one of "
               "32, 64, 128, 256; score: validation accuracy\n");
  if (options.prune_after > 0)
    std::fprintf(out,
                 "Pruning: from epoch %d on, a trial below the median of the earlier trials at "
                 "that epoch (once 3 reached it) or below %.4f stops\n",
                 options.prune_after, options.prune_below);
  std::vector<Search> searches;
  for (const char* name : {"grid", "random"})
    if (options.search == name || options.search == "compare")
      searches.push_back(run_one(options, name, data, out));
  std::fprintf(out,
               "\nSearch with a budget of %d trials, %d epoch%s per trial at most, seed %llu\n",
               options.trials, options.train.epochs, options.train.epochs == 1 ? "" : "s",
               static_cast<unsigned long long>(options.seed));
  print_comparison(out, searches);
  write_outputs(options, searches, out);
  return 0;
}

}  // namespace fmnist
