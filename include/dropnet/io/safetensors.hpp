#pragma once
// safetensors files (the format of Hugging Face's `safetensors`), read and written strictly.
//
//   SafetensorsFile f = read_safetensors("model.safetensors");
//   for (const SafeTensor& t : f.tensors()) ...            header order: name, dtype, shape
//   std::vector<double> v = f.values<double>("fc1.weight");  row-major, converted from the dtype
//   write_safetensors("out.safetensors", {SafeTensor::of<float>("w", {2, 3}, data)}, metadata);
//
// ---------------------------------------------------------------------------------------------
// Format:
//   u64 N (little-endian)  the length of the JSON header in bytes, N <= 100,000,000
//   N bytes                a JSON object (UTF-8; the writer pads it with spaces to a multiple of 8)
//                          {"<name>": {"dtype": "F32", "shape": [2, 3], "data_offsets": [b, e]},
//                           ..., "__metadata__": {"<key>": "<string value>", ...}}
//   the data               each tensor's elements, row-major (C order), little-endian, in bytes
//                          [b, e) relative to the end of the header
// ---------------------------------------------------------------------------------------------
//
// The reader checks everything before it hands out a value, so a corrupt or hostile file cannot
// make it read out of range or allocate more than the file's size: the header length against
// the bound and the file; JSON syntax and nesting (at most the format's 3 levels); no duplicate
// names; each entry has exactly dtype, shape and data_offsets; a known dtype (F64, F32, F16,
// BF16, I64, I32, I16, I8, U64, U32, U16, U8, BOOL); shape entries non-negative integers whose
// byte count equals e - b without overflow; the offsets, sorted, tile the data exactly (from 0,
// no gap, no overlap, nothing after the last); `__metadata__` an object of strings. Every
// failure throws FormatError("<file>: <tensor name>: <problem>"). values<T>() converts F64, F32,
// F16 and BF16 (exact widening; F64 to float rounds) and throws FormatError naming the tensor for
// any other dtype.
//
// The writer refuses (InvalidArgument) an empty or duplicate name, "__metadata__" as a name, a
// byte count that does not match the shape; it writes through io/atomic_file.hpp, so a failed
// write leaves any previous file unchanged.
//
// This header parses JSON with nlohmann-json (Debian nlohmann-json3-dev, header-only), which is
// why the umbrella header <dropnet/dropnet.hpp> does not include it.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "../core/error.hpp"
#include "atomic_file.hpp"
#include "byte_codec.hpp"

namespace dropnet {

/// The largest JSON header read_safetensors accepts (the format's own limit), in bytes.
inline constexpr std::uint64_t safetensors_max_header = 100'000'000;

/// One tensor of a safetensors file: its name, dtype, shape, and its bytes (row-major,
/// little-endian). In a file read by read_safetensors, `data` is empty and [begin, end) locates
/// the bytes inside the file (SafetensorsFile::bytes); for writing, `data` holds them.
struct SafeTensor {
  std::string name;                 ///< e.g. "fc1.weight"
  std::string dtype;                ///< "F32", "F64", "I64", ... (see the file comment)
  std::vector<std::int64_t> shape;  ///< e.g. {120, 784}; {} for a scalar
  std::uint64_t begin = 0;          ///< first byte, relative to the start of the data
  std::uint64_t end = 0;            ///< one past the last byte
  std::string data;                 ///< the bytes, for writing

  /// Elements: the product of the shape (1 for a scalar).
  std::uint64_t elements() const {
    std::uint64_t n = 1;
    for (const std::int64_t d : shape) n *= static_cast<std::uint64_t>(d);
    return n;
  }

  /// A tensor to write: `values` (row-major, the product of `shape` of them) as F32 or F64.
  template <class T>
  static SafeTensor of(std::string name, std::vector<std::int64_t> shape, const T* values) {
    detail::require_ieee_scalar<T>();
    SafeTensor t{std::move(name), sizeof(T) == 4 ? "F32" : "F64", std::move(shape), 0, 0, {}};
    detail::BinaryWriter w(t.data);
    const std::uint64_t n = t.elements();
    for (std::uint64_t i = 0; i < n; ++i) w.scalar(values[i]);
    return t;
  }
  /// A tensor to write: one I64 scalar (shape {}), as PyTorch's BatchNorm num_batches_tracked.
  static SafeTensor int64_scalar(std::string name, std::int64_t value) {
    SafeTensor t{std::move(name), "I64", {}, 0, 0, {}};
    detail::BinaryWriter(t.data).i64(value);
    return t;
  }
};

namespace detail {

/// Bytes per element of a safetensors dtype, or 0 for an unknown one.
inline std::size_t safetensors_dtype_size(const std::string& dtype) {
  static const std::pair<const char*, std::size_t> table[] = {
      {"F64", 8}, {"F32", 4}, {"F16", 2}, {"BF16", 2}, {"I64", 8}, {"I32", 4}, {"I16", 2},
      {"I8", 1},  {"U64", 8}, {"U32", 4}, {"U16", 2},  {"U8", 1},  {"BOOL", 1}};
  for (const auto& [name, size] : table)
    if (dtype == name) return size;
  return 0;
}

/// IEEE-754 binary16 bits as a float (exact).
inline float half_to_float(std::uint16_t h) {
  const std::uint32_t sign = (h & 0x8000u) << 16, exponent = (h >> 10) & 0x1Fu, mantissa = h & 0x3FFu;
  float magnitude;
  if (exponent == 0) {
    magnitude = std::ldexp(static_cast<float>(mantissa), -24);  // zero or subnormal
  } else if (exponent == 31) {
    magnitude = mantissa ? std::numeric_limits<float>::quiet_NaN()
                         : std::numeric_limits<float>::infinity();
  } else {
    magnitude = std::ldexp(static_cast<float>(mantissa | 0x400u), static_cast<int>(exponent) - 25);
  }
  return sign ? -magnitude : magnitude;
}

/// bfloat16 bits as a float (exact: the high half of a binary32).
inline float bfloat16_to_float(std::uint16_t b) {
  const std::uint32_t bits = std::uint32_t{b} << 16;
  float value;
  std::memcpy(&value, &bits, sizeof value);
  return value;
}

/// Rejects JSON nested deeper than a safetensors header can be (object, entry, shape array),
/// before the parser builds it.
inline bool safetensors_json_depth(int depth, nlohmann::ordered_json::parse_event_t event,
                                   const std::string& where) {
  using Event = nlohmann::ordered_json::parse_event_t;
  if ((event == Event::object_start || event == Event::array_start) && depth >= 3)
    throw FormatError(where + ": header nests JSON deeper than a safetensors header");
  return true;
}

/// A non-negative JSON integer, or a FormatError naming `what`.
inline std::uint64_t safetensors_unsigned(const nlohmann::json& v, const std::string& what) {
  if (!v.is_number_unsigned())
    throw FormatError(what + " must be a non-negative integer, got " + v.dump());
  return v.get<std::uint64_t>();
}

}  // namespace detail

/// A checked safetensors file held in memory; see the file comment.
class SafetensorsFile {
 public:
  /// Parses and checks `bytes` (a whole file); `where` (the path) prefixes every error.
  SafetensorsFile(std::string bytes, std::string where)
      : bytes_(std::move(bytes)), where_(std::move(where)) {
    parse();
  }

  /// The tensors in header order (the order their writer listed them).
  const std::vector<SafeTensor>& tensors() const { return tensors_; }
  /// The `__metadata__` strings (empty when absent).
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  /// The file name (or what was passed as `where`).
  const std::string& where() const { return where_; }

  /// The tensor named `name`, or null.
  const SafeTensor* find(const std::string& name) const {
    for (const SafeTensor& t : tensors_)
      if (t.name == name) return &t;
    return nullptr;
  }
  /// The tensor named `name`; throws FormatError when absent.
  const SafeTensor& at(const std::string& name) const {
    if (const SafeTensor* t = find(name)) return *t;
    throw FormatError(detail::concat(where_, ": no tensor named '", name, "'"));
  }

  /// The elements of `t` (a tensor of this file), row-major, converted to T; throws FormatError
  /// naming the tensor unless its dtype is F64, F32, F16 or BF16.
  template <class T>
  void read_values(const SafeTensor& t, T* out) const {
    const char* p = bytes_.data() + data_start_ + t.begin;
    const std::uint64_t n = t.elements();
    const auto each = [&](auto convert, std::size_t size) {
      for (std::uint64_t i = 0; i < n; ++i) out[i] = static_cast<T>(convert(p + i * size));
    };
    if (t.dtype == "F64") return each(detail::load_le_scalar<double>, 8);
    if (t.dtype == "F32") return each(detail::load_le_scalar<float>, 4);
    const auto bits16 = [](const char* q) { return static_cast<std::uint16_t>(detail::load_le(q, 2)); };
    if (t.dtype == "F16")
      return each([&](const char* q) { return detail::half_to_float(bits16(q)); }, 2);
    if (t.dtype == "BF16")
      return each([&](const char* q) { return detail::bfloat16_to_float(bits16(q)); }, 2);
    throw FormatError(detail::concat(where_, ": ", t.name, ": dtype ", t.dtype,
                                     " is not a floating-point type (F64, F32, F16, BF16)"));
  }
  /// The elements of the tensor `name`, row-major, converted to T (see read_values).
  template <class T>
  std::vector<T> values(const std::string& name) const {
    const SafeTensor& t = at(name);
    std::vector<T> out(static_cast<std::size_t>(t.elements()));
    read_values(t, out.data());
    return out;
  }

 private:
  void fail(const std::string& tensor, const std::string& problem) const {
    throw FormatError(detail::concat(where_, ": ", tensor.empty() ? "" : tensor + ": ", problem));
  }

  void parse() {
    if (bytes_.size() < 8)
      fail("", detail::concat("truncated: ", bytes_.size(), " bytes, the header length alone is 8"));
    const std::uint64_t header = detail::load_le(bytes_.data(), 8);
    if (header > safetensors_max_header)
      fail("", detail::concat("header length ", header, " exceeds the format's limit of ",
                              safetensors_max_header, " bytes"));
    if (header > bytes_.size() - 8)
      fail("", detail::concat("truncated: header length ", header, " but only ",
                              bytes_.size() - 8, " bytes follow"));
    data_start_ = 8 + static_cast<std::size_t>(header);
    parse_header(bytes_.substr(8, static_cast<std::size_t>(header)));
    check_tiling();
  }

  void parse_header(const std::string& text) {
    std::vector<std::string> seen;
    const auto callback = [&](int depth, nlohmann::ordered_json::parse_event_t event,
                              nlohmann::ordered_json& v) {
      if (depth == 1 && event == nlohmann::ordered_json::parse_event_t::key) {
        const std::string key = v.get<std::string>();
        if (std::find(seen.begin(), seen.end(), key) != seen.end()) fail(key, "duplicate name");
        seen.push_back(key);
      }
      return detail::safetensors_json_depth(depth, event, where_);
    };
    nlohmann::ordered_json header;
    try {
      header = nlohmann::ordered_json::parse(text, callback);
    } catch (const nlohmann::json::exception& e) {
      fail("", std::string("header is not valid JSON: ") + e.what());
    }
    if (!header.is_object()) fail("", "header is not a JSON object");
    for (const auto& [name, entry] : header.items()) {
      if (name == "__metadata__") {
        read_metadata(entry);
      } else {
        tensors_.push_back(read_entry(name, entry));
      }
    }
  }

  void read_metadata(const nlohmann::ordered_json& entry) {
    if (!entry.is_object()) fail("__metadata__", "must be an object of strings");
    for (const auto& [key, value] : entry.items()) {
      if (!value.is_string()) fail("__metadata__", "'" + key + "' is not a string");
      metadata_[key] = value.get<std::string>();
    }
  }

  SafeTensor read_entry(const std::string& name, const nlohmann::ordered_json& entry) const {
    if (name.empty()) fail("\"\"", "empty tensor name");
    if (!entry.is_object() || entry.size() != 3 || !entry.contains("dtype") ||
        !entry.contains("shape") || !entry.contains("data_offsets"))
      fail(name, "entry must hold exactly dtype, shape and data_offsets, got " + entry.dump());
    SafeTensor t;
    t.name = name;
    if (!entry["dtype"].is_string()) fail(name, "dtype is not a string");
    t.dtype = entry["dtype"].get<std::string>();
    const std::size_t element = detail::safetensors_dtype_size(t.dtype);
    if (element == 0) fail(name, "unknown dtype '" + t.dtype + "'");
    const auto& shape = entry["shape"];
    const auto& offsets = entry["data_offsets"];
    if (!shape.is_array()) fail(name, "shape is not an array");
    if (!offsets.is_array() || offsets.size() != 2) fail(name, "data_offsets is not [begin, end]");
    const std::uint64_t limit = bytes_.size();  // no extent can exceed the file
    std::uint64_t bytes = element;
    for (const auto& d : shape) {
      const std::uint64_t extent = detail::safetensors_unsigned(d, where_ + ": " + name + ": shape entry");
      if (extent > limit) fail(name, detail::concat("shape entry ", extent, " exceeds the file's size"));
      t.shape.push_back(static_cast<std::int64_t>(extent));
      bytes = extent == 0 ? 0 : (bytes > limit / extent ? limit + 1 : bytes * extent);
    }
    t.begin = detail::safetensors_unsigned(offsets[0], where_ + ": " + name + ": data_offsets");
    t.end = detail::safetensors_unsigned(offsets[1], where_ + ": " + name + ": data_offsets");
    if (t.end < t.begin) fail(name, detail::concat("data_offsets [", t.begin, ", ", t.end, "] end before they begin"));
    if (t.end > bytes_.size() - data_start_)
      fail(name, detail::concat("data_offsets [", t.begin, ", ", t.end, "] run past the data's ",
                                bytes_.size() - data_start_, " bytes"));
    if (t.end - t.begin != bytes)
      fail(name, detail::concat("shape ", shape.dump(), " of ", t.dtype, " needs ",
                                bytes > limit ? std::string("more bytes than the file has")
                                              : detail::concat(bytes, " bytes"),
                                ", data_offsets give ", t.end - t.begin));
    return t;
  }

  /// The byte ranges, sorted, must cover the data exactly: no gap, no overlap, no tail.
  void check_tiling() const {
    std::vector<const SafeTensor*> order;
    for (const SafeTensor& t : tensors_) order.push_back(&t);
    std::sort(order.begin(), order.end(), [](const SafeTensor* a, const SafeTensor* b) {
      return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
    });
    std::uint64_t next = 0;
    for (const SafeTensor* t : order) {
      if (t->begin < next)
        fail(t->name, detail::concat("data_offsets [", t->begin, ", ", t->end,
                                     "] overlap another tensor's (which ends at ", next, ")"));
      if (t->begin > next)
        fail(t->name, detail::concat("data_offsets begin at ", t->begin, ", leaving bytes [", next,
                                     ", ", t->begin, ") unused"));
      next = t->end;
    }
    const std::uint64_t data = bytes_.size() - data_start_;
    if (next != data)
      fail("", detail::concat("the tensors cover ", next, " bytes of data, the file has ", data));
  }

  std::string bytes_;
  std::string where_;
  std::size_t data_start_ = 0;
  std::vector<SafeTensor> tensors_;
  std::map<std::string, std::string> metadata_;
};

/// The whole file at `path`, checked; throws FormatError naming it when it cannot be opened or
/// fails a check (see the file comment).
inline SafetensorsFile read_safetensors(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw FormatError("read_safetensors: cannot open '" + path + "'");
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw FormatError("read_safetensors: cannot read '" + path + "'");
  return SafetensorsFile(std::move(bytes), path);
}

/// The bytes of a safetensors file holding `tensors` (each with its `data`), in this order, and
/// `metadata`; throws InvalidArgument for an empty, duplicate or reserved name or a byte count
/// that does not match the shape and dtype.
inline std::string encode_safetensors(const std::vector<SafeTensor>& tensors,
                                      const std::map<std::string, std::string>& metadata = {}) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::uint64_t offset = 0;
  for (const SafeTensor& t : tensors) {
    detail::require(!t.name.empty() && t.name != "__metadata__" && !header.contains(t.name),
                    "write_safetensors", "tensor name '", t.name, "' is empty, reserved or repeated");
    const std::size_t element = detail::safetensors_dtype_size(t.dtype);
    detail::require(element != 0 && t.data.size() == t.elements() * element, "write_safetensors",
                    t.name, ": ", t.data.size(), " bytes do not hold ", t.elements(), " ", t.dtype);
    header[t.name] = {{"dtype", t.dtype},
                      {"shape", t.shape},
                      {"data_offsets", {offset, offset + t.data.size()}}};
    offset += t.data.size();
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // aligns the data, as safetensors' writer does
  std::string bytes;
  bytes.reserve(8 + text.size() + static_cast<std::size_t>(offset));
  detail::BinaryWriter w(bytes);
  w.u64(text.size());
  w.bytes(text.data(), text.size());
  for (const SafeTensor& t : tensors) w.bytes(t.data.data(), t.data.size());
  return bytes;
}

/// Writes encode_safetensors(tensors, metadata) to `path` atomically (io/atomic_file.hpp):
/// throws InvalidArgument as encode_safetensors, FormatError when the file cannot be written
/// (any previous file at `path` is then unchanged).
inline void write_safetensors(const std::string& path, const std::vector<SafeTensor>& tensors,
                              const std::map<std::string, std::string>& metadata = {}) {
  detail::replace_file_atomically(path, encode_safetensors(tensors, metadata), "write_safetensors");
}

}  // namespace dropnet
