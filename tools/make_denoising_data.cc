// Writes a denoising pre-training corpus in the CrossFit layout (data/denoising_corpus.h): the
// unlabeled inputs of a data set's tasks corrupted by BART's text infilling, with the clean
// text as the output, so that tools/trainer pre-trains a dense model on it.
//
//   make_denoising_data --data_dir=gym_data --output_dir=runs/pretrain_data
//                       [--split_list=train] [--copies=4] [--mask_ratio=0.3]
//                       [--poisson_lambda=3] [--seed=1]
#include <iostream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/status/status.h"
#include "data/denoising_corpus.h"
#include "moe/base/status_macros.h"
#include "tools/tool_main.h"

ABSL_FLAG(std::string, data_dir, "", "CrossFit-layout data set whose task inputs are read.");
ABSL_FLAG(std::string, split, "", "Split file; empty: <data_dir>/split.json.");
ABSL_FLAG(std::string, split_list, "train", "Which list of the split file to read.");
ABSL_FLAG(std::string, tokenizer_dir, "",
          "Directory of vocab.json and merges.txt; empty: <data_dir>/tokenizer.");
ABSL_FLAG(std::string, output_dir, "", "Directory to write the corpus to (replaced as a whole).");
ABSL_FLAG(int, copies, 4, "Differently noised copies of every training text.");
ABSL_FLAG(double, mask_ratio, 0.3, "Fraction of each text's tokens masked (BART: 0.3).");
ABSL_FLAG(double, poisson_lambda, 3.0, "Mean masked span length (BART: 3).");
ABSL_FLAG(uint64_t, seed, 1, "Seed of the noise.");

namespace taskmoe {
namespace {

absl::Status Run() {
  DenoisingCorpusOptions options;
  options.data_dir = absl::GetFlag(FLAGS_data_dir);
  options.split_file = absl::GetFlag(FLAGS_split);
  options.split_list = absl::GetFlag(FLAGS_split_list);
  options.tokenizer_dir = absl::GetFlag(FLAGS_tokenizer_dir);
  options.output_dir = absl::GetFlag(FLAGS_output_dir);
  options.copies = absl::GetFlag(FLAGS_copies);
  options.seed = absl::GetFlag(FLAGS_seed);
  options.noise.mask_ratio = absl::GetFlag(FLAGS_mask_ratio);
  options.noise.poisson_lambda = absl::GetFlag(FLAGS_poisson_lambda);
  TASKMOE_ASSIGN_OR_RETURN(const DenoisingCorpusSummary summary, WriteDenoisingCorpus(options));
  std::cout << "wrote " << options.output_dir << ": " << summary.texts << " texts of "
            << summary.tasks << " tasks -> " << summary.train_lines << " train, "
            << summary.dev_lines << " dev, " << summary.test_lines << " test lines; "
            << summary.masked_fraction * 100 << "% of the training tokens masked\n";
  return absl::OkStatus();
}

}  // namespace
}  // namespace taskmoe

int main(int argc, char** argv) {
  taskmoe::ToolOptions tool;
  tool.name = "make_denoising_data";
  tool.output_flags = {"output_dir"};
  tool.usage =
      "Writes a text-infilling denoising corpus. Usage: make_denoising_data --data_dir=DIR "
      "--output_dir=DIR";
  return taskmoe::RunTool(argc, argv, tool,
                          [](const std::vector<std::string>&) { return taskmoe::Run(); });
}
