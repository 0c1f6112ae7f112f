#ifndef TASKMOE_MOE_TRAIN_DISTRIBUTED_H_
#define TASKMOE_MOE_TRAIN_DISTRIBUTED_H_

// Data-parallel training across processes with LibTorch's c10d: each rank computes gradients
// on its shard of the batch, then AllReduceGradients() averages them so every rank applies the
// same update. Ranks find each other through a TCP store at MASTER_ADDR:MASTER_PORT.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <c10/util/intrusive_ptr.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace c10d {
class ProcessGroup;
class Store;
}  // namespace c10d

namespace taskmoe {

// Where this process sits in the job, as torchrun-style launchers describe it.
struct DistributedEnv {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;  // index of the process on its machine; selects the CUDA device
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  // Network interface for Gloo (e.g. "eth0"); empty: see GlooDevice in distributed.cc.
  std::string gloo_socket_ifname;
};

// Reads RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT and GLOO_SOCKET_IFNAME through
// `lookup` (nullopt = unset). Unset WORLD_SIZE means a single process. Errors name the variable and its bad value.
absl::StatusOr<DistributedEnv> ParseDistributedEnv(
    const std::function<std::optional<std::string>(const std::string&)>& lookup);

// ParseDistributedEnv over the process environment.
absl::StatusOr<DistributedEnv> DistributedEnvFromEnvironment();

// The device `name` means ("cpu", "cuda", "cuda:<index>" or "auto": cuda when LibTorch sees a
// GPU) for the process with `local_rank`: its own GPU of the machine under cuda and auto. Errors
// name `setting` (the flag or config field): an unknown name, or a GPU LibTorch does not see
// (none in a CPU build of LibTorch).
absl::StatusOr<at::Device> ChooseDevice(
    const std::string& name, int local_rank,
    absl::string_view setting = "config field training.device");

struct DistributedOptions {
  // Bound on connecting to the store and on every collective, so a dead peer fails the run
  // instead of hanging it.
  std::chrono::milliseconds timeout = std::chrono::minutes(10);
  // Gradients are flattened into buckets of at most this many bytes (a single tensor larger
  // than this gets a bucket of its own): few large messages instead of one per parameter.
  int64_t bucket_bytes = 25 << 20;
  // CUDA selects NCCL when this code is compiled with USE_C10D_NCCL (a LibTorch built with
  // NCCL); everything else uses Gloo.
  at::Device device = at::kCPU;
};

class DistributedContext {
 public:
  // World size 1 creates no process group and every collective is a no-op. Otherwise
  // rank 0 hosts the store and all ranks wait for each other (up to options.timeout).
  static absl::StatusOr<std::unique_ptr<DistributedContext>> Create(
      const DistributedEnv& env, const DistributedOptions& options = {});

  ~DistributedContext();
  DistributedContext(const DistributedContext&) = delete;
  DistributedContext& operator=(const DistributedContext&) = delete;

  int rank() const { return env_.rank; }
  int world_size() const { return env_.world_size; }
  int local_rank() const { return env_.local_rank; }
  // Only the main rank writes outputs (checkpoints, logs, images).
  bool is_main() const { return env_.rank == 0; }

  // Copies rank 0's values into `tensors` on every rank (in place), e.g. the parameters
  // after initialisation so all replicas start equal.
  absl::Status Broadcast(const std::vector<at::Tensor>& tensors);

  // Replaces each parameter's gradient by its mean over the ranks. A parameter without a
  // gradient on this rank contributes zeros (and gets a zero gradient), so ranks that did
  // not touch a parameter stay in step with those that did.
  absl::Status AllReduceGradients(const std::vector<at::Tensor>& parameters);

  // Sum of `value` over the ranks (loss sums, token counts).
  absl::StatusOr<double> AllReduceSum(double value);

  // Returns once every rank has called it.
  absl::Status Barrier();

 private:
  DistributedContext(DistributedEnv env, DistributedOptions options,
                     c10::intrusive_ptr<c10d::Store> store,
                     c10::intrusive_ptr<c10d::ProcessGroup> group);

  // Sum-all-reduces `buckets` in place, one collective per bucket.
  absl::Status AllReduceInPlace(std::vector<at::Tensor>& buckets, const char* what);

  DistributedEnv env_;
  DistributedOptions options_;
  c10::intrusive_ptr<c10d::Store> store_;  // null when world_size == 1
  c10::intrusive_ptr<c10d::ProcessGroup> group_;
};

}  // namespace taskmoe

#endif  // TASKMOE_MOE_TRAIN_DISTRIBUTED_H_
