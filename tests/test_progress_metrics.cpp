// fit's reporting tools: the Progress callback (plain lines off a terminal, the bar, the
// whole-run ETA), CsvLogger and write_history_csv, argmax / predict_classes and the confusion
// matrix with precision, recall and F1.

#include <doctest/doctest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <dropnet/callbacks/csv_logger.hpp>
#include <dropnet/callbacks/progress.hpp>
#include <dropnet/dropnet.hpp>
#include <dropnet/training/classification.hpp>

#include "test_data.hpp"

using namespace dropnet;

namespace {

constexpr Index features = 3;
constexpr Index samples = 60;

struct Problem {
  Matrix<float> x;
  Labels y;
  Sequential<float> model;
};

Problem small_problem() {
  Generator gen(21);
  Problem p{test::normal_matrix<float>(features, samples, gen), Labels(samples),
            Sequential<float>(features)};
  for (Index j = 0; j < samples; ++j) p.y(j) = p.x(0, j) > 0 ? 1 : 0;
  p.model.add(Dense<float>(features, 2, gen));
  return p;
}

/// Trains p.model for `epochs` with validation data and the given callbacks.
History train(Problem& p, int epochs, std::vector<Callback<float>*> callbacks) {
  SoftmaxCrossEntropy<float> loss;
  SGD<float> optimizer(p.model.parameters(), SGDOptions(0.1));
  Generator gen(22);
  FitOptions<float> options;
  options.epochs = epochs;
  options.batch_size = 16;
  options.callbacks = std::move(callbacks);
  return fit(p.model, loss, optimizer, p.x, p.y, gen, options, ValidationData{p.x, p.y});
}

/// Everything written to `file` so far.
std::string contents(std::FILE* file) {
  std::rewind(file);
  std::string text;
  for (int c = std::fgetc(file); c != EOF; c = std::fgetc(file)) text += static_cast<char>(c);
  return text;
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

TEST_CASE("Progress off a terminal writes one plain line per epoch") {
  std::FILE* file = std::tmpfile();
  REQUIRE(file != nullptr);
  Problem p = small_problem();
  Progress<float> progress(file);  // automatic: a file is not a terminal
  CHECK_FALSE(progress.draws_bar());
  train(p, 3, {&progress});
  const std::string text = contents(file);
  std::fclose(file);
  CHECK(text.find('\r') == std::string::npos);
  CHECK(text.find('\033') == std::string::npos);
  std::istringstream lines(text);
  std::vector<std::string> all;
  for (std::string line; std::getline(lines, line);) all.push_back(line);
  REQUIRE(all.size() == 3);
  CHECK(all[0].find("epoch 1/3  train loss ") == 0);
  CHECK(all[2].find("epoch 3/3  train loss ") == 0);
  CHECK(all[2].find("valid loss ") != std::string::npos);
  CHECK(progress.samples() == 3 * samples);
  CHECK(progress.train_seconds() > 0.0);
}

TEST_CASE("Progress in bar style redraws in place and ends each epoch with its line") {
  std::FILE* file = std::tmpfile();
  REQUIRE(file != nullptr);
  Problem p = small_problem();
  Progress<float> progress(file, ProgressStyle::bar, "mlp");
  CHECK(progress.draws_bar());
  train(p, 2, {&progress});
  const std::string text = contents(file);
  std::fclose(file);
  CHECK(text.find("\r[mlp] 1/2 [####################] 4/4 loss ") != std::string::npos);
  CHECK(text.find("validating\033[K") != std::string::npos);
  CHECK(text.find("\r\033[K[mlp] epoch 2/2  train loss ") != std::string::npos);
}

TEST_CASE("the ETA covers the rest of the run, not only the current epoch") {
  BatchLogs logs;
  logs.epoch = 0;
  logs.batch = 4;  // the 5th of 10 batches of the first of 3 epochs
  logs.batches = 10;
  // 10 s for 5 batches: 2 s per batch, 5 left in this epoch and 20 in the next two.
  CHECK(Progress<float>::run_eta(10.0, 5, logs, 3) == doctest::Approx(50.0));
  logs.epoch = 2;
  logs.batch = 9;  // the very last batch
  CHECK(Progress<float>::run_eta(60.0, 30, logs, 3) == 0.0);
  CHECK(minutes_seconds(125.4) == "2:05");
  CHECK(thousands(1234567) == "1,234,567");
  CHECK(thousands(-1000) == "-1,000");
}

TEST_CASE("CsvLogger writes History as write_history_csv does, one flushed row per epoch") {
  const auto dir = std::filesystem::temp_directory_path();
  const auto logged = dir / ("dropnet_csv_logger_" + std::to_string(std::rand()) + ".csv");
  const auto written = dir / ("dropnet_csv_history_" + std::to_string(std::rand()) + ".csv");
  Problem p = small_problem();
  CsvLogger<float> csv(logged.string());
  const History history = train(p, 3, {&csv});
  write_history_csv(written.string(), history);
  const std::string text = read_file(logged);
  CHECK(text == read_file(written));
  std::filesystem::remove(logged);
  std::filesystem::remove(written);

  std::istringstream lines(text);
  std::string line;
  REQUIRE(std::getline(lines, line));
  CHECK(line == "epoch,loss,accuracy,val_loss,val_accuracy,learning_rate,seconds");
  for (const EpochLogs& e : history.epochs) {
    REQUIRE(std::getline(lines, line));
    std::istringstream row(line);
    int epoch = 0;
    char comma = 0;
    double loss = 0, accuracy = 0, val_loss = 0;
    row >> epoch >> comma >> loss >> comma >> accuracy >> comma >> val_loss;
    CHECK(epoch == e.epoch + 1);
    CHECK(loss == doctest::Approx(e.loss).epsilon(1e-5));
    CHECK(accuracy == doctest::Approx(e.accuracy).epsilon(1e-5));
    CHECK(val_loss == doctest::Approx(e.val_loss).epsilon(1e-5));
  }
  CHECK_FALSE(std::getline(lines, line));
  SGD<float> optimizer(p.model.parameters(), SGDOptions(0.1));
  History none;
  TrainingContext<float> context{p.model, optimizer, none, 1, 1};
  CsvLogger<float> unwritable((dir / "no_such_dir" / "x.csv").string());
  CHECK_THROWS_AS(unwritable.on_train_begin(context), std::runtime_error);
}

TEST_CASE("argmax and predict_classes") {
  Matrix<double> scores(3, 4);
  scores << 0.1, 2.0, -1.0, 5.0,  //
      0.7, 2.0, -3.0, 1.0,        //
      0.2, 1.0, -2.0, 5.0;
  const Labels expected = (Labels(4) << 1, 0, 0, 0).finished();  // ties: the first
  CHECK(argmax(scores) == expected);
  const Matrix<double> logit = (Matrix<double>(1, 3) << -0.5, 0.0, 2.0).finished();
  CHECK(argmax(logit) == (Labels(3) << 0, 0, 1).finished());

  Problem p = small_problem();
  CHECK(predict_classes(p.model, p.x, 7) == argmax(predict(p.model, p.x)));
}

TEST_CASE("confusion matrix: counts, precision, recall and F1 by hand") {
  // truth 0 0 0 1 1 2, predicted 0 0 1 1 2 2
  const Labels truth = (Labels(6) << 0, 0, 0, 1, 1, 2).finished();
  const Labels predicted = (Labels(6) << 0, 0, 1, 1, 2, 2).finished();
  const ConfusionMatrix m = confusion_matrix(truth, predicted, 3);
  CHECK(m.counts(0, 0) == 2);
  CHECK(m.counts(0, 1) == 1);
  CHECK(m.counts(1, 2) == 1);
  CHECK(m.total() == 6);
  CHECK(m.correct() == 4);
  CHECK(m.accuracy() == doctest::Approx(4.0 / 6.0));
  CHECK(m.precision(0) == doctest::Approx(1.0));        // 2 / 2
  CHECK(m.recall(0) == doctest::Approx(2.0 / 3.0));     // 2 / 3
  CHECK(m.f1(0) == doctest::Approx(0.8));               // 2 * 1 * 2/3 / (5/3)
  CHECK(m.precision(1) == doctest::Approx(0.5));        // 1 / 2
  CHECK(m.recall(1) == doctest::Approx(0.5));
  CHECK(m.f1(1) == doctest::Approx(0.5));
  CHECK(m.precision(2) == doctest::Approx(0.5));
  CHECK(m.recall(2) == doctest::Approx(1.0));
  CHECK(m.f1(2) == doctest::Approx(2.0 / 3.0));
  CHECK(m.macro_f1() == doctest::Approx((0.8 + 0.5 + 2.0 / 3.0) / 3.0));
  CHECK(m.most_confused_with(0) == 1);
  const ConfusionMatrix empty(2);
  CHECK(empty.precision(1) == 0.0);  // zero_division = 0
  CHECK(empty.f1(0) == 0.0);
  CHECK_THROWS_AS(confusion_matrix(truth, predicted, 2), InvalidArgument);
  CHECK_THROWS_AS(confusion_matrix(truth, predicted.head(5), 3), InvalidArgument);
  CHECK_THROWS_AS(ConfusionMatrix(0), InvalidArgument);
}

TEST_CASE("summary() works on a const model") {
  const Problem p = small_problem();
  const std::string table = p.model.summary();  // compiles only if summary() is const
  CHECK(table.find("0 Dense(3->2, Identity)") != std::string::npos);
  CHECK(table.find("Total parameters: 8") != std::string::npos);
}
