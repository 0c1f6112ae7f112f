#include "moe/train/distributed.h"

#include <cstdlib>
#include <exception>
#include <limits>
#include <utility>

#include <c10/util/Exception.h>
#include <torch/cuda.h>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#ifdef USE_C10D_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "glog/logging.h"

namespace taskmoe {
namespace {

// Parses variable `name` as an integer in [min_value, max_value]; unset gives `fallback`.
absl::StatusOr<int> ParseIntVariable(
    const std::function<std::optional<std::string>(const std::string&)>& lookup,
    const std::string& name, int fallback, int min_value, int max_value) {
  const std::optional<std::string> text = lookup(name);
  if (!text.has_value()) return fallback;
  int value = 0;
  if (!absl::SimpleAtoi(*text, &value) || value < min_value || value > max_value) {
    return absl::InvalidArgumentError(absl::StrCat(
        "environment variable ", name, "=\"", *text, "\": expected an integer in [", min_value,
        ", ", max_value, "]"));
  }
  return value;
}

// A failed collective, named with this process's rank. A peer that died shows up as a closed
// connection, which Gloo reports with its own exceptions (gloo::IoException), not c10::Error:
// caught as std::exception they make this error instead of escaping the trainer.
absl::Status CollectiveError(const DistributedEnv& env, const char* what,
                             const std::exception& error) {
  const auto* c10_error = dynamic_cast<const c10::Error*>(&error);
  return absl::UnavailableError(absl::StrCat(
      "distributed ", what, " failed on rank ", env.rank, "/", env.world_size,
      " (another rank died, stalled or cannot be reached): ",
      c10_error != nullptr ? c10_error->what_without_backtrace() : error.what()));
}

// The network interface Gloo binds to, chosen as torch.distributed does: the named
// interface, else loopback for a single-machine job on 127.0.0.1, else the address this
// machine's hostname resolves to.
std::shared_ptr<::gloo::transport::Device> GlooDevice(const DistributedEnv& env) {
  if (!env.gloo_socket_ifname.empty()) {
    return c10d::ProcessGroupGloo::createDeviceForInterface(env.gloo_socket_ifname);
  }
  if (absl::StartsWith(env.master_addr, "127.") || env.master_addr == "localhost") {
    return c10d::ProcessGroupGloo::createDeviceForHostname(env.master_addr);
  }
  return c10d::ProcessGroupGloo::createDefaultDevice();
}

}  // namespace

absl::StatusOr<DistributedEnv> ParseDistributedEnv(
    const std::function<std::optional<std::string>(const std::string&)>& lookup) {
  constexpr int kMaxInt = std::numeric_limits<int>::max();
  DistributedEnv env;
  absl::StatusOr<int> world_size = ParseIntVariable(lookup, "WORLD_SIZE", 1, 1, kMaxInt);
  if (!world_size.ok()) return world_size.status();
  env.world_size = *world_size;
  absl::StatusOr<int> rank = ParseIntVariable(lookup, "RANK", 0, 0, env.world_size - 1);
  if (!rank.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(rank.status().message(), " (WORLD_SIZE is ", env.world_size, ")"));
  }
  env.rank = *rank;
  if (env.world_size > 1 && !lookup("RANK").has_value()) {
    return absl::InvalidArgumentError(
        absl::StrCat("WORLD_SIZE=", env.world_size, " but RANK is not set"));
  }
  absl::StatusOr<int> local_rank = ParseIntVariable(lookup, "LOCAL_RANK", env.rank, 0, kMaxInt);
  if (!local_rank.ok()) return local_rank.status();
  env.local_rank = *local_rank;
  absl::StatusOr<int> port = ParseIntVariable(lookup, "MASTER_PORT", env.master_port, 1, 65535);
  if (!port.ok()) return port.status();
  env.master_port = *port;
  if (std::optional<std::string> addr = lookup("MASTER_ADDR"); addr.has_value()) {
    if (addr->empty()) return absl::InvalidArgumentError("environment variable MASTER_ADDR is empty");
    env.master_addr = *addr;
  }
  env.gloo_socket_ifname = lookup("GLOO_SOCKET_IFNAME").value_or("");
  return env;
}

absl::StatusOr<DistributedEnv> DistributedEnvFromEnvironment() {
  return ParseDistributedEnv([](const std::string& name) -> std::optional<std::string> {
    const char* value = std::getenv(name.c_str());
    if (value == nullptr) return std::nullopt;
    return std::string(value);
  });
}

DistributedContext::DistributedContext(DistributedEnv env, DistributedOptions options,
                                       c10::intrusive_ptr<c10d::Store> store,
                                       c10::intrusive_ptr<c10d::ProcessGroup> group)
    : env_(std::move(env)),
      options_(std::move(options)),
      store_(std::move(store)),
      group_(std::move(group)) {}

DistributedContext::~DistributedContext() = default;

absl::StatusOr<std::unique_ptr<DistributedContext>> DistributedContext::Create(
    const DistributedEnv& env, const DistributedOptions& options) {
  if (env.world_size < 1 || env.rank < 0 || env.rank >= env.world_size) {
    return absl::InvalidArgumentError(absl::StrCat("rank ", env.rank, " is outside world size ",
                                                   env.world_size));
  }
  if (options.bucket_bytes <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("bucket_bytes must be positive, got ", options.bucket_bytes));
  }
  if (env.world_size == 1) {
    return std::unique_ptr<DistributedContext>(
        new DistributedContext(env, options, {}, {}));
  }
  c10d::TCPStoreOptions store_options;
  store_options.port = static_cast<std::uint16_t>(env.master_port);
  store_options.isServer = env.rank == 0;
  store_options.numWorkers = env.world_size;
  store_options.waitWorkers = true;
  store_options.timeout = options.timeout;
  const std::string where = absl::StrCat("rank ", env.rank, "/", env.world_size, " at ",
                                         env.master_addr, ":", env.master_port);
  try {
    auto store = c10::make_intrusive<c10d::TCPStore>(env.master_addr, store_options);
    c10::intrusive_ptr<c10d::ProcessGroup> group;
#ifdef USE_C10D_NCCL
    if (options.device.is_cuda()) {
      auto nccl_options = c10d::ProcessGroupNCCL::Options::create();
      nccl_options->timeout = options.timeout;
      group = c10::make_intrusive<c10d::ProcessGroupNCCL>(store, env.rank, env.world_size,
                                                          nccl_options);
    }
#endif
    if (!group) {
      // Gloo also reduces CUDA tensors in a CUDA build of LibTorch, only slower than NCCL.
      auto gloo_options = c10d::ProcessGroupGloo::Options::create(options.timeout);
      gloo_options->devices.push_back(GlooDevice(env));
      group = c10::make_intrusive<c10d::ProcessGroupGloo>(store, env.rank, env.world_size,
                                                          gloo_options);
    }
    LOG(INFO) << "joined the " << group->getBackendName() << " process group as " << where;
    return std::unique_ptr<DistributedContext>(
        new DistributedContext(env, options, std::move(store), std::move(group)));
  } catch (const c10::Error& error) {
    return absl::UnavailableError(absl::StrCat("cannot join the process group as ", where,
                                               ": ", error.what_without_backtrace()));
  } catch (const std::exception& error) {
    // The store reports socket failures as std::runtime_error.
    return absl::UnavailableError(
        absl::StrCat("cannot join the process group as ", where, ": ", error.what()));
  }
}

absl::Status DistributedContext::AllReduceInPlace(std::vector<at::Tensor>& buckets,
                                                  const char* what) {
  try {
    for (at::Tensor& bucket : buckets) {
      std::vector<at::Tensor> one = {bucket};
      group_->allreduce(one)->wait(options_.timeout);
    }
  } catch (const std::exception& error) {
    return CollectiveError(env_, what, error);
  }
  return absl::OkStatus();
}

absl::Status DistributedContext::Broadcast(const std::vector<at::Tensor>& tensors) {
  if (!group_) return absl::OkStatus();
  at::NoGradGuard no_grad;
  try {
    for (const at::Tensor& tensor : tensors) {
      // Collectives need dense contiguous storage; copy through a buffer otherwise.
      const bool direct = tensor.is_contiguous();
      std::vector<at::Tensor> one = {direct ? tensor : tensor.contiguous()};
      group_->broadcast(one)->wait(options_.timeout);
      if (!direct) tensor.copy_(one[0]);
    }
  } catch (const std::exception& error) {
    return CollectiveError(env_, "broadcast", error);
  }
  return absl::OkStatus();
}

absl::Status DistributedContext::AllReduceGradients(const std::vector<at::Tensor>& parameters) {
  if (!group_) return absl::OkStatus();
  at::NoGradGuard no_grad;
  // Gradients, in parameter order, grouped into buckets of one dtype and device.
  std::vector<std::vector<at::Tensor>> bucket_members;
  std::vector<at::Tensor> buckets;
  int64_t open_bucket_bytes = 0;
  for (const at::Tensor& parameter : parameters) {
    at::Tensor& grad = parameter.mutable_grad();
    if (!grad.defined()) grad = at::zeros_like(parameter);
    const int64_t bytes = grad.numel() * static_cast<int64_t>(grad.element_size());
    const bool fits = !bucket_members.empty() &&
                      bucket_members.back().front().scalar_type() == grad.scalar_type() &&
                      bucket_members.back().front().device() == grad.device() &&
                      open_bucket_bytes + bytes <= options_.bucket_bytes;
    if (!fits) {
      bucket_members.emplace_back();
      open_bucket_bytes = 0;
    }
    bucket_members.back().push_back(grad);
    open_bucket_bytes += bytes;
  }
  buckets.reserve(bucket_members.size());
  for (const std::vector<at::Tensor>& members : bucket_members) {
    std::vector<at::Tensor> flat;
    flat.reserve(members.size());
    for (const at::Tensor& grad : members) flat.push_back(grad.reshape({-1}));
    buckets.push_back(at::cat(flat));
  }
  if (absl::Status status = AllReduceInPlace(buckets, "gradient all-reduce"); !status.ok()) {
    return status;
  }
  for (size_t b = 0; b < buckets.size(); ++b) {
    buckets[b].div_(env_.world_size);
    int64_t offset = 0;
    for (at::Tensor& grad : bucket_members[b]) {
      const int64_t count = grad.numel();
      grad.copy_(buckets[b].narrow(0, offset, count).view(grad.sizes()));
      offset += count;
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<double> DistributedContext::AllReduceSum(double value) {
  if (!group_) return value;
  std::vector<at::Tensor> buckets = {at::full({1}, value, at::TensorOptions()
                                                              .dtype(at::kDouble)
                                                              .device(options_.device))};
  if (absl::Status status = AllReduceInPlace(buckets, "scalar all-reduce"); !status.ok()) {
    return status;
  }
  return buckets[0].item<double>();
}

absl::Status DistributedContext::Barrier() {
  if (!group_) return absl::OkStatus();
  try {
    group_->barrier()->wait(options_.timeout);
  } catch (const std::exception& error) {
    return CollectiveError(env_, "barrier", error);
  }
  return absl::OkStatus();
}

absl::StatusOr<at::Device> ChooseDevice(const std::string& name, int local_rank,
                                        absl::string_view setting) {
  const int gpus = torch::cuda::is_available() ? static_cast<int>(torch::cuda::device_count()) : 0;
  if (name == "cpu" || (name == "auto" && gpus == 0)) return at::Device(at::kCPU);
  int index = local_rank;
  if (name != "cuda" && name != "auto" &&
      !(absl::StartsWith(name, "cuda:") && absl::SimpleAtoi(name.substr(5), &index) &&
        index >= 0)) {
    return absl::InvalidArgumentError(absl::StrCat(
        setting, ": '", name, "' is not a device; expected auto, cpu, cuda or cuda:<index>"));
  }
  if (index >= gpus) {
    return absl::FailedPreconditionError(absl::StrCat(
        setting, ": ", name, " needs CUDA device ", index, " but LibTorch sees ", gpus,
        " (a CPU build of LibTorch? see README, 'LibTorch location')"));
  }
  return at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(index));
}

}  // namespace taskmoe
