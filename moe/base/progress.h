#ifndef TASKMOE_MOE_BASE_PROGRESS_H_
#define TASKMOE_MOE_BASE_PROGRESS_H_

// Progress of a training loop: step, loss, learning rate, tokens/s and ETA. On an interactive
// terminal one status line is redrawn in place; in logs (files, CI) a plain line is written
// every few seconds or steps instead, so logs stay readable.

#include <cstdint>
#include <functional>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace taskmoe {

enum class ProgressMode {
  kAuto,         // kInteractive when stderr is a terminal, else kPlain
  kInteractive,  // one line on stderr, redrawn with '\r'
  kPlain,        // periodic log lines (LOG(INFO))
};

struct ProgressOptions {
  int64_t total_steps = 0;
  // Steps already done before this reporter started (a resumed run): rates and the ETA
  // count only the steps this process made.
  int64_t start_step = 0;
  ProgressMode mode = ProgressMode::kAuto;
  // Plain mode writes a line when this much time or (if > 0) this many steps have passed
  // since the previous line, and always at the last step.
  absl::Duration log_interval = absl::Seconds(30);
  int64_t log_every_steps = 0;
  // Interactive mode redraws at most this often.
  absl::Duration redraw_interval = absl::Milliseconds(200);
  // Time source; absl::Now when empty. Tests inject a fake clock.
  std::function<absl::Time()> clock;
  // Receives the output. Plain mode: each line, e.g. "step 120/1000 (12.0%) | loss 2.3456 |
  // lr 1.00e-04 | 1.23k tok/s | elapsed 1m05s | ETA 7m58s". Interactive mode: '\r' + line +
  // erase-to-end-of-line ("\x1b[K"), and "\n" from Finish(). Empty: plain lines go to
  // LOG(INFO), interactive text to stderr.
  std::function<void(absl::string_view)> sink;
};

// "45s", "7m05s", "2h03m", "3d04h": the two most significant units.
std::string FormatShortDuration(absl::Duration duration);

// A rate with a k/M/G suffix and three significant digits: "950", "1.23k", "45.6M".
std::string FormatRate(double per_second);

class ProgressReporter {
 public:
  explicit ProgressReporter(ProgressOptions options);

  // Records that `step` (1-based, cumulative including start_step) finished with `loss`,
  // `learning_rate` and `tokens` processed in it, and writes a line when one is due.
  void Update(int64_t step, double loss, double learning_rate, int64_t tokens);

  // Ends the interactive line so later output starts on a fresh line.
  void Finish();

  bool interactive() const { return interactive_; }

 private:
  absl::Time Now() const;
  // step/total, percentage, mean loss and tokens/s since the previous line, lr, elapsed, ETA.
  std::string FormatLine() const;
  void Emit();
  void Write(const std::string& text);

  ProgressOptions options_;
  bool interactive_;
  absl::Time start_time_;
  // State at the previous written line; the window since then gives the loss and rate.
  absl::Time window_start_;
  int64_t window_start_step_;
  double window_loss_sum_ = 0;
  int64_t window_steps_ = 0;
  int64_t window_tokens_ = 0;
  // Latest update.
  int64_t step_;
  double learning_rate_ = 0;
  absl::Time now_;
  bool line_open_ = false;  // an interactive line was drawn and not yet ended
};

}  // namespace taskmoe

#endif  // TASKMOE_MOE_BASE_PROGRESS_H_
