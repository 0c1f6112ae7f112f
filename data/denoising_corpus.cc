#include "data/denoising_corpus.h"

#include <filesystem>
#include <set>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "data/crossfit.h"
#include "data/tokenizer.h"
#include "moe/base/atomic_directory.h"
#include "moe/base/file_io.h"
#include "moe/base/status_macros.h"

namespace taskmoe {
namespace {

namespace fs = std::filesystem;

// The distinct inputs of every `file_split` file of `tasks`, in reading order.
absl::StatusOr<std::vector<std::string>> ReadInputs(const std::string& data_dir,
                                                    const std::vector<std::string>& tasks,
                                                    const std::string& file_split) {
  std::vector<std::string> inputs;
  std::set<std::string> seen;
  for (const std::string& task : tasks) {
    TASKMOE_ASSIGN_OR_RETURN(const std::vector<TaskFile> files,
                             ReadTaskFiles(data_dir, task, file_split));
    for (const TaskFile& file : files) {
      for (const Example& example : file.examples) {
        if (seen.insert(example.input).second) inputs.push_back(example.input);
      }
    }
  }
  return inputs;
}

// Writes TSV lines "<noised text>\t<text>", `copies` per text; counts tokens and masked ones.
class NoisedLines {
 public:
  NoisedLines(const BartTokenizer& tokenizer, const DenoisingCorpusOptions& options)
      : tokenizer_(tokenizer), options_(options), random_(options.seed) {}

  std::string Lines(const std::vector<std::string>& texts, int copies, int64_t* count) {
    std::string lines;
    for (const std::string& text : texts) {
      const std::vector<int64_t> ids = tokenizer_.EncodeWithoutSpecialTokens(" " + text);
      for (int copy = 0; copy < copies; ++copy) {
        const InfilledSequence noised =
            InfillSpans(ids, tokenizer_.mask_id(), options_.noise, random_);
        for (const MaskedSpan& span : noised.spans) masked_tokens_ += span.length;
        tokens_ += static_cast<int64_t>(ids.size());
        const std::string corrupted = tokenizer_.Decode(noised.tokens, false, false);
        absl::StrAppend(&lines, absl::StripAsciiWhitespace(corrupted), "\t", text, "\n");
        ++*count;
      }
    }
    return lines;
  }

  double MaskedFraction() const {
    return tokens_ > 0 ? static_cast<double>(masked_tokens_) / static_cast<double>(tokens_) : 0;
  }

 private:
  const BartTokenizer& tokenizer_;
  const DenoisingCorpusOptions& options_;
  gym::GymRandom random_;
  int64_t tokens_ = 0;
  int64_t masked_tokens_ = 0;
};

absl::Status CheckOptions(const DenoisingCorpusOptions& options) {
  if (options.data_dir.empty() || options.output_dir.empty()) {
    return absl::InvalidArgumentError("the data directory and the output directory are required");
  }
  if (options.copies < 1) {
    return absl::InvalidArgumentError(absl::StrCat("copies must be >= 1, got ", options.copies));
  }
  if (!(options.noise.mask_ratio > 0 && options.noise.mask_ratio < 1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("mask_ratio must be in (0, 1), got ", options.noise.mask_ratio));
  }
  if (!(options.noise.poisson_lambda > 0 && options.noise.poisson_lambda <= 30)) {
    return absl::InvalidArgumentError(
        absl::StrCat("poisson_lambda must be in (0, 30], got ", options.noise.poisson_lambda));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<DenoisingCorpusSummary> WriteDenoisingCorpus(const DenoisingCorpusOptions& options) {
  TASKMOE_RETURN_IF_ERROR(CheckOptions(options));
  const std::string split_file =
      options.split_file.empty() ? options.data_dir + "/split.json" : options.split_file;
  TASKMOE_ASSIGN_OR_RETURN(const TaskSplit split, ReadTaskSplit(split_file));
  TASKMOE_ASSIGN_OR_RETURN(const std::vector<std::string> tasks,
                           SplitTasks(split, options.split_list, options.data_dir));
  if (tasks.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(split_file, ": the list \"", options.split_list, "\" holds no task"));
  }
  const std::string tokenizer_dir =
      options.tokenizer_dir.empty() ? options.data_dir + "/tokenizer" : options.tokenizer_dir;
  TASKMOE_ASSIGN_OR_RETURN(const BartTokenizer tokenizer,
                           BartTokenizer::LoadFromDirectory(tokenizer_dir));

  DenoisingCorpusSummary summary;
  summary.tasks = static_cast<int64_t>(tasks.size());
  NoisedLines noised(tokenizer, options);
  std::vector<std::pair<std::string, std::string>> files;  // split -> lines
  for (const std::string file_split : {"train", "dev", "test"}) {
    TASKMOE_ASSIGN_OR_RETURN(const std::vector<std::string> texts,
                             ReadInputs(options.data_dir, tasks, file_split));
    const bool train = file_split == "train";
    if (train) summary.texts = static_cast<int64_t>(texts.size());
    int64_t* count = train ? &summary.train_lines
                           : (file_split == "dev" ? &summary.dev_lines : &summary.test_lines);
    files.emplace_back(file_split, noised.Lines(texts, train ? options.copies : 1, count));
    if (train) summary.masked_fraction = noised.MaskedFraction();
  }

  TASKMOE_ASSIGN_OR_RETURN(AtomicDirectory output, AtomicDirectory::Begin(options.output_dir));
  const fs::path root = output.staging();
  const fs::path task_dir = root / kDenoisingTask;
  TASKMOE_RETURN_IF_ERROR(CreateDirectories(task_dir.string()));
  const std::string prefix = absl::StrCat(kDenoisingTask, "_", summary.train_lines, "_100");
  for (const auto& [file_split, lines] : files) {
    TASKMOE_RETURN_IF_ERROR(WriteFileAtomically(
        (task_dir / absl::StrCat(prefix, "_", file_split, ".tsv")).string(), lines));
  }
  const std::string task = absl::StrCat("\"", kDenoisingTask, "\"");
  TASKMOE_RETURN_IF_ERROR(WriteFileAtomically(
      (root / "split.json").string(),
      absl::StrCat("{\"train\": [", task, "], \"dev\": [], \"test\": [], \"all\": [", task,
                   "]}\n")));
  TASKMOE_RETURN_IF_ERROR(WriteFileAtomically((root / "metrics.json").string(),
                                              absl::StrCat("{", task, ": \"EM\"}\n")));
  TASKMOE_RETURN_IF_ERROR(CreateDirectories((root / "tokenizer").string()));
  for (const char* name : {"vocab.json", "merges.txt"}) {
    TASKMOE_RETURN_IF_ERROR(CopyFileAtomically(absl::StrCat(tokenizer_dir, "/", name),
                                               (root / "tokenizer" / name).string()));
  }
  TASKMOE_RETURN_IF_ERROR(output.Commit());
  return summary;
}

}  // namespace taskmoe
