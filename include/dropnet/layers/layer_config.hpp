#pragma once
// LayerConfig: a layer's description (kind and hyperparameters), written by Layer::config()
// and read back when a model file is loaded; ElementBudget: the bound on what a (corrupt)
// description may make the loader allocate; and the readers that turn an untrusted config
// field into a checked value.
//
// A config usually comes from a file, so its readers trust nothing: sizes must be integers in
// range (checked as doubles before any cast, so a NaN or 1e300 is an error, not undefined
// behaviour), flags 0 or 1. They throw FormatError("layer config <kind>: ...").

#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#include "../core/error.hpp"
#include "../core/types.hpp"
#include "../regularizers/weight_penalty.hpp"
#include "image_shape.hpp"

namespace dropnet {

/// A layer's type name and hyperparameters, enough to rebuild it (see io/model_file.hpp).
/// The readers (number, string, integer, flag, finite) throw FormatError("layer config <kind>:
/// ...") for a missing field or a value outside what they accept: a config usually comes from a
/// file, so a layer's from_config reads it only through them.
struct LayerConfig {
  std::string kind;                                           ///< e.g. "Dense", "Dropout"
  std::vector<std::pair<std::string, double>> numbers;        ///< e.g. {"in", 784}, {"p", 0.4}
  std::vector<std::pair<std::string, std::string>> strings;   ///< e.g. {"activation", "ReLU"}

  /// The number field `key`, as stored.
  double number(const std::string& key) const {
    for (const auto& [name, value] : numbers)
      if (name == key) return value;
    throw FormatError("layer config " + kind + ": missing field '" + key + "'");
  }
  /// The string field `key`.
  std::string string(const std::string& key) const {
    for (const auto& [name, value] : strings)
      if (name == key) return value;
    throw FormatError("layer config " + kind + ": missing field '" + key + "'");
  }
  /// The number field `key`, which must be an integer in [low, high]; checked as a double before
  /// the cast, so a NaN or 1e300 is an error, not undefined behaviour.
  Index integer(const std::string& key, double low, double high) const {
    const double v = number(key);
    if (!(v >= low && v <= high) || std::floor(v) != v)
      throw FormatError(detail::concat("layer config ", kind, ": field '", key,
                                       "' must be an integer in [", low, ", ", high, "], got ", v));
    return static_cast<Index>(v);
  }
  /// The number field `key`, which must be 0 or 1.
  bool flag(const std::string& key) const { return integer(key, 0, 1) == 1; }
  /// The number field `key`, which must be finite.
  double finite(const std::string& key) const {
    const double v = number(key);
    if (!std::isfinite(v))
      throw FormatError(
          detail::concat("layer config ", kind, ": field '", key, "' must be finite, got ", v));
    return v;
  }
};

/// How many tensor elements the layers built so far may still allocate. Factories call take()
/// before constructing anything; it throws FormatError when the request does not fit.
class ElementBudget {
 public:
  /// A budget of `limit` elements.
  explicit ElementBudget(std::uint64_t limit) : left_(limit) {}

  /// Charges `elements`; throws FormatError naming `what` when fewer are left.
  void take(std::uint64_t elements, const std::string& what) {
    if (elements > left_)
      throw FormatError(detail::concat(what, " would allocate ", elements,
                                       " elements; the file can justify only ", left_,
                                       " more (corrupt size?)"));
    left_ -= elements;
  }
  /// Elements still available.
  std::uint64_t left() const { return left_; }

 private:
  std::uint64_t left_;
};

namespace detail {

inline std::string config_where(const LayerConfig& c) { return "layer config " + c.kind; }

/// Largest size a layer dimension may have (rows of a batch); far above any real model, and
/// small enough that products of two sizes stay exact in a double and an int64.
inline constexpr double max_layer_size = 1u << 30;

/// Charges rows x cols elements, overflow-safe.
inline void take_matrix(ElementBudget& budget, Index rows, Index cols, const std::string& what) {
  const auto r = static_cast<std::uint64_t>(rows), k = static_cast<std::uint64_t>(cols);
  if (r != 0 && k > budget.left() / r) budget.take(budget.left() + 1, what);  // throws
  budget.take(r * k, what);
}

/// The weight penalty of fields l1 and l2. Applied even when both are 0, so that a saved -0.0
/// comes back as -0.0 and load stays bit-exact.
template <class T>
WeightPenalty<T> config_penalty(const LayerConfig& c) {
  return {static_cast<T>(c.finite("l1")), static_cast<T>(c.finite("l2"))};
}

/// The product of sizes read from a file, or FormatError when it passes 2^62: checked in double
/// first, so the integer product (and ImageShape's) can never overflow.
inline std::uint64_t checked_product(const LayerConfig& c, std::initializer_list<Index> factors) {
  double announced = 1.0;
  for (const Index f : factors) announced *= static_cast<double>(f);
  if (announced > 0x1p62)
    throw FormatError(concat(config_where(c), ": sizes whose product is ", announced, " (corrupt?)"));
  std::uint64_t product = 1;
  for (const Index f : factors) product *= static_cast<std::uint64_t>(f);
  return product;
}

/// channels, height, width; C*H*W < 2^31 (pooling indexes rows with 32 bits).
inline ImageShape config_image(const LayerConfig& c) {
  const ImageShape s{c.integer("channels", 1, max_layer_size),
                     c.integer("height", 1, max_layer_size), c.integer("width", 1, max_layer_size)};
  if (checked_product(c, {s.channels, s.height, s.width}) >= (std::uint64_t{1} << 31))
    throw FormatError(concat(config_where(c), ": image ", to_string(s), " has 2^31 or more values"));
  return s;
}

inline void take(ElementBudget& budget, std::uint64_t elements, const LayerConfig& c) {
  budget.take(elements, config_where(c));
}

}  // namespace detail

}  // namespace dropnet
