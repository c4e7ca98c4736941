#include "cli.hpp"

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <limits>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "model.hpp"
#include "plot.hpp"
#include "presets.hpp"

namespace fmnist {

namespace {

constexpr const char* data_dir_variable = "DROPNET_FASHION_MNIST_DIR";
constexpr const char* debian_data_dir = "/usr/share/datasets/fashion-mnist";

/// Where each flag lands before the preset is applied: CLI11 tells us which ones were given.
struct Flags {
  std::string preset = "seed";
  std::vector<std::ptrdiff_t> layers, conv_channels;
  std::vector<double> dropout;
  std::string conv_dropout;
  double conv_rate = 0;
  std::string activation;
  bool batchnorm = false;
  std::string optimizer, schedule;
  double lr = 0, weight_decay = 0, momentum = 0, l2 = 0, max_norm = 0, label_smoothing = 0;
  std::string normalization;
  int epochs = 0, patience = 0, augment_shift = 0;
  bool augment_flip = false;
  std::ptrdiff_t batch_size = 0;
};

/// A finite number in [low, high], or in (low, high] with `low_open`. CLI11's Range,
/// NonNegativeNumber and PositiveNumber compare with < and >, which NaN passes ("--dropout nan"
/// trained without dropout and exited 0), and they take infinities.
CLI::Validator finite_in(double low, double high, bool low_open = false) {
  std::ostringstream range;
  range << (low_open ? "(" : "[") << low << " - ";
  if (std::isinf(high))
    range << "inf)";
  else
    range << high << "]";
  return CLI::Validator(
      [=, range = range.str()](std::string& input) {
        double value = 0;
        const bool ok = CLI::detail::lexical_cast(input, value) && std::isfinite(value) &&
                        (low_open ? value > low : value >= low) && value <= high;
        return ok ? std::string() : "Value " + input + " not in range " + range + " (finite)";
      },
      "FLOAT in " + range.str());
}

constexpr double unbounded = std::numeric_limits<double>::infinity();

/// Decimal digits up to 2^64 - 1. CLI11 converts with strtoull, which wraps "-1" to 2^64 - 1,
/// clamps 2^64 to it and reads "010" as octal; the input is rewritten in plain decimal for it.
CLI::Validator unsigned_64() {
  return CLI::Validator(
      [](std::string& input) {
        errno = 0;
        const bool digits = !input.empty() && input.find_first_not_of("0123456789") == input.npos;
        const unsigned long long value = digits ? std::strtoull(input.c_str(), nullptr, 10) : 0;
        if (!digits || errno == ERANGE)
          return "Value " + input + " not in range [0 - " +
                 std::to_string(std::numeric_limits<std::uint64_t>::max()) + "] (decimal digits)";
        input = std::to_string(value);
        return std::string();
      },
      "UINT in [0 - 2^64-1]");
}

std::string preset_help() {
  std::string help = "Model and training defaults:";
  for (const Preset& p : presets()) help += "\n  " + p.name + ": " + p.description;
  return help;
}

std::string footer() {
  return "Data: Debian's dataset-fashion-mnist (sudo apt-get install dataset-fashion-mnist) or "
         "the\n"
         "four official files in any directory (--data-dir, or " +
         std::string(data_dir_variable) +
         ").\n\nExamples:\n"
         // The times are figures.txt's (scripts/example_figures.sh checks them).
         "  fashion_mnist                                  # seed model, about 6 s of CPU\n"
         "  fashion_mnist --preset best --plot best.png    # >= 0.90 test accuracy\n"
         "  fashion_mnist --study dropout --plot study.png # the notebook's comparison, 50 epochs\n"
         "  fashion_mnist --preset cnn                     # >= 0.92, about 6 min of CPU\n"
         "  fashion_mnist --study spatial                  # conv dropout: none, per unit, per "
         "map\n"
         "  fashion_mnist --preset seed-dropout --mc-samples 30\n"
         "  fashion_mnist --study l2 --plot l2.png         # L2 0, 1e-5, 1e-4, 1e-3\n"
         "  fashion_mnist --search compare --trials 16 --epochs 3 --train-limit 10000\n";
}

std::vector<std::string> preset_list() {
  std::vector<std::string> names;
  for (const Preset& p : presets()) names.push_back(p.name);
  return names;
}

void add_conv_options(CLI::App& app, Flags& f) {
  app.add_option("--conv-channels", f.conv_channels,
                 "cnn: output channels of each conv block, e.g. 32,64 (each block halves the "
                 "image with its max-pool)")
      ->delimiter(',')
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll)
      ->check(CLI::Range(std::ptrdiff_t{1}, std::ptrdiff_t{4096}));
  app.add_option("--conv-dropout", f.conv_dropout,
                 "cnn: dropout in each conv block, after its activation: none, standard (each "
                 "activation on its own) or spatial (whole feature maps)")
      ->check(CLI::IsMember({"none", "standard", "spatial"}));
  app.add_option("--conv-rate", f.conv_rate, "cnn: the conv blocks' dropout rate")
      ->check(finite_in(0.0, 0.95));
}

void add_model_options(CLI::App& app, Flags& f) {
  app.add_option("-p,--preset", f.preset, preset_help())
      ->check(CLI::IsMember(preset_list()))
      ->capture_default_str();
  app.add_option("--layers", f.layers, "hidden dense layer sizes (cnn: after the conv blocks)")
      ->delimiter(',')
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll)
      ->check(CLI::Range(std::ptrdiff_t{1}, std::ptrdiff_t{1} << 20));
  app.add_option("--dropout", f.dropout,
                 "dense dropout rates: one per hidden layer plus one for the input (first; cnn: "
                 "the flattened maps), e.g. 0.25,0.4,0.4; a single rate applies after every "
                 "hidden layer; 0 = none")
      ->delimiter(',')
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll)
      ->check(finite_in(0.0, 0.95));
  app.add_option("--activation", f.activation, "hidden activation (cnn: the conv blocks' too)")
      ->check(
          CLI::IsMember({"relu", "leaky_relu", "elu", "selu", "gelu", "swish", "tanh", "sigmoid"}));
  app.add_flag("--batchnorm,!--no-batchnorm", f.batchnorm,
               "BatchNorm after each hidden Dense, before its activation");
  app.add_option("--l2", f.l2,
                 "L2 penalty on the weights and conv kernels (Keras kernel_regularizer)")
      ->check(finite_in(0.0, unbounded));
  app.add_option("--max-norm", f.max_norm,
                 "max-norm constraint on each dense unit's weights; 0 = none (mlp only)")
      ->check(finite_in(0.0, unbounded));
  add_conv_options(app, f);
}

void add_training_options(CLI::App& app, Flags& f) {
  app.add_option("--optimizer", f.optimizer, "optimizer (torch.optim's definitions and defaults)")
      ->check(CLI::IsMember({"sgd", "adam", "adamw", "rmsprop", "adagrad"}));
  app.add_option("--lr", f.lr, "learning rate")->check(finite_in(0.0, unbounded, true));
  app.add_option("--weight-decay", f.weight_decay,
                 "optimizer weight decay: coupled L2 for sgd, adam, rmsprop, adagrad (default 0); "
                 "decoupled for adamw (default 0.01, as torch)")
      ->check(finite_in(0.0, unbounded));
  app.add_option("--momentum", f.momentum, "momentum of sgd (default 0.9) and rmsprop (default 0)")
      ->check(finite_in(0.0, 0.999));
  app.add_option("--schedule", f.schedule,
                 "learning-rate schedule per epoch: step (x0.1 every third of the epochs), "
                 "exponential (x0.95), cosine (to 1% of lr), plateau (x0.5 after 2 flat epochs)")
      ->check(CLI::IsMember({"none", "step", "exponential", "cosine", "plateau"}));
  app.add_option("-b,--batch-size", f.batch_size, "images per training step")
      ->check(CLI::Range(std::ptrdiff_t{1}, std::ptrdiff_t{1} << 20));
  app.add_option("-e,--epochs", f.epochs, "epochs (0 with --load: evaluate only)")
      ->check(CLI::Range(0, 100000));
  app.add_option("--patience", f.patience,
                 "early stopping: stop after this many epochs without a better val_loss and "
                 "restore the best weights; 0 = off")
      ->check(CLI::Range(0, 100000));
  app.add_option("--augment-shift", f.augment_shift,
                 "data augmentation: shift each training image by up to N pixels, anew each epoch")
      ->check(CLI::Range(0, 8));
  app.add_flag("--augment-flip,!--no-augment-flip", f.augment_flip,
               "data augmentation: mirror half the training images left-right, anew each epoch");
  app.add_option("--label-smoothing", f.label_smoothing, "cross-entropy label smoothing")
      ->check(finite_in(0.0, 0.5));
}

void add_data_options(CLI::App& app, Flags& f, Options& o) {
  o.data.dir = debian_data_dir;
  app.add_option("-d,--data-dir", o.data.dir, "directory of the four Fashion-MNIST IDX files")
      ->envname(data_dir_variable)
      ->capture_default_str();
  app.add_option("--normalize", f.normalization,
                 "mean-std: (x - 0.5) / 0.5 as the notebook; per-pixel: standardize each pixel "
                 "with training statistics (the best preset's)")
      ->check(CLI::IsMember({"mean-std", "per-pixel"}));
  app.add_option("--valid-size", o.data.valid_size, "validation images taken from the 60,000")
      ->check(CLI::Range(std::ptrdiff_t{1}, std::ptrdiff_t{59999}))
      ->capture_default_str();
  app.add_option("--train-limit", o.data.train_limit, "train on the first N images only (0 = all)")
      ->check(CLI::Range(std::ptrdiff_t{0}, std::ptrdiff_t{1} << 40));
  app.add_option("--test-limit", o.data.test_limit, "test on the first N images only (0 = all)")
      ->check(CLI::Range(std::ptrdiff_t{0}, std::ptrdiff_t{1} << 40));
}

void add_run_options(CLI::App& app, Options& o) {
  app.add_option("-s,--seed", o.seed, "seed of every random draw")
      ->check(unsigned_64())
      ->capture_default_str();
  app.add_option("-j,--threads", o.threads,
                 "threads for Eigen's matrix products; results are reproducible for a given "
                 "seed and thread count (more threads pay off only for wide layers)")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  app.add_option(
         "--progress", o.progress,
         "bar: a progress bar per epoch; lines: one line per epoch; auto: bar on a terminal")
      ->check(CLI::IsMember({"auto", "bar", "lines"}))
      ->capture_default_str();
  app.add_option("--save", o.save_path,
                 "save the trained model, architecture and weights, to FILE (dropnet::save)");
  app.add_option("--export", o.export_path,
                 "export the trained model to FILE as ONNX (opset 13; it takes the inputs the "
                 "model sees, after --normalize)");
  app.add_option("--load", o.load_path,
                 "start from a model saved with --save; its architecture replaces the model "
                 "flags' (dropnet::load<float>)")
      ->check(CLI::ExistingFile);
  app.add_option("--history", o.history_path, "write loss and accuracy per epoch to a CSV file");
  app.add_option("--plot", o.plot_path,
                 "draw the learning curves with gnuplot into FILE (.png or .svg)");
  app.add_option("--study", o.study,
                 "dropout: train the notebook's models (no dropout; 0.25/0.4/0.4; --dropout, "
                 "default 0.5,0.5,0.5) for --epochs (default 50) at a constant learning rate "
                 "(unless --schedule) and compare them. spatial: train the cnn preset with no "
                 "dropout, standard dropout and SpatialDropout in its conv blocks (rate: "
                 "--conv-rate, default the preset's) for --epochs (default 5) and compare them. "
                 "uncertainty: plain, temperature-scaled, MC dropout, an ensemble "
                 "of 5 and Concrete dropout on calibration and shifted images (--plot: the "
                 "reliability diagram). perceptron: Rosenblatt's rule on Trouser vs Bag (--plot: "
                 "its boundary on 2 principal components; --epochs: its passes, default 100). l2: "
                 "the notebook's MLP with L2 0, 1e-5, 1e-4, 1e-3 (and --l2 if given), as the "
                 "dropout study. recurrent: the lstm preset with no dropout, naive dropout (a "
                 "fresh mask per step), variational dropout (one mask per sequence) and Zoneout, "
                 "on the first --train-limit images (default 10,000) for --epochs (default 20) at "
                 "a constant learning rate (unless --schedule)")
      ->check(CLI::IsMember({"dropout", "spatial", "uncertainty", "perceptron", "l2", "recurrent"}));
  app.add_option("--mc-samples", o.mc_samples,
                 "Monte-Carlo dropout at test time with T passes; reports accuracy on the most "
                 "and least certain test images")
      ->check(CLI::Range(2, 10000));
  app.add_option("--min-accuracy", o.min_accuracy,
                 "exit with status 3 if the test accuracy is below this (for CI)")
      ->check(finite_in(0.0, 1.0));
}

void add_search_options(CLI::App& app, Options& o) {
  app.add_option("--search", o.search,
                 "hyperparameter search over lr, dropout, l2, width and batch size, scored by "
                 "validation accuracy: grid, random, or compare (both, same budget and seeds); "
                 "--epochs per trial (default 5), --history: the trials' CSV, --plot: a figure")
      ->check(CLI::IsMember({"grid", "random", "compare"}));
  app.add_option("--trials", o.trials,
                 "--search: trials per search (grid: the most even grid that fits)")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  app.add_option("--prune-after", o.prune_after,
                 "--search: from this epoch on, stop a trial whose validation accuracy is below "
                 "the median of the earlier trials at that epoch (once 3 reached it); 0 = never")
      ->check(CLI::Range(0, 100000))
      ->capture_default_str();
  app.add_option("--prune-below", o.prune_below,
                 "--search with --prune-after: also stop a trial whose validation accuracy is "
                 "below this")
      ->check(finite_in(0.0, 1.0));
}

bool given(const CLI::App& app, const char* name) { return app.count(name) > 0; }

/// The spatial study compares conv dropout settings, so it brings the cnn preset along; the
/// recurrent study brings the lstm preset.
std::string preset_name(const CLI::App& app, const Flags& f, const Options& o) {
  if (o.study == "spatial" && !given(app, "--preset")) return "cnn";
  if (o.study == "recurrent" && !given(app, "--preset")) return "lstm";
  return f.preset;
}

void apply_model_flags(const CLI::App& app, const Flags& f, ModelSpec& m) {
  if (given(app, "--layers")) m.hidden = f.layers;
  if (given(app, "--activation")) m.activation = f.activation;
  if (given(app, "--batchnorm")) m.batchnorm = f.batchnorm;
  if (given(app, "--l2")) m.l2 = f.l2;
  if (given(app, "--max-norm")) m.max_norm = f.max_norm;
  if (given(app, "--conv-channels")) m.conv.channels = f.conv_channels;
  if (given(app, "--conv-dropout")) m.conv.dropout = f.conv_dropout;
  if (given(app, "--conv-rate")) m.conv.rate = f.conv_rate;
  for (const char* flag : {"--layers", "--dropout", "--activation", "--batchnorm",
                           "--conv-channels", "--conv-dropout", "--conv-rate"})
    if (given(app, flag)) m.label = "custom";
}

void apply_training_flags(const CLI::App& app, const Flags& f, TrainSpec& t) {
  if (given(app, "--optimizer") && t.optimizer != f.optimizer) {
    t.optimizer = f.optimizer;
    t.weight_decay = f.optimizer == "adamw" ? 1e-2 : 0.0;  // torch's defaults
  }
  if (given(app, "--lr")) t.lr = f.lr;
  if (given(app, "--weight-decay")) t.weight_decay = f.weight_decay;
  if (given(app, "--momentum")) t.momentum = f.momentum;
  if (given(app, "--schedule")) t.schedule = f.schedule;
  if (given(app, "--batch-size")) t.batch_size = f.batch_size;
  if (given(app, "--epochs")) t.epochs = f.epochs;
  if (given(app, "--patience")) t.patience = f.patience;
  if (given(app, "--label-smoothing")) t.label_smoothing = f.label_smoothing;
  if (given(app, "--augment-shift")) t.augment_shift = f.augment_shift;
  if (given(app, "--augment-flip")) t.augment_flip = f.augment_flip;
}

/// --dropout as one rate per dense layer's input; a single rate goes after every hidden layer.
std::vector<double> dense_rates(const CLI::App& app, const Flags& f, std::size_t layers) {
  std::vector<double> rates = f.dropout;
  if (rates.size() == 1) {  // after every hidden layer, the input untouched
    rates.assign(layers + 1, f.dropout[0]);
    rates[0] = 0.0;
  }
  if (given(app, "--dropout") && rates.size() != layers + 1)
    throw CLI::ValidationError("--dropout", "got " + std::to_string(f.dropout.size()) +
                                                " rates for " + std::to_string(layers) +
                                                " hidden layers; give 1 or " +
                                                std::to_string(layers + 1) + " (input first)");
  return rates;
}

/// The model's dense dropout, or the study's settings: each study model sets its own.
void resolve_dropout(const CLI::App& app, const Flags& f, Options& o) {
  ModelSpec& m = o.model;
  TrainSpec& t = o.train;
  const std::size_t layers = m.hidden.size();
  const std::vector<double> rates = dense_rates(app, f, layers);
  bool any_dropout = false;
  for (double r : rates) any_dropout = any_dropout || r > 0;
  if (o.study == "dropout") {
    m.dropout.clear();
    o.study_dropout = given(app, "--dropout") ? rates : std::vector<double>(layers + 1, 0.5);
  } else if (given(app, "--dropout")) {
    m.dropout = any_dropout ? rates : std::vector<double>{};
  }
  if (o.study == "dropout" || o.study == "l2") {
    // The notebook's setting: 50 epochs at a constant rate, where overfitting shows.
    if (!given(app, "--epochs")) t.epochs = 50;
    if (!given(app, "--schedule")) t.schedule = "none";
  }
  // Three cnn runs of 5 epochs: about 6 minutes of CPU (356 s measured), well under 45; the
  // preset's cosine schedule stays, compressed into those epochs.
  if (o.study == "spatial" && !given(app, "--epochs")) t.epochs = 5;
  if (o.study == "perceptron" && !given(app, "--epochs")) t.epochs = 100;
  // Four LSTMs on 10,000 images for 20 epochs at a constant rate: enough for the valid loss of
  // the models without dropout to pass its minimum, in about 4 minutes of CPU (255 s measured).
  if (o.study == "recurrent") {
    if (!given(app, "--epochs")) t.epochs = 20;
    if (!given(app, "--schedule")) t.schedule = "none";
    if (!given(app, "--train-limit")) o.data.train_limit = 10000;
  }
  if (!o.search.empty() && !given(app, "--epochs")) t.epochs = 5;  // a few epochs per trial
  if (m.dropout.size() != 0 && m.dropout.size() != layers + 1)
    throw CLI::ValidationError("--layers", "the preset's " + std::to_string(m.dropout.size()) +
                                               " dropout rates do not fit " +
                                               std::to_string(layers) +
                                               " hidden layers: give --dropout too");
}

/// Flags that make sense for one kind of network only, and the study that fits each.
void check_kind(const CLI::App& app, const Options& o) {
  if (o.study == "recurrent" && o.model.kind != "lstm")
    throw CLI::ValidationError("--study",
                               "recurrent compares an LSTM's dropouts: it needs --preset lstm "
                               "(the default for this study)");
  if (o.model.kind == "cnn") {
    if (o.model.max_norm > 0)
      throw CLI::ValidationError("--max-norm", "applies to the mlp presets' dense layers only");
    if (o.study == "dropout" || o.study == "l2")
      throw CLI::ValidationError("--study", o.study +
                                                " compares the notebook's MLPs; with "
                                                "--preset cnn use --study spatial");
    if (!o.search.empty())
      throw CLI::ValidationError("--search", "searches the MLP's hyperparameters, not the cnn's");
    return;
  }
  for (const char* flag : {"--conv-channels", "--conv-dropout", "--conv-rate"})
    if (given(app, flag)) throw CLI::ValidationError(flag, "only applies to --preset cnn");
  if (o.study == "spatial")
    throw CLI::ValidationError("--study",
                               "spatial compares the conv blocks' dropout: it needs "
                               "--preset cnn (the default for this study)");
}

/// --search trains many models from their own configurations; its flags go with it only.
void check_search(const CLI::App& app, const Options& o) {
  if (o.search.empty()) {
    for (const char* flag : {"--trials", "--prune-after", "--prune-below"})
      if (given(app, flag)) throw CLI::ValidationError(flag, "only applies with --search");
    return;
  }
  if (!o.study.empty()) throw CLI::ValidationError("--search", "runs alone: drop --study");
  if (!o.load_path.empty() || !o.save_path.empty() || !o.export_path.empty() || o.mc_samples > 0)
    throw CLI::ValidationError("--search",
                               "trains many models: --load, --save, --export and --mc-samples "
                               "do not apply");
  if (given(app, "--prune-below") && o.prune_after == 0)
    throw CLI::ValidationError("--prune-below", "needs --prune-after K (the first epoch checked)");
}

/// Throws unless `path` can be created or overwritten: its directory exists and takes a new file
/// (a probe file, created and removed: root passes access(2) even on /proc), and `path` is no
/// directory, nor a file this user may not write. Never creates or truncates `path` itself.
void check_writable(const char* option, const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path file(path);
  const std::string dir = file.has_parent_path() ? file.parent_path().string() : ".";
  auto fail = [&](const std::string& why) {
    throw CLI::ValidationError(option, "cannot write '" + path + "': " + why);
  };
  if (file.filename().empty() || fs::is_directory(file, ec)) fail("it is a directory");
  if (!fs::is_directory(dir, ec)) fail("directory '" + dir + "' does not exist");
  std::string probe = (fs::path(dir) / ".fashion_mnist_probe_XXXXXX").string();
  const int fd = ::mkstemp(&probe[0]);
  if (fd < 0) fail("cannot create files in directory '" + dir + "' (" + std::strerror(errno) + ")");
  ::close(fd);
  ::unlink(probe.c_str());
  if (fs::exists(file, ec) && ::access(path.c_str(), W_OK) != 0) fail(std::strerror(errno));
}

/// Outputs are written after training and testing: a typo in their directory must not cost the
/// run, so they are checked before any data is read.
void check_outputs(const Options& o) {
  std::string curves = o.history_path;  // where the history goes: --history, or next to --plot
  if (curves.empty() && !o.plot_path.empty()) curves = with_extension(o.plot_path, ".csv");
  const std::pair<const char*, std::string> outputs[] = {
      {"--save", o.save_path},
      {"--export", o.export_path},
      {"--plot", o.plot_path},
      {o.history_path.empty() ? "--plot" : "--history", curves}};
  for (const auto& [option, path] : outputs)
    if (!path.empty()) check_writable(option, path);
}

/// The preset, then every flag the user gave, then checks that span several flags.
void resolve(const CLI::App& app, const Flags& f, Options& o) {
  const Preset& preset = find_preset(preset_name(app, f, o));
  o.preset = preset.name;
  o.model = preset.model;
  o.train = preset.train;
  o.data.normalization = given(app, "--normalize") ? f.normalization : preset.normalization;
  apply_model_flags(app, f, o.model);
  apply_training_flags(app, f, o.train);
  check_kind(app, o);
  resolve_dropout(app, f, o);
  if (o.study == "spatial" && o.model.conv.rate <= 0)
    throw CLI::ValidationError("--conv-rate", "the spatial study needs a rate above 0");
  if (o.train.epochs == 0 && o.load_path.empty())
    throw CLI::ValidationError("--epochs", "0 epochs only makes sense with --load");
  if (o.mc_samples > 0 && !has_dropout(o.model) && o.study.empty())
    throw CLI::ValidationError("--mc-samples",
                               "needs a model with dropout (e.g. --preset "
                               "seed-dropout or --dropout 0.25,0.4,0.4)");
  if (!o.plot_path.empty() && !is_plot_name(o.plot_path))
    throw CLI::ValidationError("--plot", "'" + o.plot_path + "' must end in .png or .svg");
  if (!o.study.empty() && (!o.load_path.empty() || !o.save_path.empty() || !o.export_path.empty()))
    throw CLI::ValidationError("--study",
                               "trains three models: --load, --save and --export do not apply");
  check_search(app, o);
  if (o.study == "l2") {  // the chapter's range (1e-5 to 1e-3) and none; the user's value too
    o.study_l2 = {0.0, 1e-5, 1e-4, 1e-3};
    const double yours = o.model.l2;
    if (std::find(o.study_l2.begin(), o.study_l2.end(), yours) == o.study_l2.end())
      o.study_l2.push_back(yours);
  }
  check_outputs(o);
}

}  // namespace

ParsedCommandLine parse_command_line(int argc, char** argv) {
  ParsedCommandLine parsed;
  Options& o = parsed.options;
  Flags flags;
  CLI::App app(
      "Fashion-MNIST with dropnet: the seed notebook's MLP, its dropout study, a small CNN "
      "with spatial dropout, learning curves and Monte-Carlo dropout uncertainty.",
      "fashion_mnist");
  app.footer(footer());
  // A repeated option takes its last value, so a script can append overrides to a command line.
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  add_model_options(app, flags);
  add_training_options(app, flags);
  add_data_options(app, flags, o);
  add_run_options(app, o);
  add_search_options(app, o);
  try {
    app.parse(argc, argv);
    resolve(app, flags, o);
  } catch (const CLI::ParseError& e) {
    parsed.exit = true;
    parsed.exit_code = app.exit(e);  // prints the message, and a pointer to --help
  }
  return parsed;
}

}  // namespace fmnist
