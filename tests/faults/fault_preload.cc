// Faults at exact moments of a tool's file writes, for the fault tests: preloaded into the tool
// (LD_PRELOAD), it wraps libc's open/write/close and, for files whose path contains one of the
// '|'-separated substrings of TASKMOE_FAULT_PATHS, injects
//   TASKMOE_FAULT_FSIZE=<bytes>        a full disk: when such a file is opened, RLIMIT_FSIZE
//                                      becomes <bytes>, so its writes fail with EFBIG when the
//                                      parent ignores SIGXFSZ (the limit then holds for the
//                                      rest of the process, like a disk that stays full);
//   TASKMOE_FAULT_KILL_AT_BYTE=<n>     a kill: the process writes the first n bytes that go to
//                                      such files (counted over the whole run) and SIGKILLs
//                                      itself, half-way through a write() when n falls there.
// The tool itself is not changed: the faults are the kernel's own (EFBIG, SIGKILL); the shim
// only chooses the moment, which polling from outside cannot do for writes of a few
// microseconds. TaskMoE writes every file through open/write (moe/base/file_io.cc).
#include <dlfcn.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

constexpr int kMaxTrackedFd = 4096;

struct Faults {
  std::vector<std::string> paths;
  long long fsize = -1;         // RLIMIT_FSIZE at the open of a matching file; -1: none
  long long kill_at_byte = -1;  // -1: no kill
  long long written = 0;        // bytes written to matching files so far
  bool tracked[kMaxTrackedFd] = {};
};

long long EnvNumber(const char* name) {
  const char* value = std::getenv(name);
  return value == nullptr ? -1 : std::atoll(value);
}

Faults& TheFaults() {
  static Faults* faults = [] {
    auto* f = new Faults;
    if (const char* paths = std::getenv("TASKMOE_FAULT_PATHS")) {
      std::string rest = paths;
      for (size_t bar; (bar = rest.find('|')) != std::string::npos; rest.erase(0, bar + 1)) {
        f->paths.push_back(rest.substr(0, bar));
      }
      f->paths.push_back(rest);
    }
    f->fsize = EnvNumber("TASKMOE_FAULT_FSIZE");
    f->kill_at_byte = EnvNumber("TASKMOE_FAULT_KILL_AT_BYTE");
    return f;
  }();
  return *faults;
}

bool Matches(const char* path) {
  if (path == nullptr) return false;
  for (const std::string& part : TheFaults().paths) {
    if (!part.empty() && std::strstr(path, part.c_str()) != nullptr) return true;
  }
  return false;
}

template <typename Function>
Function Next(const char* name) {
  return reinterpret_cast<Function>(dlsym(RTLD_NEXT, name));
}

int OpenThrough(const char* name, const char* path, int flags, mode_t mode) {
  using OpenFunction = int (*)(const char*, int, ...);
  const int fd = Next<OpenFunction>(name)(path, flags, mode);
  if (fd < 0 || !Matches(path)) return fd;
  Faults& faults = TheFaults();
  if (fd < kMaxTrackedFd) faults.tracked[fd] = true;
  if (faults.fsize >= 0) {
    rlimit limit;
    getrlimit(RLIMIT_FSIZE, &limit);
    limit.rlim_cur = static_cast<rlim_t>(faults.fsize);
    setrlimit(RLIMIT_FSIZE, &limit);
  }
  return fd;
}

mode_t ModeArgument(int flags, va_list arguments) {
  return (flags & (O_CREAT | O_TMPFILE)) != 0 ? static_cast<mode_t>(va_arg(arguments, int)) : 0;
}

}  // namespace

extern "C" {

int open(const char* path, int flags, ...) {
  va_list arguments;
  va_start(arguments, flags);
  const mode_t mode = ModeArgument(flags, arguments);
  va_end(arguments);
  return OpenThrough("open", path, flags, mode);
}

int open64(const char* path, int flags, ...) {
  va_list arguments;
  va_start(arguments, flags);
  const mode_t mode = ModeArgument(flags, arguments);
  va_end(arguments);
  return OpenThrough("open64", path, flags, mode);
}

ssize_t write(int fd, const void* data, size_t count) {
  using WriteFunction = ssize_t (*)(int, const void*, size_t);
  static const WriteFunction real_write = Next<WriteFunction>("write");
  Faults& faults = TheFaults();
  if (faults.kill_at_byte < 0 || fd < 0 || fd >= kMaxTrackedFd || !faults.tracked[fd]) {
    return real_write(fd, data, count);
  }
  const long long left = faults.kill_at_byte - faults.written;
  if (static_cast<long long>(count) < left) {
    const ssize_t done = real_write(fd, data, count);
    if (done > 0) faults.written += done;
    return done;
  }
  if (left > 0) real_write(fd, data, static_cast<size_t>(left));
  raise(SIGKILL);
  return -1;  // not reached
}

int close(int fd) {
  using CloseFunction = int (*)(int);
  static const CloseFunction real_close = Next<CloseFunction>("close");
  if (fd >= 0 && fd < kMaxTrackedFd) TheFaults().tracked[fd] = false;
  return real_close(fd);
}

}  // extern "C"
