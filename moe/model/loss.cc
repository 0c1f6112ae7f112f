#include "moe/model/loss.h"

#include <glog/logging.h>

namespace taskmoe {

LabelSmoothedLoss LabelSmoothedNllLoss(const at::Tensor& logits, const at::Tensor& targets,
                                       double epsilon, int64_t ignore_index) {
  CHECK(logits.sizes().slice(0, logits.dim() - 1).equals(targets.sizes()))
      << "logits " << logits.sizes() << " do not match targets " << targets.sizes();
  const int64_t vocab = logits.size(-1);
  const at::Tensor log_probs = at::log_softmax(logits.to(at::kFloat), -1);
  const at::Tensor counted = targets.ne(ignore_index);
  // Ignored targets may be out of range (-100): gather at 0 and mask afterwards.
  const at::Tensor safe_targets = targets.masked_fill(counted.logical_not(), 0).unsqueeze(-1);
  const at::Tensor nll = -log_probs.gather(-1, safe_targets).squeeze(-1);
  const at::Tensor smooth = -log_probs.sum(-1);
  const at::Tensor mask = counted.to(log_probs.scalar_type());
  LabelSmoothedLoss out;
  out.nll_loss = (nll * mask).sum();
  const at::Tensor smooth_sum = (smooth * mask).sum();
  out.loss = (1.0 - epsilon) * out.nll_loss + (epsilon / vocab) * smooth_sum;
  out.ntokens = counted.sum();
  return out;
}

}  // namespace taskmoe
