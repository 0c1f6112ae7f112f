#ifndef TASKMOE_DATA_TOKEN_CACHE_H_
#define TASKMOE_DATA_TOKEN_CACHE_H_

// On-disk cache of tokenised CrossFit data, so a second run skips tokenisation. A cache file is
// named by a SHA-256 key over everything the result depends on: the examples read from the
// input files (task, prefix, every input and output), the tokenizer files' bytes and the
// tokenisation options. A changed file gives a new key; a cache file that fails any check
// (magic, version, key, length, payload checksum, structure) is ignored and rebuilt.

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "data/batching.h"
#include "data/crossfit.h"
#include "data/tokenizer.h"

namespace taskmoe {

struct TokenizerFiles {
  std::string vocab_json;
  std::string merges_txt;
};

// Hex SHA-256 key of a tokenisation; errors when a tokenizer file cannot be read.
absl::StatusOr<std::string> TokenCacheKey(const std::vector<TaskFile>& files,
                                          const TokenizerFiles& tokenizer_files,
                                          const TokenizeOptions& options);

enum class TokenCacheOutcome {
  kHit,      // read from the cache
  kCreated,  // no cache file: tokenised and written
  kRebuilt,  // an invalid cache file was ignored, tokenised and overwritten
};

// The dataset from <cache_dir>/<key>.tokens when that file is valid; otherwise tokenises with
// TokenizeTaskFiles and writes the file (atomically: temporary name, then rename). `tokenizer`
// must be the one loaded from `tokenizer_files`. Errors: unreadable tokenizer files, a cache
// directory that cannot be created or written.
absl::StatusOr<TokenizedDataset> LoadOrTokenize(const std::vector<TaskFile>& files,
                                                const BartTokenizer& tokenizer,
                                                const TokenizerFiles& tokenizer_files,
                                                const TokenizeOptions& options,
                                                const std::string& cache_dir,
                                                TokenCacheOutcome* outcome = nullptr);

// The path LoadOrTokenize uses for a key.
std::string TokenCachePath(const std::string& cache_dir, const std::string& key);

}  // namespace taskmoe

#endif  // TASKMOE_DATA_TOKEN_CACHE_H_
