#include "moe/train/distributed.h"

#include <arpa/inet.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <functional>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include <ATen/ATen.h>

#include "gtest/gtest.h"
#include "tests/free_port.h"

namespace taskmoe {
namespace {

constexpr int kWorld = 2;
constexpr int kRowsPerRank = 4;
constexpr int kInputs = 4;
constexpr int kOutputs = 3;

// Runs worker(rank) in kWorld forked processes and returns their exit codes; a process still
// running after `deadline` is killed and reported as -1, so a broken collective cannot hang.
std::vector<int> RunRanks(const std::function<int(int)>& worker,
                          std::chrono::seconds deadline) {
  std::vector<pid_t> pids;
  for (int rank = 0; rank < kWorld; ++rank) {
    const pid_t pid = fork();
    CHECK_GE(pid, 0) << "fork failed";
    if (pid == 0) {
      int code = 100;
      try {
        code = worker(rank);
      } catch (const std::exception& error) {
        std::fprintf(stderr, "rank %d threw: %s\n", rank, error.what());
      }
      std::fflush(stderr);
      _exit(code);
    }
    pids.push_back(pid);
  }
  std::vector<int> codes(kWorld, -1);
  std::vector<bool> done(kWorld, false);
  const auto give_up = std::chrono::steady_clock::now() + deadline;
  int remaining = kWorld;
  while (remaining > 0 && std::chrono::steady_clock::now() < give_up) {
    for (int rank = 0; rank < kWorld; ++rank) {
      int status = 0;
      if (done[rank] || waitpid(pids[rank], &status, WNOHANG) != pids[rank]) continue;
      done[rank] = true;
      --remaining;
      codes[rank] = WIFEXITED(status) ? WEXITSTATUS(status) : -2;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  for (int rank = 0; rank < kWorld; ++rank) {
    if (done[rank]) continue;
    kill(pids[rank], SIGKILL);
    waitpid(pids[rank], nullptr, 0);
  }
  return codes;
}

DistributedEnv EnvFor(int rank, int port) {
  DistributedEnv env;
  env.rank = rank;
  env.world_size = kWorld;
  env.local_rank = rank;
  env.master_addr = "127.0.0.1";
  env.master_port = port;
  return env;
}

// A tiny regression model: loss = mean over rows of |tanh(x W^T + b) - y|^2.
at::Tensor Loss(const at::Tensor& weight, const at::Tensor& bias, const at::Tensor& x,
                const at::Tensor& y) {
  return (at::tanh(at::matmul(x, weight.t()) + bias) - y).pow(2).sum(1).mean();
}

struct Parameters {
  at::Tensor weight, bias, unused;
};

Parameters InitialParameters(int seed) {
  at::manual_seed(seed);
  return {at::randn({kOutputs, kInputs}).set_requires_grad(true),
          at::randn({kOutputs}).set_requires_grad(true),
          at::randn({2}).set_requires_grad(true)};
}

int Fail(int rank, int code, const std::string& what) {
  std::fprintf(stderr, "rank %d: %s\n", rank, what.c_str());
  return code;
}

// Each rank starts from different parameters, receives rank 0's by Broadcast, computes the
// gradient of its half of the batch and all-reduces it. The result must equal the gradient
// of the whole batch in one process.
int DataParallelWorker(int rank, int port, int64_t bucket_bytes) {
  DistributedOptions options;
  options.timeout = std::chrono::seconds(20);
  options.bucket_bytes = bucket_bytes;
  absl::StatusOr<std::unique_ptr<DistributedContext>> context =
      DistributedContext::Create(EnvFor(rank, port), options);
  if (!context.ok()) return Fail(rank, 2, context.status().ToString());
  if ((*context)->rank() != rank || (*context)->is_main() != (rank == 0)) {
    return Fail(rank, 3, "wrong rank bookkeeping");
  }

  Parameters mine = InitialParameters(/*seed=*/100 + rank);
  const Parameters rank0 = InitialParameters(/*seed=*/100);
  if (rank != 0 && at::equal(mine.weight, rank0.weight)) return Fail(rank, 4, "seeds collide");
  // A non-contiguous view must be broadcast into in place too.
  at::Tensor transposed_view = mine.weight.detach().t();
  absl::Status status = (*context)->Broadcast({mine.bias, transposed_view, mine.unused});
  if (!status.ok()) return Fail(rank, 5, status.ToString());
  if (!at::equal(mine.weight, rank0.weight) || !at::equal(mine.bias, rank0.bias) ||
      !at::equal(mine.unused, rank0.unused)) {
    return Fail(rank, 6, "broadcast did not copy rank 0's parameters");
  }

  at::manual_seed(7);
  const at::Tensor x = at::randn({kWorld * kRowsPerRank, kInputs});
  const at::Tensor y = at::randn({kWorld * kRowsPerRank, kOutputs});
  const at::Tensor x_shard = x.narrow(0, rank * kRowsPerRank, kRowsPerRank);
  const at::Tensor y_shard = y.narrow(0, rank * kRowsPerRank, kRowsPerRank);
  Loss(mine.weight, mine.bias, x_shard, y_shard).backward();
  status = (*context)->AllReduceGradients({mine.weight, mine.bias, mine.unused});
  if (!status.ok()) return Fail(rank, 7, status.ToString());

  Loss(rank0.weight, rank0.bias, x, y).backward();
  if (!at::allclose(mine.weight.grad(), rank0.weight.grad(), 1e-5, 1e-6) ||
      !at::allclose(mine.bias.grad(), rank0.bias.grad(), 1e-5, 1e-6)) {
    return Fail(rank, 8, "averaged gradient differs from the whole-batch gradient");
  }
  if (!mine.unused.grad().defined() || mine.unused.grad().abs().sum().item<float>() != 0) {
    return Fail(rank, 9, "a parameter without gradient did not get a zero gradient");
  }

  absl::StatusOr<double> sum = (*context)->AllReduceSum(rank + 1.5);
  if (!sum.ok()) return Fail(rank, 10, sum.status().ToString());
  if (*sum != 1.5 + 2.5) return Fail(rank, 11, "scalar sum is " + std::to_string(*sum));
  status = (*context)->Barrier();
  if (!status.ok()) return Fail(rank, 12, status.ToString());
  return 0;
}

TEST(DistributedTest, TwoRanksAverageGradientsLikeOneProcessOnTheWholeBatch) {
  // 16 bytes is below every gradient's size: each parameter travels in a bucket of its own.
  for (const int64_t bucket_bytes : {int64_t{16}, int64_t{1} << 20}) {
    SCOPED_TRACE(bucket_bytes);
    const int port = testing::FreePort();
    const std::vector<int> codes = RunRanks(
        [&](int rank) { return DataParallelWorker(rank, port, bucket_bytes); },
        std::chrono::seconds(60));
    EXPECT_EQ(codes, std::vector<int>(kWorld, 0));
  }
}

TEST(DistributedTest, MissingPeerFailsWithinTheTimeout) {
  DistributedOptions options;
  options.timeout = std::chrono::seconds(2);
  // Rank 1 waits for a store nobody hosts.
  absl::StatusOr<std::unique_ptr<DistributedContext>> context =
      DistributedContext::Create(EnvFor(1, testing::FreePort()), options);
  ASSERT_FALSE(context.ok());
  EXPECT_EQ(context.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(context.status().message().find("rank 1/2"), std::string::npos)
      << context.status();
}

TEST(DistributedTest, SingleProcessCollectivesAreNoOps) {
  absl::StatusOr<std::unique_ptr<DistributedContext>> context =
      DistributedContext::Create(DistributedEnv{});
  ASSERT_TRUE(context.ok()) << context.status();
  EXPECT_TRUE((*context)->is_main());
  EXPECT_EQ((*context)->world_size(), 1);
  at::Tensor weight = at::ones({2, 2}).set_requires_grad(true);
  (weight * 3).sum().backward();
  ASSERT_TRUE((*context)->AllReduceGradients({weight}).ok());
  EXPECT_TRUE(at::equal(weight.grad(), at::full({2, 2}, 3.0)));
  EXPECT_EQ((*context)->AllReduceSum(4.25).value(), 4.25);
  EXPECT_TRUE((*context)->Barrier().ok());
  EXPECT_TRUE((*context)->Broadcast({weight}).ok());
}

absl::StatusOr<DistributedEnv> ParseFrom(const std::map<std::string, std::string>& variables) {
  return ParseDistributedEnv([&](const std::string& name) -> std::optional<std::string> {
    auto it = variables.find(name);
    if (it == variables.end()) return std::nullopt;
    return it->second;
  });
}

TEST(DistributedEnvTest, ReadsLauncherVariables) {
  absl::StatusOr<DistributedEnv> env = ParseFrom({{"RANK", "3"},
                                                  {"WORLD_SIZE", "4"},
                                                  {"LOCAL_RANK", "1"},
                                                  {"MASTER_ADDR", "10.0.0.2"},
                                                  {"MASTER_PORT", "1234"},
                                                  {"GLOO_SOCKET_IFNAME", "eth1"}});
  ASSERT_TRUE(env.ok()) << env.status();
  EXPECT_EQ(env->rank, 3);
  EXPECT_EQ(env->world_size, 4);
  EXPECT_EQ(env->local_rank, 1);
  EXPECT_EQ(env->master_addr, "10.0.0.2");
  EXPECT_EQ(env->master_port, 1234);
  EXPECT_EQ(env->gloo_socket_ifname, "eth1");
}

TEST(DistributedEnvTest, NoVariablesMeansOneProcess) {
  absl::StatusOr<DistributedEnv> env = ParseFrom({});
  ASSERT_TRUE(env.ok()) << env.status();
  EXPECT_EQ(env->rank, 0);
  EXPECT_EQ(env->world_size, 1);
  EXPECT_EQ(env->local_rank, 0);
}

TEST(DistributedEnvTest, LocalRankDefaultsToRank) {
  absl::StatusOr<DistributedEnv> env = ParseFrom({{"RANK", "1"}, {"WORLD_SIZE", "2"}});
  ASSERT_TRUE(env.ok()) << env.status();
  EXPECT_EQ(env->local_rank, 1);
}

TEST(DistributedEnvTest, BadValuesNameTheVariable) {
  const std::vector<std::pair<std::map<std::string, std::string>, std::string>> cases = {
      {{{"WORLD_SIZE", "two"}}, "WORLD_SIZE=\"two\""},
      {{{"WORLD_SIZE", "0"}}, "WORLD_SIZE=\"0\""},
      {{{"WORLD_SIZE", "2"}, {"RANK", "2"}}, "RANK=\"2\""},
      {{{"WORLD_SIZE", "2"}, {"RANK", "-1"}}, "RANK=\"-1\""},
      {{{"WORLD_SIZE", "2"}}, "RANK is not set"},
      {{{"WORLD_SIZE", "2"}, {"RANK", "0"}, {"MASTER_PORT", "70000"}}, "MASTER_PORT=\"70000\""},
      {{{"WORLD_SIZE", "2"}, {"RANK", "0"}, {"MASTER_ADDR", ""}}, "MASTER_ADDR is empty"},
      {{{"LOCAL_RANK", "x"}}, "LOCAL_RANK=\"x\""},
  };
  for (const auto& [variables, expected] : cases) {
    absl::StatusOr<DistributedEnv> env = ParseFrom(variables);
    ASSERT_FALSE(env.ok()) << expected;
    EXPECT_EQ(env.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(env.status().message().find(expected), std::string::npos) << env.status();
  }
}

}  // namespace
}  // namespace taskmoe
