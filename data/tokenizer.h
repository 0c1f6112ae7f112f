#ifndef TASKMOE_DATA_TOKENIZER_H_
#define TASKMOE_DATA_TOKENIZER_H_

// Byte-level BPE tokenizer that reproduces Hugging Face's slow `BartTokenizer`
// (GPT-2 BPE, add_prefix_space=False) on `vocab.json` + `merges.txt`.

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace taskmoe {

// Special tokens of BART's vocabulary, in the id order BART uses (0..3; <mask> is the last id).
inline constexpr char kBosToken[] = "<s>";
inline constexpr char kPadToken[] = "<pad>";
inline constexpr char kEosToken[] = "</s>";
inline constexpr char kUnkToken[] = "<unk>";
inline constexpr char kMaskToken[] = "<mask>";

// GPT-2's reversible byte -> printable code point table: ByteSymbols()[b] is the UTF-8 text of
// the symbol that stands for byte b in vocab.json (space -> "Ġ", '\n' -> "Ċ", ...).
const std::array<std::string, 256>& ByteSymbols();

// Maps every byte of `bytes` to its symbol and concatenates them.
std::string BytesToSymbols(std::string_view bytes);

// Splits text (no special tokens) into the pieces of GPT-2's pre-tokenization regex
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// with Unicode categories from utf8proc and \s = the 25 White_Space code points. The pieces
// concatenate to `text`. A byte that is not valid UTF-8 counts as one character of its own
// (neither letter, number nor space), so arbitrary bytes still round-trip.
std::vector<std::string_view> SplitPreTokens(std::string_view text);

// True for the 25 Unicode White_Space code points (regex `\s`).
bool IsUnicodeWhitespace(char32_t code_point);

class BartTokenizer {
 public:
  // Reads a GPT-2/BART `vocab.json` (token -> id, ids 0..N-1) and `merges.txt` (optional
  // `#version` line, then one `left right` merge per line, in rank order). Errors name the file
  // and line: unreadable or malformed files, duplicate or missing ids, missing special tokens
  // or byte symbols, merges whose parts or result are not in the vocabulary.
  static absl::StatusOr<BartTokenizer> Load(const std::string& vocab_json,
                                            const std::string& merges_txt);
  // Load(model_dir + "/vocab.json", model_dir + "/merges.txt").
  static absl::StatusOr<BartTokenizer> LoadFromDirectory(const std::string& model_dir);

  // BPE token strings (in the byte-symbol alphabet), without <s> and </s>. Special tokens
  // written literally in the text are kept as themselves; <mask> removes the whitespace
  // before it (HF's lstrip=True).
  std::vector<std::string> Tokenize(std::string_view text) const;
  // [<s>] + ids of Tokenize(text) + [</s>].
  std::vector<int64_t> Encode(std::string_view text) const;
  // Ids of Tokenize(text), without <s> and </s>.
  std::vector<int64_t> EncodeWithoutSpecialTokens(std::string_view text) const;
  // Token strings back to text: bytes decoded as UTF-8 (invalid sequences become U+FFFD, as
  // Python's errors="replace"), then HF's clean-up of tokenization spaces (" ." -> ".",
  // " n't" -> "n't", ...) unless disabled. Ids outside the vocabulary read as <unk>. Kept special
  // tokens are written in place without added spaces ("<s>hello</s>"), as transformers 4.x
  // before 4.34 did. Without clean-up, Decode(Encode(text), true, false) == text for valid
  // UTF-8 text free of special tokens.
  std::string Decode(const std::vector<int64_t>& ids, bool skip_special_tokens = true,
                     bool clean_up_tokenization_spaces = true) const;

  int64_t bos_id() const { return bos_id_; }
  int64_t pad_id() const { return pad_id_; }
  int64_t eos_id() const { return eos_id_; }
  int64_t unk_id() const { return unk_id_; }
  int64_t mask_id() const { return mask_id_; }
  int64_t vocab_size() const { return static_cast<int64_t>(id_to_token_.size()); }
  bool IsSpecialId(int64_t id) const;
  // Token string of an id (CHECKs that it is in range), and id of a token string (-1 if absent).
  const std::string& IdToToken(int64_t id) const;
  int64_t TokenToId(std::string_view token) const;

 private:
  BartTokenizer() = default;
  // The steps of Load; their errors name the file at fault.
  absl::Status ReadVocab(const std::string& vocab_json);
  absl::Status FindSpecialAndByteIds(const std::string& vocab_json);
  absl::Status ReadMerges(const std::string& merges_txt, const std::string& vocab_json);
  // Appends the BPE ids of one pre-token (raw bytes), using the per-word cache.
  void AppendBpeIds(std::string_view pre_token, std::vector<int64_t>* ids) const;
  std::vector<int64_t> ApplyMerges(std::string_view pre_token) const;
  // Pieces of `text` between special tokens; special tokens as their ids (text pieces have -1).
  std::vector<std::pair<std::string_view, int64_t>> SplitOnSpecialTokens(
      std::string_view text) const;

  std::vector<std::string> id_to_token_;
  absl::flat_hash_map<std::string, int64_t> token_to_id_;
  std::array<int64_t, 256> byte_ids_{};
  // (left id, right id) packed as left << 32 | right -> (rank, merged id).
  absl::flat_hash_map<uint64_t, std::pair<int32_t, int64_t>> merges_;
  std::vector<std::pair<std::string, int64_t>> special_tokens_;
  int64_t bos_id_ = -1, pad_id_ = -1, eos_id_ = -1, unk_id_ = -1, mask_id_ = -1;

  // BPE results per pre-token; shared by copies, guarded for concurrent Encode calls.
  struct Cache {
    absl::Mutex mutex;
    absl::flat_hash_map<std::string, std::vector<int64_t>> ids ABSL_GUARDED_BY(mutex);
  };
  std::shared_ptr<Cache> cache_ = std::make_shared<Cache>();
};

}  // namespace taskmoe

#endif  // TASKMOE_DATA_TOKENIZER_H_
