#ifndef TASKMOE_MOE_MODEL_MOE_LAYERS_H_
#define TASKMOE_MOE_MODEL_MOE_LAYERS_H_

// Task-level mixture-of-experts layers: E full BART layers at one layer position, mixed by the
// route weights of each example, output[b] = sum_e route[b, e] * expert_e(x[b]).
//
// An expert whose weight is zero for every example of the batch does not run with an autograd
// graph, and an expert that only some examples use runs on those examples alone (gathered, run,
// scattered back), so a batch of one-hot routes costs one backward pass per example. The result
// equals the plain weighted sum, and so do the gradients of the experts and inputs.
//
// The gradient of a route weight that is zero in the forward pass (a straight-through one-hot
// route) is d loss / d route[b, e] = <d loss / d output[b], expert_e(x[b])>, as when every expert
// runs (the original's estimator). RouteGradient::kAllExperts computes it exactly: when the route
// requires grad, each unselected expert also runs forward on its zero-weight examples without
// an autograd graph (its parameters and inputs get no gradient from those examples anyway), and
// only the route receives its output. RouteGradient::kSelectedExperts skips those passes: a
// cheaper, different estimator whose zero weights get no gradient.
//
// With more than one intra-op thread (at::set_num_threads) and no decoding cache, the experts'
// forward and backward passes run concurrently on the OpenMP threads, each single-threaded (each
// expert split into one row block per thread); on a few cores that beats running one expert at a
// time with every small operation split across the threads. The threads allocate from their own
// glibc malloc arenas unless the program sets mallopt(M_ARENA_MAX, 1) first (ConfigureCpuRuntime
// in moe/cpu_runtime.h does), and glibc unmaps an emptied arena heap, so without it memory is
// page-faulted back every step.
//
// With MoeLayerOptions::batched, soft routes without a decoding cache (every expert on every
// example) run the experts as batched work instead (moe/model/batched_experts.h): one GEMM for
// the projections that read the shared input, batched matrix products for the rest.

#include <ATen/ATen.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/pimpl.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "moe/model/bart.h"

namespace taskmoe {

class ExpertStacks;  // moe/model/expert_stacks.h

// How the gradient of zero route weights is computed (see above).
enum class RouteGradient {
  kAllExperts,       // exact: unselected experts run forward only, for the route's gradient
  kSelectedExperts,  // zero weights get no gradient; no extra forward passes
};

// How a layer combines its experts (model.expert_execution).
enum class ExpertExecution {
  kMixOutputs,       // output[b] = sum_e route[b, e] * expert_e(x[b]), the paper's
  kMergeParameters,  // one dense layer per group of equal routes with parameters sum_e w_e theta_e
                     // (moe/model/merged_experts.h); route_gradient does not apply
};

// Which experts run, and on which examples, for one layer's route [batch, experts].
struct ExpertAssignment {
  int64_t expert = 0;
  // int64 example indices on the route's device; undefined when the expert runs on every example.
  at::Tensor rows;
};

// The experts with a nonzero weight for at least one example, in expert order.
std::vector<ExpertAssignment> AssignExperts(const at::Tensor& route);

// How an MoE layer position holds and runs its experts.
struct MoeLayerOptions {
  explicit MoeLayerOptions(int64_t experts) : experts_(experts) {}
  TORCH_ARG(int64_t, experts);
  // Allow the concurrent execution described above (it still needs more than one intra-op
  // thread); false runs the experts one after another.
  TORCH_ARG(bool, concurrent) = true;
  // Soft routes without a decoding cache (every expert on every example): run the experts as
  // batched work (moe/model/batched_experts.h) instead of one job per expert. The experts'
  // parameters then live in stacked tensors (moe/model/expert_stacks.h).
  TORCH_ARG(bool, batched) = true;
  TORCH_ARG(RouteGradient, route_gradient) = RouteGradient::kAllExperts;
  TORCH_ARG(ExpertExecution, execution) = ExpertExecution::kMixOutputs;
};

// An encoder layer position holding `experts` BART encoder layers ("experts.<e>.self_attn...").
class MoeEncoderLayerImpl : public EncoderBlock {
 public:
  MoeEncoderLayerImpl(const BartLayerOptions& layer, const MoeLayerOptions& options);

  // route: [batch, experts], required.
  at::Tensor Forward(const at::Tensor& hidden_states, const at::Tensor& attention_bias,
                     const at::Tensor& route) override;

  BartEncoderLayerImpl& expert(int64_t index) const;
  int64_t num_experts() const { return static_cast<int64_t>(experts->size()); }

  MoeLayerOptions options;
  torch::nn::ModuleList experts{nullptr};

 private:
  // kMergeParameters: the working layer that runs with merged parameters (not registered, so it
  // is in no checkpoint).
  std::shared_ptr<BartEncoderLayerImpl> merged_;
  // options.batched: the experts' parameters held stacked for batched work.
  std::shared_ptr<ExpertStacks> stacks_;
};
TORCH_MODULE(MoeEncoderLayer);

// The decoding state of an MoE decoder layer: one cache per expert, holding only the examples
// that expert runs on (merged execution: one per group of equal routes). Routes must stay the
// same for an example across the decoding steps.
struct MoeDecoderLayerCache : DecoderBlockCache {
  struct ExpertCache {
    std::unique_ptr<DecoderBlockCache> cache;
    at::Tensor rows;  // int64 CPU, the batch rows this cache holds, in its order; undefined: unused
  };
  std::vector<ExpertCache> experts;
  int64_t batch = 0;  // batch size of the steps so far (0 before the first step)

  void Reorder(const at::Tensor& batch_index) override;
};

// A decoder layer position holding `experts` BART decoder layers.
class MoeDecoderLayerImpl : public DecoderBlock {
 public:
  MoeDecoderLayerImpl(const BartLayerOptions& layer, const MoeLayerOptions& options);

  at::Tensor Forward(const at::Tensor& hidden_states, const at::Tensor& self_attention_bias,
                     const at::Tensor& encoder_hidden_states, const at::Tensor& cross_attention_bias,
                     const at::Tensor& route, DecoderBlockCache* cache) override;
  std::unique_ptr<DecoderBlockCache> NewCache() const override;

  BartDecoderLayerImpl& expert(int64_t index) const;
  int64_t num_experts() const { return static_cast<int64_t>(experts->size()); }

  MoeLayerOptions options;
  torch::nn::ModuleList experts{nullptr};

 private:
  std::shared_ptr<BartDecoderLayerImpl> merged_;  // as in MoeEncoderLayerImpl
  std::shared_ptr<ExpertStacks> stacks_;
};
TORCH_MODULE(MoeDecoderLayer);

}  // namespace taskmoe

#endif  // TASKMOE_MOE_MODEL_MOE_LAYERS_H_
