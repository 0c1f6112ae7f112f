#include "moe/base/progress.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "glog/logging.h"

namespace taskmoe {

std::string FormatShortDuration(absl::Duration duration) {
  const int64_t total_seconds = std::max<int64_t>(0, absl::ToInt64Seconds(duration));
  const int64_t days = total_seconds / 86400;
  const int64_t hours = total_seconds / 3600 % 24;
  const int64_t minutes = total_seconds / 60 % 60;
  const int64_t seconds = total_seconds % 60;
  if (days > 0) return absl::StrFormat("%dd%02dh", days, hours);
  if (hours > 0) return absl::StrFormat("%dh%02dm", hours, minutes);
  if (minutes > 0) return absl::StrFormat("%dm%02ds", minutes, seconds);
  return absl::StrFormat("%ds", seconds);
}

std::string FormatRate(double per_second) {
  static constexpr const char* kSuffixes[] = {"", "k", "M", "G", "T"};
  int suffix = 0;
  // 999.5 and above would print as "1000" at three significant digits.
  while (std::abs(per_second) >= 999.5 && suffix < 4) {
    per_second /= 1000;
    ++suffix;
  }
  const double magnitude = std::abs(per_second);
  const int decimals = magnitude >= 99.95 ? 0 : (magnitude >= 9.995 ? 1 : 2);
  return absl::StrCat(absl::StrFormat("%.*f", decimals, per_second), kSuffixes[suffix]);
}

ProgressReporter::ProgressReporter(ProgressOptions options)
    : options_(std::move(options)),
      window_start_step_(options_.start_step),
      step_(options_.start_step) {
  CHECK_GT(options_.total_steps, 0) << "a progress display needs the number of steps";
  switch (options_.mode) {
    case ProgressMode::kAuto:
      interactive_ = isatty(fileno(stderr)) != 0;
      break;
    case ProgressMode::kInteractive:
      interactive_ = true;
      break;
    case ProgressMode::kPlain:
      interactive_ = false;
      break;
  }
  start_time_ = Now();
  window_start_ = start_time_;
  now_ = start_time_;
}

absl::Time ProgressReporter::Now() const {
  return options_.clock ? options_.clock() : absl::Now();
}

void ProgressReporter::Update(int64_t step, double loss, double learning_rate, int64_t tokens) {
  step_ = step;
  learning_rate_ = learning_rate;
  now_ = Now();
  window_loss_sum_ += loss;
  window_tokens_ += tokens;
  ++window_steps_;
  const absl::Duration since_line = now_ - window_start_;
  bool due = step_ >= options_.total_steps;
  if (interactive_) {
    due = due || since_line >= options_.redraw_interval;
  } else {
    due = due || since_line >= options_.log_interval ||
          (options_.log_every_steps > 0 &&
           step_ - window_start_step_ >= options_.log_every_steps);
  }
  if (due) Emit();
}

std::string ProgressReporter::FormatLine() const {
  const double percent =
      options_.total_steps > 0 ? 100.0 * step_ / options_.total_steps : 100.0;
  std::string line = absl::StrFormat("step %d/%d (%.1f%%)", step_, options_.total_steps, percent);
  if (window_steps_ > 0) {
    absl::StrAppend(&line, absl::StrFormat(" | loss %.4f", window_loss_sum_ / window_steps_));
  }
  absl::StrAppend(&line, absl::StrFormat(" | lr %.2e", learning_rate_));
  const double window_seconds = absl::ToDoubleSeconds(now_ - window_start_);
  if (window_seconds > 0) {
    absl::StrAppend(&line, " | ", FormatRate(window_tokens_ / window_seconds), " tok/s");
  }
  const absl::Duration elapsed = now_ - start_time_;
  absl::StrAppend(&line, " | elapsed ", FormatShortDuration(elapsed));
  const int64_t steps_done = step_ - options_.start_step;
  if (steps_done > 0 && step_ < options_.total_steps) {
    const absl::Duration eta = elapsed / steps_done * (options_.total_steps - step_);
    absl::StrAppend(&line, " | ETA ", FormatShortDuration(eta));
  }
  return line;
}

void ProgressReporter::Write(const std::string& text) {
  if (options_.sink) {
    options_.sink(text);
  } else if (interactive_) {
    std::fputs(text.c_str(), stderr);
    std::fflush(stderr);
  } else {
    LOG(INFO) << text;
  }
}

void ProgressReporter::Emit() {
  if (interactive_) {
    // '\r' returns to the line start; ESC[K erases what a longer previous line left.
    Write(absl::StrCat("\r", FormatLine(), "\x1b[K"));
    line_open_ = true;
  } else {
    Write(FormatLine());
  }
  window_start_ = now_;
  window_start_step_ = step_;
  window_loss_sum_ = 0;
  window_steps_ = 0;
  window_tokens_ = 0;
}

void ProgressReporter::Finish() {
  if (!line_open_) return;
  Write("\n");
  line_open_ = false;
}

}  // namespace taskmoe
