#ifndef TASKMOE_MOE_TRAIN_BATCH_STREAM_H_
#define TASKMOE_MOE_TRAIN_BATCH_STREAM_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "data/batching.h"

namespace taskmoe {

// The training batches of a run, epoch after epoch; each of `world_size` processes takes its
// own batch of every group of `world_size` consecutive batches. The position is the caller's
// (the trainer state's data_position), so a resumed run continues where the saved one stopped.
class BatchStream {
 public:
  // `data` must outlive the stream.
  BatchStream(const TokenizedDataset& data, BatchOptions options, int64_t rank,
              int64_t world_size);

  // The next batch of this process; advances `position` ("epoch", "batch").
  const Batch& Next(std::map<std::string, int64_t>& position);

 private:
  const TokenizedDataset& data_;
  BatchOptions options_;
  int64_t rank_;
  int64_t world_size_;
  std::vector<Batch> epoch_batches_;
  int64_t loaded_epoch_ = -1;
};

}  // namespace taskmoe

#endif  // TASKMOE_MOE_TRAIN_BATCH_STREAM_H_
