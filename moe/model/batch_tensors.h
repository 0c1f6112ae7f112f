#ifndef TASKMOE_MOE_MODEL_BATCH_TENSORS_H_
#define TASKMOE_MOE_MODEL_BATCH_TENSORS_H_

#include <ATen/ATen.h>

#include "data/batching.h"

namespace taskmoe {

// A batch as model input: sources, and targets shifted right behind the decoder start token
// (shift_tokens_right, as the original trains).
struct BatchTensors {
  at::Tensor input_ids;          // int64 [batch, source_len]
  at::Tensor attention_mask;     // int64 [batch, source_len]
  at::Tensor decoder_input_ids;  // int64 [batch, target_len]
  at::Tensor labels;             // int64 [batch, target_len], pad where there is no target
  at::Tensor task_ids;           // int64 [batch], ids of TokenizedDataset::tasks
};
BatchTensors ToTensors(const Batch& batch, int64_t decoder_start_token_id, at::Device device);

}  // namespace taskmoe

#endif  // TASKMOE_MOE_MODEL_BATCH_TENSORS_H_
