#include "moe/base/progress.h"

#include <string>
#include <vector>

#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace taskmoe {
namespace {

TEST(FormatShortDurationTest, ShowsTheTwoLargestUnits) {
  EXPECT_EQ(FormatShortDuration(absl::ZeroDuration()), "0s");
  EXPECT_EQ(FormatShortDuration(absl::Seconds(45)), "45s");
  EXPECT_EQ(FormatShortDuration(absl::Seconds(59.9)), "59s");
  EXPECT_EQ(FormatShortDuration(absl::Seconds(60)), "1m00s");
  EXPECT_EQ(FormatShortDuration(absl::Seconds(7 * 60 + 5)), "7m05s");
  EXPECT_EQ(FormatShortDuration(absl::Hours(2) + absl::Minutes(3) + absl::Seconds(59)), "2h03m");
  EXPECT_EQ(FormatShortDuration(absl::Hours(24 * 3 + 4) + absl::Minutes(30)), "3d04h");
  EXPECT_EQ(FormatShortDuration(absl::Seconds(-5)), "0s");
}

TEST(FormatRateTest, ThreeSignificantDigitsWithSuffix) {
  EXPECT_EQ(FormatRate(0), "0.00");
  EXPECT_EQ(FormatRate(1.234), "1.23");
  EXPECT_EQ(FormatRate(12.34), "12.3");
  EXPECT_EQ(FormatRate(950), "950");
  EXPECT_EQ(FormatRate(999.4), "999");
  EXPECT_EQ(FormatRate(999.6), "1.00k");
  EXPECT_EQ(FormatRate(1234), "1.23k");
  EXPECT_EQ(FormatRate(45.6e6), "45.6M");
  EXPECT_EQ(FormatRate(3.2e9), "3.20G");
}

// A clock the test advances by hand.
struct FakeClock {
  absl::Time now = absl::FromUnixSeconds(1000000);
  std::function<absl::Time()> AsFunction() {
    return [this] { return now; };
  }
};

TEST(ProgressReporterTest, PlainLinesEveryNStepsWithWindowMeansAndEta) {
  FakeClock clock;
  std::vector<std::string> lines;
  ProgressOptions options;
  options.total_steps = 10;
  options.mode = ProgressMode::kPlain;
  options.log_every_steps = 4;
  options.log_interval = absl::Hours(1);
  options.clock = clock.AsFunction();
  options.sink = [&](absl::string_view line) { lines.emplace_back(line); };
  ProgressReporter reporter(options);
  EXPECT_FALSE(reporter.interactive());

  // Every step takes 2 s and 500 tokens: 250 tok/s; after 4 steps 6 remain -> ETA 12 s.
  for (int step = 1; step <= 4; ++step) {
    clock.now += absl::Seconds(2);
    reporter.Update(step, /*loss=*/step, /*learning_rate=*/1e-4, /*tokens=*/500);
  }
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0],
            "step 4/10 (40.0%) | loss 2.5000 | lr 1.00e-04 | 250 tok/s | elapsed 8s | ETA 12s");

  // Slower window: 4 steps of 10 s with 3000 tokens each -> 300 tok/s; the mean loss covers
  // only steps 5..8; ETA from the average pace so far (48 s / 8 steps) * 2 steps = 12 s.
  for (int step = 5; step <= 8; ++step) {
    clock.now += absl::Seconds(10);
    reporter.Update(step, /*loss=*/1.0, /*learning_rate=*/5e-5, /*tokens=*/3000);
  }
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[1],
            "step 8/10 (80.0%) | loss 1.0000 | lr 5.00e-05 | 300 tok/s | elapsed 48s | ETA 12s");

  // The last step is always reported, without an ETA.
  clock.now += absl::Seconds(1);
  reporter.Update(9, 0.5, 5e-5, 100);
  EXPECT_EQ(lines.size(), 2u);
  clock.now += absl::Seconds(1);
  reporter.Update(10, 0.25, 0, 100);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[2], "step 10/10 (100.0%) | loss 0.3750 | lr 0.00e+00 | 100 tok/s | elapsed 50s");
  reporter.Finish();
  EXPECT_EQ(lines.size(), 3u);  // plain mode has no open line to end
}

TEST(ProgressReporterTest, PlainLinesByTimeCountOnlyThisRunsStepsForEta) {
  FakeClock clock;
  std::vector<std::string> lines;
  ProgressOptions options;
  options.total_steps = 1000;
  options.start_step = 400;  // resumed run
  options.mode = ProgressMode::kPlain;
  options.log_interval = absl::Seconds(30);
  options.clock = clock.AsFunction();
  options.sink = [&](absl::string_view line) { lines.emplace_back(line); };
  ProgressReporter reporter(options);

  // 3 s per step: the 10th step of this run crosses the 30 s interval.
  for (int step = 401; step <= 410; ++step) {
    clock.now += absl::Seconds(3);
    reporter.Update(step, 2.0, 1e-3, 1200);
  }
  ASSERT_EQ(lines.size(), 1u);
  // 590 steps left at 3 s each = 1770 s = 29m30s.
  EXPECT_EQ(lines[0],
            "step 410/1000 (41.0%) | loss 2.0000 | lr 1.00e-03 | 400 tok/s | elapsed 30s | "
            "ETA 29m30s");
}

TEST(ProgressReporterTest, InteractiveRedrawsOneLineAndEndsItOnFinish) {
  FakeClock clock;
  std::vector<std::string> writes;
  ProgressOptions options;
  options.total_steps = 3;
  options.mode = ProgressMode::kInteractive;
  options.redraw_interval = absl::Seconds(1);
  options.clock = clock.AsFunction();
  options.sink = [&](absl::string_view text) { writes.emplace_back(text); };
  ProgressReporter reporter(options);
  EXPECT_TRUE(reporter.interactive());

  clock.now += absl::Milliseconds(500);
  reporter.Update(1, 3.0, 1e-4, 10);  // too soon after the start to redraw
  EXPECT_TRUE(writes.empty());
  clock.now += absl::Milliseconds(500);
  reporter.Update(2, 1.0, 1e-4, 10);
  ASSERT_EQ(writes.size(), 1u);
  EXPECT_EQ(writes[0],
            "\rstep 2/3 (66.7%) | loss 2.0000 | lr 1.00e-04 | 20.0 tok/s | elapsed 1s | ETA 0s"
            "\x1b[K");
  clock.now += absl::Milliseconds(100);
  reporter.Update(3, 1.0, 1e-4, 10);  // the last step is drawn regardless of the interval
  ASSERT_EQ(writes.size(), 2u);
  EXPECT_EQ(writes[1].front(), '\r');
  EXPECT_NE(writes[1].find("step 3/3 (100.0%)"), std::string::npos);
  reporter.Finish();
  ASSERT_EQ(writes.size(), 3u);
  EXPECT_EQ(writes[2], "\n");
  reporter.Finish();
  EXPECT_EQ(writes.size(), 3u);
}

}  // namespace
}  // namespace taskmoe
