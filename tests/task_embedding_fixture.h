#ifndef TASKMOE_TESTS_TASK_EMBEDDING_FIXTURE_H_
#define TASKMOE_TESTS_TASK_EMBEDDING_FIXTURE_H_

// Tiny inputs for the task-embedding tests.

#include <cstdint>
#include <utility>
#include <vector>

#include "data/batching.h"
#include "google/protobuf/any.pb.h"
#include "moe/embedding/task_embedding.h"

namespace taskmoe::testing {

// Two tasks of hand-made token ids (bart_tiny's vocabulary has 96 ids, pad 1) with inputs of
// different lengths, so batches of two hold padding.
inline TokenizedDataset TinyDataset() {
  TokenizedDataset data;
  data.tasks = {"task_a", "task_b"};
  auto add = [&](int32_t task, std::vector<int64_t> input, std::vector<int64_t> output) {
    TokenizedExample example;
    example.task_id = task;
    example.input_ids = std::move(input);
    example.output_ids = {std::move(output)};
    data.examples.push_back(std::move(example));
  };
  add(0, {0, 10, 11, 12, 2}, {0, 40, 2});
  add(0, {0, 13, 2}, {0, 41, 42, 2});
  add(0, {0, 14, 15, 16, 17, 18, 2}, {0, 43, 2});
  add(1, {0, 50, 51, 2}, {0, 60, 2});
  add(1, {0, 52, 53, 54, 55, 2}, {0, 61, 62, 2});
  return data;
}

inline TaskEmbeddingInput InputFor(TaskEmbeddingModel* model, const TokenizedDataset& data) {
  TaskEmbeddingInput input;
  input.model = model;
  input.data = &data;
  return input;
}

template <typename Params>
google::protobuf::Any Pack(const Params& params) {
  google::protobuf::Any any;
  any.PackFrom(params);
  return any;
}

}  // namespace taskmoe::testing

#endif  // TASKMOE_TESTS_TASK_EMBEDDING_FIXTURE_H_
