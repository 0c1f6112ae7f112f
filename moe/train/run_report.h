#ifndef TASKMOE_MOE_TRAIN_RUN_REPORT_H_
#define TASKMOE_MOE_TRAIN_RUN_REPORT_H_

#include <string>
#include <utility>
#include <vector>

#include <ATen/ATen.h>

#include "moe/train/checkpoint.h"
#include "moe/train/evaluation.h"
#include "moe/train/run_data.h"

namespace taskmoe {

struct RunSummary {
  std::string output_dir;
  int64_t steps = 0;
  double best_dev_performance = 0;
  int64_t best_step = 0;
  // Dev performance of the best checkpoint averaged per ontology category.
  std::vector<std::pair<std::string, double>> category_performance;
  // Mean dev performance of predicting each task's most frequent training output.
  double majority_baseline = 0;
  // Mean L1 distance between the routes of two tasks of the same / different categories.
  double within_category_route_distance = 0;
  double between_category_route_distance = 0;
  std::string route_map_path;
  std::string text;  // the report printed at the end
};

// The report printed at the end of a run: the best dev score, dev performance per ontology
// category, a trivial baseline (each task's most frequent training output), how alike the
// routes `routes` [train tasks, layers, E] of tasks of one category are, and the route map.
RunSummary SummarizeRun(const ExperimentData& data, const TrainerState& state,
                        const std::string& output_dir, const std::vector<TaskScore>& dev_scores,
                        const at::Tensor& routes);

}  // namespace taskmoe

#endif  // TASKMOE_MOE_TRAIN_RUN_REPORT_H_
