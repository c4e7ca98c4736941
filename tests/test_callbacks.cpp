// EarlyStopping (Keras 3 rule, scripted and in a real fit), ModelCheckpoint, WeightsSnapshot and
// the weights files (save_weights / load_weights, model files since DNWT went): round trip, byte
// layout, validation on load (checksum, bounded reads, the old format refused), atomic writes
// under failure.

#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <dropnet/dropnet.hpp>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <set>
#include <string>
#include <vector>

#if defined(__unix__) || defined(__APPLE__)
#include <sys/resource.h>

#include <csignal>
#define TEST_HAVE_RLIMIT 1
#endif

#include "fuzz/corpus_models.hpp"  // fuzz::reseal

using namespace dropnet;
using fuzz::reseal;
namespace fs = std::filesystem;

namespace {

const double nan_value = std::numeric_limits<double>::quiet_NaN();
const double inf_value = std::numeric_limits<double>::infinity();

/// Dense -> BatchNorm -> Dense: parameters and buffers.
template <class T>
Sequential<T> small_model(std::uint64_t seed = 1) {
  Generator gen(seed);
  Sequential<T> model(2);
  model.add(Dense<T, Tanh>(2, 3, gen));
  model.add(BatchNorm<T>(3));
  model.add(Dense<T>(3, 2, gen));
  return model;
}

/// Sets every parameter and buffer entry to `value + i / 100` (i = position in the tensor), so
/// the weights at the end of each scripted epoch are recognizable.
template <class T>
void stamp(Sequential<T>& model, double value) {
  const ModelState<T> state(model);
  for (const auto& view : state.tensors())
    for (Index i = 0; i < view.size(); ++i) view.value[i] = static_cast<T>(value + double(i) / 100);
}

/// True when every tensor of the model equals stamp(value), bit for bit.
template <class T>
bool has_stamp(Sequential<T>& model, double value) {
  const ModelState<T> state(model);
  for (const auto& view : state.tensors())
    for (Index i = 0; i < view.size(); ++i)
      if (view.value[i] != static_cast<T>(value + double(i) / 100)) return false;
  return true;
}

/// A TrainingContext without fit: the callback sees the model, an optimizer and a history.
struct FakeTraining {
  Sequential<double> model = small_model<double>();
  SGD<double> optimizer{model.parameters(), SGDOptions(0.1)};
  History history;
  TrainingContext<double> context{model, optimizer, history, 100, 1};
};

struct ScriptResult {
  int epochs_run = 0;
};

/// Plays a scripted sequence of monitored values through a callback as fit would: on_train_begin,
/// then per epoch stamp the weights with epoch + 1 and call on_epoch_end, until stop_training;
/// then on_train_end.
ScriptResult play(Callback<double>& callback, FakeTraining& run, const std::vector<double>& values,
                  const std::string& metric = "val_loss") {
  run.context.stop_training = false;
  callback.on_train_begin(run.context);
  ScriptResult result;
  for (std::size_t e = 0; e < values.size() && !run.context.stop_training; ++e) {
    EpochLogs logs;
    logs.epoch = static_cast<int>(e);
    logs.loss = 1.0;
    if (metric == "val_loss") logs.val_loss = values[e];
    if (metric == "val_accuracy") logs.val_accuracy = values[e];
    if (metric == "loss") logs.loss = values[e];
    stamp(run.model, double(e + 1));
    callback.on_epoch_end(run.context, logs);
    ++result.epochs_run;
  }
  callback.on_train_end(run.context);
  return result;
}

struct Expected {
  int epochs_run;
  int stopped_epoch;  // 0 = not stopped (Keras' convention)
  int best_epoch;
  double best;
};

void check_script(const EarlyStoppingOptions& options, const std::vector<double>& values,
                  const Expected& expected, const std::string& metric = "val_loss") {
  FakeTraining run;
  EarlyStopping<double> stop(options);
  const ScriptResult result = play(stop, run, values, metric);
  CHECK(result.epochs_run == expected.epochs_run);
  CHECK(stop.stopped_epoch() == expected.stopped_epoch);
  CHECK(stop.stopped() == (expected.stopped_epoch > 0));
  CHECK(run.context.stop_training == (expected.stopped_epoch > 0));
  CHECK(stop.best_epoch() == expected.best_epoch);
  CHECK(stop.best() == expected.best);
}

/// A directory under the system temp dir, removed with its contents at scope exit.
struct TempDir {
  fs::path path;
  TempDir() {
    static int counter = 0;
    path =
        fs::temp_directory_path() /
        ("dropnet_test_callbacks_" +
         std::to_string(
             Generator(std::uint64_t(std::chrono::steady_clock::now().time_since_epoch().count()))
                 .next_u32()) +
         "_" + std::to_string(counter++));
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ignored;
    fs::remove_all(path, ignored);
  }
  std::set<std::string> entries() const {
    std::set<std::string> names;
    for (const auto& entry : fs::directory_iterator(path))
      names.insert(entry.path().filename().string());
    return names;
  }
};

std::string read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_bytes(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::uint64_t le_at(const std::string& bytes, std::size_t offset, int count) {
  std::uint64_t value = 0;
  for (int i = 0; i < count; ++i)
    value |= std::uint64_t{static_cast<unsigned char>(bytes[offset + std::size_t(i)])} << (8 * i);
  return value;
}

template <class T>
bool same_state(Sequential<T>& model, const WeightsSnapshot<T>& snapshot) {
  const auto views = ModelState<T>(model).tensors();
  if (views.size() != snapshot.tensors().size()) return false;
  for (std::size_t i = 0; i < views.size(); ++i)
    if (Vector<T>(views[i].flat_value()) != snapshot.tensors()[i].values) return false;
  return true;
}

}  // namespace

// Every expectation below is the Keras 3 rule (keras/src/callbacks/early_stopping.py) worked by
// hand. Per monitored epoch e: wait += 1; an improvement (v + min_delta < best in min mode)
// sets best and resets wait (only if v also beats the baseline, when there is one) and never
// stops; otherwise training stops when wait >= patience and e > 0.

TEST_CASE("EarlyStopping: patience counts the epochs without improvement since the best") {
  // e0 1.0 best; e1 0.8 best (wait 0); e2 0.9 wait 1; e3 0.85 wait 2 >= 2: stop at 3.
  check_script(EarlyStoppingOptions().patience(2), {1.0, 0.8, 0.9, 0.85, 0.7, 0.6}, {4, 3, 1, 0.8});
  // patience 0: the first epoch that does not improve stops; equal is not an improvement.
  check_script(EarlyStoppingOptions().patience(0), {1.0, 1.0, 0.5}, {2, 1, 0, 1.0});
  // A monotone improvement never stops.
  check_script(EarlyStoppingOptions().patience(1), {3, 2, 1, 0.5}, {4, 0, 3, 0.5});
}

TEST_CASE("EarlyStopping: min_delta counts only improvements larger than it, whatever its sign") {
  // e0 1.0 best; e1 0.95 (+0.1 = 1.05, not < 1.0) wait 1; e2 0.85 (0.95 < 1.0) best, wait 0;
  // e3 0.80 (0.90 not < 0.85) wait 1; e4 0.79 (0.89) wait 2: stop at 4, best 0.85 at 2.
  const std::vector<double> values = {1.0, 0.95, 0.85, 0.80, 0.79, 0.5};
  check_script(EarlyStoppingOptions().patience(2).min_delta(0.1), values, {5, 4, 2, 0.85});
  check_script(EarlyStoppingOptions().patience(2).min_delta(-0.1), values, {5, 4, 2, 0.85});
  check_script(EarlyStoppingOptions().patience(2), values, {6, 0, 5, 0.5});
  // In max mode the delta is subtracted: 0.65 - 0.1 is not > 0.6.
  check_script(EarlyStoppingOptions().monitor("val_accuracy").patience(1).min_delta(0.1),
               {0.6, 0.65, 0.8}, {2, 1, 0, 0.6}, "val_accuracy");
}

TEST_CASE("EarlyStopping: a baseline that is not beaten lets every epoch count toward patience") {
  // e0 0.9 improves on inf but not on 0.5: best, wait stays 1; e1 0.8 likewise, wait 2;
  // e2 0.85 no improvement, wait 3 >= 2: stop at 2 (without the baseline: at 3).
  check_script(EarlyStoppingOptions().patience(2).baseline(0.5), {0.9, 0.8, 0.85, 0.86, 0.87},
               {3, 2, 1, 0.8});
  check_script(EarlyStoppingOptions().patience(2), {0.9, 0.8, 0.85, 0.86, 0.87}, {4, 3, 1, 0.8});
  // Beating the baseline resets wait: e1 0.4 < 0.5 -> wait 0; e2 wait 1; e3 wait 2: stop at 3.
  check_script(EarlyStoppingOptions().patience(2).baseline(0.5), {0.9, 0.4, 0.45, 0.46, 0.47},
               {4, 3, 1, 0.4});
  // Keras 3 returns after any improvement, so improving epochs never stop, baseline or not.
  check_script(EarlyStoppingOptions().patience(1).baseline(0.1), {0.9, 0.8, 0.7, 0.6, 0.5},
               {5, 0, 4, 0.5});
}

TEST_CASE("EarlyStopping: start_from_epoch ignores the warm-up epochs") {
  // Epochs 0-2 are not monitored; e3 10 is the first best; e4 11 wait 1 >= 1: stop at 4.
  check_script(EarlyStoppingOptions().patience(1).start_from_epoch(3), {5, 4, 3, 10, 11, 9, 12},
               {5, 4, 3, 10.0});
  check_script(EarlyStoppingOptions().patience(1), {5, 4, 3, 10, 11, 9, 12}, {4, 3, 2, 3.0});
}

TEST_CASE("EarlyStopping: mode auto maximizes accuracy; explicit modes override") {
  // val_accuracy: e0 0.5; e1 0.6 best; e2 0.55 wait 1: stop at 2.
  check_script(EarlyStoppingOptions().monitor("val_accuracy").patience(1), {0.5, 0.6, 0.55, 0.7},
               {3, 2, 1, 0.6}, "val_accuracy");
  // The same numbers minimized: e1 0.6 is worse than 0.5: stop at 1.
  check_script(EarlyStoppingOptions().monitor("val_accuracy").mode(MonitorMode::min).patience(1),
               {0.5, 0.6, 0.55, 0.7}, {2, 1, 0, 0.5}, "val_accuracy");
  check_script(EarlyStoppingOptions().monitor("loss").mode(MonitorMode::max).patience(1),
               {0.5, 0.6, 0.55, 0.7}, {3, 2, 1, 0.6}, "loss");
  check_script(EarlyStoppingOptions().monitor("loss").patience(1), {0.5, 0.6, 0.55}, {2, 1, 0, 0.5},
               "loss");
}

TEST_CASE("EarlyStopping: never stops at epoch 0; unavailable (NaN) values are skipped") {
  // e0 inf is no improvement on inf, wait 1 >= 0, but e == 0: no stop; e1 wait 2: stop at 1.
  check_script(EarlyStoppingOptions().patience(0), {inf_value, inf_value, 1.0},
               {2, 1, 0, inf_value});
  // e0, e1 unavailable: skipped; e2 1.0 best; e3 2.0 wait 1: stop at 3.
  check_script(EarlyStoppingOptions().patience(1), {nan_value, nan_value, 1.0, 2.0},
               {4, 3, 2, 1.0});
  // Without validation data val_loss is always NaN: training is never stopped.
  check_script(EarlyStoppingOptions().patience(0), {nan_value, nan_value, nan_value},
               {3, 0, 0, inf_value});
}

TEST_CASE("EarlyStopping restore_best_weights puts back the best epoch's parameters and buffers") {
  SUBCASE("when it stops") {
    FakeTraining run;
    EarlyStopping<double> stop(EarlyStoppingOptions().patience(2).restore_best_weights());
    play(stop, run, {1.0, 0.8, 0.9, 0.85, 0.7});
    CHECK(stop.stopped_epoch() == 3);
    CHECK(stop.restored());
    CHECK(has_stamp(run.model, 2.0));  // epoch 1's weights, BatchNorm statistics included
  }
  SUBCASE("when training ends without stopping") {
    FakeTraining run;
    EarlyStopping<double> stop(EarlyStoppingOptions().patience(5).restore_best_weights());
    play(stop, run, {1.0, 0.5, 0.7});
    CHECK_FALSE(stop.stopped());
    CHECK(has_stamp(run.model, 2.0));
  }
  SUBCASE("not asked: the last weights stay") {
    FakeTraining run;
    EarlyStopping<double> stop(EarlyStoppingOptions().patience(2));
    play(stop, run, {1.0, 0.8, 0.9, 0.85, 0.7});
    CHECK_FALSE(stop.restored());
    CHECK(has_stamp(run.model, 4.0));
  }
  SUBCASE("with start_from_epoch the warm-up epochs are never restored") {
    FakeTraining run;
    EarlyStopping<double> stop(
        EarlyStoppingOptions().patience(1).start_from_epoch(2).restore_best_weights());
    play(stop, run, {0.1, 0.2, 0.9, 0.95});
    CHECK(stop.best_epoch() == 2);
    CHECK(has_stamp(run.model, 3.0));
  }
  SUBCASE("nothing monitored: nothing restored") {
    FakeTraining run;
    EarlyStopping<double> stop(EarlyStoppingOptions().restore_best_weights());
    play(stop, run, {nan_value, nan_value});
    CHECK_FALSE(stop.restored());
    CHECK(has_stamp(run.model, 2.0));
  }
}

TEST_CASE("EarlyStopping is reset by on_train_begin, so it can be reused") {
  FakeTraining run;
  EarlyStopping<double> stop(EarlyStoppingOptions().patience(1));
  play(stop, run, {0.1, 0.2});
  CHECK(stop.stopped_epoch() == 1);
  // A second run with worse values: a best carried over from the first (0.1) would stop at 1.
  const ScriptResult second = play(stop, run, {1.0, 0.9, 0.8, 0.95});
  CHECK(second.epochs_run == 4);
  CHECK(stop.stopped_epoch() == 3);
  CHECK(stop.best_epoch() == 2);
  CHECK(stop.best() == 0.8);
}

TEST_CASE("EarlyStopping rejects bad options") {
  CHECK_THROWS_WITH_AS(EarlyStopping<float>(EarlyStoppingOptions().monitor("val_los")),
                       doctest::Contains("val_los"), InvalidArgument);
  CHECK_THROWS_AS(EarlyStopping<float>(EarlyStoppingOptions().patience(-1)), InvalidArgument);
  CHECK_THROWS_AS(EarlyStopping<float>(EarlyStoppingOptions().start_from_epoch(-1)),
                  InvalidArgument);
  CHECK_THROWS_AS(EarlyStopping<float>(EarlyStoppingOptions().min_delta(nan_value)),
                  InvalidArgument);
  CHECK_THROWS_AS(EarlyStopping<float>(EarlyStoppingOptions().baseline(inf_value)),
                  InvalidArgument);
  CHECK_NOTHROW(EarlyStopping<float>(EarlyStoppingOptions().monitor("acc")));
}

namespace {

/// Records the model's state at the end of every epoch.
template <class T>
struct RecordWeights : Callback<T> {
  std::vector<WeightsSnapshot<T>> epochs;
  void on_epoch_end(TrainingContext<T>& context, const EpochLogs&) override {
    epochs.emplace_back();
    epochs.back().capture(context.model);
  }
};

}  // namespace

TEST_CASE(
    "EarlyStopping in a real fit stops by the Keras rule and restores the exact best weights") {
  Generator gen(31);
  const Index features = 8, classes = 3;
  // The class is the largest of the first 3 inputs, but a third of the labels are random: the
  // model first learns the rule (val_loss falls), then memorizes the noise (val_loss rises).
  auto make_data = [&](Index samples, Matrix<double>& x, Labels& y) {
    x.resize(features, samples);
    y.resize(samples);
    for (Index j = 0; j < samples; ++j) {
      for (Index i = 0; i < features; ++i) x(i, j) = gen.normal<double>();
      Index label = 0;
      x.col(j).head(3).maxCoeff(&label);
      y(j) =
          gen.uniform() < 1.0 / 3 ? static_cast<int>(gen.below(classes)) : static_cast<int>(label);
    }
  };
  Matrix<double> x, x_valid;
  Labels y, y_valid;
  make_data(60, x, y);
  make_data(300, x_valid, y_valid);
  Sequential<double> model(features);
  model.add(Dense<double>(features, 32, gen));
  model.add(BatchNorm<double>(32));
  model.add(ActivationLayer<double, ReLU>());
  model.add(Dense<double>(32, classes, gen));
  Adam<double> adam(model.parameters(), AdamOptions(0.003));
  EarlyStopping<double> stop(EarlyStoppingOptions().patience(3).restore_best_weights());
  RecordWeights<double> record;
  FitOptions<double> options;
  options.epochs = 200;
  options.batch_size = 16;
  options.callbacks = {&record, &stop};
  const ValidationData<double, Labels> validation{x_valid, y_valid};
  const History history =
      fit(model, SoftmaxCrossEntropy<double>(), adam, x, y, gen, options, validation);

  const std::vector<double> val_loss = history.metric("val_loss");
  const auto best =
      static_cast<int>(std::min_element(val_loss.begin(), val_loss.end()) - val_loss.begin());
  MESSAGE("EarlyStopping in fit: best epoch ", best, " (val_loss ", val_loss[std::size_t(best)],
          "), stopped at epoch ", stop.stopped_epoch(), " of 200");
  REQUIRE(stop.stopped());
  CHECK(history.size() == std::size_t(stop.stopped_epoch() + 1));
  CHECK(stop.best_epoch() == best);  // first minimum: later equal values are no improvement
  CHECK(stop.best() == val_loss[std::size_t(best)]);
  CHECK(stop.stopped_epoch() == best + 3);  // no baseline, no min_delta: best + patience
  CHECK(same_state(model, record.epochs[std::size_t(best)]));
  CHECK_FALSE(same_state(model, record.epochs.back()));
  // Parameters and BatchNorm statistics are back: the validation loss is the best epoch's, exactly.
  CHECK(evaluate(model, SoftmaxCrossEntropy<double>(), x_valid, y_valid).loss ==
        val_loss[std::size_t(best)]);
}

TEST_CASE("ModelCheckpoint save_best_only keeps the best epoch's weights in memory and on disk") {
  TempDir dir;
  const fs::path path = dir.path / "best.dnm";
  FakeTraining run;
  ModelCheckpoint<double> checkpoint(ModelCheckpointOptions().save_best_only().path(path.string()));
  // Improvements at epochs 0, 1 and 3.
  play(checkpoint, run, {1.0, 0.8, 0.9, 0.7, 0.75, nan_value});
  CHECK(checkpoint.saves() == 3);
  CHECK(checkpoint.best_epoch() == 3);
  CHECK(checkpoint.saved_epoch() == 3);
  CHECK(checkpoint.best() == 0.7);
  CHECK(has_stamp(run.model, 6.0));  // the callback does not touch the model by itself
  checkpoint.restore(run.model);
  CHECK(has_stamp(run.model, 4.0));

  Sequential<double> fresh = small_model<double>(99);
  load_weights(fresh, path.string());
  CHECK(has_stamp(fresh, 4.0));
  CHECK(dir.entries() == std::set<std::string>{"best.dnm"});  // no temporary left behind
}

TEST_CASE("ModelCheckpoint: every epoch without save_best_only, max for accuracy, thresholds") {
  SUBCASE("save every epoch (Keras' default): the latest weights") {
    FakeTraining run;
    ModelCheckpoint<double> checkpoint;  // in memory only
    play(checkpoint, run, {1.0, 0.8, 0.9, nan_value});
    CHECK(checkpoint.saves() == 4);
    CHECK(checkpoint.saved_epoch() == 3);
    CHECK(checkpoint.best_epoch() == 1);
    stamp(run.model, 0.0);
    checkpoint.restore(run.model);
    CHECK(has_stamp(run.model, 4.0));
  }
  SUBCASE("val_accuracy is maximized") {
    FakeTraining run;
    ModelCheckpoint<double> checkpoint(
        ModelCheckpointOptions().monitor("val_accuracy").save_best_only());
    play(checkpoint, run, {0.5, 0.7, 0.6, 0.7}, "val_accuracy");
    CHECK(checkpoint.saves() == 2);
    CHECK(checkpoint.best_epoch() == 1);
  }
  SUBCASE("initial_value_threshold: only what beats it is saved") {
    FakeTraining run;
    ModelCheckpoint<double> checkpoint(
        ModelCheckpointOptions().save_best_only().initial_value_threshold(0.5));
    play(checkpoint, run, {0.9, 0.6, 0.4, 0.45});
    CHECK(checkpoint.saves() == 1);
    CHECK(checkpoint.saved_epoch() == 2);
  }
  SUBCASE("nothing saved yet") {
    FakeTraining run;
    ModelCheckpoint<double> checkpoint(ModelCheckpointOptions().save_best_only());
    play(checkpoint, run, {nan_value});
    CHECK_FALSE(checkpoint.has_weights());
    CHECK(checkpoint.best_epoch() == -1);
    CHECK_THROWS_AS(checkpoint.restore(run.model), InvalidArgument);
  }
  CHECK_THROWS_AS(ModelCheckpoint<float>(ModelCheckpointOptions().monitor("accuracy_top5")),
                  InvalidArgument);
  CHECK_THROWS_AS(
      ModelCheckpoint<float>(ModelCheckpointOptions().initial_value_threshold(nan_value)),
      InvalidArgument);
}

TEST_CASE_TEMPLATE("weights files round-trip parameters and buffers bit for bit", T, float,
                   double) {
  TempDir dir;
  const std::string path = (dir.path / "w.dnm").string();
  Sequential<T> model = small_model<T>(5);
  Generator gen(6);
  for (int i = 0; i < 3; ++i) {  // moves the BatchNorm statistics away from (0, 1)
    Matrix<T> x(2, 8);
    for (Index k = 0; k < x.size(); ++k) x.data()[k] = gen.normal<T>(T(1), T(2));
    model.forward(x, Mode::train, gen);
  }
  WeightsSnapshot<T> saved;
  saved.capture(model);
  save_weights(model, path);

  Sequential<T> other = small_model<T>(7);
  CHECK_FALSE(same_state(other, saved));
  load_weights(other, path);
  CHECK(same_state(other, saved));
  // Overwriting an existing file works too (the rename replaces it).
  stamp(model, 3.0);
  save_weights(model, path);
  load_weights(other, path);
  CHECK(has_stamp(other, 3.0));
}

TEST_CASE("the weights file layout is the documented one (a model file)") {
  TempDir dir;
  const fs::path path = dir.path / "w.dnm";
  Generator gen(1);
  Sequential<double> model(2);
  auto& dense = model.add(Dense<double>(2, 1, gen));
  dense.weight() << 1.0, -2.0;
  dense.bias() << 0.5;
  save_weights(model, path.string());
  const std::string bytes = read_bytes(path);
  // docs/model_file.md: header 8+4+4+4+8, body, CRC-32; the tensors end the body:
  // u32 count; "0.Dense.weight": 4+14+8+8+2*8; "0.Dense.bias": 4+12+8+8+8.
  REQUIRE(bytes.size() > 28 + 4 + 50 + 40 + 4);
  CHECK(bytes.substr(0, 8) == "\x89" "DNM\r\n\x1a\n");
  CHECK(le_at(bytes, 8, 4) == 1);                         // version
  CHECK(le_at(bytes, 12, 4) == 2);                        // double
  CHECK(le_at(bytes, 16, 4) == 0);                        // no optimizer
  CHECK(le_at(bytes, 20, 8) == bytes.size() - 28 - 4);    // body length
  const std::size_t t = bytes.size() - 4 - 90 - 4;        // the tensor count
  CHECK(le_at(bytes, t, 4) == 2);                         // tensors
  CHECK(le_at(bytes, t + 4, 4) == 14);
  CHECK(bytes.substr(t + 8, 14) == "0.Dense.weight");
  CHECK(le_at(bytes, t + 22, 8) == 1);                      // rows
  CHECK(le_at(bytes, t + 30, 8) == 2);                      // cols
  CHECK(le_at(bytes, t + 38, 8) == 0x3FF0000000000000ull);  // 1.0
  CHECK(le_at(bytes, t + 46, 8) == 0xC000000000000000ull);  // -2.0
  CHECK(bytes.substr(t + 58, 12) == "0.Dense.bias");
  CHECK(le_at(bytes, t + 86, 8) == 0x3FE0000000000000ull);  // 0.5
  CHECK(le_at(bytes, bytes.size() - 4, 4) == crc32(bytes.data(), bytes.size() - 4));
}

TEST_CASE("load_weights validates the whole file and leaves the model unchanged on failure") {
  TempDir dir;
  const fs::path good = dir.path / "good.dnm", bad = dir.path / "bad.dnm";
  Sequential<double> source = small_model<double>(1);
  stamp(source, 7.0);
  save_weights(source, good.string());
  const std::string bytes = read_bytes(good);

  Sequential<double> target = small_model<double>(2);
  stamp(target, 1.0);
  auto rejects = [&](const std::string& corrupted, const char* message) {
    write_bytes(bad, corrupted);
    CHECK_THROWS_WITH_AS(load_weights(target, bad.string()), doctest::Contains(message),
                         FormatError);
    CHECK(has_stamp(target, 1.0));
  };
  std::string wrong = bytes;
  wrong[0] = 'X';
  rejects(wrong, "magic");
  wrong = bytes;
  wrong[8] = 2;
  rejects(wrong, "version");
  rejects(bytes.substr(0, bytes.size() - 1), "truncated");
  rejects(bytes.substr(0, 10), "truncated");
  rejects(bytes + '\0', "unexpected bytes");
  const std::size_t first_name = bytes.find("0.Dense.weight");
  REQUIRE(first_name != std::string::npos);
  wrong = bytes;
  wrong[first_name - 8] = 100;  // 100 tensors announced
  rejects(reseal(wrong), "truncated");
  wrong = bytes;
  wrong[first_name + 4] = 'X';  // "0.DeXse.weight"
  rejects(reseal(wrong), "does not fit the model");
  rejects(wrong, "checksum");  // the same edit without resealing: the CRC catches it

  CHECK_THROWS_AS(load_weights(target, (dir.path / "missing.dnm").string()), FormatError);

  // A float model cannot read a double file.
  Sequential<float> float_model = small_model<float>(2);
  CHECK_THROWS_WITH_AS(load_weights(float_model, good.string()), doctest::Contains("8-byte"),
                       FormatError);

  // Another architecture: same tensor count, different shapes.
  Generator gen(3);
  Sequential<double> wider(2);
  wider.add(Dense<double, Tanh>(2, 4, gen));
  wider.add(BatchNorm<double>(4));
  wider.add(Dense<double>(4, 2, gen));
  stamp(wider, 1.0);
  CHECK_THROWS_WITH_AS(load_weights(wider, good.string()), doctest::Contains("0.Dense.weight"),
                       FormatError);
  CHECK(has_stamp(wider, 1.0));

  // Every single-bit flip is caught (issue 18: DNWT had no checksum, and 3,168 of 5,664 flips
  // loaded silently).
  int flips = 0, accepted = 0;
  for (std::size_t i = 0; i < bytes.size(); ++i)
    for (int bit = 0; bit < 8; ++bit) {
      std::string flipped = bytes;
      flipped[i] = static_cast<char>(flipped[i] ^ (1 << bit));
      write_bytes(bad, flipped);
      try {
        load_weights(target, bad.string());
        ++accepted;
      } catch (const FormatError&) {
      }
      ++flips;
    }
  MESSAGE(flips, " single-bit flips, ", accepted, " accepted");
  CHECK(accepted == 0);
  CHECK(has_stamp(target, 1.0));

  load_weights(target, good.string());
  CHECK(has_stamp(target, 7.0));
}

TEST_CASE("load_weights reads a bounded amount: /dev/zero and an endless stream fail at once") {
  // DNWT read the whole file first: load_weights("/dev/zero") ran out of memory.
  Sequential<double> target = small_model<double>(2);
  stamp(target, 1.0);
  if (fs::exists("/dev/zero"))
    CHECK_THROWS_WITH_AS(load_weights(target, "/dev/zero"), doctest::Contains("magic"),
                         FormatError);
  // A valid header announcing 2^61 bytes over an endless source fails as "corrupt", at once.
  TempDir dir;
  const fs::path path = dir.path / "huge.dnm";
  save_weights(target, path.string());
  std::string header = read_bytes(path).substr(0, 28);
  detail::BinaryWriter(header).patch_u64(20, std::uint64_t{1} << 61);
  write_bytes(path, header + std::string(1000, '\0'));
  CHECK_THROWS_WITH_AS(load_weights(target, path.string()), doctest::Contains("truncated"),
                       FormatError);
  CHECK(has_stamp(target, 1.0));
}

TEST_CASE("an old DNWT weights file is refused with a message that says what to do") {
  TempDir dir;
  const fs::path path = dir.path / "old.dnwt";
  // The 0.x layout: "DNWT", u32 version 1, u32 scalar bytes, u64 count, tensors.
  std::string old("DNWT");
  detail::BinaryWriter w(old);
  w.u32(1);
  w.u32(8);
  w.u64(0);
  write_bytes(path, old);
  Sequential<double> model = small_model<double>(2);
  stamp(model, 1.0);
  CHECK_THROWS_WITH_AS(load_weights(model, path.string()),
                       doctest::Contains("weights file of dropnet 0.x"), FormatError);
  CHECK_THROWS_WITH_AS(load_weights(model, path.string()), doctest::Contains("save_weights it again"),
                       FormatError);
  CHECK_THROWS_WITH_AS(load_into(model, path.string()), doctest::Contains("DNWT"), FormatError);
  CHECK(has_stamp(model, 1.0));
}

TEST_CASE("weights files are model files: load, load_into and ModelCheckpoint's file agree") {
  TempDir dir;
  const fs::path path = dir.path / "w.dnm";
  Sequential<double> model = small_model<double>(3);
  stamp(model, 4.0);
  save_weights(model, path.string());
  Sequential<double> loaded = load<double>(path.string());
  CHECK(has_stamp(loaded, 4.0));
  Sequential<double> into = small_model<double>(4);
  load_into(into, path.string());
  CHECK(has_stamp(into, 4.0));

  // load_weights needs the same tensors, not the same hyperparameters (unlike load_into).
  Generator gen(1);
  Sequential<double> penalized(2);
  penalized.add(Dense<double, Tanh>(2, 3, gen)).with_l2(0.5);
  penalized.add(BatchNorm<double>(3)).with_momentum(0.3);
  penalized.add(Dense<double>(3, 2, gen));
  load_weights(penalized, path.string());
  CHECK(has_stamp(penalized, 4.0));
  CHECK_THROWS_WITH_AS(load_into(penalized, path.string()), doctest::Contains("architecture mismatch"),
                       FormatError);

  // A checkpoint's file loads as a whole model.
  FakeTraining run;
  ModelCheckpoint<double> checkpoint(ModelCheckpointOptions().path(path.string()));
  play(checkpoint, run, {1.0});
  Sequential<double> from_checkpoint = load<double>(path.string());
  CHECK(has_stamp(from_checkpoint, 1.0));
}

TEST_CASE(
    "save_weights is atomic: a failed write throws, keeps the previous file, leaves no temp") {
  TempDir dir;
  Sequential<double> model = small_model<double>(1);

  SUBCASE("a directory that does not exist") {
    const fs::path path = dir.path / "no_such_dir" / "w.dnm";
    CHECK_THROWS_WITH_AS(save_weights(model, path.string()), doctest::Contains("cannot create"),
                         FormatError);
    CHECK(dir.entries().empty());
    // A ModelCheckpoint whose write fails stops training with the error.
    FakeTraining run;
    ModelCheckpoint<double> checkpoint(ModelCheckpointOptions().path(path.string()));
    EpochLogs logs;
    logs.val_loss = 1.0;
    CHECK_THROWS_AS(checkpoint.on_epoch_end(run.context, logs), FormatError);
    CHECK(dir.entries().empty());
  }
  SUBCASE("the target is a directory: the rename fails") {
    const fs::path path = dir.path / "w.dnm";
    fs::create_directory(path);
    write_bytes(path / "keep", "x");
    CHECK_THROWS_WITH_AS(save_weights(model, path.string()), doctest::Contains("cannot write"),
                         FormatError);
    CHECK(dir.entries() == std::set<std::string>{"w.dnm"});
    CHECK(read_bytes(path / "keep") == "x");
  }
#ifdef TEST_HAVE_RLIMIT
  SUBCASE("the disk fills up while writing (file size limit)") {
    const fs::path path = dir.path / "w.dnm";
    stamp(model, 2.0);
    save_weights(model, path.string());
    const std::string previous = read_bytes(path);
    stamp(model, 3.0);

    // Writes past 64 bytes fail with EFBIG (SIGXFSZ, which would kill the process, is ignored).
    rlimit saved{};
    REQUIRE(getrlimit(RLIMIT_FSIZE, &saved) == 0);
    auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
    rlimit tiny = saved;
    tiny.rlim_cur = 64;
    REQUIRE(setrlimit(RLIMIT_FSIZE, &tiny) == 0);
    bool threw = false;
    try {
      save_weights(model, path.string());
    } catch (const FormatError&) {
      threw = true;
    }
    setrlimit(RLIMIT_FSIZE, &saved);
    std::signal(SIGXFSZ, old_handler);

    CHECK(threw);
    CHECK(read_bytes(path) == previous);
    CHECK(dir.entries() == std::set<std::string>{"w.dnm"});
  }
#endif
}

TEST_CASE("WeightsSnapshot::restore checks names and shapes before writing anything") {
  Sequential<double> a = small_model<double>(1), b(2);
  Generator gen(4);
  b.add(Dense<double, Tanh>(2, 3, gen));
  b.add(Dense<double>(3, 2, gen));  // no BatchNorm: fewer tensors
  WeightsSnapshot<double> snapshot;
  CHECK(snapshot.empty());
  CHECK_THROWS_AS(snapshot.restore(a), InvalidArgument);
  stamp(a, 5.0);
  snapshot.capture(a);
  CHECK(snapshot.tensors().size() == 8);  // 2 dense x 2 + gamma, beta + 2 running statistics
  CHECK(snapshot.tensors()[2].name == "1.BatchNorm.gamma");
  CHECK(snapshot.tensors()[6].name == "1.BatchNorm.running_mean");
  stamp(b, 1.0);
  CHECK_THROWS_WITH_AS(snapshot.restore(b), doctest::Contains("8"), InvalidArgument);
  CHECK(has_stamp(b, 1.0));
  stamp(a, 0.0);
  snapshot.restore(a);
  CHECK(has_stamp(a, 5.0));
}
