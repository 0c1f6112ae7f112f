// Generates text with a BART model directory (config.json, model.safetensors, vocab.json,
// merges.txt): one output line per input line.
//
//   generate --model_dir=path/to/bart --text="question: ..." [--num_beams=4 --max_length=64]
//   generate --model_dir=path/to/bart --input=inputs.txt --output=outputs.txt
//
// --decoder_start_token_id=0 reproduces the original research code's evaluation, which calls
// generate(decoder_start_token_id=bos) although training starts decoding from </s> (2).

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "data/tokenizer.h"
#include "moe/model/bart.h"
#include "moe/model/bart_weights.h"
#include "moe/model/generation.h"
#include "tools/tool_main.h"

ABSL_FLAG(std::string, model_dir, "",
          "Directory with config.json, model.safetensors, vocab.json and merges.txt.");
ABSL_FLAG(std::string, text, "", "One input text (instead of --input).");
ABSL_FLAG(std::string, input, "", "File with one input text per line (instead of --text).");
ABSL_FLAG(std::string, output, "", "Output file, one generated text per line; empty: stdout.");
ABSL_FLAG(int64_t, num_beams, 1, "Beams; 1 is greedy search.");
ABSL_FLAG(int64_t, max_length, 20, "Maximum output length in tokens, counting the start token.");
ABSL_FLAG(int64_t, min_length, 0, "eos is forbidden before this many tokens.");
ABSL_FLAG(bool, early_stopping, false, "Beam search stops once num_beams hypotheses are finished.");
ABSL_FLAG(double, length_penalty, 1.0, "Beam score = sum(log p) / length^length_penalty.");
ABSL_FLAG(int64_t, no_repeat_ngram_size, 0, "Forbid repeating n-grams of this size (0: off).");
ABSL_FLAG(int64_t, decoder_start_token_id, -1,
          "First decoder token; -1: the config's decoder_start_token_id.");
ABSL_FLAG(int64_t, forced_eos_token_id, -2,
          "Token forced at position max_length-1; -2: the config's; -1: none.");
ABSL_FLAG(int64_t, max_input_length, 1024,
          "Inputs are truncated to this many tokens (and to max_position_embeddings).");
ABSL_FLAG(int64_t, batch_size, 16, "Inputs decoded together.");
ABSL_FLAG(std::string, device, "cpu", "cpu or cuda[:index].");
ABSL_FLAG(int32_t, threads, static_cast<int32_t>(std::thread::hardware_concurrency()),
          "Intra-op CPU threads.");

namespace taskmoe {
namespace {

absl::StatusOr<std::vector<std::string>> ReadTexts() {
  const std::string text = absl::GetFlag(FLAGS_text);
  const std::string path = absl::GetFlag(FLAGS_input);
  if (text.empty() == path.empty()) {
    return absl::InvalidArgumentError("give exactly one of --text and --input");
  }
  if (!text.empty()) return std::vector<std::string>{text};
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open --input '", path, "'"));
  std::vector<std::string> texts;
  for (std::string line; std::getline(in, line);) texts.push_back(line);
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
  if (absl::GetFlag(FLAGS_decoder_start_token_id) >= 0) {
    options.decoder_start_token_id = absl::GetFlag(FLAGS_decoder_start_token_id);
  }
  if (absl::GetFlag(FLAGS_forced_eos_token_id) != -2) {
    options.forced_eos_token_id = absl::GetFlag(FLAGS_forced_eos_token_id);
  }
  return options;
}

absl::Status Run() {
  at::set_num_threads(absl::GetFlag(FLAGS_threads));
  const at::Device device(absl::GetFlag(FLAGS_device));
  const std::string model_dir = absl::GetFlag(FLAGS_model_dir);
  absl::StatusOr<BartTokenizer> tokenizer = BartTokenizer::LoadFromDirectory(model_dir);
  if (!tokenizer.ok()) return tokenizer.status();
  absl::StatusOr<BartForConditionalGeneration> model = LoadBartDirectory(model_dir);
  if (!model.ok()) return model.status();
  (*model)->to(device);
  const BartConfig& config = (*model)->config();
  const GenerationOptions options = OptionsFromFlags();
  if (absl::Status s = ValidateGenerationOptions(options, config); !s.ok()) return s;
  absl::StatusOr<std::vector<std::string>> texts = ReadTexts();
  if (!texts.ok()) return texts.status();
  const std::string output_path = absl::GetFlag(FLAGS_output);
  std::ofstream output_file;
  if (!output_path.empty()) {
    output_file.open(output_path);
    if (!output_file) return absl::PermissionDeniedError(absl::StrCat("cannot write --output '", output_path, "'"));
  }
  std::ostream& output = output_path.empty() ? std::cout : output_file;
  const int64_t max_input =
      std::min(absl::GetFlag(FLAGS_max_input_length), config.max_position_embeddings);
  const int64_t batch_size = std::max<int64_t>(1, absl::GetFlag(FLAGS_batch_size));
  for (size_t first = 0; first < texts->size(); first += batch_size) {
    const size_t last = std::min(texts->size(), first + batch_size);
    std::vector<std::vector<int64_t>> encoded;
    int64_t longest = 1;
    for (size_t i = first; i < last; ++i) {
      std::vector<int64_t> ids = tokenizer->Encode((*texts)[i]);
      if (static_cast<int64_t>(ids.size()) > max_input) {
        // Truncation keeps the closing </s>, as Hugging Face's tokenizer(truncation=True) does.
        ids.resize(max_input);
        ids.back() = tokenizer->eos_id();
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
    absl::StatusOr<GenerationOutput> generated =
        Generate(*model, input_ids.to(device), attention_mask.to(device), options);
    if (!generated.ok()) return generated.status();
    const at::Tensor sequences = generated->sequences.to(at::kCPU).contiguous();
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t* row = sequences[r].data_ptr<int64_t>();
      output << tokenizer->Decode(std::vector<int64_t>(row, row + sequences.size(1))) << "\n";
    }
  }
  return output ? absl::OkStatus() : absl::DataLossError("writing the output failed");
}

}  // namespace
}  // namespace taskmoe

int main(int argc, char** argv) {
  taskmoe::ToolOptions tool;
  tool.name = "generate";
  tool.runs_models = true;
  tool.usage =
      "Generates text with a BART model directory (greedy or beam search).";
  return taskmoe::RunTool(argc, argv, tool,
                          [](const std::vector<std::string>&) { return taskmoe::Run(); });
}
