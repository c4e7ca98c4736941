#pragma once
// Sequence geometry shared by the recurrent layers.
//
// SequenceShape{steps, features} describes one sample's column of a batch: `steps` vectors of
// `features` values in time order, step t in rows [t*features, (t+1)*features), so feature f of
// step t is row t*features + f. A batch of sequences is one matrix with one sample per column
// (steps*features x batch), as a batch of images is (ImageShape). A recurrent layer that returns
// the whole sequence writes its output in the same layout, SequenceShape{steps, units}, so
// recurrent layers stack. A Fashion-MNIST image (28x28, row-major) read as SequenceShape{28, 28}
// is the sequence of its rows.

#include <string>

#include "../core/error.hpp"
#include "../core/types.hpp"

namespace dropnet {

/// One sample's sequence: `steps` vectors of `features` values, time-major in its column (step t
/// at rows [t*features, (t+1)*features)).
struct SequenceShape {
  Index steps = 0;     ///< T, the time steps
  Index features = 0;  ///< F, the values per step

  /// T*F, the rows of a sample's column.
  Index size() const { return steps * features; }
  /// Same steps and features.
  friend bool operator==(const SequenceShape& a, const SequenceShape& b) {
    return a.steps == b.steps && a.features == b.features;
  }
  /// Not operator==.
  friend bool operator!=(const SequenceShape& a, const SequenceShape& b) { return !(a == b); }
};

/// "TxF", e.g. "28x28" (steps x features).
inline std::string to_string(const SequenceShape& s) {
  return detail::concat(s.steps, "x", s.features);
}

namespace detail {

/// Throws InvalidArgument("<layer>: ...") unless steps and features are positive.
inline void require_sequence_shape(const std::string& layer, const SequenceShape& s) {
  require(s.steps > 0 && s.features > 0, layer,
          "sequence shape must have positive steps and features, got steps=", s.steps,
          " features=", s.features);
}

/// Throws InvalidArgument naming `layer` unless a batch of sequences of shape `s` has `rows`.
inline void require_sequence_rows(const std::string& layer, const SequenceShape& s, Index rows) {
  if (rows != s.size())
    throw InvalidArgument(concat(layer, ": input has ", rows, " rows, expected ", s.size(), " (",
                                 s.steps, " steps x ", s.features, " features, time-major)"));
}

}  // namespace detail

}  // namespace dropnet
