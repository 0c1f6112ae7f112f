#include "moe/train/experiment_config.h"

#include <cmath>
#include <filesystem>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/io/tokenizer.h"
#include "google/protobuf/text_format.h"
#include "moe/base/cpu_runtime.h"
#include "moe/base/file_io.h"
#include "moe/formats/bart_config.h"

namespace taskmoe {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::TextFormat;

// Collects protobuf's parse errors as "source:line:column: message" lines.
class ErrorCollector : public google::protobuf::io::ErrorCollector {
 public:
  explicit ErrorCollector(std::string source) : source_(std::move(source)) {}
  void AddError(int line, int column, const std::string& message) override {
    errors_.push_back(absl::StrCat(source_, ":", line + 1, ":", column + 1, ": ", message));
  }
  void AddWarning(int line, int column, const std::string& message) override {
    AddError(line, column, message);
  }
  std::string Joined() const { return absl::StrJoin(errors_, "\n"); }

 private:
  std::string source_;
  std::vector<std::string> errors_;
};

absl::Status Parse(const std::string& text, const std::string& source_name, Message* message) {
  ErrorCollector errors(source_name);
  TextFormat::Parser parser;
  parser.RecordErrorsTo(&errors);
  if (!parser.MergeFromString(text, message)) {
    return absl::InvalidArgumentError(errors.Joined());
  }
  return absl::OkStatus();
}

// Writes `value` as a text-format value of `field`: strings quoted unless already quoted,
// repeated fields as a list, messages in braces.
std::string TextValue(const FieldDescriptor* field, absl::string_view value) {
  auto one = [field](absl::string_view v) -> std::string {
    v = absl::StripAsciiWhitespace(v);
    if (field->type() == FieldDescriptor::TYPE_STRING && !absl::StartsWith(v, "\"")) {
      return absl::StrCat("\"", absl::CEscape(v), "\"");
    }
    return std::string(v);
  };
  if (field->is_repeated() && field->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE) {
    std::vector<std::string> items;
    if (!absl::StripAsciiWhitespace(value).empty()) {
      for (absl::string_view item : absl::StrSplit(value, ',')) items.push_back(one(item));
    }
    return absl::StrCat("[", absl::StrJoin(items, ", "), "]");
  }
  return one(value);
}

// An error naming the field unless `ok` holds and `value` is finite (an inf learning rate or
// NaN dropout passes comparisons such as >= 0 but cannot train).
absl::Status Check(bool ok, absl::string_view path, absl::string_view expected, double value) {
  if (ok && std::isfinite(value)) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat("config field ", path, ": must be ",
                                                 std::isfinite(value) ? "" : "a finite number ",
                                                 expected, ", got ", value));
}

// Bounds beyond which a config only exhausts memory (see also the BART sizes in bart_config.h).
constexpr int kMaxExperts = 1024;
constexpr int kMaxTaskVectorDim = 1 << 16;
constexpr int kMaxBeams = 1024;

bool InRange(int64_t value, int64_t low, int64_t high) { return value >= low && value <= high; }
std::string InRangeText(int64_t low, int64_t high) {
  return absl::StrCat("in [", low, ", ", high, "]");
}

}  // namespace

absl::StatusOr<ExperimentConfig> ParseExperimentConfig(const std::string& text,
                                                       const std::string& source_name) {
  ExperimentConfig config;
  absl::Status status = Parse(text, source_name, &config);
  if (!status.ok()) return status;
  return config;
}

absl::Status ApplyOverride(const std::string& assignment, ExperimentConfig* config) {
  std::pair<std::string, std::string> kv = absl::StrSplit(assignment, absl::MaxSplits('=', 1));
  const std::string& path = kv.first;
  if (path.empty() || assignment.find('=') == std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("override '", assignment, "': expected path.to.field=value"));
  }
  // Walk the path to find the leaf field; build "a { b { leaf: value } }" for the parser.
  std::vector<std::string> parts = absl::StrSplit(path, '.');
  Message* message = config;
  std::string prefix, suffix;
  for (size_t i = 0; i < parts.size(); ++i) {
    const Descriptor* descriptor = message->GetDescriptor();
    const FieldDescriptor* field = descriptor->FindFieldByName(parts[i]);
    if (field == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("override '", assignment, "': ",
                                                     descriptor->full_name(), " has no field '",
                                                     parts[i], "'"));
    }
    const bool leaf = i + 1 == parts.size();
    if (!leaf) {
      if (field->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE || field->is_repeated()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "override '", assignment, "': '", parts[i], "' is not a single message field"));
      }
      message = message->GetReflection()->MutableMessage(message, field);
      absl::StrAppend(&prefix, parts[i], " { ");
      suffix = absl::StrCat(" }", suffix);
      continue;
    }
    if (field->is_repeated()) message->GetReflection()->ClearField(message, field);
    const std::string text =
        field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE
            ? absl::StrCat(prefix, parts[i], " ", kv.second, suffix)
            : absl::StrCat(prefix, parts[i], ": ", TextValue(field, kv.second), suffix);
    return Parse(text, absl::StrCat("override '", assignment, "'"), config);
  }
  return absl::OkStatus();
}

namespace {

// Each field of `m` that cannot work, as an error (OK entries for the good ones).
std::vector<absl::Status> ModelChecks(const ModelConfig& m) {
  const RandomInit& r = m.random_init();
  return {
      Check(InRange(m.experts(), 1, kMaxExperts), "model.experts", InRangeText(1, kMaxExperts),
            m.experts()),
      Check(m.init_eps() >= 0, "model.init_eps", ">= 0", m.init_eps()),
      Check(m.dropout() >= 0 && m.dropout() < 1, "model.dropout", "in [0, 1)", m.dropout()),
      Check(m.attention_dropout() >= 0 && m.attention_dropout() < 1, "model.attention_dropout",
            "in [0, 1)", m.attention_dropout()),
      Check(m.activation_dropout() >= 0 && m.activation_dropout() < 1,
            "model.activation_dropout", "in [0, 1)", m.activation_dropout()),
      Check(!m.has_random_init() || InRange(r.d_model(), 1, kMaxModelWidth),
            "model.random_init.d_model", InRangeText(1, kMaxModelWidth), r.d_model()),
      Check(!m.has_random_init() || (InRange(r.attention_heads(), 1, kMaxAttentionHeads) &&
                                     r.d_model() % r.attention_heads() == 0),
            "model.random_init.attention_heads",
            InRangeText(1, kMaxAttentionHeads) + " and divide d_model", r.attention_heads()),
      Check(!m.has_random_init() || InRange(r.encoder_layers(), 1, kMaxLayers),
            "model.random_init.encoder_layers", InRangeText(1, kMaxLayers), r.encoder_layers()),
      Check(!m.has_random_init() || InRange(r.decoder_layers(), 1, kMaxLayers),
            "model.random_init.decoder_layers", InRangeText(1, kMaxLayers), r.decoder_layers()),
      Check(!m.has_random_init() || InRange(r.ffn_dim(), 1, kMaxModelWidth),
            "model.random_init.ffn_dim", InRangeText(1, kMaxModelWidth), r.ffn_dim()),
      Check(!m.has_random_init() || InRange(r.max_position_embeddings(), 2, kMaxPositions),
            "model.random_init.max_position_embeddings", InRangeText(2, kMaxPositions),
            r.max_position_embeddings()),
      Check(!m.has_random_init() || r.init_std() > 0, "model.random_init.init_std", "> 0",
            r.init_std()),
  };
}

// The same for the optimizer, training, evaluation, data and task-vector fields of `c`.
std::vector<absl::Status> RunChecks(const ExperimentConfig& c) {
  const ModelConfig& m = c.model();
  const OptimizerConfig& o = c.optimizer();
  const TrainingConfig& t = c.training();
  const EvaluationConfig& e = c.evaluation();
  const DataConfig& d = c.data();
  return {
      Check(o.lr() >= 0, "optimizer.lr", ">= 0", o.lr()),
      Check(o.router_lr() >= 0, "optimizer.router_lr", ">= 0", o.router_lr()),
      Check(o.task_vector_lr() >= 0, "optimizer.task_vector_lr", ">= 0", o.task_vector_lr()),
      Check(o.weight_decay() >= 0, "optimizer.weight_decay", ">= 0", o.weight_decay()),
      Check(o.adam_epsilon() > 0, "optimizer.adam_epsilon", "> 0", o.adam_epsilon()),
      Check(o.adam_beta1() >= 0 && o.adam_beta1() < 1, "optimizer.adam_beta1", "in [0, 1)",
            o.adam_beta1()),
      Check(o.adam_beta2() >= 0 && o.adam_beta2() < 1, "optimizer.adam_beta2", "in [0, 1)",
            o.adam_beta2()),
      Check(o.max_grad_norm() >= 0, "optimizer.max_grad_norm", ">= 0", o.max_grad_norm()),
      Check(t.total_steps() >= 0, "training.total_steps", ">= 0 (0 = predict only)",
            t.total_steps()),
      // Predicting without training needs trained weights and something to predict.
      Check(t.total_steps() > 0 || (m.has_checkpoint() || m.has_hf_dir()),
            "training.total_steps", "> 0 unless model.checkpoint or model.hf_dir is given",
            t.total_steps()),
      Check(t.total_steps() > 0 || e.do_predict(), "training.total_steps",
            "> 0 unless evaluation.do_predict is true", t.total_steps()),
      Check(t.warmup_ratio() >= 0 && t.warmup_ratio() <= 1, "training.warmup_ratio", "in [0, 1]",
            t.warmup_ratio()),
      Check(t.gradient_accumulation_steps() >= 1, "training.gradient_accumulation_steps", ">= 1",
            t.gradient_accumulation_steps()),
      Check(t.train_batch_size() >= 1, "training.train_batch_size", ">= 1", t.train_batch_size()),
      Check(t.label_smoothing() >= 0 && t.label_smoothing() < 1, "training.label_smoothing",
            "in [0, 1)", t.label_smoothing()),
      Check(t.expert_regularization() >= 0, "training.expert_regularization", ">= 0",
            t.expert_regularization()),
      Check(t.alternate_every() >= 0, "training.alternate_every", ">= 0", t.alternate_every()),
      CheckThreadCount(t.threads(), "config field training.threads"),
      Check(t.save_period() >= 0, "training.save_period", ">= 0", t.save_period()),
      Check(t.log_every() >= 1, "training.log_every", ">= 1", t.log_every()),
      Check(e.eval_period() >= 1, "evaluation.eval_period", ">= 1", e.eval_period()),
      Check(e.no_eval_until() >= 0, "evaluation.no_eval_until", ">= 0", e.no_eval_until()),
      Check(e.predict_batch_size() >= 1, "evaluation.predict_batch_size", ">= 1",
            e.predict_batch_size()),
      Check(InRange(e.num_beams(), 1, kMaxBeams), "evaluation.num_beams",
            InRangeText(1, kMaxBeams), e.num_beams()),
      Check(e.max_dev_examples() >= 0, "evaluation.max_dev_examples", ">= 0",
            e.max_dev_examples()),
      Check(d.max_input_length() >= 2, "data.max_input_length", ">= 2", d.max_input_length()),
      Check(d.max_output_length() >= 2, "data.max_output_length", ">= 2", d.max_output_length()),
      Check(InRange(c.task_vectors().dim(), 1, kMaxTaskVectorDim), "task_vectors.dim",
            InRangeText(1, kMaxTaskVectorDim), c.task_vectors().dim()),
  };
}

}  // namespace

absl::Status ValidateExperimentConfig(const ExperimentConfig& c) {
  const ModelConfig& m = c.model();
  const TrainingConfig& t = c.training();
  std::vector<absl::Status> checks = ModelChecks(m);
  for (absl::Status& status : RunChecks(c)) checks.push_back(std::move(status));
  for (const absl::Status& status : checks) {
    if (!status.ok()) return status;
  }
  for (int layer : m.encoder_vanilla_layers()) {
    absl::Status s = Check(layer >= 0, "model.encoder_vanilla_layers", ">= 0", layer);
    if (!s.ok()) return s;
  }
  for (int layer : m.decoder_vanilla_layers()) {
    absl::Status s = Check(layer >= 0, "model.decoder_vanilla_layers", ">= 0", layer);
    if (!s.ok()) return s;
  }
  if (t.device() != "cpu" && t.device() != "cuda" && t.device() != "auto") {
    return absl::InvalidArgumentError(absl::StrCat(
        "config field training.device: must be cpu, cuda or auto, got '", t.device(), "'"));
  }
  if (c.output_dir().empty()) {
    return absl::InvalidArgumentError("config field output_dir: must not be empty");
  }
  return absl::OkStatus();
}

namespace {

// Reads a config file and, first, the chain of files it extends (`base`).
absl::StatusOr<ExperimentConfig> ReadConfigFile(const std::string& path, int depth) {
  if (depth > 8) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": config field base: chain of base "
                                                   "configs deeper than 8 (a cycle?)"));
  }
  // ReadFileBytes, not an ifstream: that opens a directory (`base: ""` names the config's own
  // directory) and reads it as an empty config, a silent base of defaults.
  absl::StatusOr<std::string> text = ReadFileBytes(path);
  if (!text.ok()) return text.status();
  absl::StatusOr<ExperimentConfig> parsed = ParseExperimentConfig(*text, path);
  if (!parsed.ok() || !parsed->has_base()) return parsed;
  const std::string base_path =
      (std::filesystem::path(path).parent_path() / parsed->base()).string();
  absl::StatusOr<ExperimentConfig> base = ReadConfigFile(base_path, depth + 1);
  if (!base.ok()) {
    return absl::Status(base.status().code(), absl::StrCat(path, ": config field base: ",
                                                           base.status().message()));
  }
  parsed->clear_base();
  base->clear_base();
  base->MergeFrom(*parsed);
  // The params message belongs to the plugin: a routing block replaces the base's whole.
  if (parsed->has_routing()) *base->mutable_routing() = parsed->routing();
  return base;
}

}  // namespace

absl::StatusOr<ExperimentConfig> LoadExperimentConfig(const std::string& path,
                                                      const std::vector<std::string>& overrides) {
  ExperimentConfig config;
  if (!path.empty()) {
    absl::StatusOr<ExperimentConfig> read = ReadConfigFile(path, 0);
    if (!read.ok()) return read.status();
    config = *std::move(read);
  }
  for (const std::string& assignment : overrides) {
    absl::Status status = ApplyOverride(assignment, &config);
    if (!status.ok()) return status;
  }
  absl::Status status = ValidateExperimentConfig(config);
  if (!status.ok()) return status;
  return config;
}

std::string ExperimentConfigToText(const ExperimentConfig& config) {
  std::string text;
  TextFormat::Printer printer;
  printer.SetExpandAny(true);
  printer.PrintToString(config, &text);
  return text;
}

}  // namespace taskmoe
