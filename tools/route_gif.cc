// Animates a run's route maps: one frame per evaluation (<run>/evals/step_<N>/route.npy), in
// step order, titled with the step; tasks grouped by the run's ontology.
//
//   route_gif --run=runs/default [--output=runs/default/routes.gif] [--ontology=ontology.json]

#include <iostream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_split.h"
#include "data/crossfit.h"
#include "moe/base/status_macros.h"
#include "moe/train/route_evolution.h"
#include "moe/train/run_outputs.h"
#include "tools/tool_main.h"

ABSL_FLAG(std::string, run, "", "run directory (the trainer's output_dir)");
ABSL_FLAG(std::string, output, "", "GIF file to write; empty: <run>/routes.gif");
ABSL_FLAG(std::string, ontology, "",
          "ontology.json ({category: {sub_category: [tasks]}}); empty: the run's (data.ontology "
          "of its experiment.pbtxt, else <data_dir>/ontology.json), else one group");
ABSL_FLAG(std::string, layer_labels, "",
          "comma-separated layer labels; empty: encN/decN from the run's checkpoint config.json");
ABSL_FLAG(int, delay_ms, 200, "how long each frame shows, in milliseconds");
ABSL_FLAG(int, cell_width, 8, "pixels per expert column");
ABSL_FLAG(int, cell_height, 14, "pixels per task row");

namespace taskmoe {
namespace {

std::string OutputPath() {
  const std::string output = absl::GetFlag(FLAGS_output);
  return output.empty() ? absl::GetFlag(FLAGS_run) + "/routes.gif" : output;
}

absl::Status Run() {
  const std::string run_dir = absl::GetFlag(FLAGS_run);
  if (run_dir.empty()) return absl::InvalidArgumentError("--run is required");
  TASKMOE_ASSIGN_OR_RETURN(const RouteEvolution evolution, ReadRouteEvolution(run_dir));
  std::string ontology_path = absl::GetFlag(FLAGS_ontology);
  if (ontology_path.empty()) {
    TASKMOE_ASSIGN_OR_RETURN(ontology_path, RunOntologyPath(run_dir));
  }
  std::vector<RouteCategory> categories;
  if (!ontology_path.empty()) {
    TASKMOE_ASSIGN_OR_RETURN(const Ontology ontology, ReadOntology(ontology_path));
    categories = RouteCategoriesOf(ontology);
  }
  std::vector<std::string> layer_labels;
  if (!absl::GetFlag(FLAGS_layer_labels).empty()) {
    layer_labels = absl::StrSplit(absl::GetFlag(FLAGS_layer_labels), ',');
  } else {
    layer_labels = RunLayerLabels(run_dir, evolution.frames.front().routes.layers);
  }
  RouteMapOptions options;
  options.cell_width = absl::GetFlag(FLAGS_cell_width);
  options.cell_height = absl::GetFlag(FLAGS_cell_height);
  TASKMOE_RETURN_IF_ERROR(WriteRouteMapGif(evolution.frames, evolution.task_names, categories,
                                           layer_labels, OutputPath(), options,
                                           absl::GetFlag(FLAGS_delay_ms)));
  std::cout << "wrote " << OutputPath() << " (" << evolution.frames.size()
            << " frames, steps " << evolution.steps.front() << ".." << evolution.steps.back()
            << ")\n";
  return absl::OkStatus();
}

}  // namespace
}  // namespace taskmoe

int main(int argc, char** argv) {
  taskmoe::ToolOptions tool;
  tool.name = "route_gif";
  tool.output_flags = {"output"};
  tool.usage =
      "Animates the route maps of a run's evaluations, in step order, as one GIF.\n"
      "  route_gif --run=runs/default [--output=runs/default/routes.gif] "
      "[--ontology=ontology.json]";
  return taskmoe::RunTool(argc, argv, tool,
                          [](const std::vector<std::string>&) { return taskmoe::Run(); });
}
