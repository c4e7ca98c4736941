// libFuzzer target: the IDX reader (io/idx.hpp), raw and gzip.
//
// The input is written to an in-memory file (memfd) and read back through the public entry
// points by its /proc/self/fd path, as a user's file would be. Every call must succeed or
// throw FormatError; anything else escapes and is reported as a crash. On success the results
// are checked for consistency (dimensions against data size, labels in range).

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <dropnet/io/idx.hpp>
#include <string>

using namespace dropnet;

namespace {

/// One memfd for the whole run, rewritten for every input.
class MemoryFile {
 public:
  MemoryFile() : fd_(static_cast<int>(::memfd_create("idx", 0))) {
    if (fd_ < 0) std::abort();
    path_ = "/proc/self/fd/" + std::to_string(fd_);
  }
  void write(const std::uint8_t* data, std::size_t size) {
    if (::ftruncate(fd_, 0) != 0) std::abort();
    std::size_t done = 0;
    while (done < size) {
      const ssize_t n = ::pwrite(fd_, data + done, size - done, static_cast<off_t>(done));
      if (n <= 0) std::abort();
      done += static_cast<std::size_t>(n);
    }
  }
  const std::string& path() const { return path_; }

 private:
  int fd_;
  std::string path_;
};

template <class F>
void expect_format_error_or_success(F&& f) {
  try {
    f();
  } catch (const FormatError&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static MemoryFile file;
  file.write(data, size);
  const std::string& path = file.path();
  for (int rank : {1, 3}) {
    expect_format_error_or_success([&] {
      const IdxArray a = read_idx(path, rank);
      std::uint64_t expected = 1;
      for (std::uint32_t d : a.dims) expected *= d;
      if (a.dims.size() != static_cast<std::size_t>(rank) || a.bytes.size() != expected) std::abort();
    });
  }
  expect_format_error_or_success([&] {
    const Labels labels = load_idx_labels(path, 10);
    for (Index i = 0; i < labels.size(); ++i)
      if (labels(i) < 0 || labels(i) >= 10) std::abort();
  });
  expect_format_error_or_success([&] {
    const Matrix<float> images = load_idx_images<float>(path);
    if (images.size() > 0 && (images.minCoeff() < 0.0f || images.maxCoeff() > 1.0f)) std::abort();
  });
  expect_format_error_or_success([&] { load_idx_dataset<double>(path, path, 10); });
  return 0;
}
