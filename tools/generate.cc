// Generates text with a Hugging Face BART directory (config.json, model.safetensors, vocab.json,
// merges.txt): one output line per input line.
//
//   generate --model=path/to/bart --text="question: ..." [--num_beams=4 --max_length=64]
//   generate --model=path/to/bart --input=inputs.txt --output=outputs.txt
//
// --decoder_start_token_id=0 reproduces the original research code's evaluation, which calls
// generate(decoder_start_token_id=bos) although training starts decoding from </s> (2).

#include <ATen/ATen.h>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "data/tokenizer.h"
#include "moe/base/file_io.h"
#include "moe/base/status_macros.h"
#include "moe/model/bart.h"
#include "moe/model/bart_weights.h"
#include "moe/model/generation.h"
#include "tools/generation_flags.h"
#include "tools/model_flags.h"
#include "tools/tool_main.h"

ABSL_FLAG(std::string, model_dir, "", "Deprecated name of --model.");
ABSL_FLAG(std::string, text, "", "One input text (instead of --input).");
ABSL_FLAG(std::string, input, "", "File with one input text per line (instead of --text).");
ABSL_FLAG(std::string, output, "", "Output file, one generated text per line; empty: stdout.");
ABSL_FLAG(int64_t, num_beams, 1, "Beams; 1 is greedy search.");
ABSL_FLAG(int64_t, max_length, 20, "Maximum output length in tokens, counting the start token.");
ABSL_FLAG(int64_t, min_length, 0, "eos is forbidden before this many tokens.");
ABSL_FLAG(bool, early_stopping, false, "Beam search stops once num_beams hypotheses are finished.");
ABSL_FLAG(double, length_penalty, 1.0, "Beam score = sum(log p) / length^length_penalty.");
ABSL_FLAG(int64_t, no_repeat_ngram_size, 0, "Forbid repeating n-grams of this size (0: off).");
ABSL_FLAG(std::optional<int64_t>, max_input_length, std::nullopt,
          "Inputs are truncated to this many tokens, in [2, max_position_embeddings]; unset: the "
          "model's max_position_embeddings.");
ABSL_FLAG(int64_t, batch_size, 16, "Inputs decoded together (at least 1).");

namespace taskmoe {
namespace {

absl::StatusOr<std::vector<std::string>> ReadTexts() {
  const std::string text = absl::GetFlag(FLAGS_text);
  const std::string path = absl::GetFlag(FLAGS_input);
  if (text.empty() == path.empty()) {
    return absl::InvalidArgumentError("give exactly one of --text and --input");
  }
  if (!text.empty()) return std::vector<std::string>{text};
  TASKMOE_ASSIGN_OR_RETURN(const std::string contents, ReadFileBytes(path));
  std::vector<std::string> texts = absl::StrSplit(contents, '\n');
  if (!texts.empty() && texts.back().empty()) texts.pop_back();  // the final newline
  return texts;
}

GenerationOptions OptionsFromFlags() {
  GenerationOptions options;
  options.num_beams = absl::GetFlag(FLAGS_num_beams);
  options.max_length = absl::GetFlag(FLAGS_max_length);
  options.min_length = absl::GetFlag(FLAGS_min_length);
  options.early_stopping = absl::GetFlag(FLAGS_early_stopping);
  options.length_penalty = absl::GetFlag(FLAGS_length_penalty);
  options.no_repeat_ngram_size = absl::GetFlag(FLAGS_no_repeat_ngram_size);
  ApplyDecodingFlags(&options);
  return options;
}

// Token ids of texts[first, last) as a padded batch (input_ids, attention_mask). Inputs longer
// than `max_input` keep the closing </s>, as Hugging Face's tokenizer(truncation=True) does.
absl::StatusOr<std::pair<at::Tensor, at::Tensor>> EncodeBatch(
    const std::vector<std::string>& texts, size_t first, size_t last,
    const BartTokenizer& tokenizer, const BartConfig& config, int64_t max_input,
    const std::string& model_dir) {
  std::vector<std::vector<int64_t>> encoded;
  int64_t longest = 1;
  for (size_t i = first; i < last; ++i) {
    std::vector<int64_t> ids = tokenizer.Encode(texts[i]);
    if (static_cast<int64_t>(ids.size()) > max_input) {
      ids.resize(max_input);
      ids.back() = tokenizer.eos_id();
    }
    if (*std::max_element(ids.begin(), ids.end()) >= config.vocab_size) {
      return absl::InvalidArgumentError(absl::StrCat(
          model_dir, ": vocab.json has ids beyond the model's vocab_size ", config.vocab_size,
          " (input line ", i + 1, ")"));
    }
    longest = std::max<int64_t>(longest, ids.size());
    encoded.push_back(std::move(ids));
  }
  const int64_t rows = encoded.size();
  at::Tensor input_ids = at::full({rows, longest}, config.pad_token_id, at::kLong);
  at::Tensor attention_mask = at::zeros({rows, longest}, at::kLong);
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t n = encoded[r].size();
    input_ids[r].slice(0, 0, n).copy_(at::tensor(encoded[r], at::kLong));
    attention_mask[r].slice(0, 0, n).fill_(1);
  }
  return std::make_pair(input_ids, attention_mask);
}

absl::Status Run() {
  TASKMOE_ASSIGN_OR_RETURN(const at::Device device, SetUpDeviceAndThreads());
  TASKMOE_ASSIGN_OR_RETURN(const std::string model_dir,
                           HuggingFaceModelFlag("model_dir", absl::GetFlag(FLAGS_model_dir)));
  TASKMOE_ASSIGN_OR_RETURN(const BartTokenizer tokenizer,
                           BartTokenizer::LoadFromDirectory(model_dir));
  TASKMOE_ASSIGN_OR_RETURN(BartForConditionalGeneration model, LoadBartDirectory(model_dir));
  model->to(device);
  const BartConfig& config = model->config();
  const GenerationOptions options = OptionsFromFlags();
  TASKMOE_RETURN_IF_ERROR(ValidateGenerationOptions(options, config));
  TASKMOE_ASSIGN_OR_RETURN(const std::vector<std::string> texts, ReadTexts());
  const int64_t max_input =
      absl::GetFlag(FLAGS_max_input_length).value_or(config.max_position_embeddings);
  if (max_input < 2 || max_input > config.max_position_embeddings) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--max_input_length=", max_input, ": must be in [2, ", config.max_position_embeddings,
        "] (max_position_embeddings of ", model_dir, "/config.json)"));
  }
  if (absl::GetFlag(FLAGS_batch_size) < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("--batch_size=", absl::GetFlag(FLAGS_batch_size), ": must be at least 1"));
  }
  const size_t batch_size = absl::GetFlag(FLAGS_batch_size);
  std::string output;
  for (size_t first = 0; first < texts.size(); first += batch_size) {
    const size_t last = std::min(texts.size(), first + batch_size);
    TASKMOE_ASSIGN_OR_RETURN(
        const auto batch, EncodeBatch(texts, first, last, tokenizer, config, max_input, model_dir));
    TASKMOE_ASSIGN_OR_RETURN(
        const GenerationOutput generated,
        Generate(model, batch.first.to(device), batch.second.to(device), options));
    const at::Tensor sequences = generated.sequences.to(at::kCPU).contiguous();
    for (int64_t r = 0; r < sequences.size(0); ++r) {
      const int64_t* row = sequences[r].data_ptr<int64_t>();
      absl::StrAppend(&output, tokenizer.Decode(std::vector<int64_t>(row, row + sequences.size(1))),
                      "\n");
    }
  }
  return WriteToolOutput(absl::GetFlag(FLAGS_output), output);
}

}  // namespace
}  // namespace taskmoe

int main(int argc, char** argv) {
  taskmoe::ToolOptions tool;
  tool.name = "generate";
  tool.output_flags = {"output"};
  tool.runs_models = true;
  tool.usage = "Generates text with a Hugging Face BART directory (greedy or beam search).";
  return taskmoe::RunTool(argc, argv, tool,
                          [](const std::vector<std::string>&) { return taskmoe::Run(); });
}
