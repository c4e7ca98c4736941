// simd/: the vectorized kernels give exactly what their scalar references give.

#include <doctest/doctest.h>

#include <dropnet/simd/philox.hpp>
#include <vector>

using namespace dropnet::simd;

TEST_CASE("philox_blocks equals philox_block, for every count and across a 2^32 counter carry") {
  const PhiloxKey key = {0x12345678u, 0x9abcdef0u};
  for (std::uint64_t first : {std::uint64_t{0}, std::uint64_t{5}, (std::uint64_t{1} << 32) - 7}) {
    for (std::size_t count : {std::size_t{0}, std::size_t{1}, std::size_t{7}, std::size_t{8},
                              std::size_t{15}, std::size_t{16}, std::size_t{17}, std::size_t{64},
                              std::size_t{101}}) {
      std::vector<std::uint32_t> out(4 * count + 4, 0xdeadbeefu);
      philox_blocks(key, first, count, out.data());
      for (std::size_t b = 0; b < count; ++b) {
        const auto words = philox_block(key, first + b);
        for (std::size_t k = 0; k < 4; ++k) REQUIRE(out[4 * b + k] == words[k]);
      }
      CHECK(out[4 * count] == 0xdeadbeefu);  // nothing written past the end
    }
  }
}

TEST_CASE("philox_block matches the Random123 known-answer vectors") {
  // Philox4x32-10 known-answer test from Random123 (kat_vectors): counter 0, key 0.
  // Our counter uses lanes 0-1 for the index and 2-3 = 0, so index 0 is counter (0,0,0,0).
  const auto words = philox_block({0u, 0u}, 0);
  CHECK(words[0] == 0x6627e8d5u);
  CHECK(words[1] == 0xe169c58du);
  CHECK(words[2] == 0xbc57ac4cu);
  CHECK(words[3] == 0x9b00dbd8u);
}
