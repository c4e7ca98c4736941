#pragma once
// Model files: the whole model (architecture, parameters, BatchNorm statistics) and optionally
// the optimizer's state, in one checksummed binary file.
//
//   save(model, "net.dnm");                        save(model, "ckpt.dnm", &optimizer);
//   load_into(model, "ckpt.dnm", &optimizer);      into an existing model of the same
//                                                  architecture (and its optimizer), e.g. resume
//   save(model, std::ostream&) / load_into(model, std::istream&)
//                                                  a stream load reads one model and leaves
//                                                  the stream just after its checksum
//   read_model_info("net.dnm")                     scalar type and layers, without a model
//   load<T>("net.dnm")                             rebuilds the layers from the file: in
//                                                  io/model_load.hpp, the only part of the
//                                                  format that needs the layer registry (and so
//                                                  instantiates every layer kind); this header
//                                                  compiles only the layers a program uses
//
// ---------------------------------------------------------------------------------------------
// Format, version 1. Integers are unsigned little-endian unless marked i64 (two's complement);
// f64 and scalars are IEEE-754 (binary64; binary32 for float models), stored as the
// little-endian bytes of their bit pattern. str = u32 byte length (<= 256), then the UTF-8
// bytes, no terminator.
//
//   offset  size  field
//   0       8     magic 89 44 4E 4D 0D 0A 1A 0A  ("\x89DNM\r\n\x1a\n", PNG-style: the high bit
//                 and the CR/LF/EOF bytes expose 7-bit and text-mode transfers)
//   8       4     u32 format version = 1
//   12      4     u32 scalar type: 1 = float (binary32), 2 = double (binary64)
//   16      4     u32 flags: bit 0 = an optimizer section follows the tensors; others are 0
//   20      8     u64 B = length of the body in bytes
//   28      B     body:
//                   u64 input_features            Sequential's (0 = not fixed)
//                   u32 L = layer count           1 <= L <= 10,000
//                   L x layer config              LayerConfig (layers/layer.hpp), in order:
//                       str kind
//                       u32 n (<= 256), n x (str key, f64 value)       numbers
//                       u32 s (<= 256), s x (str key, str value)       strings
//                   u32 N = tensor count          parameters() then buffers(), model order
//                   N x tensor:
//                       str name                  e.g. "0.Dense.weight", "3.BatchNorm.running_var"
//                       u64 rows, u64 cols
//                       rows*cols scalars         column-major
//                   if flags bit 0, the optimizer:
//                       str name                  Optimizer::name() (<= 1024 bytes)
//                       f64 learning rate, i64 step count (>= 0)
//                       u32 S, S x (u64 length, length scalars)        Optimizer::state()
//   28+B    4     u32 CRC-32 (io/crc32.hpp) of bytes [0, 28+B)
// ---------------------------------------------------------------------------------------------
//
// save writes atomically (io/atomic_file.hpp): a crash or a full disk mid-save leaves the
// previous file intact. It throws InvalidArgument if the model cannot be stored (no layers, a
// name over 256 bytes, a non-finite hyperparameter, an optimizer not built from this model) and
// FormatError if writing fails.
//
// load_into checks everything before it touches a model: magic, version, scalar type (a float
// file loads only into a float model), flags, truncation, checksum, every length against the
// bytes present (so a corrupt size cannot trigger a huge allocation), the optimizer's learning
// rate (finite and representable in the file's scalar type) and step count (>= 0), then compares
// the file's input_features, layer configs (kind and every field), tensors (name and shape) and
// optimizer (kind, state shapes) with the destination's, and writes only when all match. Every
// failure throws FormatError naming the source and the first problem (InvalidArgument for an
// optimizer not built from the destination's parameters); the destination model and optimizer
// are then unchanged (strong guarantee). load_into with an optimizer also restores its
// learning rate and step count; other optimizer hyperparameters are the caller's (build it with
// the same options). A weights file of dropnet 0.x ("DNWT" magic) is refused with a FormatError
// that says so (see docs/model_file.md).

#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <istream>
#include <limits>
#include <ostream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "../layers/layer_config.hpp"
#include "../model/model_state.hpp"
#include "../optimizers/optimizer.hpp"
#include "atomic_file.hpp"
#include "byte_codec.hpp"
#include "crc32.hpp"

namespace dropnet {

/// The model file format version this dropnet writes and reads.
inline constexpr std::uint32_t model_file_version = 1;

/// What a model file holds, read without building a model.
struct ModelFileInfo {
  std::uint32_t version = 0;          ///< format version (model_file_version)
  std::string scalar_type;            ///< "float" or "double"
  Index input_features = 0;           ///< Sequential::input_features() of the saved model
  std::vector<LayerConfig> layers;    ///< every layer's config, in order
  std::uint64_t tensor_elements = 0;  ///< scalars over every tensor
  bool has_optimizer = false;         ///< the file holds an optimizer's state
  std::string optimizer_name;         ///< Optimizer::name() of that optimizer, or ""
};

namespace detail {

inline constexpr char model_magic[8] = {'\x89', 'D', 'N', 'M', '\r', '\n', '\x1a', '\n'};
inline constexpr std::size_t model_header_bytes = 28;
inline constexpr std::uint32_t model_max_name = 256;
inline constexpr std::uint32_t model_max_optimizer_name = 1024;
inline constexpr std::uint32_t model_max_layers = 10000;
inline constexpr std::uint32_t model_max_fields = 256;
inline constexpr std::uint32_t model_max_tensors = 100000;
inline constexpr std::uint32_t model_flag_optimizer = 1u;
inline constexpr std::uint64_t model_max_extent = std::uint64_t{1} << 62;  // any row count, etc.

template <class T>
constexpr std::uint32_t scalar_type_code() {
  require_ieee_scalar<T>();
  return sizeof(T) == 4 ? 1u : 2u;
}
inline const char* scalar_type_name(std::uint32_t code) {
  return code == 1 ? "float" : code == 2 ? "double" : "unknown";
}

// ---------------------------------------------------------------------------------- writing

inline void require_storable_name(const std::string& where, const std::string& text,
                                  std::uint32_t limit) {
  require(text.size() <= limit, where, "'", text.substr(0, 40), "...' is ", text.size(),
          " bytes long; a model file stores at most ", limit);
}

inline void write_config(BinaryWriter& w, const LayerConfig& c, const std::string& where) {
  require_storable_name(where, c.kind, model_max_name);
  require(c.numbers.size() <= model_max_fields && c.strings.size() <= model_max_fields, where,
          "more than ", model_max_fields, " config fields");
  w.str(c.kind);
  w.u32(static_cast<std::uint32_t>(c.numbers.size()));
  for (const auto& [key, value] : c.numbers) {
    require_storable_name(where, key, model_max_name);
    require(std::isfinite(value), where, "hyperparameter '", key, "' is not finite (", value, ")");
    w.str(key);
    w.f64(value);
  }
  w.u32(static_cast<std::uint32_t>(c.strings.size()));
  for (const auto& [key, value] : c.strings) {
    require_storable_name(where, key, model_max_name);
    require_storable_name(where, value, model_max_name);
    w.str(key);
    w.str(value);
  }
}

template <class T>
void write_tensors(BinaryWriter& w, const ParameterList<T>& views) {
  require(views.size() <= model_max_tensors, "save", "more than ", model_max_tensors, " tensors");
  w.u32(static_cast<std::uint32_t>(views.size()));
  for (const auto& v : views) {
    require_storable_name("save", v.name, model_max_name);
    w.str(v.name);
    w.u64(static_cast<std::uint64_t>(v.rows));
    w.u64(static_cast<std::uint64_t>(v.cols));
    for (Index k = 0; k < v.size(); ++k) w.scalar(v.value[k]);
  }
}

template <class T>
void write_optimizer(BinaryWriter& w, Optimizer<T>& optimizer) {
  require_storable_name("save", optimizer.name(), model_max_optimizer_name);
  w.str(optimizer.name());
  w.f64(static_cast<double>(optimizer.learning_rate()));
  w.i64(optimizer.step_count());
  const std::vector<Vector<T>*> state = optimizer.state();
  require(state.size() <= model_max_tensors, "save", "more than ", model_max_tensors,
          " optimizer state tensors");
  w.u32(static_cast<std::uint32_t>(state.size()));
  for (const Vector<T>* s : state) {
    w.u64(static_cast<std::uint64_t>(s->size()));
    for (Index k = 0; k < s->size(); ++k) w.scalar((*s)(k));
  }
}

/// The complete file: header, body, checksum.
template <class T>
std::string encode_model(Sequential<T>& model, Optimizer<T>* optimizer) {
  require(!model.empty() && model.size() <= model_max_layers, "save",
          "a model file holds 1 to ", model_max_layers, " layers, the model has ", model.size());
  const ModelState<T> state(model);
  if (optimizer) state.require_optimizer(*optimizer, "save");
  const ParameterList<T>& views = state.tensors();
  std::uint64_t elements = 0;
  for (const auto& v : views) elements += static_cast<std::uint64_t>(v.size());

  std::string bytes;
  bytes.reserve(static_cast<std::size_t>(elements * sizeof(T) * (optimizer ? 4 : 1)) + 4096);
  BinaryWriter w(bytes);
  w.bytes(model_magic, sizeof model_magic);
  w.u32(model_file_version);
  w.u32(scalar_type_code<T>());
  w.u32(optimizer ? model_flag_optimizer : 0u);
  w.u64(0);  // body length, patched below
  w.u64(static_cast<std::uint64_t>(model.input_features()));
  w.u32(static_cast<std::uint32_t>(model.size()));
  for (Index i = 0; i < model.size(); ++i)
    write_config(w, model.layer(i).config(), concat("save (layer ", i, ")"));
  write_tensors(w, views);
  if (optimizer) write_optimizer(w, *optimizer);
  w.patch_u64(20, bytes.size() - model_header_bytes);
  w.u32(crc32(bytes.data(), bytes.size()));
  return bytes;
}

// ---------------------------------------------------------------------------------- reading

/// Where a tensor's scalars are in the file, with its declared shape.
struct TensorRecord {
  std::string name;
  std::uint64_t rows = 0, cols = 0;
  std::size_t offset = 0;
};

struct OptimizerRecord {
  std::string name;
  double learning_rate = 0.0;
  std::int64_t steps = 0;
  std::vector<std::pair<std::uint64_t, std::size_t>> state;  ///< (length, offset)
};

/// A checked, parsed model file; scalars stay in `bytes` until they are copied out.
struct ModelRecord {
  std::string where;
  std::string bytes;
  std::uint32_t scalar_type = 0;
  ModelFileInfo info;
  std::vector<TensorRecord> tensors;
  OptimizerRecord optimizer;
};

/// Reads the header, body and checksum from `in` and checks magic, version, scalar type,
/// flags, length and CRC. The body is read in growing chunks, so a corrupt length fails as
/// "truncated" after reading what is really there, never as one huge allocation.
inline std::string read_model_bytes(std::istream& in, const std::string& where) {
  std::string bytes(model_header_bytes, '\0');
  in.read(&bytes[0], static_cast<std::streamsize>(model_header_bytes));
  const auto got = static_cast<std::size_t>(in.gcount());
  if (got >= 4 && bytes.compare(0, 4, "DNWT") == 0)
    throw FormatError(where + ": this is a weights file of dropnet 0.x (\"DNWT\"), a format "
                              "dropnet no longer reads (it had no checksum); load it with the "
                              "release that wrote it and save_weights it again, which writes a "
                              "model file");
  if (bytes.compare(0, std::min(got, sizeof model_magic), model_magic,
                    std::min(got, sizeof model_magic)) != 0 || got == 0)
    throw FormatError(concat(where, ": not a dropnet model file (",
                             got == 0 ? "empty" : "wrong magic bytes", ")"));
  if (got < model_header_bytes)
    throw FormatError(concat(where, ": truncated: the header needs ", model_header_bytes,
                             " bytes, found ", got));
  const std::uint64_t version = load_le(bytes.data() + 8, 4);
  if (version != model_file_version)
    throw FormatError(concat(where, ": unsupported format version ", version,
                             " (this dropnet reads version ", model_file_version, ")"));
  const std::uint64_t scalar = load_le(bytes.data() + 12, 4);
  if (scalar != 1 && scalar != 2)
    throw FormatError(concat(where, ": unknown scalar type code ", scalar, " (1 = float, 2 = double)"));
  const std::uint64_t flags = load_le(bytes.data() + 16, 4);
  if ((flags & ~std::uint64_t{model_flag_optimizer}) != 0)
    throw FormatError(concat(where, ": unknown flags ", flags, " (a newer format?)"));
  const std::uint64_t body = load_le(bytes.data() + 20, 8);
  if (body > model_max_extent)
    throw FormatError(concat(where, ": corrupt body length ", body));

  const std::uint64_t total = model_header_bytes + body + 4;
  std::size_t chunk = std::size_t{1} << 16;
  while (bytes.size() < total) {
    const std::size_t old = bytes.size();
    const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(chunk, total - old));
    bytes.resize(old + want);
    in.read(&bytes[old], static_cast<std::streamsize>(want));
    const auto read = static_cast<std::size_t>(in.gcount());
    if (read < want)
      throw FormatError(concat(where, ": truncated: the header announces ", total,
                               " bytes (a body of ", body, " and a checksum), found ", old + read));
    chunk = std::min<std::size_t>(chunk * 2, std::size_t{1} << 24);
  }
  const auto stored = static_cast<std::uint32_t>(load_le(bytes.data() + total - 4, 4));
  const std::uint32_t computed = crc32(bytes.data(), static_cast<std::size_t>(total - 4));
  if (stored != computed)
    throw FormatError(concat(where, ": checksum mismatch (stored ", stored, ", computed ",
                             computed, "): the file is corrupt"));
  return bytes;
}

inline LayerConfig read_config(BinaryReader& r) {
  LayerConfig c;
  c.kind = r.str("layer kind", model_max_name);
  const std::uint32_t n = r.u32("number count");
  if (n > model_max_fields)
    throw FormatError(concat(r.where(), ": layer ", c.kind, " has ", n, " numbers, the limit is ",
                             model_max_fields));
  for (std::uint32_t i = 0; i < n; ++i) {
    std::string key = r.str("number name", model_max_name);
    const double value = r.f64("number value");
    if (!std::isfinite(value))
      throw FormatError(concat(r.where(), ": layer ", c.kind, " field '", key, "' is ", value));
    c.numbers.emplace_back(std::move(key), value);
  }
  const std::uint32_t s = r.u32("string count");
  if (s > model_max_fields)
    throw FormatError(concat(r.where(), ": layer ", c.kind, " has ", s, " strings, the limit is ",
                             model_max_fields));
  for (std::uint32_t i = 0; i < s; ++i) {
    std::string key = r.str("string name", model_max_name);
    std::string value = r.str("string value", model_max_name);
    c.strings.emplace_back(std::move(key), std::move(value));
  }
  return c;
}

/// A count field bounded by `limit` and by the bytes left (each item takes >= `min_bytes`).
inline std::uint32_t read_count(BinaryReader& r, const char* what, std::uint32_t limit,
                                std::size_t min_bytes) {
  const std::uint32_t count = r.u32(what);
  if (count > limit)
    throw FormatError(concat(r.where(), ": ", what, " ", count, " is impossible (limit ", limit,
                             ", ", r.remaining(), " bytes left)"));
  if (count > r.remaining() / min_bytes)
    throw FormatError(concat(r.where(), ": truncated: ", what, " ", count, " needs at least ",
                             std::uint64_t{count} * min_bytes, " bytes, ", r.remaining(), " left"));
  return count;
}

inline std::uint64_t read_extent(BinaryReader& r, const char* what) {
  const std::uint64_t value = r.u64(what);
  if (value > model_max_extent) throw FormatError(concat(r.where(), ": corrupt ", what, " ", value));
  return value;
}

inline void read_tensors(BinaryReader& r, ModelRecord& m, std::size_t scalar_bytes) {
  const std::uint32_t count = read_count(r, "tensor count", model_max_tensors, 4 + 8 + 8);
  m.tensors.resize(count);
  for (auto& t : m.tensors) {
    t.name = r.str("tensor name", model_max_name);
    t.rows = read_extent(r, "tensor rows");
    t.cols = read_extent(r, "tensor cols");
    if (t.rows != 0 && t.cols > r.remaining() / scalar_bytes / t.rows)
      throw FormatError(concat(r.where(), ": truncated: tensor '", t.name, "' of ", t.rows, "x",
                               t.cols, " needs more than the ", r.remaining(), " bytes left"));
    t.offset = r.skip_elements(t.rows * t.cols, scalar_bytes, "tensor data");
    m.info.tensor_elements += t.rows * t.cols;
  }
}

inline void read_optimizer(BinaryReader& r, ModelRecord& m, std::size_t scalar_bytes) {
  OptimizerRecord& o = m.optimizer;
  o.name = r.str("optimizer name", model_max_optimizer_name);
  o.learning_rate = r.f64("learning rate");
  o.steps = r.i64("step count");
  // The learning rate is stored as f64 but set as the model's scalar: 1e39 is finite here and
  // infinite as a float, which the optimizer would refuse only after the state was copied.
  const double largest = scalar_bytes == 4 ? double{std::numeric_limits<float>::max()}
                                           : std::numeric_limits<double>::max();
  if (!(o.learning_rate >= 0.0 && o.learning_rate <= largest) || o.steps < 0)
    throw FormatError(concat(r.where(), ": optimizer ", o.name, " has learning rate ",
                             o.learning_rate, " (must be finite, >= 0 and at most ", largest,
                             ") and step count ", o.steps, " (must be >= 0)"));
  const std::uint32_t count = read_count(r, "optimizer state count", model_max_tensors, 8);
  o.state.resize(count);
  for (auto& [length, offset] : o.state) {
    length = read_extent(r, "optimizer state length");
    offset = r.skip_elements(length, scalar_bytes, "optimizer state");
  }
  m.info.has_optimizer = true;
  m.info.optimizer_name = o.name;
}

/// Parses a buffer that read_model_bytes accepted.
inline ModelRecord parse_model(std::string bytes, std::string where) {
  ModelRecord m;
  m.where = std::move(where);
  m.bytes = std::move(bytes);
  m.scalar_type = static_cast<std::uint32_t>(load_le(m.bytes.data() + 12, 4));
  const std::size_t scalar_bytes = m.scalar_type == 1 ? 4 : 8;
  const bool has_optimizer = (load_le(m.bytes.data() + 16, 4) & model_flag_optimizer) != 0;
  m.info.version = model_file_version;
  m.info.scalar_type = scalar_type_name(m.scalar_type);

  BinaryReader r(m.bytes, model_header_bytes, m.bytes.size() - 4, m.where);
  const std::uint64_t input_features = r.u64("input_features");
  if (input_features > static_cast<std::uint64_t>(max_layer_size))
    throw FormatError(concat(m.where, ": corrupt input_features ", input_features));
  m.info.input_features = static_cast<Index>(input_features);
  const std::uint32_t layers = read_count(r, "layer count", model_max_layers, 4 + 4 + 4);
  if (layers == 0) throw FormatError(m.where + ": the file holds no layers");
  m.info.layers.reserve(layers);
  for (std::uint32_t i = 0; i < layers; ++i) m.info.layers.push_back(read_config(r));
  read_tensors(r, m, scalar_bytes);
  if (has_optimizer) read_optimizer(r, m, scalar_bytes);
  if (r.remaining() != 0)
    throw FormatError(concat(m.where, ": ", r.remaining(), " unexpected bytes at the end of the body"));
  return m;
}

inline ModelRecord read_model(std::istream& in, const std::string& where) {
  return parse_model(read_model_bytes(in, where), where);
}

/// Opens `path` for reading, failing with a FormatError that says why.
inline std::ifstream open_model_file(const std::string& path, const std::string& where) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    throw FormatError(where + ": '" + path + "' is a directory");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw FormatError(concat(where, ": cannot open '", path, "' (", std::strerror(errno), ")"));
  return in;
}

inline ModelRecord read_model_file(const std::string& path, const std::string& where) {
  std::ifstream in = open_model_file(path, where);
  ModelRecord m = read_model(in, where);
  if (in.peek() != std::char_traits<char>::eof())
    throw FormatError(where + ": unexpected bytes after the checksum");
  return m;
}

template <class T>
void require_scalar_type(const ModelRecord& m) {
  if (m.scalar_type != scalar_type_code<T>())
    throw FormatError(concat(m.where, ": the file holds a ", scalar_type_name(m.scalar_type),
                             " model (", m.scalar_type == 1 ? 4 : 8, "-byte scalars), this one is ",
                             scalar_type_name(scalar_type_code<T>()), "; load it as load<",
                             scalar_type_name(m.scalar_type), ">"));
}

inline bool equal_numbers(double a, double b) { return a == b || (std::isnan(a) && std::isnan(b)); }

/// Same bit pattern: tells -0.0 from 0.0, which == does not.
inline bool identical_numbers(double a, double b) {
  std::uint64_t bits_a = 0, bits_b = 0;
  std::memcpy(&bits_a, &a, sizeof a);
  std::memcpy(&bits_b, &b, sizeof b);
  return bits_a == bits_b;
}

/// Same kind, keys and strings, and numbers equal by `same`.
template <class SameNumber>
bool same_config(const LayerConfig& a, const LayerConfig& b, SameNumber same) {
  if (a.kind != b.kind || a.numbers.size() != b.numbers.size() || a.strings != b.strings)
    return false;
  for (std::size_t i = 0; i < a.numbers.size(); ++i)
    if (a.numbers[i].first != b.numbers[i].first || !same(a.numbers[i].second, b.numbers[i].second))
      return false;
  return true;
}

inline std::string describe(const LayerConfig& c) {
  std::ostringstream out;
  out.precision(17);
  out << c.kind << "{";
  const char* sep = "";
  for (const auto& [key, value] : c.numbers) {
    out << sep << key << "=" << value;
    sep = ", ";
  }
  for (const auto& [key, value] : c.strings) {
    out << sep << key << "=" << value;
    sep = ", ";
  }
  out << "}";
  return out.str();
}

/// Throws unless the file's tensors have the names and shapes of `views`, in order.
template <class T>
void require_tensors_match(const ModelRecord& m, const ParameterList<T>& views) {
  if (views.size() != m.tensors.size())
    throw FormatError(concat(m.where, ": the file holds ", m.tensors.size(),
                             " tensors, the model has ", views.size()));
  for (std::size_t i = 0; i < views.size(); ++i) {
    const TensorRecord& t = m.tensors[i];
    if (t.name != views[i].name || t.rows != static_cast<std::uint64_t>(views[i].rows) ||
        t.cols != static_cast<std::uint64_t>(views[i].cols))
      throw FormatError(concat(m.where, ": the file does not fit the model: tensor ", i, " is '",
                               t.name, "' ", t.rows, "x", t.cols,
                               " in the file but '", views[i].name, "' ", views[i].rows, "x",
                               views[i].cols, " in the model"));
  }
}

template <class T>
void copy_scalars(const ModelRecord& m, std::size_t offset, T* out, Index count) {
  const char* p = m.bytes.data() + offset;
  for (Index k = 0; k < count; ++k) out[k] = load_le_scalar<T>(p + k * Index(sizeof(T)));
}

template <class T>
void copy_tensors(const ModelRecord& m, const ParameterList<T>& views) {
  for (std::size_t i = 0; i < views.size(); ++i)
    copy_scalars(m, m.tensors[i].offset, views[i].value, views[i].size());
}

/// The kind a stored optimizer name starts with: the file keeps Optimizer::name() ("Adam(lr=...)"),
/// which begins with Optimizer::kind() by the optimizers' convention.
inline std::string stored_optimizer_kind(const std::string& name) {
  return name.substr(0, name.find('('));
}

template <class T>
void require_optimizer_matches(const ModelRecord& m, Optimizer<T>& optimizer) {
  if (!m.info.has_optimizer)
    throw FormatError(m.where + ": the file holds no optimizer state (saved without an optimizer)");
  if (stored_optimizer_kind(m.optimizer.name) != optimizer.kind())
    throw FormatError(concat(m.where, ": the file holds the state of ", m.optimizer.name,
                             ", not of ", optimizer.name()));
  const std::vector<Vector<T>*> state = optimizer.state();
  if (state.size() != m.optimizer.state.size())
    throw FormatError(concat(m.where, ": the file holds ", m.optimizer.state.size(),
                             " optimizer state tensors, ", optimizer.name(), " has ", state.size(),
                             " (different options, e.g. momentum or amsgrad?)"));
  for (std::size_t i = 0; i < state.size(); ++i)
    if (m.optimizer.state[i].first != static_cast<std::uint64_t>(state[i]->size()))
      throw FormatError(concat(m.where, ": optimizer state tensor ", i, " has ",
                               m.optimizer.state[i].first, " values in the file, ",
                               state[i]->size(), " in ", optimizer.name()));
}

/// Sets the learning rate and step count, the only optimizer writes that can refuse a value
/// (parse_model checked both, so they should not); on a refusal both are put back. Called before
/// any tensor is written, so a refusal leaves model and optimizer as they were.
template <class T>
void set_optimizer_scalars(const ModelRecord& m, Optimizer<T>& optimizer) {
  const T old_rate = optimizer.learning_rate();
  const std::int64_t old_steps = optimizer.step_count();
  try {
    optimizer.set_learning_rate(static_cast<T>(m.optimizer.learning_rate));
    optimizer.set_step_count(m.optimizer.steps);
  } catch (const InvalidArgument& e) {
    optimizer.set_learning_rate(old_rate);
    optimizer.set_step_count(old_steps);
    throw FormatError(concat(m.where, ": ", e.what()));
  }
}

template <class T>
void copy_optimizer_state(const ModelRecord& m, Optimizer<T>& optimizer) {
  const std::vector<Vector<T>*> state = optimizer.state();
  for (std::size_t i = 0; i < state.size(); ++i)
    copy_scalars(m, m.optimizer.state[i].second, state[i]->data(), state[i]->size());
}

/// Checks that a record describes `model` exactly (and `optimizer`, if given), then writes.
template <class T>
void load_record_into(const ModelRecord& m, Sequential<T>& model, Optimizer<T>* optimizer) {
  require_scalar_type<T>(m);
  if (m.info.input_features != model.input_features())
    throw FormatError(concat(m.where, ": architecture mismatch: the file's model takes ",
                             m.info.input_features, " input features, this one ",
                             model.input_features()));
  if (static_cast<Index>(m.info.layers.size()) != model.size())
    throw FormatError(concat(m.where, ": architecture mismatch: the file holds ",
                             m.info.layers.size(), " layers, the model has ", model.size()));
  for (Index i = 0; i < model.size(); ++i) {
    const LayerConfig mine = model.layer(i).config();
    if (!same_config(m.info.layers[static_cast<std::size_t>(i)], mine, equal_numbers))
      throw FormatError(concat(m.where, ": architecture mismatch at layer ", i, ": the file has ",
                               describe(m.info.layers[static_cast<std::size_t>(i)]),
                               ", the model ", describe(mine)));
  }
  const ModelState<T> state(model);
  require_tensors_match(m, state.tensors());
  if (optimizer) {
    state.require_optimizer(*optimizer, m.where);  // InvalidArgument: the caller's mistake
    require_optimizer_matches(m, *optimizer);
    set_optimizer_scalars(m, *optimizer);  // the last step that may throw
    copy_optimizer_state(m, *optimizer);
  }
  copy_tensors(m, state.tensors());  // cannot throw: every size was checked above
}

/// Writes the record's tensors into `model` if their names and shapes are the model's, in order,
/// whatever the layers' hyperparameters (save_weights / load_weights).
template <class T>
void load_tensors_into(const ModelRecord& m, Sequential<T>& model) {
  require_scalar_type<T>(m);
  const ModelState<T> state(model);
  require_tensors_match(m, state.tensors());
  copy_tensors(m, state.tensors());
}

}  // namespace detail

/// Writes `model` (and `optimizer`'s state, if given) to `out`. Throws InvalidArgument if the
/// model cannot be stored, FormatError if the stream fails.
template <class T>
void save(Sequential<T>& model, std::ostream& out, Optimizer<T>* optimizer = nullptr) {
  const std::string bytes = detail::encode_model(model, optimizer);
  try {
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.flush();
  } catch (const std::ios_base::failure& e) {
    throw FormatError(detail::concat("save: writing the model to the stream failed: ", e.what()));
  }
  if (!out)
    throw FormatError(detail::concat("save: writing the ", bytes.size(),
                                     "-byte model to the stream failed"));
}

/// Writes `model` (and `optimizer`'s state, if given) to `path` atomically (io/atomic_file.hpp:
/// through a symbolic link, keeping a previous file's permission bits). Throws InvalidArgument
/// if the model cannot be stored, FormatError if writing fails (the previous file is then intact).
template <class T>
void save(Sequential<T>& model, const std::string& path, Optimizer<T>* optimizer = nullptr) {
  detail::replace_file_atomically(path, detail::encode_model(model, optimizer), "save");
}

/// Loads the weights (and the optimizer's state, if `optimizer` is given) into an existing
/// model whose architecture must equal the file's. Throws FormatError (InvalidArgument for an
/// optimizer not built from `model`); `model` and `optimizer` are then unchanged, bit for bit.
template <class T>
void load_into(Sequential<T>& model, std::istream& in, Optimizer<T>* optimizer = nullptr) {
  detail::load_record_into(detail::read_model(in, "load_into(stream)"), model, optimizer);
}

/// load_into from the file at `path`, which must end at the checksum.
template <class T>
void load_into(Sequential<T>& model, const std::string& path, Optimizer<T>* optimizer = nullptr) {
  const std::string where = "load_into('" + path + "')";
  detail::load_record_into(detail::read_model_file(path, where), model, optimizer);
}

/// What `path` holds (scalar type, layers, optimizer), checked like load. Throws FormatError.
inline ModelFileInfo read_model_info(const std::string& path) {
  return detail::read_model_file(path, "read_model_info('" + path + "')").info;
}
/// What the model at `in` holds; leaves the stream just after its checksum.
inline ModelFileInfo read_model_info(std::istream& in) {
  return detail::read_model(in, "read_model_info(stream)").info;
}

}  // namespace dropnet
