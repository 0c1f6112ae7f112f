#ifndef TASKMOE_MOE_REPORT_PIPELINE_PAGE_H_
#define TASKMOE_MOE_REPORT_PIPELINE_PAGE_H_

// The HTML report of an experiment pipeline's output: per results tree the arms table, the
// comparison table (delta points, ARG and ratio of means with 95% intervals, p-values) and
// forest plots of delta and ARG; the route-skill agreement per arm with its nulls; the phase
// timings and the markdown report.

#include <string>
#include <vector>

#include "moe/report/pipeline_record.h"

namespace taskmoe {

struct PipelineReportOptions {
  // Arms whose routes owe nothing to the tasks' training (e.g. task-level random routes, the
  // untrained router): the nulls of the route-skill agreement, marked and listed last.
  std::vector<std::string> null_arms;
};

std::string PipelineReportHtml(const PipelineRecord& record,
                               const PipelineReportOptions& options = {});

}  // namespace taskmoe

#endif  // TASKMOE_MOE_REPORT_PIPELINE_PAGE_H_
