#pragma once
// Little-endian binary encoding for dropnet's files, independent of the host's byte order.
//
// BinaryWriter appends to a std::string; BinaryReader reads a byte range with every read
// bounds-checked. Integers are written least significant byte first; float and double as the
// little-endian bytes of their IEEE-754 bit pattern (the bits are copied into an unsigned
// integer of the same width and shifted out, so no struct or host-order memcpy reaches the
// file). A string is a u32 byte length followed by the bytes, without a terminator.
//
// BinaryReader throws FormatError("<where>: truncated: ...") when a read runs past the end and
// FormatError("<where>: ...") when a string is longer than the caller's bound; it never reads
// out of range and never allocates more than the bytes actually present.

#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <type_traits>
#include <utility>

#include "../core/error.hpp"

namespace dropnet::detail {

template <class T>
using ScalarBits = std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>;

template <class T>
constexpr void require_ieee_scalar() {
  static_assert(std::numeric_limits<T>::is_iec559 && (sizeof(T) == 4 || sizeof(T) == 8),
                "dropnet files hold IEEE-754 binary32 (float) or binary64 (double) scalars");
}

class BinaryWriter {
 public:
  explicit BinaryWriter(std::string& out) : out_(out) {}

  void u8(std::uint8_t value) { out_.push_back(static_cast<char>(value)); }
  void u32(std::uint32_t value) { put(value, 4); }
  void u64(std::uint64_t value) { put(value, 8); }
  void i64(std::int64_t value) { put(static_cast<std::uint64_t>(value), 8); }
  void f64(double value) { scalar(value); }

  template <class T>
  void scalar(T value) {
    require_ieee_scalar<T>();
    ScalarBits<T> bits;
    std::memcpy(&bits, &value, sizeof(T));
    put(bits, sizeof(T));
  }

  void str(const std::string& text) {
    u32(static_cast<std::uint32_t>(text.size()));
    out_ += text;
  }

  void bytes(const char* data, std::size_t size) { out_.append(data, size); }

  /// Overwrites 4 bytes at `offset` (already written) with `value`, little-endian.
  void patch_u32(std::size_t offset, std::uint32_t value) {
    for (int i = 0; i < 4; ++i)
      out_[offset + static_cast<std::size_t>(i)] = static_cast<char>((value >> (8 * i)) & 0xFFu);
  }
  void patch_u64(std::size_t offset, std::uint64_t value) {
    for (int i = 0; i < 8; ++i)
      out_[offset + static_cast<std::size_t>(i)] = static_cast<char>((value >> (8 * i)) & 0xFFu);
  }

  std::size_t size() const { return out_.size(); }

 private:
  void put(std::uint64_t value, int count) {
    for (int i = 0; i < count; ++i) out_.push_back(static_cast<char>((value >> (8 * i)) & 0xFFu));
  }

  std::string& out_;
};

/// Reads `count` little-endian bytes at `p` as an unsigned integer.
inline std::uint64_t load_le(const char* p, int count) {
  std::uint64_t value = 0;
  for (int i = 0; i < count; ++i)
    value |= std::uint64_t{static_cast<unsigned char>(p[i])} << (8 * i);
  return value;
}

template <class T>
T load_le_scalar(const char* p) {
  require_ieee_scalar<T>();
  const auto bits = static_cast<ScalarBits<T>>(load_le(p, sizeof(T)));
  T value;
  std::memcpy(&value, &bits, sizeof(T));
  return value;
}

class BinaryReader {
 public:
  /// Reads bytes [begin, end) of `data`; `where` prefixes every error message.
  BinaryReader(const std::string& data, std::size_t begin, std::size_t end, std::string where)
      : data_(data), pos_(begin), end_(end), where_(std::move(where)) {}

  std::uint8_t u8(const char* what) { return static_cast<std::uint8_t>(take(1, what)); }
  std::uint32_t u32(const char* what) { return static_cast<std::uint32_t>(take(4, what)); }
  std::uint64_t u64(const char* what) { return take(8, what); }
  std::int64_t i64(const char* what) {
    const std::uint64_t bits = take(8, what);
    std::int64_t value;
    std::memcpy(&value, &bits, sizeof value);  // two's complement, well defined for any bits
    return value;
  }
  double f64(const char* what) {
    need(8, what);
    const double value = load_le_scalar<double>(data_.data() + pos_);
    pos_ += 8;
    return value;
  }

  /// A u32-length-prefixed string of at most `max_length` bytes.
  std::string str(const char* what, std::uint32_t max_length) {
    const std::uint32_t length = u32(what);
    if (length > max_length)
      throw FormatError(concat(where_, ": ", what, " at byte ", pos_ - 4, " is ", length,
                               " bytes long, the limit is ", max_length));
    need(length, what);
    std::string text = data_.substr(pos_, length);
    pos_ += length;
    return text;
  }

  /// Skips `count` elements of `element_size` bytes, checking (without overflow) that they are
  /// present; returns the offset of the first. Nothing is allocated.
  std::size_t skip_elements(std::uint64_t count, std::size_t element_size, const char* what) {
    if (count > remaining() / element_size)
      throw FormatError(concat(where_, ": truncated: ", what, " at byte ", pos_, " announces ",
                               count, " elements of ", element_size, " bytes, only ", remaining(),
                               " bytes left"));
    const std::size_t offset = pos_;
    pos_ += static_cast<std::size_t>(count) * element_size;
    return offset;
  }

  /// Throws unless `count` more bytes are present.
  void need(std::uint64_t count, const char* what) const {
    if (count > remaining())
      throw FormatError(concat(where_, ": truncated: ", what, " at byte ", pos_, " needs ", count,
                               " bytes, ", remaining(), " left"));
  }

  std::size_t remaining() const { return end_ - pos_; }
  std::size_t position() const { return pos_; }
  const std::string& where() const { return where_; }

 private:
  std::uint64_t take(int count, const char* what) {
    need(static_cast<std::uint64_t>(count), what);
    const std::uint64_t value = load_le(data_.data() + pos_, count);
    pos_ += static_cast<std::size_t>(count);
    return value;
  }

  const std::string& data_;
  std::size_t pos_;
  std::size_t end_;
  std::string where_;
};

}  // namespace dropnet::detail
