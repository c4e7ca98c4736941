#pragma once
// IDX files (LeCun's MNIST format, also Fashion-MNIST's), gzip-compressed or raw.
//
// Layout: a 4-byte big-endian magic 0x0000TTNN (TT = element type, NN = number of dimensions),
// NN big-endian uint32 dimensions, then prod(dims) elements. Only unsigned bytes (TT = 0x08) are
// read: that is what image and label files hold.
//
//   IdxArray read_idx(path, rank)                the header and the bytes, checked (see below)
//   Matrix<T> load_idx_images<T>(path)           (height*width) x N, pixel / 255 in [0, 1],
//                                                one image per column, row-major pixels
//   Labels load_idx_labels(path, classes)        N labels, each checked in [0, classes)
//   LabeledImages<T> load_idx_dataset<T>(images, labels, classes)    both, counts checked
//   normalize(x, mean, stddev)                   x <- (x - mean) / stddev, as torchvision's
//                                                Normalize((0.5,), (0.5,)) with 0.5, 0.5
//   PixelStandardizer<T>                         per-pixel mean/stddev fitted on training data
//
// A file that starts with the gzip magic bytes (1f 8b) is decompressed with zlib, any other is
// read as it is, so "train-images-idx3-ubyte" and "train-images-idx3-ubyte.gz" read alike.
// Concatenated gzip members read as one stream, as gunzip reads them; bytes after the last
// member that do not start another one are refused (gunzip warns of "trailing garbage"; zlib's
// gzread drops them unseen). The data buffer grows as bytes arrive: a header that announces more
// than the file holds fails as truncated after allocating about twice what the file holds (and
// 4 KB at least), never the announced size. Every check failure throws FormatError naming the
// file, what was expected and what was found: missing file, wrong magic number (which also
// encodes the rank), a zero image dimension, truncated header or data, bytes after the announced
// data, a corrupt or cut gzip stream (bad CRC, bad block), bytes after the last gzip member that
// are not a gzip member, a label out of range, image and label counts that disagree.
//
// Requires zlib (link ZLIB::ZLIB). This header is not part of <dropnet/dropnet.hpp>, which stays
// Eigen-only.

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "../core/error.hpp"
#include "../core/types.hpp"

namespace dropnet {

/// The element type code of unsigned-byte IDX data.
inline constexpr std::uint8_t idx_unsigned_byte = 0x08;

/// An IDX file's content: its dimensions (the first is the item count) and its data bytes.
struct IdxArray {
  /// Dimensions as the header gives them; dims[0] is the item count.
  std::vector<std::uint32_t> dims;
  std::vector<std::uint8_t> bytes;  ///< prod(dims) bytes, last dimension fastest

  /// Number of items, dims[0] (0 for a file without dimensions).
  std::uint64_t count() const { return dims.empty() ? 0 : dims[0]; }
  /// Bytes per item: the product of every dimension but the first.
  std::uint64_t item_size() const {
    std::uint64_t size = 1;
    for (std::size_t i = 1; i < dims.size(); ++i) size *= dims[i];
    return size;
  }
};

namespace detail {

/// Reads a file as it is or, when it starts with the gzip magic bytes 1f 8b, through zlib's
/// inflate. A gzip file may hold several members one after another (RFC 1952; `cat a.gz b.gz`):
/// they read as one stream, as gunzip does. Any other byte after a member is refused: zlib's
/// gzread drops such bytes silently, so a file with junk appended would have loaded without a word.
class GzReader {
 public:
  explicit GzReader(const std::string& path) : path_(path), buffer_(new std::uint8_t[buffer_size]) {
    errno = 0;
    file_.reset(std::fopen(path.c_str(), "rb"));
    if (file_ == nullptr) {
      const std::string reason = errno != 0 ? std::strerror(errno) : "unknown error";
      throw FormatError(concat(path, ": cannot open (", reason, ")"));
    }
    fill(2);
    gzip_ = stream_.avail_in >= 2 && buffer_[0] == 0x1f && buffer_[1] == 0x8b;
    if (gzip_ && inflateInit2(&stream_, 16 + MAX_WBITS) != Z_OK)  // 16: the gzip wrapper only
      throw FormatError(concat(path, ": cannot start zlib (out of memory)"));
  }
  GzReader(const GzReader&) = delete;
  GzReader& operator=(const GzReader&) = delete;
  ~GzReader() {
    if (gzip_) inflateEnd(&stream_);
  }

  /// Reads up to `n` bytes; returns how many it got (fewer only at the end of the data).
  /// Throws on a read error, a corrupt or cut gzip stream, or bytes after the last gzip member.
  std::size_t read(std::uint8_t* out, std::size_t n) {
    if (!gzip_) {
      const std::size_t buffered = std::min<std::size_t>(n, stream_.avail_in);
      if (buffered > 0) std::memcpy(out, stream_.next_in, buffered);
      stream_.next_in += buffered;
      stream_.avail_in -= static_cast<uInt>(buffered);
      return buffered + read_file(out + buffered, n - buffered);
    }
    std::size_t total = 0;
    while (total < n && inflate_some(out + total, n - total, total)) {
    }
    return total;
  }

  bool compressed() const { return gzip_; }
  const std::string& path() const { return path_; }

 private:
  /// Inflates into out[0, n), adding what it wrote to `total`; false at the end of the data.
  bool inflate_some(std::uint8_t* out, std::size_t n, std::size_t& total) {
    if (member_ended_) {
      if (fill(2) == 0) return false;
      if (stream_.avail_in < 2 || stream_.next_in[0] != 0x1f || stream_.next_in[1] != 0x8b)
        throw FormatError(concat(path_, ": bytes after the end of the gzip data at offset ",
                                 consumed(), " are not another gzip member"));
      inflateReset(&stream_);
      member_ended_ = false;
    }
    if (stream_.avail_in == 0 && fill(1) == 0)
      throw corrupt("unexpected end of the gzip stream (truncated download?)");
    stream_.next_out = out;
    stream_.avail_out = static_cast<uInt>(std::min<std::size_t>(n, 1u << 30));
    const uInt before = stream_.avail_out;
    const int code = inflate(&stream_, Z_NO_FLUSH);
    total += before - stream_.avail_out;
    if (code == Z_STREAM_END) {
      member_ended_ = true;
    } else if (code != Z_OK && !(code == Z_BUF_ERROR && stream_.avail_in == 0)) {
      // (Z_BUF_ERROR on an empty input only asks for more, which fill() gives next time.)
      throw corrupt(stream_.msg != nullptr ? stream_.msg : concat("zlib error ", code));
    }
    return true;
  }

  /// Makes at least `want` bytes available in the buffer unless the file ends first; returns
  /// how many are.
  std::size_t fill(std::size_t want) {
    if (stream_.avail_in >= want) return stream_.avail_in;
    if (stream_.avail_in > 0) std::memmove(buffer_.get(), stream_.next_in, stream_.avail_in);
    stream_.next_in = buffer_.get();
    while (stream_.avail_in < want) {
      const std::size_t got =
          read_file(buffer_.get() + stream_.avail_in, buffer_size - stream_.avail_in);
      if (got == 0) break;
      stream_.avail_in += static_cast<uInt>(got);
    }
    return stream_.avail_in;
  }

  std::size_t read_file(std::uint8_t* out, std::size_t n) {
    const std::size_t got = n == 0 ? 0 : std::fread(out, 1, n, file_.get());
    if (got < n && std::ferror(file_.get()))
      throw FormatError(concat(path_, ": read error (", std::strerror(errno), ")"));
    read_ += got;
    return got;
  }

  /// Offset in the file of the next byte not yet used.
  std::uint64_t consumed() const { return read_ - stream_.avail_in; }

  FormatError corrupt(const std::string& why) const {
    return FormatError(concat(path_, ": corrupt gzip data (", why, ")"));
  }

  std::string path_;
  /// 64 KB, left uninitialized: a small file touches only a page of it (the fuzzer opens five
  /// files per input), a large one reads as fast as with more.
  static constexpr std::size_t buffer_size = std::size_t{1} << 16;
  std::unique_ptr<std::uint8_t[]> buffer_;  ///< bytes read, not yet used from stream_.next_in on
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> file_{nullptr, &std::fclose};
  z_stream stream_{};
  std::uint64_t read_ = 0;  ///< bytes read from the file so far
  bool gzip_ = false;
  bool member_ended_ = false;  ///< a gzip member ended: what follows must be another or nothing
};

inline std::uint32_t big_endian_u32(const std::uint8_t* p) {
  return std::uint32_t{p[0]} << 24 | std::uint32_t{p[1]} << 16 | std::uint32_t{p[2]} << 8 | p[3];
}

inline std::string hex32(std::uint32_t value) {
  static const char digits[] = "0123456789abcdef";
  std::string out = "0x00000000";
  for (int i = 9; i >= 2; --i, value >>= 4) out[static_cast<std::size_t>(i)] = digits[value & 15u];
  return out;
}

inline std::string dims_text(const std::vector<std::uint32_t>& dims) {
  std::string out;
  for (std::size_t i = 0; i < dims.size(); ++i) out += (i ? " x " : "") + std::to_string(dims[i]);
  return out;
}

/// Reads and checks the magic number and the dimensions.
inline std::vector<std::uint32_t> read_idx_header(GzReader& in, int rank) {
  std::uint8_t magic[4];
  const std::size_t got = in.read(magic, 4);
  if (got < 4)
    throw FormatError(concat(in.path(), ": truncated IDX header: expected 4 magic bytes, found ",
                             got, got == 0 ? " (empty file)" : ""));
  const std::uint32_t expected = (std::uint32_t{idx_unsigned_byte} << 8) | std::uint32_t(rank);
  const std::uint32_t found = big_endian_u32(magic);
  if (found != expected)
    throw FormatError(concat(in.path(), ": bad IDX magic number ", hex32(found), ", expected ",
                             hex32(expected), " (unsigned bytes, ", rank, " dimension",
                             rank > 1 ? "s" : "", ")"));

  std::vector<std::uint8_t> raw(4 * static_cast<std::size_t>(rank));
  const std::size_t dims_got = in.read(raw.data(), raw.size());
  if (dims_got < raw.size())
    throw FormatError(concat(in.path(), ": truncated IDX header: expected ", raw.size(),
                             " dimension bytes after the magic number, found ", dims_got));
  std::vector<std::uint32_t> dims(static_cast<std::size_t>(rank));
  for (std::size_t i = 0; i < dims.size(); ++i) dims[i] = big_endian_u32(&raw[4 * i]);
  for (std::size_t i = 1; i < dims.size(); ++i)
    if (dims[i] == 0)
      throw FormatError(
          concat(in.path(), ": IDX dimension ", i, " is 0 (dimensions ", dims_text(dims), ")"));
  return dims;
}

}  // namespace detail

/// Reads an unsigned-byte IDX file of `rank` dimensions (3 for images, 1 for labels).
/// Throws FormatError (see the header comment) unless the file holds exactly
/// 4 + 4 * rank + prod(dims) bytes once decompressed.
inline IdxArray read_idx(const std::string& path, int rank) {
  detail::require(rank >= 1 && rank <= 255, "read_idx", "rank must be in [1, 255], got ", rank);
  detail::GzReader in(path);
  IdxArray array;
  array.dims = detail::read_idx_header(in, rank);

  // Three 32-bit dimensions can announce 96 bits of bytes, where an integer product would wrap
  // to a small size and a later allocation fail with std::bad_alloc instead of a FormatError
  // (found by tests/fuzz/fuzz_idx_reader.cpp). A double cannot wrap. The item size is bounded
  // too: with a count of 0 the total is 0, while 0 x 2^32-1 x 2^32-1 made a matrix of -2 rows.
  double item = 1.0;
  for (std::size_t i = 1; i < array.dims.size(); ++i) item *= static_cast<double>(array.dims[i]);
  if (item * array.dims[0] > 0x1p62 || item > 0x1p62)
    throw FormatError(detail::concat(path, ": header announces ", detail::dims_text(array.dims),
                                     ", over 2^62 data bytes: the header is corrupt"));
  std::uint64_t expected = 1;  // exact now: at most 2^62
  for (const std::uint32_t d : array.dims) expected *= d;
  const std::uint64_t header = 4 + 4 * static_cast<std::uint64_t>(rank);
  auto mismatch = [&](const std::string& found) {
    return FormatError(detail::concat(path, ": header announces ", detail::dims_text(array.dims),
                                      " = ", expected, " data bytes (", header + expected,
                                      " bytes in all", in.compressed() ? " once decompressed" : "",
                                      "), found ", found));
  };

  // Grow while reading, never trusting the header with an allocation: 32 bytes may announce
  // 60000 x 28 x 28, and reserving (and zero-filling) those 47 MB before finding the file cut
  // short took the fuzzer 10 s per input. Doubling keeps the copies under the data's size;
  // the exact reserve keeps the buffer within both the announced size and twice what was read.
  std::uint64_t want = 4096;
  std::uint64_t have = 0;
  while (have < expected) {
    want = std::min(want, expected - have);
    array.bytes.reserve(static_cast<std::size_t>(have + want));
    array.bytes.resize(static_cast<std::size_t>(have + want));
    const std::size_t got = in.read(array.bytes.data() + have, static_cast<std::size_t>(want));
    have += got;
    if (got < want) throw mismatch(detail::concat(header + have, " (truncated)"));
    want = have;
  }
  std::uint8_t extra[4096];
  std::uint64_t trailing = 0;
  for (std::size_t got; (got = in.read(extra, sizeof extra)) > 0;) trailing += got;
  if (trailing > 0)
    throw mismatch(detail::concat(header + expected + trailing, " (", trailing,
                                  " unexpected bytes after the data)"));
  return array;
}

/// Images of an IDX3 file as a (height*width) x N matrix with pixel values / 255 in [0, 1], one
/// image per column (its rows of pixels one after another). Throws FormatError.
template <class T>
Matrix<T> idx_images_to_matrix(const IdxArray& images) {
  detail::require(images.dims.size() == 3, "idx_images_to_matrix",
                  "expected a 3-dimensional IDX "
                  "array (count x height x width), got ",
                  images.dims.size(), " dimensions");
  const auto pixels = static_cast<Index>(images.item_size());
  const auto count = static_cast<Index>(images.count());
  Matrix<T> x(pixels, count);
  const T scale = T(1) / T(255);
  for (Index i = 0; i < x.size(); ++i)
    x.data()[i] = T(images.bytes[static_cast<std::size_t>(i)]) * scale;
  return x;
}

/// The images of an IDX3 file as a (height * width) x N matrix, pixel / 255 in [0, 1], one image
/// per column in row-major pixel order. Throws FormatError naming the file on any check of the
/// file comment above.
template <class T>
Matrix<T> load_idx_images(const std::string& path) {
  return idx_images_to_matrix<T>(read_idx(path, 3));
}

/// Labels of an IDX1 file, each checked to lie in [0, classes) (no check when classes is 0).
inline Labels load_idx_labels(const std::string& path, int classes = 0) {
  const IdxArray array = read_idx(path, 1);
  Labels labels(static_cast<Index>(array.count()));
  for (Index i = 0; i < labels.size(); ++i) {
    const int label = array.bytes[static_cast<std::size_t>(i)];
    if (classes > 0 && label >= classes)
      throw FormatError(detail::concat(path, ": label ", label, " of item ", i,
                                       " is out of range, expected 0 to ", classes - 1));
    labels(i) = label;
  }
  return labels;
}

/// Images with their labels: images is features x N, labels has N entries.
template <class T>
struct LabeledImages {
  /// features x N pixels, one image per column.
  Matrix<T> images;
  /// N labels, one per column of images.
  Labels labels;
  /// Image height in pixels.
  Index height = 0;
  /// Image width in pixels.
  Index width = 0;

  /// Number of items, N.
  Index size() const { return images.cols(); }
};

/// Loads an image file and its label file and checks that they describe the same items.
template <class T>
LabeledImages<T> load_idx_dataset(const std::string& images_path, const std::string& labels_path,
                                  int classes = 0) {
  const IdxArray images = read_idx(images_path, 3);
  LabeledImages<T> data;
  data.labels = load_idx_labels(labels_path, classes);
  if (static_cast<std::uint64_t>(data.labels.size()) != images.count())
    throw FormatError(detail::concat(images_path, " holds ", images.count(), " images but ",
                                     labels_path, " holds ", data.labels.size(),
                                     " labels; expected the same count"));
  data.images = idx_images_to_matrix<T>(images);
  data.height = static_cast<Index>(images.dims[1]);
  data.width = static_cast<Index>(images.dims[2]);
  return data;
}

/// x <- (x - mean) / stddev elementwise. With mean = stddev = 0.5, pixels in [0, 1] land in
/// [-1, 1], as transforms.Normalize((0.5,), (0.5,)) in the seed notebook. Throws unless stddev > 0.
template <class T>
void normalize(Matrix<T>& x, T mean, T stddev) {
  detail::require(std::isfinite(double(stddev)) && stddev > T(0) && std::isfinite(double(mean)),
                  "normalize", "needs a finite mean and a finite stddev > 0, got mean ", mean,
                  ", stddev ", stddev);
  x.array() = (x.array() - mean) * (T(1) / stddev);
}

/// Per-feature (per-pixel) standardization: x_i <- (x_i - mean_i) / max(stddev_i, min_stddev),
/// with mean and (population) stddev fitted on the training set and applied unchanged to the
/// validation and test sets. The floor keeps pixels that are almost always blank (the corners)
/// from turning a rare faint stroke into a huge input.
template <class T>
class PixelStandardizer {
 public:
  /// Standardizer that divides by at least `min_stddev`; throws InvalidArgument unless it is > 0.
  explicit PixelStandardizer(T min_stddev = T(0.1)) : min_stddev_(min_stddev) {
    detail::require(min_stddev > T(0), "PixelStandardizer", "min_stddev must be > 0, got ",
                    min_stddev);
  }

  /// Fits mean and stddev of every row of `x` (features x N). Throws on an empty matrix.
  void fit(const Matrix<T>& x) {
    detail::require(x.size() > 0, "PixelStandardizer::fit", "empty data");
    // Double sums, one column at a time: a float copy of 50,000 images is big enough already.
    Eigen::ArrayXd sum = Eigen::ArrayXd::Zero(x.rows()), sum_sq = Eigen::ArrayXd::Zero(x.rows());
    for (Index j = 0; j < x.cols(); ++j) {
      const Eigen::ArrayXd column = x.col(j).template cast<double>().array();
      sum += column;
      sum_sq += column.square();
    }
    const double n = static_cast<double>(x.cols());
    const Eigen::ArrayXd mean = sum / n;
    const Eigen::ArrayXd var = (sum_sq / n - mean.square()).max(0.0);
    mean_ = mean.cast<T>().matrix();
    scale_ = (1.0 / var.sqrt().max(double(min_stddev_))).cast<T>().matrix();
  }

  /// Applies the fitted transform. Throws if not fitted or if the row count differs.
  void apply(Matrix<T>& x) const {
    detail::require(mean_.size() > 0, "PixelStandardizer::apply", "call fit first");
    detail::require(x.rows() == mean_.size(), "PixelStandardizer::apply", "data has ", x.rows(),
                    " features, fitted on ", mean_.size());
    x.array() = (x.array().colwise() - mean_.array()).colwise() * scale_.array();
  }

  /// The fitted per-feature mean (empty before fit).
  const Vector<T>& mean() const { return mean_; }
  /// 1 / max(stddev, min_stddev) per feature.
  const Vector<T>& scale() const { return scale_; }

 private:
  T min_stddev_;
  Vector<T> mean_, scale_;
};

}  // namespace dropnet
