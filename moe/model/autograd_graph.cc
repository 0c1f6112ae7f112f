#include "moe/model/autograd_graph.h"

#include <unordered_set>
#include <vector>

namespace taskmoe {

void VisitAutogradGraph(const at::Tensor& output,
                        const std::function<bool(torch::autograd::Node& node)>& visit) {
  std::unordered_set<const torch::autograd::Node*> seen;
  std::vector<torch::autograd::Node*> pending = {output.grad_fn().get()};
  while (!pending.empty()) {
    torch::autograd::Node* node = pending.back();
    pending.pop_back();
    if (node == nullptr || !seen.insert(node).second || !visit(*node)) continue;
    for (const torch::autograd::Edge& edge : node->next_edges()) {
      pending.push_back(edge.function.get());
    }
  }
}

}  // namespace taskmoe
