#include "moe/train/evaluation.h"

#include <cmath>
#include <map>

#include <torch/autograd.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "data/python_str.h"
#include "glog/logging.h"
#include "moe/base/file_io.h"
#include "moe/base/status_macros.h"
#include "moe/model/loss.h"

namespace taskmoe {
namespace {

constexpr char kScoresCsvHeader[] = "task_prefix,metric,performance";

// Batches in dataset order, each from one task (generation routes are per task).
std::vector<Batch> EvaluationBatches(const TokenizedDataset& data, int64_t batch_size,
                                     int64_t pad_id) {
  BatchOptions options;
  options.batch_size = batch_size;
  options.grouping = BatchGrouping::kTaskGrouped;
  options.shuffle = false;
  options.pad_id = pad_id;
  return MakeEpochBatches(data, options, /*epoch=*/0);
}

// Python's str.strip(), as the original applies it to every prediction.
std::string PythonStrip(const std::string& text) {
  absl::StatusOr<std::u32string> decoded = python_str::DecodeUtf8(text);
  CHECK(decoded.ok()) << "the tokenizer decodes to valid UTF-8";
  return python_str::EncodeUtf8(python_str::Strip(*decoded));
}

}  // namespace

absl::StatusOr<LossTotals> DatasetLoss(MoeBart& model, const TokenizedDataset& data,
                                       const BatchRoutes& routes, int64_t batch_size,
                                       double label_smoothing, at::Device device) {
  torch::NoGradGuard no_grad;
  const BartConfig& config = model.config();
  LossTotals totals;
  for (const Batch& batch : EvaluationBatches(data, batch_size, config.pad_token_id)) {
    const BatchTensors t = ToTensors(batch, config.decoder_start_token_id, device);
    absl::StatusOr<BartOutput> out = model.Forward(t.input_ids, t.attention_mask,
                                                   t.decoder_input_ids, routes(t.task_ids));
    if (!out.ok()) return out.status();
    const LabelSmoothedLoss loss =
        LabelSmoothedNllLoss(out->logits, t.labels, label_smoothing, config.pad_token_id);
    totals.loss_sum += loss.loss.item<double>();
    totals.tokens += loss.ntokens.item<int64_t>();
  }
  return totals;
}

absl::StatusOr<std::vector<TaskScore>> ScoreGenerations(
    MoeBart& model, const TokenizedDataset& data,
    const std::vector<std::vector<std::string>>& references, const BartTokenizer& tokenizer,
    const MetricTable& metrics, const BatchRoutes& routes, const GenerationOptions& options,
    int64_t batch_size, at::Device device) {
  std::vector<std::string> predictions(data.examples.size());
  for (const Batch& batch : EvaluationBatches(data, batch_size, tokenizer.pad_id())) {
    const BatchTensors t = ToTensors(batch, model.config().decoder_start_token_id, device);
    const RouteWeights batch_routes = routes(t.task_ids);
    absl::StatusOr<GenerationOutput> out =
        Generate(model.model(), t.input_ids, t.attention_mask, options, &batch_routes);
    if (!out.ok()) return out.status();
    const at::Tensor sequences = out->sequences.to(at::kCPU).contiguous();
    for (int64_t row = 0; row < batch.size; ++row) {
      const int64_t* ids = sequences[row].data_ptr<int64_t>();
      predictions[batch.example_indices[row]] =
          PythonStrip(tokenizer.Decode(std::vector<int64_t>(ids, ids + sequences.size(1))));
    }
  }
  std::vector<TaskScore> scores(data.tasks.size());
  std::vector<std::vector<std::vector<std::string>>> task_references(data.tasks.size());
  for (size_t i = 0; i < data.examples.size(); ++i) {
    const int32_t task = data.examples[i].task_id;
    scores[task].predictions.push_back(predictions[i]);
    task_references[task].push_back(references[i]);
  }
  for (size_t task = 0; task < data.tasks.size(); ++task) {
    scores[task].task = data.tasks[task];
    absl::StatusOr<Metric> metric = metrics.MetricOf(data.tasks[task]);
    if (!metric.ok()) return metric.status();
    scores[task].metric = std::string(MetricName(*metric));
    absl::StatusOr<double> value =
        Evaluate(scores[task].predictions, task_references[task], *metric);
    if (!value.ok()) {
      return absl::Status(value.status().code(), absl::StrCat("scoring task ", data.tasks[task],
                                                              ": ", value.status().message()));
    }
    scores[task].performance = *value;
  }
  return scores;
}

double MeanPerformance(const std::vector<TaskScore>& scores) {
  if (scores.empty()) return 0.0;
  double sum = 0;
  for (const TaskScore& score : scores) {
    if (std::isfinite(score.performance)) sum += score.performance;
  }
  return sum / scores.size();
}

absl::Status WriteScoresCsv(const std::vector<TaskScore>& scores, const std::string& path) {
  std::string csv = absl::StrCat(kScoresCsvHeader, "\n");
  for (const TaskScore& score : scores) {
    absl::StrAppend(&csv, score.task, ",", score.metric, ",", score.performance, "\n");
  }
  return WriteFileAtomically(path, csv);
}

absl::StatusOr<std::vector<TaskScore>> ReadScoresCsv(const std::string& path) {
  TASKMOE_ASSIGN_OR_RETURN(const std::string text, ReadFileBytes(path));
  const std::vector<absl::string_view> lines = absl::StrSplit(text, '\n', absl::SkipEmpty());
  if (lines.empty() || lines[0] != kScoresCsvHeader) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": expected the header line \"", kScoresCsvHeader, "\""));
  }
  std::vector<TaskScore> scores;
  for (size_t i = 1; i < lines.size(); ++i) {
    const std::vector<absl::string_view> fields = absl::StrSplit(lines[i], ',');
    TaskScore score;
    if (fields.size() != 3 || fields[0].empty() ||
        !absl::SimpleAtod(fields[2], &score.performance)) {
      return absl::InvalidArgumentError(absl::StrCat(
          path, " line ", i + 1, ": expected task_prefix,metric,performance, got \"", lines[i],
          "\""));
    }
    score.task = std::string(fields[0]);
    score.metric = std::string(fields[1]);
    scores.push_back(std::move(score));
  }
  return scores;
}

}  // namespace taskmoe
