#include "data/token_cache.h"

#include <cstring>
#include <filesystem>
#include <optional>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "data/sha256.h"
#include "glog/logging.h"
#include "moe/base/file_io.h"
#include "moe/base/status_macros.h"

namespace taskmoe {
namespace {

namespace fs = std::filesystem;

constexpr char kMagic[8] = {'T', 'M', 'T', 'O', 'K', 'E', 'N', 'S'};
// Bump when the payload layout or the tokenisation code's behaviour changes.
constexpr uint64_t kFormatVersion = 1;

// Little-endian payload writer / bounds-checked reader.
class Writer {
 public:
  void Int(uint64_t value) {
    for (int i = 0; i < 8; ++i) bytes_.push_back(static_cast<char>((value >> (8 * i)) & 0xff));
  }
  void String(const std::string& text) {
    Int(text.size());
    bytes_ += text;
  }
  void Ids(const std::vector<int64_t>& ids) {
    Int(ids.size());
    for (int64_t id : ids) Int(static_cast<uint64_t>(id));
  }
  std::string& bytes() { return bytes_; }

 private:
  std::string bytes_;
};

class Reader {
 public:
  explicit Reader(std::string_view bytes) : bytes_(bytes) {}
  bool Int(uint64_t* value) {
    if (bytes_.size() - offset_ < 8) return false;
    *value = 0;
    for (int i = 0; i < 8; ++i) {
      *value |= uint64_t{static_cast<uint8_t>(bytes_[offset_ + i])} << (8 * i);
    }
    offset_ += 8;
    return true;
  }
  // A count of items of at least `item_bytes` each that the rest of the payload can hold.
  bool Count(size_t item_bytes, uint64_t* count) {
    return Int(count) && *count <= (bytes_.size() - offset_) / item_bytes;
  }
  bool String(std::string* text) {
    uint64_t size = 0;
    if (!Count(1, &size)) return false;
    text->assign(bytes_.substr(offset_, size));
    offset_ += size;
    return true;
  }
  bool Ids(std::vector<int64_t>* ids) {
    uint64_t size = 0;
    if (!Count(8, &size)) return false;
    ids->resize(size);
    for (int64_t& id : *ids) {
      uint64_t value = 0;
      Int(&value);
      id = static_cast<int64_t>(value);
    }
    return true;
  }
  bool AtEnd() const { return offset_ == bytes_.size(); }

 private:
  std::string_view bytes_;
  size_t offset_ = 0;
};

std::string Serialize(const TokenizedDataset& dataset) {
  Writer writer;
  writer.Int(dataset.tasks.size());
  for (const std::string& task : dataset.tasks) writer.String(task);
  writer.Int(dataset.examples.size());
  for (const TokenizedExample& example : dataset.examples) {
    writer.Int(static_cast<uint64_t>(example.task_id));
    writer.Ids(example.input_ids);
    writer.Int(example.output_ids.size());
    for (const std::vector<int64_t>& output : example.output_ids) writer.Ids(output);
  }
  const TruncationStats& stats = dataset.truncation;
  for (int64_t value : {stats.inputs, stats.truncated_inputs, stats.outputs,
                        stats.truncated_outputs}) {
    writer.Int(static_cast<uint64_t>(value));
  }
  return std::move(writer.bytes());
}

std::optional<TokenizedDataset> Deserialize(std::string_view payload) {
  Reader reader(payload);
  TokenizedDataset dataset;
  uint64_t task_count = 0;
  if (!reader.Count(8, &task_count)) return std::nullopt;
  dataset.tasks.resize(task_count);
  for (std::string& task : dataset.tasks) {
    if (!reader.String(&task)) return std::nullopt;
  }
  uint64_t example_count = 0;
  if (!reader.Count(24, &example_count)) return std::nullopt;
  dataset.examples.resize(example_count);
  for (TokenizedExample& example : dataset.examples) {
    uint64_t task_id = 0;
    uint64_t output_count = 0;
    if (!reader.Int(&task_id) || task_id >= task_count || !reader.Ids(&example.input_ids) ||
        !reader.Count(8, &output_count) || output_count == 0) {
      return std::nullopt;
    }
    example.task_id = static_cast<int32_t>(task_id);
    example.output_ids.resize(output_count);
    for (std::vector<int64_t>& output : example.output_ids) {
      if (!reader.Ids(&output)) return std::nullopt;
    }
  }
  TruncationStats& stats = dataset.truncation;
  for (int64_t* value : {&stats.inputs, &stats.truncated_inputs, &stats.outputs,
                         &stats.truncated_outputs}) {
    uint64_t raw = 0;
    if (!reader.Int(&raw)) return std::nullopt;
    *value = static_cast<int64_t>(raw);
  }
  if (!reader.AtEnd()) return std::nullopt;
  return dataset;
}

// File: magic, version, key (hex, framed), payload length, payload SHA-256, payload.
std::string CacheFileBytes(const std::string& key, const std::string& payload) {
  Writer header;
  header.bytes().append(kMagic, sizeof(kMagic));
  header.Int(kFormatVersion);
  header.String(key);
  header.Int(payload.size());
  const Sha256::Digest checksum = Sha256::Of(payload);
  header.bytes().append(reinterpret_cast<const char*>(checksum.data()), checksum.size());
  return header.bytes() + payload;
}

// Why a cache file is not usable, or the dataset.
absl::StatusOr<TokenizedDataset> ParseCacheFile(std::string_view bytes, const std::string& key) {
  if (bytes.size() < sizeof(kMagic) || std::memcmp(bytes.data(), kMagic, sizeof(kMagic)) != 0) {
    return absl::DataLossError("not a token cache file (bad magic)");
  }
  Reader reader(bytes.substr(sizeof(kMagic)));
  uint64_t version = 0;
  std::string stored_key;
  uint64_t payload_size = 0;
  if (!reader.Int(&version) || version != kFormatVersion) {
    return absl::DataLossError("unsupported token cache version");
  }
  if (!reader.String(&stored_key) || stored_key != key) {
    return absl::DataLossError("key mismatch");
  }
  if (!reader.Int(&payload_size)) return absl::DataLossError("truncated header");
  const size_t header_size = sizeof(kMagic) + 8 + 8 + key.size() + 8;
  const size_t checksum_size = Sha256::Digest().size();
  if (bytes.size() != header_size + checksum_size + payload_size) {
    return absl::DataLossError("truncated or oversized file");
  }
  const std::string_view payload = bytes.substr(header_size + checksum_size);
  const Sha256::Digest checksum = Sha256::Of(payload);
  if (std::memcmp(checksum.data(), bytes.data() + header_size, checksum_size) != 0) {
    return absl::DataLossError("payload checksum mismatch");
  }
  std::optional<TokenizedDataset> dataset = Deserialize(payload);
  if (!dataset.has_value()) return absl::DataLossError("malformed payload");
  return *std::move(dataset);
}

}  // namespace

absl::StatusOr<std::string> TokenCacheKey(const std::vector<TaskFile>& files,
                                          const TokenizerFiles& tokenizer_files,
                                          const TokenizeOptions& options) {
  Sha256 hash;
  hash.UpdateField("taskmoe token cache");
  hash.UpdateInt(kFormatVersion);
  for (const std::string& path : {tokenizer_files.vocab_json, tokenizer_files.merges_txt}) {
    TASKMOE_ASSIGN_OR_RETURN(const std::string bytes, ReadFileBytes(path));
    hash.UpdateField(bytes);
  }
  hash.UpdateInt(options.format.lowercase);
  hash.UpdateInt(options.format.append_another_bos);
  hash.UpdateInt(options.format.output_leading_space);
  hash.UpdateInt(static_cast<uint64_t>(options.max_input_length));
  hash.UpdateInt(static_cast<uint64_t>(options.max_output_length));
  hash.UpdateInt(files.size());
  for (const TaskFile& file : files) {
    hash.UpdateField(file.task);
    hash.UpdateField(file.prefix);
    hash.UpdateInt(file.examples.size());
    for (const Example& example : file.examples) {
      hash.UpdateField(example.input);
      hash.UpdateInt(example.outputs.size());
      for (const std::string& output : example.outputs) hash.UpdateField(output);
    }
  }
  return Sha256::Hex(hash.Finish());
}

std::string TokenCachePath(const std::string& cache_dir, const std::string& key) {
  return (fs::path(cache_dir) / (key + ".tokens")).string();
}

absl::StatusOr<TokenizedDataset> LoadOrTokenize(const std::vector<TaskFile>& files,
                                                const BartTokenizer& tokenizer,
                                                const TokenizerFiles& tokenizer_files,
                                                const TokenizeOptions& options,
                                                const std::string& cache_dir,
                                                TokenCacheOutcome* outcome) {
  TASKMOE_ASSIGN_OR_RETURN(const std::string key,
                           TokenCacheKey(files, tokenizer_files, options));
  const std::string path = TokenCachePath(cache_dir, key);
  TokenCacheOutcome result = TokenCacheOutcome::kCreated;
  std::error_code error;
  if (fs::exists(path, error)) {
    absl::StatusOr<std::string> bytes = ReadFileBytes(path);
    absl::StatusOr<TokenizedDataset> cached =
        bytes.ok() ? ParseCacheFile(*bytes, key) : absl::StatusOr<TokenizedDataset>(bytes.status());
    if (cached.ok()) {
      LOG(INFO) << "token cache hit " << path << ": " << cached->examples.size()
                << " examples; " << cached->truncation.Summary(options.max_input_length,
                                                              options.max_output_length);
      if (outcome != nullptr) *outcome = TokenCacheOutcome::kHit;
      return cached;
    }
    LOG(WARNING) << "ignoring token cache " << path << " (" << cached.status().message()
                 << "); rebuilding it";
    result = TokenCacheOutcome::kRebuilt;
  }
  TokenizedDataset dataset = TokenizeTaskFiles(files, tokenizer, options);
  TASKMOE_RETURN_IF_ERROR(CreateDirectories(cache_dir));
  TASKMOE_RETURN_IF_ERROR(WriteFileAtomically(path, CacheFileBytes(key, Serialize(dataset))));
  LOG(INFO) << "tokenised " << dataset.examples.size() << " examples into " << path << "; "
            << dataset.truncation.Summary(options.max_input_length, options.max_output_length);
  if (outcome != nullptr) *outcome = result;
  return dataset;
}

}  // namespace taskmoe
