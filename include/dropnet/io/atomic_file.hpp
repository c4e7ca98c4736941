#pragma once
// replace_file_atomically(path, bytes, who): after it returns, `path` holds exactly `bytes`;
// if it throws, `path` is exactly what it was before (absent, or the previous file). Every file
// dropnet writes (model files, weights files, checkpoints) goes through it.
//
//   0. resolve `path` if it is a symbolic link            the link stays; its target is replaced
//   1. create the temporary (below) in the target's directory, O_EXCL, with the previous file's
//      permission bits (0666 & ~umask for a new file), and lock it (flock) while writing
//   2. write every byte, fsync (POSIX), close             the data is on disk before the name is
//   3. rename over the target                             atomic within one file system
//   4. fsync the directory (POSIX, best effort)           the rename itself survives a crash
//   5. remove stale temporaries of the same target (POSIX, best effort; see below)
// The temporary lives in the target's directory because rename is atomic only within a file
// system. On any failure (cannot create, disk full, I/O error, rename refused) the temporary is
// removed and FormatError("<who>: cannot write '<path>': <reason> (...unchanged)") is thrown.
//
// Temporaries are named "<name>.<hash>.<pid>.<n>.tmp" next to the target, where <name> is the
// target's file name cut to at most 64 bytes, <hash> 16 hex digits of the full name (FNV-1a), <pid>
// the writer's process id and <n> a retry counter. The name stays under 110 bytes whatever the
// target's, so any target name up to NAME_MAX can be saved. A crash (kill -9, power loss) between
// 1 and 3 leaves such a file behind, never a half-written target. The next successful save of
// the same target removes each of its temporaries whose writer is gone: the name matches the
// pattern exactly, the pid is not a live process, and no one holds the file's lock (a writer on
// another host sharing the directory holds it while it writes).
// Without POSIX (Windows) steps 0-2 run through <fstream> and std::filesystem, minus fsync, the
// mode, the lock and step 5.
//
// The owner of a replaced file becomes the saving user (a rename cannot keep it); its permission
// bits (rwx for user, group, others) are kept; set-id and sticky bits are not.

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>

#include "../core/error.hpp"

#if defined(__unix__) || defined(__APPLE__)
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#define DROPNET_POSIX_FILES 1
#endif

namespace dropnet::detail {

/// Removes a temporary file when a write fails part-way (unless released after the rename).
class TemporaryFile {
 public:
  /// Takes charge of removing `path`.
  explicit TemporaryFile(std::filesystem::path path) : path_(std::move(path)) {}
  TemporaryFile(const TemporaryFile&) = delete;
  TemporaryFile& operator=(const TemporaryFile&) = delete;
  ~TemporaryFile() {
    if (!path_.empty()) {
      std::error_code ignored;
      std::filesystem::remove(path_, ignored);
    }
  }
  /// The file was renamed into place: nothing to remove.
  void release() { path_.clear(); }
  /// The temporary's path.
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

/// Bytes of the target's name kept in its temporaries' names.
inline constexpr std::size_t temporary_name_prefix = 64;

/// "<name cut to 64 bytes>.<16 hex digits of FNV-1a(name)>.": what every temporary of the
/// target `file_name` starts with, and nothing else's (up to a 64-bit hash collision).
inline std::string temporary_prefix(const std::string& file_name) {
  std::uint64_t hash = 0xcbf29ce484222325ull;
  for (const char c : file_name) hash = (hash ^ static_cast<unsigned char>(c)) * 0x100000001b3ull;
  std::size_t cut = std::min(file_name.size(), temporary_name_prefix);
  while (cut > 0 && cut < file_name.size() && (file_name[cut] & 0xC0) == 0x80) --cut;  // UTF-8
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(hash));
  return file_name.substr(0, cut) + "." + hex + ".";
}

/// "<prefix><pid>.<attempt>.tmp" in the target's directory; unique across processes (pid) and,
/// within one, across concurrent saves (attempt, retried by the caller on EEXIST).
inline std::filesystem::path temporary_name(const std::filesystem::path& target, long pid,
                                            int attempt) {
  return target.parent_path() /
         concat(temporary_prefix(target.filename().string()), pid, ".", attempt, ".tmp");
}

/// What a symbolic link at `path` points to, followed to the end (at most 40 links, as the
/// kernel's ELOOP); `path` itself when it is not a link. A dangling link yields its target.
inline std::filesystem::path resolve_links(const std::filesystem::path& path,
                                           const std::string& who) {
  std::filesystem::path p = path;
  for (int hops = 0;; ++hops) {
    std::error_code ec;
    if (!std::filesystem::is_symlink(p, ec)) return p;
    if (hops == 40)
      throw FormatError(
          concat(who, ": cannot write '", path.string(), "': too many symbolic links"));
    const std::filesystem::path link = std::filesystem::read_symlink(p, ec);
    if (ec) return p;
    p = link.is_absolute() ? link : p.parent_path() / link;
  }
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

/// The pid in "<prefix><pid>.<digits>.tmp", or 0 when `name` is not exactly that.
inline long temporary_pid(const std::string& name, const std::string& prefix) {
  const std::string suffix = ".tmp";
  if (name.size() <= prefix.size() + suffix.size() || name.compare(0, prefix.size(), prefix) != 0 ||
      name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0)
    return 0;
  const std::string middle =
      name.substr(prefix.size(), name.size() - prefix.size() - suffix.size());
  const std::size_t dot = middle.find('.');
  const auto digits = [](const std::string& s) {
    return !s.empty() && s.size() <= 9 && s.find_first_not_of("0123456789") == std::string::npos;
  };
  if (dot == std::string::npos || !digits(middle.substr(0, dot)) || !digits(middle.substr(dot + 1)))
    return 0;
  return std::stol(middle.substr(0, dot));
}

/// True when no live process has pid `pid` (EPERM means it exists under another user).
inline bool process_gone(long pid) {
  return ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH;
}

/// Removes `file` if no one holds its lock; the lock is held while checking and removing.
inline void remove_if_unlocked(const std::filesystem::path& file) {
  const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return;
  if (::flock(fd, LOCK_EX | LOCK_NB) == 0) ::unlink(file.c_str());
  ::close(fd);
}

/// Step 5: removes the temporaries of `target` left by writers that are gone (best effort).
inline void remove_stale_temporaries(const std::filesystem::path& target) {
  const std::string prefix = temporary_prefix(target.filename().string());
  const std::filesystem::path dir = target.parent_path().empty() ? "." : target.parent_path();
  std::error_code ec;
  for (std::filesystem::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const long pid = temporary_pid(it->path().filename().string(), prefix);
    if (pid > 0 && pid != static_cast<long>(::getpid()) && process_gone(pid))
      remove_if_unlocked(it->path());
  }
}

/// The previous file's permission bits, or -1 when there is no previous file (then the new one
/// gets 0666 less the umask, as open(2) gives any new file).
inline int previous_mode(const std::filesystem::path& target) {
  struct stat st {};
  if (::stat(target.c_str(), &st) == 0 && S_ISREG(st.st_mode))
    return static_cast<int>(st.st_mode & 0777);
  return -1;
}

/// Step 1: an exclusively created, locked temporary next to `target`; returns its descriptor.
inline int create_temporary(const std::filesystem::path& target, std::filesystem::path& temp,
                            const std::string& who, const std::string& path) {
  const int mode = previous_mode(target);
  const long pid = static_cast<long>(::getpid());
  for (int attempt = 0;; ++attempt) {
    temp = temporary_name(target, pid, attempt);
    const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd >= 0) {
      (void)::flock(fd, LOCK_EX | LOCK_NB);  // advisory: tells step 5 of others "in use"
      if (mode >= 0) (void)::fchmod(fd, static_cast<mode_t>(mode));  // kept, umask not applied
      return fd;
    }
    if (errno != EEXIST || attempt == 99)
      throw_write_error(
          who, path,
          concat("cannot create a temporary file next to it (", std::strerror(errno), ")"));
  }
}

inline void replace_file_atomically(const std::string& path, const std::string& bytes,
                                    const std::string& who) {
  if (path.empty() || !std::filesystem::path(path).has_filename())
    throw_write_error(who, path, "not a file name");
  const std::filesystem::path target = resolve_links(path, who);
  std::filesystem::path temp;
  const int fd = create_temporary(target, temp, who, path);
  TemporaryFile guard(temp);
  int error = write_all(fd, bytes);
  if (error == 0 && ::fsync(fd) != 0) error = errno;  // data on disk before the rename
  if (::close(fd) != 0 && error == 0) error = errno;  // NFS reports write errors here
  if (error != 0) throw_write_error(who, path, std::strerror(error));
  if (::rename(temp.c_str(), target.c_str()) != 0)
    throw_write_error(who, path, concat("rename failed (", std::strerror(errno), ")"));
  guard.release();
  fsync_directory(target.parent_path());
  remove_stale_temporaries(target);
}

#else

inline void replace_file_atomically(const std::string& path, const std::string& bytes,
                                    const std::string& who) {
  if (path.empty() || !std::filesystem::path(path).has_filename())
    throw_write_error(who, path, "not a file name");
  const std::filesystem::path target = resolve_links(path, who);
  const std::filesystem::path temp = temporary_name(target, 0, 0);
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
