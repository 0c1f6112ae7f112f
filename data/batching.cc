#include "data/batching.h"

#include <algorithm>
#include <map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "glog/logging.h"

namespace taskmoe {
namespace {

// SplitMix64: a small, fully specified generator, so shuffles and target draws are the same on
// every platform and standard library (std::shuffle and distributions are not).
uint64_t SplitMix64(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// A well-mixed value of several integers.
uint64_t Mix(uint64_t a, uint64_t b, uint64_t c) {
  uint64_t state = a;
  state = SplitMix64(state) ^ b;
  state = SplitMix64(state) ^ c;
  return SplitMix64(state);
}

// Uniform in [0, bound) (Lemire's multiply-shift; its bias is below 2^-32 for our bounds).
uint64_t Below(uint64_t random, uint64_t bound) {
  return static_cast<uint64_t>((static_cast<unsigned __int128>(random) * bound) >> 64);
}

// Salts that keep the independent random streams apart.
constexpr uint64_t kShuffleStream = 1;
constexpr uint64_t kBatchOrderStream = 2;
constexpr uint64_t kTargetStream = 3;

template <typename T>
void Shuffle(std::vector<T>& items, uint64_t state) {
  for (size_t i = items.size(); i > 1; --i) {
    std::swap(items[i - 1], items[Below(SplitMix64(state), i)]);
  }
}

std::vector<int64_t> EncodeTruncated(const BartTokenizer& tokenizer, const std::string& text,
                                     int64_t max_length, int64_t* truncated) {
  std::vector<int64_t> ids = tokenizer.Encode(text);
  if (static_cast<int64_t>(ids.size()) > max_length) {
    ids.resize(max_length);
    ids.back() = tokenizer.eos_id();
    ++*truncated;
  }
  return ids;
}

// Copies rows into a [rows, longest] matrix padded with pad_id, plus its 0/1 mask.
void Pad(const std::vector<const std::vector<int64_t>*>& rows, int64_t pad_id,
         std::vector<int64_t>* matrix, std::vector<int64_t>* mask, int64_t* length) {
  size_t longest = 0;
  for (const std::vector<int64_t>* row : rows) longest = std::max(longest, row->size());
  *length = static_cast<int64_t>(longest);
  matrix->assign(rows.size() * longest, pad_id);
  mask->assign(rows.size() * longest, 0);
  for (size_t r = 0; r < rows.size(); ++r) {
    std::copy(rows[r]->begin(), rows[r]->end(), matrix->begin() + r * longest);
    std::fill(mask->begin() + r * longest, mask->begin() + r * longest + rows[r]->size(), 1);
  }
}

Batch BuildBatch(const TokenizedDataset& dataset, const std::vector<int64_t>& indices,
                 const BatchOptions& options, int64_t epoch) {
  Batch batch;
  batch.size = static_cast<int64_t>(indices.size());
  batch.example_indices = indices;
  std::vector<const std::vector<int64_t>*> inputs, outputs;
  for (int64_t index : indices) {
    const TokenizedExample& example = dataset.examples[index];
    batch.task_ids.push_back(example.task_id);
    inputs.push_back(&example.input_ids);
    CHECK(!example.output_ids.empty()) << "example " << index << " has no output";
    const uint64_t draw = Below(Mix(options.seed ^ kTargetStream, epoch, index),
                                example.output_ids.size());
    outputs.push_back(&example.output_ids[draw]);
  }
  Pad(inputs, options.pad_id, &batch.input_ids, &batch.attention_mask, &batch.input_length);
  Pad(outputs, options.pad_id, &batch.output_ids, &batch.output_mask, &batch.output_length);
  return batch;
}

std::vector<std::vector<int64_t>> Chunk(const std::vector<int64_t>& indices, int64_t size) {
  std::vector<std::vector<int64_t>> chunks;
  for (size_t start = 0; start < indices.size(); start += size) {
    const size_t end = std::min(indices.size(), start + static_cast<size_t>(size));
    chunks.emplace_back(indices.begin() + start, indices.begin() + end);
  }
  return chunks;
}

}  // namespace

std::string TruncationStats::Summary(int64_t max_input_length, int64_t max_output_length) const {
  return absl::StrCat("truncated ", truncated_inputs, " of ", inputs, " inputs (max ",
                      max_input_length, " tokens), ", truncated_outputs, " of ", outputs,
                      " outputs (max ", max_output_length, " tokens)");
}

TokenizedDataset TokenizeTaskFiles(const std::vector<TaskFile>& files,
                                   const BartTokenizer& tokenizer, const TokenizeOptions& options) {
  // <s> and </s> need room; a shorter limit is a configuration bug.
  CHECK_GE(options.max_input_length, 2);
  CHECK_GE(options.max_output_length, 2);
  TokenizedDataset dataset;
  std::map<std::string, int32_t> task_ids;
  for (const TaskFile& file : files) {
    auto [it, inserted] = task_ids.emplace(file.task, static_cast<int32_t>(dataset.tasks.size()));
    if (inserted) dataset.tasks.push_back(file.task);
    for (const Example& example : file.examples) {
      TokenizedExample tokenized;
      tokenized.task_id = it->second;
      tokenized.input_ids =
          EncodeTruncated(tokenizer, FormatInput(file.task, example.input, options.format),
                          options.max_input_length, &dataset.truncation.truncated_inputs);
      ++dataset.truncation.inputs;
      for (const std::string& output : example.outputs) {
        tokenized.output_ids.push_back(
            EncodeTruncated(tokenizer, FormatOutput(output, options.format),
                            options.max_output_length, &dataset.truncation.truncated_outputs));
        ++dataset.truncation.outputs;
      }
      dataset.examples.push_back(std::move(tokenized));
    }
  }
  return dataset;
}

std::vector<Batch> MakeEpochBatches(const TokenizedDataset& dataset, const BatchOptions& options,
                                    int64_t epoch) {
  CHECK_GT(options.batch_size, 0);
  std::vector<std::vector<int64_t>> groups;
  if (options.grouping == BatchGrouping::kMixed) {
    groups.emplace_back();
    for (size_t i = 0; i < dataset.examples.size(); ++i) groups[0].push_back(i);
  } else {
    groups.resize(dataset.tasks.size());
    for (size_t i = 0; i < dataset.examples.size(); ++i) {
      groups[dataset.examples[i].task_id].push_back(i);
    }
  }
  std::vector<std::vector<int64_t>> batch_indices;
  for (size_t g = 0; g < groups.size(); ++g) {
    if (options.shuffle) Shuffle(groups[g], Mix(options.seed ^ kShuffleStream, epoch, g));
    for (std::vector<int64_t>& chunk : Chunk(groups[g], options.batch_size)) {
      batch_indices.push_back(std::move(chunk));
    }
  }
  if (options.shuffle && options.grouping == BatchGrouping::kTaskGrouped) {
    Shuffle(batch_indices, Mix(options.seed ^ kBatchOrderStream, epoch, 0));
  }
  std::vector<Batch> batches;
  batches.reserve(batch_indices.size());
  for (const std::vector<int64_t>& indices : batch_indices) {
    batches.push_back(BuildBatch(dataset, indices, options, epoch));
  }
  return batches;
}

}  // namespace taskmoe
