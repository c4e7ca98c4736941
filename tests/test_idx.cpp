// The IDX reader and the Fashion-MNIST loader on small files written here: valid (gzip and raw),
// truncated, wrong magic, trailing bytes, corrupt gzip, concatenated gzip members, junk after
// the gzip data, headers announcing more than the file holds (with the largest allocation
// watched), mismatched counts; and the pixel normalization helpers.

// The allocation witness (a counting operator new, shared with test_allocation.cpp), which
// shows the largest allocation a file's header makes the reader ask for.
// clang-format off
#include "allocation_witness.hpp"  // first: it configures Eigen
// clang-format on

#include <doctest/doctest.h>
#include <zlib.h>

#include <algorithm>
#include <dropnet/io/fashion_mnist.hpp>
#include <dropnet/io/idx.hpp>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

using namespace dropnet;
namespace fs = std::filesystem;

namespace {

using Bytes = std::vector<std::uint8_t>;

/// A fresh directory under the system's temporary directory, removed with the object.
class TempDir {
 public:
  TempDir() {
    Generator gen(static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(this)));
    path_ = fs::temp_directory_path() / ("dropnet_test_idx_" + std::to_string(gen.next_u64()));
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  fs::path path_;
};

void put_u32(Bytes& out, std::uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(std::uint8_t(v >> shift));
}

/// An IDX file of unsigned bytes: magic 0x0000 08 rank, the dims, then `data`.
Bytes idx_bytes(const std::vector<std::uint32_t>& dims, const Bytes& data) {
  Bytes out;
  put_u32(out, 0x0800u | std::uint32_t(dims.size()));
  for (auto d : dims) put_u32(out, d);
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

/// `count` images of h x w whose pixel k of image n is (10 n + k) mod 256.
Bytes image_file(std::uint32_t count, std::uint32_t h, std::uint32_t w) {
  Bytes data;
  for (std::uint32_t n = 0; n < count; ++n)
    for (std::uint32_t k = 0; k < h * w; ++k) data.push_back(std::uint8_t((10 * n + k) % 256));
  return idx_bytes({count, h, w}, data);
}

Bytes label_file(const Bytes& labels) { return idx_bytes({std::uint32_t(labels.size())}, labels); }

void write_raw(const std::string& path, const Bytes& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
}

void write_gzip(const std::string& path, const Bytes& bytes) {
  gzFile file = gzopen(path.c_str(), "wb");
  REQUIRE(file != nullptr);
  REQUIRE(gzwrite(file, bytes.data(), unsigned(bytes.size())) == int(bytes.size()));
  REQUIRE(gzclose(file) == Z_OK);
}

Bytes read_raw(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), {});
}

/// The message of the FormatError `f` throws; fails the test if it throws nothing.
template <class F>
std::string format_error(F f) {
  try {
    f();
  } catch (const FormatError& e) {
    return e.what();
  }
  FAIL("expected a FormatError");
  return {};
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("read_idx reads raw and gzip files alike") {
  TempDir dir;
  const Bytes bytes = image_file(3, 2, 2);
  write_raw(dir.file("images"), bytes);
  write_gzip(dir.file("images.gz"), bytes);
  for (const char* name : {"images", "images.gz"}) {
    CAPTURE(name);
    const IdxArray array = read_idx(dir.file(name), 3);
    CHECK(array.dims == std::vector<std::uint32_t>{3, 2, 2});
    CHECK(array.count() == 3);
    CHECK(array.item_size() == 4);
    CHECK(array.bytes == Bytes(bytes.begin() + 16, bytes.end()));
  }
}

TEST_CASE("load_idx_images puts one image per column, pixels / 255") {
  TempDir dir;
  write_gzip(dir.file("images.gz"), image_file(3, 2, 2));
  const Matrix<float> x = load_idx_images<float>(dir.file("images.gz"));
  REQUIRE(x.rows() == 4);
  REQUIRE(x.cols() == 3);
  for (Index n = 0; n < 3; ++n)
    for (Index k = 0; k < 4; ++k) CHECK(x(k, n) == doctest::Approx((10 * n + k) / 255.0));
}

TEST_CASE("load_idx_dataset pairs images with labels and checks the counts") {
  TempDir dir;
  write_gzip(dir.file("images.gz"), image_file(3, 2, 2));
  write_raw(dir.file("labels"), label_file({2, 0, 1}));
  const auto data = load_idx_dataset<double>(dir.file("images.gz"), dir.file("labels"), 3);
  CHECK(data.size() == 3);
  CHECK(data.height == 2);
  CHECK(data.width == 2);
  CHECK(data.labels(0) == 2);
  CHECK(data.labels(2) == 1);

  write_raw(dir.file("four_labels"), label_file({0, 1, 2, 0}));
  const std::string message = format_error(
      [&] { load_idx_dataset<double>(dir.file("images.gz"), dir.file("four_labels")); });
  CHECK(contains(message, "images.gz holds 3 images"));
  CHECK(contains(message, "four_labels holds 4 labels"));
}

TEST_CASE("a missing file is reported with its path") {
  TempDir dir;
  const std::string message = format_error([&] { read_idx(dir.file("nothing.gz"), 1); });
  CHECK(contains(message, dir.file("nothing.gz")));
  CHECK(contains(message, "cannot open"));
}

TEST_CASE("a wrong magic number is reported with the expected one") {
  TempDir dir;
  Bytes bytes = label_file({1, 2});
  write_raw(dir.file("labels"), bytes);
  SUBCASE("labels read as images (wrong rank)") {
    const std::string message = format_error([&] { read_idx(dir.file("labels"), 3); });
    CHECK(contains(message, "bad IDX magic number 0x00000801, expected 0x00000803"));
  }
  SUBCASE("a float array (type 0x0D)") {
    bytes[2] = 0x0D;
    write_gzip(dir.file("floats.gz"), bytes);
    const std::string message = format_error([&] { read_idx(dir.file("floats.gz"), 1); });
    CHECK(contains(message, "floats.gz: bad IDX magic number 0x00000d01, expected 0x00000801"));
  }
  SUBCASE("not an IDX file at all") {
    write_raw(dir.file("text"), Bytes{'h', 'e', 'l', 'l', 'o', '\n'});
    CHECK(contains(format_error([&] { read_idx(dir.file("text"), 1); }), "bad IDX magic number"));
  }
}

TEST_CASE("truncated files are reported with the expected and found sizes") {
  TempDir dir;
  const Bytes bytes = image_file(3, 2, 2);  // 16 header + 12 data bytes
  SUBCASE("data cut short, raw and gzip") {
    const Bytes cut(bytes.begin(), bytes.end() - 5);
    write_raw(dir.file("cut"), cut);
    write_gzip(dir.file("cut.gz"), cut);
    for (const char* name : {"cut", "cut.gz"}) {
      CAPTURE(name);
      const std::string message = format_error([&] { read_idx(dir.file(name), 3); });
      CHECK(contains(message, "header announces 3 x 2 x 2 = 12 data bytes (28 bytes in all"));
      CHECK(contains(message, "found 23 (truncated)"));
    }
  }
  SUBCASE("header cut short") {
    write_raw(dir.file("header"), Bytes(bytes.begin(), bytes.begin() + 9));
    CHECK(contains(format_error([&] { read_idx(dir.file("header"), 3); }),
                   "truncated IDX header: expected 12 dimension bytes after the magic number, "
                   "found 5"));
  }
  SUBCASE("empty file") {
    write_raw(dir.file("empty"), {});
    CHECK(contains(format_error([&] { read_idx(dir.file("empty"), 3); }), "(empty file)"));
  }
  SUBCASE("gzip stream cut short (a partial download)") {
    Bytes big = image_file(200, 28, 28);
    write_gzip(dir.file("full.gz"), big);
    const Bytes compressed = read_raw(dir.file("full.gz"));
    write_raw(dir.file("partial.gz"),
              Bytes(compressed.begin(), compressed.begin() + compressed.size() / 2));
    const std::string message = format_error([&] { read_idx(dir.file("partial.gz"), 3); });
    CHECK(contains(message, "partial.gz"));
    CHECK(contains(message, "corrupt gzip data (unexpected end of the gzip stream"));
  }
}

TEST_CASE("bytes after the announced data are reported") {
  TempDir dir;
  Bytes bytes = image_file(3, 2, 2);
  bytes.insert(bytes.end(), {7, 7, 7});
  write_gzip(dir.file("long.gz"), bytes);
  const std::string message = format_error([&] { read_idx(dir.file("long.gz"), 3); });
  CHECK(contains(message, "28 bytes in all once decompressed), found 31 (3 unexpected bytes"));
}

TEST_CASE("a corrupt gzip stream is reported") {
  TempDir dir;
  write_gzip(dir.file("good.gz"), image_file(50, 28, 28));
  Bytes compressed = read_raw(dir.file("good.gz"));
  compressed[compressed.size() - 6] ^= 0xFF;  // inside the CRC-32 trailer
  write_raw(dir.file("bad.gz"), compressed);
  const std::string message = format_error([&] { read_idx(dir.file("bad.gz"), 3); });
  CHECK(contains(message, "bad.gz: corrupt gzip data (incorrect data check)"));
}

TEST_CASE("a header announcing more bytes than 64 bits can count is reported, not allocated") {
  TempDir dir;
  write_raw(dir.file("huge"), idx_bytes({0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu}, {1, 2, 3}));
  CHECK(contains(format_error([&] { read_idx(dir.file("huge"), 3); }), "the header is corrupt"));
  // No items, each of 2^64 bytes: the total is 0 but the image size overflowed the matrix's rows.
  write_raw(dir.file("empty_huge"), idx_bytes({0, 0xFFFFFFFFu, 0xFFFFFFFFu}, {}));
  CHECK(contains(format_error([&] { load_idx_images<float>(dir.file("empty_huge")); }),
                 "0 x 4294967295 x 4294967295, over 2^62 data bytes: the header is corrupt"));
  write_raw(dir.file("big"), idx_bytes({60000, 28, 28}, {1, 2, 3}));  // plausible but truncated
  CHECK(contains(format_error([&] { read_idx(dir.file("big"), 3); }), "found 19 (truncated)"));
}

TEST_CASE(
    "a header announcing more than the file holds fails as truncated without its allocation") {
  // 60000 x 28 x 28 announced (47 MB) over 1,000 bytes: the reader used to reserve the 47 MB and
  // zero-fill 16 MB before finding the file short, 10 s per input under the fuzzer's sanitizers.
  TempDir dir;
  const Bytes bytes = idx_bytes({60000, 28, 28}, Bytes(1000, 7));
  write_raw(dir.file("short"), bytes);
  write_gzip(dir.file("short.gz"), bytes);
  for (const std::string name : {"short", "short.gz"}) {
    CAPTURE(name);
    g_largest_allocation = 0;
    std::string message;
    try {
      read_idx(dir.file(name), 3);
    } catch (const FormatError& e) {
      message = e.what();
    }
    const std::size_t largest = g_largest_allocation;
    CHECK(contains(message, "= 47040000 data bytes"));
    CHECK(contains(message, "found 1016 (truncated)"));
    CHECK(largest < (std::size_t{1} << 20));  // the 64 KB read buffer, and 2 KB read
  }
}

TEST_CASE("a whole file is read into a buffer of exactly its announced size") {
  TempDir dir;
  const Bytes bytes = image_file(300, 28, 28);  // 235,200 data bytes: six doublings from 4 KB
  write_gzip(dir.file("images.gz"), bytes);
  g_largest_allocation = 0;
  const IdxArray array = read_idx(dir.file("images.gz"), 3);
  CHECK(array.bytes == Bytes(bytes.begin() + 16, bytes.end()));
  CHECK(array.bytes.capacity() == array.bytes.size());
  CHECK(g_largest_allocation == array.bytes.size());
}

TEST_CASE("concatenated gzip members read as one stream, as gunzip reads them") {
  TempDir dir;
  const Bytes bytes = image_file(3, 2, 2);
  const auto middle = bytes.begin() + 20;  // inside the data: the split is no IDX boundary
  write_gzip(dir.file("a.gz"), Bytes(bytes.begin(), middle));
  write_gzip(dir.file("b.gz"), Bytes(middle, bytes.end()));
  Bytes joined = read_raw(dir.file("a.gz"));
  const Bytes second = read_raw(dir.file("b.gz"));
  joined.insert(joined.end(), second.begin(), second.end());
  write_raw(dir.file("joined.gz"), joined);
  CHECK(read_idx(dir.file("joined.gz"), 3).bytes == Bytes(bytes.begin() + 16, bytes.end()));
}

TEST_CASE("bytes after the gzip data that are not another gzip member are refused") {
  // zlib's gzread dropped them without a word: a file with anything appended loaded as whole.
  TempDir dir;
  write_gzip(dir.file("good.gz"), label_file({1, 2, 3}));
  const Bytes compressed = read_raw(dir.file("good.gz"));
  for (const Bytes& junk : {Bytes{'j', 'u', 'n', 'k'}, Bytes{0, 0, 0, 0}, Bytes{0x1f}}) {
    Bytes bytes = compressed;
    bytes.insert(bytes.end(), junk.begin(), junk.end());
    write_raw(dir.file("junk.gz"), bytes);
    const std::string message = format_error([&] { read_idx(dir.file("junk.gz"), 1); });
    CHECK(contains(message, "junk.gz: bytes after the end of the gzip data at offset " +
                                std::to_string(compressed.size()) +
                                " are not another gzip member"));
  }
}

TEST_CASE("zero image dimensions and out-of-range labels are rejected") {
  TempDir dir;
  write_raw(dir.file("flat"), idx_bytes({2, 0, 28}, {}));
  CHECK(contains(format_error([&] { read_idx(dir.file("flat"), 3); }), "IDX dimension 1 is 0"));
  write_raw(dir.file("labels"), label_file({1, 10, 3}));
  CHECK(contains(format_error([&] { load_idx_labels(dir.file("labels"), 10); }),
                 "label 10 of item 1 is out of range, expected 0 to 9"));
  CHECK(load_idx_labels(dir.file("labels")).size() == 3);  // no range given, no check
}

TEST_CASE("normalize maps [0, 1] to [-1, 1] with mean = stddev = 0.5") {
  Matrix<float> x(1, 3);
  x << 0.f, 0.5f, 1.f;
  normalize(x, 0.5f, 0.5f);
  CHECK(x(0, 0) == doctest::Approx(-1));
  CHECK(x(0, 1) == doctest::Approx(0));
  CHECK(x(0, 2) == doctest::Approx(1));
  CHECK_THROWS_AS(normalize(x, 0.5f, 0.f), InvalidArgument);
}

TEST_CASE("PixelStandardizer centres and scales each pixel with training statistics") {
  Matrix<double> train(2, 4);
  train << 0.0, 0.2, 0.4, 0.6,  // mean 0.3, stddev sqrt(0.05)
      0.0, 0.0, 0.0, 0.0;       // blank pixel: stddev floored
  PixelStandardizer<double> standardizer(0.1);
  standardizer.fit(train);
  Matrix<double> fitted = train;
  standardizer.apply(fitted);
  CHECK(fitted.row(0).mean() == doctest::Approx(0).epsilon(1e-12));
  CHECK((fitted.row(0).array().square().mean()) == doctest::Approx(1));
  Matrix<double> test(2, 1);
  test << 0.3, 0.5;
  standardizer.apply(test);
  CHECK(test(0, 0) == doctest::Approx(0));
  CHECK(test(1, 0) == doctest::Approx(5));  // 0.5 / floor 0.1
  Matrix<double> wrong(3, 1);
  CHECK_THROWS_AS(standardizer.apply(wrong), InvalidArgument);
}

TEST_CASE("fashion_mnist::files finds gzip or raw files and names what is missing") {
  TempDir dir;
  write_gzip(dir.file("t10k-images-idx3-ubyte.gz"), image_file(2, 28, 28));
  write_raw(dir.file("t10k-labels-idx1-ubyte"), label_file({9, 0}));
  const auto paths = fashion_mnist::files(dir.file(""), fashion_mnist::Part::test);
  CHECK(contains(paths.images, "t10k-images-idx3-ubyte.gz"));
  CHECK(contains(paths.labels, "t10k-labels-idx1-ubyte"));
  const auto test = fashion_mnist::load<float>(dir.file(""), fashion_mnist::Part::test);
  CHECK(test.images.rows() == 784);
  CHECK(test.labels(0) == 9);

  const std::string message =
      format_error([&] { fashion_mnist::files(dir.file(""), fashion_mnist::Part::train); });
  CHECK(contains(message, "no train-images-idx3-ubyte.gz (nor train-images-idx3-ubyte)"));
}

TEST_CASE("fashion_mnist::load rejects images that are not 28 x 28") {
  TempDir dir;
  write_gzip(dir.file("train-images-idx3-ubyte.gz"), image_file(2, 2, 2));
  write_gzip(dir.file("train-labels-idx1-ubyte.gz"), label_file({1, 2}));
  CHECK(contains(
      format_error([&] { fashion_mnist::load<float>(dir.file(""), fashion_mnist::Part::train); }),
      "images are 2x2, expected 28x28"));
}

TEST_CASE("fashion_mnist::split is a seeded permutation into disjoint parts") {
  LabeledImages<float> data;
  data.images.resize(1, 10);
  data.labels.resize(10);
  for (Index i = 0; i < 10; ++i) {
    data.images(0, i) = float(i);
    data.labels(i) = int(i);
  }
  Generator gen_a(42), gen_b(42);
  const auto a = fashion_mnist::split(data, 3, gen_a);
  const auto b = fashion_mnist::split(data, 3, gen_b);
  CHECK(a.train.size() == 7);
  CHECK(a.valid.size() == 3);
  CHECK(a.train.labels == b.train.labels);
  std::set<int> seen;
  for (Index i = 0; i < 7; ++i) seen.insert(a.train.labels(i));
  for (Index i = 0; i < 3; ++i) seen.insert(a.valid.labels(i));
  CHECK(seen.size() == 10);
  for (Index i = 0; i < 7; ++i) CHECK(a.train.images(0, i) == float(a.train.labels(i)));
  CHECK(fashion_mnist::take(a.train, 4).size() == 4);
  CHECK(fashion_mnist::take(a.train, 100).size() == 7);
  CHECK_THROWS_AS(fashion_mnist::split(data, 10, gen_a), InvalidArgument);
}

TEST_CASE("the installed Fashion-MNIST test set, when present, is whole and balanced") {
  const std::string dir = fashion_mnist::default_directory;
  if (!fs::exists(fs::path(dir) / "t10k-images-idx3-ubyte.gz")) return;
  const auto test = fashion_mnist::load<float>(dir, fashion_mnist::Part::test);
  CHECK(test.size() == fashion_mnist::test_size);
  CHECK(test.images.rows() == fashion_mnist::features);
  CHECK(test.images.minCoeff() >= 0.f);
  CHECK(test.images.maxCoeff() <= 1.f);
  for (int c = 0; c < fashion_mnist::classes; ++c)
    CHECK((test.labels.array() == c).count() == 1000);
}
