#pragma once
// What one run of the example is made of, once the preset and the flags are resolved.
// Plain data: cli.cpp fills it, the rest of the program only reads it.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace fmnist {

/// The convolutional blocks of a "cnn" model, each on the previous one's feature maps:
/// Conv2D 3x3 (padding 1, same size) -> BatchNorm -> activation -> dropout -> MaxPool 2x2.
struct ConvSpec {
  std::vector<std::ptrdiff_t> channels = {32, 64};  ///< output channels of each block
  /// Where dropout acts in each block: "none", "standard" (each activation on its own) or
  /// "spatial" (whole feature maps, SpatialDropout).
  std::string dropout = "spatial";
  double rate = 0.1;  ///< the blocks' dropout rate
};

/// The dropout of a "lstm" model (RecurrentOptions): rates of x_t and h_{t-1}, Zoneout of c, h.
struct RecurrentSpec {
  double dropout = 0.0;            ///< input x_t, one mask per sequence
  double recurrent_dropout = 0.0;  ///< h_{t-1}, one mask per sequence
  double zoneout_c = 0.0;          ///< cell state, fresh per step
  double zoneout_h = 0.0;          ///< hidden state, fresh per step
  bool per_step_masks = false;     ///< dropout masks fresh per step ("naive"), not per sequence
};

/// The network. "mlp": 784 -> hidden... -> 10 logits. "cnn": 1x28x28 -> conv blocks -> their
/// maps flattened -> hidden... -> 10 logits (the dense layers are the same in both).
struct ModelSpec {
  std::string label = "seed";  ///< its name in tables, logs and plot legends
  std::string kind = "mlp";    ///< "mlp", "cnn" or "lstm" (recurrent_model.hpp)
  ConvSpec conv;               ///< kind "cnn" only
  RecurrentSpec recurrent;     ///< kind "lstm" only (hidden[0] is its units)
  std::vector<std::ptrdiff_t> hidden = {120, 60};
  /// Empty (no dropout), or one rate per dense layer's input: the image (cnn: the flattened
  /// maps), then each hidden layer.
  std::vector<double> dropout;
  std::string activation = "relu";  ///< of the hidden dense layers and of the conv blocks
  bool batchnorm = false;           ///< hidden Dense -> BatchNorm -> activation -> Dropout
  double l2 = 0.0;                  ///< Keras-style penalty on every weight matrix and conv kernel
  double max_norm = 0.0;            ///< 0 = no max-norm constraint (mlp only)
};

struct TrainSpec {
  std::string optimizer = "adam";
  double lr = 1e-3;
  double weight_decay = 0.0;
  std::optional<double> momentum;  ///< sgd (default 0.9) and rmsprop (default 0)
  std::string schedule = "none";   ///< none, step, exponential, cosine, plateau
  int epochs = 15;
  std::ptrdiff_t batch_size = 64;
  int patience = 0;  ///< early stopping on val_loss; 0 = off
  double label_smoothing = 0.0;
  int augment_shift = 0;      ///< random shifts up to this many pixels; 0 = off
  bool augment_flip = false;  ///< random left-right mirroring
};

struct DataSpec {
  std::string dir;
  std::string normalization = "mean-std";  ///< "mean-std" (0.5, 0.5) or "per-pixel"
  std::ptrdiff_t valid_size = 10000;       ///< taken from the 60,000 training images
  std::ptrdiff_t train_limit = 0;          ///< 0 = the whole training split
  std::ptrdiff_t test_limit = 0;           ///< 0 = all 10,000 test images
};

struct Options {
  std::string preset = "seed";
  ModelSpec model;
  TrainSpec train;
  DataSpec data;
  std::uint64_t seed = 42;
  int threads = 1;                ///< Eigen's threads (OpenMP builds only)
  std::string progress = "auto";  ///< auto, bar, lines
  std::string save_path, load_path;
  std::string export_path;  ///< --export: the trained model as an ONNX file (io/onnx_export.hpp)
  std::string history_path, plot_path;
  /// "", "dropout", "l2", "uncertainty", "perceptron" (mlp), "spatial" (cnn) or "recurrent" (lstm)
  std::string study;
  std::vector<double> study_dropout;  ///< the third model of the study ("yours")
  std::vector<double> study_l2;       ///< --study l2: one model per L2 strength
  std::string search;                 ///< "", "grid", "random" or "compare" (both)
  int trials = 16;                    ///< --search: trials per search (the budget)
  int prune_after = 0;       ///< --search: prune bad trials from this epoch on (1-based); 0 = never
  double prune_below = 0.0;  ///< --search: with prune_after, also prune below this valid accuracy
  int mc_samples = 0;
  double min_accuracy = 0.0;  ///< exit status 3 below this test accuracy
};

}  // namespace fmnist
