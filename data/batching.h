#ifndef TASKMOE_DATA_BATCHING_H_
#define TASKMOE_DATA_BATCHING_H_

// CrossFit examples -> token ids -> padded batches. Batches are plain int64 vectors plus their
// shape (no LibTorch here, so data/ compiles fast); the trainer turns them into tensors.

#include <cstdint>
#include <string>
#include <vector>

#include "data/crossfit.h"
#include "data/tokenizer.h"

namespace taskmoe {

struct TokenizedExample {
  int32_t task_id = 0;  // index into TokenizedDataset::tasks
  std::vector<int64_t> input_ids;
  // One id sequence per valid output (training draws one of them per fetch).
  std::vector<std::vector<int64_t>> output_ids;
};

// How many sequences were longer than their maximum length and were cut.
struct TruncationStats {
  int64_t inputs = 0;
  int64_t truncated_inputs = 0;
  int64_t outputs = 0;
  int64_t truncated_outputs = 0;
  // E.g. "truncated 3 of 120 inputs (max 512 tokens), 0 of 130 outputs (max 64 tokens)".
  std::string Summary(int64_t max_input_length, int64_t max_output_length) const;
};

struct TokenizedDataset {
  std::vector<std::string> tasks;  // task id -> task name, in first-seen order
  std::vector<TokenizedExample> examples;
  TruncationStats truncation;
};

struct TokenizeOptions {
  FormatOptions format;
  // Lengths include <s> and </s>; a longer sequence keeps its first max-1 tokens and ends with
  // </s>, as Hugging Face's truncation does (CrossTaskMoE defaults: 512 and 64).
  int64_t max_input_length = 512;
  int64_t max_output_length = 64;
};

// Formats every example of every file as the original does (" [task] input", " output") and
// encodes it; files of the same task share a task id.
TokenizedDataset TokenizeTaskFiles(const std::vector<TaskFile>& files,
                                   const BartTokenizer& tokenizer, const TokenizeOptions& options);

enum class BatchGrouping {
  kMixed,        // examples of all tasks shuffled together (the original)
  kTaskGrouped,  // every batch holds examples of one task; batch order shuffled
};

struct BatchOptions {
  int64_t batch_size = 32;
  BatchGrouping grouping = BatchGrouping::kMixed;
  bool shuffle = true;  // false: dataset order (evaluation)
  uint64_t seed = 42;
  int64_t pad_id = 1;   // BartTokenizer::pad_id()
};

// One batch, row-major [size, length] matrices padded with pad_id to the longest sequence of
// the batch (so padding is trimmed per batch).
struct Batch {
  int64_t size = 0;
  int64_t input_length = 0;
  int64_t output_length = 0;
  std::vector<int64_t> input_ids;
  std::vector<int64_t> attention_mask;  // 1 on tokens, 0 on padding
  std::vector<int64_t> output_ids;      // the training target of each example
  std::vector<int64_t> output_mask;
  std::vector<int32_t> task_ids;         // per example
  std::vector<int64_t> example_indices;  // per example, into TokenizedDataset::examples
};

// The batches of one pass over the data. Order and targets are a pure function of
// (seed, epoch): an example with several outputs gets one drawn uniformly at random for each
// epoch. The last batch (of each task, when grouped) may be smaller.
std::vector<Batch> MakeEpochBatches(const TokenizedDataset& dataset, const BatchOptions& options,
                                    int64_t epoch);

}  // namespace taskmoe

#endif  // TASKMOE_DATA_BATCHING_H_
