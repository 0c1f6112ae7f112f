// Writes the embedded synthetic skill gym (the default TaskMoE data set) in the CrossFit
// layout, with split.json, ontology.json, metrics.json and skills.json, and the gym's own
// byte-level BPE tokenizer (vocab.json, merges.txt under tokenizer/) learned from its text.
//
//   make_gym --output_dir=/tmp/gym --seed=1
//
// The same flags always give byte-identical trees. An existing gym in --output_dir is
// replaced; any other non-empty directory is refused.
#include <cstdint>
#include <iostream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/status/status.h"
#include "data/gym/gym_writer.h"
#include "tools/tool_main.h"
#include <glog/logging.h>

ABSL_FLAG(std::string, output_dir, "", "Directory to write the gym into (created if absent).");
ABSL_FLAG(uint64_t, seed, 1, "Seed of every random choice; equal seeds give identical trees.");
ABSL_FLAG(int, train_examples, 512, "Training examples per upstream (train) task.");
ABSL_FLAG(int, upstream_dev_examples, 32, "Dev examples per upstream task.");
ABSL_FLAG(int, upstream_test_examples, 64, "Test examples per upstream task.");
ABSL_FLAG(int, fewshot_pool_examples, 512,
          "Source examples per held-out task that the k-shot train/dev files are drawn from.");
ABSL_FLAG(int, fewshot_test_examples, 256, "Test examples per held-out task.");
ABSL_FLAG(int, k_classification, 16, "k of held-out classification tasks (per label).");
ABSL_FLAG(int, k_text_to_text, 32, "k of the other held-out tasks.");
ABSL_FLAG(int64_t, vocab_size, 1024,
          "Vocabulary size asked of the gym tokenizer (fewer when the gym's text runs out of "
          "pairs to merge).");

namespace taskmoe {
namespace {

absl::Status Run() {
  const std::string output_dir = absl::GetFlag(FLAGS_output_dir);
  if (output_dir.empty()) return absl::InvalidArgumentError("--output_dir is required");
  gym::GymOptions options;
  options.seed = absl::GetFlag(FLAGS_seed);
  options.train_examples = absl::GetFlag(FLAGS_train_examples);
  options.upstream_dev_examples = absl::GetFlag(FLAGS_upstream_dev_examples);
  options.upstream_test_examples = absl::GetFlag(FLAGS_upstream_test_examples);
  options.fewshot_pool_examples = absl::GetFlag(FLAGS_fewshot_pool_examples);
  options.fewshot_test_examples = absl::GetFlag(FLAGS_fewshot_test_examples);
  options.k_classification = absl::GetFlag(FLAGS_k_classification);
  options.k_text_to_text = absl::GetFlag(FLAGS_k_text_to_text);
  options.vocab_size = absl::GetFlag(FLAGS_vocab_size);

  absl::StatusOr<gym::GymSummary> summary = gym::WriteGym(options, output_dir);
  if (!summary.ok()) return summary.status();
  LOG(INFO) << "wrote " << summary->tasks << " tasks, " << summary->files << " files, "
            << summary->examples << " examples and a " << summary->vocab_size
            << "-token tokenizer to " << output_dir;
  return absl::OkStatus();
}

}  // namespace
}  // namespace taskmoe

int main(int argc, char** argv) {
  taskmoe::ToolOptions tool;
  tool.name = "make_gym";
  tool.usage = "Writes the synthetic skill gym. Usage: make_gym --output_dir=DIR";
  return taskmoe::RunTool(argc, argv, tool,
                          [](const std::vector<std::string>&) { return taskmoe::Run(); });
}
