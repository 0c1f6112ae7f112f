#ifndef TASKMOE_DATA_BPE_TRAINER_H_
#define TASKMOE_DATA_BPE_TRAINER_H_

// Learns a byte-level BPE (GPT-2/BART file format) from a corpus, for BartTokenizer to load.

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace taskmoe {

struct BpeTrainerOptions {
  // Entries of vocab.json: 5 special tokens + 256 byte symbols + learned tokens. Training stops
  // early (with a warning) when no pair reaches min_pair_frequency any more.
  int64_t vocab_size = 4096;
  // A pair seen fewer times than this in the corpus is never merged.
  int64_t min_pair_frequency = 2;
};

struct BpeModel {
  // Token strings by id: <s>, <pad>, </s>, <unk> (0..3), the 256 byte symbols in byte order
  // (4..259), the learned tokens in merge order, <mask> last.
  std::vector<std::string> vocab;
  // Merges in rank order, as (left, right) token strings.
  std::vector<std::pair<std::string, std::string>> merges;
};

// Learns merges over the pre-tokens of every corpus text (GPT-2's regex, as BartTokenizer
// splits). Each step merges the pair with the highest count; ties go to the pair whose left
// token has the smaller id, then the right token with the smaller id, so the result is a
// deterministic function of the corpus and the options. No learned token can spell a special
// token: those mix punctuation and letters, which the pre-tokenizer always separates.
absl::StatusOr<BpeModel> LearnBpe(const std::vector<std::string>& corpus,
                                  const BpeTrainerOptions& options);

// Writes `vocab.json` (ids in order) and `merges.txt` (`#version: 0.2` header) into out_dir,
// creating it; each file is written under a temporary name and renamed into place.
absl::Status WriteBpeModel(const BpeModel& model, const std::string& out_dir);

// LearnBpe + WriteBpeModel.
absl::Status TrainBpe(const std::vector<std::string>& corpus, const BpeTrainerOptions& options,
                      const std::string& out_dir);

// Reads corpus texts from files: one text per line, except `.tsv` files (CrossFit data), where
// each tab-separated field of a line is a text and is given the leading space that CrossFit's
// input formatting puts before inputs and outputs. Empty lines are skipped, CRLF is accepted.
absl::StatusOr<std::vector<std::string>> ReadBpeCorpus(const std::vector<std::string>& paths);

}  // namespace taskmoe

#endif  // TASKMOE_DATA_BPE_TRAINER_H_
