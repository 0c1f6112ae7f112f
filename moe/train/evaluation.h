#ifndef TASKMOE_MOE_TRAIN_EVALUATION_H_
#define TASKMOE_MOE_TRAIN_EVALUATION_H_

#include <functional>
#include <string>
#include <vector>

#include <ATen/ATen.h>

#include "absl/status/statusor.h"
#include "data/batching.h"
#include "data/metrics.h"
#include "data/tokenizer.h"
#include "moe/model/batch_tensors.h"
#include "moe/model/generation.h"
#include "moe/model/moe_model.h"
#include "moe/model/route_weights.h"

namespace taskmoe {

// Routes for `batch` examples of the dataset task `task_id` (evaluation batches hold one task).
using BatchRoutes = std::function<RouteWeights(const at::Tensor& task_ids)>;

// Summed label-smoothed loss and target tokens over a dataset, without gradients.
struct LossTotals {
  double loss_sum = 0;
  int64_t tokens = 0;
  double PerToken() const { return tokens > 0 ? loss_sum / tokens : 0.0; }
};
absl::StatusOr<LossTotals> DatasetLoss(MoeBart& model, const TokenizedDataset& data,
                                       const BatchRoutes& routes, int64_t batch_size,
                                       double label_smoothing, at::Device device);

struct TaskScore {
  std::string task;
  std::string metric;
  double performance = 0;
  std::vector<std::string> predictions;  // decoded and stripped, in file order
};

// Generates an output for every example and scores each task with its metric, as the original
// does: decode with skip_special_tokens and clean-up, strip, compare against the TSV outputs.
// `references[i]` belongs to data.examples[i]. Tasks come in the order of data.tasks.
absl::StatusOr<std::vector<TaskScore>> ScoreGenerations(
    MoeBart& model, const TokenizedDataset& data,
    const std::vector<std::vector<std::string>>& references, const BartTokenizer& tokenizer,
    const MetricTable& metrics, const BatchRoutes& routes, const GenerationOptions& options,
    int64_t batch_size, at::Device device);

// Mean performance over tasks (the original's selection criterion). A task whose metric is
// undefined (NaN, e.g. Pearson correlation of constant predictions) counts as 0, so one such
// task does not make every checkpoint incomparable.
double MeanPerformance(const std::vector<TaskScore>& scores);

// Writes "task_prefix,metric,performance" rows, the columns of the original's dev_results.csv.
absl::Status WriteScoresCsv(const std::vector<TaskScore>& scores, const std::string& path);

// The scores of a file WriteScoresCsv wrote (without predictions). Errors name the file, the
// line and what was expected there.
absl::StatusOr<std::vector<TaskScore>> ReadScoresCsv(const std::string& path);

}  // namespace taskmoe

#endif  // TASKMOE_MOE_TRAIN_EVALUATION_H_
