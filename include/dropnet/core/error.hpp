#pragma once
// Exceptions thrown by dropnet and the helpers that build their messages.
//
// Every message names where the problem was found (a layer, a function), what was expected
// and what was received, e.g. "Dense(784->120): input has 700 rows, expected 784".

#include <sstream>
#include <stdexcept>
#include <string>

namespace dropnet {

/// A caller passed something dropnet cannot use: a wrong shape, a value out of range.
class InvalidArgument : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

/// A file or stream is missing, truncated, corrupt or of an unknown format.
class FormatError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Training produced a non-finite loss or gradient.
class NumericalError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

namespace detail {

template <class... Parts>
std::string concat(const Parts&... parts) {
  std::ostringstream out;
  (out << ... << parts);
  return out.str();
}

/// Throws InvalidArgument("<where>: <message parts>") unless `condition` holds. `where` is
/// taken as is (a literal stays a pointer): a passing check builds no string.
template <class Where, class... Parts>
void require(bool condition, const Where& where, const Parts&... parts) {
  if (!condition) throw InvalidArgument(concat(where, ": ", parts...));
}

/// Throws unless `rows x cols` equals the expected shape.
inline void require_shape(const std::string& where, const char* what, long rows, long cols,
                          long expected_rows, long expected_cols) {
  if (rows != expected_rows || cols != expected_cols)
    throw InvalidArgument(concat(where, ": ", what, " has shape ", rows, "x", cols, ", expected ",
                                 expected_rows, "x", expected_cols));
}

}  // namespace detail
}  // namespace dropnet
