#ifndef TASKMOE_TESTS_BART_FIXTURE_H_
#define TASKMOE_TESTS_BART_FIXTURE_H_

// Access to ../shared/fixtures/bart_tiny for the BART tests (list "@shared//:bart_tiny" in data).

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <string>

#include "moe/formats/safetensors.h"
#include "moe/model/bart.h"
#include "moe/model/bart_weights.h"
#include "tests/shared_data.h"

namespace taskmoe::testing {

inline std::string BartTinyDir() { return SharedPath("fixtures/bart_tiny"); }

// The fixture model in eval mode; fails the test if it does not load.
inline BartForConditionalGeneration LoadBartTiny() {
  absl::StatusOr<BartForConditionalGeneration> model = LoadBartDirectory(BartTinyDir());
  EXPECT_TRUE(model.ok()) << model.status();
  return model.ok() ? *model : BartForConditionalGeneration(nullptr);
}

// case.safetensors: inputs and Hugging Face outputs.
inline TensorMap BartTinyCase() {
  absl::StatusOr<TensorMap> tensors = ReadSafetensors(BartTinyDir() + "/case.safetensors");
  EXPECT_TRUE(tensors.ok()) << tensors.status();
  return tensors.ok() ? *tensors : TensorMap();
}

inline double MaxAbsDiff(const at::Tensor& a, const at::Tensor& b) {
  EXPECT_EQ(a.sizes(), b.sizes());
  if (!a.sizes().equals(b.sizes())) return 1e30;
  return (a.to(at::kDouble) - b.to(at::kDouble)).abs().max().item<double>();
}

}  // namespace taskmoe::testing

#endif  // TASKMOE_TESTS_BART_FIXTURE_H_
