#include "moe/model/loss.h"

#include <glog/logging.h>
#include <torch/csrc/autograd/custom_function.h>

namespace taskmoe {
namespace {

// The loss and the nll from logits with a hand-written backward pass: it needs only the saved
// log-probabilities, and writes the logits' gradient in one vocabulary-sized tensor,
//   d/d logits_v = g_loss * (p_v - eps / V - (1 - eps) [v = t]) + g_nll * (p_v - [v = t])
// per counted target t, where autograd's graph of the formula would materialise several
// vocabulary-sized intermediates.
class LabelSmoothedNll : public torch::autograd::Function<LabelSmoothedNll> {
 public:
  // logits [N, V], targets [N] (ignored entries already replaced by 0), mask [N] float (1:
  // counted). Returns {loss, nll}.
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx,
                                                const at::Tensor& logits,
                                                const at::Tensor& targets, const at::Tensor& mask,
                                                double epsilon) {
    const at::Tensor log_probs = at::log_softmax(logits.to(at::kFloat), -1);
    const at::Tensor nll = -(log_probs.gather(-1, targets.unsqueeze(-1)).squeeze(-1) * mask).sum();
    const at::Tensor smooth = -(log_probs.sum(-1) * mask).sum();
    const double vocab = static_cast<double>(logits.size(-1));
    const at::Tensor loss = (1.0 - epsilon) * nll + (epsilon / vocab) * smooth;
    ctx->save_for_backward({log_probs, targets, mask});
    ctx->saved_data["epsilon"] = epsilon;
    ctx->saved_data["dtype"] = static_cast<int64_t>(logits.scalar_type());
    return {loss, nll};
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor& log_probs = saved[0];
    const at::Tensor& targets = saved[1];
    const at::Tensor& mask = saved[2];
    const double epsilon = ctx->saved_data["epsilon"].toDouble();
    const double vocab = static_cast<double>(log_probs.size(-1));
    const at::Tensor zero = at::zeros({}, log_probs.options());
    const at::Tensor g_loss = grads[0].defined() ? grads[0] : zero;
    const at::Tensor g_nll = grads[1].defined() ? grads[1] : zero;
    const at::Tensor row_scale = ((g_loss + g_nll) * mask).unsqueeze(-1);
    const at::Tensor row_shift = (g_loss * (epsilon / vocab) * mask).unsqueeze(-1);
    const at::Tensor target_shift = (-(g_loss * (1.0 - epsilon) + g_nll) * mask).unsqueeze(-1);
    at::Tensor grad = log_probs.exp().mul_(row_scale).sub_(row_shift);
    grad.scatter_add_(-1, targets.unsqueeze(-1), target_shift);
    const auto dtype = static_cast<at::ScalarType>(ctx->saved_data["dtype"].toInt());
    return {grad.to(dtype), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

LabelSmoothedLoss LabelSmoothedNllLoss(const at::Tensor& logits, const at::Tensor& targets,
                                       double epsilon, int64_t ignore_index) {
  CHECK(logits.sizes().slice(0, logits.dim() - 1).equals(targets.sizes()))
      << "logits " << logits.sizes() << " do not match targets " << targets.sizes();
  const int64_t vocab = logits.size(-1);
  const at::Tensor counted = targets.reshape({-1}).ne(ignore_index);
  // Ignored targets may be out of range (-100): gather at 0 and mask afterwards.
  const at::Tensor safe_targets = targets.reshape({-1}).masked_fill(counted.logical_not(), 0);
  const torch::autograd::variable_list losses = LabelSmoothedNll::apply(
      logits.reshape({-1, vocab}), safe_targets, counted.to(at::kFloat), epsilon);
  LabelSmoothedLoss out;
  out.loss = losses[0];
  out.nll_loss = losses[1];
  out.ntokens = counted.sum();
  return out;
}

}  // namespace taskmoe
