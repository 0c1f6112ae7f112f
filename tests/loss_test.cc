#include "moe/model/loss.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>

#include "tests/bart_fixture.h"

namespace taskmoe {
namespace {

TEST(LabelSmoothedNllLoss, MatchesFairseqOnFixtureLogits) {
  TensorMap c = testing::BartTinyCase();
  const double epsilon = c.at("label_smoothing_epsilon").item<float>();
  LabelSmoothedLoss loss = LabelSmoothedNllLoss(c.at("logits"), c.at("labels"), epsilon, -100);
  const double expected = c.at("loss_label_smoothed").item<float>();
  EXPECT_NEAR(loss.loss.item<double>(), expected, 1e-5 * std::abs(expected));
  const double expected_nll = c.at("nll_loss_sum").item<float>();
  EXPECT_NEAR(loss.nll_loss.item<double>(), expected_nll, 1e-5 * std::abs(expected_nll));
  EXPECT_EQ(loss.ntokens.item<int64_t>(), c.at("ntokens").item<int64_t>());
  // Hugging Face's mean cross entropy is the nll per counted target.
  EXPECT_NEAR(loss.nll_loss.item<double>() / loss.ntokens.item<int64_t>(),
              c.at("loss_ce_mean").item<float>(), 1e-5);
}

TEST(LabelSmoothedNllLoss, PadAsIgnoreIndexEqualsMinusHundred) {
  TensorMap c = testing::BartTinyCase();
  const at::Tensor labels = c.at("labels");
  const at::Tensor padded = labels.masked_fill(labels.eq(-100), 1);
  LabelSmoothedLoss with_pad = LabelSmoothedNllLoss(c.at("logits"), padded, 0.1, 1);
  LabelSmoothedLoss with_minus = LabelSmoothedNllLoss(c.at("logits"), labels, 0.1, -100);
  EXPECT_FLOAT_EQ(with_pad.loss.item<float>(), with_minus.loss.item<float>());
}

TEST(LabelSmoothedNllLoss, KnownValuesOnUniformLogits) {
  // Uniform over V: -log p = log V for every class, so nll = n log V and smooth = n V log V,
  // hence loss = (1 - eps) n log V + eps n log V = n log V.
  const int64_t vocab = 8;
  const at::Tensor logits = at::zeros({2, 3, vocab});
  const at::Tensor targets = at::tensor({1, 2, 7, 5, -1, -1}, at::kLong).view({2, 3});
  LabelSmoothedLoss loss = LabelSmoothedNllLoss(logits, targets, 0.1, -1);
  EXPECT_NEAR(loss.nll_loss.item<double>(), 4 * std::log(8.0), 1e-5);
  EXPECT_NEAR(loss.loss.item<double>(), 4 * std::log(8.0), 1e-5);
  // eps = 0 is plain summed cross entropy.
  const at::Tensor peaked = at::zeros({1, vocab}).index_fill_(1, at::tensor({3}, at::kLong), 2.0);
  LabelSmoothedLoss plain = LabelSmoothedNllLoss(peaked, at::tensor({3}, at::kLong), 0.0, -1);
  EXPECT_NEAR(plain.loss.item<double>(), -std::log(std::exp(2.0) / (std::exp(2.0) + 7)), 1e-6);
}

TEST(LabelSmoothedNllLoss, GradientFlowsOnlyFromCountedTargets) {
  at::Tensor logits = at::randn({2, 4}).set_requires_grad(true);
  LabelSmoothedLoss loss = LabelSmoothedNllLoss(logits, at::tensor({3, 0}, at::kLong), 0.1, 0);
  loss.loss.backward();
  EXPECT_GT(logits.grad()[0].abs().sum().item<float>(), 0.f);
  EXPECT_EQ(logits.grad()[1].abs().sum().item<float>(), 0.f);
}

// The hand-written backward pass against autograd through the formula, for both outputs.
TEST(LabelSmoothedNllLoss, GradientEqualsAutogradOfTheFormula) {
  const double epsilon = 0.1;
  const int64_t vocab = 11;
  const at::Tensor values = at::randn({2, 3, vocab});
  const at::Tensor targets = at::tensor({4, 0, -100, 10, 7, -100}, at::kLong).view({2, 3});

  const at::Tensor fused_logits = values.clone().requires_grad_();
  const LabelSmoothedLoss fused = LabelSmoothedNllLoss(fused_logits, targets, epsilon, -100);
  (0.7 * fused.loss + 0.3 * fused.nll_loss).backward();

  const at::Tensor logits = values.clone().requires_grad_();
  const at::Tensor log_probs = at::log_softmax(logits, -1);
  const at::Tensor counted = targets.ne(-100);
  const at::Tensor mask = counted.to(at::kFloat);
  const at::Tensor nll =
      -(log_probs.gather(-1, targets.clamp_min(0).unsqueeze(-1)).squeeze(-1) * mask).sum();
  const at::Tensor smooth = -(log_probs.sum(-1) * mask).sum();
  const at::Tensor loss = (1 - epsilon) * nll + (epsilon / vocab) * smooth;
  (0.7 * loss + 0.3 * nll).backward();

  EXPECT_NEAR(fused.loss.item<double>(), loss.item<double>(), 1e-5);
  EXPECT_NEAR(fused.nll_loss.item<double>(), nll.item<double>(), 1e-5);
  EXPECT_LT((fused_logits.grad() - logits.grad()).abs().max().item<double>(), 1e-6);
  // Ignored targets get no gradient.
  EXPECT_EQ(fused_logits.grad()[0][2].abs().sum().item<double>(), 0.0);
}

}  // namespace
}  // namespace taskmoe
