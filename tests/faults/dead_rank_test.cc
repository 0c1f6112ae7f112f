// A rank that dies (SIGKILL) in the middle of a two-process data-parallel trainer run: the other
// rank must stop with an error that says a collective failed because of a peer, soon, instead
// of waiting for it forever.
#include <unistd.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "glog/logging.h"
#include "tests/faults/child_process.h"
#include "tests/faults/trainer_child.h"
#include "tests/free_port.h"
#include "tests/tiny_gym.h"

namespace taskmoe {
namespace {

// The survivor must be gone this long after its peer died.
constexpr std::chrono::seconds kBound(60);
// Starting two trainers and their first steps, on a loaded machine.
constexpr std::chrono::seconds kStartBound(120);

std::unique_ptr<testing::ChildProcess> StartRank(int rank, int port, const std::string& dir) {
  testing::ChildOptions options;
  // Long enough that both ranks are still training when one is killed.
  options.argv = testing::TrainerArgv(
      dir, {"training.total_steps=1000", "evaluation.eval_period=1000", "training.log_every=1"});
  options.environment = {absl::StrCat("RANK=", rank), "WORLD_SIZE=2", "MASTER_ADDR=127.0.0.1",
                         absl::StrCat("MASTER_PORT=", port)};
  return std::make_unique<testing::ChildProcess>(options);
}

TEST(DeadRank, TheOtherRankExitsWithAClearErrorInBoundedTime) {
  for (const int victim : {1, 0}) {
    SCOPED_TRACE(absl::StrCat("rank ", victim, " dies"));
    const int survivor = 1 - victim;
    const std::string dir = testing::FreshTempDir(absl::StrCat("dead_rank_", victim));
    const int port = testing::FreePort();
    std::vector<std::unique_ptr<testing::ChildProcess>> ranks;
    for (int rank = 0; rank < 2; ++rank) ranks.push_back(StartRank(rank, port, dir));
    // Training is under way once rank 0 has logged its third step (every step all-reduces).
    const auto give_up = std::chrono::steady_clock::now() + kStartBound;
    while (!absl::StrContains(ranks[0]->Output(std::chrono::milliseconds(100)), "step 3/") &&
           std::chrono::steady_clock::now() < give_up) {
    }
    ASSERT_TRUE(absl::StrContains(ranks[0]->Output(), "step 3/")) << ranks[0]->Output();
    ranks[victim]->Kill();
    const testing::ChildResult result = ranks[survivor]->Wait(kBound);
    ASSERT_FALSE(result.timed_out) << "rank " << survivor << " still running after "
                                   << kBound.count() << " s:\n" << result.output;
    EXPECT_EQ(result.exit_code, 1) << result.output;
    EXPECT_TRUE(absl::StrContains(
        result.output,
        absl::StrCat("failed on rank ", survivor, "/2 (another rank died, stalled or cannot be "
                     "reached)")))
        << result.output;
    EXPECT_FALSE(absl::StrContains(result.output, "internal error")) << result.output;
    ranks[victim]->Wait(kBound);
  }
}

}  // namespace
}  // namespace taskmoe
