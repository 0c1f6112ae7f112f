#ifndef TASKMOE_MOE_ROUTING_EXPERT_MASK_H_
#define TASKMOE_MOE_ROUTING_EXPERT_MASK_H_

#include <string>

#include <ATen/ATen.h>

#include "absl/status/statusor.h"
#include "moe/model/route_weights.h"

namespace taskmoe {

// The evaluation expert mask of routing.eval_expert_mask (see routing.proto): a comma-separated
// list of <layer>:<expert> with <layer> enc<i>, dec<i> or *. Returns [encoder_layers +
// decoder_layers, E] float, 1 = masked, or an undefined tensor for an empty spec. Errors name the
// bad item, or the layer whose experts are all masked.
absl::StatusOr<at::Tensor> ParseEvaluationExpertMask(const std::string& spec,
                                                     const ModelShape& shape);

}  // namespace taskmoe

#endif  // TASKMOE_MOE_ROUTING_EXPERT_MASK_H_
