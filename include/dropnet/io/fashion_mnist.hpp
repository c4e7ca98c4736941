#pragma once
// Fashion-MNIST (Xiao, Rasul & Vollgraf 2017): 28x28 grey images of Zalando articles in 10
// classes, 60,000 for training and 10,000 for testing, stored as four IDX files.
//
//   fashion_mnist::class_names                 the 10 class names, by label
//   fashion_mnist::default_directory           Debian's dataset-fashion-mnist location
//   fashion_mnist::files(dir, part)            paths of a part's image and label files
//   fashion_mnist::load<T>(dir, part)          784 x N pixels in [0, 1] and N labels
//   fashion_mnist::split<T>(data, n, gen)      a seeded random split, like torch's random_split
//   fashion_mnist::take<T>(data, n)            the first n items (a subset for quick runs)
//
// files() accepts the official gzip names ("train-images-idx3-ubyte.gz") and their decompressed
// forms (no ".gz"); loading throws FormatError naming the directory and the files looked for
// when neither exists, and the IDX reader's errors (idx.hpp) for a truncated or corrupt file.
// Requires zlib, through idx.hpp.

#include <array>
#include <cstdint>
#include <filesystem>
#include <numeric>
#include <string>
#include <vector>

#include "../core/generator.hpp"
#include "idx.hpp"

namespace dropnet::fashion_mnist {

/// Number of classes (labels 0 to 9).
inline constexpr int classes = 10;
/// Image height in pixels.
inline constexpr Index image_height = 28;
/// Image width in pixels.
inline constexpr Index image_width = 28;
/// Pixels per image, the rows of an images matrix (784).
inline constexpr Index features = image_height * image_width;
/// Images in the official training set.
inline constexpr Index train_size = 60000;
/// Images in the official test set.
inline constexpr Index test_size = 10000;

/// Class names by label, as in the dataset's README.
inline constexpr std::array<const char*, classes> class_names = {
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};

/// Where Debian's dataset-fashion-mnist package installs the files.
inline constexpr const char* default_directory = "/usr/share/datasets/fashion-mnist";

/// The official training set (60,000 images) or test set (10,000 images).
enum class Part { train, test };

/// Paths of a part's image file and label file, as files() found them.
struct Files {
  /// Path of the IDX3 image file.
  std::string images;
  /// Path of the IDX1 label file.
  std::string labels;
};

namespace detail {

/// `dir/name.gz` if it exists, else `dir/name` if it exists, else empty.
inline std::string find_file(const std::string& dir, const std::string& name) {
  namespace fs = std::filesystem;
  std::error_code ignored;
  for (const std::string& candidate : {name + ".gz", name}) {
    const fs::path path = fs::path(dir) / candidate;
    if (fs::is_regular_file(path, ignored)) return path.string();
  }
  return {};
}

}  // namespace detail

/// Paths of a part's files in `dir`. Throws FormatError naming what was looked for if missing.
inline Files files(const std::string& dir, Part part) {
  const std::string prefix = part == Part::train ? "train" : "t10k";
  const std::string images = prefix + "-images-idx3-ubyte";
  const std::string labels = prefix + "-labels-idx1-ubyte";
  Files found{detail::find_file(dir, images), detail::find_file(dir, labels)};
  auto require_found = [&](const std::string& path, const std::string& name) {
    if (path.empty())
      throw FormatError(dropnet::detail::concat(
          "Fashion-MNIST: no ", name, ".gz (nor ", name, ") in '", dir,
          "'; install Debian's dataset-fashion-mnist or download the files (see the README)"));
  };
  require_found(found.images, images);
  require_found(found.labels, labels);
  return found;
}

/// Loads a part: images 784 x N with pixels in [0, 1], labels in [0, 10). Checks the image size
/// (28 x 28) besides what load_idx_dataset checks. Throws FormatError.
template <class T>
LabeledImages<T> load(const std::string& dir, Part part) {
  const Files paths = files(dir, part);
  LabeledImages<T> data = load_idx_dataset<T>(paths.images, paths.labels, classes);
  if (data.height != image_height || data.width != image_width)
    throw FormatError(dropnet::detail::concat(paths.images, ": images are ", data.height, "x",
                                              data.width, ", expected ", image_height, "x",
                                              image_width));
  return data;
}

/// The items of `data` at `index`, in that order.
template <class T>
LabeledImages<T> subset(const LabeledImages<T>& data, const std::vector<Index>& index) {
  LabeledImages<T> out;
  out.height = data.height;
  out.width = data.width;
  out.images.resize(data.images.rows(), static_cast<Index>(index.size()));
  out.labels.resize(static_cast<Index>(index.size()));
  for (std::size_t j = 0; j < index.size(); ++j) {
    dropnet::detail::require(index[j] >= 0 && index[j] < data.size(), "fashion_mnist::subset",
                             "index ", index[j], " out of range [0, ", data.size(), ")");
    out.images.col(static_cast<Index>(j)) = data.images.col(index[j]);
    out.labels(static_cast<Index>(j)) = data.labels(index[j]);
  }
  return out;
}

/// The first min(n, size) items.
template <class T>
LabeledImages<T> take(const LabeledImages<T>& data, Index n) {
  dropnet::detail::require(n >= 0, "fashion_mnist::take", "n must be >= 0, got ", n);
  std::vector<Index> index(static_cast<std::size_t>(std::min(n, data.size())));
  std::iota(index.begin(), index.end(), Index{0});
  return subset(data, index);
}

/// The two sides of split(): training and validation items.
template <class T>
struct TrainValid {
  /// The size - valid_count training items.
  LabeledImages<T> train;
  /// The valid_count validation items.
  LabeledImages<T> valid;
};

/// A random split into size - valid_count training and valid_count validation items, by a
/// permutation drawn from `gen` (the notebook's random_split(dataset, (50000, 10000))).
/// Throws unless 0 < valid_count < size.
template <class T>
TrainValid<T> split(const LabeledImages<T>& data, Index valid_count, Generator& gen) {
  dropnet::detail::require(valid_count > 0 && valid_count < data.size(), "fashion_mnist::split",
                           "valid_count must be in (0, ", data.size(), "), got ", valid_count);
  std::vector<Index> order(static_cast<std::size_t>(data.size()));
  std::iota(order.begin(), order.end(), Index{0});
  dropnet::shuffle(order.begin(), order.size(), gen);
  const auto cut = order.end() - valid_count;
  return {subset(data, std::vector<Index>(order.begin(), cut)),
          subset(data, std::vector<Index>(cut, order.end()))};
}

}  // namespace dropnet::fashion_mnist
