#ifndef TASKMOE_TESTS_FAULTS_CHILD_PROCESS_H_
#define TASKMOE_TESTS_FAULTS_CHILD_PROCESS_H_

// A tool binary run as a child process that a fault test can kill, with a bound on how long it
// may run. Output comes through a pipe, not a file: a child under RLIMIT_FSIZE could not write
// a file past the limit, and its error message is what the tests read.

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <string>
#include <vector>

#include "glog/logging.h"

namespace taskmoe::testing {

struct ChildOptions {
  std::vector<std::string> argv;         // argv[0]: the binary's path
  std::vector<std::string> environment;  // NAME=VALUE set in the child, beside the inherited
  // A full disk is an error, not a signal: a write past RLIMIT_FSIZE fails with EFBIG.
  bool ignore_sigxfsz = false;
};

struct ChildResult {
  bool timed_out = false;  // still running at the deadline, and killed then
  int exit_code = -1;      // when it exited
  int signal = 0;          // when a signal ended it
  std::string output;      // stdout and stderr together
  double seconds = 0;      // from start to end
};

class ChildProcess {
 public:
  explicit ChildProcess(const ChildOptions& options) : start_(Clock::now()) {
    int pipe_fds[2];
    CHECK_EQ(pipe2(pipe_fds, O_CLOEXEC), 0);
    pid_ = fork();
    CHECK_GE(pid_, 0) << "fork failed";
    if (pid_ == 0) Exec(options, pipe_fds[1]);
    close(pipe_fds[1]);
    output_fd_ = pipe_fds[0];
  }
  ~ChildProcess() {
    if (!finished_) Wait(std::chrono::milliseconds(0));
    close(output_fd_);
  }
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }
  void Kill() const { kill(pid_, SIGKILL); }

  // What the child printed so far, reading for at most `wait` for more.
  const std::string& Output(std::chrono::milliseconds wait = std::chrono::milliseconds(0)) {
    if (output_closed_) {
      usleep(static_cast<useconds_t>(wait.count() * 1000));  // a caller's polling loop waits
      return output_;
    }
    pollfd readable{output_fd_, POLLIN, 0};
    if (poll(&readable, 1, static_cast<int>(wait.count())) > 0) {
      char buffer[65536];
      const ssize_t n = read(output_fd_, buffer, sizeof(buffer));
      if (n > 0) output_.append(buffer, static_cast<size_t>(n));
      if (n == 0) output_closed_ = true;
    }
    return output_;
  }

  // Waits for the child to end, for at most `deadline` from now; then it is killed.
  ChildResult Wait(std::chrono::milliseconds deadline) {
    const auto give_up = Clock::now() + deadline;
    ChildResult result;
    int status = 0;
    while (waitpid(pid_, &status, WNOHANG) != pid_) {
      if (Clock::now() >= give_up) {
        result.timed_out = true;
        Kill();
        waitpid(pid_, &status, 0);
        break;
      }
      Output(std::chrono::milliseconds(output_closed_ ? 10 : 50));
    }
    finished_ = true;
    // What it printed last; a few tries, as a process it started could hold the pipe open.
    for (int i = 0; i < 5 && !output_closed_ && !result.timed_out; ++i) {
      Output(std::chrono::milliseconds(1000));
    }
    result.seconds = std::chrono::duration<double>(Clock::now() - start_).count();
    if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
    if (WIFSIGNALED(status)) result.signal = WTERMSIG(status);
    result.output = output_;
    return result;
  }

 private:
  using Clock = std::chrono::steady_clock;

  [[noreturn]] static void Exec(const ChildOptions& options, int output_fd) {
    dup2(output_fd, STDOUT_FILENO);
    dup2(output_fd, STDERR_FILENO);
    if (options.ignore_sigxfsz) signal(SIGXFSZ, SIG_IGN);  // kept across exec
    for (const std::string& variable : options.environment) {
      putenv(const_cast<char*>(variable.c_str()));
    }
    std::vector<char*> argv;
    for (const std::string& argument : options.argv) {
      argv.push_back(const_cast<char*>(argument.c_str()));
    }
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }

  pid_t pid_ = -1;
  int output_fd_ = -1;
  bool output_closed_ = false;
  bool finished_ = false;
  std::string output_;
  Clock::time_point start_;
};

}  // namespace taskmoe::testing

#endif  // TASKMOE_TESTS_FAULTS_CHILD_PROCESS_H_
