#pragma once
// save_weights / load_weights: a model's tensors (parameters() then buffers()) in a small
// binary file. A stopgap until the full model file (architecture + weights) exists.
//
// Format, every integer and scalar little-endian, scalars IEEE-754:
//   "DNWT"                      4-byte magic
//   u32 version                 1
//   u32 scalar_bytes            4 (float) or 8 (double): the T the file was written with
//   u64 count                   number of tensors
//   count times:
//     u32 name_length, name     UTF-8, no terminator, e.g. "0.Dense.weight"
//     u64 rows, u64 cols
//     rows*cols scalars         column-major
//
// save_weights writes atomically: a temporary file in the target's directory, flushed (and
// fsync'ed on POSIX), then renamed over the target. If anything fails the temporary is removed,
// a previous file at `path` is left intact, and FormatError is thrown.
// load_weights reads and validates the whole file (magic, version, scalar type, count, every
// name and shape against the model, no truncation or trailing bytes) before writing anything:
// on FormatError the model is unchanged.

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#if defined(__unix__) || defined(__APPLE__)
#include <unistd.h>
#define DROPNET_HAVE_FSYNC 1
#endif

#include "../model/model_state.hpp"

namespace dropnet {

namespace detail {

inline constexpr char weights_magic[4] = {'D', 'N', 'W', 'T'};
inline constexpr std::uint32_t weights_version = 1;

/// Appends `bytes` bytes of `value` least significant first.
inline void put_le(std::string& out, std::uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((value >> (8 * i)) & 0xFFu));
}

template <class T>
void put_scalar(std::string& out, T value) {
  static_assert(sizeof(T) == 4 || sizeof(T) == 8, "weights files hold float or double");
  using Bits = std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>;
  Bits bits;
  std::memcpy(&bits, &value, sizeof(T));
  put_le(out, bits, sizeof(T));
}

/// A bounds-checked little-endian cursor over a file's bytes.
class ByteReader {
 public:
  ByteReader(const std::string& bytes, std::string where)
      : bytes_(bytes), where_(std::move(where)) {}

  std::uint64_t le(int count) {
    need(static_cast<std::uint64_t>(count), "a number");
    std::uint64_t value = 0;
    for (int i = 0; i < count; ++i)
      value |= std::uint64_t{static_cast<unsigned char>(bytes_[pos_++])} << (8 * i);
    return value;
  }
  std::string text(std::uint64_t count) {
    need(count, "a name");
    std::string s = bytes_.substr(pos_, static_cast<std::size_t>(count));
    pos_ += static_cast<std::size_t>(count);
    return s;
  }
  template <class T>
  T scalar() {
    using Bits = std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>;
    const auto bits = static_cast<Bits>(le(sizeof(T)));
    T value;
    std::memcpy(&value, &bits, sizeof(T));
    return value;
  }
  /// Throws unless `count` more bytes are there: checked before any allocation, so a corrupt
  /// size cannot ask for gigabytes.
  void need(std::uint64_t count, const char* what) const {
    if (count > bytes_.size() - pos_)
      throw FormatError(concat(where_, ": truncated: ", what, " at byte ", pos_, " needs ", count,
                               " bytes, ", bytes_.size() - pos_, " left"));
  }
  std::size_t remaining() const { return bytes_.size() - pos_; }

 private:
  const std::string& bytes_;
  std::string where_;
  std::size_t pos_ = 0;
};

template <class T>
std::string encode_weights(const WeightsSnapshot<T>& weights) {
  std::string out(weights_magic, 4);
  put_le(out, weights_version, 4);
  put_le(out, sizeof(T), 4);
  put_le(out, weights.tensors().size(), 8);
  for (const auto& t : weights.tensors()) {
    put_le(out, t.name.size(), 4);
    out += t.name;
    put_le(out, static_cast<std::uint64_t>(t.rows), 8);
    put_le(out, static_cast<std::uint64_t>(t.cols), 8);
    for (Index i = 0; i < t.values.size(); ++i) put_scalar(out, t.values(i));
  }
  return out;
}

template <class T>
WeightsSnapshot<T> decode_weights(const std::string& bytes, const std::string& where) {
  ByteReader in(bytes, where);
  in.need(4, "the magic");
  if (in.text(4) != std::string(weights_magic, 4))
    throw FormatError(where + ": not a dropnet weights file (magic is not DNWT)");
  const std::uint64_t version = in.le(4);
  if (version != weights_version)
    throw FormatError(
        concat(where, ": unsupported version ", version, " (expected ", weights_version, ")"));
  const std::uint64_t scalar_bytes = in.le(4);
  if (scalar_bytes != sizeof(T))
    throw FormatError(concat(where, ": the file holds ", scalar_bytes, "-byte scalars, the model ",
                             sizeof(T), "-byte ones"));
  const std::uint64_t count = in.le(8);
  constexpr std::uint64_t smallest_tensor = 4 + 8 + 8;  // empty name, 0x0
  if (count > in.remaining() / smallest_tensor)
    throw FormatError(concat(where, ": truncated: ", count, " tensors announced, ", in.remaining(),
                             " bytes left"));
  std::vector<typename WeightsSnapshot<T>::Tensor> tensors(static_cast<std::size_t>(count));
  for (auto& t : tensors) {
    t.name = in.text(in.le(4));
    const std::uint64_t rows = in.le(8), cols = in.le(8);
    if (rows != 0 && cols > in.remaining() / rows / sizeof(T))
      throw FormatError(concat(where, ": truncated: tensor '", t.name, "' of ", rows, "x", cols));
    t.rows = static_cast<Index>(rows);
    t.cols = static_cast<Index>(cols);
    t.values.resize(t.rows * t.cols);
    for (Index i = 0; i < t.values.size(); ++i) t.values(i) = in.scalar<T>();
  }
  if (in.remaining() != 0)
    throw FormatError(
        concat(where, ": ", in.remaining(), " unexpected bytes after the last tensor"));
  return WeightsSnapshot<T>(std::move(tensors));
}

/// A name no other writer (thread or process) picks at the same moment.
inline std::filesystem::path temporary_sibling(const std::filesystem::path& target) {
  static std::atomic<unsigned long> counter{0};
  const auto ticks = std::chrono::steady_clock::now().time_since_epoch().count();
  std::filesystem::path temp = target;
  temp += concat(".tmp-", ticks, "-", counter++);
  return temp;
}

/// Writes `bytes` to `path` through a temporary sibling and a rename (see the header comment).
inline void write_file_atomically(const std::string& path, const std::string& bytes,
                                  const char* who) {
  const std::filesystem::path target(path);
  const std::filesystem::path temp = temporary_sibling(target);
  std::FILE* file = std::fopen(temp.string().c_str(), "wbx");  // x: never clobber a file
  if (!file)
    throw FormatError(concat(who, ": cannot create '", temp.string(), "' next to '", path,
                             "': ", std::strerror(errno)));
  bool ok = std::fwrite(bytes.data(), 1, bytes.size(), file) == bytes.size();
  ok = std::fflush(file) == 0 && ok;
#ifdef DROPNET_HAVE_FSYNC
  ok = ok && ::fsync(::fileno(file)) == 0;  // the bytes reach the disk before the name does
#endif
  int error = ok ? 0 : errno;
  if (std::fclose(file) != 0 && ok) {
    ok = false;
    error = errno;
  }
  std::error_code renamed;
  if (ok) std::filesystem::rename(temp, target, renamed);
  if (!ok || renamed) {
    std::error_code ignored;
    std::filesystem::remove(temp, ignored);
    const std::string reason = ok ? renamed.message() : std::strerror(error);
    throw FormatError(
        concat(who, ": cannot write '", path, "': ", reason, " (any previous file is unchanged)"));
  }
}

inline std::string read_file_bytes(const std::string& path, const char* who) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw FormatError(concat(who, ": cannot open '", path, "'"));
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw FormatError(concat(who, ": error reading '", path, "'"));
  return bytes;
}

}  // namespace detail

template <class T>
void save_weights(const WeightsSnapshot<T>& weights, const std::string& path) {
  detail::require(!weights.empty(), "save_weights", "the snapshot is empty");
  detail::write_file_atomically(path, detail::encode_weights(weights), "save_weights");
}

template <class T>
void save_weights(Sequential<T>& model, const std::string& path) {
  WeightsSnapshot<T> weights;
  weights.capture(model);
  save_weights(weights, path);
}

template <class T>
void load_weights(Sequential<T>& model, const std::string& path) {
  const std::string where = "load_weights('" + path + "')";
  const WeightsSnapshot<T> weights =
      detail::decode_weights<T>(detail::read_file_bytes(path, "load_weights"), where);
  const std::string problem = weights.mismatch(model);
  if (!problem.empty()) throw FormatError(where + ": the file does not fit the model: " + problem);
  weights.restore(model);
}

}  // namespace dropnet
