#ifndef TASKMOE_TESTS_TINY_TRAINER_H_
#define TASKMOE_TESTS_TINY_TRAINER_H_

// A tiny gym and a tiny model config for end-to-end runs of the trainer, and tensor comparisons
// of their checkpoints.

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "glog/logging.h"
#include "moe/formats/safetensors.h"
#include "moe/train/experiment_config.h"
#include "tests/tiny_gym.h"

namespace taskmoe::testing {

// One small gym shared by the tests of a binary.
inline const std::string& GymDir() {
  static const std::string* dir = [] {
    gym::GymOptions options;
    options.train_examples = 48;
    options.upstream_dev_examples = 4;
    options.upstream_test_examples = 4;
    options.fewshot_pool_examples = 64;
    options.fewshot_test_examples = 8;
    return new std::string(MakeTinyGym("gym", options));
  }();
  return *dir;
}

// The config overrides (path=value) of a tiny run writing to `output_dir`: a 1+1-layer model with
// 2 experts on GymDir(), 8 steps, evaluated every 4; `extra` overrides come last (later ones win).
inline std::vector<std::string> TinyRunOverrides(const std::string& output_dir,
                                                 const std::vector<std::string>& extra = {}) {
  std::vector<std::string> overrides = {
      "output_dir=" + output_dir,
      "data.data_dir=" + GymDir(),
      "routing.plugin=learned",
      "model.random_init={d_model: 16 encoder_layers: 1 decoder_layers: 1 attention_heads: 2 "
      "ffn_dim: 32 max_position_embeddings: 64}",
      "model.experts=2",
      "model.init_eps=0.01",
      "model.dropout=0.1",
      "task_vectors.random=true",
      "task_vectors.dim=8",
      "optimizer.lr=1e-3",
      "training.total_steps=8",
      "training.warmup_ratio=0.25",
      "training.gradient_accumulation_steps=2",
      "training.train_batch_size=8",
      "training.threads=1",
      "evaluation.eval_period=4",
      "evaluation.num_beams=1",
      "evaluation.max_dev_examples=2",
      "evaluation.do_predict=false",
      "data.max_input_length=40",
      "data.max_output_length=12",
  };
  overrides.insert(overrides.end(), extra.begin(), extra.end());
  return overrides;
}

// The tiny run's config (TinyRunOverrides).
inline ExperimentConfig TinyConfig(const std::string& output_dir,
                                   const std::vector<std::string>& extra = {}) {
  absl::StatusOr<ExperimentConfig> config =
      LoadExperimentConfig("", TinyRunOverrides(output_dir, extra));
  CHECK(config.ok()) << config.status();
  return *config;
}

inline TensorMap ReadTensors(const std::string& path) {
  absl::StatusOr<TensorMap> tensors = ReadSafetensors(path);
  CHECK(tensors.ok()) << tensors.status();
  return *tensors;
}

inline void ExpectSameTensors(const TensorMap& a, const TensorMap& b, double tolerance) {
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [name, tensor] : a) {
    ASSERT_TRUE(b.count(name)) << name;
    if (tolerance == 0) {
      EXPECT_TRUE(at::equal(tensor, b.at(name))) << name;
    } else {
      EXPECT_LE((tensor - b.at(name)).abs().max().item<double>(), tolerance) << name;
    }
  }
}

}  // namespace taskmoe::testing

#endif  // TASKMOE_TESTS_TINY_TRAINER_H_
