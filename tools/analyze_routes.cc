// Route-skill agreement of the routes files of one arm (one file per seed): Spearman rho between
// route similarity and skill similarity over all task pairs, with label-permutation p-values;
// optionally partialling out task-vector similarity, and held-out tasks' nearest train task in
// route space (data/route_agreement.h). A markdown table on stdout, optionally JSON.
//
//   analyze_routes --routes=runs/s1/best/route.npy,runs/s2/best/route.npy
//       --skills=gym_data/skills.json [--task_vectors=runs/s1/best,runs/s2/best]
//       [--permutations=9999] [--seed=1] [--json=agreement.json]

#include <filesystem>
#include <functional>
#include <iostream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "data/crossfit.h"
#include "data/route_agreement.h"
#include "moe/base/file_io.h"
#include "moe/base/status_macros.h"
#include "moe/formats/task_table.h"
#include "moe/train/checkpoint.h"
#include "moe/train/run_outputs.h"
#include "tools/tool_main.h"

ABSL_FLAG(std::string, routes, "",
          "comma-separated routes files (route.npy, float [tasks, layers, experts]), one per seed");
ABSL_FLAG(std::string, route_tasks, "",
          "comma-separated route_tasks.json files ({\"0\": task, ...}) naming the rows, one per "
          "routes file or one for all; empty: route_tasks.json beside each routes file");
ABSL_FLAG(std::string, skills, "",
          "the gym's skills.json: skill similarity = Jaccard overlap of two tasks' skill sets");
ABSL_FLAG(std::string, ontology, "",
          "ontology.json, instead of --skills: skill similarity = 1 for tasks of one category, "
          "else 0");
ABSL_FLAG(std::string, split, "",
          "split.json whose train list decides which tasks are held out; empty: skills.json's "
          "\"split\" (none held out with --ontology)");
ABSL_FLAG(std::string, task_vectors, "",
          "comma-separated directories holding id2task.json + task_vecs.npy, one per routes file "
          "or one for all; adds the Spearman rho partialling out task-vector cosine similarity");
ABSL_FLAG(int, permutations, 9999, "label permutations behind each p-value");
ABSL_FLAG(uint64_t, seed, 1, "seed of the permutations and of the bootstrap over files");
ABSL_FLAG(std::string, json, "", "also write the results as JSON to this file");

namespace taskmoe {
namespace {

namespace fs = std::filesystem;

std::vector<std::string> CommaList(const std::string& value) {
  return absl::StrSplit(value, ',', absl::SkipEmpty());
}

// One entry of the list `value` of flag `flag` per routes file: the list itself, its one entry
// repeated, or `fallback(i)` when it is empty.
absl::StatusOr<std::vector<std::string>> PerRoutesFile(
    const std::string& flag, const std::string& value, const std::vector<std::string>& routes,
    const std::function<std::string(size_t)>& fallback) {
  std::vector<std::string> values = CommaList(value);
  if (values.empty()) {
    for (size_t i = 0; i < routes.size(); ++i) values.push_back(fallback(i));
  } else if (values.size() == 1) {
    values.resize(routes.size(), values.front());
  } else if (values.size() != routes.size()) {
    return absl::InvalidArgumentError(absl::StrCat("--", flag, " names ", values.size(),
                                                   " entries for ", routes.size(),
                                                   " routes files"));
  }
  return values;
}

absl::Status ReadTaskVectors(const std::string& dir, AgreementOptions* options) {
  TASKMOE_ASSIGN_OR_RETURN(const TaskTable table, TaskTable::Load(dir));
  options->task_vectors.clear();
  options->task_vectors_source = dir + "/" + TaskTable::kNamesFile;
  const at::Tensor vectors = table.vectors().contiguous();
  for (int64_t i = 0; i < table.size(); ++i) {
    const float* row = vectors.data_ptr<float>() + i * table.dim();
    options->task_vectors[table.name(i)] = std::vector<float>(row, row + table.dim());
  }
  return absl::OkStatus();
}

// The skill table of --skills or --ontology, held-out tasks by --split when given.
absl::StatusOr<TaskSkillTable> ReadSkillTable(RouteAgreementReport* report) {
  const std::string skills = absl::GetFlag(FLAGS_skills);
  const std::string ontology = absl::GetFlag(FLAGS_ontology);
  if (skills.empty() == ontology.empty()) {
    return absl::InvalidArgumentError("give exactly one of --skills and --ontology");
  }
  TaskSkillTable table;
  if (!skills.empty()) {
    TASKMOE_ASSIGN_OR_RETURN(table, ReadSkillsJson(skills));
    report->basis = "skills";
    report->skills_source = skills;
  } else {
    TASKMOE_ASSIGN_OR_RETURN(const Ontology read, ReadOntology(ontology));
    table = SkillsFromOntology(read, ontology);
    report->basis = "categories";
    report->skills_source = ontology;
  }
  if (!absl::GetFlag(FLAGS_split).empty()) {
    TASKMOE_ASSIGN_OR_RETURN(const TaskSplit split, ReadTaskSplit(absl::GetFlag(FLAGS_split)));
    HoldOutAllBut(split.train, &table);
  }
  return table;
}

absl::Status Run() {
  const std::vector<std::string> routes = CommaList(absl::GetFlag(FLAGS_routes));
  if (routes.empty()) return absl::InvalidArgumentError("--routes is required");
  RouteAgreementReport report;
  TASKMOE_ASSIGN_OR_RETURN(const TaskSkillTable skills, ReadSkillTable(&report));
  const auto beside = [&routes](size_t i) {
    return (fs::path(routes[i]).parent_path() / kRouteTasksFile).string();
  };
  TASKMOE_ASSIGN_OR_RETURN(
      const std::vector<std::string> route_tasks,
      PerRoutesFile("route_tasks", absl::GetFlag(FLAGS_route_tasks), routes, beside));
  TASKMOE_ASSIGN_OR_RETURN(const std::vector<std::string> task_vectors,
                           PerRoutesFile("task_vectors", absl::GetFlag(FLAGS_task_vectors),
                                         routes, [](size_t) { return ""; }));
  AgreementOptions options;
  options.permutations = absl::GetFlag(FLAGS_permutations);
  options.seed = absl::GetFlag(FLAGS_seed);
  report.permutations = options.permutations;
  report.seed = options.seed;
  std::string loaded_vectors;  // one directory for every file is read once
  for (size_t i = 0; i < routes.size(); ++i) {
    TASKMOE_ASSIGN_OR_RETURN(const NamedRoutes file, ReadNamedRoutes(routes[i], route_tasks[i]));
    if (!task_vectors[i].empty() && task_vectors[i] != loaded_vectors) {
      TASKMOE_RETURN_IF_ERROR(ReadTaskVectors(task_vectors[i], &options));
      loaded_vectors = task_vectors[i];
    }
    TASKMOE_ASSIGN_OR_RETURN(RouteAgreement agreement,
                             MeasureRouteAgreement(file, skills, options));
    report.files.push_back({routes[i], route_tasks[i], std::move(agreement)});
  }
  SummarizeFiles(&report);
  if (!absl::GetFlag(FLAGS_json).empty()) {
    TASKMOE_RETURN_IF_ERROR(
        WriteFileAtomically(absl::GetFlag(FLAGS_json), RouteAgreementJson(report)));
  }
  return WriteToolOutput("", RouteAgreementMarkdown(report));
}

}  // namespace
}  // namespace taskmoe

int main(int argc, char** argv) {
  taskmoe::ToolOptions tool;
  tool.name = "analyze_routes";
  tool.output_flags = {"json"};
  tool.usage =
      "Route-skill agreement: Spearman rho of route vs skill similarity over task pairs, with "
      "permutation p-values, per routes file and as a mean over them.\n"
      "  analyze_routes --routes=a/route.npy,b/route.npy --skills=skills.json "
      "[--task_vectors=a,b] [--json=agreement.json]";
  return taskmoe::RunTool(argc, argv, tool,
                          [](const std::vector<std::string>&) { return taskmoe::Run(); });
}
