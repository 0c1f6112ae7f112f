#ifndef TASKMOE_ROUTING_PLUGINS_ROUTER_ROUTER_H_
#define TASKMOE_ROUTING_PLUGINS_ROUTER_ROUTER_H_

#include <memory>

#include <ATen/ATen.h>
#include <torch/nn/module.h>

#include "absl/status/statusor.h"
#include "moe/routing/routing.h"
#include "routing_plugins/router/router.pb.h"

namespace taskmoe {

enum class RouterArchitecture {
  kLinear,
  kLinearLayerSpecific,
  kRnn,
  kGru,
  kLstm,
  kRnnLayerSpecific,
  kGruLayerSpecific,
  kLstmLayerSpecific,
  kTransformer,
  kTransformerLayerSpecific,
};

struct RouterNetworkOptions {
  RouterArchitecture architecture = RouterArchitecture::kLinearLayerSpecific;
  int64_t input_dim = 0;  // task-vector dimension
  int64_t hidden_dim = 64;
  int64_t layers = 0;  // encoder + decoder layers
  int64_t experts = 1;
  int64_t transformer_heads = 4;
  int64_t transformer_ffn_dim = 64;
};

// Options from the params message and the model's shape; rejects sizes the network cannot take.
absl::StatusOr<RouterNetworkOptions> RouterNetworkOptionsFromProto(const RouterNetworkParams& params,
                                                                   const RoutingContext& context);

// Maps task vectors [batch, input_dim] to routing logits [layers, batch, experts].
class RouterNetworkImpl : public torch::nn::Module {
 public:
  virtual at::Tensor forward(const at::Tensor& task_vectors) = 0;
};

std::shared_ptr<RouterNetworkImpl> MakeRouterNetwork(const RouterNetworkOptions& options);

enum class SelectionFunction { kSoftmax, kGumbelSoftmax, kGumbelSoftmaxStraightThrough };

// tau(step) = max(initial_tau * exp(-anneal_rate * step), minimum_tau)
struct TemperatureSchedule {
  double initial_tau = 2.0;
  double minimum_tau = 0.1;
  double anneal_rate = 3e-4;

  double At(int64_t step) const;
};

// What the Gumbel functions give in evaluation mode (RouteSelectionParams.eval_route).
enum class EvaluationRoute { kSample, kArgmax };

struct SelectionOptions {
  SelectionFunction function = SelectionFunction::kGumbelSoftmaxStraightThrough;
  TemperatureSchedule temperature;
  EvaluationRoute evaluation = EvaluationRoute::kSample;
};

absl::StatusOr<SelectionOptions> SelectionOptionsFromProto(const RouteSelectionParams& params);

// Mixing weights from logits [..., experts] along the last dimension. Training: softmax(logits /
// tau), a Gumbel-softmax sample, or its straight-through one-hot. Evaluation: softmax as in
// training; the Gumbel functions give, with kSample, the one-hot argmax of a Gumbel-softmax
// sample at tau (one independent draw per row from torch's generator: a draw of expert e with
// probability softmax(logits)[e]), or with kArgmax the one-hot argmax of the logits.
at::Tensor SelectRoutes(const at::Tensor& logits, SelectionFunction function, double tau,
                        bool training, EvaluationRoute evaluation);

}  // namespace taskmoe

#endif  // TASKMOE_ROUTING_PLUGINS_ROUTER_ROUTER_H_
