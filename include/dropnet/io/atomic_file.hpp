#pragma once
// replace_file_atomically(path, bytes, who): after it returns, `path` holds exactly `bytes`;
// if it throws, `path` is exactly what it was before (absent, or the previous file).
//
//   1. create "<path>.tmp.<pid>.<ticks>.<n>" in the same directory (O_EXCL: never reuse a name)
//   2. write every byte, fsync (POSIX), close          the data is on disk before the name is
//   3. rename over `path`                              atomic within one file system
//   4. fsync the directory (POSIX, best effort)        the rename itself survives a crash
// The temporary lives in the target's directory because rename is atomic only within a file
// system. On any failure (cannot create, disk full, I/O error, rename refused) the temporary is
// removed and FormatError("<who>: cannot write '<path>': <reason> (...unchanged)") is thrown.
// A crash between 1 and 3 can leave a stray temporary behind, never a half-written target.
// Without POSIX (Windows) the same steps run through <fstream> and std::filesystem, minus fsync.

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>

#include "../core/error.hpp"

#if defined(__unix__) || defined(__APPLE__)
#include <fcntl.h>
#include <unistd.h>
#define DROPNET_POSIX_FILES 1
#endif

namespace dropnet::detail {

/// Removes a temporary file when a write fails part-way (unless released after the rename).
class TemporaryFile {
 public:
  explicit TemporaryFile(std::filesystem::path path) : path_(std::move(path)) {}
  TemporaryFile(const TemporaryFile&) = delete;
  TemporaryFile& operator=(const TemporaryFile&) = delete;
  ~TemporaryFile() {
    if (!path_.empty()) {
      std::error_code ignored;
      std::filesystem::remove(path_, ignored);
    }
  }
  void release() { path_.clear(); }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

/// "<target>.tmp.<pid>.<ticks>.<attempt>": unique across processes (pid), calls (ticks) and
/// collisions (attempt, retried by the caller on EEXIST).
inline std::filesystem::path temporary_name(const std::filesystem::path& target, int attempt) {
  long pid = 0;
#ifdef DROPNET_POSIX_FILES
  pid = static_cast<long>(::getpid());
#endif
  const auto ticks = std::chrono::steady_clock::now().time_since_epoch().count();
  std::filesystem::path temp = target;
  temp += concat(".tmp.", pid, ".", ticks, ".", attempt);
  return temp;
}

[[noreturn]] inline void throw_write_error(const std::string& who, const std::string& path,
                                           const std::string& reason) {
  throw FormatError(concat(who, ": cannot write '", path, "': ", reason,
                           " (any previous file at that path is unchanged)"));
}

#ifdef DROPNET_POSIX_FILES

/// write(2) until every byte is out; returns 0 or the errno of the failure.
inline int write_all(int fd, const std::string& bytes) {
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return n < 0 ? errno : EIO;
    done += static_cast<std::size_t>(n);
  }
  return 0;
}

inline void fsync_directory(const std::filesystem::path& dir) {
  const int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;  // best effort: some file systems do not open directories
  (void)::fsync(fd);
  ::close(fd);
}

inline void replace_file_atomically(const std::string& path, const std::string& bytes,
                                    const std::string& who) {
  const std::filesystem::path target(path);
  if (path.empty() || !target.has_filename()) throw_write_error(who, path, "not a file name");
  int fd = -1;
  std::filesystem::path temp;
  for (int attempt = 0; fd < 0; ++attempt) {
    temp = temporary_name(target, attempt);
    fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0 && (errno != EEXIST || attempt == 99))
      throw_write_error(who, path, concat("cannot create a temporary file next to it (",
                                          std::strerror(errno), ")"));
  }
  TemporaryFile guard(temp);
  int error = write_all(fd, bytes);
  if (error == 0 && ::fsync(fd) != 0) error = errno;  // data on disk before the rename
  if (::close(fd) != 0 && error == 0) error = errno;  // NFS reports write errors here
  if (error != 0) throw_write_error(who, path, std::strerror(error));
  if (::rename(temp.c_str(), target.c_str()) != 0)
    throw_write_error(who, path, concat("rename failed (", std::strerror(errno), ")"));
  guard.release();
  fsync_directory(target.parent_path());
}

#else

inline void replace_file_atomically(const std::string& path, const std::string& bytes,
                                    const std::string& who) {
  const std::filesystem::path target(path);
  if (path.empty() || !target.has_filename()) throw_write_error(who, path, "not a file name");
  const std::filesystem::path temp = temporary_name(target, 0);
  TemporaryFile guard(temp);
  {
    std::ofstream out(temp, std::ios::binary | std::ios::trunc);
    if (!out) throw_write_error(who, path, "cannot create a temporary file next to it");
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.flush();
    if (!out) throw_write_error(who, path, "write failed (disk full?)");
  }
  std::error_code renamed;
  std::filesystem::rename(temp, target, renamed);
  if (renamed) throw_write_error(who, path, "rename failed (" + renamed.message() + ")");
  guard.release();
}

#endif

}  // namespace dropnet::detail
