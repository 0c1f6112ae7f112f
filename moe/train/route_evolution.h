#ifndef TASKMOE_MOE_TRAIN_ROUTE_EVOLUTION_H_
#define TASKMOE_MOE_TRAIN_ROUTE_EVOLUTION_H_

// How a run's routes changed during training: the route maps of its evaluations
// (<run_dir>/evals/step_<N>/) as one animated GIF, one frame per evaluation in step order.

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "moe/drawing/route_gif.h"
#include "moe/drawing/route_map.h"

namespace taskmoe {

// (step, directory) of every evaluation of a run (<run_dir>/evals/step_<N>), in step order.
// Errors: no evals directory, or one without step_<N> directories.
absl::StatusOr<std::vector<std::pair<int64_t, std::string>>> EvaluationDirs(
    const std::string& run_dir);

// The soft routes of every evaluation of a run, in step order.
struct RouteEvolution {
  std::vector<int64_t> steps;
  std::vector<RouteFrame> frames;       // one per step, titled "step <N>"
  std::vector<std::string> task_names;  // the rows, the same at every step
};

// Reads <run_dir>/evals/step_<N>/route.npy (kRoutesFile, the soft view) and the row
// names of its route_tasks.json for every N, in increasing N. Errors: no evaluation directory,
// one without routes, a malformed file (named), steps whose shapes or tasks differ.
absl::StatusOr<RouteEvolution> ReadRouteEvolution(const std::string& run_dir);

struct RouteEvolutionOptions {
  std::vector<RouteCategory> categories;    // empty: every task in one group
  std::vector<std::string> layer_labels;    // empty: "0", "1", ...
  RouteMapOptions map;                      // its title is replaced by each frame's
  int frame_delay_ms = 200;                 // as the original's create_gif.py
};

// The GIF of ReadRouteEvolution(run_dir) at `gif_path` (see WriteRouteMapGif). The trainer
// calls it at the end of a run with its ontology's categories and its model's layer labels:
//   WriteRouteEvolutionGif(output_dir, output_dir + "/routes.gif", options)
absl::Status WriteRouteEvolutionGif(const std::string& run_dir, const std::string& gif_path,
                                    const RouteEvolutionOptions& options = {});

// The ontology the run grouped its tasks by, as the trainer found it: data.ontology of
// <run_dir>/experiment.pbtxt, else <data_dir>/ontology.json when that exists; relative paths
// are taken from the working directory, as the trainer did. Empty when the run had none or
// the directory holds no experiment.pbtxt; an unreadable experiment.pbtxt is an error.
absl::StatusOr<std::string> RunOntologyPath(const std::string& run_dir);

// "enc0".."decM" from the model config.json of the run's last (else best) checkpoint when its
// encoder and decoder layers add up to `layers`; otherwise empty (layers labelled by index).
std::vector<std::string> RunLayerLabels(const std::string& run_dir, int64_t layers);

}  // namespace taskmoe

#endif  // TASKMOE_MOE_TRAIN_ROUTE_EVOLUTION_H_
