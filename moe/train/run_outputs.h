#ifndef TASKMOE_MOE_TRAIN_RUN_OUTPUTS_H_
#define TASKMOE_MOE_TRAIN_RUN_OUTPUTS_H_

// The files a run writes besides checkpoints (DESIGN.md "File formats"): losses.csv, the route
// files of every evaluation and checkpoint, and the prediction files.

#include <optional>
#include <string>
#include <vector>

#include <ATen/ATen.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "data/crossfit.h"
#include "data/route_agreement.h"
#include "moe/base/directory_lock.h"
#include "moe/drawing/route_map.h"
#include "moe/model/route_weights.h"
#include "moe/routing/routing.h"
#include "moe/train/checkpoint.h"
#include "moe/train/evaluation.h"
#include "moe/train/experiment.pb.h"

namespace taskmoe {

// Where a run writes its predictions (and, when it only predicts, the routes it used).
inline constexpr char kPredictDir[] = "predict";
// The route maps of a run's evaluations as one animated GIF (moe/train/route_evolution.h).
inline constexpr char kRouteGifFile[] = "routes.gif";

// Creates config.output_dir and locks it for the run (the lock lasts as long as the returned
// object), sends the log to <output_dir>/train.log.* and writes the run's config as
// <output_dir>/experiment.pbtxt. Errors: what the run replaces (best, last, evals, predict)
// holds a file or directory the config names as an input, another run holds the directory
// (naming its pid and host), or it holds a file where the run keeps a directory.
absl::StatusOr<DirectoryLock> StartRunOutputs(const ExperimentConfig& config);

// losses.csv: "steps,train_loss,dev_loss,dev_performance", one row per evaluation.
std::string LossesCsv(const std::vector<EvalRecord>& history);

// Copies a [tasks, layers, experts] tensor of any floating dtype and device into a table.
absl::StatusOr<RouteTable> RouteTableFromTensor(const at::Tensor& routes);

// A routes file (.npy [tasks, layers, experts] of any floating dtype) as a table; errors name
// the file.
absl::StatusOr<RouteTable> ReadRouteTable(const std::string& path);

// A routes file with the task names of its rows (`tasks_path`: route_tasks.json, in
// id2task.json's format), as the route-skill agreement takes them. Errors name the file.
absl::StatusOr<NamedRoutes> ReadNamedRoutes(const std::string& routes_path,
                                            const std::string& tasks_path);

// The heatmap's groups from a CrossFit ontology: one per category with its sub-categories, in
// file order.
std::vector<RouteCategory> RouteCategoriesOf(const Ontology& ontology);

// The three route views [tasks, layers, experts] in `dir`: route.npy, route_t1.npy and
// route_argmax.npy with their heatmaps (titled with `step`, tasks grouped by `ontology` when
// given), and route_tasks.json naming the rows (`tasks`).
absl::Status WriteRouteFiles(const RouteViews& views, const std::vector<std::string>& tasks,
                             const std::optional<Ontology>& ontology, const ModelShape& shape,
                             int64_t step, const std::string& dir);

// <predict_dir>/eval-<split>-performance.csv and one <predict_dir>/<split>/<task>.txt of
// predictions (one line each) per task.
absl::Status WritePredictions(const std::vector<TaskScore>& scores, const std::string& split,
                              const std::string& predict_dir);

}  // namespace taskmoe

#endif  // TASKMOE_MOE_TRAIN_RUN_OUTPUTS_H_
