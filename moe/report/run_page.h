#ifndef TASKMOE_MOE_REPORT_RUN_PAGE_H_
#define TASKMOE_MOE_REPORT_RUN_PAGE_H_

// The HTML report of a trainer run: config summary, loss and dev curves, dev and test scores per
// ontology category, the route map and its evolution, the route-skill agreement with its null,
// and what was left out.

#include <string>
#include <vector>

#include "moe/report/run_record.h"
#include "moe/train/experiment.pb.h"

namespace taskmoe {

// The key fields of a config as (field, value) rows: model, experts, routing, task vectors,
// data, steps, batch, learning rates, seed, evaluation.
std::vector<std::vector<std::string>> ConfigSummaryRows(const ExperimentConfig& config);

// The whole page.
std::string RunReportHtml(const RunRecord& record);

}  // namespace taskmoe

#endif  // TASKMOE_MOE_REPORT_RUN_PAGE_H_
