#ifndef TASKMOE_DATA_GYM_GYM_WRITER_H_
#define TASKMOE_DATA_GYM_GYM_WRITER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace taskmoe::gym {

// Recorded in skills.json; a directory whose skills.json carries it is a gym that
// WriteGym may replace.
inline constexpr char kGymGenerator[] = "taskmoe make_gym";

// The version of the task table (tasks.cc: tasks, their skills and input ranges), recorded in
// skills.json beside the options: bump it whenever a change to the table changes what a gym of
// the same options holds, so that a gym generated on first use is regenerated.
inline constexpr int kGymTableVersion = 2;

// Top-level files of a gym directory, besides one directory per task.
inline constexpr char kSkillsFile[] = "skills.json";
inline constexpr char kSplitFile[] = "split.json";
inline constexpr char kOntologyFile[] = "ontology.json";
inline constexpr char kMetricsFile[] = "metrics.json";
// The gym's own byte-level BPE tokenizer (vocab.json, merges.txt), learned from its text.
inline constexpr char kTokenizerDir[] = "tokenizer";

struct GymOptions {
  uint64_t seed = 1;
  // Upstream (train) tasks: one prefix `<task>_<train_examples>_100` with these sizes.
  int train_examples = 512;
  int upstream_dev_examples = 32;
  int upstream_test_examples = 64;
  // Held-out (dev/test) tasks: k-shot train/dev files per few-shot seed, drawn from a
  // source pool as CrossFit does (per label for classification), and one shared test set.
  int fewshot_pool_examples = 512;
  int fewshot_test_examples = 256;
  int k_classification = 16;
  int k_text_to_text = 32;
  std::vector<int> fewshot_seeds = {100, 13, 21, 42, 87};
  // Requested vocabulary of the gym tokenizer. The gym's text supports about 700 entries
  // (every lexicon word becomes one token); the BPE trainer stops there with a warning.
  int64_t vocab_size = 1024;
};

struct GymSummary {
  int tasks = 0;
  int files = 0;           // TSV and JSON files (the tokenizer's two files aside)
  int64_t examples = 0;    // lines written, over all TSV files
  int64_t vocab_size = 0;  // of the tokenizer written
};

// OK when `output_dir` is absent, empty, or a gym written by WriteGym that holds nothing
// else; FailedPrecondition (naming the directory and the reason) otherwise.
absl::Status CheckGymDirectory(const std::string& output_dir);

// Whether `dir` holds a gym that WriteGym wrote with another version of the task table
// (kGymTableVersion); false for a missing directory and for one that is not a make_gym gym.
bool IsOutdatedGym(const std::string& dir);

// Whether `dir` holds a gym that WriteGym wrote with `options`.
bool IsGymWrittenWith(const std::string& dir, const GymOptions& options);

// Writes the whole gym into `output_dir` (replacing a previous gym there whole, through a
// staging directory beside it; refusing any other non-empty directory): one CrossFit task
// directory per task, named by the task's opaque id (GymTasksWithIds), skills.json (id -> readable name, skill inventory, task x skill
// matrix, categories, metrics), split.json, ontology.json, metrics.json, and tokenizer/ (a BPE
// learned from every distinct text as the CrossFit loaders format it: " [id] input" and
// " output"). The tree depends only on `options`:
// the same options give identical bytes.
absl::StatusOr<GymSummary> WriteGym(const GymOptions& options, const std::string& output_dir);

}  // namespace taskmoe::gym

#endif  // TASKMOE_DATA_GYM_GYM_WRITER_H_
