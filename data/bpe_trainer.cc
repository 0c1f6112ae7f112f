#include "data/bpe_trainer.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "data/tokenizer.h"
#include "glog/logging.h"
#include "moe/base/file_io.h"
#include "moe/base/status_macros.h"
#include "nlohmann/json.hpp"

namespace taskmoe {
namespace {

constexpr int64_t kSpecialTokensBefore = 4;  // <s>, <pad>, </s>, <unk>; <mask> comes last.
constexpr int64_t kMinimumVocabSize = kSpecialTokensBefore + 256 + 1;

uint64_t PairKey(int32_t left, int32_t right) {
  return (static_cast<uint64_t>(left) << 32) | static_cast<uint32_t>(right);
}
int32_t LeftOf(uint64_t key) { return static_cast<int32_t>(key >> 32); }
int32_t RightOf(uint64_t key) { return static_cast<int32_t>(key & 0xFFFFFFFFu); }

struct Word {
  std::vector<int32_t> symbols;
  int64_t count = 0;
};

// Pair counts over all words, with the best pair (highest count, then smallest key, i.e.
// smallest left id, then smallest right id) at the front of `ranked`.
class PairCounts {
 public:
  void Add(uint64_t key, int64_t delta) {
    int64_t& count = counts_[key];
    if (count > 0) ranked_.erase({-count, key});
    count += delta;
    CHECK_GE(count, 0) << "pair count went negative";
    if (count > 0) ranked_.insert({-count, key});
  }
  bool empty() const { return ranked_.empty(); }
  uint64_t best_key() const { return ranked_.begin()->second; }
  int64_t best_count() const { return -ranked_.begin()->first; }

 private:
  absl::flat_hash_map<uint64_t, int64_t> counts_;
  std::set<std::pair<int64_t, uint64_t>> ranked_;
};

// Adds (sign = +1) or removes (sign = -1) the adjacent pairs of a word from the counts.
void CountPairs(const Word& word, int64_t sign, PairCounts* counts) {
  for (size_t i = 0; i + 1 < word.symbols.size(); ++i) {
    counts->Add(PairKey(word.symbols[i], word.symbols[i + 1]), sign * word.count);
  }
}

// Pair key -> the indices of the words that may hold the pair (possibly repeated or stale).
using WordsWithPair = absl::flat_hash_map<uint64_t, std::vector<int32_t>>;

absl::Status CheckTrainerOptions(const BpeTrainerOptions& options) {
  if (options.vocab_size < kMinimumVocabSize) {
    return absl::InvalidArgumentError(absl::StrCat(
        "vocab_size ", options.vocab_size, " is too small: a byte-level BPE needs at least ",
        kMinimumVocabSize, " (5 special tokens and 256 byte symbols)"));
  }
  if (options.min_pair_frequency < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("min_pair_frequency must be at least 1, got ", options.min_pair_frequency));
  }
  return absl::OkStatus();
}

// The id of `token`, appending it to the model's vocabulary if it is new.
int32_t AddToken(const std::string& token, BpeModel* model,
                 absl::flat_hash_map<std::string, int32_t>* token_ids) {
  const auto [it, inserted] =
      token_ids->emplace(token, static_cast<int32_t>(model->vocab.size()));
  if (inserted) model->vocab.push_back(token);
  return it->second;
}

// The corpus's unique pre-tokens as byte-symbol words with their counts, in sorted order so
// that the training is independent of hash iteration order.
std::vector<Word> CountWords(const std::vector<std::string>& corpus) {
  std::map<std::string, int64_t> pre_token_counts;
  for (const std::string& text : corpus) {
    for (const std::string_view pre_token : SplitPreTokens(text)) {
      ++pre_token_counts[std::string(pre_token)];
    }
  }
  std::vector<Word> words;
  words.reserve(pre_token_counts.size());
  for (const auto& [pre_token, count] : pre_token_counts) {
    Word word;
    word.count = count;
    for (const char byte : pre_token) {
      word.symbols.push_back(kSpecialTokensBefore + static_cast<unsigned char>(byte));
    }
    words.push_back(std::move(word));
  }
  return words;
}

// Counts the pairs of every word and records which words hold each pair.
void IndexPairs(const std::vector<Word>& words, PairCounts* pair_counts,
                WordsWithPair* words_with_pair) {
  for (int32_t w = 0; w < static_cast<int32_t>(words.size()); ++w) {
    CountPairs(words[w], +1, pair_counts);
    for (size_t i = 0; i + 1 < words[w].symbols.size(); ++i) {
      (*words_with_pair)[PairKey(words[w].symbols[i], words[w].symbols[i + 1])].push_back(w);
    }
  }
}

// Replaces every (left, right) in the word's symbols, left to right, by `merged`.
void MergeSymbols(int32_t left, int32_t right, int32_t merged, Word* word) {
  std::vector<int32_t> symbols;
  symbols.reserve(word->symbols.size());
  for (size_t i = 0; i < word->symbols.size(); ++i) {
    if (i + 1 < word->symbols.size() && word->symbols[i] == left &&
        word->symbols[i + 1] == right) {
      symbols.push_back(merged);
      ++i;
    } else {
      symbols.push_back(word->symbols[i]);
    }
  }
  word->symbols = std::move(symbols);
}

// Merges the pair `key` into `merged` in every word that holds it, keeping the pair counts
// and the pair -> words index up to date.
void ApplyMerge(uint64_t key, int32_t merged, std::vector<Word>* words, PairCounts* pair_counts,
                WordsWithPair* words_with_pair) {
  std::vector<int32_t> affected = std::move((*words_with_pair)[key]);
  words_with_pair->erase(key);
  std::sort(affected.begin(), affected.end());
  affected.erase(std::unique(affected.begin(), affected.end()), affected.end());
  for (const int32_t w : affected) {
    Word& word = (*words)[w];
    CountPairs(word, -1, pair_counts);
    MergeSymbols(LeftOf(key), RightOf(key), merged, &word);
    CountPairs(word, +1, pair_counts);
    for (size_t i = 0; i + 1 < word.symbols.size(); ++i) {
      if (word.symbols[i] == merged || word.symbols[i + 1] == merged) {
        (*words_with_pair)[PairKey(word.symbols[i], word.symbols[i + 1])].push_back(w);
      }
    }
  }
}

}  // namespace

absl::StatusOr<BpeModel> LearnBpe(const std::vector<std::string>& corpus,
                                  const BpeTrainerOptions& options) {
  TASKMOE_RETURN_IF_ERROR(CheckTrainerOptions(options));
  BpeModel model;
  absl::flat_hash_map<std::string, int32_t> token_ids;
  for (const char* special : {kBosToken, kPadToken, kEosToken, kUnkToken}) {
    AddToken(special, &model, &token_ids);
  }
  for (const std::string& symbol : ByteSymbols()) AddToken(symbol, &model, &token_ids);

  std::vector<Word> words = CountWords(corpus);
  PairCounts pair_counts;
  WordsWithPair words_with_pair;
  IndexPairs(words, &pair_counts, &words_with_pair);
  absl::flat_hash_set<uint64_t> listed_merges;

  // <mask> takes the last id, so learned tokens may fill vocab_size - 1 entries.
  while (static_cast<int64_t>(model.vocab.size()) < options.vocab_size - 1 &&
         !pair_counts.empty() && pair_counts.best_count() >= options.min_pair_frequency) {
    const uint64_t key = pair_counts.best_key();
    const int32_t left = LeftOf(key);
    const int32_t right = RightOf(key);
    const std::string merged_token = model.vocab[left] + model.vocab[right];
    // A token string can arise from two different pairs ("ab"+"c", "a"+"bc"), and then a pair
    // merged before may form again; it is merged in the words but listed once.
    if (listed_merges.insert(key).second) {
      model.merges.emplace_back(model.vocab[left], model.vocab[right]);
    }
    const int32_t merged = AddToken(merged_token, &model, &token_ids);
    ApplyMerge(key, merged, &words, &pair_counts, &words_with_pair);
  }
  AddToken(kMaskToken, &model, &token_ids);
  if (static_cast<int64_t>(model.vocab.size()) < options.vocab_size) {
    LOG(WARNING) << "the corpus supports only " << model.vocab.size()
                 << " vocabulary entries with min_pair_frequency " << options.min_pair_frequency
                 << " (asked for " << options.vocab_size << ")";
  }
  return model;
}

absl::Status WriteBpeModel(const BpeModel& model, const std::string& out_dir) {
  TASKMOE_RETURN_IF_ERROR(CreateDirectories(out_dir));
  nlohmann::ordered_json vocab = nlohmann::ordered_json::object();
  for (size_t id = 0; id < model.vocab.size(); ++id) vocab[model.vocab[id]] = id;
  std::string merges = "#version: 0.2\n";
  for (const auto& [left, right] : model.merges) absl::StrAppend(&merges, left, " ", right, "\n");
  TASKMOE_RETURN_IF_ERROR(WriteFileAtomically(out_dir + "/vocab.json", vocab.dump()));
  return WriteFileAtomically(out_dir + "/merges.txt", merges);
}

absl::Status TrainBpe(const std::vector<std::string>& corpus, const BpeTrainerOptions& options,
                      const std::string& out_dir) {
  TASKMOE_ASSIGN_OR_RETURN(const BpeModel model, LearnBpe(corpus, options));
  return WriteBpeModel(model, out_dir);
}

absl::StatusOr<std::vector<std::string>> ReadBpeCorpus(const std::vector<std::string>& paths) {
  std::vector<std::string> corpus;
  for (const std::string& path : paths) {
    absl::StatusOr<std::string> bytes = ReadFileBytes(path);
    if (!bytes.ok()) {
      return absl::Status(bytes.status().code(), absl::StrCat("cannot open corpus file '", path,
                                                              "': ", bytes.status().message()));
    }
    const bool crossfit_tsv = absl::EndsWith(path, ".tsv");
    for (absl::string_view line : absl::StrSplit(*bytes, '\n')) {
      line = absl::StripSuffix(line, "\r");
      if (line.empty()) continue;
      if (!crossfit_tsv) {
        corpus.emplace_back(line);
        continue;
      }
      for (const absl::string_view field : absl::StrSplit(line, '\t', absl::SkipEmpty())) {
        corpus.push_back(absl::StrCat(" ", field));
      }
    }
  }
  return corpus;
}

}  // namespace taskmoe
