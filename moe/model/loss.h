#ifndef TASKMOE_MOE_MODEL_LOSS_H_
#define TASKMOE_MOE_MODEL_LOSS_H_

#include <ATen/ATen.h>

#include <cstdint>

namespace taskmoe {

struct LabelSmoothedLoss {
  at::Tensor loss;      // scalar: (1 - eps) * nll + (eps / V) * smooth, summed over targets
  at::Tensor nll_loss;  // scalar: sum of -log p(target)
  at::Tensor ntokens;   // int64 scalar: targets counted (not equal to ignore_index)
};

// fairseq's label-smoothed NLL as the original research code (CrossFit) trains with it:
// smooth = -sum over the vocabulary of log p, eps spread as eps / V over all V classes.
// logits: [..., V]; targets: [...] int64, entries equal to `ignore_index` (the trainer's pad,
// or Hugging Face's -100) contribute nothing. Log-probabilities are taken in fp32.
LabelSmoothedLoss LabelSmoothedNllLoss(const at::Tensor& logits, const at::Tensor& targets,
                                       double epsilon, int64_t ignore_index);

}  // namespace taskmoe

#endif  // TASKMOE_MOE_MODEL_LOSS_H_
