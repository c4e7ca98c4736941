// safetensors files (io/safetensors.hpp): the byte layout against the format's definition,
// round trips, F16/BF16 conversion against hand-computed values, and every kind of bad file
// (each must throw FormatError naming the file and the tensor).

#include <doctest/doctest.h>

#include <unistd.h>

#include <cstdint>
#include <dropnet/io/safetensors.hpp>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

using namespace dropnet;

namespace {

/// A file made of the header `json` (length-prefixed as the format says) and the data `data`.
std::string file_of(const std::string& json, const std::string& data = "") {
  std::string bytes;
  detail::BinaryWriter(bytes).u64(json.size());
  return bytes + json + data;
}

/// The FormatError message parsing `bytes` gives ("" when it parses).
std::string error_of(const std::string& bytes) {
  try {
    SafetensorsFile f(bytes, "bad.safetensors");
  } catch (const FormatError& e) {
    return e.what();
  }
  return "";
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("the byte layout is the format's: u64 header length, JSON, row-major data") {
  const float values[6] = {1, 2, 3, 4, 5, 6};
  const std::string bytes = encode_safetensors({SafeTensor::of<float>("w", {2, 3}, values)});
  const std::uint64_t n = detail::load_le(bytes.data(), 8);
  CHECK(n % 8 == 0);  // padded so that the data is aligned
  CHECK(bytes.size() == 8 + n + 24);
  const std::string json = bytes.substr(8, static_cast<std::size_t>(n));
  CHECK(contains(json, R"("w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]})"));
  for (int i = 0; i < 6; ++i)
    CHECK(detail::load_le_scalar<float>(bytes.data() + 8 + n + 4 * i) == values[i]);
}

TEST_CASE("write then read: names in order, shapes, dtypes, metadata and values") {
  const std::filesystem::path path =
      std::filesystem::temp_directory_path() / ("dropnet_st_" + std::to_string(::getpid()));
  const double d[3] = {0.1, -2.5, 1e300};
  const float f[4] = {1.5f, -0.0f, std::numeric_limits<float>::infinity(), 3.25f};
  write_safetensors(path.string(),
                    {SafeTensor::of<double>("z.first", {3}, d), SafeTensor::of<float>("a", {2, 2}, f),
                     SafeTensor::int64_scalar("count", -7), SafeTensor::of<float>("empty", {0, 5}, f)},
                    {{"format", "pt"}});
  const SafetensorsFile file = read_safetensors(path.string());
  std::filesystem::remove(path);
  REQUIRE(file.tensors().size() == 4);
  CHECK(file.tensors()[0].name == "z.first");  // the writer's order, not sorted
  CHECK(file.tensors()[1].shape == std::vector<std::int64_t>{2, 2});
  CHECK(file.tensors()[2].dtype == "I64");
  CHECK(file.tensors()[2].shape.empty());
  CHECK(file.metadata().at("format") == "pt");
  CHECK(file.values<double>("z.first") == std::vector<double>{0.1, -2.5, 1e300});
  const std::vector<float> back = file.values<float>("a");
  CHECK(back[0] == 1.5f);
  CHECK(std::signbit(back[1]));
  CHECK(std::isinf(back[2]));
  CHECK(file.values<double>("a")[3] == 3.25);
  CHECK(file.values<float>("empty").empty());
  CHECK_THROWS_WITH_AS(file.values<float>("count"), doctest::Contains("count: dtype I64"),
                       FormatError);
  CHECK_THROWS_WITH_AS(file.values<float>("nope"), doctest::Contains("no tensor named 'nope'"),
                       FormatError);
}

TEST_CASE("F16 and BF16 are read exactly") {
  // binary16: 0x3C00 = 1, 0xC000 = -2, 0x7BFF = 65504 (max), 0x0001 = 2^-24 (min subnormal),
  // 0x7C00 = inf. bfloat16: 0x3F80 = 1, 0xC0A0 = -5, 0x0001 = 2^-133.
  std::string half, bf;
  for (const unsigned h : {0x3C00u, 0xC000u, 0x7BFFu, 0x0001u, 0x7C00u})
    half += std::string{static_cast<char>(h & 0xFFu), static_cast<char>(h >> 8)};
  for (const unsigned b : {0x3F80u, 0xC0A0u, 0x0001u})
    bf += std::string{static_cast<char>(b & 0xFFu), static_cast<char>(b >> 8)};
  const SafetensorsFile file(
      file_of(R"({"h":{"dtype":"F16","shape":[5],"data_offsets":[0,10]},)"
              R"("b":{"dtype":"BF16","shape":[3],"data_offsets":[10,16]}})",
              half + bf),
      "mem");
  const std::vector<double> h = file.values<double>("h");
  CHECK(h[0] == 1.0);
  CHECK(h[1] == -2.0);
  CHECK(h[2] == 65504.0);
  CHECK(h[3] == std::ldexp(1.0, -24));
  CHECK(std::isinf(h[4]));
  const std::vector<double> b = file.values<double>("b");
  CHECK(b == std::vector<double>{1.0, -5.0, std::ldexp(1.0, -133)});
}

TEST_CASE("bad files: each throws FormatError naming the file and the problem") {
  const std::string ok_entry = R"("w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})";
  const std::string eight(8, '\0');
  CHECK(error_of(file_of("{" + ok_entry + "}", eight)).empty());

  struct Case {
    const char* what;
    std::string bytes;
    const char* message;
  };
  std::string huge_length;
  detail::BinaryWriter(huge_length).u64(safetensors_max_header + 8);
  std::string past_end;
  detail::BinaryWriter(past_end).u64(100);
  const std::vector<Case> cases = {
      {"truncated header length", std::string(5, '\0'), "truncated: 5 bytes"},
      {"header length past the end", past_end + "{}", "truncated: header length 100"},
      {"header length over 100 MB", huge_length, "exceeds the format's limit"},
      {"not JSON", file_of("{\"w\":"), "not valid JSON"},
      {"not an object", file_of("[1, 2]"), "not a JSON object"},
      {"nested too deep", file_of(R"({"w":{"shape":[[[1]]]}})"), "deeper than"},
      {"duplicate keys", file_of("{" + ok_entry + "," + ok_entry + "}", eight), "w: duplicate name"},
      {"unknown dtype", file_of(R"({"w":{"dtype":"F33","shape":[2],"data_offsets":[0,8]}})", eight),
       "w: unknown dtype 'F33'"},
      {"missing field", file_of(R"({"w":{"dtype":"F32","shape":[2]}})", eight), "w: entry must"},
      {"extra field",
       file_of(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"x":1}})", eight),
       "w: entry must"},
      {"negative shape", file_of(R"({"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", eight),
       "w: shape entry must be a non-negative integer"},
      {"fractional offset",
       file_of(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8.5]}})", eight),
       "w: data_offsets must be a non-negative integer"},
      {"shape/byte-count mismatch",
       file_of(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", eight),
       "w: shape [3] of F32 needs 12 bytes, data_offsets give 8"},
      {"huge shape",
       file_of(R"({"w":{"dtype":"F64","shape":[4294967296,4294967296],"data_offsets":[0,8]}})", eight),
       "w: shape entry 4294967296 exceeds"},
      {"offsets out of range",
       file_of(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", eight),
       "w: data_offsets [4, 12] run past the data's 8 bytes"},
      {"offsets reversed", file_of(R"({"w":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}})", eight),
       "end before they begin"},
      {"overlapping offsets",
       file_of(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
               R"("b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
               eight),
       "b: data_offsets [4, 8] overlap"},
      {"gap before a tensor",
       file_of(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", eight),
       "leaving bytes [0, 4) unused"},
      {"bytes after the last tensor", file_of("{" + ok_entry + "}", eight + "xx"),
       "cover 8 bytes of data, the file has 10"},
      {"metadata not strings", file_of(R"({"__metadata__":{"k":1}})"), "__metadata__: 'k'"},
      {"empty name", file_of(R"({"":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}})"),
       "empty tensor name"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.what);
    const std::string message = error_of(c.bytes);
    CHECK(contains(message, "bad.safetensors: "));
    CHECK_MESSAGE(contains(message, c.message), message);
  }
}

TEST_CASE("a missing file and a failed write are FormatErrors naming the path") {
  CHECK_THROWS_WITH_AS(read_safetensors("/nonexistent/x.safetensors"),
                       doctest::Contains("cannot open '/nonexistent/x.safetensors'"), FormatError);
  const float v[1] = {1};
  CHECK_THROWS_AS(write_safetensors("/nonexistent/dir/x.safetensors",
                                    {SafeTensor::of<float>("w", {1}, v)}),
                  FormatError);
}

TEST_CASE("the writer refuses what the reader would refuse") {
  const float v[2] = {1, 2};
  CHECK_THROWS_AS(encode_safetensors({SafeTensor::of<float>("w", {1}, v),
                                      SafeTensor::of<float>("w", {1}, v)}),
                  InvalidArgument);
  CHECK_THROWS_AS(encode_safetensors({SafeTensor::of<float>("__metadata__", {1}, v)}),
                  InvalidArgument);
  CHECK_THROWS_AS(encode_safetensors({SafeTensor::of<float>("", {1}, v)}), InvalidArgument);
  SafeTensor short_data = SafeTensor::of<float>("w", {2}, v);
  short_data.data.pop_back();
  CHECK_THROWS_AS(encode_safetensors({short_data}), InvalidArgument);
}
