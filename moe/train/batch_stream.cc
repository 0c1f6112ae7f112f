#include "moe/train/batch_stream.h"

#include <utility>

#include "glog/logging.h"

namespace taskmoe {

BatchStream::BatchStream(const TokenizedDataset& data, BatchOptions options, int64_t rank,
                         int64_t world_size)
    : data_(data), options_(std::move(options)), rank_(rank), world_size_(world_size) {}

const Batch& BatchStream::Next(std::map<std::string, int64_t>& position) {
  for (;;) {
    int64_t& epoch = position["epoch"];
    int64_t& batch = position["batch"];
    if (loaded_epoch_ != epoch) {
      epoch_batches_ = MakeEpochBatches(data_, options_, epoch);
      loaded_epoch_ = epoch;
    }
    const int64_t usable = static_cast<int64_t>(epoch_batches_.size()) / world_size_ * world_size_;
    if (batch + world_size_ <= usable) {
      const Batch& next = epoch_batches_[batch + rank_];
      batch += world_size_;
      return next;
    }
    CHECK_GT(usable, 0) << "fewer training batches than processes";
    ++epoch;
    batch = 0;
  }
}

}  // namespace taskmoe
