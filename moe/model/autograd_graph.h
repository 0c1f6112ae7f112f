#ifndef TASKMOE_MOE_MODEL_AUTOGRAD_GRAPH_H_
#define TASKMOE_MOE_MODEL_AUTOGRAD_GRAPH_H_

// Walking the autograd graph behind a tensor.

#include <ATen/ATen.h>
#include <torch/csrc/autograd/function.h>

#include <functional>

namespace taskmoe {

// Calls visit(node) once for every node of the graph behind `output` (its grad_fn and every node
// reachable through the nodes' next edges); visit returns whether to go on into that node's
// inputs. A tensor without grad_fn has no graph.
void VisitAutogradGraph(const at::Tensor& output,
                        const std::function<bool(torch::autograd::Node& node)>& visit);

}  // namespace taskmoe

#endif  // TASKMOE_MOE_MODEL_AUTOGRAD_GRAPH_H_
