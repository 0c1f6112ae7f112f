#include "moe/train/run_outputs.h"

#include <filesystem>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "glog/logging.h"
#include "moe/base/file_io.h"
#include "moe/base/status_macros.h"
#include "moe/formats/npy.h"
#include "moe/formats/task_table.h"
#include "moe/train/experiment_config.h"

namespace taskmoe {

namespace fs = std::filesystem;

absl::StatusOr<RouteTable> RouteTableFromTensor(const at::Tensor& routes) {
  if (!routes.defined() || routes.dim() != 3 || !at::isFloatingType(routes.scalar_type())) {
    return absl::InvalidArgumentError(absl::StrCat(
        "routes tensor should be floating point [tasks, layers, experts], got ",
        routes.defined() ? absl::StrCat(routes.dim(), "-d ", c10::toString(routes.scalar_type()))
                         : "an undefined tensor"));
  }
  const at::Tensor values = routes.detach().to(at::kCPU, at::kFloat).contiguous();
  RouteTable table;
  table.tasks = values.size(0);
  table.layers = values.size(1);
  table.experts = values.size(2);
  table.values.assign(values.data_ptr<float>(), values.data_ptr<float>() + values.numel());
  return table;
}

absl::StatusOr<RouteTable> ReadRouteTable(const std::string& path) {
  TASKMOE_ASSIGN_OR_RETURN(const at::Tensor tensor, ReadNpy(path));
  absl::StatusOr<RouteTable> table = RouteTableFromTensor(tensor);
  if (!table.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", table.status().message()));
  }
  return table;
}

absl::StatusOr<NamedRoutes> ReadNamedRoutes(const std::string& routes_path,
                                            const std::string& tasks_path) {
  TASKMOE_ASSIGN_OR_RETURN(RouteTable table, ReadRouteTable(routes_path));
  NamedRoutes routes;
  routes.source = routes_path;
  routes.tasks_source = tasks_path;
  TASKMOE_ASSIGN_OR_RETURN(routes.tasks, TaskTable::ReadNames(tasks_path));
  routes.values = std::move(table.values);
  routes.layers = table.layers;
  routes.experts = table.experts;
  return routes;
}

std::vector<RouteCategory> RouteCategoriesOf(const Ontology& ontology) {
  std::vector<RouteCategory> categories;
  for (const Ontology::Category& category : ontology.categories) {
    RouteCategory group;
    group.name = category.name;
    for (const Ontology::SubCategory& sub : category.sub_categories) {
      group.subcategories.push_back({sub.name, sub.tasks});
    }
    categories.push_back(std::move(group));
  }
  return categories;
}

namespace {

// The files and directories a run reads, as its config names them.
std::vector<std::string> ConfigInputs(const ExperimentConfig& c) {
  return {c.model().hf_dir(), c.model().checkpoint(), c.data().data_dir(), c.data().split(),
          c.data().ontology(), c.data().metrics(), c.data().predict_data_dir(),
          c.task_vectors().dir(), c.tokenizer().vocab(), c.tokenizer().merges(),
          c.routing().fixed_routes_npy()};
}

}  // namespace

absl::StatusOr<DirectoryLock> StartRunOutputs(const ExperimentConfig& config) {
  const std::string& dir = config.output_dir();
  // What the run replaces may not hold what it reads (e.g. model.checkpoint: <output_dir>/best).
  std::vector<std::string> replaced = {absl::StrCat(dir, "/", kPredictDir)};
  if (config.training().total_steps() > 0) {
    for (const char* name : {kBestCheckpoint, kLastCheckpoint, "evals"}) {
      replaced.push_back(absl::StrCat(dir, "/", name));
    }
  }
  TASKMOE_RETURN_IF_ERROR(CheckOutputsSpareInputs(replaced, ConfigInputs(config)));
  TASKMOE_RETURN_IF_ERROR(CreateDirectories(dir));
  TASKMOE_ASSIGN_OR_RETURN(DirectoryLock lock, DirectoryLock::Acquire(dir));
  // The run replaces these directories; a file of that name is someone's, not the run's.
  for (const char* name : {kBestCheckpoint, kLastCheckpoint, "evals", kPredictDir}) {
    const std::string path = absl::StrCat(dir, "/", name);
    std::error_code error;
    if (fs::exists(path, error) && !fs::is_directory(path, error)) {
      return absl::FailedPreconditionError(absl::StrCat(
          "output_dir ", dir, " holds a file named '", name, "' where the run keeps a directory; "
          "move it away (the run would replace it)"));
    }
  }
  google::SetLogDestination(google::GLOG_INFO, (dir + "/train.log.").c_str());
  TASKMOE_RETURN_IF_ERROR(
      WriteFileAtomically(dir + "/" + kExperimentFile, ExperimentConfigToText(config)));
  return lock;
}

std::string LossesCsv(const std::vector<EvalRecord>& history) {
  std::string csv = "steps,train_loss,dev_loss,dev_performance\n";
  for (const EvalRecord& r : history) {
    absl::StrAppend(&csv, r.step, ",", r.train_loss, ",", r.dev_loss, ",", r.dev_performance,
                    "\n");
  }
  return csv;
}

absl::Status WriteRouteFiles(const RouteViews& views, const std::vector<std::string>& tasks,
                             const std::optional<Ontology>& ontology, const ModelShape& shape,
                             int64_t step, const std::string& dir) {
  TASKMOE_RETURN_IF_ERROR(TaskTable::WriteNames(tasks, dir + "/" + kRouteTasksFile));
  const std::vector<RouteCategory> categories =
      ontology.has_value() ? RouteCategoriesOf(*ontology) : std::vector<RouteCategory>();
  const std::vector<std::string> layer_labels =
      EncoderDecoderLayerLabels(shape.encoder_layers, shape.decoder_layers);
  struct ViewFiles {
    const at::Tensor& routes;
    const char* npy;
    const char* png;
    const char* title;
  };
  for (const ViewFiles& view :
       {ViewFiles{views.soft, kRoutesFile, kRoutesImageFile, "routes"},
        ViewFiles{views.soft_t1, kRoutesT1File, kRoutesT1ImageFile, "routes at tau 1"},
        ViewFiles{views.argmax, kRoutesArgmaxFile, kRoutesArgmaxImageFile, "argmax routes"}}) {
    TASKMOE_RETURN_IF_ERROR(WriteNpy(dir + "/" + view.npy, view.routes));
    TASKMOE_ASSIGN_OR_RETURN(const RouteTable table, RouteTableFromTensor(view.routes));
    RouteMapOptions options;
    options.title = absl::StrCat(view.title, ", step ", step);
    TASKMOE_RETURN_IF_ERROR(
        WriteRouteMapPng(table, tasks, categories, layer_labels, dir + "/" + view.png, options));
  }
  return absl::OkStatus();
}

absl::Status WritePredictions(const std::vector<TaskScore>& scores, const std::string& split,
                              const std::string& predict_dir) {
  const std::string split_dir = predict_dir + "/" + split;
  TASKMOE_RETURN_IF_ERROR(CreateDirectories(split_dir));
  TASKMOE_RETURN_IF_ERROR(WriteScoresCsv(
      scores, absl::StrCat(predict_dir, "/eval-", split, "-performance.csv")));
  for (const TaskScore& score : scores) {
    std::string lines;
    for (const std::string& p : score.predictions) absl::StrAppend(&lines, p, "\n");
    TASKMOE_RETURN_IF_ERROR(
        WriteFileAtomically(absl::StrCat(split_dir, "/", score.task, ".txt"), lines));
  }
  return absl::OkStatus();
}

}  // namespace taskmoe
