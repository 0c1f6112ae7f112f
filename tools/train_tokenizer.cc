// Learns a byte-level BPE tokenizer (GPT-2/BART vocab.json + merges.txt) from text files.
//
//   train_tokenizer --corpus=a.txt,task_16_100_train.tsv --vocab_size=2000 --output_dir=tok/
//
// A .tsv corpus file is read as CrossFit data (each field a text); other files hold one text
// per line. The result loads with BartTokenizer::LoadFromDirectory(output_dir).

#include <iostream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/status/status.h"
#include "data/bpe_trainer.h"
#include "glog/logging.h"
#include "tools/tool_main.h"

ABSL_FLAG(std::vector<std::string>, corpus, {}, "Comma-separated corpus files.");
ABSL_FLAG(int64_t, vocab_size, taskmoe::BpeTrainerOptions().vocab_size,
          "Entries of vocab.json, including 5 special tokens and 256 byte symbols.");
ABSL_FLAG(int64_t, min_pair_frequency, taskmoe::BpeTrainerOptions().min_pair_frequency,
          "Pairs seen fewer times are never merged.");
ABSL_FLAG(std::string, output_dir, "", "Directory for vocab.json and merges.txt.");

namespace taskmoe {
namespace {

absl::Status Run() {
  if (absl::GetFlag(FLAGS_corpus).empty() || absl::GetFlag(FLAGS_output_dir).empty()) {
    return absl::InvalidArgumentError("--corpus and --output_dir are required");
  }
  absl::StatusOr<std::vector<std::string>> corpus = ReadBpeCorpus(absl::GetFlag(FLAGS_corpus));
  if (!corpus.ok()) return corpus.status();
  BpeTrainerOptions options;
  options.vocab_size = absl::GetFlag(FLAGS_vocab_size);
  options.min_pair_frequency = absl::GetFlag(FLAGS_min_pair_frequency);
  LOG(INFO) << "training a " << options.vocab_size << "-entry BPE on " << corpus->size()
            << " texts";
  return TrainBpe(*corpus, options, absl::GetFlag(FLAGS_output_dir));
}

}  // namespace
}  // namespace taskmoe

int main(int argc, char** argv) {
  taskmoe::ToolOptions tool;
  tool.name = "train_tokenizer";
  tool.usage =
      "Learns a byte-level BPE tokenizer (vocab.json + merges.txt) from text files.";
  return taskmoe::RunTool(argc, argv, tool,
                          [](const std::vector<std::string>&) { return taskmoe::Run(); });
}
