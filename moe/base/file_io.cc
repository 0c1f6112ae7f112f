#include "moe/base/file_io.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include "absl/strings/str_cat.h"

namespace taskmoe {
namespace {

// Writes all of `bytes` to `fd`; false with errno set on failure.
bool WriteAll(int fd, const std::string& bytes) {
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    done += static_cast<size_t>(n);
  }
  return true;
}

namespace fs = std::filesystem;

// `path` with symbolic links, "." and ".." resolved as far as it exists.
fs::path Resolved(const std::string& path) {
  std::error_code error;
  fs::path resolved = fs::weakly_canonical(fs::absolute(path, error), error);
  return error ? fs::absolute(path, error).lexically_normal() : resolved;
}

// Whether `inner` is `outer` or lies inside it (both resolved).
bool IsWithin(const fs::path& inner, const fs::path& outer) {
  const fs::path relative = inner.lexically_relative(outer);
  return !relative.empty() && *relative.begin() != "..";
}

// Why no file can be created at `path`: a parent directory that is missing or a file is named
// as such (not as "permission denied" or a temporary file's name), other reasons by errno.
absl::Status CreateError(int error_number, const std::string& path) {
  if (error_number == ENOENT || error_number == ENOTDIR) {
    const std::string parent = fs::path(path).parent_path().string();
    const absl::Status directory = CheckDirectory(parent.empty() ? "." : parent, "directory");
    if (!directory.ok()) {
      return absl::Status(directory.code(),
                          absl::StrCat("cannot write ", path, ": ", directory.message()));
    }
  }
  return ErrnoError(error_number, "cannot write", path);
}

}  // namespace

absl::Status ErrnoError(int error_number, absl::string_view what, const std::string& path) {
  const std::string message = absl::StrCat(what, " ", path, ": ", std::strerror(error_number));
  switch (error_number) {
    case ENOENT:
    case ENOTDIR:
      return absl::NotFoundError(message);
    case EACCES:
    case EPERM:
    case EROFS:
      return absl::PermissionDeniedError(message);
    case ENOSPC:
    case EDQUOT:
    case EFBIG:
      return absl::ResourceExhaustedError(message);
    default:
      return absl::InternalError(message);
  }
}

absl::StatusOr<std::string> ReadFileBytes(const std::string& path) {
  std::error_code error;
  if (std::filesystem::is_directory(path, error)) {
    return absl::InvalidArgumentError(absl::StrCat(path, " is a directory, expected a file"));
  }
  std::ifstream file(path, std::ios::binary);
  if (!file) {
    const int error_number = errno;
    return ErrnoError(error_number, "cannot open", path);
  }
  std::stringstream content;
  content << file.rdbuf();
  return content.str();
}

absl::Status WriteFileAtomically(const std::string& path, const std::string& bytes) {
  // A name no other writer uses (this process's id and a counter), created exclusively.
  static std::atomic<uint64_t> counter{0};
  std::string temporary;
  int fd = -1;
  while (fd < 0) {
    temporary = absl::StrCat(path, ".tmp.", ::getpid(), ".", counter++);
    fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    const int error_number = errno;
    if (fd < 0 && error_number != EEXIST) return CreateError(error_number, path);
  }
  const bool written = WriteAll(fd, bytes) && ::fsync(fd) == 0;
  const int write_errno = errno;
  if (::close(fd) != 0 || !written) {
    const int error_number = written ? errno : write_errno;
    std::remove(temporary.c_str());
    return ErrnoError(error_number, "cannot write", path);
  }
  if (std::rename(temporary.c_str(), path.c_str()) != 0) {
    const int error_number = errno;
    std::remove(temporary.c_str());
    return ErrnoError(error_number, absl::StrCat("cannot rename ", temporary, " to"), path);
  }
  return absl::OkStatus();
}

absl::Status CheckDirectory(const std::string& path, absl::string_view what) {
  std::error_code error;
  if (fs::is_directory(path, error)) return absl::OkStatus();
  if (fs::exists(path, error)) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " ", path, " is a file, expected a directory"));
  }
  return absl::NotFoundError(absl::StrCat(what, " ", path, " does not exist"));
}

absl::Status CreateDirectories(const std::string& path) {
  std::error_code error;
  fs::create_directories(path, error);
  if (!error) return absl::OkStatus();
  for (fs::path part = path; !part.empty() && part != part.parent_path();
       part = part.parent_path()) {
    std::error_code ignored;
    if (fs::exists(part, ignored) && !fs::is_directory(part, ignored)) {
      return absl::FailedPreconditionError(absl::StrCat(
          "cannot create directory ", path, ": ", part.string(), " is a file, not a directory"));
    }
  }
  return ErrnoError(error.value(), "cannot create directory", path);
}

absl::Status CheckOutputsSpareInputs(const std::vector<std::string>& outputs,
                                     const std::vector<std::string>& inputs) {
  for (const std::string& output : outputs) {
    if (output.empty()) continue;
    const fs::path resolved_output = Resolved(output);
    for (const std::string& input : inputs) {
      std::error_code error;
      if (input.empty() || !fs::exists(input, error)) continue;
      if (IsWithin(Resolved(input), resolved_output) || fs::equivalent(input, output, error)) {
        return absl::InvalidArgumentError(absl::StrCat(
            "the output ", output, " would overwrite the input ", input,
            "; write the output somewhere else"));
      }
    }
  }
  return absl::OkStatus();
}

absl::Status CopyFileAtomically(const std::string& from, const std::string& to) {
  absl::StatusOr<std::string> bytes = ReadFileBytes(from);
  if (!bytes.ok()) return bytes.status();
  return WriteFileAtomically(to, *bytes);
}

}  // namespace taskmoe
