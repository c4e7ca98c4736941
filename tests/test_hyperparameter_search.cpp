// Hyperparameter search: the grid's order and cell centres, the random draws' distributions
// (statistical bounds from the math), seeds, pruning, and a search on a small synthetic problem.

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <dropnet/dropnet.hpp>
#include <string>
#include <vector>

using namespace dropnet;

namespace {

/// A trial that reports the scripted scores while the monitor lets it go on.
void play(const std::vector<double>& scores, TrialMonitor& monitor) {
  for (double s : scores)
    if (!monitor.report(s)) return;
}

/// Runs one scripted trial per curve.
SearchResult scripted(const std::vector<std::vector<double>>& curves, const SearchOptions& o) {
  std::vector<Configuration> configs(curves.size());
  std::size_t i = 0;
  return run_search(
      configs, [&](const Configuration&, Generator&, TrialMonitor& m) { play(curves[i++], m); }, o);
}

/// Kolmogorov-Smirnov distance between the sample and U[0, 1).
double ks_uniform(std::vector<double> t) {
  std::sort(t.begin(), t.end());
  const double n = static_cast<double>(t.size());
  double d = 0.0;
  for (std::size_t i = 0; i < t.size(); ++i)
    d = std::max({d, (static_cast<double>(i) + 1) / n - t[i], t[i] - static_cast<double>(i) / n});
  return d;
}

}  // namespace

TEST_CASE("grid: the cartesian product, first dimension slowest, last fastest") {
  SearchSpace space;
  space.choice("a", {1, 2}).integer("b", 5, 7).choice("c", {10, 20});
  const std::vector<Configuration> grid = space.grid({2, 3, 2});
  std::vector<std::vector<double>> expected;
  for (double a : {1, 2})
    for (double b : {5, 6, 7})
      for (double c : {10, 20}) expected.push_back({a, b, c});
  REQUIRE(grid.size() == expected.size());
  for (std::size_t i = 0; i < grid.size(); ++i) {
    CHECK(grid[i].values == expected[i]);
    CHECK(grid[i].names == std::vector<std::string>{"a", "b", "c"});
  }
  CHECK(grid[9].at("a") == 2);  // 9 = 1 * 6 + 1 * 2 + 1
  CHECK(grid[9].at("b") == 6);
  CHECK(grid[9].integer("c") == 20);
}

TEST_CASE("grid: p points at the centres of p equal cells, on the dimension's scale") {
  SearchSpace space;
  space.uniform("u", 0.0, 1.0).log_uniform("lr", 1e-4, 1e-1).integer("n", 0, 9);
  const std::vector<Configuration> g = space.grid({4, 3, 2});
  REQUIRE(g.size() == 24);
  std::vector<double> u, lr, n;
  for (const Configuration& c : g) {
    if (std::find(u.begin(), u.end(), c.at("u")) == u.end()) u.push_back(c.at("u"));
    if (std::find(lr.begin(), lr.end(), c.at("lr")) == lr.end()) lr.push_back(c.at("lr"));
    if (std::find(n.begin(), n.end(), c.at("n")) == n.end()) n.push_back(c.at("n"));
  }
  CHECK(u == std::vector<double>{0.125, 0.375, 0.625, 0.875});
  REQUIRE(lr.size() == 3);  // 10^-3.5, 10^-2.5, 10^-1.5: a log scale, ends excluded
  for (std::size_t i = 0; i < 3; ++i)
    CHECK(std::log10(lr[i]) == doctest::Approx(-3.5 + static_cast<double>(i)).epsilon(1e-12));
  CHECK(n == std::vector<double>{2, 7});  // floor(10 * 0.25), floor(10 * 0.75)
  // One point is the centre: the geometric mean on a log scale.
  const Configuration centre = space.grid({1, 1, 1}).front();
  CHECK(centre.at("u") == 0.5);
  CHECK(centre.at("lr") == doctest::Approx(std::sqrt(1e-4 * 1e-1)).epsilon(1e-12));
  CHECK(centre.at("n") == 5);
}

TEST_CASE("grid_points: the most even grid within the budget") {
  SearchSpace space;
  space.log_uniform("lr", 1e-4, 1e-1).uniform("dropout", 0, 0.5).log_uniform("l2", 1e-5, 1e-3);
  space.integer("width", 32, 256).choice("batch", {32, 64, 128, 256});
  CHECK(space.grid_points(1) == std::vector<int>{1, 1, 1, 1, 1});
  CHECK(space.grid_points(2) == std::vector<int>{2, 1, 1, 1, 1});
  CHECK(space.grid_points(16) == std::vector<int>{2, 2, 2, 2, 1});
  CHECK(space.grid_points(32) == std::vector<int>{2, 2, 2, 2, 2});
  CHECK(space.grid_points(243) == std::vector<int>{3, 3, 3, 3, 3});
  SearchSpace small;
  small.choice("c", {1, 2}).uniform("x", 0, 1);
  CHECK(small.grid_points(100) == std::vector<int>{2, 50});  // a choice has 2 values only
  for (int budget = 1; budget <= 300; ++budget) {
    long long product = 1;
    for (int p : space.grid_points(budget)) product *= p;
    CHECK(product <= budget);
    CHECK(space.grid(space.grid_points(budget)).size() == static_cast<std::size_t>(product));
  }
}

TEST_CASE("random: log-uniform values whose log is uniform between the bounds' logs") {
  SearchSpace space;
  space.log_uniform("lr", 1e-4, 1e-1);
  constexpr int n = 20000;
  const std::vector<Configuration> draws = space.random(n, 7);
  std::vector<double> t;
  int per_decade[3] = {0, 0, 0};
  for (const Configuration& c : draws) {
    const double v = c.at("lr");
    REQUIRE(v >= 1e-4);
    REQUIRE(v <= 1e-1);
    t.push_back((std::log(v) - std::log(1e-4)) / (std::log(1e-1) - std::log(1e-4)));
    ++per_decade[std::min(2, static_cast<int>(std::floor(std::log10(v) + 4)))];
  }
  // Kolmogorov-Smirnov: P(sqrt(n) D > 1.95) ~ 0.001 for a uniform sample. Values uniform on
  // [1e-4, 1e-1] instead would put 99% of t above 2/3: D ~ 0.66.
  CHECK(ks_uniform(t) < 1.95 / std::sqrt(double(n)));
  // Each decade holds 1/3 of the draws: binomial, within 4.5 standard deviations (p ~ 7e-6).
  const double sd = std::sqrt(n * (1.0 / 3) * (2.0 / 3));
  for (int count : per_decade) CHECK(std::abs(count - n / 3.0) < 4.5 * sd);
}

TEST_CASE("random: uniform, integer and choice draws are equally likely over their values") {
  SearchSpace space;
  space.uniform("x", -1, 3).integer("k", 1, 4).choice("c", {0.5, 8});
  constexpr int n = 20000;
  std::vector<double> t;
  int k_counts[4] = {0, 0, 0, 0};
  int c8 = 0;
  for (const Configuration& c : space.random(n, 11)) {
    t.push_back((c.at("x") + 1) / 4);
    ++k_counts[c.integer("k") - 1];
    c8 += c.at("c") == 8;
    REQUIRE((c.at("c") == 0.5 || c.at("c") == 8));
  }
  CHECK(ks_uniform(t) < 1.95 / std::sqrt(double(n)));
  for (int count : k_counts)  // each of 4 values: n/4, binomial sd sqrt(n * 1/4 * 3/4)
    CHECK(std::abs(count - n / 4.0) < 4.5 * std::sqrt(n * 0.25 * 0.75));
  CHECK(std::abs(c8 - n / 2.0) < 4.5 * std::sqrt(n * 0.25));
}

TEST_CASE("random: the same seed gives the same configurations, another seed others") {
  SearchSpace space;
  space.log_uniform("lr", 1e-4, 1e-1).integer("width", 32, 256);
  const auto a = space.random(10, 3), b = space.random(10, 3), c = space.random(10, 4);
  for (std::size_t i = 0; i < a.size(); ++i) CHECK(a[i].values == b[i].values);
  CHECK(a[0].values != c[0].values);
  // The first configurations do not depend on how many are drawn.
  CHECK(space.random(3, 3)[2].values == a[2].values);
}

TEST_CASE("run_search: trial i runs with Generator(seed + i) and can be replayed alone") {
  SearchSpace space;
  space.uniform("x", 0, 1);
  auto objective = [](const Configuration& c, Generator& gen, TrialMonitor& m) {
    for (int e = 0; e < 3; ++e) m.report(c.at("x") + gen.uniform());
  };
  const auto configs = space.random(4, 1);
  const SearchResult r = run_search(configs, objective, SearchOptions().seed(100));
  REQUIRE(r.trials.size() == 4);
  for (const Trial& t : r.trials) {
    CHECK(t.seed == 100 + static_cast<std::uint64_t>(t.index));
    CHECK(t.config.values == configs[static_cast<std::size_t>(t.index)].values);
    CHECK(t.scores.size() == 3);
    CHECK_FALSE(t.pruned);
    // Replay: the same configuration and seed, alone.
    SearchOptions options;
    std::vector<Trial> none;
    TrialMonitor replay(options, none);
    Generator gen(t.seed);
    objective(t.config, gen, replay);
    CHECK(replay.scores() == t.scores);
  }
}

TEST_CASE("pruning: a threshold from epoch k on; never before k") {
  const SearchResult r = scripted({{0.1, 0.2, 0.3, 0.4},    // below 0.5 at epoch 2: pruned
                                   {0.1, 0.6, 0.7, 0.8},    // below at epoch 1 only, before k
                                   {0.9, 0.9, 0.4, 0.95}},  // dips at epoch 3: pruned there
                                  SearchOptions().prune_from_epoch(2).prune_below(0.5));
  CHECK(r.trials[0].pruned);
  CHECK(r.trials[0].scores == std::vector<double>{0.1, 0.2});
  CHECK_FALSE(r.trials[1].pruned);
  CHECK(r.trials[1].scores.size() == 4);
  CHECK(r.trials[2].pruned);
  CHECK(r.trials[2].scores.size() == 3);
  CHECK(r.best().index == 1);  // the only completed trial, although trial 2 scored higher once
  // k = 0: no pruning at all, whatever the threshold.
  const SearchResult off = scripted({{0.1, 0.1}}, SearchOptions().prune_below(0.5));
  CHECK_FALSE(off.trials[0].pruned);
}

TEST_CASE("pruning: below the median of the earlier trials at the same epoch") {
  // Trials 0 and 1 set the median at epoch 2: (0.6 + 0.8) / 2 = 0.7, so trial 2 (0.65) is pruned
  // there; trial 3 (0.9) passes median(0.6, 0.8, 0.65) = 0.65. Trial 4 sees 0.6, 0.8, 0.65, 0.9
  // at epoch 2, pruned trials 2 and 3 included: median 0.725, and 0.71 is pruned (without the
  // pruned trials the median would be 0.7 and it would pass).
  const SearchResult r = scripted(
      {{0.5, 0.6, 0.7}, {0.5, 0.8, 0.9}, {0.9, 0.65, 0.99}, {0.5, 0.9, 0.5}, {0.1, 0.71, 0.9}},
      SearchOptions().prune_from_epoch(2).prune_below_median(2));
  CHECK_FALSE(r.trials[0].pruned);
  CHECK_FALSE(r.trials[1].pruned);
  CHECK(r.trials[2].pruned);
  CHECK(r.trials[2].scores.size() == 2);
  // Epoch 3 of trial 3: 0.5 < median(0.7, 0.9) = 0.8, pruned at its last epoch.
  CHECK(r.trials[3].pruned);
  CHECK(r.trials[3].scores.size() == 3);
  CHECK(r.trials[4].pruned);
  CHECK(r.trials[4].scores.size() == 2);
  // With fewer earlier trials than min_trials the median rule waits.
  const SearchResult early =
      scripted({{0.9, 0.9}, {0.1, 0.1}}, SearchOptions().prune_from_epoch(1).prune_below_median(2));
  CHECK_FALSE(early.trials[1].pruned);
  // An odd count: the middle value. 0.55 < median(0.5, 0.6, 0.9) = 0.6.
  const SearchResult odd = scripted({{0.5}, {0.6}, {0.9}, {0.55}, {0.6}},
                                    SearchOptions().prune_from_epoch(1).prune_below_median(3));
  CHECK(odd.trials[3].pruned);
  CHECK_FALSE(odd.trials[4].pruned);  // median(0.5, 0.6, 0.9, 0.55) = 0.575 <= 0.6
}

TEST_CASE("TrialMonitor: NaN is the worst score; reporting after a prune throws") {
  SearchOptions options = SearchOptions().prune_from_epoch(1).prune_below(0.0);
  std::vector<Trial> none;
  TrialMonitor m(options, none);
  CHECK_FALSE(m.report(std::nan("")));
  CHECK(m.scores().front() == -std::numeric_limits<double>::infinity());
  CHECK_THROWS_AS(m.report(1.0), InvalidArgument);
}

TEST_CASE("errors: bad ranges, names and grid sizes") {
  CHECK_THROWS_AS(Dimension::uniform("x", 1, 1), InvalidArgument);
  CHECK_THROWS_AS(Dimension::uniform("x", 0, INFINITY), InvalidArgument);
  CHECK_THROWS_AS(Dimension::log_uniform("lr", 0, 1), InvalidArgument);
  CHECK_THROWS_AS(Dimension::log_uniform("lr", std::nan(""), 1), InvalidArgument);
  CHECK_THROWS_AS(Dimension::integer("k", 3, 2), InvalidArgument);
  CHECK_THROWS_AS(Dimension::choice("c", {}), InvalidArgument);
  CHECK_THROWS_AS(Dimension::choice("c", {1, std::nan("")}), InvalidArgument);
  SearchSpace space;
  space.choice("c", {1, 2});
  CHECK_THROWS_AS(space.uniform("c", 0, 1), InvalidArgument);
  CHECK_THROWS_AS(space.grid({3}), InvalidArgument);
  CHECK_THROWS_AS(space.grid({1, 1}), InvalidArgument);
  CHECK_THROWS_AS(space.grid({0}), InvalidArgument);
  CHECK_THROWS_AS(space.random(0, 1), InvalidArgument);
  CHECK_THROWS_AS(space.grid_points(0), InvalidArgument);
  CHECK_THROWS_WITH_AS(space.grid({1}).front().at("lr"),
                       "Configuration::at: no dimension named 'lr'", InvalidArgument);
  CHECK_THROWS_AS(SearchResult().best(), InvalidArgument);
}

TEST_CASE("search_csv and search_table: every trial, the table best first, pruned last") {
  SearchSpace space;
  space.choice("lr", {0.1, 0.01, 0.001});
  const std::vector<std::vector<double>> curves = {{0.5, 0.6}, {0.2, 0.1}, {0.7, 0.8}};
  std::size_t i = 0;
  const SearchResult r = run_search(
      space.grid({3}),
      [&](const Configuration&, Generator&, TrialMonitor& m) { play(curves[i++], m); },
      SearchOptions().seed(5).prune_from_epoch(2).prune_below(0.3));
  const std::string csv = search_csv(r);
  CHECK(csv.rfind("trial,seed,lr,epochs,score,pruned,seconds,scores\n0,5,0.1,2,0.6,0,", 0) == 0);
  CHECK(csv.find("\n1,6,0.01,2,0.1,1,") != std::string::npos);
  CHECK(csv.find(",0.5;0.6\n") != std::string::npos);
  const std::string table = search_table(r);
  const auto row = [&](const char* text) { return table.find(text); };
  CHECK(row("   1     2") < row("   2     0"));
  CHECK(row("   2     0") < row("   3     1"));
  CHECK(table.find("yes") != std::string::npos);
  CHECK(search_table(r, 1).find("   2     0") == std::string::npos);
}

namespace {

/// Two Gaussian blobs in 2-D, centres (-1, -1) and (1, 1), standard deviation 0.5.
void blobs(Index n, Generator& gen, Matrix<float>& x, Labels& y) {
  x.resize(2, n);
  y.resize(n);
  for (Index j = 0; j < n; ++j) {
    y(j) = static_cast<std::int32_t>(j % 2);
    for (Index i = 0; i < 2; ++i) x(i, j) = (y(j) ? 1.0f : -1.0f) + gen.normal<float>(0, 0.5f);
  }
}

}  // namespace

TEST_CASE("a grid search on two blobs: fit reports through TrialCallback, pruning stops fit") {
  Generator data_gen(1);
  Matrix<float> x, x_valid;
  Labels y, y_valid;
  blobs(200, data_gen, x, y);
  blobs(100, data_gen, x_valid, y_valid);
  SearchSpace space;
  space.choice("lr", {1e-7, 1e-2}).choice("width", {4, 8});
  std::vector<std::size_t> epochs_run;
  auto objective = [&](const Configuration& c, Generator& gen, TrialMonitor& monitor) {
    const auto width = static_cast<Index>(c.integer("width"));
    Sequential<float> model(2);
    model.add(Dense<float, ReLU>(2, width, gen));
    model.add(Dense<float>(width, 2, gen));
    SoftmaxCrossEntropy<float> loss;
    Adam<float> optimizer(model.parameters(), AdamOptions(c.at("lr")));
    TrialCallback<float> report(monitor);
    FitOptions<float> options;
    options.epochs = 10;
    options.callbacks = {&report};
    epochs_run.push_back(fit(model, loss, optimizer, x, y, gen, options,
                             ValidationData<float, Labels>{x_valid, y_valid})
                             .size());
  };
  const SearchResult r = run_search(space.grid({2, 2}), objective, SearchOptions().seed(9));
  // lr 1e-7 moves the weights by ~1e-5 in 70 steps: validation accuracy stays where the
  // initialization put it; lr 1e-2 separates the blobs (their Bayes accuracy is above 0.99).
  CHECK(r.best().config.at("lr") == 1e-2);
  CHECK(r.best().score() > 0.95);
  for (std::size_t i = 0; i < epochs_run.size(); ++i) CHECK(epochs_run[i] == 10);
  // Same seed, same search; a threshold no accuracy reaches prunes every trial after epoch 3,
  // and fit stops there.
  const SearchResult again = run_search(space.grid({2, 2}), objective, SearchOptions().seed(9));
  for (std::size_t i = 0; i < r.trials.size(); ++i)
    CHECK(again.trials[i].scores == r.trials[i].scores);
  epochs_run.clear();
  const SearchResult pruned = run_search(
      space.grid({2, 2}), objective, SearchOptions().seed(9).prune_from_epoch(3).prune_below(1.5));
  for (std::size_t i = 0; i < pruned.trials.size(); ++i) {
    CHECK(pruned.trials[i].pruned);
    CHECK(epochs_run[i] == 3);
    CHECK(pruned.trials[i].scores ==
          std::vector<double>(r.trials[i].scores.begin(), r.trials[i].scores.begin() + 3));
  }
}
