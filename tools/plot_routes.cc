// Draws the route heatmap of a routes.npy file: tasks grouped by ontology category on one
// axis, layer x expert on the other.
//
//   plot_routes --routes=out/routes.npy --tasks=out/id2task.json
//       --ontology=gym/ontology.json --output=out/routes.png

#include <iostream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "data/crossfit.h"
#include "moe/drawing/route_map.h"
#include "moe/formats/npy.h"
#include "moe/formats/task_table.h"
#include "moe/train/run_outputs.h"
#include "tools/tool_main.h"

ABSL_FLAG(std::string, routes, "", "routes.npy, float [tasks, layers, experts]");
ABSL_FLAG(std::string, tasks, "",
          "id2task.json: the task names in row order ({\"0\": name, ...})");
ABSL_FLAG(std::string, ontology, "",
          "ontology.json ({category: {sub_category: [tasks]}}); empty: one group");
ABSL_FLAG(std::string, output, "routes.png", "PNG file to write");
ABSL_FLAG(int, encoder_layers, -1,
          "how many of the layers are encoder layers (labelled encN, the rest decN); "
          "-1: half of them");
ABSL_FLAG(std::string, layer_labels, "",
          "comma-separated layer labels, overriding --encoder_layers");
ABSL_FLAG(std::string, title, "", "title drawn above the heatmap");
ABSL_FLAG(int, cell_width, 8, "pixels per expert column");
ABSL_FLAG(int, cell_height, 14, "pixels per task row");

namespace taskmoe {
namespace {

absl::Status Run() {
  if (absl::GetFlag(FLAGS_routes).empty() || absl::GetFlag(FLAGS_tasks).empty()) {
    return absl::InvalidArgumentError("--routes and --tasks are required");
  }
  absl::StatusOr<at::Tensor> tensor = ReadNpy(absl::GetFlag(FLAGS_routes));
  if (!tensor.ok()) return tensor.status();
  absl::StatusOr<RouteTable> routes = RouteTableFromTensor(*tensor);
  if (!routes.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(absl::GetFlag(FLAGS_routes), ": ", routes.status().message()));
  }
  absl::StatusOr<std::vector<std::string>> task_names =
      TaskTable::ReadNames(absl::GetFlag(FLAGS_tasks));
  if (!task_names.ok()) return task_names.status();
  std::vector<RouteCategory> categories;
  if (!absl::GetFlag(FLAGS_ontology).empty()) {
    absl::StatusOr<Ontology> ontology = ReadOntology(absl::GetFlag(FLAGS_ontology));
    if (!ontology.ok()) return ontology.status();
    categories = RouteCategoriesOf(*ontology);
  }
  std::vector<std::string> layer_labels;
  if (!absl::GetFlag(FLAGS_layer_labels).empty()) {
    layer_labels = absl::StrSplit(absl::GetFlag(FLAGS_layer_labels), ',');
  } else {
    const int64_t encoder_layers = absl::GetFlag(FLAGS_encoder_layers) >= 0
                                       ? absl::GetFlag(FLAGS_encoder_layers)
                                       : routes->layers / 2;
    if (encoder_layers > routes->layers) {
      return absl::InvalidArgumentError(absl::StrCat("--encoder_layers=", encoder_layers,
                                                     " exceeds the routes' ", routes->layers,
                                                     " layers"));
    }
    layer_labels = EncoderDecoderLayerLabels(encoder_layers, routes->layers - encoder_layers);
  }
  RouteMapOptions options;
  options.title = absl::GetFlag(FLAGS_title);
  options.cell_width = absl::GetFlag(FLAGS_cell_width);
  options.cell_height = absl::GetFlag(FLAGS_cell_height);
  return WriteRouteMapPng(*routes, *task_names, categories, layer_labels,
                          absl::GetFlag(FLAGS_output), options);
}

}  // namespace
}  // namespace taskmoe

int main(int argc, char** argv) {
  taskmoe::ToolOptions tool;
  tool.name = "plot_routes";
  tool.output_flags = {"output"};
  tool.usage =
      "Draws routes.npy as a heatmap PNG grouped by ontology category.\n"
      "  plot_routes --routes=routes.npy --tasks=id2task.json --ontology=ontology.json "
      "--output=routes.png";
  return taskmoe::RunTool(argc, argv, tool,
                          [](const std::vector<std::string>&) {
                            const absl::Status status = taskmoe::Run();
                            if (status.ok()) {
                              std::cout << "wrote " << absl::GetFlag(FLAGS_output) << "\n";
                            }
                            return status;
                          });
}
