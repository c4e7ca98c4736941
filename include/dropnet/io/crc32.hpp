#pragma once
// CRC-32 (IEEE 802.3, as zlib, gzip and PNG compute it): reflected polynomial 0xEDB88320,
// initial value 0xFFFFFFFF, final XOR 0xFFFFFFFF. crc32("123456789") == 0xCBF43926.
//
//   Crc32 crc;  crc.update(data, n);  ...;  crc.value()      incremental
//   crc32(data, n)                                           one shot
//
// Table-driven, one byte at a time; the table is built at compile time, so there is no global
// mutable state and nothing to initialize. Throws nothing.

#include <array>
#include <cstddef>
#include <cstdint>

namespace dropnet {

namespace detail {

constexpr std::array<std::uint32_t, 256> make_crc32_table() {
  std::array<std::uint32_t, 256> table{};
  for (std::uint32_t n = 0; n < 256; ++n) {
    std::uint32_t c = n;
    for (int k = 0; k < 8; ++k) c = (c & 1u) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    table[n] = c;
  }
  return table;
}

inline constexpr std::array<std::uint32_t, 256> crc32_table = make_crc32_table();

}  // namespace detail

/// Incremental CRC-32 (IEEE 802.3, zlib's): feed bytes with update(), read value() at any time.
class Crc32 {
 public:
  /// Adds `size` bytes at `data` to the checksum.
  void update(const void* data, std::size_t size) {
    const auto* bytes = static_cast<const unsigned char*>(data);
    for (std::size_t i = 0; i < size; ++i)
      state_ = detail::crc32_table[(state_ ^ bytes[i]) & 0xFFu] ^ (state_ >> 8);
  }
  /// The CRC-32 of every byte fed so far (0 for none).
  std::uint32_t value() const { return state_ ^ 0xFFFFFFFFu; }

 private:
  std::uint32_t state_ = 0xFFFFFFFFu;
};

/// The CRC-32 of `size` bytes at `data`, e.g. crc32("123456789", 9) == 0xCBF43926.
inline std::uint32_t crc32(const void* data, std::size_t size) {
  Crc32 crc;
  crc.update(data, size);
  return crc.value();
}

}  // namespace dropnet
