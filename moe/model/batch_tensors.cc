#include "moe/model/batch_tensors.h"

#include <vector>

namespace taskmoe {
namespace {

at::Tensor Matrix(const std::vector<int64_t>& values, int64_t rows, int64_t cols) {
  return at::tensor(values, at::kLong).view({rows, cols});
}

}  // namespace

BatchTensors ToTensors(const Batch& batch, int64_t decoder_start_token_id, at::Device device) {
  BatchTensors t;
  t.input_ids = Matrix(batch.input_ids, batch.size, batch.input_length).to(device);
  t.attention_mask = Matrix(batch.attention_mask, batch.size, batch.input_length).to(device);
  at::Tensor labels = Matrix(batch.output_ids, batch.size, batch.output_length);
  at::Tensor start = at::full({batch.size, 1}, decoder_start_token_id, at::kLong);
  t.decoder_input_ids =
      at::cat({start, labels.slice(1, 0, batch.output_length - 1)}, 1).to(device);
  t.labels = labels.to(device);
  std::vector<int64_t> task_ids(batch.task_ids.begin(), batch.task_ids.end());
  t.task_ids = at::tensor(task_ids, at::kLong).to(device);
  return t;
}

}  // namespace taskmoe
