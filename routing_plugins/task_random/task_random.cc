// Routing plugin "task_random": fixed random top_n experts per task and layer, drawn once and
// kept as a per-task route table (saved with checkpoints).
#include <memory>

#include <ATen/ATen.h>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "moe/routing/routing.h"
#include "routing_plugins/task_random/task_random.pb.h"

namespace taskmoe {
namespace {

absl::StatusOr<std::shared_ptr<RoutingPlugin>> MakeTaskRandomRouting(
    const RoutingContext& context, const TaskRandomRoutingParams& params) {
  const ModelShape& shape = context.shape;
  if (params.top_n() < 1 || params.top_n() > shape.experts) {
    return absl::InvalidArgumentError(absl::StrCat("task_random routing: top_n must be in [1, ",
                                                   shape.experts, "] (the experts), got ",
                                                   params.top_n()));
  }
  // The top_n largest of uniform scores are a uniform draw of top_n distinct experts.
  const at::Tensor scores =
      at::rand({context.num_tasks, shape.encoder_layers + shape.decoder_layers, shape.experts});
  const at::Tensor chosen = std::get<1>(scores.topk(params.top_n(), -1));
  return MakeTaskRouteTable(context,
                            at::zeros_like(scores).scatter_(-1, chosen, 1.0 / params.top_n()),
                            "task_random routing");
}

TASKMOE_REGISTER_ROUTING_PLUGIN("task_random", TaskRandomRoutingParams, MakeTaskRandomRouting);

}  // namespace
}  // namespace taskmoe
