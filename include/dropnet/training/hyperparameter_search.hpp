#pragma once
// Hyperparameter search (course chapter 004, section 14): grid search and random search over a
// user-defined space, one trial per configuration, an optional early stop of bad trials, and the
// results as a table and a CSV.
//
//   SearchSpace space;
//   space.log_uniform("lr", 1e-4, 1e-1).uniform("dropout", 0.0, 0.5)
//        .integer("width", 32, 256).choice("batch", {32, 64, 128, 256});
//   std::vector<Configuration> configs = space.random(20, seed);   // or space.grid({3, 2, 2, 1})
//   SearchResult result = run_search(configs,
//       [&](const Configuration& c, Generator& gen, TrialMonitor& monitor) {
//         Sequential<float> model = build(c.integer("width"), c.at("dropout"), gen);
//         TrialCallback<float> report(monitor, "val_accuracy");     // stops a pruned trial
//         options.callbacks = {&report};                              // fit's callbacks
//         fit(model, loss, optimizer, x_train, y_train, gen, options, {x_valid, y_valid});
//       }, SearchOptions().seed(seed).prune_from_epoch(2).prune_below_median());
//   std::string table = search_table(result), csv = search_csv(result);
//
// Values. Every dimension maps a unit coordinate u in [0, 1) to a value (its inverse CDF):
//   uniform [a, b]:      a + u (b - a)
//   log_uniform [a, b]:  exp(log a + u (log b - log a))    (0 < a < b: log of the value uniform)
//   integer [a, b]:      a + floor(u (b - a + 1))          (every integer of [a, b], equally
//   likely) choice {v_0..v_n-1}: v_floor(u n)
// Random search draws u uniform from a Generator (53 bits; the bias of floor(u n) is below
// n / 2^53). Grid search puts p points of a dimension at the centres of p equal cells,
// u_i = (i + 1/2) / p: one point is the centre of the range (the geometric mean on a log scale),
// and p = n points of a choice or integer dimension are exactly its n values, in order.
//
// Order. grid(points) enumerates the cartesian product with the first dimension (in the order
// they were added) varying slowest and the last fastest, as nested loops and itertools.product.
// random(n, seed) draws configuration i from Generator(seed), dimension by dimension, so the
// same seed gives the same configurations.
//
// Trials. run_search calls the objective once per configuration, in order, with
// Generator(options.seed + i) for trial i: a trial's result depends only on its configuration and
// its seed (Trial::seed), so any trial can be run again alone. The objective reports one score
// per epoch to its TrialMonitor; scores are higher-is-better (report a loss as its negative,
// which TrialCallback does for "loss" and "val_loss"); a NaN counts as -infinity. A trial's score
// is its last reported one (-infinity if it reported none).
//
// Early stop of bad trials (off by default). From epoch k = prune_from_epoch (1-based) on, after
// each report, a trial is pruned (monitor.report returns false, and the objective should stop)
// when its score at that epoch is
//   - below prune_below (a threshold), or
//   - with prune_below_median, below the median of the scores that earlier trials (pruned ones
//     included) reported at the same epoch, once at least median_min_trials of them reached it.
// This is Optuna's MedianPruner (n_warmup_steps = k - 1, n_startup_trials) except that the
// trial's score at that epoch is compared, not its best so far. The median of an even count is
// the mean of the two middle values. Reporting again after a prune throws InvalidArgument.
//
// Throws InvalidArgument for an empty or inverted range, a non-positive log-uniform bound, a
// non-finite bound or choice, a duplicate name, an unknown name in Configuration::at, a wrong
// number of grid points or one a discrete dimension cannot fill, a budget or trial count < 1.
// Exceptions of the objective propagate (catch a diverging run's NumericalError inside it to
// keep searching).

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "../core/error.hpp"
#include "../core/generator.hpp"
#include "callback.hpp"

namespace dropnet {

/// One hyperparameter: its name and how a search picks its values (see the header comment).
class Dimension {
 public:
  /// The distribution a random search draws from, and the grid's spacing.
  enum class Kind { choice, uniform, log_uniform, integer };

  /// One of `values`, each equally likely. Requires at least one value, all finite.
  static Dimension choice(std::string name, std::vector<double> values) {
    detail::require(!values.empty(), "Dimension::choice", "'", name, "' has no values");
    for (double v : values)
      detail::require(std::isfinite(v), "Dimension::choice", "'", name, "' has value ", v);
    return Dimension(std::move(name), Kind::choice, std::move(values));
  }

  /// Uniform on [low, high]; requires finite low < high.
  static Dimension uniform(std::string name, double low, double high) {
    require_range("Dimension::uniform", name, low, high);
    return Dimension(std::move(name), Kind::uniform, {low, high});
  }

  /// log(value) uniform on [log low, log high]; requires finite 0 < low < high.
  static Dimension log_uniform(std::string name, double low, double high) {
    require_range("Dimension::log_uniform", name, low, high);
    detail::require(low > 0, "Dimension::log_uniform", "'", name, "' needs low > 0, got ", low);
    return Dimension(std::move(name), Kind::log_uniform, {low, high});
  }

  /// Every integer of [low, high], each equally likely; requires low <= high.
  static Dimension integer(std::string name, long long low, long long high) {
    detail::require(low <= high, "Dimension::integer", "'", name, "' has low ", low, " > high ",
                    high);
    return Dimension(std::move(name), Kind::integer,
                     {static_cast<double>(low), static_cast<double>(high)});
  }

  /// The name a Configuration knows the value by.
  const std::string& name() const { return name_; }
  /// Which distribution.
  Kind kind() const { return kind_; }

  /// How many distinct values a choice or integer dimension has; 0 for a continuous one.
  double count() const {
    if (kind_ == Kind::choice) return static_cast<double>(values_.size());
    if (kind_ == Kind::integer) return values_[1] - values_[0] + 1;
    return 0;
  }

  /// The value at unit coordinate u in [0, 1) (the header's table): what random search draws
  /// with u uniform and grid search places with u = (i + 1/2) / p.
  double at(double u) const {
    const double lo = values_.front(), hi = values_.back();
    switch (kind_) {
      case Kind::uniform:
        return lo + u * (hi - lo);
      case Kind::log_uniform:
        return std::exp(std::log(lo) + u * (std::log(hi) - std::log(lo)));
      case Kind::integer:
        return lo + cell(u);
      case Kind::choice:
        break;
    }
    return values_[static_cast<std::size_t>(cell(u))];
  }

 private:
  Dimension(std::string name, Kind kind, std::vector<double> values)
      : name_(std::move(name)), kind_(kind), values_(std::move(values)) {}

  static void require_range(const char* where, const std::string& name, double low, double high) {
    detail::require(std::isfinite(low) && std::isfinite(high) && low < high, where, "'", name,
                    "' needs finite low < high, got [", low, ", ", high, "]");
  }

  /// floor(u n) for the n discrete values, clamped to n - 1 against rounding at u -> 1.
  double cell(double u) const { return std::min(std::floor(u * count()), count() - 1); }

  std::string name_;
  Kind kind_;
  std::vector<double> values_;  ///< a choice's values; [low, high] otherwise
};

/// One point of a search space: a value per dimension, in the space's order.
struct Configuration {
  std::vector<std::string> names;  ///< the dimensions' names
  std::vector<double> values;      ///< values[i] is names[i]'s

  /// The value of dimension `name`; throws InvalidArgument for an unknown name.
  double at(const std::string& name) const {
    const auto it = std::find(names.begin(), names.end(), name);
    detail::require(it != names.end(), "Configuration::at", "no dimension named '", name, "'");
    return values[static_cast<std::size_t>(it - names.begin())];
  }

  /// at(name) rounded to the nearest integer (integer and choice dimensions hold whole numbers).
  long long integer(const std::string& name) const { return std::llround(at(name)); }
};

/// The dimensions a search explores, in the order they were added.
class SearchSpace {
 public:
  /// Adds a dimension; throws InvalidArgument if its name is taken.
  SearchSpace& add(Dimension dimension) {
    for (const Dimension& d : dimensions_)
      detail::require(d.name() != dimension.name(), "SearchSpace::add", "dimension '",
                      dimension.name(), "' is already in the space");
    dimensions_.push_back(std::move(dimension));
    return *this;
  }
  /// add(Dimension::choice(...)).
  SearchSpace& choice(std::string name, std::vector<double> values) {
    return add(Dimension::choice(std::move(name), std::move(values)));
  }
  /// add(Dimension::uniform(...)).
  SearchSpace& uniform(std::string name, double low, double high) {
    return add(Dimension::uniform(std::move(name), low, high));
  }
  /// add(Dimension::log_uniform(...)).
  SearchSpace& log_uniform(std::string name, double low, double high) {
    return add(Dimension::log_uniform(std::move(name), low, high));
  }
  /// add(Dimension::integer(...)).
  SearchSpace& integer(std::string name, long long low, long long high) {
    return add(Dimension::integer(std::move(name), low, high));
  }

  /// The dimensions, in order.
  const std::vector<Dimension>& dimensions() const { return dimensions_; }

  /// The cartesian product of points[d] cell-centred values per dimension d, the last dimension
  /// varying fastest: prod(points) configurations. Requires one entry per dimension, each >= 1
  /// and, for a choice or integer dimension, <= its count of values.
  std::vector<Configuration> grid(const std::vector<int>& points) const {
    detail::require(points.size() == dimensions_.size(), "SearchSpace::grid", points.size(),
                    " point counts for ", dimensions_.size(), " dimensions");
    std::size_t total = 1;
    for (std::size_t d = 0; d < points.size(); ++d) {
      const double count = dimensions_[d].count();
      detail::require(points[d] >= 1 && (count == 0 || points[d] <= count), "SearchSpace::grid",
                      "dimension '", dimensions_[d].name(), "' cannot take ", points[d], " points");
      total *= static_cast<std::size_t>(points[d]);
    }
    std::vector<Configuration> configs;
    configs.reserve(total);
    std::vector<int> index(points.size(), 0);  // an odometer, the last digit turning fastest
    for (std::size_t n = 0; n < total; ++n) {
      configs.push_back(make([&](std::size_t d) { return (index[d] + 0.5) / points[d]; }));
      for (std::size_t d = points.size(); d-- > 0 && ++index[d] == points[d];) index[d] = 0;
    }
    return configs;
  }

  /// `trials` configurations drawn from Generator(seed): u uniform per dimension, in order.
  std::vector<Configuration> random(int trials, std::uint64_t seed) const {
    detail::require(trials >= 1, "SearchSpace::random", "trials must be >= 1, got ", trials);
    Generator gen(seed);
    std::vector<Configuration> configs;
    configs.reserve(static_cast<std::size_t>(trials));
    for (int i = 0; i < trials; ++i)
      configs.push_back(make([&](std::size_t) { return gen.uniform(); }));
    return configs;
  }

  /// Points per dimension for a grid of at most `budget` trials, as even as the budget allows:
  /// starting from one point each, each dimension in turn (first to last, round after round)
  /// gains a point while the product stays <= budget and a discrete dimension has values left.
  std::vector<int> grid_points(int budget) const {
    detail::require(budget >= 1, "SearchSpace::grid_points", "budget must be >= 1, got ", budget);
    std::vector<int> points(dimensions_.size(), 1);
    long long product = 1;
    for (bool grew = true; grew;) {
      grew = false;
      for (std::size_t d = 0; d < points.size(); ++d) {
        const double count = dimensions_[d].count();
        const long long next = product / points[d] * (points[d] + 1);
        if (next > budget || (count > 0 && points[d] + 1 > count)) continue;
        ++points[d];
        product = next;
        grew = true;
      }
    }
    return points;
  }

 private:
  /// The configuration whose dimension d sits at unit coordinate unit(d).
  template <class Unit>
  Configuration make(Unit unit) const {
    Configuration c;
    for (std::size_t d = 0; d < dimensions_.size(); ++d) {
      c.names.push_back(dimensions_[d].name());
      c.values.push_back(dimensions_[d].at(unit(d)));
    }
    return c;
  }

  std::vector<Dimension> dimensions_;
};

/// One configuration's run.
struct Trial {
  int index = 0;               ///< 0-based position in the search
  std::uint64_t seed = 0;      ///< the objective ran with Generator(seed)
  Configuration config;        ///< what it tried
  std::vector<double> scores;  ///< one per epoch reported, higher is better (NaN stored as -inf)
  bool pruned = false;         ///< stopped early by the pruning rule
  double seconds = 0.0;        ///< wall time of the objective

  /// The last reported score, or -infinity if none.
  double score() const {
    return scores.empty() ? -std::numeric_limits<double>::infinity() : scores.back();
  }
};

/// How run_search seeds the trials and when it stops bad ones (the header comment).
class SearchOptions {
 public:
  /// Trial i runs with Generator(seed + i).
  SearchOptions& seed(std::uint64_t s) {
    seed_ = s;
    return *this;
  }
  /// k: no trial is pruned before its k-th epoch (1-based); 0 (the default) never prunes.
  SearchOptions& prune_from_epoch(int k) {
    detail::require(k >= 0, "SearchOptions::prune_from_epoch", "k must be >= 0, got ", k);
    prune_from_epoch_ = k;
    return *this;
  }
  /// Prune a trial whose score from epoch k on is below `threshold`.
  SearchOptions& prune_below(double threshold) {
    detail::require(!std::isnan(threshold), "SearchOptions::prune_below", "threshold is NaN");
    threshold_ = threshold;
    return *this;
  }
  /// Prune a trial whose score at an epoch e >= k is below the median of the earlier trials'
  /// scores at epoch e, once at least `min_trials` (>= 1) earlier trials reached it.
  SearchOptions& prune_below_median(int min_trials = 3) {
    detail::require(min_trials >= 1, "SearchOptions::prune_below_median",
                    "min_trials must be >= 1, got ", min_trials);
    median_min_trials_ = min_trials;
    return *this;
  }

  /// Trial 0's seed.
  std::uint64_t seed() const { return seed_; }
  /// k, 0 for never.
  int prune_from_epoch() const { return prune_from_epoch_; }
  /// The threshold, -infinity when unset.
  double prune_below() const { return threshold_; }
  /// The median rule's minimum count of earlier trials; 0 when the rule is off.
  int median_min_trials() const { return median_min_trials_; }

 private:
  std::uint64_t seed_ = 0;
  int prune_from_epoch_ = 0;
  double threshold_ = -std::numeric_limits<double>::infinity();
  int median_min_trials_ = 0;
};

/// Handed to the objective: takes the trial's score after each epoch and says whether to go on.
class TrialMonitor {
 public:
  /// A monitor for a trial that comes after `earlier` (kept by reference, not owned).
  TrialMonitor(const SearchOptions& options, const std::vector<Trial>& earlier)
      : options_(options), earlier_(earlier) {}

  /// Records this epoch's score (NaN becomes -inf); returns false if the trial is now pruned,
  /// and the objective should stop. Throws InvalidArgument if it was already pruned.
  bool report(double score) {
    detail::require(!pruned_, "TrialMonitor::report", "the trial was pruned after epoch ",
                    scores_.size());
    scores_.push_back(std::isnan(score) ? -std::numeric_limits<double>::infinity() : score);
    pruned_ = should_prune();
    return !pruned_;
  }

  /// The scores reported so far, one per epoch.
  const std::vector<double>& scores() const { return scores_; }
  /// True once the pruning rule has stopped the trial.
  bool pruned() const { return pruned_; }

 private:
  bool should_prune() const {
    const std::size_t epoch = scores_.size();  // 1-based
    const int k = options_.prune_from_epoch();
    if (k == 0 || epoch < static_cast<std::size_t>(k)) return false;
    const double score = scores_.back();
    if (score < options_.prune_below()) return true;
    if (options_.median_min_trials() == 0) return false;
    std::vector<double> at_epoch;
    for (const Trial& t : earlier_)
      if (t.scores.size() >= epoch) at_epoch.push_back(t.scores[epoch - 1]);
    if (at_epoch.size() < static_cast<std::size_t>(options_.median_min_trials())) return false;
    return score < median(at_epoch);
  }

  static double median(std::vector<double> v) {
    const std::size_t half = v.size() / 2;
    std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(half), v.end());
    const double upper = v[half];
    if (v.size() % 2 == 1) return upper;
    return 0.5 *
           (*std::max_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(half)) + upper);
  }

  const SearchOptions& options_;
  const std::vector<Trial>& earlier_;
  std::vector<double> scores_;
  bool pruned_ = false;
};

/// A fit callback that reports `metric` (EpochLogs' names; "loss" and "val_loss" negated, so
/// higher is better) to a TrialMonitor after each epoch and stops training when it prunes.
template <class T>
class TrialCallback : public Callback<T> {
 public:
  /// Reports to `monitor` (not owned). Throws InvalidArgument for an unknown metric name.
  explicit TrialCallback(TrialMonitor& monitor, std::string metric = "val_accuracy")
      : monitor_(monitor), metric_(std::move(metric)) {
    EpochLogs{}.get(metric_);  // throws for an unknown name, before training
    sign_ = metric_ == "loss" || metric_ == "val_loss" ? -1.0 : 1.0;
  }
  /// Reports the epoch's metric; sets stop_training when the trial is pruned.
  void on_epoch_end(TrainingContext<T>& context, const EpochLogs& logs) override {
    if (!monitor_.report(sign_ * logs.get(metric_))) context.stop_training = true;
  }

 private:
  TrialMonitor& monitor_;
  std::string metric_;
  double sign_ = 1.0;
};

/// Every trial of a search, in the order they ran.
struct SearchResult {
  std::vector<Trial> trials;  ///< trials[i].index == i

  /// The trial with the highest score among those not pruned (among all if every one was);
  /// the earliest wins a tie. Throws InvalidArgument if there are no trials.
  const Trial& best() const {
    detail::require(!trials.empty(), "SearchResult::best", "the search has no trials");
    const bool any_complete =
        std::any_of(trials.begin(), trials.end(), [](const Trial& t) { return !t.pruned; });
    const Trial* best = nullptr;
    for (const Trial& t : trials)
      if ((!any_complete || !t.pruned) && (!best || t.score() > best->score())) best = &t;
    return *best;
  }
};

/// Runs `objective(const Configuration&, Generator&, TrialMonitor&)` once per configuration, in
/// order, trial i with Generator(options.seed() + i), pruning as `options` say.
template <class Objective>
SearchResult run_search(const std::vector<Configuration>& configs, Objective objective,
                        const SearchOptions& options = SearchOptions()) {
  SearchResult result;
  for (std::size_t i = 0; i < configs.size(); ++i) {
    Trial trial;
    trial.index = static_cast<int>(i);
    trial.seed = options.seed() + i;
    trial.config = configs[i];
    Generator gen(trial.seed);
    TrialMonitor monitor(options, result.trials);
    const auto start = std::chrono::steady_clock::now();
    objective(trial.config, gen, monitor);
    trial.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    trial.scores = monitor.scores();
    trial.pruned = monitor.pruned();
    result.trials.push_back(std::move(trial));
  }
  return result;
}

namespace detail {

/// printf into a std::string (values and table cells are short).
template <class... Args>
std::string format(const char* pattern, Args... args) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, pattern, args...);
  return buffer;
}

}  // namespace detail

/// The trials as CSV, in the order they ran, under the header
/// `trial,seed,<dimension names>,epochs,score,pruned,seconds,scores` (scores: the per-epoch scores
/// joined by ';'). Values with 6 significant digits.
inline std::string search_csv(const SearchResult& result) {
  std::string csv = "trial,seed";
  if (!result.trials.empty())
    for (const std::string& name : result.trials.front().config.names) csv += "," + name;
  csv += ",epochs,score,pruned,seconds,scores\n";
  for (const Trial& t : result.trials) {
    csv += std::to_string(t.index) + "," + std::to_string(t.seed);
    for (double v : t.config.values) csv += detail::format(",%g", v);
    csv += "," + std::to_string(t.scores.size()) + detail::format(",%g", t.score()) +
           (t.pruned ? ",1" : ",0") + detail::format(",%.3f,", t.seconds);
    for (std::size_t e = 0; e < t.scores.size(); ++e)
      csv += detail::format(e == 0 ? "%g" : ";%g", t.scores[e]);
    csv += "\n";
  }
  return csv;
}

/// A text table of the trials, best score first (pruned trials after the completed ones), at
/// most `rows` rows (0 = all): rank, trial, each dimension's value, epochs run, score, whether
/// pruned, seconds.
inline std::string search_table(const SearchResult& result, std::size_t rows = 0) {
  std::vector<const Trial*> order;
  for (const Trial& t : result.trials) order.push_back(&t);
  std::stable_sort(order.begin(), order.end(), [](const Trial* a, const Trial* b) {
    if (a->pruned != b->pruned) return b->pruned;
    return a->score() > b->score();
  });
  if (rows > 0 && order.size() > rows) order.resize(rows);
  std::string table = detail::format("%4s %5s", "rank", "trial");
  if (!result.trials.empty())
    for (const std::string& name : result.trials.front().config.names)
      table += detail::format(" %10.10s", name.c_str());
  table += detail::format(" %6s %8s %6s %8s\n", "epochs", "score", "pruned", "seconds");
  for (std::size_t r = 0; r < order.size(); ++r) {
    const Trial& t = *order[r];
    table += detail::format("%4zu %5d", r + 1, t.index);
    for (double v : t.config.values) table += detail::format(" %10.4g", v);
    table += detail::format(" %6zu %8.4f %6s %8.1f\n", t.scores.size(), t.score(),
                            t.pruned ? "yes" : "no", t.seconds);
  }
  return table;
}

}  // namespace dropnet
